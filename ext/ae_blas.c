/*
** OpenBLAS, loaded at run time, and ae_info().
**
** Why dlopen() rather than linking -lopenblas: OpenBLAS picks its kernels
** (its "core") once, in a constructor that runs when the library is loaded,
** from the CPU it detects or from $OPENBLAS_CORETYPE. OpenBLAS 0.3.21 does
** not recognise some recent CPUs and falls back to its slowest kernels
** (Prescott), three to four times slower at this project's shapes. Linked
** normally, the constructor would run before our code could say anything.
** Loading it ourselves lets us set OPENBLAS_CORETYPE for that one load,
** from the CPU features we see, when the user has not set it, and unset it
** again at once, so nothing else in the process (numpy's BLAS, say) sees it.
**
** If the process already has libopenblas.so.0 loaded (a host application
** linked with it), we use that instance as it is: we cannot re-select its
** kernels without disturbing the host, and ae_info() reports what it uses.
*/
#include "aesql_int.h"
#include "ae_blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* SQLite 3.45 added SQLITE_RESULT_SUBTYPE and, with SQLITE_STRICT_SUBTYPE,
** refuses sqlite3_result_subtype() from functions registered without it.
** Older versions ignore the flag. */
#ifndef SQLITE_RESULT_SUBTYPE
# define SQLITE_RESULT_SUBTYPE 0x001000000
#endif

/* CBLAS enum values (cblas.h), so we need no header from the package. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float,
                         const float*, int, const float*, int,
                         float, float*, int);

static struct {
  pthread_once_t once;
  void *lib;
  sgemm_fn sgemm;
  char *(*get_corename)(void);
  char *(*get_config)(void);
  void (*set_num_threads)(int);
  int (*get_num_threads)(void);
  const char *why;       /* why loading failed, or NULL */
  const char *chose;     /* how the core was chosen, for ae_info() */
  int shared;            /* the host process's instance, not ours */
  char path[256];
} g = { PTHREAD_ONCE_INIT, 0, 0, 0, 0, 0, 0, 0, 0, 0, {0} };

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

static void blas_load_once(void){
  int i;
  void *lib = 0;
  /* Already in the process? Then use it as the host configured it. */
  for(i=0; blas_names[i] && !lib; i++){
    lib = dlopen(blas_names[i], RTLD_NOW|RTLD_LOCAL|RTLD_NOLOAD);
    if( lib ){
      g.chose = "already loaded by the host process";
      g.shared = 1;
    }
  }
  if( !lib ){
    const char *zEnv = getenv("OPENBLAS_CORETYPE");
    const char *zCore = (zEnv && zEnv[0]) ? 0 : blas_core_for_cpu();
    if( zEnv && zEnv[0] ) g.chose = "OPENBLAS_CORETYPE from the environment";
    else if( zCore ) g.chose = "chosen by libaesql from the CPU's features";
    else g.chose = "OpenBLAS's own detection";
    /* setenv/unsetenv are not thread-safe against a concurrent getenv in
    ** another thread; this runs once per process, under pthread_once. */
    if( zCore ) setenv("OPENBLAS_CORETYPE", zCore, 1);
    for(i=0; blas_names[i] && !lib; i++){
      lib = dlopen(blas_names[i], RTLD_NOW|RTLD_LOCAL);
    }
    if( zCore ) unsetenv("OPENBLAS_CORETYPE");
  }
  if( !lib ){
    g.why = "cannot load OpenBLAS (libopenblas.so.0); install libopenblas0";
    return;
  }
  g.sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
  g.get_corename = (char*(*)(void))dlsym(lib, "openblas_get_corename");
  g.get_config = (char*(*)(void))dlsym(lib, "openblas_get_config");
  g.set_num_threads = (void(*)(int))dlsym(lib, "openblas_set_num_threads");
  g.get_num_threads = (int(*)(void))dlsym(lib, "openblas_get_num_threads");
  if( !g.sgemm ){
    g.why = "the OpenBLAS found has no cblas_sgemm";
    return;
  }
  g.lib = lib;
}

int aesql_blas_load(const char **pzWhy){
  pthread_once(&g.once, blas_load_once);
  if( pzWhy ) *pzWhy = g.why;
  return g.lib ? 0 : 1;
}

void aesql_sgemm(int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda,
                 const float *B, int ldb,
                 float beta, float *C, int ldc){
  g.sgemm(CBLAS_ROW_MAJOR, transA ? CBLAS_TRANS : CBLAS_NO_TRANS,
          transB ? CBLAS_TRANS : CBLAS_NO_TRANS, M, N, K, alpha, A, lda,
          B, ldb, beta, C, ldc);
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

int aesql_blas_threads(void){
  if( aesql_blas_load(0) || !g.get_num_threads ) return 0;
  return g.get_num_threads();
}

int aesql_blas_shared(void){
  return aesql_blas_load(0)==0 && g.shared;
}

void aesql_blas_set_threads(int n){
  if( aesql_blas_load(0)==0 && g.set_num_threads && n>0 ) g.set_num_threads(n);
}

const char *aesql_blas_core(void){
  if( aesql_blas_load(0) || !g.get_corename ) return "none";
  return g.get_corename();
}

/* ae_info() -> JSON text: version, BLAS core, threads, how the core was
** chosen, OpenBLAS's build configuration. */
static void ae_info_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const char *zWhy = 0;
  char *z;
  (void)argc; (void)argv;
  if( aesql_blas_load(&zWhy) ){
    z = sqlite3_mprintf("{\"version\":\"%s\",\"sqlite\":\"%s\",\"blas\":null,"
                        "\"blas_error\":\"%s\"}", AESQL_VERSION_STR,
                        sqlite3_libversion(), zWhy);
  }else{
    z = sqlite3_mprintf("{\"version\":\"%s\",\"sqlite\":\"%s\","
        "\"blas\":\"OpenBLAS\",\"blas_core\":\"%s\",\"blas_threads\":%d,"
        "\"blas_core_chosen\":\"%s\",\"blas_config\":\"%s\"}",
        AESQL_VERSION_STR, sqlite3_libversion(), aesql_blas_core(),
        aesql_blas_threads(), g.chose,
        g.get_config ? g.get_config() : "");
  }
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');  /* JSON, as json() marks it */
}

int aesql_blas_register(sqlite3 *db){
  /* RESULT_SUBTYPE: it sets one ('J'); SQLITE_STRICT_SUBTYPE builds refuse
  ** that from functions not registered with it. */
  return sqlite3_create_function(db, "ae_info", 0,
                                 SQLITE_UTF8|SQLITE_INNOCUOUS|SQLITE_RESULT_SUBTYPE,
                                 0, ae_info_func, 0, 0);
}
