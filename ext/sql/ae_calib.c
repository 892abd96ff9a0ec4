/*
** Calibration and thresholds (see ae_calib.h):
**
**   .load ./libaesql
**   SELECT ae_threshold('m');                 -- at the model's own rate
**   SELECT ae_threshold('m', 0.05);
**   SELECT ae_calibrate('m', 'SELECT pixels FROM genuine_notes');
**
** ae_threshold(MODEL [, RATE]) -> REAL: the error above which a row is
**   flagged at false-alarm rate RATE (0 < RATE < 1; default: the rate the
**   model was trained with, option false_alarm_rate).
** ae_calibrate(MODEL, SOURCE) -> INTEGER: scores SOURCE's rows (a table,
**   view or SELECT with a pixels column, as ae_train reads, or with the
**   columns of a model of numeric columns, by name, as ae_scores reads) with MODEL
**   and makes their errors its calibration, replacing the held-out rows';
**   returns how many. DIRECTONLY: it writes, and runs the SQL it is given.
**
** ae_pvalue and ae_is_anomaly score rows: they are in ae_score.c.
*/
#include "ae_calib.h"
#include "ae_model.h"
#include "ae_score.h"
#include "ae_source.h"
#include "ae_store.h"
#include "ae_columns.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b){
  double x = *(const double*)a, y = *(const double*)b;
  return x<y ? -1 : x>y ? 1 : 0;
}

int aesql_calib_store(sqlite3 *db, const char *zName, double *err,
                      sqlite3_int64 n, double rate, const char *zSource){
  sqlite3_stmt *st = 0;
  int rc;
  qsort(err, (size_t)n, sizeof(double), cmp_double);
  rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO main.ae_calibration(model, "
      "rows, source, calibrated, false_alarm_rate, errors) VALUES(?1, ?2, ?3, "
      "strftime('%Y-%m-%d %H:%M:%S','now'), ?4, ?5)", -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, n);
  sqlite3_bind_text(st, 3, zSource, -1, SQLITE_STATIC);
  sqlite3_bind_double(st, 4, rate);
  /* float64, little-endian: this machine's layout (ae_score.c insists). */
  rc = sqlite3_bind_blob64(st, 5, err, (sqlite3_uint64)n*8, SQLITE_STATIC);
  if( rc==SQLITE_OK ) sqlite3_step(st);
  {
    int rc2 = sqlite3_finalize(st);
    if( rc==SQLITE_OK ) rc = rc2;
  }
  return rc;
}

void aesql_calib_clear(aesql_calib *pc){
  sqlite3_free(pc->err);
  memset(pc, 0, sizeof(*pc));
}

int aesql_calib_load(sqlite3 *db, const char *zName, aesql_calib *pc,
                     char **pzErr){
  sqlite3_stmt *st = 0;
  int rc, nb;
  sqlite3_int64 i, n;
  const double *p;
  rc = sqlite3_prepare_v2(db, "SELECT rows, false_alarm_rate, errors FROM "
                          "main.ae_calibration WHERE model=?1", -1, &st, 0);
  if( rc==SQLITE_ERROR && strstr(sqlite3_errmsg(db), "no such table") ) rc = SQLITE_DONE;
  else if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
  }
  if( rc==SQLITE_DONE ){
    sqlite3_finalize(st);
    *pzErr = sqlite3_mprintf("model '%s' has no calibration: it was trained "
        "with validation_split 0, so no rows were held out; calibrate it on "
        "rows known to be normal with ae_calibrate('%s', source)", zName, zName);
    return SQLITE_NOTFOUND;
  }
  if( rc!=SQLITE_ROW ){ sqlite3_finalize(st); return rc; }
  n = sqlite3_column_int64(st, 0);
  pc->rate = sqlite3_column_double(st, 1);
  p = sqlite3_column_blob(st, 2);
  nb = sqlite3_column_bytes(st, 2);
  /* A database from someone else: check it all before use. */
  if( n<1 || (sqlite3_int64)nb!=8*n || !p || !(pc->rate>0 && pc->rate<1) ){
    sqlite3_finalize(st);
    *pzErr = sqlite3_mprintf("model '%s': corrupt calibration (its size or "
                             "rate is wrong); calibrate it again", zName);
    return SQLITE_CORRUPT;
  }
  pc->err = sqlite3_malloc64((sqlite3_uint64)nb);
  if( !pc->err ){ sqlite3_finalize(st); return SQLITE_NOMEM; }
  memcpy(pc->err, p, (size_t)nb);
  pc->n = n;
  sqlite3_finalize(st);
  for(i=0; i<n; i++){
    if( !isfinite(pc->err[i]) || pc->err[i]<0 || (i>0 && pc->err[i]<pc->err[i-1]) ){
      aesql_calib_clear(pc);
      *pzErr = sqlite3_mprintf("model '%s': corrupt calibration (errors not "
                               "finite or not ascending); calibrate it again", zName);
      return SQLITE_CORRUPT;
    }
  }
  return SQLITE_OK;
}

