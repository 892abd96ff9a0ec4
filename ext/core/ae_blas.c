/*
** OpenBLAS, loaded at run time (declared in ae_blas.h; ae_info() in
** ext/sql/ae_info.c reports what was loaded and why).
**
** Why dlopen() rather than linking -lopenblas: OpenBLAS picks its kernels
** (its "core") once, in a constructor that runs when the library is loaded,
** from the CPU it detects or from $OPENBLAS_CORETYPE. OpenBLAS 0.3.21 does
** not recognise some recent CPUs and falls back to its slowest kernels
** (Prescott), three to four times slower at this project's shapes. Loading
** it ourselves lets us give it OPENBLAS_CORETYPE, from the CPU features we
** see, when the user has not set it.
**
** Which instance. Our training runs several threads of its own, each
** calling single-threaded sgemm. An OpenBLAS the host process loaded
** first (Debian's numpy links libblas.so.3 of openblas-pthread, which
** loads libopenblas.so.0) is the host's: its thread count is process-wide
** and not ours to change, and its threads then stack on ours (20 to 100
** times slower), with other kernels (other bits). So we load an instance
** of our own in a link namespace of its own, dlmopen(LM_ID_NEWLM): the
** same file, a distinct copy of its code and data (and of the C library
** it links), which nothing else in the process sees, whichever loads
** first. It is ours alone, so its settings are ours: its thread count is
** 1, for good. When dlmopen() fails (a C library without it, no namespace
** left), we fall back to dlopen(): to the host's instance as it is, if
** there is one (its settings untouched, so training is slow there), else
** to our own in the process's namespace, which a host that loads OpenBLAS
** after us would share (as it would have before). ae_info() says which.
** (A private copy of the file would not do: libopenblas is not linked
** -Bsymbolic, so a copy's calls to its own functions bind to the first
** instance in the process's scope.)
**
** Its environment. OpenBLAS reads its settings in that constructor; the
** C library of a new namespace takes its environment from `environ` at
** dlmopen() time. We hand both the same private copy of the environment,
** with OPENBLAS_NUM_THREADS=1 and, when the user did not set it,
** OPENBLAS_CORETYPE; `environ` points to it for the length of the call
** only. So nothing else in the process sees those settings, and the
** private C library keeps an environment nobody frees. (Another thread's
** getenv() in that window reads the copy, which is complete; its setenv()
** would be lost, as before a concurrent getenv() could have crashed on
** our setenv(): this runs once per process.) With one thread
** OpenBLAS starts no threads of its own: each of those would map a buffer
** at start (below), and under a memory limit spin for ever doing so.
**
** Memory. OpenBLAS 0.3.21 maps one buffer of BLAS_BUFFER_BYTES for each
** thread calling it at the same time, the first time there is no free
** one, keeps them for the life of the process, and retries a failed
** mapping without end: under a memory limit every caller spins for ever.
** aesql_blas_reserve() checks first that the buffers new callers will
** need can be mapped, fails with out of memory when not, and, when no
** other reservation is held, has OpenBLAS map them there and then
** (blas_memory_alloc), so that no sgemm of the reserving threads maps
** anything. It counts the buffers OpenBLAS holds, so that a later
** training is not refused for what is already there.
**
** Loading is retried after a failure (under a memory limit, the next
** call may succeed); a failure for want of memory says "out of memory".
** Once loaded, libaesql stays loaded (RTLD_NODELETE on itself), so that a
** process that loads and unloads the extension again and again keeps one
** instance rather than a new namespace each time.
*/
#define _GNU_SOURCE             /* dlmopen, dlinfo */
#include "ae_blas.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

extern char **environ;

