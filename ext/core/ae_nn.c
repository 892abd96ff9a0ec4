/*
** The autoencoder's numerics (declared in ae_nn.h): a seeded random
** generator, the d-h-d model and its glorot initialisation, forward and
** backward passes on a mini-batch (five OpenBLAS sgemm calls and three
** fused elementwise passes), the same passes on rows of a data set, where
** an index of the non-zero pixels replaces the first layer's two sgemm
** calls (X W1 and X' dH) by loops over those pixels (MNIST: 19% of them),
** the same passes with plain loops in double (the reference the tests
** hold the fast paths to), and Adam as Keras computes it, whole or in
** pieces for threads. Nothing here knows about SQLite; memory comes from
** aesql_nn_malloc() (ae_nn.h: the C library's, or the allocator the
** SQLite layer names), aligned to 64 bytes for the vector loops and
** OpenBLAS.
**
**   aesql_rng r; aesql_nn nn, g; aesql_adam opt; aesql_nn_work *w;
**   aesql_rng_seed(&r, 42);
**   aesql_nn_alloc(&nn, 784, 32); aesql_nn_alloc(&g, 784, 32);
**   aesql_nn_glorot(&nn, &r);
**   aesql_adam_init(&opt, aesql_nn_nparam(784, 32), 0.001f, 0.9f, 0.999f, 1e-7f);
**   w = aesql_nn_work_new(784, 32, 256);
**   loss = aesql_nn_grad(&nn, w, X, 256, &g);       (X: 256 x 784 floats)
**   aesql_adam_step(&opt, nn.param, g.param);
**
** aesql_blas_load() must have succeeded before the BLAS functions run.
**
** The elementwise loops work on blocks of NN_LANES (16) consecutive floats
** with a scalar tail: GCC's -O2 vectorises a loop only when its trip count
** is a known multiple of the vector width, and never reorders a float sum,
** so the loss is summed in 16 explicit lanes. The blocks are compiled for
** AVX-512, AVX2 and SSE2 and the CPU's best is picked at load time
** (target_clones, an ifunc). The lanes do not depend on the vector width,
** but the AVX-512 variant may fuse a multiply and an add (FMA), so results
** can differ in the last bit from one CPU to another, as OpenBLAS's do;
** on one machine they are deterministic.
*/
#include "ae_nn.h"
#include "ae_blas.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NN_LANES 16   /* floats per block of the elementwise loops */
#define NN_ALIGN 64   /* bytes: a cache line, an AVX-512 register  */

/* ifuncs need GNU C on an ELF system with glibc; -DNN_CLONES= turns
** them off (the baseline ISA only). */
#ifndef NN_CLONES
# if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) \
     && defined(__GLIBC__)
#  if __has_attribute(target_clones)
#   define NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#  endif
# endif
#endif
#ifndef NN_CLONES
# define NN_CLONES
#endif

/* a[0..k) = sqrt(a[0..k)), all >= 0. GCC vectorises sqrtf() only under
** -fno-math-errno (otherwise a negative argument must reach libm's sqrtf
** to set errno); without that flag, on x86-64, we use the SSE instruction. */
#if defined(__x86_64__) && !defined(__NO_MATH_ERRNO__)
# include <xmmintrin.h>
static inline void nn_sqrt(float *a, size_t k){
  size_t q = 0;
  for(; q+4<=k; q+=4) _mm_storeu_ps(a+q, _mm_sqrt_ps(_mm_loadu_ps(a+q)));
  for(; q<k; q++) a[q] = sqrtf(a[q]);
}
#else
static inline void nn_sqrt(float *a, size_t k){
  size_t q = 0;
  int l;
  for(; q+NN_LANES<=k; q+=NN_LANES){
    for(l=0; l<NN_LANES; l++) a[q+l] = sqrtf(a[q+l]);
  }
  for(; q<k; q++) a[q] = sqrtf(a[q]);
}
#endif

/* ------------------------------------------------------------------ */
/* The model */

size_t aesql_nn_nparam(int d, int h){
  return (size_t)d*h + (size_t)h + (size_t)h*d + (size_t)d;
}

/* 64-byte aligned, or NULL; aesql_nn_mfree() releases it. */
static void *nn_malloc(size_t nByte){
  return aesql_nn_malloc(nByte ? nByte : 1);
}

