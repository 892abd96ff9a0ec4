/*
** Tests of the training loop (ext/core/ae_loop.h, over ae_fit.h and
** ae_net.h), linked with no SQLite:
**
**   split        aesql_loop_split as Keras computes it (the last
**                n - floor(n (1 - split)) rows held out), and the misuses
**                that return AESQL_LOOP_MISUSE
**   the loop     aesql_loop_run against the loop its header describes,
**                spelled out over aesql_fit (glorot from the seed's
**                generator, the held-out rows in order, a reshuffle an
**                epoch from the same generator, the losses): the same
**                bits, with and without shuffling, with l2
**   threads      the same model and history bit for bit for 1, 2 and 3
**                threads, with and without dropout
**   callbacks    xBatch's and xEpoch's arguments; either one stopping
**                the loop gives AESQL_LOOP_STOPPED where it stopped
**   NaN          a learning rate that blows the weights up, and held-out
**                rows too large for float: AESQL_LOOP_NAN, where and what,
**                and the weights never reached by the bad gradient
**   l2           the first batch's loss with l2 minus without is
**                aesql_net_l2 at the initial weights; val_loss is the
**                held-out rows' loss at the epoch's weights plus the
**                penalty at those weights
**   stopping     two crafted data sets on which val_loss rises or
**                wanders: for patience, min_delta and restore_best, the
**                epoch the loop stops at and its best epoch are what
**                Keras 3's EarlyStopping gives on the recorded history,
**                the final weights (recorded by xEpoch) those of the best
**                epoch with restore_best and of the last one without,
**                bit for bit
**   memory       every allocation of aesql_loop_run failed in turn
**
**   make build/tests/test_loop && build/tests/test_loop
**   make build/asan-tests/test_loop && AESQL_SANITIZE=1 build/asan-tests/test_loop
*/
#include "check_core.h"
#include "../../ext/core/ae_loop.h"
#include "../../ext/core/ae_fit.h"
#include "../../ext/core/ae_adam.h"
#include "../../ext/core/ae_blas.h"

#include <stdint.h>

/* The core's allocator is check_core.h's fm_malloc/fm_free: counted
** (every block must be freed by the end), failing on request. */

/* ---------------------------------------------------------------- */
/* helpers */

/* The tutorial's options: Adam's Keras defaults, shuffled, one thread. */
static void cfg_default(aesql_loop_cfg *c){
  memset(c, 0, sizeof(*c));
  c->epochs = 3;
  c->batch_size = 10;
  c->validation_split = 0.25;
  c->shuffle = 1;
  c->seed = 5;
  c->learning_rate = 0.01;
  c->beta_1 = 0.9;
  c->beta_2 = 0.999;
  c->epsilon = 1e-7;
  c->threads = 1;
}

/* Two histories the same, bit for bit, over n epochs. */
static int same_history(const aesql_epoch *a, const aesql_epoch *b, int n){
  int e;
  for(e=0; e<n; e++){
    if( memcmp(&a[e].loss, &b[e].loss, sizeof(double))
     || memcmp(&a[e].val_loss, &b[e].val_loss, sizeof(double)) ) return 0;
  }
  return 1;
}

/* A data set of n rows of d bytes: rows below nA draw each pixel non-zero
** with probability pA[col < d/2], the others with pB[col < d/2]; the
** values uniform in 1..255. */
static unsigned char *make_rows(uint64_t seed, int n, int d, int nA,
                                const double *pA, const double *pB){
  unsigned char *u = malloc((size_t)n*d);
  aesql_rng r;
  int i;
  if( !u ) return 0;
  aesql_rng_seed(&r, seed);
  for(i=0; i<n*d; i++){
    int row = i/d, lo = i%d < d/2;
    double p = row<nA ? pA[lo] : pB[lo];
    u[i] = aesql_rng_uniform(&r)<p ? (unsigned char)(1 + aesql_rng_below(&r, 255)) : 0;
  }
  return u;
}

/* ---------------------------------------------------------------- */
/* The split and the misuses */

