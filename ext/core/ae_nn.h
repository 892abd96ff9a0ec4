/*
** The autoencoder's numerics: the model, its initialisation, a seeded
** random generator, forward and backward passes on mini-batches (BLAS),
** the same passes with plain loops (the reference they are tested
** against), and Adam in Keras' formulation.
**
** Model: x (d) -> h = relu(x W1 + b1) (h units) -> y = h W2 + b2 (d).
** Loss of a batch of n rows: mean over the n*d elements of (y - x)^2,
** Keras' mean_squared_error averaged over the batch.
**
** Two ways to give a batch: a dense n x d float matrix (aesql_nn_forward,
** aesql_nn_grad), or row numbers into a data set (aesql_nn_data) held in
** its own encoding, bytes or floats (aesql_nn_grad_rows, aesql_nn_sse_rows).
** The second is the training path: it reads the rows where they are, and
** when the data set is indexed, the first layer's two products
** (X W1 and X' dH) run over the non-zero pixels only.
*/
#ifndef AE_NN_H
#define AE_NN_H

#include <stddef.h>
#include <stdint.h>

#include "ae_mem.h"
#include "ae_rng.h"

/* ---- the model ---- */
typedef struct aesql_nn {
  int d, h;      /* input/output width, hidden units */
  float *w1;     /* d x h, row-major: w1[i*h + k] joins input i to unit k (Keras kernel) */
  float *b1;     /* h */
  float *w2;     /* h x d: w2[k*d + j] joins unit k to output j */
  float *b2;     /* d */
  float *param;  /* the one allocation: w1, b1, w2, b2 in this order */
} aesql_nn;

/* Parameters of a d-h-d model: d*h + h + h*d + d. */
size_t aesql_nn_nparam(int d, int h);
/* Allocates zeroed parameters; 0 on success, non-zero on out of memory. */
int  aesql_nn_alloc(aesql_nn *nn, int d, int h);
void aesql_nn_free(aesql_nn *nn);
/* Keras Dense defaults: glorot-uniform kernels, limit sqrt(6/(fan_in+fan_out)),
** drawn w1 first then w2, each in row-major order; zero biases. */
void aesql_nn_glorot(aesql_nn *nn, aesql_rng *r);

/* ---- forward and backward ---- */
/* Scratch space for batches of up to max_n rows. */
typedef struct aesql_nn_work aesql_nn_work;
aesql_nn_work *aesql_nn_work_new(int d, int h, int max_n);
void aesql_nn_work_free(aesql_nn_work *w);

/* Forward pass of n rows X (n x d, row-major). Writes the hidden codes
** to H (n x h) and the outputs to Y (n x d) when they are not NULL.
** Returns the batch loss (mean squared error over n*d). BLAS. */
double aesql_nn_forward(const aesql_nn *nn, aesql_nn_work *w,
                        const float *X, int n, float *H, float *Y);

/* Loss of the n rows and its gradient with respect to every parameter,
** written into g (same shape as nn, allocated by the caller). BLAS. */
double aesql_nn_grad(const aesql_nn *nn, aesql_nn_work *w,
                     const float *X, int n, aesql_nn *g);

#include "ae_data.h"

/* Rows idx[0..n) of x as one part of a batch of nAll rows (n <= nAll,
** n <= the work's max_n): returns the sum of the squared errors over the
** part's n*d pixels, and writes into g (adds to g, when `add`) the
** gradient of that sum divided by nAll*d. The parts' sums, over nAll*d,
** are the batch's loss and their gradients add up to the batch's. NAN on
** bad sizes. */
double aesql_nn_grad_rows(const aesql_nn *nn, aesql_nn_work *w,
                          const aesql_nn_data *x, const uint32_t *idx,
                          int n, int nAll, aesql_nn *g, int add);
/* The sum of the squared errors over rows idx[0..n) of x, any n (taken
** max_n rows at a time). NAN on bad sizes. */
double aesql_nn_sse_rows(const aesql_nn *nn, aesql_nn_work *w,
                         const aesql_nn_data *x, const uint32_t *idx, int n);

/* The same two with plain loops and double accumulation (reference). */
double aesql_nn_forward_naive(const aesql_nn *nn, const float *X, int n,
                              float *H, float *Y);
double aesql_nn_grad_naive(const aesql_nn *nn, const float *X, int n,
                           aesql_nn *g);

/* ---- Adam, as Keras (TF 2) computes it ---- */
typedef struct aesql_adam {
  float lr, beta1, beta2, eps;
  long t;           /* steps taken */
  size_t n;         /* parameters */
  float *m, *v;     /* first and second moments, n each */
} aesql_adam;
int  aesql_adam_init(aesql_adam *a, size_t n, float lr, float beta1,
                     float beta2, float eps);
void aesql_adam_free(aesql_adam *a);
/* One step: t += 1; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t);
** m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr_t*m/(sqrt(v)+eps). */
void aesql_adam_step(aesql_adam *a, float *p, const float *g);
/* The same step in pieces, for threads: aesql_adam_next() counts the step
** and returns its lr_t; aesql_adam_update() updates parameters [i0, i1)
** with the gradient g[0] + g[1] + ... + g[ng-1], added in that order.
** Elementwise, so any split of [0, n) gives the same result. */
float aesql_adam_next(aesql_adam *a);
void  aesql_adam_update(const aesql_adam *a, float lr_t, float *p,
                        const float *const *g, int ng, size_t i0, size_t i1);

#endif /* AE_NN_H */