int aesql_nn_alloc(aesql_nn *nn, int d, int h){
  size_t np;
  memset(nn, 0, sizeof(*nn));
  if( d<=0 || h<=0 ) return 1;
  np = aesql_nn_nparam(d, h);
  if( np > SIZE_MAX/sizeof(float) ) return 1;
  nn->param = nn_malloc(np*sizeof(float));
  if( nn->param==0 ) return 1;
  memset(nn->param, 0, np*sizeof(float));
  nn->d = d;
  nn->h = h;
  nn->w1 = nn->param;
  nn->b1 = nn->w1 + (size_t)d*h;
  nn->w2 = nn->b1 + h;
  nn->b2 = nn->w2 + (size_t)h*d;
  return 0;
}

void aesql_nn_free(aesql_nn *nn){
  if( nn==0 ) return;
  aesql_nn_mfree(nn->param);
  memset(nn, 0, sizeof(*nn));
}

void aesql_nn_glorot(aesql_nn *nn, aesql_rng *r){
  size_t i, nw = (size_t)nn->d*nn->h;
  double limit = sqrt(6.0/((double)nn->d + nn->h));
  for(i=0; i<nw; i++) nn->w1[i] = (float)((2.0*aesql_rng_uniform(r) - 1.0)*limit);
  for(i=0; i<nw; i++) nn->w2[i] = (float)((2.0*aesql_rng_uniform(r) - 1.0)*limit);
  memset(nn->b1, 0, nn->h*sizeof(float));
  memset(nn->b2, 0, nn->d*sizeof(float));
}

/* ------------------------------------------------------------------ */
/* Scratch: one allocation, each array 64-byte aligned. During
** aesql_nn_grad() Y is overwritten by dL/dY. */
struct aesql_nn_work {
  int d, h, max_n;
  float *H;    /* max_n x h: hidden codes                    */
  float *Y;    /* max_n x d: outputs, then dL/dY in place     */
  float *dH;   /* max_n x h: dL/dH                            */
  float *X;    /* max_n x d: rows of a data set without index */
  float *xr;   /* d: one row of bytes as floats (nn_row)      */
};

static size_t nn_round(size_t nFloat){
  size_t k = NN_ALIGN/sizeof(float);
  return (nFloat + k - 1)/k*k;
}

aesql_nn_work *aesql_nn_work_new(int d, int h, int max_n){
  aesql_nn_work *w;
  size_t nHead = nn_round(sizeof(*w)), nh, nd, nTotal;
  if( d<=0 || h<=0 || max_n<=0 ) return 0;
  nh = nn_round((size_t)max_n*h);
  nd = nn_round((size_t)max_n*d);
  if( nh > SIZE_MAX/16 || nd > SIZE_MAX/16 ) return 0;   /* bytes fit size_t */
  nTotal = nHead + 2*nh + 2*nd + nn_round((size_t)d);
  w = nn_malloc(nTotal*sizeof(float));
  if( w==0 ) return 0;
  memset(w, 0, nTotal*sizeof(float));
  w->d = d;
  w->h = h;
  w->max_n = max_n;
  w->H = (float*)w + nHead;
  w->Y = w->H + nh;
  w->dH = w->Y + nd;
  w->X = w->dH + nh;
  w->xr = w->X + nd;
  return w;
}

void aesql_nn_work_free(aesql_nn_work *w){
  aesql_nn_mfree(w);
}

/* ------------------------------------------------------------------ */
/* The elementwise passes of the BLAS path. Each is one sweep over its
** arrays; rows are contiguous. */

/* Z (n x h) = relu(Z + b1), in place. A NaN stays NaN. */
NN_CLONES
static void nn_bias_relu(float *restrict Z, const float *restrict b, int n, int h){
  int i, k, l;
  for(i=0; i<n; i++){
    float *restrict z = Z + (size_t)i*h;
    for(k=0; k+NN_LANES<=h; k+=NN_LANES){
      for(l=0; l<NN_LANES; l++){
        float v = z[k+l] + b[k+l];
        z[k+l] = v<0.0f ? 0.0f : v;
      }
    }
    for(; k<h; k++){
      float v = z[k] + b[k];
      z[k] = v<0.0f ? 0.0f : v;
    }
  }
}

