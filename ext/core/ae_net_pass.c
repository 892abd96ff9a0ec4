/*
** Forward and backward passes of the layer stack (declared in ae_net.h),
** with OpenBLAS's sgemm for the products and fused elementwise sweeps for
** the rest; the plain-loop reference they are held to is ae_net_ref.c.
**
** A dense layer is a pair of functions, llm.c's matmul_forward and
** matmul_backward shape, outputs first:
**
**   dense_forward(out, in, L, n)             out (n x nOut) = act(in W + b)
**   dense_backward(din, dw, db, dz, in, L, n, add)
**                 dz (n x nOut): dL/dz, z = in W + b (the activation's
**                 derivative already applied); dw (nIn x nOut) += in' dz,
**                 db (nOut) += colsum(dz) (written when !add);
**                 din (n x nIn) = dz W' (skipped when NULL)
**
** and the model loops over its layers. The fast paths:
**  - the first layer reads rows of a data set: when the data set is
**    indexed (ae_data.h), its X W1 and X' dZ1 run over the non-zero
**    pixels only (MNIST: 19% of them); otherwise the rows are gathered
**    into floats for sgemm;
**  - a linear output layer fuses its bias, the squared error and the
**    gradient dL/dY into one sweep over the outputs;
**  - or, in a fit that turns it on (aesql_net_work_set_gram), a linear
**    output layer over indexed rows never forms its outputs: its loss and
**    gradients come from W W', computed once a step, and the sparse
**    products X W' and X'A (net_gram_out; ae_net.h has the algebra).
** Those two products and the output sweeps are written once, in
** ae_net_kern.h, and compiled for each instruction set at its register's
** width.
** Any other output activation takes the generic sweep (bias and
** activation, then error and gradient, then the activation's
** derivative).
**
** For the two-layer model this is the same sequence of operations, in the
** same order, as libaesql 0.x's d-h-d passes: the same bits.
**
** Dropout (inverted, on the hidden layers' outputs, training passes
** only): unit k of row r of layer l is kept with probability 1 - p and
** then scaled by 1/(1 - p); the draws come from a generator seeded by
** (the step's key, the row's position in the batch, the layer), so they
** do not depend on the thread that runs the row. The layer keeps its
** output before dropout (for the activation's derivative) and the mask.
**
** aesql_blas_load() must have succeeded before these run.
*/
#include "ae_net.h"
#include "ae_blas.h"
#include "ae_simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Scratch: one allocation, each array 64-byte aligned. */

/* Rows per block of the first layer's transposed index (nn_csc_build
** below): 256 rows of MNIST are about 38,000 entries, 230 kB. */
#define NN_CSC_ROWS 256
/* The widest first layer whose X' dH goes row by row (nn_sparse_xtdh). */
#define NN_XTDH_ROWS_MAX 32

struct aesql_net_work {
  int nLayer, max_n, d, wMax;
  int nOut[AESQL_NET_MAX_LAYERS];    /* each layer's width: A[l] holds
                               ** max_n x nOut[l] */
  double dropout;              /* p: the rate dropped */
  float keep;                  /* 1/(1 - p) */
  float *A[AESQL_NET_MAX_LAYERS];    /* max_n x nOut: layer outputs
                               ** (before dropout); the last is Y */
  float *M[AESQL_NET_MAX_LAYERS];    /* max_n x nOut: dropout's mask
                               ** times 1/(1 - p), hidden layers only */
  float *Ad[AESQL_NET_MAX_LAYERS];   /* max_n x nOut: outputs after dropout */
  float *D0, *D1;              /* max_n x wMax: gradients, ping-pong */
  float *X;                    /* max_n x d: rows gathered, or the targets
                               ** of the generic output sweep */
  int xtdh;                    /* AESQL_NET_XTDH_*: X' dH's kernel */
  int cscRows;                 /* rows of the index the forward pass built
                               ** for its backward pass, or 0 */
  int defer;                   /* aesql_net_work_set_defer */
  int deferRows;               /* the last pass's X' dZ1 left out: its rows
                               ** (the index above), or 0 */
  const float *dz0;            /* ... and its dZ1 (n x h) */
  int cscCap;                  /* rows of a block of the transposed index */
  uint32_t *cst, *ccur;        /* d+1, d: pixel i's entries start at
                               ** cst[i]; ccur: cursors while built */
  uint16_t *crow;              /* cscCap x d: the row (nn_csc_build) */
  float *cval;                 /* cscCap x d: the pixel's value */
  float *xr;                   /* d: one row of bytes as floats (nn_row) */
  aesql_net_gram *gram;        /* aesql_net_work_set_gram, or NULL */
  int gramRows;                /* the last pass took the Gram way: its rows */
  float *gb;                   /* d: the Gram way's bias sums */
  uint32_t *iota;              /* max_n: 0, 1, ..., for dense X */
};

