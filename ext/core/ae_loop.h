/*
** The training loop, as Keras' Model.fit runs it with the tutorial's
** arguments:
**
**   the last validation_split of the rows, in their order, held out
**   before any shuffling; the net initialised (glorot, from the seed's
**   generator); then every epoch: the training rows reshuffled (the same
**   generator), batches of batch_size rows, one Adam step each; the
**   epoch's loss the mean over its rows of the per-row loss as each batch
**   saw it, val_loss the same over the held-out rows with the weights at
**   the end of the epoch (both with the l2 term, as Keras adds it);
**   optionally early stopping, as EarlyStopping(monitor='val_loss',
**   patience, min_delta, restore_best_weights) in Keras 3: an epoch
**   improves when val_loss + min_delta < the best so far; training stops
**   once `patience` epochs in a row have not; with restore_best the net
**   ends with the best epoch's weights, whether or not it stopped early.
**
** A non-finite loss stops the loop before it reaches the weights. Two
** callbacks see it run: after every batch (for progress and interrupts)
** and after every epoch; either returns non-zero to stop it. The model
** depends on the data, the seed, the batch size and the options, not on
** the thread count (ae_fit.h).
*/
#ifndef AE_LOOP_H
#define AE_LOOP_H

#include <stdint.h>
#include "ae_net.h"
#include "ae_data.h"
#include "ae_adam.h"

typedef struct aesql_loop_cfg {
  int epochs, batch_size;
  double validation_split;   /* 0 <= . < 1 */
  int shuffle;
  uint64_t seed;
  double learning_rate, beta_1, beta_2, epsilon;   /* Adam */
  int adam;                  /* where epsilon goes: AESQL_ADAM_KERAS (0)
                             ** or AESQL_ADAM_TORCH (ae_adam.h) */
  double l2, dropout;
  int patience;              /* 0: no early stopping */
  double min_delta;
  int restore_best;
  int threads;               /* 0: one per core */
} aesql_loop_cfg;

typedef struct aesql_epoch {
  double loss, val_loss;     /* val_loss NAN without held-out rows */
  double seconds;
} aesql_epoch;

typedef struct aesql_loop_cb {
  void *pArg;
  /* After batch `batch` (1-based) of epoch `epoch` (1-based): the running
  ** loss of the epoch so far. May be NULL. */
  int (*xBatch)(void *pArg, int epoch, int batch, double loss);
  /* After each epoch, with its figures. May be NULL. */
  int (*xEpoch)(void *pArg, int epoch, const aesql_epoch *e);
} aesql_loop_cb;

/* Results of aesql_loop_run. */
#define AESQL_LOOP_OK       0
#define AESQL_LOOP_NOMEM    1   /* a trainer could not be made          */
#define AESQL_LOOP_NAN      2   /* the loss became NaN or infinite      */
#define AESQL_LOOP_STOPPED  3   /* a callback returned non-zero         */
#define AESQL_LOOP_MISUSE   4   /* bad sizes or options: no rows to train */

typedef struct aesql_loop_res {
  int nTrain, nVal;          /* rows trained on, held out */
  int nEpoch;                /* epochs that ran (aEpoch[0..nEpoch)) */
  int iBest;                 /* 1-based best epoch by the rule above;
                             ** 0 without held-out rows */
  int earlyStopped;          /* 1 when patience ended the training */
  int restored;              /* 1 when the net holds epoch iBest's weights */
  int nThread;               /* threads used */
  aesql_epoch *aEpoch;       /* epochs entries; aesql_nn_mfree() it */
  /* AESQL_LOOP_NAN: where, and what */
  int errEpoch;              /* 1-based */
  int errVal;                /* 1: the validation loss, 0: the training loss */
  double errValue;
} aesql_loop_res;

/* Initialises net from cfg->seed and trains it on the rows of x. *res is
** filled in every case (aEpoch NULL on NOMEM and MISUSE). */
int aesql_loop_run(aesql_net *net, const aesql_nn_data *x,
                   const aesql_loop_cfg *cfg, const aesql_loop_cb *cb,
                   aesql_loop_res *res);

/* Rows held out of n by validation_split: n - floor(n (1 - split)). */
int aesql_loop_split(int n, double split, int *pnTrain);

#endif /* AE_LOOP_H */
