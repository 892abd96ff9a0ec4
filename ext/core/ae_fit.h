/*
** Mini-batch training steps and validation passes, data-parallel over a
** thread pool (ae_pool.h) with the passes of ae_net.h.
**
**   aesql_fit *f = aesql_fit_new(&net, &adam, &data, 256, 2, l2, dropout);
**   loss = aesql_fit_grad(f, idx, 256, key); (rows idx[0..256) of data)
**   aesql_fit_step(f);                       (Adam with that gradient)
**   val = aesql_fit_loss(f, idx + nTrain, nVal);
**   aesql_fit_free(f);
**
** A batch of n rows is cut into parts (aesql_fit_parts: at most
** AESQL_FIT_MAX_PARTS, as even as can be), which the threads take in turn
** as they come free: a thread that the system preempts holds up one part,
** not a fixed share. A part's forward and backward passes run with
** single-threaded sgemm, aesql_fit_pass_rows() rows at a time, each pass
** adding to the part's own gradient; the step
** adds the parts' gradients in part order and applies Adam, the threads
** taking ranges of the parameters. What a part computes does not depend
** on the thread that computes it, so the model
** depends on the data, the seed and the batch size only: any number of
** threads, and any timing, gives the same model bit for bit (on one
** machine: the kernels picked for a CPU can change the last bits, see
** ae_simd.h). Likewise the validation loss, whose parts' sums are added in
** part order.
**
** A fit reserves the buffer OpenBLAS maps for each of its threads
** (aesql_blas_reserve): aesql_fit_new() returns NULL when the process
** cannot map them (out of memory), and while the fit exists
** aesql_blas_threads() is 1. libaesql's OpenBLAS runs one thread a call.
*/
#ifndef AE_FIT_H
#define AE_FIT_H

#include "ae_net.h"
#include "ae_adam.h"
#include "ae_data.h"

/* The shape of the work, which fixes the order of every sum and so the
** bits of the model (never the thread count):
**  - a model of one hidden layer (libaesql 0.x's d-h-d, whose bits it
**    keeps): parts of AESQL_FIT_PART_ROWS rows or more, passes of
**    AESQL_FIT_PASS_ROWS rows, small enough for the pass's matrices to
**    stay in the core's caches;
**  - a deeper stack: parts of up to AESQL_FIT_STACK_ROWS rows, and two
**    parts when a batch of AESQL_FIT_STACK_ROWS/2 rows or more would make
**    one, each part one pass. Its wide layers' weight gradients are then
**    products over 128 rows rather than additions of four over 32, each of
**    which read and wrote the whole gradient: at 784-128-32-128-784 an
**    epoch takes 10-15% less.
*/
#ifndef AESQL_FIT_PART_ROWS
# define AESQL_FIT_PART_ROWS 64
#endif
#ifndef AESQL_FIT_MAX_PARTS
# define AESQL_FIT_MAX_PARTS 8
#endif
#ifndef AESQL_FIT_PASS_ROWS
# define AESQL_FIT_PASS_ROWS 32
#endif
#ifndef AESQL_FIT_STACK_ROWS
# define AESQL_FIT_STACK_ROWS 128
#endif

/* Parts of a batch of n >= 1 rows for net, and the rows of a pass. */
int aesql_fit_parts(const aesql_net *net, int n);
int aesql_fit_pass_rows(const aesql_net *net);

typedef struct aesql_fit aesql_fit;

/* A trainer of net with optimiser opt on the rows of x, for batches of
** up to maxBatch rows, with nThread threads (the caller's included; 0: one
** per online CPU), capped at the parts of a batch; l2 is the kernels'
** penalty (its gradient, 2 l2 W, joins the batch's in the step), dropout
** the rate on the hidden layers (0: none). net, opt and x are borrowed.
** NULL when out of memory or on bad sizes. */
aesql_fit *aesql_fit_new(aesql_net *net, aesql_adam *opt,
                         const aesql_nn_data *x, int maxBatch, int nThread,
                         double l2, double dropout);
void aesql_fit_free(aesql_fit *f);

/* Is the last layer's gradient taken by its Gram matrix (ae_net.h)? On
** by a cost rule when the model and data allow it; aesql_fit_set_gram()
** turns it off, or back on where allowed (tests, benchmarks). */
int  aesql_fit_gram(const aesql_fit *f);
void aesql_fit_set_gram(aesql_fit *f, int on);

/* Threads used (>= 1). */
int aesql_fit_threads(const aesql_fit *f);

/* Forward and backward passes on the batch of rows idx[0..n) of x
** (1 <= n <= maxBatch): keeps the gradient for aesql_fit_step() and
** returns the batch loss (mean squared error, without the l2 term).
** dropKey keys the batch's dropout masks (ae_net.h). */
double aesql_fit_grad(aesql_fit *f, const uint32_t *idx, int n,
                      uint64_t dropKey);

/* One Adam step with the gradient of the last aesql_fit_grad(); nothing
** when that gradient was used by a step already. */
void aesql_fit_step(aesql_fit *f);

/* The mean squared error over rows idx[0..n) of x, any n >= 0, without
** dropout or the l2 term; the Gram way when training takes it (within
** rounding of the direct way's). A gradient not yet stepped is spent. */
double aesql_fit_loss(aesql_fit *f, const uint32_t *idx, int n);

#endif /* AE_FIT_H */
