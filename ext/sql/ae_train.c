/*
** ae_train(source, hidden [, options]): trains the tutorial's autoencoder
** on the pixels of a table, view or SELECT, and stores it in ae_models and
** ae_history (ae_model.h). Returns the model's name.
**
** Keras semantics, as the tutorial's fit() call has them: the last
** validation_split of the rows, in source order, are held out before any
** shuffling; the training rows are reshuffled every epoch; an epoch's loss
** is the mean over its rows of the per-row loss, val_loss the same over the
** held-out rows with the weights at the end of the epoch.
**
** All or nothing: the model trains in memory and is written at the end in
** one transaction (ae_store.h says which), so an error or an interrupt
** leaves no trace; what cannot be stored is found before training.
*/
#include "ae_model.h"
#include "../core/ae_blas.h"
#include "../core/ae_fit.h"
#include "ae_source.h"
#include "ae_store.h"
#include "ae_progress.h"
#include "ae_calib.h"
#include "ae_score.h"

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

typedef struct train_opts {
  int epochs;
  int batch_size;
  double validation_split;
  double learning_rate, beta_1, beta_2, epsilon;
  double false_alarm_rate;  /* the default of ae_threshold & co (ae_calib.h) */
  sqlite3_int64 seed;
  int threads;          /* training threads; 0: one per core (ae_fit.h) */
  int shuffle;
  int progress;         /* 1, 0, or -1: when stderr is a terminal */
  int replace;
  int dtype;            /* AESQL_U8 or AESQL_F32 */
  char *zName;          /* sqlite3_malloc'd, or NULL for the default */
} train_opts;

/* The training data, held compactly in its own encoding. */
typedef struct train_data {
  int d;                /* pixels per row */
  int n;                /* rows */
  int dtype;
  unsigned char *u8;    /* n x d bytes, when dtype is AESQL_U8 */
  float *f32;           /* n x d floats, when AESQL_F32 */
  size_t nAlloc;        /* rows allocated */
} train_data;

