/*
** ae_train(source, hidden [, options]): trains an autoencoder on the
** pixels of a table, view or SELECT, or on its numeric columns when it has
** no pixels column (ae_columns.h), and stores it in ae_models, ae_history
** and ae_calibration (ae_model.h). Returns the model's name.
**
** hidden is the integer width of the code layer (the tutorial's model,
** d -> hidden relu -> d), or a JSON array of encoder widths, the last one
** the code's: '[128, 32]' is d -> 128 -> 32 -> 128 -> d, the decoder
** mirroring the encoder. The options are ae_options.h's.
**
** This file is the SQL side of a training: it parses the arguments, reads
** the source (numeric columns: scaled by a transform fitted to the
** training rows, ae_xform.h, then trained on as f32 pixels), calls the
** core's training loop (ext/core/ae_loop.h: Keras'
** fit() semantics, early stopping, the NaN stop) with callbacks for
** progress and interrupts, and stores the result.
**
** All or nothing: the model trains in memory and is written at the end in
** one transaction (ae_store.h says which), so an error or an interrupt
** leaves no trace; what cannot be stored is found before training.
*/
#include "ae_model.h"
#include "../core/ae_blas.h"
#include "../core/ae_loop.h"
#include "../core/ae_pool.h"
#include "ae_options.h"
#include "ae_source.h"
#include "ae_store.h"
#include "ae_progress.h"
#include "ae_calib.h"
#include "ae_score.h"
#include "ae_columns.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

/* The training data, held compactly in its own encoding. */
typedef struct train_data {
  int d;                /* pixels per row */
  int n;                /* rows */
  int dtype;
  unsigned char *u8;    /* n x d bytes, when dtype is AESQL_U8 */
  float *f32;           /* n x d floats, when AESQL_F32 */
  size_t nAlloc;        /* rows allocated */
  /* A source of numeric columns: the values as read (n x d doubles, NaN
  ** for a NULL), until the transform fitted to the training rows turns
  ** them into f32; the transform; the columns' names. */
  double *raw;
  aesql_xform xf;
  char *const *azCol;   /* the source's, d names */
} train_data;


static void train_errorf(sqlite3_context *ctx, int rc, char *z);

/* ---- reading the source ---- */

/* Reads every row's pixels into *p. Returns non-zero after setting an
** error on ctx. */
static int read_source(sqlite3_context *ctx, sqlite3_stmt *st, int dtype,
                       train_data *p){
  int esz = aesql_dtype_size(dtype), rc;
  int col = sqlite3_column_count(st) - 1;  /* pixels is the last column */
  memset(p, 0, sizeof(*p));
  p->dtype = dtype;
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    const void *px = sqlite3_column_blob(st, col);
    int nb = sqlite3_column_bytes(st, col), t = sqlite3_column_type(st, col);
    char *z = 0;
    if( t!=SQLITE_BLOB ){
      z = sqlite3_mprintf("ae_train: row %d of the source has %s pixels; every "
                          "row needs a BLOB", p->n+1,
                          t==SQLITE_NULL ? "NULL" : t==SQLITE_TEXT ? "TEXT" : "numeric");
    }else if( p->n==0 ){
      if( nb==0 || nb % esz || nb/esz > AESQL_MAX_WIDTH ){
        z = sqlite3_mprintf("ae_train: the first row has %d bytes of pixels, "
                            "not a whole number of %s pixels (1 to %d)", nb,
                            aesql_dtype_name(dtype), AESQL_MAX_WIDTH);
      }else{
        p->d = nb/esz;
      }
    }else if( nb!=p->d*esz ){
      z = sqlite3_mprintf("ae_train: row %d has %d bytes of pixels, the first "
                          "row %d; every row must have the same length",
                          p->n+1, nb, p->d*esz);
    }
    if( !z && (size_t)p->n==p->nAlloc ){
      /* Start with what 4 MB hold (rows may be up to AESQL_MAX_WIDTH
      ** pixels wide), at most 1024 rows, then double. */
      size_t nFirst = ((size_t)4<<20) / ((size_t)p->d*esz);
      size_t nNew = p->nAlloc ? p->nAlloc*2 : nFirst<1 ? 1 : nFirst>1024 ? 1024 : nFirst;
      void *pNew;
      if( nNew > 0x7fffffff ) nNew = 0x7fffffff;
      if( (size_t)p->n==nNew ){
        z = sqlite3_mprintf("ae_train: too many rows (at most %d)", 0x7fffffff);
      }else{
        pNew = sqlite3_realloc64(dtype==AESQL_U8 ? (void*)p->u8 : (void*)p->f32,
                                 nNew*(size_t)p->d*esz);
        if( !pNew ){ sqlite3_result_error_nomem(ctx); return 1; }
        if( dtype==AESQL_U8 ) p->u8 = pNew; else p->f32 = pNew;
        p->nAlloc = nNew;
      }
    }
    if( !z && dtype==AESQL_F32 ){
      float *dst = p->f32 + (size_t)p->n*p->d;
      int i;
      memcpy(dst, px, nb);
      for(i=0; i<p->d; i++){
        if( !isfinite(dst[i]) ){
          z = sqlite3_mprintf("ae_train: row %d has a pixel that is not a "
                              "finite number (pixel %d)", p->n+1, i+1);
          break;
        }
      }
    }else if( !z ){
      memcpy(p->u8 + (size_t)p->n*p->d, px, nb);
    }
    if( z ){
      sqlite3_result_error(ctx, z, -1);
      sqlite3_free(z);
      return 1;
    }
    p->n++;
  }
  if( rc!=SQLITE_DONE ){
    aesql_result_sqlite_error(ctx, "ae_train", "cannot read the source", rc,
                              sqlite3_db_handle(st));
    return 1;
  }
  return 0;
}