/* The output layer of one row of pixels x; y (d) holds h W2.
**   nn_out_loss_row: y += b2; returns sum((y - x)^2).
**   nn_out_grad_row: for each element e = y + b2 - x, y becomes dL/dy =
**     scale*e and gb2 (d) gets it added; returns sum(e^2).
** The squares are summed in NN_LANES float lanes (each gets at most
** ceil(d/16) of them), then in double. */
NN_CLONES
static double nn_out_loss_row(float *restrict y, const float *restrict x,
                              const float *restrict b, int d){
  float acc[NN_LANES] = {0};
  double loss = 0.0;
  int j, l;
  for(j=0; j+NN_LANES<=d; j+=NN_LANES){
    for(l=0; l<NN_LANES; l++){
      float v = y[j+l] + b[j+l];
      float e = v - x[j+l];
      y[j+l] = v;
      acc[l] += e*e;
    }
  }
  for(; j<d; j++){
    float v = y[j] + b[j];
    float e = v - x[j];
    y[j] = v;
    acc[0] += e*e;
  }
  for(l=0; l<NN_LANES; l++) loss += acc[l];
  return loss;
}

NN_CLONES
static double nn_out_grad_row(float *restrict y, const float *restrict x,
                              const float *restrict b, float *restrict gb,
                              int d, float scale){
  float acc[NN_LANES] = {0};
  double loss = 0.0;
  int j, l;
  for(j=0; j+NN_LANES<=d; j+=NN_LANES){
    for(l=0; l<NN_LANES; l++){
      float e = y[j+l] + b[j+l] - x[j+l];
      float g = scale*e;
      y[j+l] = g;
      gb[j+l] += g;
      acc[l] += e*e;
    }
  }
  for(; j<d; j++){
    float e = y[j] + b[j] - x[j];
    float g = scale*e;
    y[j] = g;
    gb[j] += g;
    acc[0] += e*e;
  }
  for(l=0; l<NN_LANES; l++) loss += acc[l];
  return loss;
}

/* Row r of a batch as floats: row r of X (n x d) when X is not NULL, else
** data row idx[r] of x: its floats where they are, or its bytes, which
** need an index, written as floats into xr (d floats, zero on entry and
** on return but for the row's non-zero pixels: cheaper than converting
** every byte). */
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
    memset(xr, 0, (size_t)d*sizeof(float));
    for(j=0; j<cnt; j++) xr[nz[j]] = x->lut[xb[nz[j]]];
    return xr;
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
  }
  return loss;
}

/* dH (n x h) = dH where H > 0, else 0 (relu's derivative, taken as 0 at
** 0); gb1 (h) = its column sums, added to gb1 when `add`. */
NN_CLONES
static void nn_relu_grad(float *restrict dH, const float *restrict H,
                         float *restrict gb, int n, int h, int add){
  int i, k, l;
  if( !add ) memset(gb, 0, (size_t)h*sizeof(float));
  for(i=0; i<n; i++){
    float *restrict g = dH + (size_t)i*h;
    const float *restrict a = H + (size_t)i*h;
    for(k=0; k+NN_LANES<=h; k+=NN_LANES){
      for(l=0; l<NN_LANES; l++){
        float v = a[k+l]>0.0f ? g[k+l] : 0.0f;
        g[k+l] = v;
        gb[k+l] += v;
      }
    }
    for(; k<h; k++){
      float v = a[k]>0.0f ? g[k] : 0.0f;
      g[k] = v;
      gb[k] += v;
    }
  }
}

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

/* ------------------------------------------------------------------ */
/* The first layer's products over the non-zero pixels of indexed rows.
** Vectors of NN_LANES floats, GCC's vector extension: one AVX-512
** register, two AVX2 or four SSE registers in the respective clones. */
typedef float nn_vec __attribute__((vector_size(NN_LANES*sizeof(float))));
#define NN_VLOAD(v, p)   memcpy(&(v), (p), sizeof(nn_vec))
#define NN_VSTORE(p, v)  memcpy((p), &(v), sizeof(nn_vec))

/* Prefetching for rows read in shuffled order (see nn_sparse_xw_t). */
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