aesql_net_work *aesql_net_work_new(const aesql_net *net, int max_n,
                                   double dropout){
  aesql_net_work *w;
  size_t nHead = nn_round(sizeof(*w)), nTotal, nd, nMax, nCsc;
  int l, d, wMax = 0, nL = net->nLayer, cap;
  float *p;
  if( max_n<=0 || nL<1 || !(dropout>=0.0 && dropout<1.0) ) return 0;
  d = net->layer[0].nIn;
  for(l=0; l<nL; l++){
    if( net->layer[l].nOut>wMax ) wMax = net->layer[l].nOut;
    if( net->layer[l].nIn>wMax ) wMax = net->layer[l].nIn;
  }
  nd = nn_round((size_t)max_n*d);
  nMax = nn_round((size_t)max_n*wMax);
  if( nMax > SIZE_MAX/64 ) return 0;
  cap = max_n<NN_CSC_ROWS ? max_n : NN_CSC_ROWS;
  nCsc = (size_t)cap*d;
  nTotal = nHead + 2*nMax + nd + 2*nn_round((size_t)d) + nn_round((size_t)max_n)
         + 2*nn_round((size_t)d + 1) + nn_round((nCsc + 1)/2) + nn_round(nCsc);
  for(l=0; l<nL; l++){
    size_t k = nn_round((size_t)max_n*net->layer[l].nOut);
    nTotal += k;
    if( dropout>0.0 && l<nL-1 ) nTotal += 2*k;
  }
  if( nTotal > SIZE_MAX/sizeof(float) ) return 0;
  w = aesql_nn_malloc(nTotal*sizeof(float));
  if( w==0 ) return 0;
  memset(w, 0, nTotal*sizeof(float));
  w->nLayer = nL;
  w->max_n = max_n;
  w->d = d;
  w->wMax = wMax;
  for(l=0; l<nL; l++) w->nOut[l] = net->layer[l].nOut;
  w->dropout = dropout;
  w->keep = (float)(1.0/(1.0 - dropout));
  p = (float*)w + nHead;
  for(l=0; l<nL; l++){
    size_t k = nn_round((size_t)max_n*net->layer[l].nOut);
    w->A[l] = p; p += k;
    if( dropout>0.0 && l<nL-1 ){
      w->M[l] = p; p += k;
      w->Ad[l] = p; p += k;
    }
  }
  w->D0 = p; p += nMax;
  w->D1 = p; p += nMax;
  w->X = p; p += nd;
  w->xr = p; p += nn_round((size_t)d);
  w->gb = p; p += nn_round((size_t)d);
  w->cscCap = cap;
  w->cst = (uint32_t*)p; p += nn_round((size_t)d + 1);
  w->ccur = (uint32_t*)p; p += nn_round((size_t)d + 1);
  w->crow = (uint16_t*)p; p += nn_round((nCsc + 1)/2);
  w->cval = p; p += nn_round(nCsc);
  w->iota = (uint32_t*)p;
  for(l=0; l<max_n; l++) w->iota[l] = (uint32_t)l;
  return w;
}

void aesql_net_work_set_defer(aesql_net_work *w, int on){
  w->defer = on!=0;
}

void aesql_net_work_set_gram(aesql_net_work *w, aesql_net_gram *g){
  w->gram = g;
}

int aesql_net_gram_done(const aesql_net_work *w){
  return w->gramRows>0;
}

void aesql_net_work_set_xtdh(aesql_net_work *w, int mode){
  if( mode>=AESQL_NET_XTDH_AUTO && mode<=AESQL_NET_XTDH_CSC ) w->xtdh = mode;
}

void aesql_net_work_free(aesql_net_work *w){
  aesql_nn_mfree(w);
}

