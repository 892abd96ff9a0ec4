/*
** Training progress as data (see ae_progress.h):
**
**   .load ./libaesql
**   SELECT model, epoch, epochs, batch, batches, round(loss, 4), eta
**     FROM ae_progress;                   -- from any connection of the process
**
** Columns of ae_progress, one row per training running in this process:
**   model, source   what is trained, on what
**   epoch, epochs   the epoch under way (1-based), of how many
**   batch, batches  the batches of it done, of how many
**   loss            the mean loss of those batches
**   val_loss        the validation loss of the last epoch done (NULL before
**                   the first, or when nothing is held out)
**   seconds         since the training started
**   eta             seconds left, estimated from the epochs and batches done
**   this_connection 1 for a training on the connection that asks
**
** The registry is process-wide, under one mutex, and holds copies: a row
** never points into a training that has ended.
*/
#include "ae_progress.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct aesql_run {
  aesql_run *pNext;
  sqlite3 *db;
  char *zModel, *zSource;
  int epochs, batches;
  int epoch, batch;
  double loss, valLoss, t0;
  double secDone;      /* seconds of the epochs done */
};

typedef struct progress_hook {
  struct progress_hook *pNext;
  sqlite3 *db;
  int (*xProgress)(void*, const aesql_progress_info*);
  void *pArg;
} progress_hook;

static struct {
  pthread_mutex_t mu;
  aesql_run *pRuns;
  progress_hook *pHooks;
} g = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };

static double now_s(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

aesql_run *aesql_run_begin(sqlite3 *db, const char *zModel,
                           const char *zSource, int epochs, int batches){
  aesql_run *r = sqlite3_malloc(sizeof(*r));
  if( !r ) return 0;
  memset(r, 0, sizeof(*r));
  r->zModel = sqlite3_mprintf("%s", zModel);
  r->zSource = sqlite3_mprintf("%s", zSource);
  if( !r->zModel || !r->zSource ){
    sqlite3_free(r->zModel); sqlite3_free(r->zSource); sqlite3_free(r);
    return 0;
  }
  r->db = db;
  r->epochs = epochs;
  r->batches = batches;
  r->epoch = 1;
  r->valLoss = NAN;
  r->t0 = now_s();
  pthread_mutex_lock(&g.mu);
  r->pNext = g.pRuns;
  g.pRuns = r;
  pthread_mutex_unlock(&g.mu);
  return r;
}

void aesql_run_batch(aesql_run *r, int epoch, int batch, double loss){
  if( !r ) return;
  pthread_mutex_lock(&g.mu);
  r->epoch = epoch;
  r->batch = batch;
  r->loss = loss;
  pthread_mutex_unlock(&g.mu);
}

int aesql_run_epoch(aesql_run *r, int epoch, double loss, double valLoss,
                    double seconds){
  progress_hook *h;
  int (*xProgress)(void*, const aesql_progress_info*) = 0;
  void *pArg = 0;
  if( !r ) return 0;
  pthread_mutex_lock(&g.mu);
  r->valLoss = valLoss;
  r->secDone += seconds;
  if( epoch<r->epochs ){ r->epoch = epoch+1; r->batch = 0; }
  for(h=g.pHooks; h; h=h->pNext){
    if( h->db==r->db ){ xProgress = h->xProgress; pArg = h->pArg; }
  }
  pthread_mutex_unlock(&g.mu);
  if( xProgress ){
    aesql_progress_info info;
    info.zModel = r->zModel;
    info.epoch = epoch;
    info.epochs = r->epochs;
    info.loss = loss;
    info.val_loss = valLoss;
    info.seconds = seconds;
    return xProgress(pArg, &info)!=0;
  }
  return 0;
}

void aesql_run_end(aesql_run *r){
  aesql_run **pp;
  if( !r ) return;
  pthread_mutex_lock(&g.mu);
  for(pp=&g.pRuns; *pp && *pp!=r; pp=&(*pp)->pNext){}
  if( *pp ) *pp = r->pNext;
  pthread_mutex_unlock(&g.mu);
  sqlite3_free(r->zModel);
  sqlite3_free(r->zSource);
  sqlite3_free(r);
}

AESQL_API int aesql_progress_hook(sqlite3 *db,
    int (*xProgress)(void *pArg, const aesql_progress_info *p), void *pArg){
  progress_hook *pNew = 0;
  if( !db ) return SQLITE_MISUSE;
  if( xProgress ){
    pNew = sqlite3_malloc(sizeof(*pNew));
    if( !pNew ) return SQLITE_NOMEM;
    pNew->db = db;
    pNew->xProgress = xProgress;
    pNew->pArg = pArg;
  }
  aesql_progress_forget(db);
  if( pNew ){
    pthread_mutex_lock(&g.mu);
    pNew->pNext = g.pHooks;
    g.pHooks = pNew;
    pthread_mutex_unlock(&g.mu);
  }
  return SQLITE_OK;
}

void aesql_progress_forget(sqlite3 *db){
  progress_hook **pp, *pDead = 0;
  pthread_mutex_lock(&g.mu);
  for(pp=&g.pHooks; *pp; ){
    if( (*pp)->db==db ){
      progress_hook *h = *pp;
      *pp = h->pNext;
      h->pNext = pDead;
      pDead = h;
    }else{
      pp = &(*pp)->pNext;
    }
  }
  pthread_mutex_unlock(&g.mu);
  while( pDead ){
    progress_hook *h = pDead;
    pDead = h->pNext;
    sqlite3_free(h);
  }
}

/* ---- the ae_progress table ---- */

enum { COL_MODEL, COL_SOURCE, COL_EPOCH, COL_EPOCHS, COL_BATCH, COL_BATCHES,
       COL_LOSS, COL_VAL_LOSS, COL_SECONDS, COL_ETA, COL_THIS };

typedef struct progress_row {
  char *zModel, *zSource;
  int epoch, epochs, batch, batches, mine;
  double loss, valLoss, seconds, eta;
} progress_row;

typedef struct progress_vtab {
  sqlite3_vtab base;
  sqlite3 *db;
} progress_vtab;

typedef struct progress_cursor {
  sqlite3_vtab_cursor base;
  progress_row *aRow;
  int nRow, iRow;
} progress_cursor;

static int progressConnect(sqlite3 *db, void *pAux, int argc,
                           const char *const*argv, sqlite3_vtab **ppVtab,
                           char **pzErr){
  progress_vtab *p;
  int rc;
  (void)pAux; (void)argc; (void)argv; (void)pzErr;
  rc = sqlite3_declare_vtab(db, "CREATE TABLE x(model TEXT, source TEXT, "
      "epoch INTEGER, epochs INTEGER, batch INTEGER, batches INTEGER, "
      "loss REAL, val_loss REAL, seconds REAL, eta REAL, this_connection INTEGER)");
  if( rc!=SQLITE_OK ) return rc;
  /* It reads only this process's counters: harmless anywhere. */
  sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
  p = sqlite3_malloc(sizeof(*p));
  if( !p ) return SQLITE_NOMEM;
  memset(p, 0, sizeof(*p));
  p->db = db;
  *ppVtab = &p->base;
  return SQLITE_OK;
}

static int progressDisconnect(sqlite3_vtab *pVtab){
  sqlite3_free(pVtab);
  return SQLITE_OK;
}

static void progress_clear(progress_cursor *c){
  int i;
  for(i=0; i<c->nRow; i++){
    sqlite3_free(c->aRow[i].zModel);
    sqlite3_free(c->aRow[i].zSource);
  }
  sqlite3_free(c->aRow);
  c->aRow = 0;
  c->nRow = c->iRow = 0;
}

static int progressOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  progress_cursor *c = sqlite3_malloc(sizeof(*c));
  (void)pVtab;
  if( !c ) return SQLITE_NOMEM;
  memset(c, 0, sizeof(*c));
  *ppCur = &c->base;
  return SQLITE_OK;
}

static int progressClose(sqlite3_vtab_cursor *cur){
  progress_clear((progress_cursor*)cur);
  sqlite3_free(cur);
  return SQLITE_OK;
}