/* OpenBLAS's BUFFER_SIZE: the bytes it maps, PROT_READ|PROT_WRITE and
** MAP_PRIVATE|MAP_ANONYMOUS, for the buffer of a thread that calls it and
** finds no free one. Measured (strace, Debian's 0.3.21, DYNAMIC_ARCH) for
** the Prescott, Core2, Nehalem, Sandybridge, Haswell and Zen kernels: one
** mapping of exactly 134217728 bytes (32 << 22, its x86_64 default) per
** concurrent caller, as memory.c is built once for every core. SkylakeX's
** (and Cooperlake's) small-matrix kernels need none for products of at
** most 100^3, but not with A transposed and C over 1200 elements
** (sgemm_small_kernel_permit_skylakex.c), as our h x d weight gradient is:
** a training thread takes one there too. tests/sql/test_blas.c measures it. */
#define BLAS_BUFFER_BYTES ((size_t)32 << 22)
#define BLAS_PREMAP_MAX 64      /* buffers mapped ahead at most, at a time */

/* CBLAS enum values (cblas.h), so we need no header from the package. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112,
       CBLAS_UPPER = 121 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float,
                         const float*, int, const float*, int,
                         float, float*, int);
typedef void (*ssyrk_fn)(int, int, int, int, int, float, const float*, int,
                         float, float*, int);

static struct {
  pthread_mutex_t mu;    /* guards everything below but `loaded` */
  atomic_int loaded;     /* set once every field below is */
  void *lib;
  sgemm_fn sgemm;
  ssyrk_fn ssyrk;        /* may be NULL: aesql_ssyrk falls back to sgemm */
  char *(*get_corename)(void);
  char *(*get_config)(void);
  void (*set_num_threads)(int);
  int (*get_num_threads)(void);
  int (*get_num_procs)(void);
  void *(*mem_alloc)(int);
  void (*mem_free)(void*);
  int kind;              /* AESQL_BLAS_PRIVATE, _PROCESS or _HOST */
  const char *chose;     /* how the core was chosen, for ae_info() */
  char how[400];         /* how the instance was chosen, for ae_info() */
  char host[256];        /* the host's OpenBLAS, "" if none */
  char why[400];         /* why the last load failed */
  char **azEnv;          /* the private instance's environment */
  int envKept;           /* azEnv may be in use: never freed */
  int nThread;           /* threads for libaesql's parallel work */
  int nHeld;             /* buffers OpenBLAS holds (those we know of) */
  int nActive;           /* buffers reserved by threads still calling */
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* The OpenBLAS core to ask for on this CPU, or NULL to let OpenBLAS pick.
** AVX-512 (F, BW, DQ, VL) -> SkylakeX kernels (Cooperlake, for CPUs with
** BF16 too, has the same float32 kernels); AVX2+FMA -> Haswell. */
static const char *blas_core_for_cpu(void){
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if( __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
   && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ){
    return "SkylakeX";
  }
  if( __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ){
    return "Haswell";
  }
#endif
  return 0;
}

static const char *const blas_names[] = {
  "libopenblas.so.0", "libopenblas.so", "libopenblasp-r0.3.21.so", 0
};

/* Threads as OpenBLAS's settings give them (its blas_get_cpu_number()):
** OPENBLAS_NUM_THREADS, else GOTO_NUM_THREADS, else OMP_NUM_THREADS, the
** first above 0, at most nProc; nProc when none is set. */
static int blas_env_threads(int nProc){
  static const char *const az[] = {
    "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", 0
  };
  int i;
  if( nProc<1 ) nProc = 1;
  for(i=0; az[i]; i++){
    const char *z = getenv(az[i]);
    int n = z ? atoi(z) : 0;
    if( n>0 ) return n<nProc ? n : nProc;
  }
  return nProc;
}

