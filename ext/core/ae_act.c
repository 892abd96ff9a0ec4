/*
** Activations as data (declared in ae_act.h): the names, the float
** forward and backward passes over blocks of a layer, and the double
** reference they are tested against.
**
**   int act = aesql_act_parse("relu");             -1: not a name
**   aesql_act_bias_forward(act, Z, b, n, k);       Z = relu(Z + b), Z = X W
**   ... dZ = dL/dZ, from the layer above ...
**   aesql_act_backward(act, dZ, Z, gb, n, k, 0);   dZ *= relu'(.), gb = sums
**
** Each activation is one case of act_f1() (f of one float) and one of
** act_df1() (a gradient times f', from the output), and one row of the
** table aAct[]. The loops that sweep a block are written once, as inline
** functions of the activation; every activation gets its own copy, in
** which the compiler has folded the switch away (ACT_KERNELS below), so
** relu's forward loop is ae_nn.c's nn_bias_relu, and its backward loop
** nn_relu_grad plus a NaN test (below), both branch-free compares and
** selects with the same bits as those for every input but NaN.
**
** As in ae_nn.c, the loops work on blocks of ACT_LANES (16) consecutive
** floats with a scalar tail (GCC's -O2 vectorises a loop only when its
** trip count is a known multiple of the vector width), compiled for
** AVX-512, AVX2 and SSE2 with the CPU's best picked at load time
** (target_clones). The AVX-512 copy may fuse a multiply and an add, so
** tanh's derivative (1 - a*a) can differ in the last bit from one CPU to
** another; on one machine the results are deterministic, and the bias
** gradient is summed in float, row after row, as nn_relu_grad does.
**
** elu, selu, tanh and sigmoid call libm's expm1f, expf and tanhf (glibc:
** within a few ulp): GCC does not vectorise those calls without
** -ffast-math, whose vector versions are less accurate; the selects and
** products around them still run in float, never in double.
**
** NaN propagates: a NaN input gives a NaN output, and in the backward
** pass a NaN in A or in dA gives a NaN in dA (and so in gb). For relu
** that is one compare and one blend more than nn_relu_grad, whose
** select alone turns a NaN output, or a NaN gradient where the output is
** 0, into a 0 that hides a diverging run. (In an L1-resident benchmark
** on AVX2 that makes relu's backward loop take about a third longer than
** nn_relu_grad, some 0.3 microseconds for a 256 x 32 layer: nothing next
** to the layer's products. The forward loop is nn_bias_relu's,
** instruction for instruction.)
*/
#include "ae_act.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ACT_LANES 16   /* floats per block of the elementwise loops */

/* ifuncs need GNU C on an ELF system with glibc; -DACT_CLONES= turns
** them off (the baseline ISA only). The same test as ae_nn.c's. */
#ifndef ACT_CLONES
# if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) \
     && defined(__GLIBC__)
#  if __has_attribute(target_clones)
#   define ACT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#  endif
# endif
#endif
#ifndef ACT_CLONES
# define ACT_CLONES
#endif

/* The inline loops below must be inlined into each activation's copy,
** where `act` is a constant, even at -O1 (the sanitizer build). */
#if defined(__GNUC__)
# define ACT_INLINE static inline __attribute__((always_inline))
#else
# define ACT_INLINE static inline
#endif

/* The constants in float, each rounded once from its double (selu's
** product too: TensorFlow writes scale * alpha as one literal). */
#define ACT_LEAKY_F ((float)AESQL_LEAKY_SLOPE)
#define ACT_SCALE_F ((float)AESQL_SELU_SCALE)
#define ACT_SA_F    ((float)(AESQL_SELU_SCALE*AESQL_SELU_ALPHA))

/* ------------------------------------------------------------------ */
/* One float */

