/*
** Data-parallel mini-batch training (declared in ae_fit.h).
**
** A step is two runs of the pool (ae_pool.c). In the first, the units are
** the parts of the batch, each going through aesql_net_grad_rows() in
** passes of up to aesql_fit_pass_rows() rows, the first writing the part's
** own gradient and the others adding to it, with the scratch of the
** thread that claimed the part. (aesql_net_grad_rows.) Between the runs the caller adds up the
** loss, so that it can stop before
** a non-finite loss reaches the weights, and may poll for interrupts. In
** the second run the units are ranges of the parameters, to which Adam is
** applied, adding the parts' gradients in part order as it goes
** (aesql_adam_update), after adding the l2 term's gradient, 2 l2 W, to
** the first part's over the same range. Validation's units are parts of the rows, each
** part's sum of squared errors into its own slot (the Gram way too, when
** training takes it, after a run of the same units that prepare it).
**
** With the last layer taken by its Gram matrix (gram, below; ae_net.h) a
** step has a third run first, whose units compute rows of G = W W' and
** pixels of W' for the passes; the second run's units then include rows
** of that layer's W, each building its rows of the gradient from the
** parts' A'A, colsum(A) and X'A (aesql_net_gram_grad) and applying Adam.
** They read W' and b as the first run copied them, since other units
** write W and b meanwhile. Every split is fixed by the model, never by the
** thread count.
**
** Nothing here knows about SQLite; memory comes from aesql_nn_malloc()
** (ae_mem.h), and none is allocated after aesql_fit_new().
*/
#include "ae_fit.h"
#include "ae_mem.h"
#include "ae_pool.h"
#include "ae_blas.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(AESQL_FIT_MAX_PARTS<=AESQL_NET_GRAM_PARTS,
               "aesql_net_gram_grad sums every part");

/* Rows of a part of the validation pass (aesql_net_sse_rows takes them
** a pass at a time). */
#define FIT_VAL_ROWS 256

struct aesql_fit {
  aesql_net *nn;
  float l2;
  aesql_adam *opt;
  const aesql_nn_data *x;
  aesql_pool *pool;
  int nThread;
  int maxBatch;
  int passRows;          /* aesql_fit_pass_rows */
  int nGrad;             /* gradients: the parts of a full batch */
  int nSse;              /* slots in aSse */
  int nChunk;            /* ranges of parameters for Adam */
  int nReserved;         /* OpenBLAS buffers reserved (aesql_blas_reserve) */
  int nWork;             /* scratches: one a thread, or one a part (defer) */
  aesql_net_work **aWork; /* nWork */
  /* defer: the first layer's weight gradient is summed by the step, a
  ** block of nPix pixels (nPix*h parameters) at a time, from each part's
  ** pass kept in its own scratch (aesql_net_first_grad): each block of
  ** the parts' gradients into aTmp[t] (nGrad x nPix x h floats, thread t)
  ** and straight into Adam, instead of into aGrad and back from memory. */
  int defer;
  int nPix, nW1;         /* pixels a unit of the step; units over W1 */
  size_t w1End;          /* W1's parameters are [0, w1End) */
  float **aTmp;          /* nThread */
  /* gram: the last layer the Gram way (ae_net.h): each step's G = W W',
  ** W' and u = W b first, by nGramBlk units (rows of G, pixels of W'),
  ** then the parts' passes, each leaving A'A, colsum(A) and X'A in its
  ** aGram[j] for the step, whose nGramBlk units over rows of W build that
  ** layer's weight gradient into gT (hIn x d) and apply Adam there. */
  int gramOk;            /* the model and data allow it (the buffers exist) */
  int gram;              /* ... and it is on (the cost rule, or set) */
  int nGramBlk;
  size_t wOutLo, wOutHi; /* the last layer's weights [wOutLo, wOutHi) */
  aesql_net_gram *aGram; /* nGrad; G, Wt, u shared */
  float *gT;             /* hIn x d */
  float **aSt;           /* nThread: scratch of aesql_net_gram_grad */
  float **aGrad;         /* nGrad: part j's gradient (nParam floats) */
  double *aSse;          /* nSse: part j's sum of squared errors */
  /* The run in progress. */
  const uint32_t *idx;
  int n;                 /* rows */
  int nPart;             /* parts */
  float lr_t;
  uint64_t dropKey;
};