static void test_split(void){
  static const struct { int n; double split; int nTrain, nVal; } aS[] = {
    /* Python's int(math.floor(n*(1.0 - split))), as Keras takes it */
    { 100, 0.2, 80, 20 }, { 10, 0.25, 7, 3 }, { 5, 0.0, 5, 0 }, { 7, 0.5, 3, 4 },
    { 1, 0.5, 0, 1 }, { 10, 0.3, 7, 3 }, { 10, 0.7, 3, 7 }, { 3, 0.1, 2, 1 },
    { 1000, 0.1, 900, 100 }, { 49, 0.3, 34, 15 }, { 0, 0.2, 0, 0 },
  };
  aesql_net nn;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res res;
  unsigned char px[10*8] = {1};
  int i, ok = 1, nTrain;
  for(i=0; i<(int)(sizeof(aS)/sizeof(aS[0])); i++){
    int nVal = aesql_loop_split(aS[i].n, aS[i].split, &nTrain);
    ok &= nVal==aS[i].nVal && nTrain==aS[i].nTrain;
  }
  CHECK("split: n - floor(n (1 - split)) held out, for 11 cases (10 x 0.7: 7)", ok);

  if( aesql_net_init_dhd(&nn, 8, 3) ){ CHECK("misuse: init", 0); return; }
  aesql_nn_data_init(&x, 8, 10, px, 0);
  cfg_default(&c);
  c.epochs = 0;
  ok = aesql_loop_run(&nn, &x, &c, 0, &res)==AESQL_LOOP_MISUSE && res.aEpoch==0;
  cfg_default(&c);
  c.batch_size = 0;
  ok &= aesql_loop_run(&nn, &x, &c, 0, &res)==AESQL_LOOP_MISUSE && res.aEpoch==0;
  CHECK("misuse: 0 epochs, batches of 0 rows", ok);
  cfg_default(&c);
  c.validation_split = 0.95;            /* floor(0.5) = 0 rows to train on */
  ok = aesql_loop_run(&nn, &x, &c, 0, &res)==AESQL_LOOP_MISUSE && res.aEpoch==0
    && res.nTrain==0 && res.nVal==10;
  CHECK("misuse: no rows to train on (10 rows, split 0.95)", ok);
  cfg_default(&c);
  c.validation_split = 0.0;
  c.patience = 2;
  ok = aesql_loop_run(&nn, &x, &c, 0, &res)==AESQL_LOOP_MISUSE && res.aEpoch==0
    && res.nTrain==10 && res.nVal==0;
  CHECK("misuse: patience with no validation rows", ok);
  x.n = 0x80000000u;                    /* never read: refused first */
  cfg_default(&c);
  CHECK("misuse: more than 2^31-1 rows", aesql_loop_run(&nn, &x, &c, 0, &res)==AESQL_LOOP_MISUSE);
  aesql_net_free(&nn);
}

/* ---------------------------------------------------------------- */
/* The loop as its header describes it */

/* aesql_loop_run spelled out over aesql_fit, for cfg without dropout:
** trains net, fills e[0..epochs). 0 on success. */
static int loop_by_hand(aesql_net *net, const aesql_nn_data *x,
                        const aesql_loop_cfg *c, aesql_epoch *ep){
  aesql_adam a;
  aesql_fit *fit = 0;
  aesql_rng r;
  uint32_t *idx = malloc(sizeof(uint32_t)*x->n);
  int n = (int)x->n, nTrain, nVal, e, b, i, rc = 1;
  nVal = aesql_loop_split(n, c->validation_split, &nTrain);
  if( !idx || aesql_adam_init(&a, net->nParam, (float)c->learning_rate, (float)c->beta_1,
                              (float)c->beta_2, (float)c->epsilon) ){
    free(idx);
    return 1;
  }
  if( !(fit = aesql_fit_new(net, &a, x, c->batch_size, 1, c->l2, 0.0)) ) goto done;
  for(i=nTrain; i<n; i++) idx[i] = (uint32_t)i;
  aesql_rng_seed(&r, c->seed);
  aesql_net_glorot(net, &r);
  for(e=0; e<c->epochs; e++){
    double sum = 0.0;
    for(i=0; i<nTrain; i++) idx[i] = (uint32_t)i;
    if( c->shuffle ) aesql_rng_shuffle(&r, idx, (uint32_t)nTrain);
    for(b=0; b<nTrain; b+=c->batch_size){
      int nb = nTrain-b < c->batch_size ? nTrain-b : c->batch_size;
      double l = aesql_fit_grad(fit, idx+b, nb, 0);
      if( c->l2>0.0 ) l += aesql_net_l2(net, c->l2);
      aesql_fit_step(fit);
      sum += l*nb;
    }
    ep[e].loss = sum/nTrain;
    ep[e].val_loss = nVal ? aesql_fit_loss(fit, idx+nTrain, nVal) : NAN;
    if( nVal && c->l2>0.0 ) ep[e].val_loss += aesql_net_l2(net, c->l2);
  }
  rc = 0;
done:
  aesql_fit_free(fit);
  aesql_adam_free(&a);
  free(idx);
  return rc;
}