/* c ? x : y, by selecting bits, x and y both computed. Under GCC's
** default -ftrapping-math a ?: whose arm does float arithmetic (0.2*v)
** keeps that arithmetic conditional, since it might trap, and so stays a
** branch: the loop is not vectorised for SSE2 and AVX2 (AVX-512 masks the
** operation instead). The same ?: with the arithmetic done first and the
** choice made on the bits is a compare and a blend. (memcpy is how C
** reads a float's bits; GCC emits no call.) */
ACT_INLINE float act_pick(int c, float x, float y){
  uint32_t m = -(uint32_t)(c!=0), bx, by, r;
  float f;
  memcpy(&bx, &x, sizeof(bx));
  memcpy(&by, &y, sizeof(by));
  r = (bx & m) | (by & ~m);
  memcpy(&f, &r, sizeof(f));
  return f;
}

/* f(v). The sign tests are TensorFlow's (its relu_op_functor.h): elu and
** selu take the exponential branch for v < 0, leaky_relu the identity
** for v > 0; at 0 every branch gives 0 anyway. Each branch keeps a NaN:
** NaN < 0 is false, so relu returns v itself (fmaxf would return 0). */
ACT_INLINE float act_f1(int act, float v){
  switch( act ){
    case AESQL_ACT_RELU:       return v<0.0f ? 0.0f : v;
    case AESQL_ACT_LEAKY_RELU: return act_pick(v>0.0f, v, ACT_LEAKY_F*v);
    /* these call libm, so their loops are not vectorised anyway; the
    ** branch skips the call where x >= 0 */
    case AESQL_ACT_ELU:        return v<0.0f ? expm1f(v) : v;
    case AESQL_ACT_SELU:       return v<0.0f ? ACT_SA_F*expm1f(v) : ACT_SCALE_F*v;
    case AESQL_ACT_TANH:       return tanhf(v);
    case AESQL_ACT_SIGMOID: {
      /* e = exp(-|v|) is in (0, 1]: 1/(1 + e) for v >= 0, e/(1 + e)
      ** below, so exp never overflows. 1/(1 + exp(-v)) would give 0
      ** from v = -88.8 on, where expf(-v) is inf, though sigmoid is
      ** still a float (a subnormal) down to v = -103. */
      float e = expf(-fabsf(v));
      return (v>=0.0f ? 1.0f : e)/(1.0f + e);
    }
    default:                   return v;      /* linear */
  }
}

/* g * f'(x), from the output a = f(x). At a = 0 (x = 0) these are
** TensorFlow's kernels' values: relu 0 and leaky_relu 0.2 (a > 0 takes
** the slope 1), elu 1 and selu scale (only a < 0 takes the other slope),
** with TensorFlow's products in its order. The tests are written so
** that a NaN a comes out NaN: a >= 0 rather than !(a < 0), so that a NaN
** takes the branch with a in it, and an explicit isnan() where the
** derivative ignores a (relu, leaky_relu, linear). A NaN g needs nothing
** but relu's test: every other derivative multiplies it or returns it. */
ACT_INLINE float act_df1(int act, float a, float g){
  switch( act ){
    case AESQL_ACT_RELU: {
      /* nn_relu_grad's select (bit for bit: +0 where a <= 0, whatever
      ** g's sign), then a NaN in either input wins: one unordered
      ** compare of the pair, one blend */
      float v = a>0.0f ? g : 0.0f;
      return isunordered(a, g) ? NAN : v;
    }
    case AESQL_ACT_LEAKY_RELU: {
      float v = act_pick(a>0.0f, g, g*ACT_LEAKY_F);
      return isnan(a) ? a : v;
    }
    case AESQL_ACT_ELU:     return act_pick(a>=0.0f, g, (a + 1.0f)*g);
    case AESQL_ACT_SELU:    return act_pick(a>=0.0f, g*ACT_SCALE_F, g*(a + ACT_SA_F));
    case AESQL_ACT_TANH:    return g*(1.0f - a*a);
    case AESQL_ACT_SIGMOID: return g*a*(1.0f - a);
    default:                return isnan(a) ? a : g;   /* linear */
  }
}

/* ------------------------------------------------------------------ */
/* The loops, once for every activation */