/* Reads every row's d columns (a source of numeric columns, ae_columns.h)
** into p->raw as doubles: each cell a number, or a NULL (NaN here) when
** `nulls` is "mean"; anything else is an error naming the column and the
** row. Returns non-zero after setting an error on ctx. */
static int read_columns(sqlite3_context *ctx, sqlite3_stmt *st, int d,
                        char *const *azCol, int nulls, train_data *p){
  int rc, i;
  memset(p, 0, sizeof(*p));
  p->dtype = AESQL_F32;
  p->d = d;
  p->azCol = azCol;
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    double *row;
    if( (size_t)p->n==p->nAlloc ){
      /* As read_source: what 4 MB hold, at most 1024 rows, then double. */
      size_t nFirst = ((size_t)4<<20) / ((size_t)d*sizeof(double));
      size_t nNew = p->nAlloc ? p->nAlloc*2 : nFirst<1 ? 1 : nFirst>1024 ? 1024 : nFirst;
      double *pNew;
      if( nNew > 0x7fffffff ) nNew = 0x7fffffff;
      if( (size_t)p->n==nNew ){
        train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: too many rows "
                                                        "(at most %d)", 0x7fffffff));
        return 1;
      }
      pNew = sqlite3_realloc64(p->raw, nNew*(size_t)d*sizeof(double));
      if( !pNew ){ sqlite3_result_error_nomem(ctx); return 1; }
      p->raw = pNew;
      p->nAlloc = nNew;
    }
    row = p->raw + (size_t)p->n*d;
    for(i=0; i<d; i++){
      int kind = aesql_cell_column(st, i, &row[i]);
      if( kind<0 ){ sqlite3_result_error_nomem(ctx); return 1; }
      if( kind==AESQL_CELL_NUMBER || (kind==AESQL_CELL_NULL && nulls==AESQL_NULLS_MEAN) ){
        continue;
      }else{
        char *zWhere = sqlite3_mprintf("column '%s' of row %d of the source",
                                       azCol[i], p->n+1);
        train_errorf(ctx, SQLITE_ERROR, zWhere ? aesql_cell_error("ae_train",
            zWhere, kind, (const char*)sqlite3_column_text(st, i),
            "give \"nulls\": \"mean\" to fill NULLs with the training rows' "
            "mean, or leave such rows out") : 0);
        sqlite3_free(zWhere);
        return 1;
      }
    }
    p->n++;
  }
  if( rc!=SQLITE_DONE ){
    aesql_result_sqlite_error(ctx, "ae_train", "cannot read the source", rc,
                              sqlite3_db_handle(st));
    return 1;
  }
  return 0;
}

/* The input transform of a source of numeric columns: fitted to the
** training rows (the first nTrain, in source order: the held-out rows,
** which calibrate the thresholds, are scaled as unseen rows are), then
** applied to every row, into p->f32. Returns non-zero after setting an
** error on ctx. */
static int scale_columns(sqlite3_context *ctx, train_data *p, int nTrain,
                         int scale, int nulls){
  int rc, iBad = 0, r;
  if( aesql_xform_init(&p->xf, p->d, nulls==AESQL_NULLS_MEAN) ){
    sqlite3_result_error_nomem(ctx);
    return 1;
  }
  rc = aesql_xform_fit(&p->xf, scale, p->raw, (size_t)nTrain, &iBad);
  if( rc==AESQL_XFORM_EMPTY ){
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: column '%s' is "
        "NULL in every training row (the first %d); there is no mean to fill "
        "it with", p->azCol[iBad], nTrain));
    return 1;
  }
  if( rc!=AESQL_XFORM_OK ){
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: column '%s' "
        "cannot be scaled: its values are too large (its statistics over the "
        "training rows are beyond double's range)", p->azCol[iBad]));
    return 1;
  }
  p->f32 = sqlite3_malloc64(sizeof(float)*(size_t)p->n*p->d);
  if( !p->f32 ){ sqlite3_result_error_nomem(ctx); return 1; }
  for(r=0; r<p->n; r++){
    const double *x = p->raw + (size_t)r*p->d;
    rc = aesql_xform_apply(&p->xf, p->d, x, p->f32 + (size_t)r*p->d, &iBad);
    if( rc!=AESQL_XFORM_OK ){
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: column '%s' of "
          "row %d of the source, %!.15g, is beyond float32's range once scaled "
          "(\"scale\": \"%s\")", p->azCol[iBad], r+1, x[iBad],
          aesql_scale_name(scale)));
      return 1;
    }
  }
  sqlite3_free(p->raw);
  p->raw = 0;
  return 0;
}