static void test_by_hand(void){
  static const double pA[2] = {0.3, 0.5}, pB[2] = {0.3, 0.5};
  static const int enc[2] = {10, 5};
  enum { N = 130, D = 24 };
  unsigned char *u = make_rows(3, N, D, N, pA, pB);
  aesql_net na, nb;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res res;
  aesql_epoch eh[4];
  int width[5], v;
  char z[160];
  memset(&res, 0, sizeof(res));
  aesql_net_mirror(D, enc, 2, width);
  if( !u || aesql_net_init(&na, 4, width, (int[]){AESQL_ACT_SELU, AESQL_ACT_TANH,
                           AESQL_ACT_SELU, AESQL_ACT_SIGMOID}, 1)
   || aesql_net_init(&nb, 4, width, (int[]){AESQL_ACT_SELU, AESQL_ACT_TANH,
                     AESQL_ACT_SELU, AESQL_ACT_SIGMOID}, 1) ){
    CHECK("by hand: init", 0);
    free(u);
    return;
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO);
  for(v=0; v<3; v++){
    /* 130 rows, 0.2 held out: 104 to train, batches of 24 (the last 8) */
    cfg_default(&c);
    c.epochs = 4;
    c.batch_size = 24;
    c.validation_split = 0.2;
    c.shuffle = v!=1;
    c.l2 = v==2 ? 1e-3 : 0.0;
    c.seed = 11 + v;
    memset(eh, 0, sizeof(eh));
    if( loop_by_hand(&nb, &x, &c, eh) ){ CHECK("by hand: run", 0); break; }
    if( aesql_loop_run(&na, &x, &c, 0, &res)!=AESQL_LOOP_OK ){
      CHECK("by hand: aesql_loop_run", 0);
      break;
    }
    snprintf(z, sizeof(z), "loop%s%s = the loop its header describes, over aesql_fit: "
             "the same weights and history, bit for bit", v==1 ? ", not shuffled" : "",
             v==2 ? ", l2 1e-3" : "");
    CHECK(z, res.nEpoch==4 && res.nTrain==104 && res.nVal==26
          && memcmp(na.param, nb.param, sizeof(float)*na.nParam)==0
          && same_history(res.aEpoch, eh, 4) && isfinite(eh[3].val_loss));
    if( v==0 ){
      CHECK("loop: no callbacks, no patience: not stopped, best epoch tracked, "
            "not restored", res.earlyStopped==0 && res.restored==0 && res.iBest>=1
            && res.iBest<=4 && res.errEpoch==0);
    }
    aesql_nn_mfree(res.aEpoch);
  }
  /* no held-out rows: val_loss NaN, no best epoch, nothing restored */
  cfg_default(&c);
  c.validation_split = 0.0;
  c.restore_best = 1;
  if( aesql_loop_run(&na, &x, &c, 0, &res)==AESQL_LOOP_OK ){
    CHECK("loop: no held-out rows: val_loss NaN, iBest 0, not restored",
          res.nVal==0 && res.nTrain==N && isnan(res.aEpoch[0].val_loss)
          && isnan(res.aEpoch[2].val_loss) && res.iBest==0 && res.restored==0
          && isfinite(res.aEpoch[2].loss));
    aesql_nn_mfree(res.aEpoch);
  }else{
    CHECK("loop: no held-out rows", 0);
  }
  /* another seed, another model */
  memcpy(nb.param, na.param, sizeof(float)*na.nParam);
  c.seed = 6;
  if( aesql_loop_run(&na, &x, &c, 0, &res)==AESQL_LOOP_OK ){
    CHECK("loop: another seed, another model", memcmp(na.param, nb.param,
          sizeof(float)*na.nParam)!=0);
    aesql_nn_mfree(res.aEpoch);
  }
  aesql_nn_data_free(&x);
  aesql_net_free(&na); aesql_net_free(&nb);
  free(u);
}

/* ---------------------------------------------------------------- */
/* Threads */

static void test_threads(void){
  static const double pA[2] = {0.2, 0.3}, pB[2] = {0.2, 0.3};
  static const int enc[2] = {20, 8};
  enum { N = 1000, D = 64 };
  unsigned char *u = make_rows(9, N, D, N, pA, pB);
  aesql_net n1, nt;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res r1, rt;
  int width[5], t, drop, stack;
  char z[200];
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO);
  /* a stack 64-20-8-20-64 (ae_fit.h: parts of up to 128 rows, one pass
  ** each), then one hidden layer (parts of 64 rows, passes of 32), whose
  ** nets stay for the last check */
  for(stack=1; stack>=0 && u; stack--){
    static const int act[4] = {AESQL_ACT_RELU, AESQL_ACT_RELU, AESQL_ACT_RELU,
                               AESQL_ACT_LINEAR};
    const int nL = aesql_net_mirror(D, enc, stack ? 2 : 1, width);
    int acts[4];
    memcpy(acts, act + 4 - nL, sizeof(int)*nL);
    if( aesql_net_init(&n1, nL, width, acts, nL/2 - 1)
     || aesql_net_init(&nt, nL, width, acts, nL/2 - 1) ){
      CHECK("threads: init", 0);
      break;
    }
    for(drop=0; drop<2; drop++){
      /* 800 rows to train, batches of 200: 4 parts each; for the stack,
      ** batches of 300: 3 parts of 100 */
      cfg_default(&c);
      c.epochs = 3;
      c.batch_size = stack ? 300 : 200;
      c.validation_split = 0.2;
      c.dropout = drop ? 0.3 : 0.0;
      c.l2 = drop ? 1e-4 : 0.0;
      c.threads = 1;
      if( aesql_loop_run(&n1, &x, &c, 0, &r1)!=AESQL_LOOP_OK ){
        CHECK("threads: 1 thread", 0);
        break;
      }
      for(t=2; t<=3; t++){
        c.threads = t;
        if( aesql_loop_run(&nt, &x, &c, 0, &rt)!=AESQL_LOOP_OK ){
          CHECK("threads: run", 0);
          continue;
        }
        snprintf(z, sizeof(z), "threads%s%s: %d threads (used %d) give the weights and the "
                 "history of 1, bit for bit", stack ? ", 64-20-8-20-64" : "",
                 drop ? ", dropout 0.3, l2 1e-4" : "", t, rt.nThread);
        CHECK(z, r1.nThread==1 && rt.nThread==t
              && memcmp(n1.param, nt.param, sizeof(float)*n1.nParam)==0
              && same_history(r1.aEpoch, rt.aEpoch, 3) && rt.iBest==r1.iBest);
        aesql_nn_mfree(rt.aEpoch);
      }
      if( drop ){
        /* dropout changes the model; the validation pass has none, so with
        ** the same weights it would be the same: see test_net */
        aesql_loop_cfg c0 = c;
        c0.dropout = 0.0;
        if( aesql_loop_run(&nt, &x, &c0, 0, &rt)==AESQL_LOOP_OK ){
          CHECK("threads: dropout 0.3 gives another model than none",
                memcmp(n1.param, nt.param, sizeof(float)*n1.nParam)!=0
                && r1.aEpoch[0].loss!=rt.aEpoch[0].loss);
          aesql_nn_mfree(rt.aEpoch);
        }
      }
      aesql_nn_mfree(r1.aEpoch);
    }
    if( stack ){ aesql_net_free(&n1); aesql_net_free(&nt); }
  }
  /* threads 0: one per core, capped at the parts */
  cfg_default(&c);
  c.batch_size = 200;
  c.epochs = 1;
  c.threads = 0;
  if( aesql_loop_run(&nt, &x, &c, 0, &rt)==AESQL_LOOP_OK ){
    long nCpu = sysconf(_SC_NPROCESSORS_ONLN);
    int want = nCpu<1 ? 1 : nCpu>4 ? 4 : (int)nCpu;
    snprintf(z, sizeof(z), "threads: 0 means one per core (%ld), at most the 4 parts", nCpu);
    check_report(rt.nThread==want, z, "used %d", rt.nThread);
    aesql_nn_mfree(rt.aEpoch);
  }
  aesql_nn_data_free(&x);
  aesql_net_free(&n1); aesql_net_free(&nt);
  free(u);
}