/* See ae_fit.h. One hidden layer: one part per AESQL_FIT_PART_ROWS rows,
** rounded up; a stack: one per AESQL_FIT_STACK_ROWS, and two from half
** that. At most AESQL_FIT_MAX_PARTS. */
int aesql_fit_parts(const aesql_net *net, int n){
  int k;
  if( net->nLayer<=2 ){
    k = (n + AESQL_FIT_PART_ROWS - 1)/AESQL_FIT_PART_ROWS;
  }else{
    k = (n + AESQL_FIT_STACK_ROWS - 1)/AESQL_FIT_STACK_ROWS;
    if( k<2 && n>=AESQL_FIT_STACK_ROWS/2 ) k = 2;
  }
  return k<1 ? 1 : k>AESQL_FIT_MAX_PARTS ? AESQL_FIT_MAX_PARTS : k;
}

int aesql_fit_pass_rows(const aesql_net *net){
  return net->nLayer<=2 ? AESQL_FIT_PASS_ROWS : AESQL_FIT_STACK_ROWS;
}

/* Rows [lo, hi) of part j of k of n rows. */
static void fit_rows(int n, int j, int k, int *lo, int *hi){
  *lo = (int)((long long)n*j/k);
  *hi = (int)((long long)n*(j+1)/k);
}

/* Unit j: part j of the batch, in passes, with thread t's scratch (the
** part's own when deferring, kept for the step). */
static void fit_grad_task(void *arg, int j, int t){
  aesql_fit *f = arg;
  aesql_net_work *w = f->aWork[f->defer ? j : t];
  double sse = 0.0;
  int lo, hi, q, nPass, a, b;
  fit_rows(f->n, j, f->nPart, &lo, &hi);
  nPass = (hi - lo + f->passRows - 1)/f->passRows;
  aesql_net_work_set_defer(w, f->defer && nPass==1);
  if( f->gramOk ){
    aesql_net_work_set_gram(w, f->gram && nPass==1 ? &f->aGram[j] : 0);
  }
  for(q=0; q<nPass; q++){
    fit_rows(hi - lo, q, nPass, &a, &b);
    sse += aesql_net_grad_rows(f->nn, w, f->x, f->idx + lo + a,
                               b - a, f->n, f->aGrad[j], q>0, f->dropKey,
                               lo + a);
  }
  f->aSse[j] = sse;
}

/* Unit j: part j of the rows whose loss is asked, the Gram way when
** training takes it (its G, u and W' prepared for the weights now). */
static void fit_loss_task(void *arg, int j, int t){
  aesql_fit *f = arg;
  int lo, hi;
  fit_rows(f->n, j, f->nPart, &lo, &hi);
  if( f->gram ){
    f->aSse[j] = aesql_net_gram_sse_rows(f->nn, f->aWork[t], f->x,
                                         f->idx + lo, hi - lo, &f->aGram[0]);
  }else{
    f->aSse[j] = aesql_net_sse_rows(f->nn, f->aWork[t], f->x, f->idx + lo,
                                    hi - lo);
  }
}

/* Adds 2 l2 W to part 0's gradient over parameters [lo, hi), for the
** kernels' weights there (biases have no penalty). Elementwise: any split
** of the parameters gives the same sums. */
static void fit_l2_grad(aesql_fit *f, size_t lo, size_t hi){
  const aesql_net *net = f->nn;
  const float c = 2.0f*f->l2;
  float *g = f->aGrad[0];
  int l;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    size_t a = L->off, b = L->off + (size_t)L->nIn*L->nOut, i;
    if( a<lo ) a = lo;
    if( b>hi ) b = hi;
    for(i=a; i<b; i++) g[i] += c*net->param[i];
  }
}

