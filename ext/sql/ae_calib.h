/*
** Calibration: the reconstruction errors of rows known to be normal that
** the model has not fitted (at training, the held-out validation rows; or
** the rows given to ae_calibrate), kept in the table ae_calibration, turn
** an error into a conformal p-value and a threshold with a known
** false-alarm rate.
**
** With the n calibration errors s (ascending) and a row's error e:
**   pvalue(e)   = (1 + #{s_i >= e}) / (1 + n)          in (0, 1]
** For a normal row, exchangeable with the calibration rows,
** P(pvalue <= a) <= a. A row is flagged at rate a exactly when
** pvalue(e) <= a, and threshold(a) is the error above which that happens:
**   flagged  <=>  e > threshold(a) = s_{n-k},
** k being the largest count c with (1 + c)/(1 + n) <= a (the same double
** arithmetic as pvalue, so the two never disagree). A rate below 1/(1+n)
** flags nothing: there is no threshold.
*/
#ifndef AE_CALIB_H
#define AE_CALIB_H

#include "aesql_int.h"

typedef struct aesql_calib {
  sqlite3_int64 n;     /* calibration errors                      */
  double *err;         /* n, ascending, in ae_error's units       */
  double rate;         /* the model's default false-alarm rate    */
} aesql_calib;

#define AESQL_DEFAULT_RATE 0.01

/* Sorts err[0..n) ascending (in place) and writes them as model zName's
** calibration, replacing any, with where they came from (zSource). Part of
** the caller's transaction. */
int aesql_calib_store(sqlite3 *db, const char *zName, double *err,
                      sqlite3_int64 n, double rate, const char *zSource);

/* Reads model zName's calibration into *pc (zeroed by the caller).
** SQLITE_OK; SQLITE_NOTFOUND with *pzErr saying what to do when the model
** has none; else an error (*pzErr set, or NULL for SQLite's own). */
int aesql_calib_load(sqlite3 *db, const char *zName, aesql_calib *pc,
                     char **pzErr);
void aesql_calib_clear(aesql_calib *pc);

double aesql_calib_pvalue(const aesql_calib *pc, double e);
/* The threshold at rate (0 < rate < 1): 1 and *pT set, or 0 when the rate
** is below 1/(1+n) and nothing is flagged. */
int aesql_calib_threshold(const aesql_calib *pc, double rate, double *pT);
/* pvalue(e) <= rate. */
int aesql_calib_flag(const aesql_calib *pc, double e, double rate);

/* Reads a false-alarm rate, 0 < rate < 1, into *pRate: SQLITE_OK, or an
** error with *pzErr ("the false-alarm rate must be ..."). */
int aesql_calib_rate_check(sqlite3_value *v, double *pRate, char **pzErr);
/* The same for an SQL function's argument: 0, or 1 after setting an
** error on ctx, "zFunc: ...". */
int aesql_calib_rate_arg(sqlite3_context *ctx, const char *zFunc,
                         sqlite3_value *v, double *pRate);

/* ae_threshold() and ae_calibrate(). */
int aesql_calib_register(sqlite3 *db);

#endif /* AE_CALIB_H */
