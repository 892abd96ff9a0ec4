/*
** A persistent pool of threads for parallel loops: a run is a number of
** units of work, which the caller and the pool's workers claim one at a
** time until none is left. The caller returns when every unit is done; it
** never waits for a worker that has not claimed one, so a worker that the
** system has not scheduled (a busy machine) costs nothing but its share.
** Waits spin for a bounded time, then sleep on a condition variable, so
** that back-to-back runs (a training step every few hundred microseconds)
** cost no system call and an idle pool costs no CPU.
**
**   aesql_pool *p = aesql_pool_new(4);     (4 threads, the caller included)
**   aesql_pool_run(p, 8, fn, arg);         (fn(arg, u, t) for u = 0..7; t is
**                                           the thread, 0..3: 0 the caller)
**   aesql_pool_free(p);
**
** Which thread runs which unit depends on timing: results are the same
** either way when each unit writes only its own outputs and uses the
** thread number only to pick scratch space. Nothing here knows about
** SQLite; memory comes from aesql_nn_malloc() (ae_mem.h). Workers run with
** every signal blocked.
*/
#ifndef AE_POOL_H
#define AE_POOL_H

typedef struct aesql_pool aesql_pool;
typedef void (*aesql_pool_fn)(void *arg, int iUnit, int iThread);

/* A pool of up to nThread threads, the caller included. If some workers
** cannot be started the pool has fewer (aesql_pool_threads() says how
** many); NULL only when out of memory. */
aesql_pool *aesql_pool_new(int nThread);

/* Threads in the pool, the caller included (>= 1). */
int aesql_pool_threads(const aesql_pool *p);

/* Runs fn(arg, u, t) for every unit u in 0..nUnit-1, each once, on the
** calling thread (t = 0) and the workers (t = 1..), and returns when all
** have returned. One run at a time, from the thread that made the pool.
** More than AESQL_POOL_MAX_UNITS units all run on the calling thread. */
#define AESQL_POOL_MAX_UNITS ((1<<20) - 1)
void aesql_pool_run(aesql_pool *p, int nUnit, aesql_pool_fn fn, void *arg);

/* Stops and joins the workers. NULL is harmless. */
void aesql_pool_free(aesql_pool *p);

#endif /* AE_POOL_H */
