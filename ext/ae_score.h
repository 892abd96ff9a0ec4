/*
** Per-row scoring kernels shared by ae_score.c (scalar functions) and
** ae_scores.c (the batched table-valued function).
*/
#ifndef AE_SCORE_H
#define AE_SCORE_H

#include "ae_model.h"

/* Floats of scratch space the kernels below need for model m. */
size_t aesql_score_work_floats(const aesql_model *m);

/* Sum over pixels of (x - y)^2 for one row of pixels px in the model's
** encoding (d bytes, or d little-endian float32). work: see above.
** aesql_score_error picks the cheaper of the two exact forms. */
double aesql_score_error(const aesql_model *m, const void *px, float *work);
double aesql_score_error_dense(const aesql_model *m, const void *px, float *work);
double aesql_score_error_sparse(const aesql_model *m, const void *px, float *work);

/* ae_scores.c: the table-valued function ae_scores(model, source). */
int aesql_scores_register(sqlite3 *db);

#endif /* AE_SCORE_H */
