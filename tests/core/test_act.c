/*
** Tests of ext/core/ae_act.c, the activations: names; Keras' values;
** the float forward pass against the double reference over a sweep and
** at special values; the double derivative against central differences;
** the float backward pass, which reads the derivative off the output,
** against the reference derivative at the input; TensorFlow's values at
** x = 0; the fused bias pass against adding then activating, bit for bit;
** the bias gradient's sums (written, added, none) over shapes with tails;
** relu against ae_nn.c's fused kernels' formulas, bit for bit; NaN in,
** NaN out everywhere; sigmoid's tails.
**
**   make build/tests/test_act && build/tests/test_act
**
** Every tolerance is stated next to its check, with why it is that size.
** u = 2^-24 is float's unit roundoff: a correctly rounded float result is
** within u of the exact value, relatively.
*/
#include "../check.h"
#include "../../ext/core/ae_act.h"

#include <float.h>

#define U_FLOAT 0x1.0p-24
#define NACT AESQL_ACT_COUNT

/* ---------------------------------------------------------------- */
/* helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double rnd(void){            /* uniform in [0, 1), xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state*0x2545f4914f6cdd1dULL) >> 11)*0x1.0p-53;
}
static float rndf(double lo, double hi){ return (float)(lo + (hi-lo)*rnd()); }

static int same_bits(float a, float b){ return memcmp(&a, &b, sizeof(a))==0; }
static int same_array(const float *a, const float *b, size_t n){
  return memcmp(a, b, n*sizeof(float))==0;
}

static float fwd1(int act, float x){
  aesql_act_forward(act, &x, 1);
  return x;
}
/* g * f'(x) from the output a, through the backward pass (no gb). */
static float back1(int act, float a, float g){
  aesql_act_backward(act, &g, &a, 0, 1, 1, 0);
  return g;
}

/* The sweep: -20..20 by 1/64 (exact in float, 0 included), then values
** at the edges of float and of exp: subnormals, FLT_MIN, exp's overflow
** (88.72) and sigmoid's last subnormal (-103.3), FLT_MAX, infinities. */
static const float aSpecial[] = {
  0.0f, -0.0f, 0x1p-149f, -0x1p-149f, 0x1p-130f, -0x1p-130f, FLT_MIN,
  -FLT_MIN, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 3e-4f, -3e-4f, 0.5f, -0.5f,
  30.0f, -30.0f, 88.0f, -88.0f, 88.75f, -88.75f, 89.0f, -89.0f, 100.0f,
  -100.0f, 103.0f, -103.0f, 104.0f, -104.0f, 1000.0f, -1000.0f, 1e30f,
  -1e30f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,
};
#define NSPECIAL (int)(sizeof(aSpecial)/sizeof(aSpecial[0]))
#define NSWEEP (40*64 + 1)

static int sweep(float *x){
  int i, n = 0;
  for(i=0; i<NSWEEP; i++) x[n++] = -20.0f + (float)i/64.0f;
  for(i=0; i<NSPECIAL; i++) x[n++] = aSpecial[i];
  return n;
}

/* ---------------------------------------------------------------- */