/* The private instance's environment: the process's, with
** OPENBLAS_NUM_THREADS=1 and OPENBLAS_CORETYPE=zCore (when zCore). One
** block from malloc(): it lives as long as the instance, past any use
** of SQLite's allocator. NULL when out of memory. */
static char **blas_env_new(const char *zCore){
  static const char zThreads[] = "OPENBLAS_NUM_THREADS=1";
  char **e, **az, *z;
  size_t n = 0, nByte = sizeof(zThreads);
  if( zCore ) nByte += strlen("OPENBLAS_CORETYPE=") + strlen(zCore) + 1;
  for(e=environ; e && *e; e++){
    if( strncmp(*e, "OPENBLAS_NUM_THREADS=", 21)==0 ) continue;
    if( zCore && strncmp(*e, "OPENBLAS_CORETYPE=", 18)==0 ) continue;
    n++;
    nByte += strlen(*e) + 1;
  }
  az = malloc((n + 3)*sizeof(char*) + nByte);
  if( az==0 ) return 0;
  z = (char*)(az + n + 3);
  n = 0;
  for(e=environ; e && *e; e++){
    if( strncmp(*e, "OPENBLAS_NUM_THREADS=", 21)==0 ) continue;
    if( zCore && strncmp(*e, "OPENBLAS_CORETYPE=", 18)==0 ) continue;
    az[n++] = strcpy(z, *e);
    z += strlen(z) + 1;
  }
  az[n++] = strcpy(z, zThreads);
  z += sizeof(zThreads);
  if( zCore ){
    az[n++] = z;
    z += sprintf(z, "OPENBLAS_CORETYPE=%s", zCore) + 1;
  }
  az[n] = 0;
  return az;
}

/* Trial mappings of n buffers, all at once, undone: 0 when they fit. */
static int blas_trial_map(int n){
  void *a[BLAS_PREMAP_MAX];
  int i, k = 0, rc = 0, nDone = 0;
  while( nDone<n && rc==0 ){
    int m = n - nDone < BLAS_PREMAP_MAX ? n - nDone : BLAS_PREMAP_MAX;
    for(k=0; k<m; k++){
      a[k] = mmap(0, BLAS_BUFFER_BYTES, PROT_READ|PROT_WRITE,
                  MAP_PRIVATE|MAP_ANONYMOUS, -1, 0);
      if( a[k]==MAP_FAILED ){ rc = 1; break; }
    }
    /* More than BLAS_PREMAP_MAX at once: the rest are tried after these
    ** are undone, which is weaker, but no training asks for that many. */
    for(i=0; i<k; i++) munmap(a[i], BLAS_BUFFER_BYTES);
    nDone += m;
  }
  return rc;
}

/* Is dlopen()'s zErr the process running out of memory (or of address
** space)? ld.so says "failed to map segment from shared object" without
** errno; a trial mapping tells a memory limit from, say, a noexec mount.
** Its size is a buffer's (more than any of the libraries needs): if that
** cannot be mapped, no training could run either. */
static int blas_err_nomem(const char *zErr){
  if( zErr==0 || strstr(zErr, "static TLS") ) return 0;  /* not the process's */
  if( strstr(zErr, "annot allocate memory") || strstr(zErr, "out of memory") ){
    return 1;
  }
  if( !strstr(zErr, "failed to map segment") && !strstr(zErr, "cannot map zero-fill") ){
    return 0;
  }
  return blas_trial_map(1)!=0;
}

/* dlopen() or dlmopen() of the first of blas_names that loads, with the
** private environment. On failure, the first name's error in zErr. */
static void *blas_open(int bPrivate, char *zErr, size_t nErr){
  char **saved = environ;
  void *lib = 0;
  int i;
  zErr[0] = 0;
  environ = g.azEnv;
  for(i=0; blas_names[i] && !lib; i++){
#ifdef LM_ID_NEWLM
    if( bPrivate ) lib = dlmopen(LM_ID_NEWLM, blas_names[i], RTLD_NOW|RTLD_LOCAL);
    else
#endif
    lib = dlopen(blas_names[i], RTLD_NOW|RTLD_LOCAL);
    if( !lib && i==0 ){
      const char *z = dlerror();
      snprintf(zErr, nErr, "%s", z ? z : "unknown error");
    }
  }
  environ = saved;
#ifndef LM_ID_NEWLM
  if( bPrivate && !lib ) snprintf(zErr, nErr, "dlmopen is not available");
#endif
  return lib;
}