/* ---------------------------------------------------------------- */
/* Callbacks, NaN, l2 */

typedef struct cb_log {
  aesql_net *net;
  int stopEpoch, stopBatch;     /* xBatch returns 1 there */
  int stopAtEpoch;              /* xEpoch returns 1 there */
  int nBatch, nEpoch;           /* calls */
  int badOrder;                 /* a call out of sequence */
  int lastEpoch, lastBatch;
  double firstLoss;             /* xBatch's loss at epoch 1 batch 1 */
  double lastLoss[8];           /* xBatch's last loss of each epoch */
  aesql_epoch ep[8];            /* what xEpoch saw */
  /* for the val_loss check: the held-out rows, a work, l2 */
  const aesql_nn_data *x;
  aesql_net_work *w;
  const uint32_t *valIdx;
  int nVal;
  double l2;
  double valWant[8];            /* their loss at the epoch's weights + l2 */
} cb_log;

static int cb_batch(void *pArg, int epoch, int batch, double loss){
  cb_log *p = pArg;
  if( !(epoch==p->lastEpoch && batch==p->lastBatch+1)
   && !(epoch==p->lastEpoch+1 && batch==1) ) p->badOrder = 1;
  p->lastEpoch = epoch;
  p->lastBatch = batch;
  p->nBatch++;
  if( epoch==1 && batch==1 ) p->firstLoss = loss;
  if( epoch<=8 ) p->lastLoss[epoch-1] = loss;
  return epoch==p->stopEpoch && batch==p->stopBatch;
}

static int cb_epoch(void *pArg, int epoch, const aesql_epoch *e){
  cb_log *p = pArg;
  p->nEpoch++;
  if( epoch!=p->nEpoch ) p->badOrder = 1;
  if( epoch<=8 ){
    p->ep[epoch-1] = *e;
    if( p->w ){
      p->valWant[epoch-1] = aesql_net_sse_rows(p->net, p->w, p->x, p->valIdx, p->nVal)
                            /((double)p->nVal*p->x->d) + aesql_net_l2(p->net, p->l2);
    }
  }
  return epoch==p->stopAtEpoch;
}