/* H (n x h) = X W1, X being rows idx[0..n) of x: row r of H is the sum,
** over the row's non-zero pixels i in ascending order, of x_i W1[i]; the
** pixels at even and at odd positions of that list go to two partial
** sums, added at the end (two chains of dependent adds rather than one,
** for the adder's latency). Zero pixels would add exact zeros: skipping
** them changes nothing but the time. */
static inline __attribute__((always_inline))
void nn_sparse_xw_t(float *restrict H, const aesql_nn_data *x, int isU8,
                    const uint32_t *idx, int n, const float *restrict W1,
                    int h){
  const size_t d = (size_t)x->d;
  int r;
  /* The rows come in shuffled order, so each is a cache miss the hardware
  ** cannot foresee: ask for the row index NN_PF_FAR rows ahead, and for
  ** the row's pixels and non-zero list NN_PF_NEAR rows ahead. */
  for(r=0; r<n && r<NN_PF_FAR; r++) __builtin_prefetch(x->nzStart + idx[r]);
  for(r=0; r<n && r<NN_PF_NEAR; r++) nn_prefetch_row(x, idx[r], isU8);
  for(r=0; r<n; r++){
    const size_t row = idx[r];
    if( r+NN_PF_FAR<n ) __builtin_prefetch(x->nzStart + idx[r+NN_PF_FAR]);
    if( r+NN_PF_NEAR<n ) nn_prefetch_row(x, idx[r+NN_PF_NEAR], isU8);
    const uint16_t *restrict nz = x->nz + x->nzStart[row];
    const int cnt = (int)(x->nzStart[row+1] - x->nzStart[row]);
    const unsigned char *restrict xb = isU8 ? x->u8 + row*d : 0;
    const float *restrict xf = isU8 ? 0 : x->f32 + row*d;
    float *restrict hr = H + (size_t)r*h;
    int j, k = 0;
#define NN_PX(i) (isU8 ? x->lut[xb[i]] : xf[i])
    for(; k+2*NN_LANES<=h; k+=2*NN_LANES){
      nn_vec a0 = {0}, a1 = {0}, c0 = {0}, c1 = {0}, t;
      for(j=0; j+1<cnt; j+=2){
        const float *p = W1 + (size_t)nz[j]*h + k;
        const float *q = W1 + (size_t)nz[j+1]*h + k;
        const float u = NN_PX(nz[j]), v = NN_PX(nz[j+1]);
        NN_VLOAD(t, p);            a0 += u*t;
        NN_VLOAD(t, p + NN_LANES); a1 += u*t;
        NN_VLOAD(t, q);            c0 += v*t;
        NN_VLOAD(t, q + NN_LANES); c1 += v*t;
      }
      if( j<cnt ){
        const float *p = W1 + (size_t)nz[j]*h + k;
        const float u = NN_PX(nz[j]);
        NN_VLOAD(t, p);            a0 += u*t;
        NN_VLOAD(t, p + NN_LANES); a1 += u*t;
      }
      a0 += c0;
      a1 += c1;
      NN_VSTORE(hr + k, a0);
      NN_VSTORE(hr + k + NN_LANES, a1);
    }
    for(; k+NN_LANES<=h; k+=NN_LANES){
      nn_vec a0 = {0}, c0 = {0}, t;
      for(j=0; j+1<cnt; j+=2){
        const float u = NN_PX(nz[j]), v = NN_PX(nz[j+1]);
        NN_VLOAD(t, W1 + (size_t)nz[j]*h + k);   a0 += u*t;
        NN_VLOAD(t, W1 + (size_t)nz[j+1]*h + k); c0 += v*t;
      }
      if( j<cnt ){
        const float u = NN_PX(nz[j]);
        NN_VLOAD(t, W1 + (size_t)nz[j]*h + k);   a0 += u*t;
      }
      a0 += c0;
      NN_VSTORE(hr + k, a0);
    }
    for(; k<h; k++){
      float a0 = 0.0f, c0 = 0.0f;
      for(j=0; j+1<cnt; j+=2){
        a0 += NN_PX(nz[j])*W1[(size_t)nz[j]*h + k];
        c0 += NN_PX(nz[j+1])*W1[(size_t)nz[j+1]*h + k];
      }
      if( j<cnt ) a0 += NN_PX(nz[j])*W1[(size_t)nz[j]*h + k];
      hr[k] = a0 + c0;
    }
  }
}

/* G (d x h) = X' dH, X being rows idx[0..n) of x: G[i] is the sum over
** the rows r, in order, that have pixel i non-zero, of x_ri dH[r]; added
** to G when `add`. */
static inline __attribute__((always_inline))
void nn_sparse_xtdh_t(float *restrict G, const aesql_nn_data *x, int isU8,
                      const uint32_t *idx, int n, const float *restrict dH,
                      int h, int add){
  const size_t d = (size_t)x->d;
  int r;
  if( !add ) memset(G, 0, d*h*sizeof(float));
  for(r=0; r<n; r++){
    const size_t row = idx[r];
    const uint16_t *restrict nz = x->nz + x->nzStart[row];
    const int cnt = (int)(x->nzStart[row+1] - x->nzStart[row]);
    const unsigned char *restrict xb = isU8 ? x->u8 + row*d : 0;
    const float *restrict xf = isU8 ? 0 : x->f32 + row*d;
    const float *restrict dh = dH + (size_t)r*h;
    int j, k;
    if( h==2*NN_LANES ){
      /* the tutorial's 32 units: dH's row stays in registers */
      nn_vec e0, e1, t;
      NN_VLOAD(e0, dh);
      NN_VLOAD(e1, dh + NN_LANES);
      for(j=0; j<cnt; j++){
        float *g = G + (size_t)nz[j]*h;
        const float u = NN_PX(nz[j]);
        NN_VLOAD(t, g);            t += u*e0; NN_VSTORE(g, t);
        NN_VLOAD(t, g + NN_LANES); t += u*e1; NN_VSTORE(g + NN_LANES, t);
      }
      continue;
    }
    for(j=0; j<cnt; j++){
      float *restrict g = G + (size_t)nz[j]*h;
      const float u = NN_PX(nz[j]);
      for(k=0; k+NN_LANES<=h; k+=NN_LANES){
        nn_vec t, e;
        NN_VLOAD(t, g + k);
        NN_VLOAD(e, dh + k);
        t += u*e;
        NN_VSTORE(g + k, t);
      }
      for(; k<h; k++) g[k] += u*dh[k];
    }
  }
#undef NN_PX
}