/* Keeps libaesql itself loaded for the life of the process, once it has
** an OpenBLAS: SQLite unloads an extension with the last connection that
** loaded it, and a later .load would start afresh, with a new namespace
** each time (glibc has room for about ten), the old ones left behind. */
static void blas_pin_self(void){
  Dl_info di;
  if( dladdr((void*)&g, &di) && di.dli_fname && di.dli_fname[0] ){
    /* never closed; NULL (nothing to pin) when we are the program itself */
    (void)dlopen(di.dli_fname, RTLD_NOW|RTLD_NOLOAD|RTLD_NODELETE);
  }
}

/* Loads OpenBLAS; g.mu held. */
static int blas_load_locked(void){
  const char *zEnv = getenv("OPENBLAS_CORETYPE");
  const char *zCore = (zEnv && zEnv[0]) ? 0 : blas_core_for_cpu();
  void *lib = 0, *host = 0;
  char zErr[300], zErr2[300];
  int i;

  /* The host's, if it has one: named in ae_info(), a fallback. */
  g.host[0] = 0;
  for(i=0; blas_names[i] && !host; i++){
    host = dlopen(blas_names[i], RTLD_NOW|RTLD_LOCAL|RTLD_NOLOAD);
  }
  if( host ){
    struct link_map *lm = 0;
    if( dlinfo(host, RTLD_DI_LINKMAP, &lm)==0 && lm && lm->l_name ){
      snprintf(g.host, sizeof(g.host), "%s", lm->l_name);
    }else{
      snprintf(g.host, sizeof(g.host), "%s", blas_names[i-1]);
    }
  }
  /* An environment of this attempt's; one that an instance loaded with
  ** may still be in use (a load that failed after dlopen), so is kept. */
  if( !g.envKept ) free(g.azEnv);
  g.envKept = 0;
  if( (g.azEnv = blas_env_new(zCore))==0 ){
    if( host ) dlclose(host);
    snprintf(g.why, sizeof(g.why), "out of memory");
    return AESQL_BLAS_NOMEM;
  }

  lib = blas_open(1, zErr, sizeof(zErr));
  if( lib ){
    g.kind = AESQL_BLAS_PRIVATE;
    snprintf(g.how, sizeof(g.how), "libaesql's own, in a link namespace of "
             "its own (dlmopen)%s", g.host[0] ? ", apart from the host "
             "process's, which is left as it is" : "");
    if( host ) dlclose(host);
  }else if( blas_err_nomem(zErr) ){
    if( host ) dlclose(host);
    snprintf(g.why, sizeof(g.why), "out of memory");
    return AESQL_BLAS_NOMEM;
  }else if( host ){
    lib = host;
    g.kind = AESQL_BLAS_HOST;
    snprintf(g.how, sizeof(g.how), "the host process's, used as it is: "
             "dlmopen failed (%s)", zErr);
  }else if( (lib = blas_open(0, zErr2, sizeof(zErr2)))!=0 ){
    g.kind = AESQL_BLAS_PROCESS;
    snprintf(g.how, sizeof(g.how), "libaesql's own, in the process's "
             "namespace: dlmopen failed (%s)", zErr);
  }else if( blas_err_nomem(zErr2) ){
    snprintf(g.why, sizeof(g.why), "out of memory");
    return AESQL_BLAS_NOMEM;
  }else{
    snprintf(g.why, sizeof(g.why), "cannot load OpenBLAS (%s); install "
             "libopenblas0", zErr2);
    return AESQL_BLAS_ERROR;
  }

  g.envKept = g.kind!=AESQL_BLAS_HOST;
  if( g.kind==AESQL_BLAS_HOST ) g.chose = "already loaded by the host process";
  else if( zEnv && zEnv[0] ) g.chose = "OPENBLAS_CORETYPE from the environment";
  else if( zCore ) g.chose = "chosen by libaesql from the CPU's features";
  else g.chose = "OpenBLAS's own detection";
  g.sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
  g.ssyrk = (ssyrk_fn)dlsym(lib, "cblas_ssyrk");
  g.get_corename = (char*(*)(void))dlsym(lib, "openblas_get_corename");
  g.get_config = (char*(*)(void))dlsym(lib, "openblas_get_config");
  g.set_num_threads = (void(*)(int))dlsym(lib, "openblas_set_num_threads");
  g.get_num_threads = (int(*)(void))dlsym(lib, "openblas_get_num_threads");
  g.get_num_procs = (int(*)(void))dlsym(lib, "openblas_get_num_procs");
  g.mem_alloc = (void*(*)(int))dlsym(lib, "blas_memory_alloc");
  g.mem_free = (void(*)(void*))dlsym(lib, "blas_memory_free");
  if( !g.sgemm ){
    snprintf(g.why, sizeof(g.why), "the OpenBLAS found has no cblas_sgemm");
    dlclose(lib);
    return AESQL_BLAS_ERROR;
  }
  if( g.kind==AESQL_BLAS_HOST ){
    g.nThread = g.get_num_threads ? g.get_num_threads() : 1;
  }else{
    long nCpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* ours: one thread a call (the environment said so already) */
    if( g.set_num_threads ) g.set_num_threads(1);
    g.nThread = blas_env_threads(g.get_num_procs ? g.get_num_procs()
                                 : nCpu>0 ? (int)nCpu : 1);
  }
  if( g.nThread<1 ) g.nThread = 1;
  blas_pin_self();
  g.lib = lib;
  atomic_store_explicit(&g.loaded, 1, memory_order_release);
  return AESQL_BLAS_OK;
}