/* Deferring, unit j < nW1: pixels [i0, i1) of W1, thread t. Each part's
** gradient there into aTmp[t] from its scratch (or read where it is, in
** aGrad, when its pass could not leave it out), 2 l2 W added to part 0's,
** then Adam: the same operations in the same order as over aGrad. */
static void fit_step_w1(aesql_fit *f, int j, int t){
  const int h = f->nn->layer[0].nOut, d = f->nn->layer[0].nIn;
  const int i0 = j*f->nPix, i1 = i0 + f->nPix < d ? i0 + f->nPix : d;
  const size_t lo = (size_t)i0*h, nk = (size_t)(i1 - i0)*h;
  float *aG[AESQL_FIT_MAX_PARTS];
  int p;
  for(p=0; p<f->nPart; p++){
    aG[p] = f->aTmp[t] + (size_t)p*f->nPix*h;
    if( aesql_net_first_grad(f->aWork[p], i0, i1, aG[p]) ){
      aG[p] = f->aGrad[p] + lo;
    }
  }
  if( f->l2>0.0f ){
    const float c = 2.0f*f->l2, *w = f->nn->param + lo;
    float *g = aG[0];
    size_t i;
    for(i=0; i<nk; i++) g[i] += c*w[i];
  }
  aesql_adam_update_at(f->opt, f->lr_t, f->nn->param,
                       (const float*const*)aG, f->nPart, lo, lo + nk);
}

/* The Gram way, before a batch's passes, unit j of nGramBlk: block rows
** of G (and u there), pixels of W'. G's upper triangle goes in four
** block rows of falling cost; with two units, unit j takes rows j and
** 3 - j of them, the same multiply-adds each; with one, all four. */
static void fit_prep_task(void *arg, int j, int t){
  aesql_fit *f = arg;
  const aesql_layer *L = &f->nn->layer[f->nn->nLayer-1];
  int i0, i1, j0, j1, q;
  (void)t;
  fit_rows(L->nOut, j, f->nGramBlk, &j0, &j1);
  aesql_net_gram_prep(f->nn, &f->aGram[0], 0, 0, j0, j1);
  for(q=0; q<4; q++){
    if( f->nGramBlk==2 && q!=j && q!=3-j ) continue;
    fit_rows(L->nIn, q, 4, &i0, &i1);
    aesql_net_gram_prep(f->nn, &f->aGram[0], i0, i1, 0, 0);
  }
}

/* The Gram way, the step's unit j of nGramBlk: rows [i0, i1) of the last
** layer's weight gradient, c (S W + colA' b - R'), S, colA and R summed
** over the parts that took the Gram way, in part order, plus the others'
** gradients there; then 2 l2 W, then Adam. */
static void fit_step_out(aesql_fit *f, int j, int t){
  const aesql_layer *L = &f->nn->layer[f->nn->nLayer-1];
  const int h = L->nIn, d = L->nOut;
  float *T;
  const float *pT;
  int i0, i1, p, k;
  size_t nk;
  fit_rows(h, j, f->nGramBlk, &i0, &i1);
  if( i1<=i0 ) return;
  T = f->gT + (size_t)i0*d;
  nk = (size_t)(i1 - i0)*d;
  if( aesql_net_gram_grad(f->nn, f->aWork, f->aGram, f->nPart, f->n, i0, i1,
                          f->aSt[t], T)==0 ){
    memset(T, 0, sizeof(float)*nk);
  }
  for(p=0; p<f->nPart; p++){
    if( !aesql_net_gram_done(f->aWork[p]) ){
      const float *g = f->aGrad[p] + f->wOutLo + (size_t)i0*d;
      for(k=0; k<(int)nk; k++) T[k] += g[k];
    }
  }
  if( f->l2>0.0f ){
    const float c2 = 2.0f*f->l2, *w = L->w + (size_t)i0*d;
    for(k=0; k<(int)nk; k++) T[k] += c2*w[k];
  }
  pT = T;
  aesql_adam_update_at(f->opt, f->lr_t, f->nn->param, &pT, 1,
                       f->wOutLo + (size_t)i0*d, f->wOutLo + (size_t)i1*d);
}

/* l2 and Adam over parameters [lo, hi) from the parts' gradients. */
static void fit_step_range(aesql_fit *f, size_t lo, size_t hi){
  if( lo>=hi ) return;
  if( f->l2>0.0f ) fit_l2_grad(f, lo, hi);
  aesql_adam_update(f->opt, f->lr_t, f->nn->param, (const float*const*)f->aGrad,
                    f->nPart, lo, hi);
}

