/*
** Adam (declared in ae_adam.h), whole or in pieces for threads.
*/
#include "ae_adam.h"
#include "ae_mem.h"
#include "ae_simd.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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
/* Adam, as Keras / TF 2 computes it (ResourceApplyAdam):
**   m += (g - m)(1 - b1)        (= b1 m + (1 - b1) g, rounded as Keras does)
**   v += (g^2 - v)(1 - b2)
**   p -= lr_t m / (sqrt(v) + eps_t),  lr_t = lr sqrt(1 - b2^t)/(1 - b1^t)
** Keras adds eps to sqrt(v) uncorrected: eps_t = eps (AESQL_ADAM_KERAS).
** torch.optim.Adam adds it to sqrt(v_hat), which is the same formula with
** eps_t = eps sqrt(1 - b2^t) (AESQL_ADAM_TORCH). Both modes thus share
** one kernel, and Keras' runs exactly as before the modes were added.
** lr_t and eps_t are computed in double once a step and rounded once.
** (torch computes sqrt(v)/sqrt(1-b2^t) + eps and then lr/(1-b1^t) times
** m over that, in float: the same numbers to a few roundings.) */

static const char *const azMode[AESQL_ADAM_COUNT] = { "keras", "torch" };

const char *aesql_adam_mode_name(int mode){
  return mode>=0 && mode<AESQL_ADAM_COUNT ? azMode[mode] : 0;
}

int aesql_adam_mode_parse(const char *z){
  int i;
  for(i=0; z && i<AESQL_ADAM_COUNT; i++){
    if( strcmp(z, azMode[i])==0 ) return i;
  }
  return -1;
}

int aesql_adam_init(aesql_adam *a, size_t n, float lr, float beta1,
                    float beta2, float eps){
  memset(a, 0, sizeof(*a));
  if( n > SIZE_MAX/(2*sizeof(float)) ) return 1;
  a->m = aesql_nn_malloc(nn_round(n)*2*sizeof(float));
  if( a->m==0 ) return 1;
  memset(a->m, 0, nn_round(n)*2*sizeof(float));
  a->v = a->m + nn_round(n);
  a->n = n;
  a->lr = lr;
  a->beta1 = beta1;
  a->beta2 = beta2;
  a->eps = eps;
  a->eps_t = eps;
  a->mode = AESQL_ADAM_KERAS;
  return 0;
}

int aesql_adam_set_mode(aesql_adam *a, int mode){
  if( mode<0 || mode>=AESQL_ADAM_COUNT ) return 1;
  a->mode = mode;
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
                    const float *const *g, size_t gBase, int ng, size_t i0,
                    size_t i1,
                    float lr_t, float c1, float c2, float eps){
  float s[NN_ADAM_CHUNK];                /* sqrt(v) of the chunk */
  float gs[NN_ADAM_CHUNK];               /* g[0] + ... + g[ng-1] */
  size_t i, k;
  int l, t;
  for(; i0<i1; i0+=k){
    const float *restrict gc;
    k = i1-i0<NN_ADAM_CHUNK ? i1-i0 : NN_ADAM_CHUNK;
    if( ng==1 ){
      gc = g[0] + (i0 - gBase);
    }else{
      const float *restrict g0 = g[0] + (i0 - gBase);
      const float *restrict g1 = g[1] + (i0 - gBase);
      for(i=0; i+NN_LANES<=k; i+=NN_LANES){
        for(l=0; l<NN_LANES; l++) gs[i+l] = g0[i+l] + g1[i+l];
      }
      for(; i<k; i++) gs[i] = g0[i] + g1[i];
      for(t=2; t<ng; t++){
        const float *restrict gt = g[t] + (i0 - gBase);
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

/* Step t's lr_t, returned, and eps_t, in a->eps_t, where every piece of
** the step's update reads the same value. */
float aesql_adam_next(aesql_adam *a){
  double t, c2;
  a->t++;
  t = (double)a->t;
  c2 = sqrt(1.0 - pow(a->beta2, t));
  a->eps_t = a->mode==AESQL_ADAM_TORCH ? (float)(a->eps*c2) : a->eps;
  return (float)(a->lr*(c2/(1.0 - pow(a->beta1, t))));
}

void aesql_adam_update(const aesql_adam *a, float lr_t, float *p,
                       const float *const *g, int ng, size_t i0, size_t i1){
  if( i1>a->n ) i1 = a->n;
  if( ng<1 || i0>=i1 ) return;
  nn_adam(p, a->m, a->v, g, 0, ng, i0, i1, lr_t, 1.0f - a->beta1,
          1.0f - a->beta2, a->eps_t);
}

void aesql_adam_update_at(const aesql_adam *a, float lr_t, float *p,
                          const float *const *g, int ng, size_t i0,
                          size_t i1){
  if( i1>a->n ) i1 = a->n;
  if( ng<1 || i0>=i1 ) return;
  nn_adam(p, a->m, a->v, g, i0, ng, i0, i1, lr_t, 1.0f - a->beta1,
          1.0f - a->beta2, a->eps_t);
}

void aesql_adam_step(aesql_adam *a, float *p, const float *g){
  float lr_t = aesql_adam_next(a);
  aesql_adam_update(a, lr_t, p, &g, 1, 0, a->n);
}