static double now_seconds(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

/* A seed for a training that was given none, from the system's entropy
** (two trainings in the same second differ); stored with the model's
** options so that it can be trained again bit for bit. */
static sqlite3_int64 random_seed(void){
  uint64_t v = 0;
  if( getrandom(&v, sizeof(v), GRND_NONBLOCK)!=(ssize_t)sizeof(v) ){
    /* No getrandom (old kernel, seccomp): /dev/urandom, else the clock. */
    int fd = open("/dev/urandom", O_RDONLY|O_CLOEXEC);
    if( fd<0 || read(fd, &v, sizeof(v))!=(ssize_t)sizeof(v) ){
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      v = (uint64_t)t.tv_sec*1000000007u ^ (uint64_t)t.tv_nsec ^ ((uint64_t)getpid()<<32)
        ^ (uint64_t)(uintptr_t)&t;
    }
    if( fd>=0 ) close(fd);
  }
  return (sqlite3_int64)(v & 0x7fffffffffffffffull);
}

/* ---- options ---- */

/* An option's name as quoted in an error: cut when very long. */
#define OPT_KEY_SHOWN 40
static int opt_error(sqlite3_context *ctx, const char *zKey, const char *zWhat){
  char *z = sqlite3_mprintf("ae_train: option '%.*s%s' %s", OPT_KEY_SHOWN, zKey,
                            strlen(zKey)>OPT_KEY_SHOWN ? "..." : "", zWhat);
  sqlite3_result_error(ctx, z, -1);
  sqlite3_free(z);
  return 1;
}

/* Does JSON text z hold an escaped NUL, \u0000, in a string? */
static int json_has_nul(const char *z){
  int inStr = 0;
  for(; z && *z; z++){
    if( *z=='"' ) inStr = !inStr;
    else if( inStr && *z=='\\' ){
      if( z[1]=='u' && strncmp(z+2, "0000", 4)==0 ) return 1;
      if( z[1] ) z++;   /* the escaped character */
    }
  }
  return 0;
}

/* Parses the JSON options into *o, after filling it with the defaults.
** The options are strict JSON (RFC 8259) on every SQLite version: JSON5
** ('{epochs: 1}'), which SQLite 3.42+ would accept and 3.40 refuses, is
** refused everywhere, so that a script means the same on all of them.
** Returns non-zero after setting an error on ctx. */
static int parse_options(sqlite3_context *ctx, sqlite3 *db,
                         sqlite3_value *pJson, train_opts *o){
  sqlite3_stmt *st = 0;
  int rc, bad = 0;
  char azSeen[16][24];   /* the options seen so far */
  int nSeen = 0;
  memset(o, 0, sizeof(*o));
  o->epochs = 50;
  o->batch_size = 256;
  o->validation_split = 0.2;
  o->learning_rate = 0.001;
  o->beta_1 = 0.9;
  o->beta_2 = 0.999;
  o->epsilon = 1e-7;
  o->false_alarm_rate = AESQL_DEFAULT_RATE;
  o->seed = -1;
  o->shuffle = 1;
  o->progress = -1;
  o->dtype = AESQL_U8;
  if( pJson && sqlite3_value_type(pJson)!=SQLITE_NULL ){
    if( sqlite3_value_type(pJson)!=SQLITE_TEXT ){
      sqlite3_result_error(ctx, "ae_train: options must be JSON text, e.g. "
                           "'{\"epochs\": 10}'", -1);
      return 1;
    }
    rc = sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1)='object'",
                            -1, &st, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_value(st, 1, pJson);
      rc = sqlite3_step(st);
      if( rc==SQLITE_ROW ){
        bad = !sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
      }
    }
    sqlite3_finalize(st);
    st = 0;
    if( bad && rc==SQLITE_OK ){
      /* json_valid() reads out of memory as invalid JSON: ask json_type(),
      ** which raises "malformed JSON" for bad text and SQLITE_NOMEM for
      ** the other; then json_valid() again, in case the first one ran
      ** out of memory only for a moment. */
      rc = sqlite3_prepare_v2(db, "SELECT json_type(?1), json_valid(?1) AND "
                              "json_type(?1)='object'", -1, &st, 0);
      if( rc==SQLITE_OK ){
        sqlite3_bind_value(st, 1, pJson);
        if( sqlite3_step(st)==SQLITE_ROW ) bad = !sqlite3_column_int(st, 1);
        rc = sqlite3_reset(st);
        if( rc!=SQLITE_NOMEM ) rc = SQLITE_OK;
      }
      sqlite3_finalize(st);
      st = 0;
    }
    if( rc!=SQLITE_OK && rc!=SQLITE_ERROR ){
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
      return 1;
    }
    if( bad || rc!=SQLITE_OK ){
      sqlite3_result_error(ctx, "ae_train: options must be a JSON object, "
                           "e.g. '{\"epochs\": 10, \"seed\": 1}' (strict JSON: "
                           "names in double quotes)", -1);
      return 1;
    }
    if( json_has_nul((const char*)sqlite3_value_text(pJson)) ){
      /* SQLite's JSON (3.40) cuts a string at \u0000: a name would be cut. */
      sqlite3_result_error(ctx, "ae_train: options must not contain a NUL "
                           "character (\\u0000)", -1);
      return 1;
    }
    rc = sqlite3_prepare_v2(db, "SELECT key, type, atom, length(CAST(atom AS BLOB)) "
                            "FROM json_each(?1)", -1, &st, 0);
    if( rc!=SQLITE_OK ){
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
      return 1;
    }
    sqlite3_bind_value(st, 1, pJson);
    while( !bad && (rc = sqlite3_step(st))==SQLITE_ROW ){
      const char *k = (const char*)sqlite3_column_text(st, 0);
      int i;
      const char *t = (const char*)sqlite3_column_text(st, 1);
      int isInt, isNum, isBool;
      sqlite3_int64 iv = sqlite3_column_int64(st, 2);
      double dv = sqlite3_column_double(st, 2);
      if( !k ) k = "";
      if( !t ) t = "";
      isInt = strcmp(t, "integer")==0;
      isNum = isInt || strcmp(t, "real")==0;
      isBool = strcmp(t, "true")==0 || strcmp(t, "false")==0;
      /* JSON allows a key twice; an option given twice is a mistake. */
      for(i=0; i<nSeen && strcmp(azSeen[i], k)!=0; i++){}
      if( i<nSeen ){ bad = opt_error(ctx, k, "is given twice"); break; }
      if( nSeen<(int)(sizeof(azSeen)/sizeof(azSeen[0])) && strlen(k)<sizeof(azSeen[0]) ){
        memcpy(azSeen[nSeen++], k, strlen(k)+1);
      }
#define NEED_INT(lo,hi) if( !isInt || iv<(lo) || iv>(hi) ){ \
        char zR[96]; sqlite3_snprintf(sizeof(zR), zR, \
          "must be an integer from %lld to %lld", (long long)(lo), (long long)(hi)); \
        bad = opt_error(ctx, k, zR); break; }
      if( strcmp(k, "epochs")==0 ){ NEED_INT(1, 1000000); o->epochs = (int)iv; }
      else if( strcmp(k, "batch_size")==0 ){ NEED_INT(1, 1<<20); o->batch_size = (int)iv; }
      else if( strcmp(k, "threads")==0 ){ NEED_INT(1, 256); o->threads = (int)iv; }
      else if( strcmp(k, "seed")==0 ){
        NEED_INT(0, 0x7fffffffffffffffLL);
        o->seed = iv;
      }
      else if( strcmp(k, "validation_split")==0 ){
        if( !isNum || !(dv>=0.0 && dv<1.0) ){
          bad = opt_error(ctx, k, "must be a number from 0 up to (not including) 1");
          break;
        }
        o->validation_split = dv;
      }
      else if( strcmp(k, "learning_rate")==0 || strcmp(k, "epsilon")==0 ){
        if( !isNum || !(dv>0.0 && dv<=10.0) ){
          bad = opt_error(ctx, k, "must be a number above 0 and at most 10");
          break;
        }
        if( k[0]=='l' ) o->learning_rate = dv; else o->epsilon = dv;
      }
      else if( strcmp(k, "false_alarm_rate")==0 ){
        if( !isNum || !(dv>0.0 && dv<1.0) ){
          bad = opt_error(ctx, k, "must be a number above 0 and below 1");
          break;
        }
        o->false_alarm_rate = dv;
      }
      else if( strcmp(k, "beta_1")==0 || strcmp(k, "beta_2")==0 ){
        if( !isNum || !(dv>=0.0 && dv<1.0) ){
          bad = opt_error(ctx, k, "must be a number from 0 up to (not including) 1");
          break;
        }
        if( k[5]=='1' ) o->beta_1 = dv; else o->beta_2 = dv;
      }
      else if( strcmp(k, "shuffle")==0 || strcmp(k, "progress")==0
            || strcmp(k, "replace")==0 ){
        int v = t[0]=='t';
        if( !isBool ){ bad = opt_error(ctx, k, "must be true or false"); break; }
        if( k[0]=='s' ) o->shuffle = v;
        else if( k[0]=='p' ) o->progress = v;
        else o->replace = v;
      }
      else if( strcmp(k, "dtype")==0 ){
        const char *v = (const char*)sqlite3_column_text(st, 2);
        if( strcmp(t, "text")!=0 || !v || (strcmp(v, "u8")!=0 && strcmp(v, "f32")!=0) ){
          bad = opt_error(ctx, k, "must be 'u8' (bytes, scaled by 1/255) or "
                                  "'f32' (little-endian float32, as is)");
          break;
        }
        o->dtype = v[0]=='u' ? AESQL_U8 : AESQL_F32;
      }
      else if( strcmp(k, "name")==0 ){
        const char *v = (const char*)sqlite3_column_text(st, 2);
        if( strcmp(t, "text")!=0 || !v || !v[0] ){
          bad = opt_error(ctx, k, "must be a non-empty string");
          break;
        }
        if( (int)strlen(v)!=sqlite3_column_int(st, 3) ){
          bad = opt_error(ctx, k, "must not contain a NUL character");
          break;
        }
        sqlite3_free(o->zName);
        o->zName = sqlite3_mprintf("%s", v);
        if( !o->zName ){ sqlite3_result_error_nomem(ctx); bad = 1; break; }
      }
      else{
        char *z = sqlite3_mprintf("ae_train: unknown option '%.*s%s' (known: "
            "epochs, batch_size, validation_split, learning_rate, beta_1, "
            "beta_2, epsilon, seed, name, threads, shuffle, dtype, progress, "
            "replace, false_alarm_rate)", OPT_KEY_SHOWN, k, strlen(k)>OPT_KEY_SHOWN ? "..." : "");
        if( !z ){ sqlite3_result_error_nomem(ctx); bad = 1; break; }
        sqlite3_result_error(ctx, z, -1);
        sqlite3_free(z);
        bad = 1;
        break;
      }
#undef NEED_INT
    }
    if( !bad && rc!=SQLITE_DONE ){
      rc = sqlite3_reset(st);
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
      bad = 1;
    }
    sqlite3_finalize(st);
    if( bad ) return 1;
  }
  if( o->seed<0 ) o->seed = random_seed();
  return 0;
}

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