static void test_callbacks(void){
  static const double pA[2] = {0.3, 0.4}, pB[2] = {0.3, 0.4};
  enum { N = 100, D = 20 };
  unsigned char *u = make_rows(4, N, D, N, pA, pB);
  float *f = malloc(sizeof(float)*N*D);
  aesql_net nn, n0;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res res;
  aesql_loop_cb cb;
  cb_log lg;
  uint32_t valIdx[N];
  int i, rc, ok, nTrain, nVal;
  size_t p;
  char z[200];

  memset(&res, 0, sizeof(res));
  if( !u || !f || aesql_net_init_dhd(&nn, D, 6) || aesql_net_init_dhd(&n0, D, 6) ){
    CHECK("callbacks: init", 0);
    free(u); free(f);
    return;
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  cfg_default(&c);
  c.epochs = 4;
  nVal = aesql_loop_split(N, c.validation_split, &nTrain);   /* 75 + 25 */
  for(i=0; i<nVal; i++) valIdx[i] = (uint32_t)(nTrain + i);
  memset(&lg, 0, sizeof(lg));
  lg.net = &nn;
  cb.pArg = &lg;
  cb.xBatch = cb_batch;
  cb.xEpoch = cb_epoch;

  /* the whole run: 8 batches an epoch (75 rows by 10), the arguments */
  rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
  ok = rc==AESQL_LOOP_OK && lg.nBatch==4*8 && lg.nEpoch==4 && !lg.badOrder
    && lg.lastBatch==8 && res.nEpoch==4;
  CHECK("callbacks: xBatch 8 times an epoch and xEpoch once, in order, 1-based", ok);
  ok = 1;
  for(i=0; i<4 && rc==AESQL_LOOP_OK; i++){
    /* the running loss after the last batch is the epoch's loss: the same
    ** sum over the same rows count */
    ok &= lg.lastLoss[i]==res.aEpoch[i].loss
       && memcmp(&lg.ep[i], &res.aEpoch[i], sizeof(aesql_epoch))==0
       && res.aEpoch[i].seconds>=0.0;
  }
  CHECK("callbacks: xEpoch sees the history's entry; xBatch's last running loss "
        "is the epoch's loss", ok);
  if( rc==AESQL_LOOP_OK ) aesql_nn_mfree(res.aEpoch);

  /* xBatch stops at epoch 2, batch 3 */
  memset(&lg, 0, sizeof(lg));
  lg.net = &nn;
  lg.stopEpoch = 2; lg.stopBatch = 3;
  rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
  snprintf(z, sizeof(z), "callbacks: xBatch returning 1 at epoch 2 batch 3: STOPPED, "
           "1 epoch done, 11 batches, 1 xEpoch");
  check_report(rc==AESQL_LOOP_STOPPED && res.nEpoch==1 && lg.nBatch==11 && lg.nEpoch==1
               && res.aEpoch && res.earlyStopped==0 && res.restored==0, z,
               "rc %d, nEpoch %d, batches %d, epochs %d", rc, res.nEpoch, lg.nBatch, lg.nEpoch);
  aesql_nn_mfree(res.aEpoch);
  /* xEpoch stops at epoch 3 */
  memset(&lg, 0, sizeof(lg));
  lg.net = &nn;
  lg.stopAtEpoch = 3;
  c.restore_best = 1;
  rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
  check_report(rc==AESQL_LOOP_STOPPED && res.nEpoch==3 && lg.nBatch==24 && lg.nEpoch==3
               && res.restored==0, "callbacks: xEpoch returning 1 at epoch 3: STOPPED, "
               "3 epochs, no more batches, nothing restored",
               "rc %d, nEpoch %d, batches %d", rc, res.nEpoch, lg.nBatch);
  aesql_nn_mfree(res.aEpoch);
  c.restore_best = 0;

  /* l2: the first batch sees the initial weights in both runs, so its
  ** loss with l2 minus without is the penalty there (glorot from the
  ** seed); both sums are of doubles: rel 1e-12 of the larger */
  {
    double l0, l1, pen;
    aesql_rng r;
    memset(&lg, 0, sizeof(lg));
    lg.net = &nn;
    lg.stopEpoch = 1; lg.stopBatch = 1;
    aesql_loop_run(&nn, &x, &c, &cb, &res);
    aesql_nn_mfree(res.aEpoch);
    l0 = lg.firstLoss;
    c.l2 = 0.05;
    memset(&lg, 0, sizeof(lg));
    lg.net = &nn;
    lg.stopEpoch = 1; lg.stopBatch = 1;
    aesql_loop_run(&nn, &x, &c, &cb, &res);
    aesql_nn_mfree(res.aEpoch);
    l1 = lg.firstLoss;
    aesql_rng_seed(&r, c.seed);
    aesql_net_glorot(&n0, &r);
    pen = aesql_net_l2(&n0, 0.05);
    snprintf(z, sizeof(z), "l2: first batch's loss with l2 0.05 - without = aesql_net_l2 "
             "at the initial weights, %.6g (rel 1e-12)", pen);
    check_report(pen>0.01*l0 && fabs((l1 - l0) - pen)<=1e-12*l1, z,
                 "with %.17g, without %.17g, penalty %.17g", l1, l0, pen);
  }
  /* val_loss = the held-out rows' loss at the epoch's weights + the
  ** penalty at them: recomputed in xEpoch (the last nVal rows, in order).
  ** The same float passes, 32 rows at a time against the fit's 25: rel
  ** 1e-7 (sgemm's rounding for other row counts) */
  lg.w = aesql_net_work_new(&nn, 32, 0.0);
  if( lg.w ){
    memset(&lg.ep, 0, sizeof(lg.ep));
    lg.nBatch = lg.nEpoch = lg.lastEpoch = lg.lastBatch = 0;
    lg.stopEpoch = lg.stopBatch = 0;
    lg.x = &x; lg.valIdx = valIdx; lg.nVal = nVal; lg.l2 = c.l2;
    rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
    double worst = rc==AESQL_LOOP_OK ? 0.0 : INFINITY;
    for(i=0; i<4 && rc==AESQL_LOOP_OK; i++){
      double e = fabs(res.aEpoch[i].val_loss - lg.valWant[i])/lg.valWant[i];
      if( !(e<=worst) ) worst = isnan(e) ? INFINITY : e;
    }
    check_report(worst<=1e-7, "l2: val_loss = the last 25 rows' loss at the epoch's "
                 "weights + aesql_net_l2 there (rel 1e-7)", "rc %d, worst rel %.3g", rc, worst);
    if( rc==AESQL_LOOP_OK ) aesql_nn_mfree(res.aEpoch);
    aesql_net_work_free(lg.w);
    lg.w = 0;
  }
  c.l2 = 0.0;

  /* NaN in training: Adam moves a parameter by about lr a step, whatever
  ** the gradient; at lr 1e20 the output biases alone make the next
  ** batch's errors ~1e20, whose squares overflow float: the loop stops
  ** there, before that gradient reaches the weights */
  c.learning_rate = 1e20;
  memset(&lg, 0, sizeof(lg));
  lg.net = &nn;
  rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
  ok = rc==AESQL_LOOP_NAN && res.errEpoch==1 && res.errVal==0 && !isfinite(res.errValue)
    && res.nEpoch==0 && lg.nBatch>=1 && res.aEpoch!=0;
  for(p=0; p<nn.nParam; p++) ok &= isfinite(nn.param[p]);
  check_report(ok, "nan: learning rate 1e20: AESQL_LOOP_NAN in epoch 1 on the training "
               "loss, the weights still finite", "rc %d, errEpoch %d, errVal %d, errValue %g, "
               "after %d batches", rc, res.errEpoch, res.errVal, res.errValue, lg.nBatch);
  aesql_nn_mfree(res.aEpoch);
  c.learning_rate = 0.01;
  /* NaN in validation: held-out floats of 1e30, whose squared errors
  ** overflow float; the training rows are ordinary */
  for(i=0; i<N*D; i++) f[i] = i<nTrain*D ? aesql_u8_float[u[i]] : 1e30f;
  aesql_nn_data_init(&x, D, N, 0, f);
  memset(&lg, 0, sizeof(lg));
  lg.net = &nn;
  rc = aesql_loop_run(&nn, &x, &c, &cb, &res);
  check_report(rc==AESQL_LOOP_NAN && res.errEpoch==1 && res.errVal==1
               && !isfinite(res.errValue) && res.nEpoch==1 && isfinite(res.aEpoch[0].loss)
               && lg.nEpoch==0, "nan: held-out rows of 1e30: AESQL_LOOP_NAN on "
               "val_loss of epoch 1, before xEpoch", "rc %d, errEpoch %d, errVal %d, "
               "errValue %g", rc, res.errEpoch, res.errVal, res.errValue);
  aesql_nn_mfree(res.aEpoch);
  /* a NaN pixel in the training rows: a NaN loss, stopped */
  for(i=0; i<N*D; i++) f[i] = aesql_u8_float[u[i]];
  f[3*D + 5] = NAN;
  rc = aesql_loop_run(&nn, &x, &c, 0, &res);
  CHECK("nan: a NaN pixel: AESQL_LOOP_NAN, training loss, NaN",
        rc==AESQL_LOOP_NAN && res.errVal==0 && isnan(res.errValue) && res.errEpoch==1);
  aesql_nn_mfree(res.aEpoch);
  aesql_net_free(&nn); aesql_net_free(&n0);
  free(u); free(f);
}

/* ---------------------------------------------------------------- */
/* Early stopping */

/* Keras 3's EarlyStopping(monitor='val_loss', mode='min', patience,
** min_delta) on a recorded history v[0..n), written as Keras writes it:
** min_delta negated for mode 'min', an epoch improves when
** monitor_op(current - min_delta, best), i.e. current + min_delta <
** best, best starts as None (the first epoch always improves), wait
** counts from 0, and training stops at epoch e (0-based) when it has not
** improved, wait >= patience and e > 0. patience 0 here: no callback.
** Gives the epochs run and the best epoch (1-based), and whether it
** stopped. */
static void keras_rule(const double *v, int n, int patience, double minDelta,
                       int *pnRun, int *piBest, int *pStopped){
  const double md = -minDelta;        /* mode 'min': min_delta *= -1 */
  double best = 0.0;
  int haveBest = 0, wait = 0, e;
  *pnRun = n;
  *piBest = 0;
  *pStopped = 0;
  for(e=0; e<n; e++){
    wait += 1;
    if( !haveBest || v[e] - md < best ){
      best = v[e];
      haveBest = 1;
      *piBest = e+1;
      wait = 0;
      continue;
    }
    if( patience>0 && wait>=patience && e>0 ){
      *pnRun = e+1;
      *pStopped = 1;
      return;
    }
  }
}

/* xEpoch: copies the net's weights after each epoch. */
typedef struct es_rec {
  aesql_net *net;
  float *w;                  /* nEpoch x nParam */
  int nMax;
} es_rec;
static int es_epoch(void *pArg, int epoch, const aesql_epoch *e){
  es_rec *p = pArg;
  (void)e;
  if( epoch<=p->nMax ){
    memcpy(p->w + (size_t)(epoch-1)*p->net->nParam, p->net->param,
           sizeof(float)*p->net->nParam);
  }
  return 0;
}

/* One crafted data set: a reference run without early stopping records
** the history and every epoch's weights; then each setting's run must
** stop where Keras' rule, applied to that history, stops, and end with
** the weights it should. */
static void test_stopping_on(const char *zSet, const aesql_nn_data *x, int h,
                             const aesql_loop_cfg *base, int wantEarly){
  enum { E = 40 };
  aesql_net nn;
  aesql_loop_cfg c;
  aesql_loop_res r0, res;
  aesql_loop_cb cb;
  es_rec rec;
  double v[E];
  float *wRun = 0;
  char z[240];
  int i, s, nRun, iBest, stopped, nRun0, iBest0, stopped0;
  double dChosen = -1.0;
  struct { int patience; double minDelta; int restore; } aSet[8];
  int nSet = 0;

  memset(&rec, 0, sizeof(rec));
  if( aesql_net_init_dhd(&nn, x->d, h)
   || !(wRun = malloc(sizeof(float)*nn.nParam*E)) ){
    CHECK("stopping: init", 0);
    goto done;
  }
  rec.net = &nn;
  rec.nMax = E;
  rec.w = wRun;              /* the reference run's weights, epoch by epoch */
  cb.pArg = &rec;
  cb.xBatch = 0;
  cb.xEpoch = es_epoch;
  c = *base;
  c.epochs = E;
  c.patience = 0;
  c.restore_best = 0;
  if( aesql_loop_run(&nn, x, &c, &cb, &r0)!=AESQL_LOOP_OK || r0.nEpoch!=E ){
    CHECK("stopping: reference run", 0);
    goto done;
  }
  for(i=0; i<E; i++) v[i] = r0.aEpoch[i].val_loss;
  keras_rule(v, E, 0, 0.0, &nRun, &iBest, &stopped);
  snprintf(z, sizeof(z), "stopping %s: without patience, all %d epochs, the last "
           "epoch's weights, iBest the first minimum (%d)", zSet, E, iBest);
  CHECK(z, r0.earlyStopped==0 && r0.restored==0 && r0.iBest==iBest
        && memcmp(nn.param, wRun + (size_t)(E-1)*nn.nParam, sizeof(float)*nn.nParam)==0);
  printf("# stopping %s: val_loss", zSet);
  for(i=0; i<12; i++) printf(" %.5f", v[i]);
  printf(" ...\n");
  rec.w = 0;

  /* the settings: patience 3 and 2, with and without restoring; a
  ** min_delta that changes the outcome (chosen below); one so large that
  ** only the first epoch is ever best; patience beyond the epochs;
  ** restore_best without patience */
  keras_rule(v, E, 3, 0.0, &nRun0, &iBest0, &stopped0);
  snprintf(z, sizeof(z), "stopping %s: the data set makes patience 3 stop early "
           "(epoch %d of %d, best %d)", zSet, nRun0, E, iBest0);
  CHECK(z, stopped0==wantEarly && (!wantEarly || nRun0<E/2));
  {
    static const double aD[] = { 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1 };
    int k;
    for(k=0; k<(int)(sizeof(aD)/sizeof(aD[0])) && dChosen<0; k++){
      int a, b, st;
      keras_rule(v, E, 3, aD[k]*v[0], &a, &b, &st);
      if( a!=nRun0 || b!=iBest0 ) dChosen = aD[k]*v[0];
    }
    snprintf(z, sizeof(z), "stopping %s: a min_delta that changes where patience 3 "
             "stops (%.3g)", zSet, dChosen);
    CHECK(z, dChosen>0);
  }
  aSet[nSet].patience = 3; aSet[nSet].minDelta = 0.0; aSet[nSet++].restore = 1;
  aSet[nSet].patience = 3; aSet[nSet].minDelta = 0.0; aSet[nSet++].restore = 0;
  aSet[nSet].patience = 2; aSet[nSet].minDelta = 0.0; aSet[nSet++].restore = 1;
  aSet[nSet].patience = 3; aSet[nSet].minDelta = dChosen>0 ? dChosen : 0; aSet[nSet++].restore = 1;
  aSet[nSet].patience = 3; aSet[nSet].minDelta = dChosen>0 ? dChosen : 0; aSet[nSet++].restore = 0;
  aSet[nSet].patience = 3; aSet[nSet].minDelta = 1e9; aSet[nSet++].restore = 1;
  aSet[nSet].patience = 100; aSet[nSet].minDelta = 0.0; aSet[nSet++].restore = 1;
  aSet[nSet].patience = 0; aSet[nSet].minDelta = 0.0; aSet[nSet++].restore = 1;
  for(s=0; s<nSet; s++){
    const float *want;
    c = *base;
    c.epochs = E;
    c.patience = aSet[s].patience;
    c.min_delta = aSet[s].minDelta;
    c.restore_best = aSet[s].restore;
    rec.w = malloc(sizeof(float)*nn.nParam*E);      /* this run's, apart */
    if( !rec.w || aesql_loop_run(&nn, x, &c, &cb, &res)!=AESQL_LOOP_OK ){
      CHECK("stopping: run", 0);
      free(rec.w);
      rec.w = 0;
      continue;
    }
    keras_rule(v, E, c.patience, c.min_delta, &nRun, &iBest, &stopped);
    /* the weights it must end with: of the best epoch when restoring (and
    ** there is one), else of the last epoch run: from the reference run,
    ** which the epochs so far repeat bit for bit */
    want = wRun + (size_t)((c.restore_best ? iBest : nRun) - 1)*nn.nParam;
    snprintf(z, sizeof(z), "stopping %s: patience %d, min_delta %.3g, restore_best %d: "
             "epoch %d, best %d, %s, the %s epoch's weights bit for bit, the history "
             "repeated", zSet, c.patience, c.min_delta, c.restore_best, nRun, iBest,
             stopped ? "stopped early" : "not stopped", c.restore_best ? "best" : "last");
    check_report(res.nEpoch==nRun && res.iBest==iBest && res.earlyStopped==stopped
                 && res.restored==c.restore_best
                 && memcmp(nn.param, want, sizeof(float)*nn.nParam)==0
                 && same_history(res.aEpoch, r0.aEpoch, res.nEpoch), z,
                 "ran %d, best %d, earlyStopped %d, restored %d, weights %s", res.nEpoch,
                 res.iBest, res.earlyStopped, res.restored,
                 memcmp(nn.param, want, sizeof(float)*nn.nParam) ? "differ" : "same");
    if( s==0 ){
      /* xEpoch saw the weights of every epoch run: the reference's too */
      CHECK("stopping: xEpoch saw each epoch's weights (those of the reference run)",
            memcmp(rec.w, wRun, sizeof(float)*nn.nParam*res.nEpoch)==0);
    }
    if( s==5 ){
      snprintf(z, sizeof(z), "stopping %s: min_delta 1e9: best epoch 1, stopped at 4", zSet);
      CHECK(z, res.iBest==1 && res.nEpoch==4 && res.earlyStopped);
    }
    aesql_nn_mfree(res.aEpoch);
    free(rec.w);
    rec.w = 0;
  }
  aesql_nn_mfree(r0.aEpoch);
done:
  aesql_net_free(&nn);
  free(wRun);
}

static void test_stopping(void){
  enum { N = 80, D = 16 };
  /* A: the rows trained on have their pixels mostly in the first half,
  ** the held-out rows mostly in the second: val_loss falls for two
  ** epochs, then rises as the net learns the first kind */
  static const double pA1[2] = {0.1, 0.6}, pB1[2] = {0.6, 0.1};
  /* B: both alike, batches of 5 at lr 0.02: val_loss falls, then wanders */
  static const double pA2[2] = {0.5, 0.5};
  unsigned char *u1 = make_rows(77, N, D, 60, pA1, pB1);
  unsigned char *u2 = make_rows(78, N, D, N, pA2, pA2);
  aesql_nn_data x;
  aesql_loop_cfg c;
  if( !u1 || !u2 ){ CHECK("stopping: alloc", 0); goto done; }
  cfg_default(&c);
  c.batch_size = 10;
  c.learning_rate = 0.01;
  aesql_nn_data_init(&x, D, N, u1, 0);
  test_stopping_on("A (val_loss rises)", &x, 6, &c, 1);
  c.batch_size = 5;
  c.learning_rate = 0.02;
  aesql_nn_data_init(&x, D, N, u2, 0);
  test_stopping_on("B (val_loss wanders)", &x, 12, &c, 1);
done:
  free(u1); free(u2);
}

/* ---------------------------------------------------------------- */
/* Memory */

static void test_nomem(void){
  static const double pA[2] = {0.3, 0.3};
  unsigned char *u = make_rows(5, 60, 12, 60, pA, pA);
  aesql_net nn;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res res;
  long k, live;
  int rc, ok = 1, done = 0, nFail = 0;
  if( !u || aesql_net_init_dhd(&nn, 12, 4) ){ CHECK("nomem: init", 0); free(u); return; }
  aesql_nn_data_init(&x, 12, 60, u, 0);
  cfg_default(&c);
  c.restore_best = 1;
  c.patience = 2;
  c.dropout = 0.2;
  c.threads = 2;
  c.batch_size = 30;
  for(k=0; !done && k<300; k++){
    live = fm.nLive;
    fm_fail_in(k);
    rc = aesql_loop_run(&nn, &x, &c, 0, &res);
    fm_never();
    if( rc==AESQL_LOOP_OK ){
      done = 1;
      ok &= res.aEpoch!=0 && res.nEpoch>=1;
      aesql_nn_mfree(res.aEpoch);
    }else{
      nFail++;
      ok &= rc==AESQL_LOOP_NOMEM && res.aEpoch==0;
    }
    ok &= fm.nLive==live;
  }
  check_report(ok && done && nFail>=8, "nomem: AESQL_LOOP_NOMEM, aEpoch NULL and nothing "
               "left while any allocation fails; then it trains", "ok %d, done %d after "
               "%d failures", ok, done, nFail);
  aesql_net_free(&nn);
  free(u);
}

int main(void){
  const char *zWhy = 0;
  double t0 = check_now();
  aesql_nn_config_mem(fm_malloc, fm_free);
  if( aesql_blas_load(&zWhy) ){
    check_report(0, "blas: load OpenBLAS", "%s", zWhy);
    return check_done();
  }
  test_split();
  test_by_hand();
  test_threads();
  test_callbacks();
  test_stopping();
  test_nomem();
  check_report(fm.nLive==0, "memory: every block the core allocated is freed",
               "%ld blocks left", fm.nLive);
  printf("# %.1f s\n", check_now() - t0);
  return check_done();
}