static void data_free(train_data *p){
  sqlite3_free(p->u8);
  sqlite3_free(p->f32);
  sqlite3_free(p->raw);
  aesql_xform_free(&p->xf);
}

/* ---- interrupts ----
** SQLite 3.40 has no sqlite3_is_interrupted(). While our caller's statement
** runs, an sqlite3_interrupt() leaves the connection's interrupt flag set,
** and any statement stepped on the connection then fails with
** SQLITE_INTERRUPT; stepping a trivial one polls the flag, on any version. */
static int interrupted(sqlite3_stmt *pPoll){
  int rc = sqlite3_step(pPoll);
  sqlite3_reset(pPoll);
  return rc==SQLITE_INTERRUPT;
}

/* ---- storing ---- */

static int exec_printf(sqlite3 *db, char **pzErr, const char *zFmt, ...){
  va_list ap;
  char *zSql;
  int rc;
  va_start(ap, zFmt);
  zSql = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( !zSql ) return SQLITE_NOMEM;
  rc = sqlite3_exec(db, zSql, 0, 0, pzErr);
  sqlite3_free(zSql);
  return rc;
}

/* The result of an sqlite3_bind_*(): a value over this connection's
** length limit (SQLITE_LIMIT_LENGTH) is refused with SQLITE_TOOBIG. */
static int bind_check(sqlite3 *db, int rc, const char *zWhat, sqlite3_int64 n,
                      char **pzErr){
  if( rc==SQLITE_TOOBIG ){
    *pzErr = sqlite3_mprintf("cannot store the model: its %s of %lld bytes "
                             "is over this connection's length limit (%d bytes, "
                             "SQLITE_LIMIT_LENGTH)", zWhat, n,
                             sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1));
  }
  return rc;
}

/* Held-out rows a unit of the calibration's scoring (calib_task). */
#define CALIB_ROWS 256

/* The calibration's scoring: err[i] = ae_error of held-out row i. */
typedef struct calib_run {
  const aesql_model *m;
  const unsigned char *rows;   /* the first held-out row */
  size_t rowBytes;
  int nVal;
  size_t nWork;                /* floats of a thread's scratch */
  float *work;                 /* nThread scratches */
  double *err;                 /* nVal */
} calib_run;

/* Unit j: held-out rows [j*CALIB_ROWS, ...), with thread t's scratch.
** Each row's error is ae_error's, whichever thread computes it. */
static void calib_task(void *arg, int j, int t){
  calib_run *c = arg;
  int i, i1 = (j+1)*CALIB_ROWS < c->nVal ? (j+1)*CALIB_ROWS : c->nVal;
  float *work = c->work + (size_t)t*c->nWork;
  for(i=j*CALIB_ROWS; i<i1; i++){
    c->err[i] = aesql_score_error(c->m, c->rows + (size_t)i*c->rowBytes, work);
  }
}

/* The reconstruction errors of the held-out rows, in ae_error's units and
** by ae_error's own kernel (so a held-out row's ae_error equals its stored
** error bit for bit), stored as the model's calibration (ae_calib.h).
** Scored on the training's threads (option threads), blocks of rows at a
** time: the errors do not depend on which thread scores a row. */
static int store_calibration(sqlite3 *db, const char *zName,
                             const aesql_train_opts *o, const train_data *data,
                             int nTrain, int nVal, const void *pBlob,
                             int nBlob, char **pzErr){
  aesql_model m;
  calib_run c;
  aesql_pool *pool = 0;
  int rc, nThread, nUnit = (nVal + CALIB_ROWS - 1)/CALIB_ROWS;
  memset(&m, 0, sizeof(m));
  memset(&c, 0, sizeof(c));
  c.rowBytes = (size_t)data->d*aesql_dtype_size(data->dtype);
  c.rows = (data->dtype==AESQL_U8 ? data->u8 : (const unsigned char*)data->f32)
         + (size_t)nTrain*c.rowBytes;
  c.nVal = nVal;
  nThread = o->threads;
  if( nThread<=0 ){
    long k = sysconf(_SC_NPROCESSORS_ONLN);
    nThread = k>0 ? (int)(k<256 ? k : 256) : 1;
  }
  if( nThread>nUnit ) nThread = nUnit;
  rc = aesql_model_decode(pBlob, nBlob, &m, pzErr);
  if( rc==SQLITE_OK ){
    c.m = &m;
    c.nWork = aesql_score_work_floats(&m);
    c.err = sqlite3_malloc64(sizeof(double)*(size_t)nVal);
    pool = aesql_pool_new(nThread);
    if( !c.err || !pool ){
      rc = SQLITE_NOMEM;
    }else{
      nThread = aesql_pool_threads(pool);
      c.work = sqlite3_malloc64(sizeof(float)*c.nWork*(size_t)nThread);
      if( !c.work ) rc = SQLITE_NOMEM;
    }
  }
  if( rc==SQLITE_OK ){
    aesql_pool_run(pool, nUnit, calib_task, &c);
    rc = aesql_calib_store(db, zName, c.err, nVal, o->false_alarm_rate,
                           "validation_split");
  }
  aesql_pool_free(pool);
  sqlite3_free(c.work);
  sqlite3_free(c.err);
  aesql_model_clear(&m);
  return rc;
}

