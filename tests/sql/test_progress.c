/*
** Training progress as data: the ae_progress table, read from another
** connection while a training runs, and the C hook aesql_progress_hook(),
** which sees every epoch and can stop the training.
*/
#include "check_sql.h"
#include <pthread.h>

static char zPath[300];

typedef struct hook_log {
  int n;                 /* calls */
  int epochs[64];
  double loss[64], val[64];
  int stopAt;            /* return 1 at this epoch (0: never) */
  char zModel[32];
} hook_log;

static int on_epoch(void *pArg, const aesql_progress_info *p){
  hook_log *h = pArg;
  if( h->n<64 ){
    h->epochs[h->n] = p->epoch;
    h->loss[h->n] = p->loss;
    h->val[h->n] = p->val_loss;
  }
  h->n++;
  snprintf(h->zModel, sizeof(h->zModel), "%s", p->zModel);
  return h->stopAt && p->epoch>=h->stopAt;
}

typedef struct trainer {
  const char *zSql;
  char *zResult;
  volatile int done;
  int seen;              /* the last epoch the poller has seen (atomic) */
} trainer;

/* The training waits, after each epoch, until the poller has seen that
** epoch in ae_progress (up to 5 s): what the poller sees then does not
** depend on how fast the machine trains. */
static int wait_seen(void *pArg, const aesql_progress_info *p){
  trainer *t = pArg;
  double t0 = check_now();
  while( __atomic_load_n(&t->seen, __ATOMIC_SEQ_CST)<p->epoch
      && check_now() - t0 < 5.0 ){
    usleep(500);
  }
  return 0;
}

static void *train_main(void *p){
  trainer *t = p;
  sqlite3 *db = check_open(zPath);
  aesql_progress_hook(db, wait_seen, t);
  t->zResult = check_query(db, t->zSql);
  sqlite3_close(db);
  __atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
  return 0;
}

int main(void){
  sqlite3 *db, *poll;
  hook_log h;
  pthread_t th;
  trainer t;
  int nSeen = 0, lastEpoch = 0, lastBatch = 0, monotone = 1, sane = 1, mine = 0;

  snprintf(zPath, sizeof(zPath), "%s/progress.db", check_tmpdir());
  db = check_open(zPath);
  check_make_table(db, "t", 4000, 64);

  /* ---- the hook sees every epoch, with the numbers ae_history keeps ---- */
  memset(&h, 0, sizeof(h));
  CHECK("the hook is set", aesql_progress_hook(db, on_epoch, &h)==SQLITE_OK);
  check_sql("a training with the hook set", db,
    "SELECT ae_train('t', 4, '{\"epochs\": 6, \"seed\": 3, \"batch_size\": 64, \"name\": \"h\"}')",
    "h");
  check_report(h.n==6 && h.epochs[0]==1 && h.epochs[5]==6, "the hook is called once per epoch, in order",
               "%d calls, first %d, last %d", h.n, h.epochs[0], h.epochs[5]);
  CHECK("... with the model's name", strcmp(h.zModel, "h")==0);
  {
    sqlite3_stmt *st = 0;
    int i = 0, same = 1;
    sqlite3_prepare_v2(db, "SELECT loss, val_loss FROM ae_history WHERE model='h' "
                           "ORDER BY epoch", -1, &st, 0);
    while( sqlite3_step(st)==SQLITE_ROW && i<6 ){
      if( sqlite3_column_double(st, 0)!=h.loss[i]
       || sqlite3_column_double(st, 1)!=h.val[i] ) same = 0;
      i++;
    }
    sqlite3_finalize(st);
    CHECK("... and the losses ae_history stores, bit for bit", same && i==6);
  }

  /* ---- a hook that asks to stop ---- */
  memset(&h, 0, sizeof(h));
  h.stopAt = 2;
  check_sql_error("a hook returning non-zero stops the training", db,
    "SELECT ae_train('t', 4, '{\"epochs\": 50, \"name\": \"stopped\"}')",
    "ae_train: interrupted by the progress hook after epoch 2");
  CHECK("... as an interrupt", sqlite3_errcode(db)==SQLITE_INTERRUPT);
  CHECK("... after that epoch", h.n==2);
  check_sql("... storing nothing", db,
    "SELECT count(*) FROM ae_models WHERE name='stopped'", "0");
  CHECK("the hook is removed", aesql_progress_hook(db, 0, 0)==SQLITE_OK);
  memset(&h, 0, sizeof(h));
  check_sql("a training without the hook", db,
    "SELECT ae_train('t', 4, '{\"epochs\": 2, \"name\": \"nohook\"}')", "nohook");
  CHECK("... calls nothing", h.n==0);
  CHECK("a hook on no connection is a misuse", aesql_progress_hook(0, on_epoch, &h)==SQLITE_MISUSE);

  /* ---- ae_progress, from another connection, while it trains ---- */
  check_sql("ae_progress is empty when nothing trains", db,
            "SELECT count(*) FROM ae_progress", "0");
  sqlite3_close(db);
  poll = check_open(zPath);
  memset(&t, 0, sizeof(t));
  t.zSql = "SELECT ae_train('t', 8, '{\"epochs\": 40, \"batch_size\": 32, \"name\": \"live\"}')";
  pthread_create(&th, 0, train_main, &t);
  while( !__atomic_load_n(&t.done, __ATOMIC_SEQ_CST) ){
    sqlite3_stmt *st = 0;
    sqlite3_prepare_v2(poll, "SELECT model, source, epoch, epochs, batch, batches, "
        "loss, val_loss, seconds, eta, this_connection FROM ae_progress", -1, &st, 0);
    while( sqlite3_step(st)==SQLITE_ROW ){
      int ep = sqlite3_column_int(st, 2), b = sqlite3_column_int(st, 4);
      nSeen++;
      if( strcmp((const char*)sqlite3_column_text(st, 0), "live")!=0
       || strcmp((const char*)sqlite3_column_text(st, 1), "t")!=0
       || sqlite3_column_int(st, 3)!=40 || sqlite3_column_int(st, 5)!=100
       || ep<1 || ep>40 || b<0 || b>100 || sqlite3_column_double(st, 8)<0 ){
        sane = 0;
      }
      if( b>0 && !(sqlite3_column_double(st, 6)>0) ) sane = 0;
      if( ep>1 && sqlite3_column_type(st, 7)!=SQLITE_FLOAT ) sane = 0;
      if( ep<lastEpoch || (ep==lastEpoch && b<lastBatch) ) monotone = 0;
      lastEpoch = ep; lastBatch = b;
      if( ep>__atomic_load_n(&t.seen, __ATOMIC_SEQ_CST) ){
        __atomic_store_n(&t.seen, ep, __ATOMIC_SEQ_CST);
      }
      mine += sqlite3_column_int(st, 10);
    }
    sqlite3_finalize(st);
    usleep(2000);
  }
  pthread_join(th, 0);
  check_report(t.zResult && strcmp(t.zResult, "live")==0, "the live training ends",
               "%s", t.zResult ? t.zResult : "(null)");
  check_report(nSeen>5, "another connection sees it in ae_progress", "%d rows seen", nSeen);
  CHECK("... with its name, source, epochs and batches", sane);
  CHECK("... advancing epoch by epoch, batch by batch", monotone);
  check_report(lastEpoch==40, "... up to its last epoch", "last epoch seen %d", lastEpoch);
  CHECK("... and not as its own", mine==0);
  check_sql("ae_progress is empty again", poll, "SELECT count(*) FROM ae_progress", "0");
  sqlite3_free(t.zResult);
  sqlite3_close(poll);
  return check_done();
}