int aesql_blas_load(const char **pzWhy){
  static __thread char zWhy[sizeof(g.why)];
  int rc = AESQL_BLAS_OK;
  if( !atomic_load_explicit(&g.loaded, memory_order_acquire) ){
    pthread_mutex_lock(&g.mu);
    if( !atomic_load_explicit(&g.loaded, memory_order_relaxed) ){
      rc = blas_load_locked();
      if( rc ) memcpy(zWhy, g.why, sizeof(zWhy));
    }
    pthread_mutex_unlock(&g.mu);
  }
  if( pzWhy ) *pzWhy = rc ? zWhy : 0;
  return rc;
}

void aesql_sgemm(int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda,
                 const float *B, int ldb,
                 float beta, float *C, int ldc){
  g.sgemm(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
          transB ? CBLAS_TRANS : CBLAS_NO_TRANS, M, N, K, alpha, A, lda,
          B, ldb, beta, C, ldc);
}

void aesql_ssyrk(int trans, int N, int K, float alpha, const float *A,
                 int lda, float beta, float *C, int ldc){
  if( g.ssyrk ){
    g.ssyrk(CBLAS_ROW_MAJOR, CBLAS_UPPER, trans ? CBLAS_TRANS : CBLAS_NO_TRANS,
            N, K, alpha, A, lda, beta, C, ldc);
  }else{
    aesql_sgemm(trans, !trans, N, N, K, alpha, A, lda, A, lda, beta, C, ldc);
  }
}

void aesql_sgemm_naive(int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda,
                       const float *B, int ldb,
                       float beta, float *C, int ldc){
  int i, j, k;
  for(i=0; i<M; i++){
    for(j=0; j<N; j++){
      double s = 0.0;
      for(k=0; k<K; k++){
        double a = transA ? A[(size_t)k*lda + i] : A[(size_t)i*lda + k];
        double b = transB ? B[(size_t)j*ldb + k] : B[(size_t)k*ldb + j];
        s += a*b;
      }
      C[(size_t)i*ldc + j] = (float)(alpha*s
                             + (beta==0.0f ? 0.0 : beta*C[(size_t)i*ldc + j]));
    }
  }
}