/* The layer widths and activations of net as JSON arrays, e.g.
** [784,128,32,128,784] and ["relu","relu","relu","linear"]. */
static char *json_widths(const aesql_net *net){
  sqlite3_str *s = sqlite3_str_new(0);
  int l;
  sqlite3_str_appendf(s, "[%d", net->layer[0].nIn);
  for(l=0; l<net->nLayer; l++) sqlite3_str_appendf(s, ",%d", net->layer[l].nOut);
  sqlite3_str_appendchar(s, 1, ']');
  return sqlite3_str_finish(s);
}
static char *json_acts(const aesql_net *net){
  sqlite3_str *s = sqlite3_str_new(0);
  int l;
  for(l=0; l<net->nLayer; l++){
    sqlite3_str_appendf(s, "%c\"%s\"", l ? ',' : '[', aesql_act_name(net->layer[l].act));
  }
  sqlite3_str_appendchar(s, 1, ']');
  return sqlite3_str_finish(s);
}

/* Writes the model and its history, all or nothing (ae_store.h says in
** which transaction), migrating tables made by an earlier release first
** (aesql_model_migrate). Returns SQLITE_OK or an error with *pzErr set
** (NULL for out of memory and interrupts). */
static int store_model(sqlite3 *db, const char *zName, const char *zSource,
                       const aesql_train_opts *o, const train_data *data,
                       const aesql_net *net, const aesql_loop_res *res,
                       char **pzErr){
  sqlite3_stmt *st = 0;
  aesql_txn txn;
  void *pBlob;
  int nBlob, rc, e;
  char *zOpts, *zLayers, *zActs, *zFeatures = 0;
  const int nVal = res->nVal, nTrain = res->nTrain;
  const aesql_epoch *last = &res->aEpoch[res->nEpoch-1];
  double trainSeconds = 0;
  for(e=0; e<res->nEpoch; e++) trainSeconds += res->aEpoch[e].seconds;
  pBlob = aesql_model_encode_xf(net, o->dtype, &data->xf, &nBlob);
  zOpts = aesql_options_json(o, res->nThread);
  zLayers = json_widths(net);
  zActs = json_acts(net);
  if( data->azCol ) zFeatures = aesql_json_names(data->azCol, data->d);
  if( !pBlob || !zOpts || !zLayers || !zActs || (data->azCol && !zFeatures) ){
    rc = SQLITE_NOMEM;
    goto done_notxn;
  }
  rc = aesql_txn_begin(&txn, db, pzErr);
  if( rc!=SQLITE_OK ) goto done_notxn;
  rc = aesql_model_migrate(db, pzErr);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.ae_models WHERE name=?1",
                            -1, &st, 0);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if( rc==SQLITE_ROW ){
      if( !o->replace ){
        /* Trained by another connection meanwhile. */
        *pzErr = sqlite3_mprintf("model '%s' already exists; give another "
                                 "\"name\" or pass \"replace\": true", zName);
        rc = SQLITE_ERROR;
      }else{
        rc = exec_printf(db, 0, "DELETE FROM main.ae_models WHERE name=%Q;"
                         "DELETE FROM main.ae_history WHERE model=%Q;"
                         "DELETE FROM main.ae_calibration WHERE model=%Q;",
                         zName, zName, zName);
      }
    }else if( rc==SQLITE_DONE ){
      rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    st = 0;
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db,
      "INSERT INTO main.ae_models(name, n_input, n_hidden, dtype, source, "
      "rows_train, rows_val, epochs, loss, val_loss, train_seconds, options, "
      "created, weights, layers, activations, best_epoch, features) VALUES(?1,"
      "?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,strftime('%Y-%m-%d %H:%M:%S','now'),"
      "?13,?14,?15,?16,?17)", -1, &st, 0);
  }
  if( rc==SQLITE_OK ){
    if( (rc = bind_check(db, sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC),
                         "name", (sqlite3_int64)strlen(zName), pzErr))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 2, data->d))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 3, aesql_net_code_width(net)))==SQLITE_OK
     && (rc = sqlite3_bind_text(st, 4, aesql_dtype_name(o->dtype), -1,
                                SQLITE_STATIC))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_text(st, 5, zSource, -1, SQLITE_STATIC),
                         "source text", (sqlite3_int64)strlen(zSource), pzErr))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 6, nTrain))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 7, nVal))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 8, res->nEpoch))==SQLITE_OK
     && (rc = sqlite3_bind_double(st, 9, last->loss))==SQLITE_OK
     && (rc = nVal ? sqlite3_bind_double(st, 10, last->val_loss)
                   : sqlite3_bind_null(st, 10))==SQLITE_OK
     && (rc = sqlite3_bind_double(st, 11, trainSeconds))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_text(st, 12, zOpts, -1, SQLITE_STATIC),
                         "options", (sqlite3_int64)strlen(zOpts), pzErr))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_blob(st, 13, pBlob, nBlob, SQLITE_STATIC),
                         "weights BLOB", nBlob, pzErr))==SQLITE_OK
     && (rc = sqlite3_bind_text(st, 14, zLayers, -1, SQLITE_STATIC))==SQLITE_OK
     && (rc = sqlite3_bind_text(st, 15, zActs, -1, SQLITE_STATIC))==SQLITE_OK
     && (rc = res->iBest ? sqlite3_bind_int(st, 16, res->iBest)
                         : sqlite3_bind_null(st, 16))==SQLITE_OK
     && (rc = zFeatures ? bind_check(db, sqlite3_bind_text(st, 17, zFeatures, -1,
                                     SQLITE_STATIC), "list of features",
                                     (sqlite3_int64)strlen(zFeatures), pzErr)
                        : sqlite3_bind_null(st, 17))==SQLITE_OK ){
      sqlite3_step(st);
    }
    e = sqlite3_finalize(st);
    if( rc==SQLITE_OK ) rc = e;
    st = 0;
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT INTO main.ae_history(model, epoch, "
                            "loss, val_loss, seconds, best) VALUES(?1,?2,?3,?4,?5,?6)",
                            -1, &st, 0);
    for(e=0; rc==SQLITE_OK && e<res->nEpoch; e++){
      sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, e+1);
      sqlite3_bind_double(st, 3, res->aEpoch[e].loss);
      if( nVal ) sqlite3_bind_double(st, 4, res->aEpoch[e].val_loss);
      else sqlite3_bind_null(st, 4);
      sqlite3_bind_double(st, 5, res->aEpoch[e].seconds);
      if( res->iBest ) sqlite3_bind_int(st, 6, e+1==res->iBest);
      else sqlite3_bind_null(st, 6);
      sqlite3_step(st);
      rc = sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = 0;
  }
  if( rc==SQLITE_OK && nVal>0 ){
    rc = store_calibration(db, zName, o, data, nTrain, nVal, pBlob, nBlob, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = aesql_txn_commit(&txn, pzErr);
  }else{
    if( *pzErr==0 && (rc & 0xff)!=SQLITE_NOMEM && (rc & 0xff)!=SQLITE_INTERRUPT ){
      *pzErr = sqlite3_mprintf("cannot store the model: %s", sqlite3_errmsg(db));
    }
    aesql_txn_rollback(&txn);
  }
done_notxn:
  sqlite3_free(zFeatures);
  sqlite3_free(zOpts);
  sqlite3_free(zLayers);
  sqlite3_free(zActs);
  sqlite3_free(pBlob);
  return rc;
}