/* z[0..k) = f(z[0..k) + b[0..k)), or f(z[0..k)) when b is NULL. */
ACT_INLINE void act_fwd_row(int act, float *restrict z,
                            const float *restrict b, size_t k){
  size_t j;
  int l;
  if( b ){
    for(j=0; j+ACT_LANES<=k; j+=ACT_LANES){
      for(l=0; l<ACT_LANES; l++) z[j+l] = act_f1(act, z[j+l] + b[j+l]);
    }
    for(; j<k; j++) z[j] = act_f1(act, z[j] + b[j]);
  }else if( act!=AESQL_ACT_LINEAR ){
    for(j=0; j+ACT_LANES<=k; j+=ACT_LANES){
      for(l=0; l<ACT_LANES; l++) z[j+l] = act_f1(act, z[j+l]);
    }
    for(; j<k; j++) z[j] = act_f1(act, z[j]);
  }
}

/* Z (n x k) = f(Z + b), b NULL for none. */
ACT_INLINE void act_fwd_rows(int act, float *Z, const float *b,
                             size_t n, size_t k){
  size_t i;
  for(i=0; i<n; i++) act_fwd_row(act, Z + i*k, b, k);
}

/* dA (n x k) = dA * f', f' from A; gb (k) += the column sums of the
** result, row after row in float, when gb is not NULL (the caller has
** zeroed it or wants the sums added). nn_relu_grad's loop. */
ACT_INLINE void act_back_rows(int act, float *restrict dA,
                              const float *restrict A, float *restrict gb,
                              size_t n, size_t k){
  size_t i, j;
  int l;
  for(i=0; i<n; i++){
    float *restrict g = dA + i*k;
    const float *restrict a = A + i*k;
    if( gb ){
      for(j=0; j+ACT_LANES<=k; j+=ACT_LANES){
        for(l=0; l<ACT_LANES; l++){
          float v = act_df1(act, a[j+l], g[j+l]);
          g[j+l] = v;
          gb[j+l] += v;
        }
      }
      for(; j<k; j++){
        float v = act_df1(act, a[j], g[j]);
        g[j] = v;
        gb[j] += v;
      }
    }else{
      for(j=0; j+ACT_LANES<=k; j+=ACT_LANES){
        for(l=0; l<ACT_LANES; l++) g[j+l] = act_df1(act, a[j+l], g[j+l]);
      }
      for(; j<k; j++) g[j] = act_df1(act, a[j], g[j]);
    }
  }
}

/* Each activation's own copy of the two loops, with `act` a constant:
** act_fwd_relu(), act_back_relu(), ... */
#define ACT_KERNELS(NAME, ACT)                                              \
  ACT_CLONES static void act_fwd_##NAME(float *Z, const float *b,          \
                                         size_t n, size_t k){               \
    act_fwd_rows(ACT, Z, b, n, k);                                          \
  }                                                                         \
  ACT_CLONES static void act_back_##NAME(float *dA, const float *A,        \
                                          float *gb, size_t n, size_t k){   \
    act_back_rows(ACT, dA, A, gb, n, k);                                    \
  }
ACT_KERNELS(linear,     AESQL_ACT_LINEAR)
ACT_KERNELS(relu,       AESQL_ACT_RELU)
ACT_KERNELS(leaky_relu, AESQL_ACT_LEAKY_RELU)
ACT_KERNELS(elu,        AESQL_ACT_ELU)
ACT_KERNELS(selu,       AESQL_ACT_SELU)
ACT_KERNELS(tanh,       AESQL_ACT_TANH)
ACT_KERNELS(sigmoid,    AESQL_ACT_SIGMOID)

/* One row per activation, in the enum's order. */
static const struct {
  const char *zName;
  void (*xFwd)(float *Z, const float *b, size_t n, size_t k);
  void (*xBack)(float *dA, const float *A, float *gb, size_t n, size_t k);
} aAct[AESQL_ACT_COUNT] = {
  { "linear",     act_fwd_linear,     act_back_linear     },
  { "relu",       act_fwd_relu,       act_back_relu       },
  { "leaky_relu", act_fwd_leaky_relu, act_back_leaky_relu },
  { "elu",        act_fwd_elu,        act_back_elu        },
  { "selu",       act_fwd_selu,       act_back_selu       },
  { "tanh",       act_fwd_tanh,       act_back_tanh       },
  { "sigmoid",    act_fwd_sigmoid,    act_back_sigmoid    },
};