NN_CLONES
static void nn_sparse_xw_f32(float *restrict H, const aesql_nn_data *x,
                             const uint32_t *idx, int n,
                             const float *restrict W1, int h){
  nn_sparse_xw_t(H, x, 0, idx, n, W1, h);
}
NN_CLONES
static void nn_sparse_xw_u8(float *restrict H, const aesql_nn_data *x,
                            const uint32_t *idx, int n,
                            const float *restrict W1, int h){
  nn_sparse_xw_t(H, x, 1, idx, n, W1, h);
}
NN_CLONES
static void nn_sparse_xtdh_f32(float *restrict G, const aesql_nn_data *x,
                               const uint32_t *idx, int n,
                               const float *restrict dH, int h, int add){
  nn_sparse_xtdh_t(G, x, 0, idx, n, dH, h, add);
}
NN_CLONES
static void nn_sparse_xtdh_u8(float *restrict G, const aesql_nn_data *x,
                              const uint32_t *idx, int n,
                              const float *restrict dH, int h, int add){
  nn_sparse_xtdh_t(G, x, 1, idx, n, dH, h, add);
}

/* H (n x h) = X W1 for rows idx[0..n) of x: over the non-zero pixels when
** x is indexed, else gathered into X (n x d) for sgemm. */
static void nn_first_fwd(float *H, aesql_nn_work *w, const aesql_nn_data *x,
                         const uint32_t *idx, int n, const float *W1, int h){
  if( x->nz==0 ){
    nn_gather(w->X, x, idx, n);
    aesql_sgemm(0, 0, n, h, x->d, 1.0f, w->X, x->d, W1, h, 0.0f, H, h);
  }else if( x->u8 ){
    nn_sparse_xw_u8(H, x, idx, n, W1, h);
  }else{
    nn_sparse_xw_f32(H, x, idx, n, W1, h);
  }
}

/* ------------------------------------------------------------------ */
/* Forward and backward with BLAS */

double aesql_nn_forward(const aesql_nn *nn, aesql_nn_work *w,
                        const float *X, int n, float *H, float *Y){
  const int d = nn->d, h = nn->h;
  if( n<=0 ) return 0.0;
  if( (H==0 || Y==0) && (w==0 || n>w->max_n || w->d!=d || w->h!=h) ){
    return NAN;
  }
  if( H==0 ) H = w->H;
  if( Y==0 ) Y = w->Y;
  /* H = relu(X W1 + b1)                      (n x h) */
  aesql_sgemm(0, 0, n, h, d, 1.0f, X, d, nn->w1, h, 0.0f, H, h);
  nn_bias_relu(H, nn->b1, n, h);
  /* Y = H W2 + b2                            (n x d) */
  aesql_sgemm(0, 0, n, d, h, 1.0f, H, h, nn->w2, d, 0.0f, Y, d);
  return nn_out_loss(Y, X, 0, 0, 0, nn->b2, n, d)/((double)n*d);
}

