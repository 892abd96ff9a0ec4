/*
** The training loop (declared in ae_loop.h): epochs, the split, the
** shuffles, early stopping, the NaN stop, the history and the callbacks,
** over the data-parallel steps of ae_fit.h.
*/
#include "ae_loop.h"
#include "ae_fit.h"
#include "ae_adam.h"
#include "ae_mem.h"

#include <math.h>
#include <string.h>
#include <time.h>

static double loop_now(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

int aesql_loop_split(int n, double split, int *pnTrain){
  int nTrain = (int)floor(n*(1.0 - split));
  if( nTrain<0 ) nTrain = 0;
  if( nTrain>n ) nTrain = n;
  *pnTrain = nTrain;
  return n - nTrain;
}

/* The key of step s's dropout masks: its own stream, so that turning
** dropout on changes neither the initial weights nor the shuffles. */
static uint64_t loop_drop_key(uint64_t seed, uint64_t step){
  return aesql_net_drop_seed(seed ^ 0x6a09e667f3bcc909ull, step,
                             AESQL_NET_MAX_LAYERS);
}

int aesql_loop_run(aesql_net *net, const aesql_nn_data *x,
                   const aesql_loop_cfg *cfg, const aesql_loop_cb *cb,
                   aesql_loop_res *res){
  aesql_adam adam;
  aesql_fit *fit = 0;
  aesql_rng rng;
  uint32_t *idx = 0;
  float *best = 0;
  double bestLoss = INFINITY;
  uint64_t step = 0;
  int rc = AESQL_LOOP_OK, nTrain, nVal, e, i, wait = 0;
  const int n = (int)x->n;

  memset(res, 0, sizeof(*res));
  memset(&adam, 0, sizeof(adam));
  if( x->n>0x7fffffff || cfg->epochs<1 || cfg->batch_size<1
   || aesql_adam_mode_name(cfg->adam)==0 ){
    return AESQL_LOOP_MISUSE;
  }
  nVal = aesql_loop_split(n, cfg->validation_split, &nTrain);
  res->nTrain = nTrain;
  res->nVal = nVal;
  if( nTrain<1 || (cfg->patience>0 && nVal<1) ) return AESQL_LOOP_MISUSE;

  if( aesql_adam_init(&adam, net->nParam, (float)cfg->learning_rate,
                      (float)cfg->beta_1, (float)cfg->beta_2,
                      (float)cfg->epsilon)
   || !(idx = aesql_nn_malloc(sizeof(uint32_t)*(size_t)n))
   || !(res->aEpoch = aesql_nn_calloc((size_t)cfg->epochs, sizeof(aesql_epoch)))
   || (cfg->restore_best && nVal>0
       && !(best = aesql_nn_malloc(sizeof(float)*net->nParam)))
   || !(fit = aesql_fit_new(net, &adam, x, cfg->batch_size, cfg->threads,
                            cfg->l2, cfg->dropout)) ){
    rc = AESQL_LOOP_NOMEM;
    goto done;
  }
  aesql_adam_set_mode(&adam, cfg->adam);   /* a mode checked above */
  res->nThread = aesql_fit_threads(fit);
  for(i=nTrain; i<n; i++) idx[i] = (uint32_t)i;      /* held out, in order */
  aesql_rng_seed(&rng, cfg->seed);
  aesql_net_glorot(net, &rng);

  for(e=0; e<cfg->epochs; e++){
    aesql_epoch *ep = &res->aEpoch[e];
    double t0 = loop_now(), sum = 0.0;
    int b;
    for(i=0; i<nTrain; i++) idx[i] = (uint32_t)i;
    if( cfg->shuffle ) aesql_rng_shuffle(&rng, idx, (uint32_t)nTrain);
    for(b=0; b<nTrain; b+=cfg->batch_size){
      int nb = nTrain-b < cfg->batch_size ? nTrain-b : cfg->batch_size;
      double l = aesql_fit_grad(fit, idx+b, nb, loop_drop_key(cfg->seed, step));
      /* Keras' loss includes the penalty, at the weights the batch saw */
      if( cfg->l2>0.0 ) l += aesql_net_l2(net, cfg->l2);
      if( !isfinite(l) ){
        res->errEpoch = e+1;
        res->errVal = 0;
        res->errValue = l;
        rc = AESQL_LOOP_NAN;
        goto done;
      }
      aesql_fit_step(fit);
      step++;
      sum += l*nb;
      if( cb && cb->xBatch
       && cb->xBatch(cb->pArg, e+1, b/cfg->batch_size + 1, sum/(b+nb)) ){
        rc = AESQL_LOOP_STOPPED;
        goto done;
      }
    }
    ep->loss = sum/nTrain;
    if( nVal>0 ){
      ep->val_loss = aesql_fit_loss(fit, idx+nTrain, nVal);
      if( cfg->l2>0.0 ) ep->val_loss += aesql_net_l2(net, cfg->l2);
    }else{
      ep->val_loss = NAN;
    }
    ep->seconds = loop_now() - t0;
    res->nEpoch = e+1;
    if( nVal>0 && !isfinite(ep->val_loss) ){
      res->errEpoch = e+1;
      res->errVal = 1;
      res->errValue = ep->val_loss;
      rc = AESQL_LOOP_NAN;
      goto done;
    }
    if( cb && cb->xEpoch && cb->xEpoch(cb->pArg, e+1, ep) ){
      rc = AESQL_LOOP_STOPPED;
      goto done;
    }
    /* Early stopping's bookkeeping, as Keras 3's EarlyStopping: the best
    ** epoch is tracked with or without patience. */
    if( nVal>0 ){
      wait++;
      if( ep->val_loss + cfg->min_delta < bestLoss ){
        bestLoss = ep->val_loss;
        res->iBest = e+1;
        if( best ) memcpy(best, net->param, sizeof(float)*net->nParam);
        wait = 0;
      }else if( cfg->patience>0 && wait>=cfg->patience && e>0 ){
        res->earlyStopped = 1;
        break;
      }
    }
  }
  if( best && res->iBest>0 ){
    memcpy(net->param, best, sizeof(float)*net->nParam);
    res->restored = 1;
  }

done:
  aesql_fit_free(fit);
  aesql_adam_free(&adam);
  aesql_nn_mfree(idx);
  aesql_nn_mfree(best);
  if( rc==AESQL_LOOP_NOMEM ){
    aesql_nn_mfree(res->aEpoch);
    res->aEpoch = 0;
  }
  return rc;
}
