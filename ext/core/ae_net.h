/*
** The model: a stack of dense layers, each with an activation (ae_act.h),
** trained to reconstruct its input under mean squared error.
**
**   layer l: a_l (n x nOut) = act_l(a_{l-1} W_l + b_l),  a_0 = x (n x d)
**   loss of n rows: sum over the n*d elements of (a_L - x)^2, / (n*d)
**
** The tutorial's model is two layers, d -> h relu -> d linear. A JSON
** list of encoder widths [e1, ..., ek] gives d -> e1 -> ... -> ek ->
** e(k-1) -> ... -> e1 -> d, the decoder mirroring the encoder
** (aesql_net_mirror); the code is the output of layer k-1 (0-based),
** iCode.
**
** Parameters are one buffer: for each layer in order its kernel W (nIn x
** nOut, row-major: W[i*nOut + k] joins input i to unit k, Keras' kernel)
** then its bias b (nOut). The layer table gives each one's offset. For
** two layers this is version 1's order: w1, b1, w2, b2. A gradient is a
** buffer of nParam floats with the same layout.
**
** Two ways to give rows: a dense n x d float matrix (aesql_net_grad,
** aesql_net_forward: tests and small uses), or row numbers into a data
** set (ae_data.h: bytes or floats, optionally indexed by non-zero pixel),
** the training path: the first layer's two products (X W1 and X' dZ1) run
** over the non-zero pixels when the data set is indexed.
*/
#ifndef AE_NET_H
#define AE_NET_H

#include <stddef.h>
#include <stdint.h>
#include "ae_mem.h"
#include "ae_rng.h"
#include "ae_act.h"
#include "ae_data.h"

#define AESQL_NET_MAX_LAYERS 16    /* eight encoder widths, mirrored */

typedef struct aesql_layer {
  int nIn, nOut;     /* widths: a_{l-1} is n x nIn, a_l n x nOut */
  int act;           /* aesql_act */
  size_t off;        /* W at param + off, b at param + off + nIn*nOut */
  float *w, *b;      /* into param */
} aesql_layer;

typedef struct aesql_net {
  int nLayer;        /* 1 .. AESQL_NET_MAX_LAYERS */
  int iCode;         /* the layer whose output is the code */
  aesql_layer layer[AESQL_NET_MAX_LAYERS];
  size_t nParam;
  float *param;      /* the one allocation, 64-byte aligned */
} aesql_net;

/* The widths of a mirrored stack: width[0] = d, width[1..k] = enc[0..k),
** then enc[k-2] down to enc[0], then d: 2k layers, 2k+1 widths. Returns
** the layer count 2k, or 0 when k is out of 1..AESQL_NET_MAX_LAYERS/2. */
int aesql_net_mirror(int d, const int *enc, int k, int *width);

/* Parameters of layers width[0]->width[1]->...->width[nLayer]; 0 when a
** width is below 1 or the count overflows. */
size_t aesql_net_nparam(int nLayer, const int *width);

/* Allocates zeroed parameters for the stack (nLayer+1 widths, nLayer
** activations, iCode in 0..nLayer-1). 0 on success; non-zero on bad
** sizes or out of memory (*net is then zeroed). */
int  aesql_net_init(aesql_net *net, int nLayer, const int *width,
                    const int *act, int iCode);
void aesql_net_free(aesql_net *net);
/* The d-h-d tutorial model (relu, then linear), iCode 0. */
int  aesql_net_init_dhd(aesql_net *net, int d, int h);
/* Input width (= output width) and code width. */
int  aesql_net_width(const aesql_net *net);
int  aesql_net_code_width(const aesql_net *net);

/* Keras Dense defaults: glorot-uniform kernels, limit
** sqrt(6/(nIn + nOut)), drawn layer by layer, each in row-major order;
** zero biases. (Two layers: the draws of version 1, w1 then w2.) */
void aesql_net_glorot(aesql_net *net, aesql_rng *r);

/* l2 * (sum of the squares of every kernel weight; biases not), as
** Keras' kernel_regularizer=l2(l2) adds it to the loss, in double. */
double aesql_net_l2(const aesql_net *net, double l2);

/* ---- forward and backward ---- */