static void test_names(void){
  char zList[200], zName[64];
  int i, ok = 1;
  zList[0] = 0;
  for(i=0; i<NACT; i++){
    const char *z = aesql_act_name(i);
    snprintf(zName, sizeof(zName), "parse(name(%d)) == %d (%s)", i, i, z ? z : "NULL");
    CHECK(zName, z!=0 && aesql_act_parse(z)==i);
    if( z==0 ){ ok = 0; continue; }
    if( i ) strcat(zList, ", ");
    strcat(zList, z);
  }
  CHECK("the names are Keras' (enum order)",
        ok && strcmp(aesql_act_name(AESQL_ACT_LINEAR), "linear")==0
        && strcmp(aesql_act_name(AESQL_ACT_RELU), "relu")==0
        && strcmp(aesql_act_name(AESQL_ACT_LEAKY_RELU), "leaky_relu")==0
        && strcmp(aesql_act_name(AESQL_ACT_ELU), "elu")==0
        && strcmp(aesql_act_name(AESQL_ACT_SELU), "selu")==0
        && strcmp(aesql_act_name(AESQL_ACT_TANH), "tanh")==0
        && strcmp(aesql_act_name(AESQL_ACT_SIGMOID), "sigmoid")==0);
  CHECK("aesql_act_list() is the names in order", strcmp(aesql_act_list(), zList)==0);
  CHECK("aesql_act_list() as documented",
        strcmp(aesql_act_list(), "linear, relu, leaky_relu, elu, selu, tanh, sigmoid")==0);
  CHECK("parse(\"RELU\") == -1 (case matters)", aesql_act_parse("RELU")==-1);
  CHECK("parse(\"\") == -1", aesql_act_parse("")==-1);
  CHECK("parse(\"relu \") == -1", aesql_act_parse("relu ")==-1);
  CHECK("parse(\"rel\") == -1", aesql_act_parse("rel")==-1);
  CHECK("parse(NULL) == -1", aesql_act_parse(0)==-1);
  CHECK("name(-1) == NULL", aesql_act_name(-1)==0);
  CHECK("name(7) == NULL", aesql_act_name(AESQL_ACT_COUNT)==0);
}

/* Keras' numbers. In double: exact where one operation or none is
** involved; otherwise within 4 ulp (2^-52 relative each): libm's
** expm1 and tanh in double are allowed 2 ulp, and selu adds two
** roundings (scale*alpha, the product). In float: exact, or within 8u
** of Keras' value, the budget test_forward_sweep explains. */
static void test_known(void){
  const double e = DBL_EPSILON;
  CHECK("AESQL_SELU_SCALE is Keras' 1.0507009873554805",
        AESQL_SELU_SCALE==1.0507009873554805);
  CHECK("AESQL_SELU_ALPHA is Keras' 1.6732632423543772",
        AESQL_SELU_ALPHA==1.6732632423543772);
  CHECK("AESQL_LEAKY_SLOPE is 0.2", AESQL_LEAKY_SLOPE==0.2);

  CHECK_NEAR("f selu(-1) = -1.1113307378125628 (4 ulp)",
             aesql_act_f(AESQL_ACT_SELU, -1.0), -1.1113307378125628, 4*e*1.12);
  CHECK_NEAR("f elu(-1) = -0.6321205588285577 (4 ulp)",
             aesql_act_f(AESQL_ACT_ELU, -1.0), -0.6321205588285577, 4*e*0.64);
  CHECK("f leaky_relu(-1) == -0.2 exactly", aesql_act_f(AESQL_ACT_LEAKY_RELU, -1.0)==-0.2);
  CHECK("f sigmoid(0) == 0.5 exactly", aesql_act_f(AESQL_ACT_SIGMOID, 0.0)==0.5);
  CHECK_NEAR("f tanh(1) = 0.7615941559557649 (4 ulp)",
             aesql_act_f(AESQL_ACT_TANH, 1.0), 0.7615941559557649, 4*e*0.77);
  CHECK("f selu(1) == 1.0507009873554805 exactly",
        aesql_act_f(AESQL_ACT_SELU, 1.0)==1.0507009873554805);
  CHECK("f relu(-1) == 0, relu(2) == 2, linear(-3) == -3",
        aesql_act_f(AESQL_ACT_RELU, -1.0)==0.0 && aesql_act_f(AESQL_ACT_RELU, 2.0)==2.0
        && aesql_act_f(AESQL_ACT_LINEAR, -3.0)==-3.0);
  CHECK("f elu(2) == 2, leaky_relu(2) == 2", aesql_act_f(AESQL_ACT_ELU, 2.0)==2.0
        && aesql_act_f(AESQL_ACT_LEAKY_RELU, 2.0)==2.0);

  CHECK_NEAR("float selu(-1) (8u)", fwd1(AESQL_ACT_SELU, -1.0f),
             -1.1113307378125628, 8*U_FLOAT*1.12);
  CHECK_NEAR("float elu(-1) (8u)", fwd1(AESQL_ACT_ELU, -1.0f),
             -0.6321205588285577, 8*U_FLOAT*0.64);
  CHECK("float leaky_relu(-1) == -0.2f exactly", fwd1(AESQL_ACT_LEAKY_RELU, -1.0f)==-0.2f);
  CHECK("float sigmoid(0) == 0.5 exactly", fwd1(AESQL_ACT_SIGMOID, 0.0f)==0.5f);
  CHECK_NEAR("float tanh(1) (8u)", fwd1(AESQL_ACT_TANH, 1.0f),
             0.7615941559557649, 8*U_FLOAT*0.77);
  CHECK("float selu(1) == (float)scale exactly",
        fwd1(AESQL_ACT_SELU, 1.0f)==(float)1.0507009873554805);
  CHECK("float relu(-1) == 0, relu(2) == 2, linear(-3) == -3",
        fwd1(AESQL_ACT_RELU, -1.0f)==0.0f && fwd1(AESQL_ACT_RELU, 2.0f)==2.0f
        && fwd1(AESQL_ACT_LINEAR, -3.0f)==-3.0f);
  CHECK("float f(0) == 0 for all but sigmoid",
        fwd1(AESQL_ACT_LINEAR, 0.0f)==0.0f && fwd1(AESQL_ACT_RELU, 0.0f)==0.0f
        && fwd1(AESQL_ACT_LEAKY_RELU, 0.0f)==0.0f && fwd1(AESQL_ACT_ELU, 0.0f)==0.0f
        && fwd1(AESQL_ACT_SELU, 0.0f)==0.0f && fwd1(AESQL_ACT_TANH, 0.0f)==0.0f);
}

