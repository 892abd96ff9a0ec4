/*
** ae_scores(model, source): scores every row of a table, view or query in
** one pass, the batched counterpart of ae_error().
**
**   .load ./libaesql
**   SELECT key, error FROM ae_scores('mnist_train_32', 'mnist_test');
**   SELECT avg(error) FROM ae_scores('m', 'SELECT pixels FROM t WHERE class=1');
**
** Arguments: model, a name in ae_models; source, a table or view name
** ("schema.table" allowed) or a SELECT statement with a pixels column,
** or, for a model of numeric columns (ae_columns.h), with columns of the
** names of its features, found by name (ae_source.h): a table with other
** columns too scores as it is, ae_scores('cells', 'cells'); each row is
** transformed as ae_error transforms its arguments.
** Columns: key (the row's key, as ae_source.h defines it: a table's rowid,
** a query's key or rowid column, else the 1-based row number) and error
** (as ae_error(), bit for bit: the same kernel scores both).
**
** Under a statement that writes (INSERT INTO t SELECT ... FROM
** ae_scores('m', 't')), the source is read whole first (scores_eager), so
** the rows inserted meanwhile are not read back without end.
**
** Pipeline: the statement's thread reads the source in blocks (the first
** one short, so that the first rows come quickly), by chunks of 128 rows:
** it copies a chunk for the worker threads when few chunks wait for them,
** else it scores the chunk itself as it reads it (no copy, the rows still
** in cache); then it returns the previous block, once scored. So the
** workers take what they can and the statement's thread the rest, however
** busy the machine is. A chunk a worker has held too long (a preempted
** worker would stall the pipeline) it scores itself too, and the worker's
** result is dropped.
** Threads: as many as OpenBLAS uses (OPENBLAS_NUM_THREADS; all the cores
** by default), the statement's thread included; the workers start with
** the cursor's first scan and live as long as the cursor, with every
** signal blocked. Only the statement's thread calls SQLite. With one
** thread, each row is scored as it is read.
**
** A bad row (NULL, not a BLOB, wrong length) or a failing source is an
** error when the rows before it have been returned, as if the rows were
** read one at a time.
**
** DIRECTONLY: the source may be any SELECT, which runs as top-level SQL,
** so a view or trigger in a database from someone else must not call it.
*/
#include "ae_score.h"
#include "ae_source.h"
#include "../core/ae_blas.h"
#include "ae_store.h"
#include "ae_calib.h"
#include "ae_columns.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCORES_FIRST      256       /* rows in the first block           */
#define SCORES_ROWS       4096      /* rows in the others, at most       */
#define SCORES_BYTES      (8<<20)   /* and bytes of pixels, at most      */
#define SCORES_CHUNK      128       /* rows a thread scores at a time    */
#define SCORES_MAXTHREADS 16
#define SCORES_BACKLOG    2         /* chunks waiting per worker, at most */
#ifndef SCORES_PATIENCE             /* -DSCORES_PATIENCE=0: take over at once */
# define SCORES_PATIENCE  500000    /* ns to wait for a worker's chunk   */
#endif

enum { COL_KEY, COL_ERROR, COL_PVALUE, COL_IS_ANOMALY, COL_MODEL, COL_SOURCE,
       COL_RATE };
/* idxNum of xBestIndex: which optional things the scan needs. */
#define SCORES_HAS_RATE  1   /* a third argument, the false-alarm rate      */
#define SCORES_CALIB     2   /* pvalue or is_anomaly is read: a calibration */

typedef struct scores_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
} scores_vtab;

/* A block of rows, read by the statement's thread in chunks of
** SCORES_CHUNK rows, each scored by that thread as it reads it or copied
** for the workers. The counters and states of a queued block are guarded
** by the pool's mutex. */
enum { CHUNK_FREE, CHUNK_TAKEN, CHUNK_DONE };
typedef struct scores_block {
  const aesql_model *m;      /* what scores it, and how wide its rows are */
  size_t rowBytes;
  int n;                     /* rows read into the block                 */
  int filling;               /* still being read                         */
  int nReady;                /* chunks read (scored or to be scored)     */
  int nRowsReady;            /* rows in them                             */
  int nChunk;                /* chunks in all, once read                 */
  int nTaken;                /* chunks below it handed out or skipped    */
  int nDone;                 /* chunks scored                            */
  int nBusy;                 /* workers scoring one of its chunks        */
  int queued;                /* in the pool's queue                      */
  unsigned char *aState;     /* CHUNK_* of each chunk                    */
  int rcEnd;                 /* after the n rows: error (or SQLITE_OK)   */
  char *zErrEnd;             /* its message                              */
  sqlite3_int64 *aKey;
  double *aErr;
  unsigned char *aPix;       /* rows of the chunks for the workers       */
} scores_block;

