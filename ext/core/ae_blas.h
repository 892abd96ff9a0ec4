/*
** OpenBLAS, loaded at run time (see ae_blas.c for why and how).
**
**   if( aesql_blas_load(&zWhy) ) ...            (0: sgemm is available)
**   if( aesql_blas_reserve(nThread) ) ...        (before nThread threads call it)
**   aesql_sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
**   aesql_blas_release(nThread);                 (when they are done)
**
** Nothing here knows about SQLite; the return codes have SQLite's values.
*/
#ifndef AE_BLAS_H
#define AE_BLAS_H

#include <stddef.h>

#define AESQL_BLAS_OK     0    /* SQLITE_OK */
#define AESQL_BLAS_ERROR  1    /* SQLITE_ERROR */
#define AESQL_BLAS_NOMEM  7    /* SQLITE_NOMEM */

/* Loads OpenBLAS; safe to call from any thread. Returns AESQL_BLAS_OK when
** sgemm is available, else AESQL_BLAS_NOMEM (the process is out of memory
** or address space) or AESQL_BLAS_ERROR, with a static message in *pzWhy
** (may be NULL): "out of memory", or why OpenBLAS could not be loaded.
** A failure is not final: the next call tries again. */
int aesql_blas_load(const char **pzWhy);

/* C = alpha * op(A) * op(B) + beta * C, all matrices row-major;
** op(X) = X' when transX is non-zero. M x N result, K inner dimension.
** aesql_blas_load() must have returned 0. */
void aesql_sgemm(int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda,
                 const float *B, int ldb,
                 float beta, float *C, int ldc);

/* The upper triangle (j >= i) of the N x N matrix C = alpha * op(A) *
** op(A)' + beta * C, row-major; op(A) = A (N x K) when trans is zero, A'
** (A being K x N) otherwise. The strictly lower triangle is left as it
** is, or, with an OpenBLAS that lacks cblas_ssyrk (then sgemm does it),
** written with the same product. aesql_blas_load() must have returned 0. */
void aesql_ssyrk(int trans, int N, int K, float alpha, const float *A,
                 int lda, float beta, float *C, int ldc);

/* The same product with plain loops and double accumulation: the naive
** reference the BLAS path is tested against. */
void aesql_sgemm_naive(int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda,
                       const float *B, int ldb,
                       float beta, float *C, int ldc);

/* Makes sure OpenBLAS can give nThread more threads, calling aesql_sgemm()
** at the same time, the buffer each needs (OpenBLAS maps one of
** aesql_blas_buffer_bytes() per concurrent caller, the first time, and
** retries a failed mapping for ever). Returns AESQL_BLAS_OK, after which
** those calls map nothing, or AESQL_BLAS_NOMEM when the process cannot
** map them (or a load error, see aesql_blas_load). Every AESQL_BLAS_OK
** must be matched by aesql_blas_release(nThread) when those threads have
** stopped calling; while any reservation is held, aesql_blas_threads()
** returns 1 (the reserving threads take the cores). */
int aesql_blas_reserve(int nThread);
void aesql_blas_release(int nThread);

/* Bytes of address space OpenBLAS maps for a caller's buffer (measured,
** see ae_blas.c); 0 when no check is made. */
size_t aesql_blas_buffer_bytes(void);

/* Which OpenBLAS is in use (see ae_blas.c): */
#define AESQL_BLAS_PRIVATE 1   /* ours, in a link namespace of its own */
#define AESQL_BLAS_PROCESS 2   /* ours, in the process's namespace */
#define AESQL_BLAS_HOST    3   /* the host process's, used as it is */
int aesql_blas_instance(void);  /* 0 when not loaded */

/* 1 when the OpenBLAS in use is one the host process had loaded before
** us: its settings (threads) are the host's, not ours to change. */
int aesql_blas_shared(void);

/* Threads for libaesql's parallel work (ae_scores; training without a
** "threads" option): what OpenBLAS's settings give (OPENBLAS_NUM_THREADS,
** GOTO_NUM_THREADS, OMP_NUM_THREADS, else the CPUs), or the host's
** OpenBLAS's count when that is the one in use, or what
** aesql_blas_set_threads() set; 1 while a reservation is held. Our own
** OpenBLAS itself runs every call on one thread. 0 when not loaded. */
int aesql_blas_threads(void);
void aesql_blas_set_threads(int n);   /* never the host's: then ignored */

/* Threads one OpenBLAS call uses: 1 for ours, the host's setting for the
** host's. 0 when not loaded. */
int aesql_blas_call_threads(void);

/* The kernel family OpenBLAS picked, e.g. "SkylakeX" ("none" if absent). */
const char *aesql_blas_core(void);

/* What was loaded and why, for ae_info(): zError is set (and nothing
** else) when OpenBLAS could not be loaded. The strings are static. */
typedef struct aesql_blas_desc {
  const char *zError;
  const char *zCore, *zCoreChosen;        /* kernels, and who chose them */
  const char *zInstance;                  /* "private", "process", "host" */
  const char *zInstanceChosen;            /* why that instance            */
  const char *zHost;                      /* the host's OpenBLAS, or NULL */
  const char *zConfig;                    /* openblas_get_config()        */
  int nCallThreads, nThreads;  /* aesql_blas_call_threads(), _threads() */
} aesql_blas_desc;
void aesql_blas_describe(aesql_blas_desc *p);

#endif /* AE_BLAS_H */