/* The float forward pass against the double reference at the same
** (float) input. Tolerance 8u relative, plus 2^-149 absolute (below
** FLT_MIN a float has a fixed spacing of 2^-149, so only the absolute
** error is bounded there: sigmoid(-100) is such a subnormal). Why 8u:
** each float path is at most one libm call, allowed 2 ulp (4u; a float
** ulp is between u and 2u relative), and up to three roundings (selu's
** constant scale*alpha rounded to float, the product; sigmoid's 1 + e
** and the quotient): 7u, so 8u. The largest error seen is printed in
** the check's name. Where the double value is beyond FLT_MAX the float
** must be the infinity of its sign. */
static void test_forward_sweep(void){
  static float x[NSWEEP + NSPECIAL], y[NSWEEP + NSPECIAL];
  int n = sweep(x), act, i;
  for(act=0; act<NACT; act++){
    double worst = 0.0;
    int bad = -1;
    char zName[120];
    memcpy(y, x, n*sizeof(float));
    aesql_act_forward(act, y, (size_t)n);
    for(i=0; i<n; i++){
      double want = aesql_act_f(act, (double)x[i]);
      double got = y[i];
      if( fabs(want)>FLT_MAX ){
        if( got!=(want>0 ? INFINITY : -INFINITY) ){ bad = i; break; }
        continue;
      }
      if( !(fabs(got - want) <= 8*U_FLOAT*fabs(want) + 0x1p-149) ){ bad = i; break; }
      if( fabs(want)>=FLT_MIN && fabs(got-want)/fabs(want)/U_FLOAT > worst ){
        worst = fabs(got-want)/fabs(want)/U_FLOAT;
      }
    }
    snprintf(zName, sizeof(zName), "float %s == the double reference within 8u over %d inputs (worst %.2fu)",
             aesql_act_name(act), n, worst);
    if( bad<0 ) check_report(1, zName, "");
    else check_report(0, zName, "x = %.9g: got %.9g, want %.17g", x[bad], y[bad],
                      aesql_act_f(act, (double)x[bad]));
  }
}

