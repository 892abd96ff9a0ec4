/*
** The autoencoder's numerics (declared in ae_nn.h): a seeded random
** generator, the d-h-d model and its glorot initialisation, forward and
** backward passes on a mini-batch (five OpenBLAS sgemm calls and three
** fused elementwise passes), the same passes with plain loops in double
** (the reference the tests hold the fast path to), and Adam as Keras
** computes it. Nothing here knows about SQLite; memory comes from the C
** library, aligned to 64 bytes for the vector loops and for OpenBLAS.
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
/* Random numbers: xoshiro256** (Blackman and Vigna), seeded with four
** outputs of splitmix64 so that any 64-bit seed, 0 included, is fine.  */

static uint64_t nn_splitmix64(uint64_t *x){
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t nn_rotl(uint64_t x, int k){
  return (x << k) | (x >> (64 - k));
}

void aesql_rng_seed(aesql_rng *r, uint64_t seed){
  int i;
  for(i=0; i<4; i++) r->s[i] = nn_splitmix64(&seed);
}

uint64_t aesql_rng_next(aesql_rng *r){
  uint64_t *s = r->s;
  uint64_t res = nn_rotl(s[1]*5, 7)*9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = nn_rotl(s[3], 45);
  return res;
}

/* The top 53 bits, scaled: every double k*2^-53, k < 2^53, equally likely. */
double aesql_rng_uniform(aesql_rng *r){
  return (double)(aesql_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Lemire's multiply-shift on the top 32 bits, rejecting the few low
** products that would bias it; one draw almost always. 0 when n is 0. */
uint32_t aesql_rng_below(aesql_rng *r, uint32_t n){
  uint64_t m = (aesql_rng_next(r) >> 32) * (uint64_t)n;
  uint32_t lo = (uint32_t)m;
  if( lo<n ){
    uint32_t t = (uint32_t)(-n) % n;    /* 2^32 mod n */
    while( lo<t ){
      m = (aesql_rng_next(r) >> 32) * (uint64_t)n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void aesql_rng_shuffle(aesql_rng *r, uint32_t *a, uint32_t n){
  uint32_t i;
  for(i=n; i>1; i--){
    uint32_t j = aesql_rng_below(r, i);
    uint32_t x = a[i-1]; a[i-1] = a[j]; a[j] = x;
  }
}

/* ------------------------------------------------------------------ */
/* The model */

size_t aesql_nn_nparam(int d, int h){
  return (size_t)d*h + (size_t)h + (size_t)h*d + (size_t)d;
}

/* 64-byte aligned, or NULL; free() releases it. */
static void *nn_malloc(size_t nByte){
  void *p = 0;
  if( nByte==0 ) nByte = 1;
  if( posix_memalign(&p, NN_ALIGN, nByte) ) return 0;
  return p;
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
  free(nn->param);
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
  nTotal = nHead + 2*nh + nd;
  w = nn_malloc(nTotal*sizeof(float));
  if( w==0 ) return 0;
  memset(w, 0, nTotal*sizeof(float));
  w->d = d;
  w->h = h;
  w->max_n = max_n;
  w->H = (float*)w + nHead;
  w->Y = w->H + nh;
  w->dH = w->Y + nd;
  return w;
}

void aesql_nn_work_free(aesql_nn_work *w){
  free(w);
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

/* Y (n x d) += b2, in place; returns sum((Y-X)^2). Each lane sums at most
** ceil(d/16) squares of a row; lanes and rows add up in double. */
NN_CLONES
static double nn_out_loss(float *restrict Y, const float *restrict X,
                          const float *restrict b, int n, int d){
  double loss = 0.0;
  int i, j, l;
  for(i=0; i<n; i++){
    float *restrict y = Y + (size_t)i*d;
    const float *restrict x = X + (size_t)i*d;
    float acc[NN_LANES] = {0};
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
  }
  return loss;
}

/* The output layer's backward pass fused with its bias and the loss:
** with Y holding H W2 (n x d), for each element e = Y + b2 - X, the loss
** gathers e^2, Y becomes dL/dY = scale*e, and gb2 (d) gets the column sums
** of dL/dY. Returns sum(e^2), summed as nn_out_loss() does. */
NN_CLONES
static double nn_out_grad(float *restrict Y, const float *restrict X,
                          const float *restrict b, float *restrict gb,
                          int n, int d, float scale){
  double loss = 0.0;
  int i, j, l;
  memset(gb, 0, (size_t)d*sizeof(float));
  for(i=0; i<n; i++){
    float *restrict y = Y + (size_t)i*d;
    const float *restrict x = X + (size_t)i*d;
    float acc[NN_LANES] = {0};
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
  }
  return loss;
}

/* dH (n x h) = dH where H > 0, else 0 (relu's derivative, taken as 0 at
** 0); gb1 (h) = its column sums. */
NN_CLONES
static void nn_relu_grad(float *restrict dH, const float *restrict H,
                         float *restrict gb, int n, int h){
  int i, k, l;
  memset(gb, 0, (size_t)h*sizeof(float));
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
  return nn_out_loss(Y, X, nn->b2, n, d)/((double)n*d);
}

double aesql_nn_grad(const aesql_nn *nn, aesql_nn_work *w,
                     const float *X, int n, aesql_nn *g){
  const int d = nn->d, h = nn->h;
  float *H, *D, *dH;
  double loss;
  if( n<=0 ){
    memset(g->param, 0, aesql_nn_nparam(d, h)*sizeof(float));
    return 0.0;
  }
  if( w==0 || n>w->max_n || w->d!=d || w->h!=h || g->d!=d || g->h!=h ){
    return NAN;
  }
  H = w->H; D = w->Y; dH = w->dH;
  /* H = relu(X W1 + b1)                      (n x h) */
  aesql_sgemm(0, 0, n, h, d, 1.0f, X, d, nn->w1, h, 0.0f, H, h);
  nn_bias_relu(H, nn->b1, n, h);
  /* D = H W2, then D = dL/dY = 2(D + b2 - X)/(n d), gb2 = colsum(D) */
  aesql_sgemm(0, 0, n, d, h, 1.0f, H, h, nn->w2, d, 0.0f, D, d);
  loss = nn_out_grad(D, X, nn->b2, g->b2, n, d, (float)(2.0/((double)n*d)));
  /* gW2 = H' D                               (h x d) */
  aesql_sgemm(1, 0, h, d, n, 1.0f, H, h, D, d, 0.0f, g->w2, d);
  /* dH = D W2', masked by H > 0; gb1 = colsum(dH)  (n x h) */
  aesql_sgemm(0, 1, n, h, d, 1.0f, D, d, nn->w2, d, 0.0f, dH, h);
  nn_relu_grad(dH, H, g->b1, n, h);
  /* gW1 = X' dH                              (d x h) */
  aesql_sgemm(1, 0, d, h, n, 1.0f, X, d, dH, h, 0.0f, g->w1, h);
  return loss/((double)n*d);
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
  a = malloc(((size_t)h + d)*sizeof(double));
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
  free(a);
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
  acc = calloc(np + 2*(size_t)h + d, sizeof(double));
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
  free(acc);
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
  free(a->m);                 /* m and v are one allocation */
  memset(a, 0, sizeof(*a));
}

/* The update runs on chunks of NN_ADAM_CHUNK parameters: moments first,
** then the square roots of v, then the parameters, so that the square
** roots, done apart, stay in L1. */
#define NN_ADAM_CHUNK 512
NN_CLONES
static void nn_adam(float *restrict p, float *restrict m, float *restrict v,
                    const float *restrict g, size_t n, float lr_t,
                    float c1, float c2, float eps){
  float s[NN_ADAM_CHUNK];                /* sqrt(v) of the chunk */
  size_t i0, i, k;
  int l;
  for(i0=0; i0<n; i0+=k){
    k = n-i0<NN_ADAM_CHUNK ? n-i0 : NN_ADAM_CHUNK;
    for(i=0; i+NN_LANES<=k; i+=NN_LANES){
      for(l=0; l<NN_LANES; l++){
        float gi = g[i0+i+l];
        float mi = m[i0+i+l] + (gi - m[i0+i+l])*c1;
        float vi = v[i0+i+l] + (gi*gi - v[i0+i+l])*c2;
        m[i0+i+l] = mi;
        v[i0+i+l] = vi;
        s[i+l] = vi;
      }
    }
    for(; i<k; i++){
      float gi = g[i0+i];
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

void aesql_adam_step(aesql_adam *a, float *p, const float *g){
  double t;
  float lr_t;
  a->t++;
  t = (double)a->t;
  lr_t = (float)(a->lr*(sqrt(1.0 - pow(a->beta2, t))/(1.0 - pow(a->beta1, t))));
  nn_adam(p, a->m, a->v, g, a->n, lr_t, 1.0f - a->beta1, 1.0f - a->beta2, a->eps);
}
