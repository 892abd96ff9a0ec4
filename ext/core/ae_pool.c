/*
** A thread pool of claimed units of work (declared in ae_pool.h).
**
** One 64-bit word, `state`, holds the run's number, its count of units
** and its next unclaimed unit. The caller publishes a run by storing
** (run, n, 0) after writing the function and its argument. Any thread
** claims unit k by a compare-and-swap from (run, n, k) to (run, n, k+1),
** runs it, and counts it in `nDone`; the caller, having claimed what it
** could, waits for nDone to reach n. Whether there is a unit to claim is
** decided from one snapshot of that word: a worker held up with the state
** of an old run cannot claim in a newer one, as its compare-and-swap
** fails. (The unit count must be in the word: read apart, a new run's
** count with an old run's next unit would claim a unit that is not
** there.) So the caller never waits for a worker that did not claim
** anything, and a run needs no acknowledgement from the workers.
**
** Waiting, on either side, polls for up to POOL_SPIN_NS nanoseconds (with
** the CPU's pause hint) and then sleeps on a condition variable. The
** sleeper announces itself in a counter before its last check, the waker
** changes the state before reading that counter (both sequentially
** consistent), so one of them always sees the other: either the sleeper
** sees the new state and does not sleep, or the waker sees the sleeper and
** signals under the mutex, which the sleeper holds until it waits. When
** nobody sleeps, a run makes no system call.
**
** Why a bounded spin: training steps come every few hundred microseconds
** and a sleep and wake-up costs tens of microseconds; but a thread that
** spins for long takes a core from whatever else runs on a shared machine
** (our own preempted thread included).
*/
#include "ae_pool.h"
#include "ae_mem.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_SPIN_NS 50000    /* poll this long (50 us) before sleeping */

#if defined(__x86_64__) || defined(__i386__)
# define pool_pause() __builtin_ia32_pause()
#elif defined(__aarch64__)
# define pool_pause() __asm__ __volatile__("yield" ::: "memory")
#else
# define pool_pause() ((void)0)
#endif

typedef struct pool_worker {
  struct aesql_pool *p;
  int i;                        /* thread number, 1.. */
} pool_worker;

struct aesql_pool {
  int nThread;                  /* the caller included */
  int nWorker;                  /* workers running: nThread - 1 */
  pthread_t *aTh;
  pool_worker *aW;
  pthread_mutex_t mu;
  pthread_cond_t cvWork;        /* workers sleep here for a run */
  pthread_cond_t cvDone;        /* the caller sleeps here for its end */
  aesql_pool_fn fn;             /* the run's: read after a claim */
  void *arg;
  unsigned run;                 /* runs so far, mod 2^24 */
  atomic_int stop;
  /* Written by every thread: each on its own cache line. */
  _Alignas(64) atomic_ullong state;     /* run:24 | units:20 | next:20 */
  _Alignas(64) atomic_int nDone;        /* units of the run done */
  _Alignas(64) atomic_int nSleep;       /* workers asleep on cvWork */
  atomic_int callerSleeps;      /* the caller is asleep on cvDone */
};

#define POOL_BITS 20
#define POOL_MASK ((1ull<<POOL_BITS) - 1)
#define POOL_RUN(s)   ((unsigned)((s) >> (2*POOL_BITS)))
#define POOL_UNITS(s) ((unsigned)(((s) >> POOL_BITS) & POOL_MASK))
#define POOL_NEXT(s)  ((unsigned)((s) & POOL_MASK))

static long long pool_now_ns(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec*1000000000LL + t.tv_nsec;
}

/* Polls the clock now and then: non-zero once POOL_SPIN_NS have passed
** since the first call with *pEnd zero. */
static int pool_spun_out(int k, long long *pEnd){
  long long t;
  if( k & 31 ) return 0;
  t = pool_now_ns();
  if( *pEnd==0 ){ *pEnd = t + POOL_SPIN_NS; return 0; }
  return t>*pEnd;
}

/* Claims and runs units until none is left; returns the number of the
** run found with none left. */
static unsigned pool_work(struct aesql_pool *p, int iThread){
  unsigned long long s = atomic_load_explicit(&p->state, memory_order_acquire);
  for(;;){
    unsigned nUnit = POOL_UNITS(s), k = POOL_NEXT(s);
    if( k>=nUnit ) return POOL_RUN(s);
    if( atomic_compare_exchange_weak_explicit(&p->state, &s, s+1,
                         memory_order_acq_rel, memory_order_acquire) ){
      p->fn(p->arg, (int)k, iThread);
      /* the last unit done: the caller may be asleep */
      if( atomic_fetch_add(&p->nDone, 1)+1==(int)nUnit && iThread>0
       && atomic_load(&p->callerSleeps) ){
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->cvDone);
        pthread_mutex_unlock(&p->mu);
      }
      s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
  }
}

/* A worker waits for a run other than `seen`, or for the stop. Both are
** checked: the stop is a change of run too, which the worker may already
** have seen, and taken for an empty run, in pool_work(). */
static void pool_wait_run(struct aesql_pool *p, unsigned seen){
  long long tEnd = 0;
  int k;
  for(k=0; ; k++){
    if( POOL_RUN(atomic_load_explicit(&p->state, memory_order_acquire))!=seen
     || atomic_load(&p->stop) ){
      return;
    }
    if( pool_spun_out(k, &tEnd) ) break;
    pool_pause();
  }
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(&p->nSleep, 1);
  while( POOL_RUN(atomic_load(&p->state))==seen && !atomic_load(&p->stop) ){
    pthread_cond_wait(&p->cvWork, &p->mu);
  }
  atomic_fetch_sub(&p->nSleep, 1);
  pthread_mutex_unlock(&p->mu);
}