/* #{s_i >= e}. */
static sqlite3_int64 count_at_least(const aesql_calib *pc, double e){
  sqlite3_int64 lo = 0, hi = pc->n;     /* the first s_i >= e */
  while( lo<hi ){
    sqlite3_int64 mid = lo + (hi-lo)/2;
    if( pc->err[mid]<e ) lo = mid+1; else hi = mid;
  }
  return pc->n - lo;
}

double aesql_calib_pvalue(const aesql_calib *pc, double e){
  return (1.0 + (double)count_at_least(pc, e))/(1.0 + (double)pc->n);
}

int aesql_calib_flag(const aesql_calib *pc, double e, double rate){
  return aesql_calib_pvalue(pc, e) <= rate;
}

int aesql_calib_threshold(const aesql_calib *pc, double rate, double *pT){
  const double n1 = 1.0 + (double)pc->n;
  sqlite3_int64 k = (sqlite3_int64)floor(rate*n1 - 1.0);
  if( k<-1 ) k = -1;
  if( k>pc->n-1 ) k = pc->n-1;
  /* The largest count c with (1 + c)/(1 + n) <= rate, by pvalue's own
  ** arithmetic. */
  while( k+1<=pc->n-1 && (1.0 + (double)(k+1))/n1 <= rate ) k++;
  while( k>=0 && (1.0 + (double)k)/n1 > rate ) k--;
  if( k<0 ) return 0;
  *pT = pc->err[pc->n - k - 1];
  return 1;
}

/* ---- SQL ---- */

static void calib_error(sqlite3_context *ctx, const char *zFunc, int rc,
                        char *zErr, sqlite3 *db){
  if( zErr ){
    char *z = sqlite3_mprintf("%s: %s", zFunc, zErr);
    if( z ){
      sqlite3_result_error(ctx, z, -1);
      if( rc!=SQLITE_ERROR && rc!=SQLITE_NOTFOUND && rc!=SQLITE_CORRUPT ){
        sqlite3_result_error_code(ctx, rc);
      }
    }else{
      sqlite3_result_error_nomem(ctx);
    }
    sqlite3_free(z);
    sqlite3_free(zErr);
  }else{
    aesql_result_sqlite_error(ctx, zFunc, 0, rc, db);
  }
}