static void data_free(train_data *p){
  sqlite3_free(p->u8);
  sqlite3_free(p->f32);
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

typedef struct epoch_rec { double loss, val_loss, seconds; } epoch_rec;

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

/* The reconstruction errors of the held-out rows, in ae_error's units and
** by ae_error's own kernel (so a held-out row's ae_error equals its stored
** error bit for bit), stored as the model's calibration (ae_calib.h). */
static int store_calibration(sqlite3 *db, const char *zName,
                             const train_opts *o, const train_data *data,
                             int nTrain, int nVal, const void *pBlob,
                             int nBlob, char **pzErr){
  aesql_model m;
  double *err = 0;
  float *work = 0;
  int rc, i;
  size_t rowBytes = (size_t)data->d*aesql_dtype_size(data->dtype);
  const unsigned char *rows = data->dtype==AESQL_U8
                            ? data->u8 : (const unsigned char*)data->f32;
  memset(&m, 0, sizeof(m));
  rc = aesql_model_decode(pBlob, nBlob, &m, pzErr);
  if( rc==SQLITE_OK ){
    err = sqlite3_malloc64(sizeof(double)*(size_t)nVal);
    work = sqlite3_malloc64(sizeof(float)*aesql_score_work_floats(&m));
    if( !err || !work ) rc = SQLITE_NOMEM;
  }
  for(i=0; rc==SQLITE_OK && i<nVal; i++){
    err[i] = aesql_score_error(&m, rows + (size_t)(nTrain+i)*rowBytes, work);
  }
  if( rc==SQLITE_OK ){
    rc = aesql_calib_store(db, zName, err, nVal, o->false_alarm_rate,
                           "validation_split");
  }
  sqlite3_free(work);
  sqlite3_free(err);
  aesql_nn_free(&m.nn);
  sqlite3_free(m.pDerived);
  return rc;
}

/* Writes the model and its history, all or nothing (ae_store.h says in
** which transaction). Returns SQLITE_OK or an error with *pzErr set
** (NULL for out of memory and interrupts). */
static int store_model(sqlite3 *db, const char *zName, const char *zSource,
                       const train_opts *o, const train_data *data,
                       int nTrain, int nVal, const aesql_nn *nn,
                       const epoch_rec *hist, double trainSeconds,
                       char **pzErr){
  sqlite3_stmt *st = 0;
  aesql_txn txn;
  void *pBlob;
  int nBlob, rc, e;
  char *zOpts;
  pBlob = aesql_model_encode(nn, o->dtype, &nBlob);
  if( !pBlob ) return SQLITE_NOMEM;
  zOpts = sqlite3_mprintf("{\"epochs\":%d,\"batch_size\":%d,"
      "\"validation_split\":%!.15g,\"learning_rate\":%!.15g,\"beta_1\":%!.15g,"
      "\"beta_2\":%!.15g,\"epsilon\":%!.15g,\"seed\":%lld,\"threads\":%d,"
      "\"shuffle\":%s,\"dtype\":\"%s\",\"false_alarm_rate\":%!.15g}",
      o->epochs, o->batch_size,
      o->validation_split, o->learning_rate, o->beta_1, o->beta_2, o->epsilon,
      o->seed, o->threads ? o->threads : aesql_blas_threads(),
      o->shuffle ? "true" : "false", aesql_dtype_name(o->dtype),
      o->false_alarm_rate);
  if( !zOpts ){ sqlite3_free(pBlob); return SQLITE_NOMEM; }
  rc = aesql_txn_begin(&txn, db, pzErr);
  if( rc!=SQLITE_OK ) goto done_notxn;
  rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.ae_models WHERE name=?1",
                          -1, &st, 0);
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
      "created, weights) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,"
      "strftime('%Y-%m-%d %H:%M:%S','now'),?13)", -1, &st, 0);
  }
  if( rc==SQLITE_OK ){
    if( (rc = bind_check(db, sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC),
                         "name", (sqlite3_int64)strlen(zName), pzErr))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 2, data->d))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 3, nn->h))==SQLITE_OK
     && (rc = sqlite3_bind_text(st, 4, aesql_dtype_name(o->dtype), -1,
                                SQLITE_STATIC))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_text(st, 5, zSource, -1, SQLITE_STATIC),
                         "source text", (sqlite3_int64)strlen(zSource), pzErr))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 6, nTrain))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 7, nVal))==SQLITE_OK
     && (rc = sqlite3_bind_int(st, 8, o->epochs))==SQLITE_OK
     && (rc = sqlite3_bind_double(st, 9, hist[o->epochs-1].loss))==SQLITE_OK
     && (rc = nVal ? sqlite3_bind_double(st, 10, hist[o->epochs-1].val_loss)
                   : sqlite3_bind_null(st, 10))==SQLITE_OK
     && (rc = sqlite3_bind_double(st, 11, trainSeconds))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_text(st, 12, zOpts, -1, SQLITE_STATIC),
                         "options", (sqlite3_int64)strlen(zOpts), pzErr))==SQLITE_OK
     && (rc = bind_check(db, sqlite3_bind_blob(st, 13, pBlob, nBlob, SQLITE_STATIC),
                         "weights BLOB", nBlob, pzErr))==SQLITE_OK ){
      sqlite3_step(st);
    }
    e = sqlite3_finalize(st);
    if( rc==SQLITE_OK ) rc = e;
    st = 0;
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, "INSERT INTO main.ae_history(model, epoch, "
                            "loss, val_loss, seconds) VALUES(?1,?2,?3,?4,?5)",
                            -1, &st, 0);
    for(e=0; rc==SQLITE_OK && e<o->epochs; e++){
      sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, e+1);
      sqlite3_bind_double(st, 3, hist[e].loss);
      if( nVal ) sqlite3_bind_double(st, 4, hist[e].val_loss);
      else sqlite3_bind_null(st, 4);
      sqlite3_bind_double(st, 5, hist[e].seconds);
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
  sqlite3_free(zOpts);
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