/* Scratch for passes of up to max_n rows, with inverted dropout at
** `dropout` (0 <= dropout < 1) on the hidden layers' outputs in
** aesql_net_grad_rows (never in the loss-only passes). */
typedef struct aesql_net_work aesql_net_work;
aesql_net_work *aesql_net_work_new(const aesql_net *net, int max_n,
                                   double dropout);
void aesql_net_work_free(aesql_net_work *w);
/* Which kernel the first layer's X' dH takes over indexed rows (both
** give the same bits; ae_net_pass.c): by width (the default), row by
** row, or by pixel. For tests and benchmarks; another mode is ignored. */
#define AESQL_NET_XTDH_AUTO 0
#define AESQL_NET_XTDH_ROWS 1
#define AESQL_NET_XTDH_CSC  2
void aesql_net_work_set_xtdh(aesql_net_work *w, int mode);
/* With defer on, aesql_net_grad_rows leaves out the first layer's weight
** gradient X' dZ1 (its bias's is there) whenever it goes by pixel over
** the pass's own transposed index (indexed rows, a first layer wider
** than 32 units, n up to 256), and keeps what it needs in w until the
** work's next pass of any kind: aesql_net_first_grad then writes rows
** [i0, i1) of it to G ((i1 - i0) x h), the same bits as the pass would
** have. It returns
** non-zero, and writes nothing, when the last pass left nothing out. So
** that the sums of a batch's parts can be taken a piece at a time, each
** piece while it is in the cache (ae_fit.c). */
void aesql_net_work_set_defer(aesql_net_work *w, int on);
/* Does the first layer's X' dH go by pixel over indexed rows, in a work
** of the default mode (by its width)? */
int  aesql_net_first_by_pixel(const aesql_net *net);
int  aesql_net_first_grad(const aesql_net_work *w, int i0, int i1, float *G);

/* The output layer by its Gram matrix, for a linear last layer of weights
** W (hIn x d) and bias b over indexed rows X (n x d, nnz non-zero pixels
** a row), A (n x hIn) being that layer's input. With Z = A W + b and the
** loss's scale c:
**   sum((Z - X)^2) = per row  a G a' + 2 a u - 2 a (x W') + b.b - 2 b.x + x.x
**   dL/dA = c (A G + u - X W'),    dL/db = c (colsum(A) W + n b - colsum(X))
**   dL/dW = c (A'A W + colsum(A)' b - (X'A)')
** with G = W W' (hIn x hIn) and u = W b (hIn) taken once a step: a pass
** then costs n hIn (2 hIn + 2 nnz) multiply-adds for that layer instead of
** the three products' 3 n hIn d (at 784-128-32-128-784 over MNIST, a
** third), the step paying A'A W (hIn^2 d). In exact arithmetic this is
** the same gradient; in float32 it differs in the last bits (test_fit.c
** holds it to the direct way within 2e-6 of each layer's largest |g|).
**
** With g set (aesql_net_work_set_gram), aesql_net_grad_rows takes this way
** whenever it can: its first pass of a part (add == 0) over indexed rows
** whose first layer's X' dH goes by pixel over the pass's own index
** (aesql_net_work_set_defer's condition), a linear last layer. It then
** writes the last layer's bias gradient as ever, and S, colA and R below
** instead of the weight gradient, which it leaves out of g;
** aesql_net_gram_done() says whether the work's last pass did. */
typedef struct aesql_net_gram {
  float *G;          /* in: hIn x hIn, W W' (aesql_net_gram_prep) */
  float *Wt;         /* in: d x hIn, W' */
  float *u;          /* in: hIn, W b */
  float *b;          /* in: d, b (the step reads W' and b, as of the
                     ** prep, while it writes W and b) */
  float *S;          /* out: hIn x hIn, A'A */
  float *colA;       /* out: hIn, colsum(A) */
  float *R;          /* out: d x hIn, X'A */
} aesql_net_gram;
void aesql_net_work_set_gram(aesql_net_work *w, aesql_net_gram *g);
int  aesql_net_gram_done(const aesql_net_work *w);
/* The step's side: rows [i0, i1) of the last layer's weight gradient
** into T (rows x d), from the parts (works aw[p], grams ag[p], p <
** nPart, of a batch of nAll rows) whose passes took the Gram way, summed
** in part order: c (S W + colA' b - R'). S is scratch of (i1 - i0) hIn
** + hIn floats. nPart is at most AESQL_NET_GRAM_PARTS. Returns how many
** parts took it; with none, T is not written. The other parts' gradients
** there are the caller's to add. */
#define AESQL_NET_GRAM_PARTS 64
int aesql_net_gram_grad(const aesql_net *net, aesql_net_work *const *aw,
                        const aesql_net_gram *ag, int nPart, int nAll,
                        int i0, int i1, float *S, float *T);