/* Unit j of the step. First the Gram way's units over the last layer's
** rows (fit_step_out), the largest, so that threads claiming in order
** fill in behind them with the small ones (put last, they can leave one
** thread idle for most of one); then, deferring, W1's (fit_step_w1); then
** range j of nChunk of the other parameters, in blocks of 16 (64 bytes,
** so that no two threads write one cache line). Which thread takes which
** unit changes no bit. */
static void fit_step_task(void *arg, int j, int t){
  aesql_fit *f = arg;
  size_t np = f->opt->n, base = f->defer ? f->w1End : 0;
  size_t nb, lo, hi;
  if( f->gram ){
    if( j<f->nGramBlk ){ fit_step_out(f, j, t); return; }
    j -= f->nGramBlk;
  }
  if( f->defer ){
    if( j<f->nW1 ){ fit_step_w1(f, j, t); return; }
    j -= f->nW1;
  }
  nb = (np - base + 15)/16;
  lo = base + nb*j/f->nChunk*16;
  hi = base + nb*(j+1)/f->nChunk*16;
  if( hi>np ) hi = np;
  if( f->gram ){      /* around the last layer's weights, fit_step_out's */
    fit_step_range(f, lo, hi<f->wOutLo ? hi : f->wOutLo);
    fit_step_range(f, lo>f->wOutHi ? lo : f->wOutHi, hi);
  }else{
    fit_step_range(f, lo, hi);
  }
}

/* The Gram way's buffers, when the model and data allow it (deferring, a
** linear last layer no wider in than out, parts of one pass each), and
** whether it is on: when it costs fewer multiply-adds a batch of maxBatch
** rows, counting the sparse products by the mean non-zero pixels a row
** and at three times a dense one's cost (measured: sparse X W at 128
** units runs at about a third of sgemm's rate), and G = W W' as a whole
** product though syrk does half of it (so the rule errs towards the
** direct way: at MNIST's shape it stays off for batches of 128, which
** the halved count would turn on by 1%). Non-zero: out of memory. */
static int fit_gram_new(aesql_fit *f, int maxBatch){
  const aesql_net *nn = f->nn;
  const aesql_layer *L = &nn->layer[nn->nLayer-1];
  const double h = L->nIn, d = L->nOut, B = maxBatch;
  double nnz, direct, gram;
  size_t hh = (size_t)L->nIn*L->nIn, hd = (size_t)L->nIn*L->nOut;
  int i;
  if( !f->defer || L->act!=AESQL_ACT_LINEAR || L->nIn>L->nOut
   || maxBatch>AESQL_FIT_MAX_PARTS*AESQL_FIT_STACK_ROWS || f->x->n==0 ){
    return 0;
  }
  f->nGramBlk = L->nIn>=2 ? 2 : 1;
  f->wOutLo = L->off;
  f->wOutHi = L->off + hd;
  f->aGram = aesql_nn_calloc(f->nGrad, sizeof(aesql_net_gram));
  f->aSt = aesql_nn_calloc(f->nThread, sizeof(float*));
  f->gT = aesql_nn_malloc(sizeof(float)*hd);
  if( f->aGram==0 || f->aSt==0 || f->gT==0 ) return 1;
  /* G, Wt, u and b: one allocation, shared by the parts */
  f->aGram[0].G = aesql_nn_malloc(sizeof(float)*(hh + hd + L->nIn
                                                 + L->nOut));
  if( f->aGram[0].G==0 ) return 1;
  f->aGram[0].Wt = f->aGram[0].G + hh;
  f->aGram[0].u = f->aGram[0].Wt + hd;
  f->aGram[0].b = f->aGram[0].u + L->nIn;
  for(i=0; i<f->nGrad; i++){
    aesql_net_gram *g = &f->aGram[i];
    g->G = f->aGram[0].G;
    g->Wt = f->aGram[0].Wt;
    g->u = f->aGram[0].u;
    g->b = f->aGram[0].b;
    g->S = aesql_nn_malloc(sizeof(float)*(hh + L->nIn));
    g->R = aesql_nn_malloc(sizeof(float)*hd);
    if( g->S==0 || g->R==0 ) return 1;
    g->colA = g->S + hh;
  }
  for(i=0; i<f->nThread; i++){
    f->aSt[i] = aesql_nn_malloc(sizeof(float)*((size_t)L->nIn*L->nIn
                                               + L->nIn));
    if( f->aSt[i]==0 ) return 1;
  }
  f->gramOk = 1;
  nnz = (double)f->x->nzStart[f->x->n]/(double)f->x->n;
  direct = 3.0*B*h*d;
  gram = 2.0*h*h*d + B*(2.0*h*h + 3.0*2.0*nnz*h);
  f->gram = gram<direct;
  return 0;
}

