/*
** ae_scores(model, source): scores every row of a table, view or query in
** one pass, the batched counterpart of ae_error().
**
**   SELECT key, error FROM ae_scores('mnist_train_32', 'mnist_test');
**   SELECT avg(error) FROM ae_scores('m', 'SELECT pixels FROM t WHERE class=1');
**
** Columns: key (the source table's rowid; for a view or a query, the
** 1-based row number in the order the rows come) and error (as ae_error()).
** Rows are read in blocks and scored by all the cores the BLAS uses.
**
** DIRECTONLY: the source may be any SELECT, which runs as top-level SQL,
** so a view or trigger in a database from someone else must not call it.
*/
#include "ae_score.h"
#include "ae_source.h"
#include "ae_blas.h"

#include <pthread.h>
#include <string.h>

#define SCORES_BLOCK 4096   /* rows read and scored at a time */
#define SCORES_MAXTHREADS 16

enum { COL_KEY, COL_ERROR, COL_MODEL, COL_SOURCE };

typedef struct scores_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
} scores_vtab;

typedef struct scores_cursor {
  sqlite3_vtab_cursor base;
  aesql_model *m;
  sqlite3_stmt *pSrc;
  int hasRowid;
  int srcDone;               /* the source statement returned SQLITE_DONE */
  int eof;
  sqlite3_int64 nRead;       /* rows read from the source so far */
  int nBlock, iBlock;        /* rows in the block, current one */
  sqlite3_int64 *aKey;       /* SCORES_BLOCK keys */
  double *aErr;              /* SCORES_BLOCK errors */
  unsigned char *aPix;       /* SCORES_BLOCK rows of pixels */
  float *aWork;              /* scratch per thread */
  int nThread;
  size_t rowBytes;
} scores_cursor;