int aesql_calib_rate_check(sqlite3_value *v, double *pRate, char **pzErr){
  int t = sqlite3_value_numeric_type(v);
  double r = sqlite3_value_double(v);
  if( (t!=SQLITE_INTEGER && t!=SQLITE_FLOAT) || !(r>0 && r<1) ){
    const char *z = (const char*)sqlite3_value_text(v);
    *pzErr = sqlite3_mprintf("the false-alarm rate must be a number above 0 "
                             "and below 1, got '%.40s'", z ? z : "NULL");
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  *pRate = r;
  return SQLITE_OK;
}

int aesql_calib_rate_arg(sqlite3_context *ctx, const char *zFunc,
                         sqlite3_value *v, double *pRate){
  char *zErr = 0, *z;
  int rc = aesql_calib_rate_check(v, pRate, &zErr);
  if( rc==SQLITE_OK ) return 0;
  z = zErr ? sqlite3_mprintf("%s: %s", zFunc, zErr) : 0;
  if( z ) sqlite3_result_error(ctx, z, -1); else sqlite3_result_error_nomem(ctx);
  sqlite3_free(z);
  sqlite3_free(zErr);
  return 1;
}

static void ae_threshold_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  aesql_model *m = 0;
  aesql_calib cal;
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  char *zErr = 0;
  double rate, t;
  int rc;
  memset(&cal, 0, sizeof(cal));
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT || !zName ){
    sqlite3_result_error(ctx, "ae_threshold: the first argument must be a "
                         "model name (TEXT), as ae_train() returns", -1);
    return;
  }
  rc = aesql_model_load(db, zName, &m, &zErr);
  aesql_model_free(m);
  if( rc==SQLITE_OK ) rc = aesql_calib_load(db, zName, &cal, &zErr);
  if( rc!=SQLITE_OK ){ calib_error(ctx, "ae_threshold", rc, zErr, db); return; }
  rate = cal.rate;
  if( argc>1 && aesql_calib_rate_arg(ctx, "ae_threshold", argv[1], &rate) ){
    aesql_calib_clear(&cal);
    return;
  }
  if( aesql_calib_threshold(&cal, rate, &t) ){
    sqlite3_result_double(ctx, t);
  }else{
    char *z = sqlite3_mprintf("ae_threshold: at rate %g no row is ever flagged: "
        "model '%s' is calibrated on %lld rows, so the smallest rate is "
        "1/%lld (%.3g); calibrate it on more rows", rate, zName, cal.n,
        cal.n+1, 1.0/(double)(cal.n+1));
    if( z ) sqlite3_result_error(ctx, z, -1); else sqlite3_result_error_nomem(ctx);
    sqlite3_free(z);
  }
  aesql_calib_clear(&cal);
}