/* The reference derivative against a central difference of the
** reference, in double, h = 1e-5, at -5.95, -5.85, ..., 5.95: never
** nearer than 0.05 to the kink at 0. Tolerance 1e-8: the truncation
** error is h^2/6 |f'''| <= 1e-10 (|f'''| <= 2 for tanh, <= 1 for
** sigmoid, scale alpha e^x <= 1.8 for selu), the rounding 2^-53 |f| / h
** <= 1e-10 here; 1e-8 leaves a factor of 100. */
static void test_df_reference(void){
  const double h = 1e-5;
  int act, i;
  for(act=0; act<NACT; act++){
    double worst = 0.0;
    char zName[120];
    for(i=0; i<120; i++){
      double x = -5.95 + 0.1*i;
      double fd = (aesql_act_f(act, x+h) - aesql_act_f(act, x-h))/(2*h);
      double err = fabs(aesql_act_df(act, x) - fd);
      if( !(err<=worst) ) worst = err;       /* NaN makes it NaN */
    }
    snprintf(zName, sizeof(zName), "aesql_act_df(%s) == central differences within 1e-8 (worst %.1e)",
             aesql_act_name(act), worst);
    check_report(worst<=1e-8, zName, "worst %.3g", worst);
  }
}

/* The float backward pass, from the float output a = f(x), against the
** reference derivative at the input x, over the sweep. Tolerance 8u
** absolute, times max(1, |f'|): a carries the forward pass's error, up
** to 7u relative (above), and the derivative read off it turns that into
** an absolute error of |d f'/d a| |a| 7u: 2|a|^2 7u for tanh's 1 - a^2,
** |1 - 2a| |a| 7u for sigmoid's a (1 - a) (both under 8u since |a| <= 1,
** and at most 2u for sigmoid), |a| 7u for elu's a + 1 (|a| < 1) and
** selu's a + scale alpha (|a| < 1.76, the error's factor is 1 there, and
** f' up to 1.76); plus a rounding or two of the derivative itself. So
** the check is absolute where f' is small: near a = +-1 tanh's 1 - a^2
** cancels (tanhf(10) is 1.0f, whose 1 - a^2 is 0 for a true 8e-9), which
** is what reading the derivative off the output costs (TensorFlow's
** kernels do the same). relu, leaky_relu and linear are exact. */
static void test_backward_vs_df(void){
  static float x[NSWEEP + NSPECIAL], a[NSWEEP + NSPECIAL], g[NSWEEP + NSPECIAL];
  int n = sweep(x), act, i;
  for(act=0; act<NACT; act++){
    double worst = 0.0;
    int bad = -1, exact = act==AESQL_ACT_RELU || act==AESQL_ACT_LEAKY_RELU
                          || act==AESQL_ACT_LINEAR;
    char zName[140];
    memcpy(a, x, n*sizeof(float));
    aesql_act_forward(act, a, (size_t)n);
    for(i=0; i<n; i++) g[i] = 1.0f;
    aesql_act_backward(act, g, a, 0, 1, n, 0);
    for(i=0; i<n; i++){
      double want = aesql_act_df(act, (double)x[i]);
      double tol = 8*U_FLOAT*(fabs(want)>1 ? fabs(want) : 1.0);
      double err;
      if( exact ){
        /* the slopes are 1, 0 or the float 0.2f; the reference's 0.2 */
        if( g[i]!=(float)want ){ bad = i; break; }
        continue;
      }
      err = fabs(g[i] - want);
      if( !(err<=tol) ){ bad = i; break; }
      if( err/U_FLOAT > worst ) worst = err/U_FLOAT;
    }
    snprintf(zName, sizeof(zName), "float %s backward from f(x) == aesql_act_df(x) %s over %d inputs (worst %.2fu)",
             aesql_act_name(act), exact ? "exactly" : "within 8u max(1,|f'|)", n, worst);
    if( bad<0 ) check_report(1, zName, "");
    else check_report(0, zName, "x = %.9g, a = %.9g: got %.9g, want %.17g", x[bad],
                      a[bad], g[bad], aesql_act_df(act, (double)x[bad]));
  }
}