static void ae_train_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3 *db = sqlite3_context_db_handle(ctx);
  aesql_conn *conn = sqlite3_user_data(ctx);
  train_opts o;
  train_data data;
  aesql_nn nn;
  aesql_adam adam;
  aesql_nn_data xd;
  aesql_fit *fit = 0;
  aesql_run *run = 0;
  aesql_rng rng;
  sqlite3_stmt *pSrc = 0, *pPoll = 0;
  const char *zSource, *zWhy = 0;
  char *zSrcName = 0, *zName = 0, *zErr = 0;
  uint32_t *idx = 0;
  epoch_rec *hist = 0;
  int hidden, nTrain, nVal, e, i, rc, progress;
  double trainSeconds = 0;

  memset(&data, 0, sizeof(data));
  memset(&nn, 0, sizeof(nn));
  memset(&adam, 0, sizeof(adam));
  memset(&xd, 0, sizeof(xd));
  memset(&o, 0, sizeof(o));

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
  rc = sqlite3_prepare_v2(db, "SELECT 1", -1, &pPoll, 0);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, 0); goto done; }
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT ){
    sqlite3_result_error(ctx, "ae_train: the source must be a table name or a "
                         "SELECT statement, as text", -1);
    goto done;
  }
  zSource = (const char*)sqlite3_value_text(argv[0]);
  if( !zSource ){ sqlite3_result_error_nomem(ctx); goto done; }
  if( sqlite3_value_type(argv[1])!=SQLITE_INTEGER
   || sqlite3_value_int64(argv[1])<1
   || sqlite3_value_int64(argv[1])>AESQL_MAX_HIDDEN ){
    const char *zGot = (const char*)sqlite3_value_text(argv[1]);
    char *z = sqlite3_mprintf("ae_train: hidden must be an integer from 1 to %d "
                              "(the tutorial uses 32), got '%.40s'", AESQL_MAX_HIDDEN,
                              zGot ? zGot : "NULL");
    if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    goto done;
  }
  hidden = sqlite3_value_int(argv[1]);
  if( parse_options(ctx, db, argc>2 ? argv[2] : 0, &o) ) goto done;
  if( (rc = aesql_blas_load(&zWhy))!=SQLITE_OK ){
    train_error(ctx, db, rc, zWhy);    /* SQLITE_NOMEM: "out of memory" */
    goto done;
  }

  /* The source, the model's name, and whether it can be stored: what
  ** would fail at the end fails now, before any training. */
  rc = aesql_source_prepare(db, zSource, 0, &pSrc, 0, &zSrcName, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }
  zName = o.zName ? sqlite3_mprintf("%s", o.zName)
                  : sqlite3_mprintf("%s_%d", zSrcName ? zSrcName : "query", hidden);
  if( !zName ){ sqlite3_result_error_nomem(ctx); goto done; }
  rc = aesql_store_precheck(db, zName, o.replace, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }

  /* Read the data. */
  if( read_source(ctx, pSrc, o.dtype, &data) ) goto done;
  sqlite3_finalize(pSrc);
  pSrc = 0;
  if( data.n==0 ){
    char *z = sqlite3_mprintf("ae_train: source '%s' has no rows", zSource);
    if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    goto done;
  }
  nTrain = (int)floor(data.n*(1.0 - o.validation_split));
  nVal = data.n - nTrain;
  if( nTrain<1 ){
    char *z = sqlite3_mprintf("ae_train: no rows left to train on: %d rows with "
                              "validation_split %g", data.n, o.validation_split);
    if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    goto done;
  }
  if( interrupted(pPoll) ){ train_interrupted(ctx); goto done; }

  /* Set up the model, the optimiser, the index of non-zero pixels and the
  ** trainer: its threads and their scratch space (ae_fit.h). The thread
  ** count it settles on goes into the stored options, for the record: the
  ** model does not depend on it. */
  aesql_nn_data_init(&xd, data.d, (size_t)data.n, data.u8, data.f32);
  if( aesql_nn_alloc(&nn, data.d, hidden)
   || aesql_adam_init(&adam, aesql_nn_nparam(data.d, hidden),
                      (float)o.learning_rate, (float)o.beta_1, (float)o.beta_2,
                      (float)o.epsilon)
   || aesql_nn_data_index(&xd, AESQL_NN_SPARSE_AUTO)
   || !(idx = sqlite3_malloc64(sizeof(uint32_t)*(size_t)data.n))
   || !(hist = sqlite3_malloc64(sizeof(epoch_rec)*(size_t)o.epochs)) ){
    sqlite3_result_error_nomem(ctx);
    goto done;
  }
  if( interrupted(pPoll) ){ train_interrupted(ctx); goto done; }
  if( !(fit = aesql_fit_new(&nn, &adam, &xd, o.batch_size, o.threads)) ){
    char *z = sqlite3_mprintf("ae_train: out of memory: a model of %d inputs "
        "and %d hidden units, trained in batches of %d rows, needs more memory "
        "than there is (try a smaller batch_size or fewer threads)",
        data.d, hidden, o.batch_size);
    if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_result_error_code(ctx, SQLITE_NOMEM);
    sqlite3_free(z);
    goto done;
  }
  o.threads = aesql_fit_threads(fit);
  for(i=nTrain; i<data.n; i++) idx[i] = (uint32_t)i;  /* held out, in order */
  aesql_rng_seed(&rng, (uint64_t)o.seed);
  aesql_nn_glorot(&nn, &rng);
  progress = o.progress>=0 ? o.progress : isatty(2);
  if( interrupted(pPoll) ){ train_interrupted(ctx); goto done; }

  /* Train, listed in ae_progress. */
  run = aesql_run_begin(db, zName, zSource, o.epochs,
                        (nTrain + o.batch_size - 1)/o.batch_size);
  for(e=0; e<o.epochs; e++){
    double tE = now_seconds(), sum = 0;
    int b;
    for(i=0; i<nTrain; i++) idx[i] = (uint32_t)i;
    if( o.shuffle ) aesql_rng_shuffle(&rng, idx, (uint32_t)nTrain);
    for(b=0; b<nTrain; b+=o.batch_size){
      int n = nTrain-b < o.batch_size ? nTrain-b : o.batch_size;
      double l = aesql_fit_grad(fit, idx+b, n);
      if( !isfinite(l) ){
        char *z = sqlite3_mprintf("ae_train: the loss became %s in epoch %d; "
                                  "try a smaller learning_rate (now %g)",
                                  isnan(l) ? "NaN" : "infinite", e+1, o.learning_rate);
        if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
        sqlite3_result_error(ctx, z, -1);
        sqlite3_free(z);
        goto done;
      }
      aesql_fit_step(fit);
      sum += l*n;
      aesql_run_batch(run, e+1, b/o.batch_size + 1, sum/(b+n));
      if( interrupted(pPoll) ){ train_interrupted(ctx); goto done; }
    }
    hist[e].loss = sum/nTrain;
    hist[e].val_loss = aesql_fit_loss(fit, idx+nTrain, nVal);
    hist[e].seconds = now_seconds() - tE;
    trainSeconds += hist[e].seconds;
    if( nVal && !isfinite(hist[e].val_loss) ){
      char *z = sqlite3_mprintf("ae_train: the validation loss became %s in "
                                "epoch %d; try a smaller learning_rate (now %g)",
                                isnan(hist[e].val_loss) ? "NaN" : "infinite",
                                e+1, o.learning_rate);
      if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
      sqlite3_result_error(ctx, z, -1);
      sqlite3_free(z);
      goto done;
    }
    if( aesql_run_epoch(run, e+1, hist[e].loss, nVal ? hist[e].val_loss : NAN,
                        hist[e].seconds) ){
      char *z = sqlite3_mprintf("ae_train: interrupted by the progress hook "
                                "after epoch %d", e+1);
      if( !z ){ sqlite3_result_error_nomem(ctx); goto done; }
      sqlite3_result_error(ctx, z, -1);
      sqlite3_result_error_code(ctx, SQLITE_INTERRUPT);
      sqlite3_free(z);
      goto done;
    }
    if( progress ){
      double eta = trainSeconds/(e+1)*(o.epochs-e-1);
      if( nVal ){
        fprintf(stderr, "Epoch %d/%d - %.2fs - loss: %.4f - val_loss: %.4f - ETA %.1fs\n",
                e+1, o.epochs, hist[e].seconds, hist[e].loss, hist[e].val_loss, eta);
      }else{
        fprintf(stderr, "Epoch %d/%d - %.2fs - loss: %.4f - ETA %.1fs\n",
                e+1, o.epochs, hist[e].seconds, hist[e].loss, eta);
      }
    }
  }
  aesql_fit_free(fit);         /* its threads are done before we store */
  fit = 0;

  /* Store it, all or nothing. */
  rc = store_model(db, zName, zSource, &o, &data, nTrain, nVal, &nn, hist,
                   trainSeconds, &zErr);
  if( rc!=SQLITE_OK ){ train_error(ctx, db, rc, zErr); goto done; }
  /* Handed over, not copied: a copy could fail for want of memory after
  ** the model is committed, and report a stored model as not stored. */
  sqlite3_result_text(ctx, zName, -1, sqlite3_free);
  zName = 0;

done:
  aesql_fit_free(fit);         /* first: stops its threads */
  aesql_run_end(run);
  conn->nTraining--;
  sqlite3_finalize(pSrc);
  sqlite3_finalize(pPoll);
  sqlite3_free(zErr);
  sqlite3_free(zSrcName);
  sqlite3_free(zName);
  sqlite3_free(o.zName);
  sqlite3_free(idx);
  sqlite3_free(hist);
  aesql_adam_free(&adam);
  aesql_nn_free(&nn);
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