static void ae_calibrate_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  aesql_model *m = 0;
  aesql_calib old;
  aesql_txn txn;
  sqlite3_stmt *pSrc = 0;
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  const char *zSource = (const char*)sqlite3_value_text(argv[1]);
  char *zErr = 0;
  double *err = 0, rate = AESQL_DEFAULT_RATE;
  float *work = 0;
  sqlite3_int64 n = 0, nAlloc = 0;
  size_t rowBytes;
  float *row = 0;
  int rc, exists = 0, reported = 0;
  (void)argc;
  memset(&old, 0, sizeof(old));
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT || !zName
   || sqlite3_value_type(argv[1])!=SQLITE_TEXT || !zSource ){
    sqlite3_result_error(ctx, "ae_calibrate: takes a model name and a source "
                         "(a table name or a SELECT), both as text", -1);
    return;
  }
  if( sqlite3_db_readonly(db, "main")==1 ){
    sqlite3_result_error(ctx, "ae_calibrate: the database is read-only; open "
                         "it read-write", -1);
    sqlite3_result_error_code(ctx, SQLITE_READONLY);
    return;
  }
  rc = aesql_model_load(db, zName, &m, &zErr);
  if( rc==SQLITE_OK ) rc = aesql_store_check(db, &exists, &zErr);
  if( rc==SQLITE_OK ){
    rc = aesql_calib_load(db, zName, &old, &zErr);
    if( rc==SQLITE_OK ) rate = old.rate;
    if( rc==SQLITE_NOTFOUND ){ sqlite3_free(zErr); zErr = 0; rc = SQLITE_OK; }
    aesql_calib_clear(&old);
  }
  if( rc==SQLITE_OK ){
    /* The pixels, or a model of numeric columns' columns, by name. */
    aesql_source src;
    rc = aesql_source_open(db, zSource, m->nFeature>0 ? AESQL_SOURCE_NAMED
                           : AESQL_SOURCE_PIXELS, 0, m->nFeature, m->azFeature,
                           &src, &zErr);
    pSrc = src.pStmt;
    src.pStmt = 0;
    aesql_source_close(&src);
  }
  if( rc!=SQLITE_OK ) goto done;
  rowBytes = (size_t)m->nn.d*aesql_dtype_size(m->dtype);
  work = sqlite3_malloc64(sizeof(float)*aesql_score_work_floats(m));
  if( aesql_cols_model(m) ){
    row = sqlite3_malloc64(sizeof(float)*(size_t)m->nn.d);
    if( !row ){ rc = SQLITE_NOMEM; goto done; }
  }
  if( !work ){ rc = SQLITE_NOMEM; goto done; }
  while( (rc = sqlite3_step(pSrc))==SQLITE_ROW ){
    int t = sqlite3_column_type(pSrc, 0);
    const void *px = t==SQLITE_BLOB ? sqlite3_column_blob(pSrc, 0) : 0;
    int nb = sqlite3_column_bytes(pSrc, 0), iBad;
    if( aesql_cols_model(m) && (m->nFeature>0 || (px && (size_t)nb==rowBytes
                                && !aesql_score_nonfinite(m, px))) ){
      /* Read as ae_scores reads it: the columns, or a vector, transformed;
      ** the message names its cell and comes whole. */
      char *z = 0;
      if( m->nFeature>0 ? aesql_cols_stmt(m, pSrc, 0, n+1, "ae_calibrate", row, &z)
                        : aesql_cols_vector(m, px, "ae_calibrate", row, 0, &z) ){
        if( z ){ sqlite3_result_error(ctx, z, -1); sqlite3_free(z); reported = 1; }
        rc = z ? SQLITE_ERROR : SQLITE_NOMEM;
        goto done;
      }
      px = row;
      nb = (int)rowBytes;
    }
    if( !px || (size_t)nb!=rowBytes ){
      zErr = sqlite3_mprintf("row %lld of the source has %s pixels; model '%s' "
          "takes BLOBs of %d bytes", n+1, t==SQLITE_BLOB ? "a wrong number of"
          : t==SQLITE_NULL ? "NULL" : "non-BLOB", zName, (int)rowBytes);
      rc = SQLITE_ERROR;
      goto done;
    }
    if( (iBad = aesql_score_nonfinite(m, px))!=0 ){
      zErr = sqlite3_mprintf("row %lld of the source has a pixel that is not a "
                             "finite number (pixel %d)", n+1, iBad);
      rc = SQLITE_ERROR;
      goto done;
    }
    if( n==nAlloc ){
      sqlite3_int64 nNew = nAlloc ? 2*nAlloc : 1024;
      double *p = sqlite3_realloc64(err, sizeof(double)*(size_t)nNew);
      if( !p ){ rc = SQLITE_NOMEM; goto done; }
      err = p;
      nAlloc = nNew;
    }
    err[n] = aesql_score_error(m, px, work);
    if( !isfinite(err[n]) ){
      zErr = sqlite3_mprintf("the reconstruction error of row %lld of the "
                             "source overflows", n+1);
      rc = SQLITE_ERROR;
      goto done;
    }
    n++;
  }
  if( rc!=SQLITE_DONE ) goto done;
  sqlite3_finalize(pSrc);
  pSrc = 0;
  if( n==0 ){
    zErr = sqlite3_mprintf("source '%s' has no rows", zSource);
    rc = SQLITE_ERROR;
    goto done;
  }
  rc = aesql_txn_begin(&txn, db, &zErr);
  if( rc!=SQLITE_OK ) goto done;
  rc = aesql_calib_store(db, zName, err, n, rate, zSource);
  if( rc==SQLITE_OK ) rc = aesql_txn_commit(&txn, &zErr);
  else aesql_txn_rollback(&txn);
  if( rc==SQLITE_OK ) sqlite3_result_int64(ctx, n);

done:
  if( rc!=SQLITE_OK && !reported ) calib_error(ctx, "ae_calibrate", rc, zErr, db);
  sqlite3_finalize(pSrc);
  sqlite3_free(row);
  sqlite3_free(work);
  sqlite3_free(err);
  aesql_model_free(m);
}

int aesql_calib_register(sqlite3 *db){
  int rc = sqlite3_create_function(db, "ae_threshold", 1, SQLITE_UTF8, 0,
                                   ae_threshold_func, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_function(db, "ae_threshold", 2,
                              SQLITE_UTF8, 0, ae_threshold_func, 0, 0);
  /* DIRECTONLY: it writes, and runs the SQL it is given. */
  if( rc==SQLITE_OK ) rc = sqlite3_create_function(db, "ae_calibrate", 2,
                              SQLITE_UTF8|SQLITE_DIRECTONLY, 0,
                              ae_calibrate_func, 0, 0);
  return rc;
}