/* TensorFlow's values at x = 0, from the output a = f(0) = 0 (and -0,
** which selu's and elu's expm1f(-0) give) and from the reference at 0:
** relu 0, leaky_relu 0.2, elu 1, selu scale, tanh 1, sigmoid 1/4,
** linear 1. */
static void test_at_zero(void){
  static const double aWant[NACT] = {
    1.0, 0.0, 0.2, 1.0, AESQL_SELU_SCALE, 1.0, 0.25
  };
  int act;
  for(act=0; act<NACT; act++){
    char zName[120];
    float a0 = fwd1(act, 0.0f), am = fwd1(act, -0.0f);
    snprintf(zName, sizeof(zName), "%s'(0) == %.17g (TensorFlow): reference, and backward from f(+0), f(-0)",
             aesql_act_name(act), aWant[act]);
    CHECK(zName, aesql_act_df(act, 0.0)==aWant[act] && aesql_act_df(act, -0.0)==aWant[act]
          && back1(act, a0, 1.0f)==(float)aWant[act]
          && back1(act, am, 1.0f)==(float)aWant[act]);
  }
  CHECK("selu'(0) is scale, not scale alpha (TensorFlow's SeluGrad: a < 0 only)",
        back1(AESQL_ACT_SELU, 0.0f, 1.0f)==(float)AESQL_SELU_SCALE
        && aesql_act_df(AESQL_ACT_SELU, -1e-300)>1.7);
  CHECK("relu'(0) == 0 even for a negative gradient, as +0 (nn_relu_grad)",
        same_bits(back1(AESQL_ACT_RELU, 0.0f, -3.0f), 0.0f));
  CHECK("leaky_relu backward at 0: 0.2f g", back1(AESQL_ACT_LEAKY_RELU, 0.0f, -3.0f)==0.2f*-3.0f);
}

/* Shapes: n or k not multiples of 16 (the tails), k = 1, n = 0. */
static const int aShape[][2] = {
  {0, 5}, {1, 1}, {5, 1}, {3, 7}, {4, 16}, {2, 17}, {6, 33}, {3, 48},
  {7, 100}, {1, 300},
};
#define NSHAPE (int)(sizeof(aShape)/sizeof(aShape[0]))
#define GUARD 19     /* floats after each array that must not change */

static void fill(float *p, size_t n, double lo, double hi){
  size_t i;
  for(i=0; i<n; i++){
    p[i] = rndf(lo, hi);
    if( rnd()<0.05 ) p[i] = 0.0f;            /* some exact zeros */
  }
}
static void fill_guard(float *p){ int i; for(i=0; i<GUARD; i++) p[i] = 1234.5f + i; }
static int guard_ok(const float *p){
  int i;
  for(i=0; i<GUARD; i++) if( p[i]!=1234.5f + i ) return 0;
  return 1;
}

/* aesql_act_bias_forward(Z, b) == (Z += b; aesql_act_forward), bit for
** bit, and nothing past n x k written. Inputs in -6..6 with a few exact
** zeros. */
static void test_bias_forward(void){
  int act, s;
  for(act=0; act<NACT; act++){
    int ok = 1;
    char zName[120];
    for(s=0; s<NSHAPE; s++){
      int n = aShape[s][0], k = aShape[s][1], i, j;
      size_t nk = (size_t)n*k;
      float *Z = malloc((nk + GUARD)*sizeof(float));
      float *Y = malloc((nk + GUARD)*sizeof(float));
      float *b = malloc(k*sizeof(float));
      fill(Z, nk, -6, 6);
      fill(b, k, -1, 1);
      memcpy(Y, Z, nk*sizeof(float));
      fill_guard(Z + nk);
      fill_guard(Y + nk);
      for(i=0; i<n; i++) for(j=0; j<k; j++) Y[(size_t)i*k + j] += b[j];
      aesql_act_forward(act, Y, nk);
      aesql_act_bias_forward(act, Z, b, n, k);
      if( !same_array(Z, Y, nk) || !guard_ok(Z + nk) || !guard_ok(Y + nk) ) ok = 0;
      free(Z); free(Y); free(b);
    }
    snprintf(zName, sizeof(zName), "%s: bias_forward == add the bias, then forward, bit for bit (%d shapes)",
             aesql_act_name(act), NSHAPE);
    CHECK(zName, ok);
  }
}