/* ------------------------------------------------------------------ */
/* The API */

const char *aesql_act_name(int act){
  if( act<0 || act>=AESQL_ACT_COUNT ) return 0;
  return aAct[act].zName;
}

int aesql_act_parse(const char *z){
  int i;
  if( z==0 ) return -1;
  for(i=0; i<AESQL_ACT_COUNT; i++){
    if( strcmp(z, aAct[i].zName)==0 ) return i;
  }
  return -1;
}

const char *aesql_act_list(void){
  /* aAct[]'s names in order; test_act checks that they agree */
  return "linear, relu, leaky_relu, elu, selu, tanh, sigmoid";
}

void aesql_act_forward(int act, float *a, size_t n){
  if( act<0 || act>=AESQL_ACT_COUNT ) return;
  aAct[act].xFwd(a, 0, 1, n);
}

void aesql_act_bias_forward(int act, float *Z, const float *b, int n, int k){
  if( act<0 || act>=AESQL_ACT_COUNT || n<=0 || k<=0 ) return;
  aAct[act].xFwd(Z, b, (size_t)n, (size_t)k);
}

void aesql_act_backward(int act, float *dA, const float *A, float *gb,
                        int n, int k, int add){
  if( act<0 || act>=AESQL_ACT_COUNT || k<=0 ) return;
  if( n<0 ) n = 0;
  if( gb && !add ) memset(gb, 0, (size_t)k*sizeof(float));
  aAct[act].xBack(dA, A, gb, (size_t)n, (size_t)k);
}

/* The reference in double: the same definitions and the same branches
** at 0 as the float passes. */
double aesql_act_f(int act, double x){
  switch( act ){
    case AESQL_ACT_LINEAR:     return x;
    case AESQL_ACT_RELU:       return x<0.0 ? 0.0 : x;
    case AESQL_ACT_LEAKY_RELU: return x>0.0 ? x : AESQL_LEAKY_SLOPE*x;
    case AESQL_ACT_ELU:        return x<0.0 ? expm1(x) : x;
    case AESQL_ACT_SELU:
      return x<0.0 ? AESQL_SELU_SCALE*AESQL_SELU_ALPHA*expm1(x)
                   : AESQL_SELU_SCALE*x;
    case AESQL_ACT_TANH:       return tanh(x);
    case AESQL_ACT_SIGMOID: {
      double e = exp(-fabs(x));
      return (x>=0.0 ? 1.0 : e)/(1.0 + e);
    }
  }
  return NAN;
}

/* f'(x) at the input: the kinks at 0 take TensorFlow's values (relu 0,
** leaky_relu 0.2, elu 1, selu scale), as act_df1() does from the
** output. */
double aesql_act_df(int act, double x){
  if( act<0 || act>=AESQL_ACT_COUNT || isnan(x) ) return NAN;
  switch( act ){
    case AESQL_ACT_RELU:       return x>0.0 ? 1.0 : 0.0;
    case AESQL_ACT_LEAKY_RELU: return x>0.0 ? 1.0 : AESQL_LEAKY_SLOPE;
    case AESQL_ACT_ELU:        return x<0.0 ? exp(x) : 1.0;
    case AESQL_ACT_SELU:
      return x<0.0 ? AESQL_SELU_SCALE*AESQL_SELU_ALPHA*exp(x)
                   : AESQL_SELU_SCALE;
    case AESQL_ACT_TANH: {
      /* sech^2 x, which keeps its relative precision where 1 - tanh^2
      ** cancels; c*c overflows past |x| = 355, giving 0 where the true
      ** value is below 1e-308 */
      double c = cosh(x);
      return 1.0/(c*c);
    }
    case AESQL_ACT_SIGMOID: {
      /* s (1 - s) = e / (1 + e)^2 with e = exp(-|x|), even in x */
      double e = exp(-fabs(x));
      return e/((1.0 + e)*(1.0 + e));
    }
  }
  return 1.0;   /* linear */
}
