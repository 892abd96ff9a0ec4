/*
** libFuzzer target: the options of ae_train, reached through SQL as a user
** reaches them: an in-memory database with a tiny table t, and
**
**   SELECT ae_train('t', 2, ?1)      with ?1 the input, as TEXT
**
**   make fuzz
**   build/fuzz/fuzz_options tests/fuzz/corpus/fuzz_options
**
** t holds 12 rows of 4 bytes, each row the little-endian float32 of a
** small number, so that both encodings train: u8 (4 pixels) and
** "dtype": "f32" (1 pixel). An input that asks for a million epochs or
** rows by the million is stopped by the progress handler, which ae_train
** sees when it polls for interrupts (every batch): it interrupts after
** FZ_BUDGET calls, so that every input runs in milliseconds.
**
** Every input must end in a model name or a clean error: an error message
** in the style of the project (it starts with "ae_train: " or is SQLite's
** "interrupted" / "out of memory"), the connection out of any transaction,
** and a model stored wholly (its ae_models row and one ae_history row per
** epoch) or not at all.
*/
#include <sqlite3.h>
#include "../../include/aesql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_BUDGET 200    /* progress callbacks before an interrupt */

static int fz_calls;
static int fz_progress(void *p){
  (void)p;
  return ++fz_calls > FZ_BUDGET;
}

static sqlite3 *fz_open(void){
  static const float av[12] = { 0.5f, 0.25f, 1.0f, 0.0f, 0.75f, 0.125f,
                                2.0f, 0.375f, 0.0625f, 1.5f, 0.625f, 0.875f };
  sqlite3 *db = 0;
  sqlite3_stmt *st = 0;
  char *zErr = 0;
  int i;
  if( sqlite3_open(":memory:", &db)!=SQLITE_OK
   || sqlite3_aesql_init(db, &zErr, 0)!=SQLITE_OK
   || sqlite3_exec(db, "CREATE TABLE t(pixels BLOB)", 0, 0, 0)!=SQLITE_OK
   || sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1)", -1, &st, 0)!=SQLITE_OK ){
    fprintf(stderr, "cannot set up: %s\n", zErr ? zErr : sqlite3_errmsg(db));
    abort();
  }
  for(i=0; i<12; i++){
    sqlite3_bind_blob(st, 1, &av[i], 4, SQLITE_STATIC);   /* little-endian host */
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  return db;
}

/* The single integer the query gives, or -1. */
static long long fz_int(sqlite3 *db, const char *zSql, const char *zName){
  sqlite3_stmt *st = 0;
  long long v = -1;
  if( sqlite3_prepare_v2(db, zSql, -1, &st, 0)==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
    if( sqlite3_step(st)==SQLITE_ROW ) v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size){
  sqlite3 *db = fz_open();
  sqlite3_stmt *st = 0;
  int rc;
  char *zName = 0, *zMsg = 0;

  fz_calls = 0;
  sqlite3_progress_handler(db, 100, fz_progress, 0);
  if( sqlite3_prepare_v2(db, "SELECT ae_train('t', 2, ?1)", -1, &st, 0)!=SQLITE_OK ){
    abort();
  }
  sqlite3_bind_text(st, 1, (const char*)data, (int)size, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){
    const unsigned char *z = sqlite3_column_text(st, 0);
    if( !z || !z[0] ){ fprintf(stderr, "ae_train returned no name\n"); abort(); }
    zName = strdup((const char*)z);
    rc = sqlite3_step(st);
    if( rc!=SQLITE_DONE ){ fprintf(stderr, "a second row\n"); abort(); }
  }else{
    zMsg = strdup(sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  sqlite3_progress_handler(db, 0, 0, 0);

  if( !sqlite3_get_autocommit(db) ){
    fprintf(stderr, "a transaction is left open (%s)\n", zMsg ? zMsg : zName);
    abort();
  }
  if( zName ){
    long long nModel = fz_int(db, "SELECT count(*) FROM ae_models WHERE name=?1", zName);
    long long nEpoch = fz_int(db, "SELECT epochs FROM ae_models WHERE name=?1", zName);
    long long nHist = fz_int(db, "SELECT count(*) FROM ae_history WHERE model=?1", zName);
    long long nAll = fz_int(db, "SELECT count(*) FROM ae_models", zName);
    if( nModel!=1 || nAll!=1 || nEpoch<1 || nHist!=nEpoch ){
      fprintf(stderr, "model '%s' stored in part: %lld rows, %lld epochs, "
              "%lld history rows\n", zName, nModel, nEpoch, nHist);
      abort();
    }
    if( fz_int(db, "SELECT ae_error(?1, pixels) IS NOT NULL FROM t LIMIT 1", zName)!=1 ){
      fprintf(stderr, "model '%s' does not score: %s\n", zName, sqlite3_errmsg(db));
      abort();
    }
  }else{
    /* nothing stored: no table, or no row in it */
    long long nAll = fz_int(db, "SELECT count(*) FROM sqlite_schema WHERE name "
                            "IN ('ae_models', 'ae_history')", "");
    if( nAll!=0 ){
      fprintf(stderr, "failed (%s) but left %lld tables\n", zMsg, nAll);
      abort();
    }
    if( strncmp(zMsg, "ae_train: ", 10)!=0 && strcmp(zMsg, "interrupted")!=0
     && strcmp(zMsg, "out of memory")!=0 ){
      fprintf(stderr, "an error out of style: %s\n", zMsg);
      abort();
    }
    {
      size_t n = strlen(zMsg);
      if( n==0 || zMsg[n-1]=='.' ){
        fprintf(stderr, "an error message ending in a period: %s\n", zMsg);
        abort();
      }
    }
  }
  free(zName);
  free(zMsg);
  if( sqlite3_close(db)!=SQLITE_OK ){ fprintf(stderr, "a statement left\n"); abort(); }
  return 0;
}