/* The backward pass's bias gradient: gb[j] = sum over rows i, in order,
** of the new dA[i][j], in float (+ gb's old value with add = 1), bit
** for bit; dA the same with gb NULL; nothing past the arrays written. */
static void test_backward_gb(void){
  int act, s, add;
  for(act=0; act<NACT; act++){
    int ok = 1, okNull = 1, okZero = 1;
    char zName[140];
    for(s=0; s<NSHAPE; s++){
      int n = aShape[s][0], k = aShape[s][1], i, j;
      size_t nk = (size_t)n*k;
      float *A = malloc((nk + GUARD)*sizeof(float));
      float *G = malloc((nk + GUARD)*sizeof(float));
      float *G0 = malloc((nk + 1)*sizeof(float));
      float *H = malloc((nk + GUARD)*sizeof(float));
      float *gb = malloc((k + GUARD)*sizeof(float));
      float *gb0 = malloc(k*sizeof(float));
      fill(A, nk, -4, 4);
      aesql_act_forward(act, A, nk);
      fill(G0, nk, -2, 2);
      fill(gb0, k, -1, 1);
      fill_guard(A + nk);
      /* with gb NULL: the reference dA for both sums below */
      memcpy(H, G0, nk*sizeof(float));
      fill_guard(H + nk);
      aesql_act_backward(act, H, A, 0, n, k, 0);
      if( !guard_ok(H + nk) ) okNull = 0;
      for(i=0; i<(int)nk; i++){
        if( !same_bits(H[i], back1(act, A[i], G0[i])) ) okNull = 0;
      }
      for(add=0; add<2; add++){
        memcpy(G, G0, nk*sizeof(float));
        fill_guard(G + nk);
        memcpy(gb, gb0, k*sizeof(float));
        fill_guard(gb + k);
        aesql_act_backward(act, G, A, gb, n, k, add);
        if( !same_array(G, H, nk) || !guard_ok(G + nk) || !guard_ok(gb + k)
         || !guard_ok(A + nk) ) ok = 0;
        for(j=0; j<k; j++){
          float sum = add ? gb0[j] : 0.0f;
          for(i=0; i<n; i++) sum += H[(size_t)i*k + j];
          if( !same_bits(gb[j], sum) ) ok = 0;
          if( n==0 && !same_bits(gb[j], add ? gb0[j] : 0.0f) ) okZero = 0;
        }
      }
      free(A); free(G); free(G0); free(H); free(gb); free(gb0);
    }
    snprintf(zName, sizeof(zName), "%s backward: gb = column sums in row order, written and added, bit for bit (%d shapes)",
             aesql_act_name(act), NSHAPE);
    CHECK(zName, ok);
    snprintf(zName, sizeof(zName), "%s backward: gb NULL gives the same dA, elementwise f'", aesql_act_name(act));
    CHECK(zName, okNull);
    snprintf(zName, sizeof(zName), "%s backward: n = 0 zeroes gb (add 0), keeps it (add 1)", aesql_act_name(act));
    CHECK(zName, okZero);
  }
}