void aesql_fit_set_gram(aesql_fit *f, int on){
  f->gram = f->gramOk && on!=0;
}

int aesql_fit_gram(const aesql_fit *f){
  return f->gram;
}

aesql_fit *aesql_fit_new(aesql_net *nn, aesql_adam *opt,
                         const aesql_nn_data *x, int maxBatch, int nThread,
                         double l2, double dropout){
  aesql_fit *f;
  int i;
  if( maxBatch<1 || x->d!=aesql_net_width(nn) || opt->n!=nn->nParam
   || !(l2>=0.0) || !(dropout>=0.0 && dropout<1.0) ){
    return 0;
  }
  f = aesql_nn_calloc(1, sizeof(*f));
  if( f==0 ) return 0;
  f->nn = nn;
  f->l2 = (float)l2;
  f->opt = opt;
  f->x = x;
  f->maxBatch = maxBatch;
  f->passRows = aesql_fit_pass_rows(nn);
  f->nGrad = aesql_fit_parts(nn, maxBatch);
  /* validation: parts of FIT_VAL_ROWS rows over at most every row of x */
  f->nSse = (int)((x->n + FIT_VAL_ROWS - 1)/FIT_VAL_ROWS);
  if( f->nSse<f->nGrad ) f->nSse = f->nGrad;
  /* Adam: ranges of at least 4096 parameters, a few per thread */
  f->nChunk = (int)(opt->n/4096 < 32 ? opt->n/4096 : 32);
  if( f->nChunk<1 ) f->nChunk = 1;
  if( nThread<=0 ){
    long nCpu = sysconf(_SC_NPROCESSORS_ONLN);
    nThread = nCpu>0 ? (int)(nCpu<256 ? nCpu : 256) : 1;
  }
  if( nThread>f->nGrad ) nThread = f->nGrad;
  f->pool = aesql_pool_new(nThread);
  f->aGrad = aesql_nn_calloc(f->nGrad, sizeof(float*));
  f->aSse = aesql_nn_calloc(f->nSse, sizeof(double));
  if( f->pool==0 || f->aGrad==0 || f->aSse==0 ){
    aesql_fit_free(f);
    return 0;
  }
  f->nThread = aesql_pool_threads(f->pool);
  /* Deferring the first layer's weight gradient: indexed rows, a stack
  ** (whose parts are one pass each for batches up to 1024 rows; a part of
  ** more passes writes its gradient to aGrad as before), and a first
  ** layer whose X' dH goes by pixel */
  f->nWork = f->nThread;
  f->defer = x->nz && nn->nLayer>2 && aesql_net_first_by_pixel(nn);
  if( f->defer ){
    const int h = nn->layer[0].nOut;
    f->nWork = f->nGrad;
    f->nPix = 4096/h > 0 ? 4096/h : 1;
    f->nW1 = (nn->layer[0].nIn + f->nPix - 1)/f->nPix;
    f->w1End = (size_t)nn->layer[0].nIn*h;
    f->nChunk = (int)((nn->nParam - f->w1End)/4096 < 32
                      ? (nn->nParam - f->w1End)/4096 : 32);
    if( f->nChunk<1 ) f->nChunk = 1;
    f->aTmp = aesql_nn_calloc(f->nThread, sizeof(float*));
    if( f->aTmp==0 ){ aesql_fit_free(f); return 0; }
    for(i=0; i<f->nThread; i++){
      f->aTmp[i] = aesql_nn_malloc(sizeof(float)*f->nGrad*f->nPix*(size_t)h);
      if( f->aTmp[i]==0 ){ aesql_fit_free(f); return 0; }
    }
  }
  f->aWork = aesql_nn_calloc(f->nWork, sizeof(aesql_net_work*));
  if( f->aWork==0 ){ aesql_fit_free(f); return 0; }
  for(i=0; i<f->nWork; i++){
    f->aWork[i] = aesql_net_work_new(nn, f->passRows, dropout);
    if( f->aWork[i]==0 ){ aesql_fit_free(f); return 0; }
  }
  for(i=0; i<f->nGrad; i++){
    f->aGrad[i] = aesql_nn_calloc(nn->nParam, sizeof(float));
    if( f->aGrad[i]==0 ){ aesql_fit_free(f); return 0; }
  }
  if( fit_gram_new(f, maxBatch) ){ aesql_fit_free(f); return 0; }
  /* The buffer OpenBLAS maps for each of our threads: mapped now, or out
  ** of memory, rather than retried for ever in the first step (ae_blas.h).
  ** Our OpenBLAS runs one thread a call already. */
  if( aesql_blas_reserve(f->nThread)!=AESQL_BLAS_OK ){
    aesql_fit_free(f);
    return 0;
  }
  f->nReserved = f->nThread;
  return f;
}

