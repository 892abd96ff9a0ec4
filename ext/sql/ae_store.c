/*
** Writing to the model tables (see ae_store.h): checks before training,
** the tables' sanity, and the transaction discipline.
*/
#include "ae_store.h"
#include "ae_model.h"

#include <string.h>
#include <time.h>

static double store_now(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

void aesql_result_sqlite_error(sqlite3_context *ctx, const char *zFunc,
                               const char *zWhat, int rc, sqlite3 *db){
  const char *zMsg;
  char *z;
  if( (rc & 0xff)==SQLITE_NOMEM ){ sqlite3_result_error_nomem(ctx); return; }
  if( (rc & 0xff)==SQLITE_INTERRUPT ){ zMsg = "interrupted"; zWhat = 0; }
  else if( db && sqlite3_errcode(db)==(rc & 0xff) ) zMsg = sqlite3_errmsg(db);
  else zMsg = sqlite3_errstr(rc);
  z = zWhat ? sqlite3_mprintf("%s: %s: %s", zFunc, zWhat, zMsg)
            : sqlite3_mprintf("%s: %s", zFunc, zMsg);
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_result_error_code(ctx, rc);
  sqlite3_free(z);
}

/* ---- the tables' sanity ---- */

static const char *const azModelCols[] = {
  "name", "n_input", "n_hidden", "dtype", "source", "rows_train", "rows_val",
  "epochs", "loss", "val_loss", "train_seconds", "options", "created",
  "weights", 0
};
static const char *const azHistoryCols[] = {
  "model", "epoch", "loss", "val_loss", "seconds", 0
};
static const char *const azCalibCols[] = {
  "model", "rows", "source", "calibrated", "false_alarm_rate", "errors", 0
};

/* Is main.zTab an ordinary table with the columns azCol? *pExists tells
** whether anything named zTab is in main's schema. */
static int store_check_table(sqlite3 *db, const char *zTab,
                             const char *const *azCol, int *pExists,
                             char **pzErr){
  sqlite3_stmt *st = 0;
  int rc, i, isTable = 0;
  char zType[16] = "";
  *pExists = 0;
  rc = sqlite3_prepare_v2(db, "SELECT type, rootpage, sql FROM main.sqlite_schema"
                          " WHERE name=?1 COLLATE NOCASE", -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){
    const char *zT = (const char*)sqlite3_column_text(st, 0);
    *pExists = 1;
    sqlite3_snprintf(sizeof(zType), zType, "%s", zT ? zT : "?");
    /* A virtual table is listed as a table with root page 0. */
    isTable = zT && strcmp(zT, "table")==0 && sqlite3_column_int64(st, 1)>0;
    if( zT && strcmp(zT, "table")==0 && !isTable ){
      sqlite3_snprintf(sizeof(zType), zType, "virtual table");
    }
    rc = SQLITE_OK;
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  if( rc!=SQLITE_OK ) return rc;
  if( !*pExists ) return SQLITE_OK;
  if( !isTable ){
    *pzErr = sqlite3_mprintf("main.%s is a %s, not libaesql's table of models; "
                             "rename it to train and score here", zTab, zType);
    return SQLITE_ERROR;
  }
  /* One pass over the table's columns, marking the expected ones. */
  rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1, 'main')",
                          -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
  {
    unsigned int seen = 0;   /* bit i: azCol[i] is there (at most 32) */
    while( (rc = sqlite3_step(st))==SQLITE_ROW ){
      const char *zCol = (const char*)sqlite3_column_text(st, 0);
      for(i=0; zCol && azCol[i] && i<32; i++){
        if( sqlite3_stricmp(zCol, azCol[i])==0 ) seen |= 1u<<i;
      }
    }
    sqlite3_finalize(st);
    if( rc!=SQLITE_DONE ) return rc;
    for(i=0; azCol[i] && i<32; i++){
      if( !(seen & (1u<<i)) ){
        *pzErr = sqlite3_mprintf("main.%s is not libaesql's table of models: it "
                                 "has no column '%s'", zTab, azCol[i]);
        return SQLITE_ERROR;
      }
    }
  }
  return SQLITE_OK;
}

int aesql_store_check(sqlite3 *db, int *pExists, char **pzErr){
  int rc, hist;
  rc = store_check_table(db, "ae_models", azModelCols, pExists, pzErr);
  if( rc==SQLITE_OK ){
    rc = store_check_table(db, "ae_history", azHistoryCols, &hist, pzErr);
  }
  if( rc==SQLITE_OK ){
    rc = store_check_table(db, "ae_calibration", azCalibCols, &hist, pzErr);
  }
  return rc;
}

/* ---- statements that read the model tables ---- */

/* Does a statement running on db read or write main.ae_models or
** main.ae_history (or their indexes)? Such a statement would see the
** models ae_train stores while it runs, e.g. SELECT ae_train(source, ...)
** FROM ae_models would train its own new models without end. Found from
** the running statements' programs: EXPLAIN lists the tables' root pages
** each one opens, views and subqueries included. */
static int store_reader(sqlite3 *db, int *pFound){
  sqlite3_stmt *st = 0, *p;
  int aRoot[8], nRoot = 0, rc;
  *pFound = 0;
  rc = sqlite3_prepare_v2(db, "SELECT rootpage FROM main.sqlite_schema WHERE "
                          "tbl_name COLLATE NOCASE IN ('ae_models','ae_history','ae_calibration') "
                          "AND rootpage>0", -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    if( nRoot<(int)(sizeof(aRoot)/sizeof(aRoot[0])) ){
      aRoot[nRoot++] = sqlite3_column_int(st, 0);
    }
  }
  sqlite3_finalize(st);
  if( rc!=SQLITE_DONE ) return rc;
  if( nRoot==0 ) return SQLITE_OK;
  for(p=sqlite3_next_stmt(db, 0); p && !*pFound; p=sqlite3_next_stmt(db, p)){
    const char *zSql;
    char *zExplain;
    if( !sqlite3_stmt_busy(p) || sqlite3_stmt_isexplain(p) ) continue;
    zSql = sqlite3_sql(p);
    if( !zSql ) continue;
    zExplain = sqlite3_mprintf("EXPLAIN %s", zSql);
    if( !zExplain ) return SQLITE_NOMEM;
    rc = sqlite3_prepare_v2(db, zExplain, -1, &st, 0);
    sqlite3_free(zExplain);
    if( (rc & 0xff)==SQLITE_NOMEM || (rc & 0xff)==SQLITE_BUSY
     || (rc & 0xff)==SQLITE_LOCKED || (rc & 0xff)==SQLITE_INTERRUPT ){
      return rc;
    }
    if( rc!=SQLITE_OK ) continue;   /* cannot be explained: nothing to see */
    while( !*pFound && (rc = sqlite3_step(st))==SQLITE_ROW ){
      const char *zOp = (const char*)sqlite3_column_text(st, 1);
      int i, iRoot = sqlite3_column_int(st, 3), iDb = sqlite3_column_int(st, 4);
      if( !zOp || iDb!=0 ) continue;
      if( strcmp(zOp, "OpenRead")!=0 && strcmp(zOp, "OpenWrite")!=0
       && strcmp(zOp, "ReopenIdx")!=0 ) continue;
      for(i=0; i<nRoot; i++) if( aRoot[i]==iRoot ) *pFound = 1;
    }
    rc = sqlite3_finalize(st);
    if( rc!=SQLITE_OK && !*pFound ) return rc;
  }
  return SQLITE_OK;
}

sqlite3_stmt *aesql_store_writer(sqlite3 *db){
  sqlite3_stmt *p;
  for(p=sqlite3_next_stmt(db, 0); p; p=sqlite3_next_stmt(db, p)){
    if( sqlite3_stmt_busy(p) && !sqlite3_stmt_readonly(p) ) return p;
  }
  return 0;
}

int aesql_store_precheck(sqlite3 *db, const char *zName, int replace,
                         char **pzErr){
  int rc, exists = 0, reads = 0;
  if( sqlite3_db_readonly(db, "main")==1 ){
    *pzErr = sqlite3_mprintf("the database is read-only, so the model could "
                             "not be stored; open it read-write");
    return SQLITE_READONLY;
  }
  rc = aesql_store_check(db, &exists, pzErr);
  if( rc!=SQLITE_OK ) return rc;
  if( exists && !replace ){
    sqlite3_stmt *st = 0;
    rc = sqlite3_prepare_v2(db, "SELECT 1 FROM main.ae_models WHERE name=?1",
                            -1, &st, 0);
    if( rc!=SQLITE_OK ) return rc;
    sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if( rc==SQLITE_ROW ){
      *pzErr = sqlite3_mprintf("model '%s' already exists; give another "
                               "\"name\" or pass \"replace\": true", zName);
      return SQLITE_ERROR;
    }
    if( rc!=SQLITE_DONE ) return rc;
  }
  rc = store_reader(db, &reads);
  if( rc!=SQLITE_OK ) return rc;
  if( reads ){
    *pzErr = sqlite3_mprintf("the statement that calls ae_train reads "
        "ae_models, ae_history or ae_calibration, so it would see the models "
        "it trains (and "
        "could train its own without end); copy what it needs first, e.g. "
        "CREATE TEMP TABLE todo AS SELECT name, source FROM ae_models, then "
        "train from todo");
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/* ---- transactions ---- */

static int busy_timeout_ms(sqlite3 *db){
  sqlite3_stmt *st = 0;
  int ms = 0;
  if( sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &st, 0)==SQLITE_OK
   && sqlite3_step(st)==SQLITE_ROW ){
    ms = sqlite3_column_int(st, 0);
  }
  sqlite3_finalize(st);
  return ms;
}

/* Runs zSql, again while it fails with SQLITE_BUSY, until the busy
** timeout has passed. SQLite's busy handler waits by itself when no read
** transaction is open; with one open (the calling statement reads) it
** cannot, and we wait here. A stale WAL snapshot cannot be waited out. */
static int exec_waiting(sqlite3 *db, const char *zSql, double *pWaited){
  double t0 = store_now();
  int ms = -1, rc;
  for(;;){
    rc = sqlite3_exec(db, zSql, 0, 0, 0);
    if( rc!=SQLITE_BUSY ) break;
    if( sqlite3_extended_errcode(db)==SQLITE_BUSY_SNAPSHOT ) break;
    if( ms<0 ) ms = busy_timeout_ms(db);
    if( (store_now() - t0)*1000 >= ms ) break;
    {
      struct timespec ts = { 0, 10*1000*1000 };
      nanosleep(&ts, 0);
    }
  }
  *pWaited = store_now() - t0;
  return rc;
}

static char *locked_message(sqlite3 *db, double waited){
  if( sqlite3_extended_errcode(db)==SQLITE_BUSY_SNAPSHOT ){
    return sqlite3_mprintf("database is locked: another connection wrote "
        "since the calling statement began reading; the model was not stored");
  }
  if( waited<0.05 ){
    return sqlite3_mprintf("database is locked; the model was not stored "
        "(PRAGMA busy_timeout = 5000 waits up to 5 s for the lock)");
  }
  return sqlite3_mprintf("database is locked after %.1f s; the model was "
                         "not stored", waited);
}

static void txn_finish(aesql_txn *t){
  sqlite3_finalize(t->pUndo);
  sqlite3_finalize(t->pRelease);
  t->pUndo = t->pRelease = 0;
}

int aesql_txn_begin(aesql_txn *t, sqlite3 *db, char **pzErr){
  double waited = 0;
  int rc;
  memset(t, 0, sizeof(*t));
  t->db = db;
  if( aesql_store_writer(db) ){
    /* Inside a writing statement: its transaction holds the write lock,
    ** and its rollback is the undo. */
    t->mode = AESQL_TXN_STATEMENT;
    t->open = 1;
    rc = sqlite3_exec(db, aesql_model_schema, 0, 0, 0);
  }else if( sqlite3_get_autocommit(db) ){
    t->mode = AESQL_TXN_OWN;
    rc = sqlite3_prepare_v2(db, "ROLLBACK", -1, &t->pUndo, 0);
    if( rc==SQLITE_OK ) rc = exec_waiting(db, "BEGIN IMMEDIATE", &waited);
    if( rc==SQLITE_OK ){
      t->open = 1;
      rc = sqlite3_exec(db, aesql_model_schema, 0, 0, 0);
    }
  }else{
    t->mode = AESQL_TXN_SAVEPOINT;
    rc = sqlite3_prepare_v2(db, "ROLLBACK TO ae_store", -1, &t->pUndo, 0);
    if( rc==SQLITE_OK ) rc = sqlite3_prepare_v2(db, "RELEASE ae_store", -1,
                                                &t->pRelease, 0);
    if( rc==SQLITE_OK ) rc = sqlite3_exec(db, "SAVEPOINT ae_store", 0, 0, 0);
    if( rc==SQLITE_OK ){
      t->open = 1;
      /* Take the write lock now, if the caller's transaction has not: a
      ** write that changes nothing takes it. */
      rc = exec_waiting(db, aesql_model_schema, &waited);
      if( rc==SQLITE_OK ){
        rc = exec_waiting(db, "DELETE FROM main.ae_history WHERE 0", &waited);
      }
    }
  }
  if( rc==SQLITE_OK ) return SQLITE_OK;
  if( (rc & 0xff)==SQLITE_BUSY ) *pzErr = locked_message(db, waited);
  else if( (rc & 0xff)!=SQLITE_NOMEM && (rc & 0xff)!=SQLITE_INTERRUPT ){
    *pzErr = sqlite3_mprintf("cannot store the model: %s", sqlite3_errmsg(db));
  }
  aesql_txn_rollback(t);
  return rc;
}

void aesql_txn_rollback(aesql_txn *t){
  sqlite3 *db = t->db;
  if( t->open ){
    t->open = 0;
    if( t->mode==AESQL_TXN_OWN ){
      /* A failed COMMIT may have rolled back already. Stepping the undo
      ** prepared at the start works even after a failed allocation: the
      ** step fails then, and SQLite rolls the whole transaction back. */
      if( !sqlite3_get_autocommit(db) && t->pUndo ){
        sqlite3_step(t->pUndo);
        sqlite3_reset(t->pUndo);
      }
    }else if( t->mode==AESQL_TXN_SAVEPOINT && t->pUndo && t->pRelease ){
      sqlite3_step(t->pUndo);
      sqlite3_reset(t->pUndo);
      sqlite3_step(t->pRelease);
      sqlite3_reset(t->pRelease);
    }
    /* AESQL_TXN_STATEMENT: the error we return fails the calling
    ** statement, whose rollback undoes our writes with its own. */
  }
  txn_finish(t);
}

int aesql_txn_commit(aesql_txn *t, char **pzErr){
  sqlite3 *db = t->db;
  double waited = 0;
  int rc = SQLITE_OK;
  if( !t->open ) return SQLITE_MISUSE;
  if( t->mode==AESQL_TXN_OWN ){
    rc = exec_waiting(db, "COMMIT", &waited);
  }else if( t->mode==AESQL_TXN_SAVEPOINT ){
    rc = sqlite3_step(t->pRelease);
    rc = sqlite3_reset(t->pRelease);
  }
  if( rc==SQLITE_OK ){
    t->open = 0;
    txn_finish(t);
    return SQLITE_OK;
  }
  if( (rc & 0xff)==SQLITE_BUSY && !*pzErr ) *pzErr = locked_message(db, waited);
  else if( !*pzErr && (rc & 0xff)!=SQLITE_NOMEM && (rc & 0xff)!=SQLITE_INTERRUPT ){
    *pzErr = sqlite3_mprintf("cannot store the model: %s", sqlite3_errmsg(db));
  }
  aesql_txn_rollback(t);
  return rc;
}