/* ---- the function ---- */

/* An error of ae_train from an SQLite call (rc) or a message of ours. */
static void train_error(sqlite3_context *ctx, sqlite3 *db, int rc,
                        const char *zErr){
  if( zErr ){
    char *z = sqlite3_mprintf("ae_train: %s", zErr);
    if( !z ){ sqlite3_result_error_nomem(ctx); return; }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    if( rc!=SQLITE_ERROR && rc!=SQLITE_OK ) sqlite3_result_error_code(ctx, rc);
  }else{
    aesql_result_sqlite_error(ctx, "ae_train", 0, rc, db);
  }
}

static void train_interrupted(sqlite3_context *ctx){
  sqlite3_result_error(ctx, "ae_train: interrupted", -1);
  sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
}

/* A formatted error of ae_train (z from sqlite3_mprintf, freed here). */
static void train_errorf(sqlite3_context *ctx, int rc, char *z){
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  if( rc!=SQLITE_ERROR ) sqlite3_result_error_code(ctx, rc);
  sqlite3_free(z);
}

/* ---- hidden: an integer, or a JSON array of encoder widths ---- */

#define TRAIN_MAX_ENC (AESQL_NET_MAX_LAYERS/2)

/* Reads argv into enc[0..*pk). Returns non-zero after setting an error. */
static int parse_hidden(sqlite3_context *ctx, sqlite3 *db, sqlite3_value *v,
                        int *enc, int *pk){
  sqlite3_stmt *st = 0;
  int rc, k = 0, bad = 0;
  if( sqlite3_value_type(v)==SQLITE_INTEGER ){
    sqlite3_int64 h = sqlite3_value_int64(v);
    if( h>=1 && h<=AESQL_MAX_HIDDEN ){
      enc[0] = (int)h;
      *pk = 1;
      return 0;
    }
    bad = 1;
  }else if( sqlite3_value_type(v)==SQLITE_TEXT ){
    /* strict JSON, as the options (ae_options.h) */
    rc = sqlite3_prepare_v2(db, "SELECT CASE WHEN json_valid(?1) AND json_type(?1)"
        "='array' THEN (SELECT json_group_array(CASE WHEN type='integer' THEN "
        "atom END) FROM json_each(?1)) END", -1, &st, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_value(st, 1, v);
      rc = sqlite3_step(st);
    }
    if( rc==SQLITE_ROW ){
      sqlite3_stmt *e = 0;
      const char *z = (const char*)sqlite3_column_text(st, 0);
      bad = z==0;
      if( !bad ){
        rc = sqlite3_prepare_v2(db, "SELECT value FROM json_each(?1)", -1, &e, 0);
        if( rc==SQLITE_OK ){
          sqlite3_bind_text(e, 1, z, -1, SQLITE_TRANSIENT);
          while( (rc = sqlite3_step(e))==SQLITE_ROW ){
            sqlite3_int64 h = sqlite3_column_int64(e, 0);
            if( sqlite3_column_type(e, 0)!=SQLITE_INTEGER || h<1
             || h>AESQL_MAX_HIDDEN || k==TRAIN_MAX_ENC ){
              bad = 1;
              break;
            }
            enc[k++] = (int)h;
          }
          if( rc==SQLITE_DONE || rc==SQLITE_ROW ) rc = SQLITE_OK;
        }
        sqlite3_finalize(e);
        if( k==0 ) bad = 1;
      }
      if( rc==SQLITE_ROW ) rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if( rc!=SQLITE_OK && rc!=SQLITE_DONE ){
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read hidden", rc, db);
      return 1;
    }
  }else{
    bad = 1;
  }
  if( bad ){
    const char *zGot = (const char*)sqlite3_value_text(v);
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: hidden must be an "
        "integer from 1 to %d (the tutorial uses 32), or a JSON array of 1 to "
        "%d such encoder widths, the last the code's (e.g. '[128, 32]'), got "
        "'%.40s'", AESQL_MAX_HIDDEN, TRAIN_MAX_ENC, zGot ? zGot : "NULL"));
    return 1;
  }
  *pk = k;
  return 0;
}