/* The backward pass from H = relu(X W1 + b1) (in w->H) to every gradient
** but gW1, which the caller computes from w->dH: the output layer, gb2,
** gW2, dH and gb1, written to g, or added to it when `add`. X (n x d
** floats) or rows idx[0..n) of x are the targets. Returns the sum of the
** squared errors. */
static double nn_back(const aesql_nn *nn, aesql_nn_work *w, const float *X,
                      const aesql_nn_data *x, const uint32_t *idx, int n,
                      float scale, aesql_nn *g, int add){
  const int d = nn->d, h = nn->h;
  float *H = w->H, *D = w->Y, *dH = w->dH;
  double loss;
  /* D = H W2, then D = dL/dY = scale*(D + b2 - X), gb2 = colsum(D) */
  aesql_sgemm(0, 0, n, d, h, 1.0f, H, h, nn->w2, d, 0.0f, D, d);
  loss = nn_out_grad(D, X, x, idx, w->xr, nn->b2, g->b2, n, d, scale, add);
  /* gW2 = H' D                               (h x d) */
  aesql_sgemm(1, 0, h, d, n, 1.0f, H, h, D, d, add ? 1.0f : 0.0f, g->w2, d);
  /* dH = D W2', masked by H > 0; gb1 = colsum(dH)  (n x h) */
  aesql_sgemm(0, 1, n, h, d, 1.0f, D, d, nn->w2, d, 0.0f, dH, h);
  nn_relu_grad(dH, H, g->b1, n, h, add);
  return loss;
}

double aesql_nn_grad(const aesql_nn *nn, aesql_nn_work *w,
                     const float *X, int n, aesql_nn *g){
  const int d = nn->d, h = nn->h;
  double loss;
  if( n<=0 ){
    memset(g->param, 0, aesql_nn_nparam(d, h)*sizeof(float));
    return 0.0;
  }
  if( w==0 || n>w->max_n || w->d!=d || w->h!=h || g->d!=d || g->h!=h ){
    return NAN;
  }
  /* H = relu(X W1 + b1)                      (n x h) */
  aesql_sgemm(0, 0, n, h, d, 1.0f, X, d, nn->w1, h, 0.0f, w->H, h);
  nn_bias_relu(w->H, nn->b1, n, h);
  loss = nn_back(nn, w, X, 0, 0, n, (float)(2.0/((double)n*d)), g, 0);
  /* gW1 = X' dH                              (d x h) */
  aesql_sgemm(1, 0, d, h, n, 1.0f, X, d, w->dH, h, 0.0f, g->w1, h);
  return loss/((double)n*d);
}

/* ------------------------------------------------------------------ */
/* Forward and backward on rows of a data set */

double aesql_nn_grad_rows(const aesql_nn *nn, aesql_nn_work *w,
                          const aesql_nn_data *x, const uint32_t *idx,
                          int n, int nAll, aesql_nn *g, int add){
  const int d = nn->d, h = nn->h;
  double loss;
  if( n<=0 ){
    if( !add ) memset(g->param, 0, aesql_nn_nparam(d, h)*sizeof(float));
    return 0.0;
  }
  if( w==0 || n>w->max_n || n>nAll || w->d!=d || w->h!=h || g->d!=d
   || g->h!=h || x->d!=d ){
    return NAN;
  }
  /* H = relu(X W1 + b1)                      (n x h) */
  nn_first_fwd(w->H, w, x, idx, n, nn->w1, h);
  nn_bias_relu(w->H, nn->b1, n, h);
  /* dL/dY = 2(Y - X)/(nAll d) */
  if( x->nz ){
    loss = nn_back(nn, w, 0, x, idx, n, (float)(2.0/((double)nAll*d)), g, add);
    /* gW1 = X' dH over the non-zero pixels  (d x h) */
    if( x->u8 ) nn_sparse_xtdh_u8(g->w1, x, idx, n, w->dH, h, add);
    else nn_sparse_xtdh_f32(g->w1, x, idx, n, w->dH, h, add);
  }else{
    /* the rows were gathered into w->X */
    loss = nn_back(nn, w, w->X, 0, 0, n, (float)(2.0/((double)nAll*d)), g, add);
    aesql_sgemm(1, 0, d, h, n, 1.0f, w->X, d, w->dH, h, add ? 1.0f : 0.0f,
                g->w1, h);
  }
  return loss;
}

double aesql_nn_sse_rows(const aesql_nn *nn, aesql_nn_work *w,
                         const aesql_nn_data *x, const uint32_t *idx, int n){
  const int d = nn->d, h = nn->h;
  double sse = 0.0;
  int b;
  if( n<=0 ) return 0.0;
  if( w==0 || w->d!=d || w->h!=h || x->d!=d ) return NAN;
  for(b=0; b<n; b+=w->max_n){
    int k = n-b < w->max_n ? n-b : w->max_n;
    nn_first_fwd(w->H, w, x, idx+b, k, nn->w1, h);
    nn_bias_relu(w->H, nn->b1, k, h);
    aesql_sgemm(0, 0, k, d, h, 1.0f, w->H, h, nn->w2, d, 0.0f, w->Y, d);
    if( x->nz ) sse += nn_out_loss(w->Y, 0, x, idx+b, w->xr, nn->b2, k, d);
    else sse += nn_out_loss(w->Y, w->X, 0, 0, 0, nn->b2, k, d);
  }
  return sse;
}