/* relu is ae_nn.c's nn_bias_relu (v < 0 ? 0 : v of z + b) and
** nn_relu_grad (a > 0 ? g : 0, summed the same way), bit for bit, on
** finite values: the refactor must not move a training run's bits. */
static void test_relu_is_nn(void){
  const int n = 37, k = 45;
  float *Z = malloc(n*k*sizeof(float)), *Y = malloc(n*k*sizeof(float));
  float *G = malloc(n*k*sizeof(float)), *H = malloc(n*k*sizeof(float));
  float b[45], gb[45], gbw[45];
  int i, j, okF = 1, okB = 1;
  fill(Z, (size_t)n*k, -3, 3);
  fill(b, k, -0.5, 0.5);
  b[3] = -0.0f;
  Z[3] = -0.0f;                 /* -0 + -0: relu keeps -0, as nn does */
  for(i=0; i<n; i++) for(j=0; j<k; j++){
    float v = Z[i*k+j] + b[j];
    Y[i*k+j] = v<0.0f ? 0.0f : v;
  }
  aesql_act_bias_forward(AESQL_ACT_RELU, Z, b, n, k);
  okF = same_array(Z, Y, (size_t)n*k);
  fill(G, (size_t)n*k, -2, 2);
  memcpy(H, G, n*k*sizeof(float));
  memset(gbw, 0, sizeof(gbw));
  for(i=0; i<n; i++) for(j=0; j<k; j++){
    float v = Z[i*k+j]>0.0f ? H[i*k+j] : 0.0f;
    H[i*k+j] = v;
    gbw[j] += v;
  }
  aesql_act_backward(AESQL_ACT_RELU, G, Z, gb, n, k, 0);
  okB = same_array(G, H, (size_t)n*k) && same_array(gb, gbw, k);
  CHECK("relu bias_forward is nn_bias_relu's formula, bit for bit", okF);
  CHECK("relu backward is nn_relu_grad's formula and sums, bit for bit", okB);
  free(Z); free(Y); free(G); free(H);
}

/* NaN in, NaN out: the reference, the forward pass (in a block of 16 and
** in the tail), the backward pass with a NaN output or a NaN gradient
** (at a = f(-1), f(0), f(1): relu's zero slope included), and the bias
** gradient's column. */
static void test_nan(void){
  int act;
  for(act=0; act<NACT; act++){
    float Z[2*19], b[19], A[2*19], G[2*19], gb[19];
    const float aX[3] = {-1.0f, 0.0f, 1.0f};
    int i, okF, okB = 1, okG;
    char zName[120];
    for(i=0; i<2*19; i++) Z[i] = (float)(i%7) - 3.0f;
    for(i=0; i<19; i++) b[i] = 0.25f;
    Z[5] = NAN;                 /* row 0, in the first block of 16 */
    Z[19+17] = NAN;             /* row 1, in the tail */
    b[11] = NAN;                /* column 11 of both rows */
    aesql_act_bias_forward(act, Z, b, 2, 19);
    okF = isnan(Z[5]) && isnan(Z[19+17]) && isnan(Z[11]) && isnan(Z[19+11])
       && !isnan(Z[0]) && !isnan(Z[19+18]);
    okF = okF && isnan(fwd1(act, NAN)) && isnan(aesql_act_f(act, NAN))
       && isnan(aesql_act_df(act, NAN));
    snprintf(zName, sizeof(zName), "%s: NaN in, NaN out (reference, forward, bias_forward)",
             aesql_act_name(act));
    CHECK(zName, okF);

    for(i=0; i<3; i++){
      float a = fwd1(act, aX[i]);
      if( !isnan(back1(act, a, NAN)) ) okB = 0;
      if( !isnan(back1(act, NAN, 1.0f)) ) okB = 0;
      if( !isnan(back1(act, NAN, 0.0f)) ) okB = 0;
    }
    snprintf(zName, sizeof(zName), "%s backward: a NaN output or a NaN gradient gives NaN (at f(-1), f(0), f(1))",
             aesql_act_name(act));
    CHECK(zName, okB);

    for(i=0; i<2*19; i++){ A[i] = fwd1(act, (float)(i%5) - 2.0f); G[i] = 0.5f; }
    A[2] = NAN;                 /* column 2, in a block */
    G[19+18] = NAN;             /* column 18, in the tail, where ... */
    A[19+18] = fwd1(act, 0.0f); /* ... the output is f(0) */
    aesql_act_backward(act, G, A, gb, 2, 19, 0);
    okG = isnan(G[2]) && isnan(G[19+18]) && isnan(gb[2]) && isnan(gb[18])
       && !isnan(gb[0]) && !isnan(gb[17]);
    snprintf(zName, sizeof(zName), "%s backward: NaN reaches dA and its gb column, and only those",
             aesql_act_name(act));
    CHECK(zName, okG);
  }
}