/* ---- the core's callbacks ---- */

typedef struct train_cb {
  sqlite3_stmt *pPoll;
  aesql_run *run;
  int progress;              /* print Keras' lines to stderr */
  int epochs;
  double seconds;            /* so far */
  int stop;                  /* 1: interrupted, 2: by the progress hook */
} train_cb;

static int cb_batch(void *p, int epoch, int batch, double loss){
  train_cb *c = p;
  aesql_run_batch(c->run, epoch, batch, loss);
  if( interrupted(c->pPoll) ){ c->stop = 1; return 1; }
  return 0;
}

static int cb_epoch(void *p, int epoch, const aesql_epoch *e){
  train_cb *c = p;
  c->seconds += e->seconds;
  if( aesql_run_epoch(c->run, epoch, e->loss, e->val_loss, e->seconds) ){
    c->stop = 2;
    return 1;
  }
  if( c->progress ){
    double eta = c->seconds/epoch*(c->epochs - epoch);
    if( !isnan(e->val_loss) ){
      fprintf(stderr, "Epoch %d/%d - %.2fs - loss: %.4f - val_loss: %.4f - ETA %.1fs\n",
              epoch, c->epochs, e->seconds, e->loss, e->val_loss, eta);
    }else{
      fprintf(stderr, "Epoch %d/%d - %.2fs - loss: %.4f - ETA %.1fs\n",
              epoch, c->epochs, e->seconds, e->loss, eta);
    }
  }
  return 0;
}

/* The options that suit one kind of source and not the other, given for
** the other, are refused; the rest settle as the source says: a source of
** numeric columns is read as f32 (scaled by "scale"), one of pixels
** unscaled (bytes by 1/255 always, as dtype says: "scale" none, stored so).
** Returns non-zero after setting an error on ctx. */
static int train_source_options(sqlite3_context *ctx, const aesql_source *src,
                                const char *zSource, aesql_train_opts *o){
  if( src->nCol>0 ){
    if( aesql_options_given(o, "dtype") ){
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: option 'dtype' "
          "says how a pixels column is encoded, and source '%s' has none: its "
          "%d columns are read as numbers (as float32, scaled as option "
          "'scale' says); leave 'dtype' out", zSource, src->nCol));
      return 1;
    }
    o->dtype = AESQL_F32;
  }else{
    if( o->scale!=AESQL_SCALE_NONE && aesql_options_given(o, "scale") ){
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: option 'scale' "
          "is for sources of numeric columns, and source '%s' has a pixels "
          "column, read as its dtype says (u8 bytes scaled by 1/255, f32 as "
          "they are); leave 'scale' out", zSource));
      return 1;
    }
    if( o->nulls!=AESQL_NULLS_ERROR ){
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: option 'nulls' "
          "is for sources of numeric columns, and source '%s' has a pixels "
          "column (NULL pixels are always an error); leave 'nulls' out", zSource));
      return 1;
    }
    o->scale = AESQL_SCALE_NONE;
  }
  return 0;
}