/* The block row [i0, i1) of G, and u there, from net's last layer: the
** block on the diagonal by a symmetric product (aesql_ssyrk), the strip
** to its right by sgemm, each copied to its mirror image below the
** diagonal (so a block row writes columns [i0, i1) of the rows below it
** too, and G comes out symmetric once every block row is done); and rows
** [j0, j1) of Wt (pixels) and of b. The block rows fix G's bits; the
** split of the pixels does not matter. */
void aesql_net_gram_prep(const aesql_net *net, aesql_net_gram *g,
                         int i0, int i1, int j0, int j1);

/* B (cols x rows, ldb) = alpha (A_0 + ... + A_{nA-1})': the nA matrices
** aA (rows x cols, lda each) summed in that order, then scaled, in float
** (the Gram way's transposes; blocks of a register's width transposed in
** registers, the edges element by element, the same values). */
void aesql_net_transpose_sum(float *B, int ldb, const float *const *aA,
                             int nA, int lda, int rows, int cols,
                             float alpha);

/* Rows idx[0..n) of x as one part of a batch of nAll rows (n <= nAll,
** n <= the work's max_n): returns the sum of the squared errors over the
** part's n*d elements, and writes into g (nParam floats; adds to it, when
** `add`) the gradient of that sum divided by nAll*d (the l2 term is not
** in it). The parts' sums, over nAll*d, are the batch's loss, and their
** gradients add up to the batch's. With dropout, row r's masks are drawn
** from a generator seeded with aesql_net_drop_seed(dropKey, iFirst + r,
** layer), iFirst being the position of idx[0] in the batch: the same
** whichever thread runs it, and whatever the parts. NAN on bad sizes. */
double aesql_net_grad_rows(const aesql_net *net, aesql_net_work *w,
                           const aesql_nn_data *x, const uint32_t *idx,
                           int n, int nAll, float *g, int add,
                           uint64_t dropKey, int iFirst);
uint64_t aesql_net_drop_seed(uint64_t key, uint64_t row, int layer);

/* The sum of the squared errors over rows idx[0..n) of x, any n (taken
** max_n rows at a time), no dropout. NAN on bad sizes. */
double aesql_net_sse_rows(const aesql_net *net, aesql_net_work *w,
                          const aesql_nn_data *x, const uint32_t *idx, int n);

/* The same sum the Gram way (ae_net.h's algebra), with G, u and W' of g
** as aesql_net_gram_prep left them for net's weights now: a stack over
** indexed rows whose last layer is linear and no wider in than out. The
** loss of the training passes that take the Gram way, summed the same
** way; within rounding of aesql_net_sse_rows. NAN on bad sizes or a
** model or data set the way does not fit. */
double aesql_net_gram_sse_rows(const aesql_net *net, aesql_net_work *w,
                               const aesql_nn_data *x, const uint32_t *idx,
                               int n, const aesql_net_gram *g);

/* Dense rows: X (n x d floats, n <= max_n). aesql_net_forward writes the
** outputs to Y (n x d) when not NULL and returns the loss (MSE);
** aesql_net_grad writes the loss's gradient (no l2, no dropout) to g. */
double aesql_net_forward(const aesql_net *net, aesql_net_work *w,
                         const float *X, int n, float *Y);
double aesql_net_grad(const aesql_net *net, aesql_net_work *w,
                      const float *X, int n, float *g);

/* The reference: the same two with plain loops, in double between float
** inputs and float outputs, and l2 included when l2 > 0 (loss and
** gradient). NAN when out of memory. */
double aesql_net_forward_naive(const aesql_net *net, const float *X, int n,
                               float *Y);
double aesql_net_grad_naive(const aesql_net *net, const float *X, int n,
                            double l2, float *g);

#endif /* AE_NET_H */
