/*
** OpenBLAS, loaded at run time (see ae_blas.c for why).
*/
#ifndef AE_BLAS_H
#define AE_BLAS_H

/* Loads OpenBLAS once per process; safe to call from any thread.
** Returns 0 when sgemm is available, else non-zero with a static message
** in *pzWhy (may be NULL). */
int aesql_blas_load(const char **pzWhy);

/* C = alpha * op(A) * op(B) + beta * C, all matrices row-major;
** op(X) = X' when transX is non-zero. M x N result, K inner dimension.
** aesql_blas_load() must have returned 0. */
void aesql_sgemm(int transA, int transB, int M, int N, int K,
                 float alpha, const float *A, int lda,
                 const float *B, int ldb,
                 float beta, float *C, int ldc);

/* The same product with plain loops and double accumulation: the naive
** reference the BLAS path is tested against. */
void aesql_sgemm_naive(int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda,
                       const float *B, int ldb,
                       float beta, float *C, int ldc);

/* 1 when the OpenBLAS in use is one the host process had loaded before
** us: its settings (threads) are the host's, not ours to change. */
int aesql_blas_shared(void);

/* Threads OpenBLAS uses for one call (1 or more); 0 when not loaded. */
int aesql_blas_threads(void);
void aesql_blas_set_threads(int n);
/* The kernel family OpenBLAS picked, e.g. "SkylakeX" ("none" if absent). */
const char *aesql_blas_core(void);

#endif /* AE_BLAS_H */