static void ae_train_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  aesql_conn *conn = sqlite3_user_data(ctx);
  aesql_train_opts o;
  train_data data;
  aesql_net net;
  aesql_nn_data xd;
  aesql_loop_cfg cfg;
  aesql_loop_res res;
  aesql_loop_cb cb;
  train_cb tc;
  aesql_source src;
  const char *zSource, *zWhy = 0;
  char *zName = 0, *zErr = 0;
  int enc[TRAIN_MAX_ENC], width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  int nEnc = 0, nLayer, nTrain, nVal, i, rc;

  memset(&data, 0, sizeof(data));
  memset(&net, 0, sizeof(net));
  memset(&xd, 0, sizeof(xd));
  memset(&o, 0, sizeof(o));
  memset(&res, 0, sizeof(res));
  memset(&tc, 0, sizeof(tc));
  memset(&src, 0, sizeof(src));

  if( conn->nTraining>0 ){
    /* Its model would be committed before the outer training knows
    ** whether it will fail. */
    sqlite3_result_error(ctx, "ae_train: cannot run inside the source of "
                         "another ae_train; train the two one after the other", -1);
    return;
  }
  conn->nTraining++;
  /* The interrupt poll first: once the connection is interrupted, preparing
  ** fails too, and that must read as an interrupt. */
  rc = sqlite3_prepare_v2(db, "SELECT 1", -1, &tc.pPoll, 0);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, 0); goto done; }
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT ){
    sqlite3_result_error(ctx, "ae_train: the source must be a table name or a "
                         "SELECT statement, as text", -1);
    goto done;
  }
  zSource = (const char*)sqlite3_value_text(argv[0]);
  if( !zSource ){ sqlite3_result_error_nomem(ctx); goto done; }
  if( parse_hidden(ctx, db, argv[1], enc, &nEnc) ) goto done;
  if( aesql_options_parse(ctx, db, argc>2 ? argv[2] : 0, &o) ) goto done;
  if( (rc = aesql_blas_load(&zWhy))!=SQLITE_OK ){
    train_error(ctx, db, rc, zWhy);    /* SQLITE_NOMEM: "out of memory" */
    goto done;
  }

  /* The source, the model's name, and whether it can be stored: what
  ** would fail at the end fails now, before any training. */
  rc = aesql_source_open(db, zSource, AESQL_SOURCE_ANY, 0, 0, 0, &src, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }
  if( train_source_options(ctx, &src, zSource, &o) ) goto done;
  if( o.zName ){
    zName = sqlite3_mprintf("%s", o.zName);
  }else{
    sqlite3_str *s = sqlite3_str_new(db);
    sqlite3_str_appendall(s, src.zName ? src.zName : "query");
    for(i=0; i<nEnc; i++) sqlite3_str_appendf(s, "_%d", enc[i]);
    zName = sqlite3_str_finish(s);
  }
  if( !zName ){ sqlite3_result_error_nomem(ctx); goto done; }
  rc = aesql_store_precheck(db, zName, o.replace, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }

  /* Read the data. */
  if( src.nCol>0 ){
    if( read_columns(ctx, src.pStmt, src.nCol, src.azCol, o.nulls, &data) ) goto done;
  }else{
    if( read_source(ctx, src.pStmt, o.dtype, &data) ) goto done;
  }
  sqlite3_finalize(src.pStmt);
  src.pStmt = 0;
  if( data.n==0 ){
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: source '%s' has "
                                                    "no rows", zSource));
    goto done;
  }
  nVal = aesql_loop_split(data.n, o.validation_split, &nTrain);
  if( nTrain<1 ){
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: no rows left to "
        "train on: %d rows with validation_split %g", data.n, o.validation_split));
    goto done;
  }
  if( o.patience>0 && nVal<1 ){
    train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: option 'patience' "
        "watches the validation loss, but %d rows with validation_split %g hold "
        "none out", data.n, o.validation_split));
    goto done;
  }
  if( src.nCol>0 && scale_columns(ctx, &data, nTrain, o.scale, o.nulls) ) goto done;
  if( interrupted(tc.pPoll) ){ train_interrupted(ctx); goto done; }

  /* The model: the encoder's widths mirrored; hidden layers with the
  ** activation, the output with output_activation. */
  nLayer = aesql_net_mirror(data.d, enc, nEnc, width);
  for(i=0; i<nLayer; i++) act[i] = i<nLayer-1 ? o.activation : o.output_activation;
  aesql_nn_data_init(&xd, data.d, (size_t)data.n, data.u8, data.f32);
  if( aesql_net_init(&net, nLayer, width, act, nEnc-1)
   || aesql_nn_data_index(&xd, AESQL_NN_SPARSE_AUTO) ){
    sqlite3_result_error_nomem(ctx);
    goto done;
  }
  /* A model whose weights SQLite could not hold fails now, not after
  ** its training (a model of numeric columns' with its transform). */
  {
    sqlite3_int64 nBlob = (sqlite3_int64)aesql_codec_size_xf(&net, &data.xf);
    int nMax = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
    if( nBlob==0 || nBlob>nMax ){
      train_errorf(ctx, SQLITE_TOOBIG, sqlite3_mprintf("ae_train: cannot store "
          "the model: its weights BLOB of %lld bytes is over this connection's "
          "length limit (%d bytes, SQLITE_LIMIT_LENGTH)", nBlob ? nBlob
          : (sqlite3_int64)(AESQL_MODEL_HEADER + 16*(size_t)nLayer + 4*net.nParam
                            + (data.xf.fill ? 24 : 16)*(size_t)data.xf.d),
          nMax));
      goto done;
    }
  }
  if( interrupted(tc.pPoll) ){ train_interrupted(ctx); goto done; }

  /* Train, listed in ae_progress. */
  memset(&cfg, 0, sizeof(cfg));
  cfg.epochs = o.epochs;
  cfg.batch_size = o.batch_size;
  cfg.validation_split = o.validation_split;
  cfg.shuffle = o.shuffle;
  cfg.seed = (uint64_t)o.seed;
  cfg.learning_rate = o.learning_rate;
  cfg.beta_1 = o.beta_1;
  cfg.beta_2 = o.beta_2;
  cfg.epsilon = o.epsilon;
  cfg.adam = o.adam;
  cfg.l2 = o.l2;
  cfg.dropout = o.dropout;
  cfg.patience = o.patience;
  cfg.min_delta = o.min_delta;
  cfg.restore_best = o.restore_best;
  cfg.threads = o.threads;
  tc.run = aesql_run_begin(db, zName, zSource, o.epochs,
                           (nTrain + o.batch_size - 1)/o.batch_size);
  tc.progress = o.progress>=0 ? o.progress : isatty(2);
  tc.epochs = o.epochs;
  cb.pArg = &tc;
  cb.xBatch = cb_batch;
  cb.xEpoch = cb_epoch;
  rc = aesql_loop_run(&net, &xd, &cfg, &cb, &res);
  switch( rc ){
    case AESQL_LOOP_OK: break;
    case AESQL_LOOP_NAN:
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: the %sloss "
          "became %s in epoch %d; try a smaller learning_rate (now %g)",
          res.errVal ? "validation " : "", isnan(res.errValue) ? "NaN" : "infinite",
          res.errEpoch, o.learning_rate));
      goto done;
    case AESQL_LOOP_STOPPED:
      if( tc.stop==2 ){
        train_errorf(ctx, SQLITE_INTERRUPT, sqlite3_mprintf("ae_train: "
            "interrupted by the progress hook after epoch %d", res.nEpoch));
      }else{
        train_interrupted(ctx);
      }
      goto done;
    case AESQL_LOOP_NOMEM:
      train_errorf(ctx, SQLITE_NOMEM, sqlite3_mprintf("ae_train: out of memory: "
          "a model of %d inputs and %lld parameters, trained in batches of %d "
          "rows, needs more memory than there is (try a smaller batch_size or "
          "fewer threads)", data.d, (long long)net.nParam, o.batch_size));
      goto done;
    default:
      train_errorf(ctx, SQLITE_ERROR, sqlite3_mprintf("ae_train: cannot train: "
          "%d rows with validation_split %g", data.n, o.validation_split));
      goto done;
  }

  /* Store it, all or nothing. */
  rc = store_model(db, zName, zSource, &o, &data, &net, &res, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }
  /* Handed over, not copied: a copy could fail for want of memory after
  ** the model is committed, and report a stored model as not stored. */
  sqlite3_result_text(ctx, zName, -1, sqlite3_free);
  zName = 0;