static int scoresConnect(sqlite3 *db, void *pAux, int argc,
                         const char *const*argv, sqlite3_vtab **ppVtab,
                         char **pzErr){
  scores_vtab *p;
  int rc;
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(key INTEGER, error REAL, "
                            "model HIDDEN, source HIDDEN)");
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  p = sqlite3_malloc(sizeof(*p));
  if( !p ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int scoresDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static int scoresOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  scores_cursor *c = sqlite3_malloc(sizeof(*c));
  (void)pVtab;
  if( !c ) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  c->eof = 1;
  *ppCur = &c->base;
  return SQLITE_OK;
}

static void scoresReset(scores_cursor *c){
  aesql_model_free(c->m);
  c->m = 0;
  sqlite3_finalize(c->pSrc);
  c->pSrc = 0;
  sqlite3_free(c->aKey); c->aKey = 0;
  sqlite3_free(c->aErr); c->aErr = 0;
  sqlite3_free(c->aPix); c->aPix = 0;
  sqlite3_free(c->aWork); c->aWork = 0;
  c->nRead = 0;
  c->nBlock = c->iBlock = 0;
  c->srcDone = 0;
  c->eof = 1;
}

static int scoresClose(sqlite3_vtab_cursor *cur){
  scoresReset((scores_cursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

typedef struct score_job {
  scores_cursor *c;
  int i0, i1;
  float *work;
} score_job;

static void *score_range(void *pArg){
  score_job *j = pArg;
  int i;
  for(i=j->i0; i<j->i1; i++){
    j->c->aErr[i] = aesql_score_error(j->c->m,
                        j->c->aPix + (size_t)i*j->c->rowBytes, j->work);
  }
  return 0;
}

/* Reads and scores the next block of rows. */
static int scoresFill(scores_cursor *c){
  sqlite3_vtab *pVtab = c->base.pVtab;
  int n = 0, rc = SQLITE_OK, t, col = c->hasRowid ? 1 : 0;
  if( c->srcDone ){ c->nBlock = 0; c->eof = 1; return SQLITE_OK; }
  while( n<SCORES_BLOCK && (rc = sqlite3_step(c->pSrc))==SQLITE_ROW ){
    int nb = sqlite3_column_bytes(c->pSrc, col);
    t = sqlite3_column_type(c->pSrc, col);
    c->nRead++;
    if( t!=SQLITE_BLOB || (size_t)nb!=c->rowBytes ){
      sqlite3_free(pVtab->zErrMsg);
      pVtab->zErrMsg = sqlite3_mprintf("ae_scores: row %lld of the source has "
          "%s pixels; model '%s' takes BLOBs of %d bytes", c->nRead,
          t==SQLITE_BLOB ? "a wrong number of" : t==SQLITE_NULL ? "NULL" : "non-BLOB",
          c->m->zName, (int)c->rowBytes);
      return SQLITE_ERROR;
    }
    memcpy(c->aPix + (size_t)n*c->rowBytes, sqlite3_column_blob(c->pSrc, col), nb);
    c->aKey[n] = c->hasRowid ? sqlite3_column_int64(c->pSrc, 0) : c->nRead;
    n++;
  }
  if( rc==SQLITE_DONE ) c->srcDone = 1;
  if( rc!=SQLITE_ROW && rc!=SQLITE_DONE ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: cannot read the source: %s",
                                     sqlite3_errmsg(sqlite3_db_handle(c->pSrc)));
    return rc;
  }
  if( n>0 ){
    pthread_t th[SCORES_MAXTHREADS];
    score_job job[SCORES_MAXTHREADS];
    int k, nT = c->nThread, started[SCORES_MAXTHREADS];
    size_t wf = aesql_score_work_floats(c->m);
    if( n < 256 ) nT = 1;   /* not worth a thread */
    for(k=0; k<nT; k++){
      job[k].c = c;
      job[k].i0 = (int)((long long)n*k/nT);
      job[k].i1 = (int)((long long)n*(k+1)/nT);
      job[k].work = c->aWork + wf*k;
      started[k] = k>0 && pthread_create(&th[k], 0, score_range, &job[k])==0;
      if( k>0 && !started[k] ) score_range(&job[k]);
    }
    score_range(&job[0]);
    for(k=1; k<nT; k++) if( started[k] ) pthread_join(th[k], 0);
  }
  c->nBlock = n;
  c->iBlock = 0;
  c->eof = n==0;
  return SQLITE_OK;
}

static int scoresFilter(sqlite3_vtab_cursor *cur, int idxNum,
                        const char *idxStr, int argc, sqlite3_value **argv){
  scores_cursor *c = (scores_cursor*)cur;
  sqlite3_vtab *pVtab = cur->pVtab;
  sqlite3 *db = ((scores_vtab*)pVtab)->db;
  const char *zModel, *zSource;
  char *zErr = 0;
  int rc;
  (void)idxNum; (void)idxStr;
  scoresReset(c);
  if( argc<2 ) return SQLITE_ERROR;  /* xBestIndex guarantees both */
  zModel = (const char*)sqlite3_value_text(argv[0]);
  zSource = (const char*)sqlite3_value_text(argv[1]);
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT
   || sqlite3_value_type(argv[1])!=SQLITE_TEXT ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: takes a model name and a "
        "source (table name or SELECT), both as text");
    return SQLITE_ERROR;
  }
  rc = aesql_model_load(db, zModel, &c->m, &zErr);
  if( rc==SQLITE_OK ){
    rc = aesql_source_prepare(db, zSource, 1, &c->pSrc, &c->hasRowid, 0, &zErr);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: %s", zErr ? zErr : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    return rc==SQLITE_NOMEM ? rc : SQLITE_ERROR;
  }
  c->rowBytes = (size_t)c->m->nn.d * aesql_dtype_size(c->m->dtype);
  c->nThread = aesql_blas_load(0)==0 ? aesql_blas_threads() : 1;
  if( c->nThread<1 ) c->nThread = 1;
  if( c->nThread>SCORES_MAXTHREADS ) c->nThread = SCORES_MAXTHREADS;
  c->aKey = sqlite3_malloc64(sizeof(sqlite3_int64)*SCORES_BLOCK);
  c->aErr = sqlite3_malloc64(sizeof(double)*SCORES_BLOCK);
  c->aPix = sqlite3_malloc64(c->rowBytes*SCORES_BLOCK);
  c->aWork = sqlite3_malloc64(sizeof(float)*aesql_score_work_floats(c->m)*c->nThread);
  if( !c->aKey || !c->aErr || !c->aPix || !c->aWork ) return SQLITE_NOMEM;
  return scoresFill(c);
}

static int scoresNext(sqlite3_vtab_cursor *cur){
  scores_cursor *c = (scores_cursor*)cur;
  if( ++c->iBlock < c->nBlock ) return SQLITE_OK;
  return scoresFill(c);
}

static int scoresEof(sqlite3_vtab_cursor *cur){
  return ((scores_cursor*)cur)->eof;
}

static int scoresColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  scores_cursor *c = (scores_cursor*)cur;
  switch( i ){
    case COL_KEY:   sqlite3_result_int64(ctx, c->aKey[c->iBlock]); break;
    case COL_ERROR: sqlite3_result_double(ctx, c->aErr[c->iBlock]); break;
    default: break;  /* the hidden arguments read back as NULL */
  }
  return SQLITE_OK;
}

static int scoresRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  scores_cursor *c = (scores_cursor*)cur;
  *pRowid = c->nRead - c->nBlock + c->iBlock + 1;
  return SQLITE_OK;
}

/* Both hidden arguments must be given, as equality constraints. */
static int scoresBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  int i, iModel = -1, iSource = -1;
  for(i=0; i<p->nConstraint; i++){
    const struct sqlite3_index_constraint *k = &p->aConstraint[i];
    if( k->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( k->iColumn==COL_MODEL ){ if( !k->usable ) return SQLITE_CONSTRAINT; iModel = i; }
    if( k->iColumn==COL_SOURCE ){ if( !k->usable ) return SQLITE_CONSTRAINT; iSource = i; }
  }
  if( iModel<0 || iSource<0 ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: takes two arguments, "
        "ae_scores(model, source)");
    return SQLITE_ERROR;
  }
  p->aConstraintUsage[iModel].argvIndex = 1;
  p->aConstraintUsage[iModel].omit = 1;
  p->aConstraintUsage[iSource].argvIndex = 2;
  p->aConstraintUsage[iSource].omit = 1;
  p->estimatedCost = 1e6;
  p->estimatedRows = 100000;
  return SQLITE_OK;
}

static sqlite3_module scoresModule = {
  0,                 /* iVersion */
  0,                 /* xCreate: eponymous only */
  scoresConnect,
  scoresBestIndex,
  scoresDisconnect,
  0,                 /* xDestroy */
  scoresOpen,
  scoresClose,
  scoresFilter,
  scoresNext,
  scoresEof,
  scoresColumn,
  scoresRowid,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};

int aesql_scores_register(sqlite3 *db){
  return sqlite3_create_module(db, "ae_scores", &scoresModule, 0);
}