/* ------------------------------------------------------------------ */
/* The reference: plain loops, everything in double between float inputs
** and float outputs. Returns NAN when out of memory. */

/* One row x through the model: a = relu(x W1 + b1) (h), y = a W2 + b2 (d). */
static void nn_row_naive(const aesql_nn *nn, const float *x, double *a, double *y){
  const int d = nn->d, h = nn->h;
  int i, j, k;
  for(k=0; k<h; k++){
    double z = nn->b1[k];
    for(i=0; i<d; i++) z += (double)x[i]*nn->w1[(size_t)i*h + k];
    a[k] = z<0.0 ? 0.0 : z;
  }
  for(j=0; j<d; j++){
    double s = nn->b2[j];
    for(k=0; k<h; k++) s += a[k]*nn->w2[(size_t)k*d + j];
    y[j] = s;
  }
}

double aesql_nn_forward_naive(const aesql_nn *nn, const float *X, int n,
                              float *H, float *Y){
  const int d = nn->d, h = nn->h;
  double loss = 0.0, *a, *y;
  int r, j, k;
  if( n<=0 ) return 0.0;
  a = aesql_nn_malloc(((size_t)h + d)*sizeof(double));
  if( a==0 ) return NAN;
  y = a + h;
  for(r=0; r<n; r++){
    const float *x = X + (size_t)r*d;
    nn_row_naive(nn, x, a, y);
    for(j=0; j<d; j++){
      double e = y[j] - x[j];
      loss += e*e;
      if( Y ) Y[(size_t)r*d + j] = (float)y[j];
    }
    if( H ) for(k=0; k<h; k++) H[(size_t)r*h + k] = (float)a[k];
  }
  aesql_nn_mfree(a);
  return loss/((double)n*d);
}

double aesql_nn_grad_naive(const aesql_nn *nn, const float *X, int n,
                           aesql_nn *g){
  const int d = nn->d, h = nn->h;
  const size_t np = aesql_nn_nparam(d, h);
  double loss = 0.0, *acc, *a, *y, *dh;
  double *gw1, *gb1, *gw2, *gb2;       /* acc, in aesql_nn's order */
  size_t p;
  int r, i, j, k;
  if( n<=0 ){
    memset(g->param, 0, np*sizeof(float));
    return 0.0;
  }
  acc = aesql_nn_calloc(np + 2*(size_t)h + d, sizeof(double));
  if( acc==0 ) return NAN;
  gw1 = acc; gb1 = gw1 + (size_t)d*h; gw2 = gb1 + h; gb2 = gw2 + (size_t)h*d;
  a = acc + np; dh = a + h; y = dh + h;
  for(r=0; r<n; r++){
    const float *x = X + (size_t)r*d;
    nn_row_naive(nn, x, a, y);
    for(j=0; j<d; j++){
      double e = y[j] - x[j];
      loss += e*e;
      y[j] = 2.0*e/((double)n*d);        /* y becomes dL/dy */
      gb2[j] += y[j];
    }
    for(k=0; k<h; k++){
      double s = 0.0;
      for(j=0; j<d; j++){
        gw2[(size_t)k*d + j] += a[k]*y[j];
        s += y[j]*nn->w2[(size_t)k*d + j];
      }
      dh[k] = a[k]>0.0 ? s : 0.0;
      gb1[k] += dh[k];
    }
    for(i=0; i<d; i++){
      for(k=0; k<h; k++) gw1[(size_t)i*h + k] += (double)x[i]*dh[k];
    }
  }
  for(p=0; p<np; p++) g->param[p] = (float)acc[p];
  aesql_nn_mfree(acc);
  return loss/((double)n*d);
}

/* ------------------------------------------------------------------ */
/* Adam, as Keras / TF 2 computes it (ResourceApplyAdam):
**   m += (g - m)(1 - b1)        (= b1 m + (1 - b1) g, rounded as Keras does)
**   v += (g^2 - v)(1 - b2)
**   p -= lr_t m / (sqrt(v) + eps),  lr_t = lr sqrt(1 - b2^t)/(1 - b1^t)
** Unlike torch.optim.Adam, eps is added to sqrt(v) uncorrected; this is
** torch's formula with eps/sqrt(1 - b2^t) in place of eps. lr_t is
** computed in double and rounded once. */