done:
  aesql_run_end(tc.run);
  conn->nTraining--;
  aesql_source_close(&src);
  sqlite3_finalize(tc.pPoll);
  sqlite3_free(zErr);
  sqlite3_free(zName);
  aesql_options_free(&o);
  aesql_nn_mfree(res.aEpoch);
  aesql_net_free(&net);
  aesql_nn_data_free(&xd);
  data_free(&data);
}

/* The connection closes (or ae_train is registered again): its state and
** its progress hook go. */
static void conn_free(void *p){
  aesql_conn *conn = p;
  aesql_progress_forget(conn->db);
  sqlite3_free(conn);
}

int aesql_train_register(sqlite3 *db){
  /* DIRECTONLY: it writes tables and runs the SQL it is given, so a view or
  ** trigger in a database from someone else must not be able to call it.
  ** The per-connection state is freed with the function. */
  aesql_conn *conn = sqlite3_malloc(sizeof(*conn));
  int rc;
  if( !conn ) return SQLITE_NOMEM;
  memset(conn, 0, sizeof(*conn));
  conn->db = db;
  rc = sqlite3_create_function_v2(db, "ae_train", 2, SQLITE_UTF8|SQLITE_DIRECTONLY,
                                  conn, ae_train_func, 0, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function_v2(db, "ae_train", 3, SQLITE_UTF8|SQLITE_DIRECTONLY,
                                    conn, ae_train_func, 0, 0, conn_free);
  }else{
    sqlite3_free(conn);
  }
  return rc;
}