/* Has OpenBLAS map n more buffers now, after a trial: g.mu held, no
** reservation held, so that no other thread is calling our instance and
** every buffer it holds is free. Holding nHeld+n of them at once makes it
** map what it lacks (fewer, if it holds more than we know of). */
static void blas_premap(int n){
  void *a[BLAS_PREMAP_MAX];
  int i, k = g.nHeld + n;
  if( k>BLAS_PREMAP_MAX ) return;        /* the callers will map them */
  for(i=0; i<k; i++) a[i] = g.mem_alloc(0);
  for(i=0; i<k; i++) g.mem_free(a[i]);
}

int aesql_blas_reserve(int nThread){
  int rc = aesql_blas_load(0), need;
  if( rc ) return rc;
  if( nThread<1 ) nThread = 1;
  pthread_mutex_lock(&g.mu);
  need = g.nActive + nThread - g.nHeld;
  if( need>0 ){
    if( blas_trial_map(need) ){
      rc = AESQL_BLAS_NOMEM;
    }else if( g.nActive==0 && g.kind!=AESQL_BLAS_HOST
           && g.mem_alloc && g.mem_free ){
      /* Not in the host's: its own threads may be calling it. */
      blas_premap(need);
    }
  }
  if( rc==AESQL_BLAS_OK ){
    g.nActive += nThread;
    if( g.nHeld<g.nActive ) g.nHeld = g.nActive;
  }
  pthread_mutex_unlock(&g.mu);
  return rc;
}

void aesql_blas_release(int nThread){
  if( nThread<1 ) nThread = 1;
  pthread_mutex_lock(&g.mu);
  g.nActive = g.nActive>nThread ? g.nActive - nThread : 0;
  pthread_mutex_unlock(&g.mu);
}

size_t aesql_blas_buffer_bytes(void){
  return BLAS_BUFFER_BYTES;
}

int aesql_blas_instance(void){
  return aesql_blas_load(0) ? 0 : g.kind;
}

int aesql_blas_shared(void){
  return aesql_blas_instance()==AESQL_BLAS_HOST;
}

int aesql_blas_threads(void){
  int n;
  if( aesql_blas_load(0) ) return 0;
  pthread_mutex_lock(&g.mu);
  n = g.nActive ? 1 : g.nThread;
  pthread_mutex_unlock(&g.mu);
  return n;
}

void aesql_blas_set_threads(int n){
  if( n<1 || aesql_blas_load(0) ) return;
  pthread_mutex_lock(&g.mu);
  g.nThread = n;
  pthread_mutex_unlock(&g.mu);
}

int aesql_blas_call_threads(void){
  if( aesql_blas_load(0) || !g.get_num_threads ) return 0;
  return g.get_num_threads();
}

void aesql_blas_describe(aesql_blas_desc *p){
  memset(p, 0, sizeof(*p));
  if( aesql_blas_load(&p->zError) ) return;
  p->zCore = aesql_blas_core();
  p->zCoreChosen = g.chose;
  p->zInstance = g.kind==AESQL_BLAS_PRIVATE ? "private"
               : g.kind==AESQL_BLAS_PROCESS ? "process" : "host";
  p->zInstanceChosen = g.how;
  p->zHost = g.host[0] ? g.host : 0;
  p->zConfig = g.get_config ? g.get_config() : "";
  p->nCallThreads = aesql_blas_call_threads();
  p->nThreads = aesql_blas_threads();
}

const char *aesql_blas_core(void){
  if( aesql_blas_load(0) || !g.get_corename ) return "none";
  return g.get_corename();
}