int aesql_adam_init(aesql_adam *a, size_t n, float lr, float beta1,
                    float beta2, float eps){
  memset(a, 0, sizeof(*a));
  if( n > SIZE_MAX/(2*sizeof(float)) ) return 1;
  a->m = nn_malloc(nn_round(n)*2*sizeof(float));
  if( a->m==0 ) return 1;
  memset(a->m, 0, nn_round(n)*2*sizeof(float));
  a->v = a->m + nn_round(n);
  a->n = n;
  a->lr = lr;
  a->beta1 = beta1;
  a->beta2 = beta2;
  a->eps = eps;
  return 0;
}

void aesql_adam_free(aesql_adam *a){
  if( a==0 ) return;
  aesql_nn_mfree(a->m);        /* m and v are one allocation */
  memset(a, 0, sizeof(*a));
}

/* The update runs on chunks of NN_ADAM_CHUNK parameters: the gradients
** added up (when there are several), the moments, then the square roots
** of v, then the parameters, so that the sums and square roots, done
** apart, stay in L1. Parameters [i0, i1). */
#define NN_ADAM_CHUNK 512
NN_CLONES
static void nn_adam(float *restrict p, float *restrict m, float *restrict v,
                    const float *const *g, int ng, size_t i0, size_t i1,
                    float lr_t, float c1, float c2, float eps){
  float s[NN_ADAM_CHUNK];                /* sqrt(v) of the chunk */
  float gs[NN_ADAM_CHUNK];               /* g[0] + ... + g[ng-1] */
  size_t i, k;
  int l, t;
  for(; i0<i1; i0+=k){
    const float *restrict gc;
    k = i1-i0<NN_ADAM_CHUNK ? i1-i0 : NN_ADAM_CHUNK;
    if( ng==1 ){
      gc = g[0] + i0;
    }else{
      const float *restrict g0 = g[0] + i0, *restrict g1 = g[1] + i0;
      for(i=0; i+NN_LANES<=k; i+=NN_LANES){
        for(l=0; l<NN_LANES; l++) gs[i+l] = g0[i+l] + g1[i+l];
      }
      for(; i<k; i++) gs[i] = g0[i] + g1[i];
      for(t=2; t<ng; t++){
        const float *restrict gt = g[t] + i0;
        for(i=0; i+NN_LANES<=k; i+=NN_LANES){
          for(l=0; l<NN_LANES; l++) gs[i+l] += gt[i+l];
        }
        for(; i<k; i++) gs[i] += gt[i];
      }
      gc = gs;
    }
    for(i=0; i+NN_LANES<=k; i+=NN_LANES){
      for(l=0; l<NN_LANES; l++){
        float gi = gc[i+l];
        float mi = m[i0+i+l] + (gi - m[i0+i+l])*c1;
        float vi = v[i0+i+l] + (gi*gi - v[i0+i+l])*c2;
        m[i0+i+l] = mi;
        v[i0+i+l] = vi;
        s[i+l] = vi;
      }
    }
    for(; i<k; i++){
      float gi = gc[i];
      float mi = m[i0+i] + (gi - m[i0+i])*c1;
      float vi = v[i0+i] + (gi*gi - v[i0+i])*c2;
      m[i0+i] = mi;
      v[i0+i] = vi;
      s[i] = vi;
    }
    nn_sqrt(s, k);
    for(i=0; i+NN_LANES<=k; i+=NN_LANES){
      for(l=0; l<NN_LANES; l++){
        p[i0+i+l] -= m[i0+i+l]*lr_t/(s[i+l] + eps);
      }
    }
    for(; i<k; i++) p[i0+i] -= m[i0+i]*lr_t/(s[i] + eps);
  }
}

float aesql_adam_next(aesql_adam *a){
  double t;
  a->t++;
  t = (double)a->t;
  return (float)(a->lr*(sqrt(1.0 - pow(a->beta2, t))/(1.0 - pow(a->beta1, t))));
}

void aesql_adam_update(const aesql_adam *a, float lr_t, float *p,
                       const float *const *g, int ng, size_t i0, size_t i1){
  if( i1>a->n ) i1 = a->n;
  if( ng<1 || i0>=i1 ) return;
  nn_adam(p, a->m, a->v, g, ng, i0, i1, lr_t, 1.0f - a->beta1,
          1.0f - a->beta2, a->eps);
}

void aesql_adam_step(aesql_adam *a, float *p, const float *g){
  float lr_t = aesql_adam_next(a);
  aesql_adam_update(a, lr_t, p, &g, 1, 0, a->n);
}