/* Worker threads of one cursor. */
typedef struct scores_pool scores_pool;
typedef struct scores_worker {
  scores_pool *pPool;
  pthread_t th;
  float *aWork;              /* its scratch                              */
  double aOut[SCORES_CHUNK]; /* a chunk's errors, until they are kept    */
} scores_worker;
struct scores_pool {
  pthread_mutex_t mu;
  pthread_cond_t cvWork;     /* workers: a chunk to score, or quit       */
  pthread_cond_t cvDone;     /* the statement's thread: a chunk is done  */
  scores_block *aQueue[2];   /* blocks with chunks for workers, oldest first */
  int nQueue;
  int nBacklog;              /* chunks handed out and not yet taken      */
  int quit;
  int nThread;               /* workers running                          */
  scores_worker aWorker[SCORES_MAXTHREADS];
};

typedef struct scores_cursor {
  sqlite3_vtab_cursor base;
  aesql_model *m;
  sqlite3_stmt *pSrc;
  int hasKey;                /* the source gives each row's key (ae_source.h) */
  int srcDone;               /* no more reading: end or error reached    */
  int eof;
  size_t rowBytes;
  int nCap;                  /* rows a block holds for this model        */
  int nAllocRows;            /* rows and pixel bytes allocated per block */
  size_t nAllocBytes;
  sqlite3_int64 nRead;       /* rows read from the source so far         */
  sqlite3_int64 iRow;        /* 1-based number of the current row        */
  scores_block aBlk[2];      /* filled in turn                           */
  int iCur;                  /* the block being returned                 */
  int iBlk;                  /* the current row within it                */
  float *aWork;              /* the statement's thread's scratch         */
  float *aRow;               /* a model of numeric columns: a row, read  */
  double aOut[SCORES_CHUNK]; /* the errors of a chunk it takes over      */
  size_t nWork;              /* floats in aWork and in each worker's     */
  scores_pool *pPool;        /* NULL: no workers                         */
  /* Read at once (see scores_eager): */
  int eager;
  sqlite3_int64 nAll, nAllAlloc, iAll;
  sqlite3_int64 *aAllKey;
  double *aAllErr;
  int rcAll;                 /* after the nAll rows: error (or SQLITE_OK) */
  char *zErrAll;
  aesql_calib cal;           /* when pvalue or is_anomaly is read        */
  double rate;               /* the false-alarm rate of is_anomaly       */
} scores_cursor;

/* ---- the pool ---- */

/* Scores rows [i0, i1) of b, from its copy, into out[0 .. i1-i0). */
static void score_rows(const scores_block *b, int i0, int i1, float *work,
                       double *out){
  int i;
  for(i=i0; i<i1; i++){
    out[i-i0] = aesql_score_error(b->m, b->aPix + (size_t)i*b->rowBytes, work);
  }
}

/* The end of chunk iChunk's rows, once it is ready (mutex held, or in the
** statement's thread). */
static int chunk_end(const scores_block *b, int iChunk){
  int i1 = (iChunk+1)*SCORES_CHUNK;
  return i1 < b->nRowsReady ? i1 : b->nRowsReady;
}

/* The next chunk of b for a worker, or -1 (mutex held). */
static int chunk_next(scores_pool *p, scores_block *b){
  while( b->nTaken<b->nReady && b->aState[b->nTaken]==CHUNK_DONE ) b->nTaken++;
  if( b->nTaken>=b->nReady ) return -1;
  p->nBacklog--;
  b->aState[b->nTaken] = CHUNK_TAKEN;
  return b->nTaken++;
}

/* Keeps the errors of chunk iChunk of b, scored into out, unless another
** thread kept them first (mutex held). */
static void chunk_keep(scores_block *b, int iChunk, const double *out){
  if( b->aState[iChunk]==CHUNK_DONE ) return;
  memcpy(b->aErr + iChunk*SCORES_CHUNK, out,
         sizeof(double)*(chunk_end(b, iChunk) - iChunk*SCORES_CHUNK));
  b->aState[iChunk] = CHUNK_DONE;
  b->nDone++;
}