/* The caller waits for nUnit units to be done. */
static void pool_wait_done(struct aesql_pool *p, int nUnit){
  long long tEnd = 0;
  int k;
  for(k=0; ; k++){
    if( atomic_load_explicit(&p->nDone, memory_order_acquire)==nUnit ) return;
    if( pool_spun_out(k, &tEnd) ) break;
    pool_pause();
  }
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->callerSleeps, 1);
  while( atomic_load(&p->nDone)!=nUnit ) pthread_cond_wait(&p->cvDone, &p->mu);
  atomic_store(&p->callerSleeps, 0);
  pthread_mutex_unlock(&p->mu);
}

static void *pool_main(void *pArg){
  pool_worker *w = pArg;
  struct aesql_pool *p = w->p;
  unsigned seen = 0;
  for(;;){
    pool_wait_run(p, seen);
    if( atomic_load(&p->stop) ) break;
    seen = pool_work(p, w->i);
  }
  return 0;
}

aesql_pool *aesql_pool_new(int nThread){
  struct aesql_pool *p = 0;
  sigset_t all, old;
  int i;
  if( nThread<1 ) nThread = 1;
  p = aesql_nn_malloc(sizeof(*p));    /* 64-byte aligned, as state is */
  if( p==0 ) return 0;
  memset(p, 0, sizeof(*p));
  atomic_init(&p->stop, 0);
  atomic_init(&p->state, 0);
  atomic_init(&p->nDone, 0);
  atomic_init(&p->nSleep, 0);
  atomic_init(&p->callerSleeps, 0);
  p->nThread = 1;
  if( nThread==1 ) return p;
  p->aTh = aesql_nn_malloc(sizeof(pthread_t)*(size_t)(nThread-1));
  p->aW = aesql_nn_malloc(sizeof(pool_worker)*(size_t)(nThread-1));
  if( !p->aTh || !p->aW || pthread_mutex_init(&p->mu, 0) ){
    aesql_nn_mfree(p->aTh); aesql_nn_mfree(p->aW); aesql_nn_mfree(p);
    return 0;
  }
  if( pthread_cond_init(&p->cvWork, 0) ){
    pthread_mutex_destroy(&p->mu);
    aesql_nn_mfree(p->aTh); aesql_nn_mfree(p->aW); aesql_nn_mfree(p);
    return 0;
  }
  if( pthread_cond_init(&p->cvDone, 0) ){
    pthread_cond_destroy(&p->cvWork);
    pthread_mutex_destroy(&p->mu);
    aesql_nn_mfree(p->aTh); aesql_nn_mfree(p->aW); aesql_nn_mfree(p);
    return 0;
  }
  /* Workers must not take the host's signals: they inherit this mask. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for(i=0; i<nThread-1; i++){
    p->aW[i].p = p;
    p->aW[i].i = i+1;
    if( pthread_create(&p->aTh[i], 0, pool_main, &p->aW[i]) ) break;
  }
  pthread_sigmask(SIG_SETMASK, &old, 0);
  p->nWorker = i;
  p->nThread = i+1;
  return p;
}

int aesql_pool_threads(const aesql_pool *p){
  return p ? p->nThread : 1;
}

void aesql_pool_run(aesql_pool *p, int nUnit, aesql_pool_fn fn, void *arg){
  int u;
  if( nUnit<=0 ) return;
  if( p->nWorker==0 || nUnit==1 || nUnit>AESQL_POOL_MAX_UNITS ){
    for(u=0; u<nUnit; u++) fn(arg, u, 0);
    return;
  }
  p->fn = fn;
  p->arg = arg;
  atomic_store_explicit(&p->nDone, 0, memory_order_relaxed);
  p->run = (p->run + 1) & 0xffffff;
  atomic_store(&p->state, ((unsigned long long)p->run << 2*POOL_BITS)
                          | ((unsigned long long)nUnit << POOL_BITS));
  if( atomic_load(&p->nSleep) ){
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cvWork);
    pthread_mutex_unlock(&p->mu);
  }
  pool_work(p, 0);
  pool_wait_done(p, nUnit);
}

void aesql_pool_free(aesql_pool *p){
  int i;
  if( p==0 ) return;
  if( p->nWorker>0 ){
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    p->run = (p->run + 1) & 0xffffff;
    atomic_store(&p->state, (unsigned long long)p->run << 2*POOL_BITS);
    pthread_cond_broadcast(&p->cvWork);
    pthread_mutex_unlock(&p->mu);
    for(i=0; i<p->nWorker; i++) pthread_join(p->aTh[i], 0);
  }
  if( p->aTh ){
    pthread_cond_destroy(&p->cvDone);
    pthread_cond_destroy(&p->cvWork);
    pthread_mutex_destroy(&p->mu);
  }
  aesql_nn_mfree(p->aTh);
  aesql_nn_mfree(p->aW);
  aesql_nn_mfree(p);
}