void aesql_fit_free(aesql_fit *f){
  int i;
  if( f==0 ) return;
  aesql_pool_free(f->pool);
  if( f->nReserved ) aesql_blas_release(f->nReserved);
  if( f->aWork ){
    for(i=0; i<f->nWork; i++) aesql_net_work_free(f->aWork[i]);
  }
  if( f->aTmp ){
    for(i=0; i<f->nThread; i++) aesql_nn_mfree(f->aTmp[i]);
  }
  if( f->aGrad ){
    for(i=0; i<f->nGrad; i++) aesql_nn_mfree(f->aGrad[i]);
  }
  if( f->aGram ){
    for(i=0; i<f->nGrad; i++){
      aesql_nn_mfree(f->aGram[i].S);
      aesql_nn_mfree(f->aGram[i].R);
    }
    aesql_nn_mfree(f->aGram[0].G);
  }
  if( f->aSt ){
    for(i=0; i<f->nThread; i++) aesql_nn_mfree(f->aSt[i]);
  }
  aesql_nn_mfree(f->aSt);
  aesql_nn_mfree(f->aGram);
  aesql_nn_mfree(f->gT);
  aesql_nn_mfree(f->aWork);
  aesql_nn_mfree(f->aTmp);
  aesql_nn_mfree(f->aGrad);
  aesql_nn_mfree(f->aSse);
  aesql_nn_mfree(f);
}

int aesql_fit_threads(const aesql_fit *f){
  return f->nThread;
}

double aesql_fit_grad(aesql_fit *f, const uint32_t *idx, int n,
                      uint64_t dropKey){
  double sse = 0.0;
  int j;
  if( n<1 || n>f->maxBatch ) return NAN;
  f->dropKey = dropKey;
  f->idx = idx;
  f->n = n;
  f->nPart = aesql_fit_parts(f->nn, n);
  if( f->gram ) aesql_pool_run(f->pool, f->nGramBlk, fit_prep_task, f);
  aesql_pool_run(f->pool, f->nPart, fit_grad_task, f);
  for(j=0; j<f->nPart; j++) sse += f->aSse[j];
  return sse/((double)n*aesql_net_width(f->nn));
}

void aesql_fit_step(aesql_fit *f){
  if( f->nPart<1 ) return;
  f->lr_t = aesql_adam_next(f->opt);
  aesql_pool_run(f->pool, f->nW1 + (f->gram ? f->nGramBlk : 0) + f->nChunk,
                 fit_step_task, f);
  f->nPart = 0;   /* the gradient is spent (and holds the l2 term now) */
}

double aesql_fit_loss(aesql_fit *f, const uint32_t *idx, int n){
  double sse = 0.0;
  int j;
  if( n<=0 ) return 0.0;
  if( (size_t)n > f->x->n ) return NAN;
  f->idx = idx;
  f->n = n;
  f->nPart = (n + FIT_VAL_ROWS - 1)/FIT_VAL_ROWS;
  if( f->gram ) aesql_pool_run(f->pool, f->nGramBlk, fit_prep_task, f);
  aesql_pool_run(f->pool, f->nPart, fit_loss_task, f);
  for(j=0; j<f->nPart; j++) sse += f->aSse[j];
  f->nPart = 0;                /* no gradient for aesql_fit_step() */
  return sse/((double)n*aesql_net_width(f->nn));
}