/* sigmoid's tails: no overflow, no NaN. */
static void test_sigmoid_tails(void){
  float s100 = fwd1(AESQL_ACT_SIGMOID, -100.0f);
  double e100 = exp(-100.0);        /* sigmoid(-100) = e/(1+e) = e (1 - 4e-44) */
  CHECK("float sigmoid(-100) finite, > 0 (a subnormal)", isfinite(s100) && s100>0.0f);
  /* a subnormal's spacing is 2^-149 = 1.4e-45: the float is within one
  ** spacing of 3.72e-44 */
  CHECK_NEAR("float sigmoid(-100) == exp(-100) within 2^-149", s100, e100, 0x1p-149);
  CHECK("float sigmoid(100) == 1", fwd1(AESQL_ACT_SIGMOID, 100.0f)==1.0f);
  CHECK("float sigmoid(-1000) == 0, sigmoid(-inf) == 0, not NaN",
        fwd1(AESQL_ACT_SIGMOID, -1000.0f)==0.0f && fwd1(AESQL_ACT_SIGMOID, -INFINITY)==0.0f);
  CHECK("float sigmoid(1000) == 1, sigmoid(inf) == 1",
        fwd1(AESQL_ACT_SIGMOID, 1000.0f)==1.0f && fwd1(AESQL_ACT_SIGMOID, INFINITY)==1.0f);
  CHECK("f sigmoid(-100) > 0, sigmoid(-1000) == 0, sigmoid(100) == 1 (double)",
        aesql_act_f(AESQL_ACT_SIGMOID, -100.0)>0.0 && aesql_act_f(AESQL_ACT_SIGMOID, -1000.0)==0.0
        && aesql_act_f(AESQL_ACT_SIGMOID, 100.0)==1.0);
  CHECK("sigmoid backward at a = 1 and a = tiny: finite",
        back1(AESQL_ACT_SIGMOID, 1.0f, 1.0f)==0.0f
        && back1(AESQL_ACT_SIGMOID, s100, 1.0f)==s100);
  CHECK("tanh, elu, selu at -inf: -1, -1, -scale alpha",
        fwd1(AESQL_ACT_TANH, -INFINITY)==-1.0f && fwd1(AESQL_ACT_ELU, -INFINITY)==-1.0f
        && fwd1(AESQL_ACT_SELU, -INFINITY)==-(float)(AESQL_SELU_SCALE*AESQL_SELU_ALPHA));
}

/* An act out of range: the passes touch nothing; the reference is NaN. */
static void test_bad_act(void){
  float z[3] = {1, -2, 3}, g[3] = {1, 1, 1}, gb[3] = {7, 7, 7}, b[3] = {1, 1, 1};
  int bad[2] = {-1, AESQL_ACT_COUNT}, i, ok = 1;
  for(i=0; i<2; i++){
    aesql_act_forward(bad[i], z, 3);
    aesql_act_bias_forward(bad[i], z, b, 1, 3);
    aesql_act_backward(bad[i], g, z, gb, 1, 3, 0);
    if( !isnan(aesql_act_f(bad[i], 1.0)) || !isnan(aesql_act_df(bad[i], 1.0)) ) ok = 0;
  }
  CHECK("act out of range: nothing written, reference NaN",
        ok && z[0]==1 && z[1]==-2 && z[2]==3 && g[0]==1 && g[2]==1 && gb[0]==7 && gb[2]==7);
}

int main(void){
  test_names();
  test_known();
  test_forward_sweep();
  test_df_reference();
  test_backward_vs_df();
  test_at_zero();
  test_bias_forward();
  test_backward_gb();
  test_relu_is_nn();
  test_nan();
  test_sigmoid_tails();
  test_bad_act();
  return check_done();
}