/* A worker: takes the chunks handed out, oldest first. */
static void *pool_main(void *pArg){
  scores_worker *w = pArg;
  scores_pool *p = w->pPool;
  pthread_mutex_lock(&p->mu);
  while( !p->quit ){
    scores_block *b = 0;
    int k, iChunk = -1, i1;
    for(k=0; k<p->nQueue && iChunk<0; k++){
      b = p->aQueue[k];
      iChunk = chunk_next(p, b);
    }
    if( iChunk<0 ){
      pthread_cond_wait(&p->cvWork, &p->mu);
      continue;
    }
    b->nBusy++;
    i1 = chunk_end(b, iChunk);
    pthread_mutex_unlock(&p->mu);
    score_rows(b, iChunk*SCORES_CHUNK, i1, w->aWork, w->aOut);
    pthread_mutex_lock(&p->mu);
    chunk_keep(b, iChunk, w->aOut);
    b->nBusy--;
    pthread_cond_broadcast(&p->cvDone);
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

static void pool_free(scores_pool *p){
  int i;
  if( !p ) return;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->cvWork);
  pthread_mutex_unlock(&p->mu);
  for(i=0; i<p->nThread; i++) pthread_join(p->aWorker[i].th, 0);
  for(i=0; i<SCORES_MAXTHREADS; i++) sqlite3_free(p->aWorker[i].aWork);
  pthread_cond_destroy(&p->cvDone);
  pthread_cond_destroy(&p->cvWork);
  pthread_mutex_destroy(&p->mu);
  sqlite3_free(p);
}

/* Starts up to nWant workers with nWork floats of scratch each; fewer if
** threads cannot be had (none: *pp stays NULL and the statement's thread
** scores alone). */
static int pool_new(int nWant, size_t nWork, scores_pool **pp){
  scores_pool *p;
  sigset_t all, old;
  int i;
  *pp = 0;
  if( nWant>SCORES_MAXTHREADS ) nWant = SCORES_MAXTHREADS;
  p = sqlite3_malloc(sizeof(*p));
  if( !p ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  if( pthread_mutex_init(&p->mu, 0) ){ sqlite3_free(p); return SQLITE_OK; }
  pthread_cond_init(&p->cvWork, 0);
  {
    pthread_condattr_t a;     /* cvDone is waited on with a deadline */
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cvDone, &a);
    pthread_condattr_destroy(&a);
  }
  for(i=0; i<nWant; i++){
    scores_worker *w = &p->aWorker[i];
    w->pPool = p;
    w->aWork = sqlite3_malloc64(sizeof(float)*nWork);
    if( !w->aWork ){ pool_free(p); return SQLITE_NOMEM; }
  }
  /* Workers block every signal: they are the application's to handle. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for(i=0; i<nWant; i++){
    if( pthread_create(&p->aWorker[i].th, 0, pool_main, &p->aWorker[i]) ) break;
    p->nThread++;
  }
  pthread_sigmask(SIG_SETMASK, &old, 0);
  if( p->nThread==0 ){ pool_free(p); return SQLITE_OK; }
  *pp = p;
  return SQLITE_OK;
}

/* ---- blocks ---- */

/* Waits until no worker reads b (one whose chunk was taken over may
** still be at it), before its rows are overwritten or its model freed. */
static void block_quiet(scores_cursor *c, scores_block *b){
  scores_pool *p = c->pPool;
  if( !p ) return;
  pthread_mutex_lock(&p->mu);
  while( b->nBusy>0 ) pthread_cond_wait(&p->cvDone, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

/* Chunk iChunk of b is read: scored already (inline) or for the workers. */
static void chunk_ready(scores_cursor *c, scores_block *b, int iChunk, int inline_){
  scores_pool *p = c->pPool;
  pthread_mutex_lock(&p->mu);
  b->aState[iChunk] = inline_ ? CHUNK_DONE : CHUNK_FREE;
  b->nReady = iChunk + 1;
  b->nRowsReady = b->n;
  if( inline_ ){
    b->nDone++;
  }else{
    p->nBacklog++;
    pthread_cond_signal(&p->cvWork);
  }
  pthread_mutex_unlock(&p->mu);
}

/* The row just read, checked (its key; its pixels, or the features of a
** model of numeric columns, read into c->aRow and transformed): *ppRow
** points to it in the model's encoding, c->rowBytes long. SQLITE_OK, or
** an error with *pzErr (NULL: out of memory) when it cannot be scored. */
static int scores_row_get(scores_cursor *c, const void **ppRow, char **pzErr){
  const int col = c->hasKey ? 1 : 0;
  int iBad, t, nb;
  const void *pPix;
  if( c->hasKey && sqlite3_column_type(c->pSrc, 0)!=SQLITE_INTEGER ){
    *pzErr = sqlite3_mprintf("ae_scores: row %lld of the source has a key "
        "that is not an integer (%s); the key column must hold integers",
        c->nRead, sqlite3_column_type(c->pSrc, 0)==SQLITE_NULL ? "NULL" : "not INTEGER");
    return SQLITE_ERROR;
  }
  if( c->m->nFeature>0 ){
    if( aesql_cols_stmt(c->m, c->pSrc, col, c->nRead, "ae_scores", c->aRow, pzErr) ){
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    *ppRow = c->aRow;
    return SQLITE_OK;
  }
  t = sqlite3_column_type(c->pSrc, col);
  pPix = t==SQLITE_BLOB ? sqlite3_column_blob(c->pSrc, col) : 0;
  nb = sqlite3_column_bytes(c->pSrc, col);
  if( t!=SQLITE_BLOB || (size_t)nb!=c->rowBytes || !pPix ){
    *pzErr = sqlite3_mprintf("ae_scores: row %lld of the source has "
        "%s pixels; model '%s' takes BLOBs of %d bytes", c->nRead,
        t==SQLITE_BLOB ? "a wrong number of" : t==SQLITE_NULL ? "NULL" : "non-BLOB",
        c->m->zName, (int)c->rowBytes);
    return SQLITE_ERROR;
  }
  if( (iBad = aesql_score_nonfinite(c->m, pPix))!=0 ){
    *pzErr = sqlite3_mprintf("ae_scores: row %lld of the source has a pixel "
        "that is not a finite number (pixel %d); every pixel must be one",
        c->nRead, iBad);
    return SQLITE_ERROR;
  }
  if( c->m->xf.d ){
    /* An f32 model with an input transform (made by hand): the row too. */
    if( aesql_cols_vector(c->m, pPix, "ae_scores", c->aRow, 0, pzErr) ){
      return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
    }
    pPix = c->aRow;
  }
  *ppRow = pPix;
  return SQLITE_OK;
}

/* Reads up to nMax rows into b. Each chunk of SCORES_CHUNK rows is copied
** for the workers when fewer than SCORES_BACKLOG chunks per worker wait
** for them, else this thread scores it as it reads it, where SQLite has
** the rows, in cache, without a copy: so the workers get what they can
** take and no more, however much of the machine they really get. Without
** workers, every chunk is scored here. A bad row or a source error ends
** the block and is kept, to be raised once the rows before it are
** returned. */
static void block_fill(scores_cursor *c, scores_block *b, int nMax){
  scores_pool *p = c->pPool;
  int rc = SQLITE_OK, here = 1;
  block_quiet(c, b);
  b->m = c->m;
  b->rowBytes = c->rowBytes;
  b->n = b->nReady = b->nRowsReady = b->nChunk = b->nTaken = b->nDone = 0;
  b->rcEnd = SQLITE_OK;
  sqlite3_free(b->zErrEnd);
  b->zErrEnd = 0;
  if( c->srcDone ) return;
  if( p ){
    pthread_mutex_lock(&p->mu);
    b->filling = 1;
    b->queued = 1;
    p->aQueue[p->nQueue++] = b;
    pthread_mutex_unlock(&p->mu);
  }
  while( b->n<nMax && (rc = sqlite3_step(c->pSrc))==SQLITE_ROW ){
    const void *pPix = 0;
    c->nRead++;
    if( (b->rcEnd = scores_row_get(c, &pPix, &b->zErrEnd))!=SQLITE_OK ) break;
    if( p && b->n%SCORES_CHUNK==0 ){
      pthread_mutex_lock(&p->mu);
      here = p->nBacklog>=SCORES_BACKLOG*p->nThread;
      pthread_mutex_unlock(&p->mu);
    }
    if( here ){
      b->aErr[b->n] = aesql_score_error(c->m, pPix, c->aWork);
    }else{
      memcpy(b->aPix + (size_t)b->n*c->rowBytes, pPix, c->rowBytes);
    }
    b->aKey[b->n] = c->hasKey ? sqlite3_column_int64(c->pSrc, 0) : c->nRead;
    b->n++;
    if( p && b->n%SCORES_CHUNK==0 ) chunk_ready(c, b, b->n/SCORES_CHUNK - 1, here);
  }
  if( b->rcEnd!=SQLITE_OK ){
    c->srcDone = 1;
  }else if( rc==SQLITE_DONE ){
    c->srcDone = 1;
  }else if( rc!=SQLITE_ROW ){
    b->zErrEnd = sqlite3_mprintf("ae_scores: cannot read the source: %s",
                                 sqlite3_errmsg(sqlite3_db_handle(c->pSrc)));
    b->rcEnd = rc;
    c->srcDone = 1;
  }
  if( p ){
    if( b->n%SCORES_CHUNK ) chunk_ready(c, b, b->n/SCORES_CHUNK, here);
    pthread_mutex_lock(&p->mu);
    b->nChunk = b->nReady;
    b->filling = 0;
    pthread_mutex_unlock(&p->mu);
  }
}

/* Returns when every chunk of b is scored, scoring in this thread the
** chunks no worker has taken and, after waiting SCORES_PATIENCE for it,
** one a worker is still on (the system may have preempted the worker: it
** would hold the whole pipeline up; its result, the same, is dropped).
** With cancel, hands out nothing more and returns when no worker is on b.
** Either way b leaves the queue. */
static void block_wait(scores_cursor *c, scores_block *b, int cancel){
  scores_pool *p = c->pPool;
  struct timespec until;
  int k, patient = 0;
  if( !p || !b->queued ) return;
  pthread_mutex_lock(&p->mu);
  if( cancel ){
    for(k=b->nTaken; k<b->nReady; k++) p->nBacklog -= b->aState[k]==CHUNK_FREE;
    b->nTaken = b->nReady;
    while( b->nBusy>0 ) pthread_cond_wait(&p->cvDone, &p->mu);
  }
  while( !cancel && b->nDone<b->nChunk ){
    int iChunk = chunk_next(p, b);
    if( iChunk<0 ){
      if( !patient ){         /* the workers' chunks: wait, up to a point */
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SCORES_PATIENCE;
        if( until.tv_nsec>=1000000000 ){ until.tv_sec++; until.tv_nsec -= 1000000000; }
        patient = 1;
      }
      if( pthread_cond_timedwait(&p->cvDone, &p->mu, &until)==0 ) continue;
      for(k=0; k<b->nTaken && iChunk<0; k++){
        if( b->aState[k]==CHUNK_TAKEN ) iChunk = k;
      }
      if( iChunk<0 ) continue;
      patient = 0;
    }
    pthread_mutex_unlock(&p->mu);
    score_rows(b, iChunk*SCORES_CHUNK, chunk_end(b, iChunk), c->aWork, c->aOut);
    pthread_mutex_lock(&p->mu);
    chunk_keep(b, iChunk, c->aOut);
  }
  for(k=0; k<p->nQueue; k++){
    if( p->aQueue[k]==b ){
      memmove(&p->aQueue[k], &p->aQueue[k+1], sizeof(b)*(p->nQueue-k-1));
      p->nQueue--;
      break;
    }
  }
  b->queued = 0;
  pthread_mutex_unlock(&p->mu);
}

/* Raises the error that ends the rows (*pRc, its message *pzErr, taken):
** a block's, or an eager scan's. */
static int scores_raise(scores_cursor *c, int *pRc, char **pzErr){
  sqlite3_vtab *pVtab = c->base.pVtab;
  int rc = *pRc;
  sqlite3_free(pVtab->zErrMsg);
  pVtab->zErrMsg = *pzErr ? *pzErr : sqlite3_mprintf("%s", sqlite3_errstr(rc));
  *pzErr = 0;
  *pRc = SQLITE_OK;
  c->eof = 1;
  return rc;
}

/* The pipeline's step, when the rows of the current block are returned
** (or, with first, when both blocks have just been read): refills the
** current block, then waits for the other, which becomes current. At the
** end, sets eof or raises the error that ends it. */
static int scoresAdvance(scores_cursor *c, int first){
  scores_block *cur = &c->aBlk[c->iCur];
  if( !first ){
    if( cur->rcEnd!=SQLITE_OK ) return scores_raise(c, &cur->rcEnd, &cur->zErrEnd);
    block_fill(c, cur, c->nCap);   /* empty once the source is done */
    c->iCur ^= 1;
    cur = &c->aBlk[c->iCur];
  }
  block_wait(c, cur, 0);
  c->iBlk = 0;
  if( cur->n==0 ){
    if( cur->rcEnd!=SQLITE_OK ) return scores_raise(c, &cur->rcEnd, &cur->zErrEnd);
    c->eof = 1;
  }
  return SQLITE_OK;
}

/* ---- the virtual table ---- */

static int scoresConnect(sqlite3 *db, void *pAux, int argc,
                         const char *const*argv, sqlite3_vtab **ppVtab,
                         char **pzErr){
  scores_vtab *p;
  int rc;
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(key INTEGER, error REAL, "
                            "pvalue REAL, is_anomaly INTEGER, "
                            "model HIDDEN, source HIDDEN, rate HIDDEN)");
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

/* Stops the scoring in flight and frees what belongs to one scan; the
** pool and the buffers stay for the next. */
static void scoresReset(scores_cursor *c){
  int k;
  for(k=0; k<2; k++){
    scores_block *b = &c->aBlk[k];
    block_wait(c, b, 1);
    block_quiet(c, b);      /* a worker whose chunk was taken over */
    sqlite3_free(b->zErrEnd);
    b->zErrEnd = 0;
    b->rcEnd = SQLITE_OK;
    b->n = 0;
  }
  sqlite3_free(c->aAllKey);
  sqlite3_free(c->aAllErr);
  sqlite3_free(c->zErrAll);
  c->aAllKey = 0;
  c->aAllErr = 0;
  c->zErrAll = 0;
  c->eager = 0;
  c->nAll = c->nAllAlloc = c->iAll = 0;
  c->rcAll = SQLITE_OK;
  aesql_calib_clear(&c->cal);
  aesql_model_free(c->m);
  c->m = 0;
  sqlite3_finalize(c->pSrc);
  c->pSrc = 0;
  c->nRead = c->iRow = 0;
  c->iCur = c->iBlk = 0;
  c->srcDone = 0;
  c->eof = 1;
}

static int scoresClose(sqlite3_vtab_cursor *cur){
  scores_cursor *c = (scores_cursor*)cur;
  int k;
  scoresReset(c);
  pool_free(c->pPool);
  for(k=0; k<2; k++){
    sqlite3_free(c->aBlk[k].aKey);
    sqlite3_free(c->aBlk[k].aErr);
    sqlite3_free(c->aBlk[k].aPix);
    sqlite3_free(c->aBlk[k].aState);
  }
  sqlite3_free(c->aWork);
  sqlite3_free(c->aRow);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* Threads to score with, the statement's own included. */
static int scores_threads(void){
  int n = aesql_blas_load(0)==0 ? aesql_blas_threads() : 0;
  if( n<1 ){
    long k = sysconf(_SC_NPROCESSORS_ONLN);
    n = k>0 ? (int)k : 1;
  }
  return n>SCORES_MAXTHREADS ? SCORES_MAXTHREADS : n;
}

/* Sizes the blocks, the scratch and the pool for the model, keeping
** what is big enough already. */
static int scores_buffers(scores_cursor *c){
  size_t nWork = aesql_score_work_floats(c->m);
  int nCap = (int)(SCORES_BYTES / c->rowBytes), k, nThread;
  if( nCap>SCORES_ROWS ) nCap = SCORES_ROWS;
  if( nCap<1 ) nCap = 1;
  if( nCap>c->nAllocRows || c->rowBytes*nCap>c->nAllocBytes ){
    c->nAllocRows = 0;
    c->nAllocBytes = 0;
    for(k=0; k<2; k++){
      scores_block *b = &c->aBlk[k];
      sqlite3_free(b->aKey); sqlite3_free(b->aErr); sqlite3_free(b->aPix);
      sqlite3_free(b->aState);
      b->aKey = sqlite3_malloc64(sizeof(sqlite3_int64)*nCap);
      b->aErr = sqlite3_malloc64(sizeof(double)*nCap);
      b->aPix = sqlite3_malloc64(c->rowBytes*nCap);
      b->aState = sqlite3_malloc64((nCap + SCORES_CHUNK - 1)/SCORES_CHUNK);
      if( !b->aKey || !b->aErr || !b->aPix || !b->aState ) return SQLITE_NOMEM;
    }
    c->nAllocRows = nCap;
    c->nAllocBytes = c->rowBytes*nCap;
  }
  c->nCap = nCap;
  if( aesql_cols_model(c->m) ){
    sqlite3_free(c->aRow);
    c->aRow = sqlite3_malloc64(sizeof(float)*(size_t)c->m->nn.d);
    if( !c->aRow ) return SQLITE_NOMEM;
  }
  if( nWork>c->nWork ){
    /* Workers get their scratch when they start: a bigger model restarts
    ** them. */
    pool_free(c->pPool);
    c->pPool = 0;
    sqlite3_free(c->aWork);
    c->nWork = 0;
    c->aWork = sqlite3_malloc64(sizeof(float)*nWork);
    if( !c->aWork ) return SQLITE_NOMEM;
    c->nWork = nWork;
  }
  nThread = scores_threads();
  if( c->pPool && c->pPool->nThread!=nThread-1 ){
    pool_free(c->pPool);
    c->pPool = 0;
  }
  if( !c->pPool && nThread>1 ) return pool_new(nThread-1, c->nWork, &c->pPool);
  return SQLITE_OK;
}

/* When the statement that reads ae_scores writes (INSERT INTO t SELECT
** ... FROM ae_scores('m', 't')), the rows it inserts could be read back
** as the scan goes, without end. As SQLite does for INSERT INTO t SELECT
** FROM t, the source is then read whole first: every row that exists
** when the scan starts, and no other, is scored (16 bytes a row kept). */
static int scores_eager(scores_cursor *c){
  int rc;
  while( (rc = sqlite3_step(c->pSrc))==SQLITE_ROW ){
    const void *pPix = 0;
    c->nRead++;
    if( (c->rcAll = scores_row_get(c, &pPix, &c->zErrAll))!=SQLITE_OK ){
      return SQLITE_OK;
    }
    if( c->nAll==c->nAllAlloc ){
      sqlite3_int64 nNew = c->nAllAlloc ? 2*c->nAllAlloc : 1024;
      sqlite3_int64 *aK = sqlite3_realloc64(c->aAllKey, sizeof(*aK)*nNew);
      double *aE;
      if( !aK ) return SQLITE_NOMEM;
      c->aAllKey = aK;
      aE = sqlite3_realloc64(c->aAllErr, sizeof(*aE)*nNew);
      if( !aE ) return SQLITE_NOMEM;
      c->aAllErr = aE;
      c->nAllAlloc = nNew;
    }
    c->aAllKey[c->nAll] = c->hasKey ? sqlite3_column_int64(c->pSrc, 0) : c->nRead;
    c->aAllErr[c->nAll] = aesql_score_error(c->m, pPix, c->aWork);
    c->nAll++;
  }
  if( rc!=SQLITE_DONE ){
    c->rcAll = rc;
    c->zErrAll = sqlite3_mprintf("ae_scores: cannot read the source: %s",
                                 (rc & 0xff)==SQLITE_INTERRUPT ? "interrupted"
                                 : sqlite3_errmsg(sqlite3_db_handle(c->pSrc)));
  }
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
  (void)idxStr;
  scoresReset(c);
  if( argc<2 ) return SQLITE_ERROR;  /* xBestIndex guarantees both */
  zModel = (const char*)sqlite3_value_text(argv[0]);
  zSource = (const char*)sqlite3_value_text(argv[1]);
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT
   || sqlite3_value_type(argv[1])!=SQLITE_TEXT || !zModel || !zSource ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: takes a model name and a "
        "source (table name or SELECT), both as text");
    return SQLITE_ERROR;
  }
  rc = aesql_model_load(db, zModel, &c->m, &zErr);
  if( rc==SQLITE_OK && (idxNum & SCORES_CALIB) ){
    /* A model without a calibration has no p-values: NULL, so that
    ** SELECT * still scores it (ae_pvalue() says why). */
    rc = aesql_calib_load(db, zModel, &c->cal, &zErr);
    if( rc==SQLITE_NOTFOUND ){ sqlite3_free(zErr); zErr = 0; rc = SQLITE_OK; }
    c->rate = c->cal.rate;
  }
  if( rc==SQLITE_OK && (idxNum & SCORES_HAS_RATE) ){
    rc = aesql_calib_rate_check(argv[2], &c->rate, &zErr);
  }
  if( rc==SQLITE_OK ){
    /* The pixels, or a model of numeric columns' columns, by name. */
    aesql_source src;
    rc = aesql_source_open(db, zSource, c->m->nFeature>0 ? AESQL_SOURCE_NAMED
                           : AESQL_SOURCE_PIXELS, 1, c->m->nFeature,
                           c->m->azFeature, &src, &zErr);
    c->pSrc = src.pStmt;
    c->hasKey = src.hasKey;
    src.pStmt = 0;
    aesql_source_close(&src);
  }
  if( rc==SQLITE_NOTFOUND || rc==SQLITE_CORRUPT ) rc = SQLITE_ERROR;
  if( rc!=SQLITE_OK ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("ae_scores: %s", zErr ? zErr :
                                     (rc & 0xff)==SQLITE_INTERRUPT ? "interrupted"
                                     : sqlite3_errcode(db)==(rc & 0xff)
                                     ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_free(zErr);
    return rc;
  }
  c->rowBytes = (size_t)c->m->nn.d * aesql_dtype_size(c->m->dtype);
  rc = scores_buffers(c);
  if( rc!=SQLITE_OK ) return rc;
  c->eof = 0;
  c->iCur = 0;
  if( aesql_store_writer(db) ){
    c->eager = 1;
    rc = scores_eager(c);
    if( rc!=SQLITE_OK ) return rc;
    if( c->nAll==0 ){
      if( c->rcAll!=SQLITE_OK ) return scores_raise(c, &c->rcAll, &c->zErrAll);
      c->eof = 1;
    }else{
      c->iRow = 1;
    }
    return SQLITE_OK;
  }
  /* A short first block, handed out at once; the second is read while it
  ** is scored. */
  block_fill(c, &c->aBlk[0], c->nCap<SCORES_FIRST ? c->nCap : SCORES_FIRST);
  if( c->aBlk[0].rcEnd==SQLITE_OK ) block_fill(c, &c->aBlk[1], c->nCap);
  rc = scoresAdvance(c, 1);
  if( rc==SQLITE_OK && !c->eof ) c->iRow = 1;
  return rc;
}

static int scoresNext(sqlite3_vtab_cursor *cur){
  scores_cursor *c = (scores_cursor*)cur;
  c->iRow++;
  if( c->eager ){
    if( ++c->iAll < c->nAll ) return SQLITE_OK;
    if( c->rcAll!=SQLITE_OK ) return scores_raise(c, &c->rcAll, &c->zErrAll);
    c->eof = 1;
    return SQLITE_OK;
  }
  if( ++c->iBlk < c->aBlk[c->iCur].n ) return SQLITE_OK;
  return scoresAdvance(c, 0);
}

static int scoresEof(sqlite3_vtab_cursor *cur){
  return ((scores_cursor*)cur)->eof;
}

static int scoresColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  scores_cursor *c = (scores_cursor*)cur;
  const scores_block *b = &c->aBlk[c->iCur];
  double e = c->eager ? c->aAllErr[c->iAll] : b->aErr[c->iBlk];
  if( !isfinite(e) && (i==COL_ERROR || i==COL_PVALUE || i==COL_IS_ANOMALY) ){
    char *z = sqlite3_mprintf("ae_scores: the reconstruction error of row %lld "
        "overflows (the model's weights or the row's values are too large)",
        c->iRow);
    if( z ) sqlite3_result_error(ctx, z, -1); else sqlite3_result_error_nomem(ctx);
    sqlite3_free(z);
    return SQLITE_OK;
  }
  switch( i ){
    case COL_KEY:
      sqlite3_result_int64(ctx, c->eager ? c->aAllKey[c->iAll] : b->aKey[c->iBlk]);
      break;
    case COL_ERROR:
      sqlite3_result_double(ctx, e);
      break;
    case COL_PVALUE:       /* the calibration is loaded: xBestIndex saw it used */
      if( c->cal.n ) sqlite3_result_double(ctx, aesql_calib_pvalue(&c->cal, e));
      break;
    case COL_IS_ANOMALY:
      if( c->cal.n ) sqlite3_result_int(ctx, aesql_calib_flag(&c->cal, e, c->rate));
      break;
    default: break;  /* the hidden arguments read back as NULL */
  }
  return SQLITE_OK;
}

static int scoresRowid(sqlite3_vtab_cursor *cur, sqlite_int64 *pRowid){
  *pRowid = ((scores_cursor*)cur)->iRow;
  return SQLITE_OK;
}

/* Both hidden arguments model and source must be given, as equality
** constraints; the rate may be. idxNum says whether it is, and whether
** pvalue or is_anomaly is read (colUsed), which needs a calibration. */
static int scoresBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  int i, iModel = -1, iSource = -1, iRate = -1;
  for(i=0; i<p->nConstraint; i++){
    const struct sqlite3_index_constraint *k = &p->aConstraint[i];
    if( k->op!=SQLITE_INDEX_CONSTRAINT_EQ ) continue;
    if( k->iColumn==COL_MODEL ){ if( !k->usable ) return SQLITE_CONSTRAINT; iModel = i; }
    if( k->iColumn==COL_SOURCE ){ if( !k->usable ) return SQLITE_CONSTRAINT; iSource = i; }
    if( k->iColumn==COL_RATE ){ if( !k->usable ) return SQLITE_CONSTRAINT; iRate = i; }
  }
  p->idxNum = 0;
  if( p->colUsed & (((sqlite3_uint64)1<<COL_PVALUE) | ((sqlite3_uint64)1<<COL_IS_ANOMALY)) ){
    p->idxNum |= SCORES_CALIB;
  }
  if( iRate>=0 ){
    p->idxNum |= SCORES_HAS_RATE;
    p->aConstraintUsage[iRate].argvIndex = 3;
    p->aConstraintUsage[iRate].omit = 1;
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

static sqlite3_module scoresModule = {  /* unnamed fields are zero */
  .xConnect = scoresConnect,  /* no xCreate: eponymous only */
  .xBestIndex = scoresBestIndex, .xDisconnect = scoresDisconnect,
  .xOpen = scoresOpen, .xClose = scoresClose, .xFilter = scoresFilter,
  .xNext = scoresNext, .xEof = scoresEof, .xColumn = scoresColumn,
  .xRowid = scoresRowid,
};

int aesql_scores_register(sqlite3 *db){
  return sqlite3_create_module(db, "ae_scores", &scoresModule, 0);
}