/* Copies the registry, so that the rows stay valid whatever ends. */
static int progressFilter(sqlite3_vtab_cursor *cur, int idxNum,
                          const char *idxStr, int argc, sqlite3_value **argv){
  progress_cursor *c = (progress_cursor*)cur;
  sqlite3 *db = ((progress_vtab*)cur->pVtab)->db;
  aesql_run *r;
  int n = 0, rc = SQLITE_OK;
  double t = now_s();
  (void)idxNum; (void)idxStr; (void)argc; (void)argv;
  progress_clear(c);
  pthread_mutex_lock(&g.mu);
  for(r=g.pRuns; r; r=r->pNext) n++;
  if( n>0 ){
    c->aRow = sqlite3_malloc64(sizeof(progress_row)*(size_t)n);
    if( !c->aRow ) rc = SQLITE_NOMEM;
    else memset(c->aRow, 0, sizeof(progress_row)*(size_t)n);
  }
  for(r=g.pRuns; r && rc==SQLITE_OK; r=r->pNext){
    progress_row *p = &c->aRow[c->nRow++];
    double done = (r->epoch-1) + (r->batches ? (double)r->batch/r->batches : 0);
    p->zModel = sqlite3_mprintf("%s", r->zModel);
    p->zSource = sqlite3_mprintf("%s", r->zSource);
    if( !p->zModel || !p->zSource ) rc = SQLITE_NOMEM;
    p->epoch = r->epoch; p->epochs = r->epochs;
    p->batch = r->batch; p->batches = r->batches;
    p->loss = r->loss; p->valLoss = r->valLoss;
    p->seconds = t - r->t0;
    p->eta = done>0 ? p->seconds/done*(r->epochs - done) : NAN;
    p->mine = r->db==db;
  }
  pthread_mutex_unlock(&g.mu);
  return rc;
}

static int progressNext(sqlite3_vtab_cursor *cur){
  ((progress_cursor*)cur)->iRow++;
  return SQLITE_OK;
}

static int progressEof(sqlite3_vtab_cursor *cur){
  progress_cursor *c = (progress_cursor*)cur;
  return c->iRow>=c->nRow;
}

static int progressColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  progress_cursor *c = (progress_cursor*)cur;
  const progress_row *p = &c->aRow[c->iRow];
  switch( i ){
    case COL_MODEL:   sqlite3_result_text(ctx, p->zModel, -1, SQLITE_TRANSIENT); break;
    case COL_SOURCE:  sqlite3_result_text(ctx, p->zSource, -1, SQLITE_TRANSIENT); break;
    case COL_EPOCH:   sqlite3_result_int(ctx, p->epoch); break;
    case COL_EPOCHS:  sqlite3_result_int(ctx, p->epochs); break;
    case COL_BATCH:   sqlite3_result_int(ctx, p->batch); break;
    case COL_BATCHES: sqlite3_result_int(ctx, p->batches); break;
    case COL_LOSS:
      if( p->batch>0 ) sqlite3_result_double(ctx, p->loss);
      break;
    case COL_VAL_LOSS:
      if( isfinite(p->valLoss) ) sqlite3_result_double(ctx, p->valLoss);
      break;
    case COL_SECONDS: sqlite3_result_double(ctx, p->seconds); break;
    case COL_ETA:
      if( isfinite(p->eta) ) sqlite3_result_double(ctx, p->eta);
      break;
    case COL_THIS:    sqlite3_result_int(ctx, p->mine); break;
  }
  return SQLITE_OK;
}

static int progressRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((progress_cursor*)cur)->iRow + 1;
  return SQLITE_OK;
}

static int progressBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *p){
  (void)pVtab;
  p->estimatedCost = 10;
  p->estimatedRows = 4;
  return SQLITE_OK;
}

static sqlite3_module progressModule = {
  .iVersion = 0,
  .xConnect = progressConnect,
  .xBestIndex = progressBestIndex,
  .xDisconnect = progressDisconnect,
  .xOpen = progressOpen,
  .xClose = progressClose,
  .xFilter = progressFilter,
  .xNext = progressNext,
  .xEof = progressEof,
  .xColumn = progressColumn,
  .xRowid = progressRowid,
};

int aesql_progress_register(sqlite3 *db){
  return sqlite3_create_module(db, "ae_progress", &progressModule, 0);
}