/* Does w fit net? Each layer's outputs must fit the work's arrays for
** that layer (within the widest is not enough: A[l] is sized by layer
** l's own width). */
static int net_work_fits(const aesql_net *net, const aesql_net_work *w){
  int l;
  if( w==0 || w->nLayer!=net->nLayer || w->d!=net->layer[0].nIn ) return 0;
  for(l=0; l<net->nLayer; l++){
    if( net->layer[l].nOut>w->nOut[l] ) return 0;
    if( net->layer[l].nOut>w->wMax || net->layer[l].nIn>w->wMax ) return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* The hot loops, compiled once per instruction set at its register's
** width (ae_net_kern.h says why), and the functions that pick one. */

/* Prefetching for rows read in shuffled order (see nn_csc_build). */
#define NN_PF_NEAR 4
#define NN_PF_FAR  12
static inline __attribute__((always_inline))
void nn_prefetch_row(const aesql_nn_data *x, size_t row, int isU8){
  const char *a = (const char*)(x->nz + x->nzStart[row]);
  const char *e = (const char*)(x->nz + x->nzStart[row+1]);
  const size_t nb = isU8 ? (size_t)x->d : 4*(size_t)x->d;
  const char *b = isU8 ? (const char*)(x->u8 + row*x->d)
                       : (const char*)(x->f32 + row*x->d);
  size_t i;
  for(; a<e; a+=64) __builtin_prefetch(a);
  for(i=0; i<nb; i+=64) __builtin_prefetch(b + i);
}

/* Pixel i of the row at hand: a byte through the table, or a float. */
#define NN_PX(i) (isU8 ? x->lut[xb[i]] : xf[i])

/* Registers a tile. X' dH by pixel takes twice X W1's, one chain an
** element against X W1's two (20-25% faster at 128 units than as many).
** With AVX-512's 32 registers X W1 takes 8 (16 accumulators) and X' dH
** 8: measured on AMD Zen 5 over MNIST at 128 units, 13% and 10% faster
** than 2 and 4 (the AVX2 tiles' widths in floats). */
#define KERN(f)      f##_v0
#define KERN_TARGET
#define KERN_VW      4
#define KERN_NT      4
#define KERN_XW      4
#define KERN_XT      8
#include "ae_net_kern.h"
#if NN_MULTI
# define KERN(f)     f##_v3
# define KERN_TARGET NN_V3
# define KERN_VW     8
# define KERN_NT     4
# define KERN_XW     4
# define KERN_XT     8
# include "ae_net_kern.h"
# define KERN(f)     f##_v4
# define KERN_TARGET NN_V4
# define KERN_VW     16
# define KERN_NT     2
# define KERN_XW     8
# define KERN_XT     8
# include "ae_net_kern.h"
# define NN_PICK(f, args) (nn_isa()==NN_ISA_AVX512 ? f##_v4 args \
                          : nn_isa()==NN_ISA_AVX2 ? f##_v3 args : f##_v0 args)
#else
# define NN_PICK(f, args) f##_v0 args
#endif

static double nn_out_loss_row(float *y, const float *x, const float *b,
                              int d){
  return NN_PICK(out_loss_row, (y, x, b, d));
}
static double nn_out_grad_row(float *y, const float *x, const float *b,
                              float *gb, int d, float scale){
  return NN_PICK(out_grad_row, (y, x, b, gb, d, scale));
}

/* The first layer over the non-zero pixels of rows idx[0..n) of x.
**
** H (n x h) = X W1: row r of H is the sum, over the row's non-zero pixels
** i in ascending order, of x_ri W1[i]; the pixels at even and at odd
** places of the row's list go to two partial sums, added at the end (two
** chains of dependent adds rather than one, for the adder's latency).
** Zero pixels would add exact zeros: skipping them changes nothing but
** the time. Row by row, a slice of the columns at a time (ae_net_kern.h).
**
** G (d x h) (+)= X' dH: G[i] is the sum over the rows r, in order, that
** have pixel i non-zero, of x_ri dH[r]; added to G when `add`. Either row
** by row, each row's slice of dH held in registers and added to the rows
** of G that its pixels name (AESQL_NET_XTDH_ROWS), or pixel by pixel
** through a block's transposed index, each slice of G's row held in
** registers while the rows that have the pixel add to it
** (AESQL_NET_XTDH_CSC). The sums are the same, in the same order: the
** same bits. By pixel reads and writes each row of G once per block
** instead of once per row that has the pixel, and pays for sorting the
** block's pixels: measured on AMD
** Zen 3 over MNIST, row by row is faster at 32 units (17 against 34 ms an
** epoch), by pixel from 48 (at 128 units 78 against 123 ms). */

/* Builds the transposed index of rows idx[0..n) of x, n <= w->cscCap:
** a counting sort of the rows' non-zero pixels by pixel, each entry the
** pixel's value and its row r, in the rows' order within a pixel. The
** rows come in shuffled order, so each is a cache miss the hardware
** cannot foresee: the row index is asked for NN_PF_FAR rows ahead, the
** row's pixels and list NN_PF_NEAR rows ahead. */
static inline __attribute__((always_inline))
void nn_csc_build_t(aesql_net_work *w, const aesql_nn_data *x,
                    const uint32_t *idx, int n, int isU8){
  const size_t d = (size_t)x->d;
  uint32_t *st = w->cst, *cur = w->ccur;
  size_t i;
  int r;
  memset(st, 0, (d + 1)*sizeof(uint32_t));
  for(r=0; r<n && r<NN_PF_FAR; r++) __builtin_prefetch(x->nzStart + idx[r]);
  for(r=0; r<n && r<NN_PF_NEAR; r++) nn_prefetch_row(x, idx[r], isU8);
  for(r=0; r<n; r++){
    const uint16_t *nz = x->nz + x->nzStart[idx[r]];
    const size_t cnt = x->nzStart[idx[r]+1] - x->nzStart[idx[r]];
    size_t j;
    if( r+NN_PF_FAR<n ) __builtin_prefetch(x->nzStart + idx[r+NN_PF_FAR]);
    if( r+NN_PF_NEAR<n ) nn_prefetch_row(x, idx[r+NN_PF_NEAR], isU8);
    for(j=0; j<cnt; j++) st[nz[j]+1]++;
  }
  for(i=0; i<d; i++){
    st[i+1] += st[i];
    cur[i] = st[i];
  }
  for(r=0; r<n; r++){
    const size_t row = idx[r];
    const uint16_t *nz = x->nz + x->nzStart[row];
    const size_t cnt = x->nzStart[row+1] - x->nzStart[row];
    const unsigned char *xb = isU8 ? x->u8 + row*d : 0;
    const float *xf = isU8 ? 0 : x->f32 + row*d;
    size_t j;
    for(j=0; j<cnt; j++){
      const uint32_t e = cur[nz[j]]++;
      w->crow[e] = (uint16_t)r;
      w->cval[e] = NN_PX(nz[j]);
    }
  }
}
static void nn_csc_build(aesql_net_work *w, const aesql_nn_data *x,
                         const uint32_t *idx, int n){
  if( x->u8 ) nn_csc_build_t(w, x, idx, n, 1);
  else nn_csc_build_t(w, x, idx, n, 0);
}

static void nn_sparse_xw(float *H, const aesql_nn_data *x,
                         const uint32_t *idx, int n, const float *W1, int h){
  if( x->u8 ) NN_PICK(sparse_xw_u8, (H, x, idx, n, W1, h));
  else NN_PICK(sparse_xw_f32, (H, x, idx, n, W1, h));
}

/* Does X' dH at h units go by pixel (nn_sparse_xtdh)? */
static int nn_xtdh_by_pixel(const aesql_net_work *w, int h){
  return w->xtdh==AESQL_NET_XTDH_CSC
      || (w->xtdh==AESQL_NET_XTDH_AUTO && h>NN_XTDH_ROWS_MAX);
}

/* G (d x h) (+)= X' dH, by pixel or row by row (nn_xtdh_by_pixel). By
** pixel, the index is the one the forward pass built when it did
** (w->cscRows == n, the forward pass of the same step, right after the
** first layer, while the rows were in the caches; measured in training,
** this halves the cost of the sort), else built here block by block. */
static void nn_sparse_xtdh(aesql_net_work *w, float *G,
                           const aesql_nn_data *x, const uint32_t *idx,
                           int n, const float *dH, int h, int add){
  int b;
  if( !nn_xtdh_by_pixel(w, h) ){
    if( x->u8 ) NN_PICK(rows_xtdh_u8, (G, x, idx, n, dH, h, add));
    else NN_PICK(rows_xtdh_f32, (G, x, idx, n, dH, h, add));
    return;
  }
  for(b=0; b<n; b+=w->cscCap){
    const int k = n-b < w->cscCap ? n-b : w->cscCap;
    if( w->cscRows!=n ) nn_csc_build(w, x, idx + b, k);
    NN_PICK(csc_xtdh, (G, w->cst, w->crow, w->cval, 0, x->d,
                       dH + (size_t)b*h, h, add || b>0));
  }
  w->cscRows = 0;
}

int aesql_net_first_by_pixel(const aesql_net *net){
  return net->layer[0].nOut>NN_XTDH_ROWS_MAX;
}

int aesql_net_first_grad(const aesql_net_work *w, int i0, int i1, float *G){
  if( w->deferRows<=0 || i0<0 || i1>w->d || i0>=i1 ) return 1;
  NN_PICK(csc_xtdh, (G, w->cst, w->crow, w->cval, i0, i1, w->dz0, w->nOut[0],
                     0));
  return 0;
}

/* ------------------------------------------------------------------ */
/* The elementwise sweeps of the output layer. Each is one sweep over its
** arrays; rows are contiguous. */

/* The output layer of one row of pixels x; y (d) holds h W2.
**   nn_out_loss_row: y += b2; returns sum((y - x)^2).
**   nn_out_grad_row: for each element e = y + b2 - x, y becomes dL/dy =
**     scale*e and gb2 (d) gets it added; returns sum(e^2).
** The squares are summed in NN_LANES float lanes (each gets at most
** ceil(d/16) of them), then in double. (Above, in ae_net_kern.h.) */

/* Row r of a batch as floats: row r of X (n x d) when X is not NULL, else
** data row idx[r] of x: its floats where they are, or its bytes, which
** need an index, written as floats into xr (d floats, zero on entry: the
** row's non-zero pixels only, cheaper than converting every byte; the
** caller zeroes them again with nn_row_done, cheaper than clearing all). */
static const float *nn_row(const float *X, const aesql_nn_data *x,
                           const uint32_t *idx, int r, float *xr, int d){
  if( X ) return X + (size_t)r*d;
  if( x->f32 ) return x->f32 + (size_t)idx[r]*d;
  {
    const size_t row = idx[r];
    const unsigned char *xb = x->u8 + row*d;
    const uint16_t *nz = x->nz + x->nzStart[row];
    const size_t cnt = x->nzStart[row+1] - x->nzStart[row];
    size_t j;
    (void)d;
    for(j=0; j<cnt; j++) xr[nz[j]] = x->lut[xb[nz[j]]];
    return xr;
  }
}
static void nn_row_done(const float *X, const aesql_nn_data *x,
                        const uint32_t *idx, int r, float *xr){
  if( X==0 && x->f32==0 ){
    const size_t row = idx[r];
    const uint16_t *nz = x->nz + x->nzStart[row];
    const size_t cnt = x->nzStart[row+1] - x->nzStart[row];
    size_t j;
    for(j=0; j<cnt; j++) xr[nz[j]] = 0.0f;
  }
}

/* Y (n x d) += b2, in place; returns sum((Y-X)^2), the targets being the
** rows nn_row() gives. */
static double nn_out_loss(float *Y, const float *X, const aesql_nn_data *x,
                          const uint32_t *idx, float *xr, const float *b,
                          int n, int d){
  double loss = 0.0;
  int r;
  for(r=0; r<n; r++){
    loss += nn_out_loss_row(Y + (size_t)r*d, nn_row(X, x, idx, r, xr, d), b, d);
    nn_row_done(X, x, idx, r, xr);
  }
  return loss;
}

/* The output layer's backward pass fused with its bias and the loss, over
** the rows nn_row() gives: with Y holding H W2 (n x d), Y becomes dL/dY =
** scale*(Y + b2 - X), gb2 (d) its column sums, added to gb2 when `add`;
** returns sum((Y + b2 - X)^2). */
static double nn_out_grad(float *Y, const float *X, const aesql_nn_data *x,
                          const uint32_t *idx, float *xr, const float *b,
                          float *gb, int n, int d, float scale, int add){
  double loss = 0.0;
  int r;
  if( !add ) memset(gb, 0, (size_t)d*sizeof(float));
  for(r=0; r<n; r++){
    loss += nn_out_grad_row(Y + (size_t)r*d, nn_row(X, x, idx, r, xr, d), b,
                            gb, d, scale);
    nn_row_done(X, x, idx, r, xr);
  }
  return loss;
}

#undef NN_PX

/* X (n x d) = rows idx[0..n) of x, as floats. */
NN_CLONES
static void nn_gather(float *restrict X, const aesql_nn_data *x,
                      const uint32_t *idx, int n){
  const int d = x->d;
  int r, j, l;
  for(r=0; r<n; r++){
    float *restrict dst = X + (size_t)r*d;
    if( x->u8 ){
      const unsigned char *restrict src = x->u8 + (size_t)idx[r]*d;
      for(j=0; j+NN_LANES<=d; j+=NN_LANES){
        for(l=0; l<NN_LANES; l++) dst[j+l] = (float)src[j+l]/255.0f;
      }
      for(; j<d; j++) dst[j] = (float)src[j]/255.0f;
    }else{
      memcpy(dst, x->f32 + (size_t)idx[r]*d, (size_t)d*sizeof(float));
    }
  }
}

/* H (n x h) = X W1 for rows idx[0..n) of x: over the non-zero pixels when
** x is indexed, else gathered into X (n x d) for sgemm. */
static void nn_first_fwd(aesql_net_work *w, float *H,
                         const aesql_nn_data *x, const uint32_t *idx, int n,
                         const float *W1, int h){
  if( x->nz==0 ){
    nn_gather(w->X, x, idx, n);
    aesql_sgemm(0, 0, n, h, x->d, 1.0f, w->X, x->d, W1, h, 0.0f, H, h);
  }else{
    nn_sparse_xw(H, x, idx, n, W1, h);
  }
}

/* ------------------------------------------------------------------ */
/* Dropout */

uint64_t aesql_net_drop_seed(uint64_t key, uint64_t row, int layer){
  /* splitmix64's finaliser over a mix of the three: distinct inputs give
  ** unrelated streams (aesql_rng_seed runs splitmix64 again). */
  uint64_t z = key ^ (row*0x9E3779B97F4A7C15ull) ^ ((uint64_t)(layer+1)<<56);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Ad = A * M, M drawn: row r (position iFirst + r of the batch) of layer
** l keeps each of its k units with probability 1 - p. A unit is kept when
** its 53-bit uniform is >= p. */
static void net_drop(aesql_net_work *w, int l, int n, int k, uint64_t key,
                     int iFirst){
  const double p = w->dropout;
  const float keep = w->keep;
  int r, j;
  for(r=0; r<n; r++){
    aesql_rng g;
    float *m = w->M[l] + (size_t)r*k;
    const float *a = w->A[l] + (size_t)r*k;
    float *ad = w->Ad[l] + (size_t)r*k;
    aesql_rng_seed(&g, aesql_net_drop_seed(key, (uint64_t)(iFirst + r), l));
    for(j=0; j<k; j++){
      m[j] = aesql_rng_uniform(&g)>=p ? keep : 0.0f;
      ad[j] = a[j]*m[j];
    }
  }
}

/* ------------------------------------------------------------------ */
/* Layers */

/* out (n x nOut) = act(in W + b), in (n x nIn); the first layer reads
** rows idx[0..n) of x instead of in (gathering them into X when x has no
** index). A linear last layer is left without its bias: the fused output
** sweep adds it. */
static void dense_forward(float *out, const float *in, const aesql_layer *L,
                          int n, int isLast, const aesql_nn_data *x,
                          const uint32_t *idx, aesql_net_work *w){
  if( x ){
    nn_first_fwd(w, out, x, idx, n, L->w, L->nOut);
  }else{
    aesql_sgemm(0, 0, n, L->nOut, L->nIn, 1.0f, in, L->nIn, L->w, L->nOut,
                0.0f, out, L->nOut);
  }
  if( !(isLast && L->act==AESQL_ACT_LINEAR) ){
    aesql_act_bias_forward(L->act, out, L->b, n, L->nOut);
  }
}

/* dw (+)= in' dz and din = dz W' (when din is not NULL), dz (n x nOut);
** db is done by the activation's backward sweep (aesql_act_backward) or
** the fused output sweep. The first layer reads rows idx[0..n) of x: over
** the non-zero pixels when indexed, else from X, where dense_forward
** gathered them. */
static void dense_backward(float *din, float *dw, const float *dz,
                           const float *in, const aesql_layer *L, int n,
                           int add, const aesql_nn_data *x,
                           const uint32_t *idx, aesql_net_work *w){
  if( x && x->nz ){
    nn_sparse_xtdh(w, dw, x, idx, n, dz, L->nOut, add);
  }else{
    aesql_sgemm(1, 0, L->nIn, L->nOut, n, 1.0f, x ? w->X : in, L->nIn, dz,
                L->nOut, add ? 1.0f : 0.0f, dw, L->nOut);
  }
  if( din ){
    aesql_sgemm(0, 1, n, L->nIn, L->nOut, 1.0f, dz, L->nOut, L->w, L->nOut,
                0.0f, din, L->nIn);
  }
}

/* The generic output sweep: Y holds act(z); the targets are the rows
** nn_row() gives. D = scale*(Y - X), then D *= act'(z) and gb (+)= its
** column sums. Returns sum((Y - X)^2). */
static double net_out_grad_generic(aesql_net_work *w, const aesql_layer *L,
                                   const float *X, const aesql_nn_data *x,
                                   const uint32_t *idx, int n, float scale,
                                   float *D, float *gb, int add){
  const int d = L->nOut;
  double loss = 0.0;
  int r, j;
  for(r=0; r<n; r++){
    const float *t = nn_row(X, x, idx, r, w->xr, d);
    const float *y = w->A[w->nLayer-1] + (size_t)r*d;
    float *g = D + (size_t)r*d;
    double s = 0.0;
    for(j=0; j<d; j++){
      float e = y[j] - t[j];
      g[j] = scale*e;
      s += (double)e*e;
    }
    nn_row_done(X, x, idx, r, w->xr);
    loss += s;
  }
  aesql_act_backward(L->act, D, w->A[w->nLayer-1], gb, n, d, add);
  return loss;
}

/* The generic loss sweep: sum((Y - X)^2), Y = act(z) done. */
static double net_out_loss_generic(aesql_net_work *w, const float *X,
                                   const aesql_nn_data *x, const uint32_t *idx,
                                   int n, int d){
  double loss = 0.0;
  int r, j;
  for(r=0; r<n; r++){
    const float *t = nn_row(X, x, idx, r, w->xr, d);
    const float *y = w->A[w->nLayer-1] + (size_t)r*d;
    double s = 0.0;
    for(j=0; j<d; j++){
      float e = y[j] - t[j];
      s += (double)e*e;
    }
    nn_row_done(X, x, idx, r, w->xr);
    loss += s;
  }
  return loss;
}

/* ------------------------------------------------------------------ */
/* The model */

/* The forward pass of rows idx[0..n) of x, with dropout when `drop`
** (keyed by key, the rows being positions iFirst.. of the batch); leaves
** each layer's output in w->A (and w->Ad), the last one without its bias
** when linear. With `backward` (a backward pass of the same rows
** follows), the first layer's transposed index too when X' dH will go by
** pixel (nn_sparse_xtdh). */
static void net_forward_rows(const aesql_net *net, aesql_net_work *w,
                             const aesql_nn_data *x, const uint32_t *idx,
                             int n, int drop, uint64_t key, int iFirst,
                             int backward, int skipLast){
  const float *in = 0;
  int l, nL = net->nLayer;
  w->cscRows = 0;
  w->deferRows = 0;
  w->gramRows = 0;
  for(l=0; l<nL; l++){
    const aesql_layer *L = &net->layer[l];
    if( l==nL-1 && skipLast ) break;
    dense_forward(w->A[l], in, L, n, l==nL-1, l==0 ? x : 0, idx, w);
    if( l==0 && backward && x->nz && n<=w->cscCap
     && nn_xtdh_by_pixel(w, L->nOut) ){
      nn_csc_build(w, x, idx, n);
      w->cscRows = n;
    }
    if( l==nL-1 ) break;
    if( drop ){
      net_drop(w, l, n, L->nOut, key, iFirst);
      in = w->Ad[l];
    }else{
      in = w->A[l];
    }
  }
}

/* ------------------------------------------------------------------ */
/* The output layer by its Gram matrix (ae_net.h) */

/* Small vector helpers of the Gram way. */
NN_CLONES
static float nn_dot(const float *restrict a, const float *restrict b, int n){
  float acc[NN_LANES] = {0}, s = 0.0f;
  int k, l;
  for(k=0; k+NN_LANES<=n; k+=NN_LANES){
    for(l=0; l<NN_LANES; l++) acc[l] += a[k+l]*b[k+l];
  }
  for(; k<n; k++) s += a[k]*b[k];
  for(l=0; l<NN_LANES; l++) s += acc[l];
  return s;
}
NN_CLONES
static void nn_add(float *restrict y, const float *restrict x, size_t n){
  size_t i;
  for(i=0; i<n; i++) y[i] += x[i];
}
NN_CLONES
static void nn_axpy(float *restrict y, float a, const float *restrict x,
                    int n){
  int i;
  for(i=0; i<n; i++) y[i] += a*x[i];
}

/* C (n x n, ldc) symmetric from its upper triangle (aesql_ssyrk's): each
** element below the diagonal set to its mirror image above it. */
static void nn_mirror_upper(float *C, int n, int ldc){
  int i, k;
  for(i=1; i<n; i++){
    for(k=0; k<i; k++) C[(size_t)i*ldc + k] = C[(size_t)k*ldc + i];
  }
}

/* One row of the Gram way: er = scale*(p + u - q), returns a.(2(p + u - q)
** - p), which is a G a' + 2 a u - 2 a (x W'): summed in NN_LANES float
** lanes, then in double. */
NN_CLONES
static double nn_gram_row(float *restrict er, const float *restrict a,
                          const float *restrict p, const float *restrict q,
                          const float *restrict u, float scale, int h){
  float acc[NN_LANES] = {0};
  double s = 0.0;
  int k, l;
  for(k=0; k+NN_LANES<=h; k+=NN_LANES){
    for(l=0; l<NN_LANES; l++){
      const float e = p[k+l] + u[k+l] - q[k+l];
      er[k+l] = scale*e;
      acc[l] += a[k+l]*(e + e - p[k+l]);
    }
  }
  for(; k<h; k++){
    const float e = p[k] + u[k] - q[k];
    er[k] = scale*e;
    s += (double)a[k]*(e + e - p[k]);
  }
  for(l=0; l<NN_LANES; l++) s += acc[l];
  return s;
}

void aesql_net_transpose_sum(float *B, int ldb, const float *const *aA,
                             int nA, int lda, int rows, int cols,
                             float alpha){
  NN_PICK(transpose_sum, (B, ldb, aA, nA, lda, rows, cols, alpha));
}

/* Does this pass take the Gram way? The first layer's index must be one
** the forward pass builds (net_forward_rows), for X'A. */
static int net_gram_on(const aesql_net *net, const aesql_net_work *w,
                       const aesql_nn_data *x, int n, int add){
  const int nL = net->nLayer;
  return w->gram && !add && nL>=2 && x->nz
      && net->layer[nL-1].act==AESQL_ACT_LINEAR
      && n<=w->cscCap && nn_xtdh_by_pixel(w, net->layer[0].nOut);
}

/* The sum of the squared errors of rows idx[0..n) of x through the last
** layer L the Gram way, from its input A (n x hIn) and G, u, W' in gm:
** row r's is ||b||^2 + a G a' + 2 a u - 2 a (x W') + ||x||^2 - 2 x.b,
** taken in double and kept >= 0 (in exact arithmetic it is), a NaN kept
** as it is. Writes c (A G + u - X W') to E (n x hIn), using P (n x hIn)
** and Q (n x hIn) as scratch, and when cx is not NULL adds the rows'
** pixels to it (d). */
static double net_gram_sse(const aesql_net_gram *gm, const aesql_layer *L,
                           const aesql_nn_data *x, const uint32_t *idx,
                           int n, const float *A, float scale, float *E,
                           float *P, float *Q, float *cx){
  const int h = L->nIn, d = L->nOut;
  const float *b = L->b;
  double bb = 0.0, loss = 0.0;
  int r, j;
  nn_sparse_xw(Q, x, idx, n, gm->Wt, h);                   /* Q = X W' */
  aesql_sgemm(0, 0, n, h, h, 1.0f, A, h, gm->G, h, 0.0f, P, h); /* A G */
  for(j=0; j<d; j++) bb += (double)b[j]*b[j];
  for(r=0; r<n; r++){
    const float *a = A + (size_t)r*h, *pr = P + (size_t)r*h;
    const float *qr = Q + (size_t)r*h;
    float *er = E + (size_t)r*h;
    const size_t row = idx[r];
    const uint16_t *nz = x->nz + x->nzStart[row];
    const size_t cnt = x->nzStart[row+1] - x->nzStart[row];
    double s = bb + nn_gram_row(er, a, pr, qr, gm->u, scale, h);
    size_t q;
    for(q=0; q<cnt; q++){
      const int i = nz[q];
      const float v = x->u8 ? x->lut[x->u8[row*d + i]] : x->f32[row*d + i];
      s += (double)v*v - 2.0*(double)b[i]*v;
      if( cx ) cx[i] += v;
    }
    loss += s<0.0 ? 0.0 : s;           /* a NaN stays one: the NaN stop */
  }
  return loss;
}

/* The last layer L (input A, n x hIn) the Gram way: returns the sum of
** the squared errors of the n rows (net_gram_sse), writes dL/dA = c (A G
** + u - X W') to E (n x hIn), c = scale, using P (n x hIn) and w->A[last]
** (n x d, at least n x hIn) as scratch, the bias's gradient to gb (d), and
** S, colA and R to w->gram. */
static double net_gram_out(aesql_net_work *w, const aesql_layer *L,
                           const aesql_nn_data *x, const uint32_t *idx,
                           int n, const float *A, float scale, float *E,
                           float *P, float *gb){
  const aesql_net_gram *gm = w->gram;
  const int h = L->nIn, d = L->nOut;
  const float *b = L->b, *Wm = L->w;
  float *cx = w->gb;
  double loss;
  int r, k, j;
  memset(cx, 0, (size_t)d*sizeof(float));
  loss = net_gram_sse(gm, L, x, idx, n, A, scale, E, P, w->A[w->nLayer-1],
                      cx);
  /* S = A'A (its upper triangle, mirrored), colA, R = X'A over the
  ** index the forward pass built */
  aesql_ssyrk(1, h, n, 1.0f, A, h, 0.0f, gm->S, h);
  nn_mirror_upper(gm->S, h, h);
  memset(gm->colA, 0, (size_t)h*sizeof(float));
  for(r=0; r<n; r++){
    for(k=0; k<h; k++) gm->colA[k] += A[(size_t)r*h + k];
  }
  NN_PICK(csc_xtdh, (gm->R, w->cst, w->crow, w->cval, 0, d, A, h, 0));
  /* the bias: c (colsum(A) W + n b - colsum(X)) */
  memset(gb, 0, (size_t)d*sizeof(float));
  for(k=0; k<h; k++) nn_axpy(gb, gm->colA[k], Wm + (size_t)k*d, d);
  for(j=0; j<d; j++) gb[j] = scale*(gb[j] + (float)n*b[j] - cx[j]);
  w->gramRows = n;
  return loss;
}

void aesql_net_gram_prep(const aesql_net *net, aesql_net_gram *g,
                         int i0, int i1, int j0, int j1){
  const aesql_layer *L = &net->layer[net->nLayer-1];
  const int h = L->nIn, d = L->nOut;
  float *G = g->G, *Wt = g->Wt, *u = g->u;
  int i;
  if( i1>i0 ){
    /* the block row's upper triangle: the diagonal block by syrk, the
    ** strip to its right by gemm; then each mirrored below the diagonal */
    const int nr = i1 - i0;
    float *Gd = G + (size_t)i0*h + i0;
    aesql_ssyrk(0, nr, d, 1.0f, L->w + (size_t)i0*d, d, 0.0f, Gd, h);
    nn_mirror_upper(Gd, nr, h);
    if( i1<h ){
      const float *aS[1];
      aesql_sgemm(0, 1, nr, h - i1, d, 1.0f, L->w + (size_t)i0*d, d,
                  L->w + (size_t)i1*d, d, 0.0f, G + (size_t)i0*h + i1, h);
      aS[0] = G + (size_t)i0*h + i1;
      aesql_net_transpose_sum(G + (size_t)i1*h + i0, h, aS, 1, h, nr,
                              h - i1, 1.0f);
    }
    for(i=i0; i<i1; i++) u[i] = nn_dot(L->w + (size_t)i*d, L->b, d);
  }
  if( j1>j0 ){
    const float *aW[1];
    aW[0] = L->w + j0;
    aesql_net_transpose_sum(Wt + (size_t)j0*h, h, aW, 1, d, h, j1 - j0, 1.0f);
    memcpy(g->b + j0, L->b + j0, sizeof(float)*(size_t)(j1 - j0));
  }
}

int aesql_net_gram_grad(const aesql_net *net, aesql_net_work *const *aw,
                        const aesql_net_gram *ag, int nPart, int nAll,
                        int i0, int i1, float *S, float *T){
  const aesql_layer *L = &net->layer[net->nLayer-1];
  const int h = L->nIn, d = L->nOut, nr = i1 - i0;
  const float c = (float)(2.0/((double)nAll*d));
  const float *aR[AESQL_NET_GRAM_PARTS];
  float *cA = S + (size_t)nr*h;
  int p, i, nG = 0;
  if( nr<=0 ) return 0;
  for(p=0; p<nPart && p<AESQL_NET_GRAM_PARTS; p++){
    const aesql_net_gram *g = &ag[p];
    if( !aesql_net_gram_done(aw[p]) ) continue;
    aR[nG] = g->R + i0;
    if( nG++==0 ){
      memcpy(S, g->S + (size_t)i0*h, sizeof(float)*(size_t)nr*h);
      memcpy(cA, g->colA + i0, sizeof(float)*(size_t)nr);
    }else{
      nn_add(S, g->S + (size_t)i0*h, (size_t)nr*h);
      nn_add(cA, g->colA + i0, (size_t)nr);
    }
  }
  if( nG==0 ) return 0;
  /* T = -c R' (R summed over the parts), then += c S W, then += c colA' b */
  aesql_net_transpose_sum(T, d, aR, nG, h, d, nr, -c);
  aesql_sgemm(0, 1, nr, d, h, c, S, h, ag[0].Wt, h, 1.0f, T, d);
  for(i=0; i<nr; i++) nn_axpy(T + (size_t)i*d, c*cA[i], ag[0].b, d);
  return nG;
}

/* aesql_net_grad_rows, with dropout when `drop` (and the work has it):
** aesql_net_grad passes 0, its gradient being the loss's without
** dropout whatever the work. */
static double net_grad_rows(const aesql_net *net, aesql_net_work *w,
                            const aesql_nn_data *x, const uint32_t *idx,
                            int n, int nAll, float *g, int add,
                            uint64_t dropKey, int iFirst, int drop){
  const int nL = net->nLayer, d = net->layer[0].nIn;
  const aesql_layer *Lo = &net->layer[nL-1];
  const float scale = (float)(2.0/((double)nAll*d));
  const float *X = 0;
  float *D, *Dn;
  double loss;
  int l, gram;
  if( n<=0 ){
    if( !add ) memset(g, 0, net->nParam*sizeof(float));
    return 0.0;
  }
  if( !net_work_fits(net, w) || n>w->max_n || n>nAll || x->d!=d ) return NAN;
  drop = drop && w->dropout>0.0;
  gram = net_gram_on(net, w, x, n, add);
  net_forward_rows(net, w, x, idx, n, drop, dropKey, iFirst, 1, gram);
  if( x->nz==0 ) X = w->X;             /* the rows, gathered by layer 0 */
  /* The output layer: D = dL/dz, and its bias's gradient. */
  if( gram ){
    D = w->D1;          /* the Gram way's scratch: it writes dL/dA to D0 */
    loss = 0.0;         /* the Gram way's, below */
  }else if( Lo->act==AESQL_ACT_LINEAR ){
    D = w->A[nL-1];                    /* in place, as 0.x did */
    loss = nn_out_grad(D, X, x, idx, w->xr, Lo->b, g + Lo->off
                       + (size_t)Lo->nIn*Lo->nOut, n, d, scale, add);
  }else{
    D = w->D0;
    loss = net_out_grad_generic(w, Lo, X, x, idx, n, scale, D,
                                g + Lo->off + (size_t)Lo->nIn*Lo->nOut, add);
  }
  /* Down the stack: layer l's weights, then the gradient of its input,
  ** which is layer l-1's output: through dropout and the activation. */
  for(l=nL-1; l>=0; l--){
    const aesql_layer *L = &net->layer[l];
    const float *inL = l==0 ? 0 : drop ? w->Ad[l-1] : w->A[l-1];
    Dn = l==0 ? 0 : (D==w->D0 ? w->D1 : w->D0);
    if( l==0 && w->defer && w->cscRows==n ){
      /* X' dZ1 left for aesql_net_first_grad: the index and dZ1 stay */
      w->deferRows = n;
      w->dz0 = D;
      break;
    }
    if( gram && l==nL-1 ){
      loss = net_gram_out(w, L, x, idx, n, inL, scale, Dn, D,
                          g + L->off + (size_t)L->nIn*L->nOut);
    }else{
      dense_backward(Dn, g + L->off, D, inL, L, n, add, l==0 ? x : 0, idx, w);
    }
    if( l==0 ) break;
    {
      const aesql_layer *P = &net->layer[l-1];
      if( drop ){
        size_t i, k = (size_t)n*P->nOut;
        for(i=0; i<k; i++) Dn[i] *= w->M[l-1][i];
      }
      aesql_act_backward(P->act, Dn, w->A[l-1], g + P->off
                         + (size_t)P->nIn*P->nOut, n, P->nOut, add);
    }
    D = Dn;
  }
  return loss;
}

double aesql_net_grad_rows(const aesql_net *net, aesql_net_work *w,
                           const aesql_nn_data *x, const uint32_t *idx,
                           int n, int nAll, float *g, int add,
                           uint64_t dropKey, int iFirst){
  return net_grad_rows(net, w, x, idx, n, nAll, g, add, dropKey, iFirst, 1);
}

double aesql_net_sse_rows(const aesql_net *net, aesql_net_work *w,
                          const aesql_nn_data *x, const uint32_t *idx, int n){
  const int nL = net->nLayer, d = net->layer[0].nIn;
  const aesql_layer *Lo = &net->layer[nL-1];
  double sse = 0.0;
  int b;
  if( n<=0 ) return 0.0;
  if( !net_work_fits(net, w) || x->d!=d ) return NAN;
  for(b=0; b<n; b+=w->max_n){
    int k = n-b < w->max_n ? n-b : w->max_n;
    const float *X = 0;
    net_forward_rows(net, w, x, idx+b, k, 0, 0, 0, 0, 0);
    if( x->nz==0 ) X = w->X;
    if( Lo->act==AESQL_ACT_LINEAR ){
      sse += nn_out_loss(w->A[nL-1], X, X ? 0 : x, idx+b, w->xr, Lo->b, k, d);
    }else{
      sse += net_out_loss_generic(w, X, X ? 0 : x, idx+b, k, d);
    }
  }
  return sse;
}

double aesql_net_gram_sse_rows(const aesql_net *net, aesql_net_work *w,
                               const aesql_nn_data *x, const uint32_t *idx,
                               int n, const aesql_net_gram *g){
  const int nL = net->nLayer;
  const aesql_layer *Lo = &net->layer[nL-1];
  double sse = 0.0;
  int b;
  if( n<=0 ) return 0.0;
  if( !net_work_fits(net, w) || x->d!=net->layer[0].nIn || nL<2 || !x->nz
   || Lo->act!=AESQL_ACT_LINEAR || Lo->nIn>Lo->nOut ){
    return NAN;
  }
  for(b=0; b<n; b+=w->max_n){
    const int k = n-b < w->max_n ? n-b : w->max_n;
    net_forward_rows(net, w, x, idx+b, k, 0, 0, 0, 0, 1);
    sse += net_gram_sse(g, Lo, x, idx+b, k, w->A[nL-2], 1.0f, w->D0, w->D1,
                        w->A[nL-1], 0);
  }
  return sse;
}

/* Dense rows X: a data set of floats over X, unindexed, row numbers
** 0..n-1. */
double aesql_net_forward(const aesql_net *net, aesql_net_work *w,
                         const float *X, int n, float *Y){
  aesql_nn_data x;
  double sse;
  const int d = aesql_net_width(net);
  if( n<=0 ) return 0.0;
  if( !net_work_fits(net, w) || n>w->max_n ) return NAN;
  aesql_nn_data_init(&x, d, (size_t)n, 0, X);
  sse = aesql_net_sse_rows(net, w, &x, w->iota, n);
  if( Y ) memcpy(Y, w->A[net->nLayer-1], sizeof(float)*(size_t)n*d);
  return sse/((double)n*d);
}

double aesql_net_grad(const aesql_net *net, aesql_net_work *w,
                      const float *X, int n, float *g){
  aesql_nn_data x;
  const int d = aesql_net_width(net);
  if( n<=0 ){
    memset(g, 0, net->nParam*sizeof(float));
    return 0.0;
  }
  if( !net_work_fits(net, w) || n>w->max_n ) return NAN;
  aesql_nn_data_init(&x, d, (size_t)n, 0, X);
  return net_grad_rows(net, w, &x, w->iota, n, n, g, 0, 0, 0, 0)
         /((double)n*d);
}
