/*
** Per-row scoring kernels shared by ae_score.c (scalar functions) and
** ae_scores.c (the batched table-valued function).
**
** Every kernel exists compiled for three instruction sets, and the best
** one the CPU runs is used unless the caller asks for another (tests
** compare them). The results of two instruction sets may differ in the
** last bits (fused multiply-adds); on one machine they are deterministic.
*/
#ifndef AE_SCORE_H
#define AE_SCORE_H

#include "ae_model.h"

enum {
  AESQL_ISA_BEST = -1,   /* the best the CPU runs */
  AESQL_ISA_BASE = 0,    /* the compiler's baseline (SSE2 on x86-64)      */
  AESQL_ISA_AVX2 = 1,    /* AVX2 and FMA                                  */
  AESQL_ISA_AVX512 = 2   /* AVX-512 F, BW, DQ, VL                         */
};
/* The best instruction set of this CPU (AESQL_ISA_BASE off x86-64). */
int aesql_score_isa(void);

/* Floats of scratch space the kernels below need for model m; one work
** area serves one thread. */
size_t aesql_score_work_floats(const aesql_model *m);

/* Sum over pixels of (x - y)^2 for one row of pixels px in the model's
** encoding (d bytes, or d little-endian float32, any alignment).
** aesql_score_error picks the form m->sparse says; the sparse form needs
** the derived arrays (u8 models within the AESQL_SPARSE_MAX_* limits)
** and falls back to the dense one without them. */
double aesql_score_error(const aesql_model *m, const void *px, float *work);
double aesql_score_error_dense(const aesql_model *m, const void *px, float *work);
double aesql_score_error_sparse(const aesql_model *m, const void *px, float *work);
/* The same with a chosen form (sparse non-zero) and instruction set
** (lowered to what the CPU runs). */
double aesql_score_error_with(const aesql_model *m, const void *px,
                              float *work, int sparse, int isa);

/* 0 when every pixel of row px is a finite number (always, for u8
** models), else the 1-based number of the first that is not. A row that
** holds NaN or an infinity has no reconstruction error: the scoring
** functions refuse it, naming the pixel, as ae_train refuses it. */
int aesql_score_nonfinite(const aesql_model *m, const void *px);

/* The code of one row (the output of the code layer, net.iCode: code
** width floats into hv); the reconstruction of a row (d floats); and the
** last layer's output from its input hv (h floats, the first layer's
** output for two-layer models), with the output activation. work as
** above, not overlapping hv or y. */
void aesql_score_encode(const aesql_model *m, const void *px, float *hv,
                        float *work, int isa);
void aesql_score_reconstruct(const aesql_model *m, const void *px, float *y,
                             float *work, int isa);
void aesql_score_decode(const aesql_model *m, const float *hv, float *y,
                        float *work, int isa);

/* ae_scores.c: the table-valued function ae_scores(model, source). */
int aesql_scores_register(sqlite3 *db);

#endif /* AE_SCORE_H */
