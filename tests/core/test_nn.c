/*
** Tests of ext/ae_nn.c: the random generator, the model's gradients
** (central differences in double), the BLAS path against the naive
** reference, aesql_sgemm against aesql_sgemm_naive, Keras' Adam by hand,
** and a run against PyTorch's numbers (tests/fixtures/nn_torch.txt,
** written by tests/torch_fixture.py; torch is not needed here). Then the
** training path: the index of non-zero pixels, the sparse and gathered
** row passes against the naive reference, Adam in pieces, the thread pool
** (ext/ae_pool.c) and data-parallel training (ext/ae_fit.c), which must
** give the same bits for any number of threads.
**
**   make build/tests/test_nn && ./build/tests/test_nn
**
** Every tolerance is stated next to its check, with why it is that size.
** u = 2^-24 is float's unit roundoff.
*/
/* check.h's SQL helpers are not used here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../check.h"
#pragma GCC diagnostic pop
#include "../../ext/core/ae_nn.h"
#include "../../ext/core/ae_blas.h"
#include "../../ext/core/ae_fit.h"
#include "../../ext/core/ae_pool.h"

#include <stdint.h>

#define U_FLOAT 0x1.0p-24

/* ---------------------------------------------------------------- */
/* helpers */

static void fill_uniform(aesql_rng *r, float *a, size_t n, double lo, double hi){
  size_t i;
  for(i=0; i<n; i++) a[i] = (float)(lo + (hi-lo)*aesql_rng_uniform(r));
}

/* max |a|; NaN anywhere makes it infinite. */
static double max_abs(const float *a, size_t n){
  double m = 0.0;
  size_t i;
  for(i=0; i<n; i++){
    double e = fabs(a[i]);
    if( !(e<=m) ) m = isnan(e) ? INFINITY : e;
  }
  return m;
}

/* max |a-b|; NaN anywhere makes it infinite, so that checks fail. */
static double max_diff(const float *a, const float *b, size_t n){
  double m = 0.0;
  size_t i;
  for(i=0; i<n; i++){
    double e = fabs((double)a[i] - b[i]);
    if( !(e<=m) ) m = isnan(e) ? INFINITY : e;
  }
  return m;
}

/* glorot kernels, then biases uniform in [-bias, bias] */
static void model_init(aesql_nn *nn, aesql_rng *r, double bias){
  aesql_nn_glorot(nn, r);
  fill_uniform(r, nn->b1, nn->h, -bias, bias);
  fill_uniform(r, nn->b2, nn->d, -bias, bias);
}

/* The loss of the model with parameters P (double, in aesql_nn's layout),
** all in double: what the finite differences differentiate. */
static double loss_double(const double *P, int d, int h, const float *X, int n){
  const double *w1 = P, *b1 = w1 + d*h, *w2 = b1 + h, *b2 = w2 + h*d;
  double loss = 0.0, a[64];
  int r, i, j, k;
  for(r=0; r<n; r++){
    const float *x = X + r*d;
    for(k=0; k<h; k++){
      double z = b1[k];
      for(i=0; i<d; i++) z += x[i]*w1[i*h + k];
      a[k] = z>0.0 ? z : 0.0;
    }
    for(j=0; j<d; j++){
      double y = b2[j];
      for(k=0; k<h; k++) y += a[k]*w2[k*d + j];
      loss += (y - x[j])*(y - x[j]);
    }
  }
  return loss/(n*d);
}

/* ---------------------------------------------------------------- */
/* 1. Gradients against central differences */

static void test_gradcheck(void){
  enum { D = 12, H = 5, N = 7 };
  const double eps = 1e-6;      /* step of the central differences */
  const double margin = 1e-3;   /* every |z1| at least this: no kink within reach */
  aesql_nn nn, gn, gb;
  aesql_nn_work *w = 0;
  aesql_rng r;
  float X[N*D];
  double P[2*D*H + D + H] = {0}, fd[2*D*H + D + H] = {0}, fdmax = 0.0;
  double errNaive = 0.0, errBlas = 0.0;
  size_t np = aesql_nn_nparam(D, H), p;
  uint64_t seed;
  int nInactive = 0, mixed = 0, ok = 0;

  CHECK("gradcheck: nparam", np==(size_t)(2*D*H + D + H));
  if( aesql_nn_alloc(&nn, D, H) || aesql_nn_alloc(&gn, D, H)
   || aesql_nn_alloc(&gb, D, H) || (w = aesql_nn_work_new(D, H, N))==0 ){
    CHECK("gradcheck: alloc", 0);
    return;
  }
  /* A draw of data, weights and biases where no hidden unit is within
  ** `margin` of its kink and at least 3 of the 5 units are on for some
  ** rows and off for others. */
  for(seed=1; seed<200 && !ok; seed++){
    int i, k, rr;
    aesql_rng_seed(&r, seed);
    model_init(&nn, &r, 0.2);
    fill_uniform(&r, X, N*D, 0.0, 1.0);
    ok = 1; nInactive = 0; mixed = 0;
    for(k=0; k<H; k++){
      int off = 0;
      for(rr=0; rr<N; rr++){
        double z = nn.b1[k];
        for(i=0; i<D; i++) z += (double)X[rr*D + i]*nn.w1[i*H + k];
        if( fabs(z)<margin ) ok = 0;
        if( z<0 ) off++;
      }
      nInactive += off;
      if( off>0 && off<N ) mixed++;
    }
    if( nInactive==0 || nInactive==N*H || mixed<3 ) ok = 0;
  }
  CHECK("gradcheck: a draw with mixed active units and no kink in reach", ok);
  printf("# gradcheck: seed %d, %d of %d hidden activations off, %d units mixed\n",
         (int)seed-1, nInactive, N*H, mixed);

  for(p=0; p<np; p++) P[p] = nn.param[p];
  for(p=0; p<np; p++){
    double keep = P[p], lp, lm;
    P[p] = keep + eps; lp = loss_double(P, D, H, X, N);
    P[p] = keep - eps; lm = loss_double(P, D, H, X, N);
    P[p] = keep;
    fd[p] = (lp - lm)/(2*eps);
    if( fabs(fd[p])>fdmax ) fdmax = fabs(fd[p]);
  }
  {
    double l0 = loss_double(P, D, H, X, N);
    double ln = aesql_nn_grad_naive(&nn, X, N, &gn);
    double lb = aesql_nn_grad(&nn, w, X, N, &gb);
    /* the naive loss is the double loss, up to summation order */
    CHECK_NEAR("gradcheck: naive loss = double loss (rel 1e-12)", ln, l0, 1e-12*l0);
    /* the BLAS loss: float sums of <= 12 float products, rel ~ 12u */
    CHECK_NEAR("gradcheck: blas loss (rel 1e-5)", lb, l0, 1e-5*l0);
  }
  /* error of parameter p: |g - fd| / max(|fd|, 1e-3 max|fd|); the floor
  ** keeps near-zero derivatives from dividing by nothing */
  for(p=0; p<np; p++){
    double den = fmax(fabs(fd[p]), 1e-3*fdmax);
    double en = fabs(gn.param[p] - fd[p])/den;
    double eb = fabs(gb.param[p] - fd[p])/den;
    if( !(en<=errNaive) ) errNaive = isnan(en) ? INFINITY : en;
    if( !(eb<=errBlas) ) errBlas = isnan(eb) ? INFINITY : eb;
  }
  printf("# gradcheck: max|fd| %.3g, max rel error naive %.2e, blas %.2e\n",
         fdmax, errNaive, errBlas);
  /* naive: double throughout, rounded once to float (u = 6e-8); the central
  ** difference's own error is ~eps^2 ~ 1e-12 */
  check_report(errNaive<=1e-6, "gradcheck: naive grad = central differences (rel 1e-6)",
               "max rel error %.3g", errNaive);
  /* BLAS: float sums of <= 12 terms and float products: ~100u plus the
  ** floor term, measured ~1e-6 */
  check_report(errBlas<=2e-5, "gradcheck: blas grad = central differences (rel 2e-5)",
               "max rel error %.3g", errBlas);
  aesql_nn_free(&nn); aesql_nn_free(&gn); aesql_nn_free(&gb);
  aesql_nn_work_free(w);
}

/* ---------------------------------------------------------------- */
/* 2. The BLAS path against the naive reference */

static void test_blas_vs_naive(int n, int d, int h, int maxn){
  aesql_nn nn, gn, gb;
  aesql_nn_work *w = 0;
  aesql_rng r;
  float *X = 0, *Hn = 0, *Yn = 0, *Hb = 0, *Yb = 0;
  char z[160];
  double ln, lb, lb2, lg, lgn;
  const char *tname[4] = {"w1", "b1", "w2", "b2"};
  int t;

  snprintf(z, sizeof(z), "blas vs naive %dx%dx%d", n, d, h);
  X = malloc(sizeof(float)*n*d);
  Yn = malloc(sizeof(float)*n*d); Yb = malloc(sizeof(float)*n*d);
  Hn = malloc(sizeof(float)*n*h); Hb = malloc(sizeof(float)*n*h);
  if( !X || !Yn || !Yb || !Hn || !Hb || aesql_nn_alloc(&nn, d, h)
   || aesql_nn_alloc(&gn, d, h) || aesql_nn_alloc(&gb, d, h)
   || (w = aesql_nn_work_new(d, h, maxn))==0 ){
    check_report(0, z, "out of memory");
    goto done;
  }
  aesql_rng_seed(&r, 1000 + n);
  model_init(&nn, &r, 0.1);
  fill_uniform(&r, X, (size_t)n*d, 0.0, 1.0);

  ln = aesql_nn_forward_naive(&nn, X, n, Hn, Yn);
  lb = aesql_nn_forward(&nn, w, X, n, Hb, Yb);
  lb2 = aesql_nn_forward(&nn, w, X, n, 0, 0);
  /* H: float sums of d products of |x| <= 1 and |w| <= sqrt(6/(d+h)):
  ** about d u max|z|; 1e-5 covers d = 784 (measured ~5e-7) */
  {
    double e = max_diff(Hn, Hb, (size_t)n*h);
    check_report(e<=1e-5, (snprintf(z, sizeof(z), "blas vs naive %dx%dx%d: H (abs 1e-5)",
                 n, d, h), z), "max diff %.3g", e);
    e = max_diff(Yn, Yb, (size_t)n*d);
    /* Y: h products of H's error by |w2|, plus h u |y|: 1e-5 */
    check_report(e<=1e-5, (snprintf(z, sizeof(z), "blas vs naive %dx%dx%d: Y (abs 1e-5)",
                 n, d, h), z), "max diff %.3g", e);
  }
  printf("# blas vs naive %dx%dx%d: max diff H %.2e, Y %.2e; loss rel %.2e\n",
         n, d, h, max_diff(Hn, Hb, (size_t)n*h), max_diff(Yn, Yb, (size_t)n*d),
         fabs(lb - ln)/ln);
  /* loss: mean of n d squares, each from a float residual: rel 1e-5 */
  snprintf(z, sizeof(z), "blas vs naive %dx%dx%d: loss (rel 1e-5)", n, d, h);
  CHECK_NEAR(z, lb, ln, 1e-5*ln);
  snprintf(z, sizeof(z), "blas %dx%dx%d: forward without H, Y gives the same loss", n, d, h);
  CHECK(z, lb2==lb);

  lgn = aesql_nn_grad_naive(&nn, X, n, &gn);
  lg = aesql_nn_grad(&nn, w, X, n, &gb);
  snprintf(z, sizeof(z), "blas %dx%dx%d: grad's loss = forward's loss (rel 1e-12)", n, d, h);
  CHECK_NEAR(z, lg, lb, 1e-12*lb);
  snprintf(z, sizeof(z), "naive %dx%dx%d: grad's loss = forward's loss", n, d, h);
  CHECK_NEAR(z, lgn, ln, 1e-12*ln);
  /* each gradient tensor: max |blas - naive| <= 2e-5 max|naive|. The float
  ** sums run over n rows (gb*, gW*) or d columns (dH), ~sqrt(n) u to n u
  ** relative to the largest terms; measured <= 7e-7 at 256x784x32 */
  for(t=0; t<4; t++){
    const float *a = t==0 ? gn.w1 : t==1 ? gn.b1 : t==2 ? gn.w2 : gn.b2;
    const float *b = t==0 ? gb.w1 : t==1 ? gb.b1 : t==2 ? gb.w2 : gb.b2;
    size_t cnt = t==0 || t==2 ? (size_t)d*h : t==1 ? (size_t)h : (size_t)d;
    double m = max_abs(a, cnt), e = max_diff(a, b, cnt);
    snprintf(z, sizeof(z), "blas vs naive %dx%dx%d: grad %s (2e-5 of max %.2g)",
             n, d, h, tname[t], m);
    printf("# blas vs naive %dx%dx%d: grad %s max diff %.2e = %.2e of max\n",
           n, d, h, tname[t], e, e/m);
    check_report(m>0 && e<=2e-5*m, z, "max diff %.3g, rel %.3g", e, e/m);
  }
done:
  free(X); free(Yn); free(Yb); free(Hn); free(Hb);
  aesql_nn_free(&nn); aesql_nn_free(&gn); aesql_nn_free(&gb);
  aesql_nn_work_free(w);
}

/* ---------------------------------------------------------------- */
/* 3. aesql_sgemm against aesql_sgemm_naive */

static void test_sgemm_shape(int M, int N, int K, int pad){
  aesql_rng r;
  int ta, tb, beta;
  char z[160];
  for(ta=0; ta<2; ta++) for(tb=0; tb<2; tb++) for(beta=0; beta<2; beta++){
    /* stored shapes: A is M x K (or K x M when transposed), likewise B */
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = calloc((size_t)ar*lda, sizeof(float));
    float *B = calloc((size_t)br*ldb, sizeof(float));
    float *C = malloc((size_t)M*ldc*sizeof(float));
    float *Cr = malloc((size_t)M*ldc*sizeof(float));
    float *Aa = calloc((size_t)ar*lda, sizeof(float));
    float *Ba = calloc((size_t)br*ldb, sizeof(float));
    float *Cb = malloc((size_t)M*ldc*sizeof(float));
    const float alpha = 0.75f;
    double worst = 0.0;
    int i, j, finite = 1;
    if( !A || !B || !C || !Cr || !Aa || !Ba || !Cb ){
      check_report(0, "sgemm", "out of memory");
      goto next;
    }
    aesql_rng_seed(&r, 77 + ta*4 + tb*2 + beta);
    fill_uniform(&r, A, (size_t)ar*lda, -1.0, 1.0);
    fill_uniform(&r, B, (size_t)br*ldb, -1.0, 1.0);
    fill_uniform(&r, C, (size_t)M*ldc, -1.0, 1.0);
    if( beta==0 ){
      /* with beta 0, C is not read: NaNs there must not show through */
      for(i=0; i<M*ldc; i++) C[i] = NAN;
    }
    memcpy(Cr, C, (size_t)M*ldc*sizeof(float));
    for(i=0; i<ar*lda; i++) Aa[i] = fabsf(A[i]);
    for(i=0; i<br*ldb; i++) Ba[i] = fabsf(B[i]);
    aesql_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, (float)beta, C, ldc);
    aesql_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, (float)beta, Cr, ldc);
    aesql_sgemm_naive(ta, tb, M, N, K, 1.0f, Aa, lda, Ba, ldb, 0.0f, Cb, ldc);
    /* the classical bound: |C - Cref| <= (K+2) u (|alpha| |A||B| + |beta C|),
    ** measured as a fraction of it (the naive reference is exact to u) */
    for(i=0; i<M; i++){
      for(j=0; j<N; j++){
        size_t o = (size_t)i*ldc + j;
        double bound = (K + 2)*U_FLOAT*(alpha*Cb[o] + (beta ? 1.0 : 0.0)) + 1e-30;
        double e = fabs((double)C[o] - Cr[o])/bound;
        if( !isfinite(C[o]) ) finite = 0;
        if( !(e<=worst) ) worst = isnan(e) ? INFINITY : e;
      }
    }
    snprintf(z, sizeof(z), "sgemm %c%c beta %d, %dx%dx%d ld+%d: within (K+2)u|A||B|",
             ta ? 'T' : 'N', tb ? 'T' : 'N', beta, M, N, K, pad);
    check_report(finite && worst<=1.0, z, "finite %d, worst error %.3g of the bound",
                 finite, worst);
  next:
    free(A); free(B); free(C); free(Cr); free(Aa); free(Ba); free(Cb);
  }
}

/* ---------------------------------------------------------------- */
/* 4. Adam, by hand */

static void test_adam_hand(void){
  enum { NP = 5 };
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
  /* the hyperparameters as the float values the code holds */
  const double B1 = b1, B2 = b2, LR = lr, EPS = eps;
  const float p0[NP] = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f};
  const float g1[NP] = {0.1f, -0.2f, 0.0f, 3.0f, 1e-6f};
  const float g2[NP] = {0.05f, 0.3f, -0.01f, -3.0f, 1e-6f};
  double m[NP], v[NP], pe[NP], lrt;
  float p[NP];
  aesql_adam a;
  char z[120];
  int i;

  if( aesql_adam_init(&a, NP, lr, b1, b2, eps) ){
    CHECK("adam: init", 0);
    return;
  }
  CHECK("adam: init zeroes t, m, v", a.t==0 && a.n==NP && a.m[0]==0 && a.v[NP-1]==0);
  memcpy(p, p0, sizeof(p));

  /* step 1: m = (1-b1) g, v = (1-b2) g^2, lr_t = lr sqrt(1-b2)/(1-b1) */
  aesql_adam_step(&a, p, g1);
  lrt = LR*sqrt(1.0 - B2)/(1.0 - B1);
  for(i=0; i<NP; i++){
    m[i] = (1.0 - B1)*g1[i];
    v[i] = (1.0 - B2)*g1[i]*g1[i];
    pe[i] = p0[i] - lrt*m[i]/(sqrt(v[i]) + EPS);
  }
  CHECK("adam: t is 1 after a step", a.t==1);
  /* p: a float rounding of p plus a few u of the step (~lr):
  ** |p - exact| <= 2^-22 max(1, |p|) */
  for(i=0; i<NP; i++){
    snprintf(z, sizeof(z), "adam step 1: p[%d] (abs 2^-22 max(1,|p|))", i);
    CHECK_NEAR(z, p[i], pe[i], 0x1.0p-22*fmax(1.0, fabs(pe[i])));
    snprintf(z, sizeof(z), "adam step 1: m[%d], v[%d] (rel 4u)", i, i);
    check_report(fabs(a.m[i] - m[i])<=4*U_FLOAT*fabs(m[i])
                 && fabs(a.v[i] - v[i])<=4*U_FLOAT*fabs(v[i]), z,
                 "m %.9g want %.9g, v %.9g want %.9g", a.m[i], m[i], a.v[i], v[i]);
  }
  /* closed forms of step 1: p1 = p0 - lr g/(|g| + eps/sqrt(1-b2)) */
  CHECK_NEAR("adam step 1: g = 0 leaves p", p[2], 2.0, 0.0);
  CHECK_NEAR("adam step 1: g = 3 moves p by lr 3/(3 + eps/sqrt(1-b2))", p[3],
             -LR*3.0/(3.0 + EPS/sqrt(1.0 - B2)), 1e-9);
  /* Keras' epsilon: g = 1e-6 moves p by 0.24 lr; torch's Adam would move
  ** it by lr g/(g + eps) = 0.91 lr */
  CHECK_NEAR("adam step 1: tiny g, Keras' epsilon (p = 0.25 - 0.0024025)", p[4],
             0.25 - LR*g1[4]/(g1[4] + EPS/sqrt(1.0 - B2)), 1e-7);
  CHECK("adam step 1: tiny g, not torch's epsilon",
        fabs(p[4] - (0.25 - LR*g1[4]/(g1[4] + EPS))) > 1e-3);

  /* step 2: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
  ** lr_t = lr sqrt(1-b2^2)/(1-b1^2) */
  aesql_adam_step(&a, p, g2);
  lrt = LR*sqrt(1.0 - B2*B2)/(1.0 - B1*B1);
  for(i=0; i<NP; i++){
    m[i] = B1*m[i] + (1.0 - B1)*g2[i];
    v[i] = B2*v[i] + (1.0 - B2)*g2[i]*g2[i];
    pe[i] = pe[i] - lrt*m[i]/(sqrt(v[i]) + EPS);
    snprintf(z, sizeof(z), "adam step 2: p[%d] (abs 2^-22 max(1,|p|))", i);
    CHECK_NEAR(z, p[i], pe[i], 0x1.0p-22*fmax(1.0, fabs(pe[i])));
  }
  /* g = 3 then -3: m = 0.09*3 - 0.1*3 = -0.03, so p moves back up */
  CHECK("adam step 2: p[3] moves back", p[3] > -0.0099 && p[3] < 0.0);
  aesql_adam_free(&a);
  CHECK("adam: free clears", a.m==0 && a.v==0 && a.n==0);
}

/* ---------------------------------------------------------------- */
/* 5. Random numbers and glorot */

static void test_rng(void){
  aesql_rng r;
  uint32_t cnt[10] = {0}, *perm, i;
  double sum = 0.0, sum2 = 0.0, lim;
  int ok, k;
  /* values from the independent Python implementation in
  ** tests/torch_fixture.py (and splitmix64(0) = 0xe220a8397b1dcdaf) */
  static const uint64_t want42[4] = {
    0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
    0xae17533239e499a1ull, 0xecb8ad4703b360a1ull };
  static const uint32_t wantBelow[10] = {7, 2, 8, 9, 9, 8, 0, 1, 4, 1};
  static const uint32_t wantBig1[3] = {2325156129u, 3143307063u, 4032826537u};
  static const uint32_t wantBig2[3] = {2642552285u, 1354258958u, 1682637346u};
  static const uint32_t wantShuf[10] = {3, 6, 1, 5, 0, 9, 2, 8, 4, 7};

  aesql_rng_seed(&r, 42);
  ok = 1;
  for(k=0; k<4; k++) ok &= aesql_rng_next(&r)==want42[k];
  CHECK("rng: seed 42 gives the recorded first four outputs", ok);
  aesql_rng_seed(&r, 0);
  CHECK("rng: seed 0 works (first output 0x99ec5f36cb75f2b4)",
        aesql_rng_next(&r)==0x99ec5f36cb75f2b4ull);
  aesql_rng_seed(&r, 42);
  CHECK("rng: uniform is the top 53 bits: 0x1.5780b2e0c2ec0p-4",
        aesql_rng_uniform(&r)==0x1.5780b2e0c2ec0p-4);
  aesql_rng_seed(&r, 7);
  ok = 1;
  for(k=0; k<10; k++) ok &= aesql_rng_below(&r, 10)==wantBelow[k];
  for(k=0; k<3; k++) ok &= aesql_rng_below(&r, 0xFFFFFFFFu)==wantBig1[k];
  for(k=0; k<3; k++) ok &= aesql_rng_below(&r, 3000000001u)==wantBig2[k];
  CHECK("rng: below() gives the recorded values", ok);
  CHECK("rng: below(0) = 0, below(1) = 0",
        aesql_rng_below(&r, 0)==0 && aesql_rng_below(&r, 1)==0);

  /* in range, for small, odd and huge bounds */
  {
    static const uint32_t ns[] = {1, 2, 3, 7, 1000, 0x80000001u, 0xFFFFFFFFu};
    ok = 1;
    for(k=0; k<(int)(sizeof(ns)/sizeof(ns[0])); k++){
      for(i=0; i<20000; i++) ok &= aesql_rng_below(&r, ns[k])<ns[k];
    }
    CHECK("rng: below(n) < n for n in 1, 2, 3, 7, 1000, 2^31+1, 2^32-1", ok);
  }
  /* 100000 draws of below(10): each count 10000 +- 5 sigma (sigma 94.9) */
  for(i=0; i<100000; i++) cnt[aesql_rng_below(&r, 10)]++;
  ok = 1;
  for(k=0; k<10; k++) ok &= cnt[k]>=10000-475 && cnt[k]<=10000+475;
  CHECK("rng: below(10) is uniform (5 sigma)", ok);
  /* 100000 uniforms: in [0,1), mean 0.5 +- 5 sqrt(1/12/1e5) = 0.0046 */
  ok = 1;
  for(i=0; i<100000; i++){
    double u = aesql_rng_uniform(&r);
    ok &= u>=0.0 && u<1.0;
    sum += u;
  }
  CHECK("rng: uniform in [0,1)", ok);
  CHECK_NEAR("rng: uniform mean (5 sigma)", sum/100000, 0.5, 0.0046);

  /* shuffles */
  aesql_rng_seed(&r, 1);
  {
    uint32_t a[10];
    for(i=0; i<10; i++) a[i] = i;
    aesql_rng_shuffle(&r, a, 10);
    CHECK("rng: shuffle of 0..9, seed 1, gives the recorded order",
          memcmp(a, wantShuf, sizeof(a))==0);
  }
  perm = malloc(1000*sizeof(uint32_t));
  if( perm ){
    uint8_t seen[1000] = {0};
    int moved = 0;
    for(i=0; i<1000; i++) perm[i] = i;
    aesql_rng_shuffle(&r, perm, 1000);
    ok = 1;
    for(i=0; i<1000; i++){
      if( perm[i]>=1000 || seen[perm[i]] ) ok = 0; else seen[perm[i]] = 1;
      moved += perm[i]!=i;
    }
    CHECK("rng: shuffle is a permutation", ok);
    CHECK("rng: shuffle moves most elements", moved>900);
    aesql_rng_shuffle(&r, perm, 1);
    aesql_rng_shuffle(&r, perm, 0);
    CHECK("rng: shuffles of 0 and 1 elements", perm[0]<1000);
    free(perm);
  }

  /* glorot at 784-32-784 */
  {
    aesql_nn nn, nn2;
    size_t nw = 784*32, j;
    float fl;
    if( aesql_nn_alloc(&nn, 784, 32) || aesql_nn_alloc(&nn2, 784, 32) ){
      CHECK("glorot: alloc", 0);
      return;
    }
    lim = sqrt(6.0/(784 + 32));
    fl = (float)lim;
    aesql_rng_seed(&r, 5);
    aesql_nn_glorot(&nn, &r);
    ok = 1;
    sum = sum2 = 0.0;
    for(j=0; j<nw; j++){
      ok &= fabsf(nn.w1[j])<=fl && fabsf(nn.w2[j])<=fl;
      sum += nn.w1[j] + nn.w2[j];
      sum2 += (double)nn.w1[j]*nn.w1[j] + (double)nn.w2[j]*nn.w2[j];
    }
    CHECK("glorot: |w| <= sqrt(6/(d+h))", ok);
    CHECK("glorot: uses the range (max |w| > 0.999 limit)",
          fmax(max_abs(nn.w1, nw), max_abs(nn.w2, nw)) > 0.999*lim);
    /* mean of 2 nw draws, sd lim/sqrt(3): 5 sigma */
    CHECK_NEAR("glorot: mean about 0 (5 sigma)", sum/(2*nw), 0.0,
               5*lim/sqrt(3.0*2*nw));
    /* variance lim^2/3, within 2% (its sd is ~0.4% here) */
    CHECK_NEAR("glorot: variance lim^2/3 (rel 2%)", sum2/(2*nw), lim*lim/3,
               0.02*lim*lim/3);
    CHECK("glorot: zero biases", max_abs(nn.b1, 32)==0 && max_abs(nn.b2, 784)==0);
    /* w1 first, row-major, then w2: replay the draws */
    aesql_rng_seed(&r, 5);
    ok = 1;
    for(j=0; j<nw; j++) ok &= nn.w1[j]==(float)((2*aesql_rng_uniform(&r) - 1)*lim);
    for(j=0; j<nw; j++) ok &= nn.w2[j]==(float)((2*aesql_rng_uniform(&r) - 1)*lim);
    CHECK("glorot: w = (float)((2u-1) limit), w1 then w2", ok);
    aesql_rng_seed(&r, 5);
    aesql_nn_glorot(&nn2, &r);
    CHECK("glorot: same seed, same weights",
          memcmp(nn.param, nn2.param, aesql_nn_nparam(784, 32)*sizeof(float))==0);
    aesql_nn_free(&nn); aesql_nn_free(&nn2);
  }
}

/* ---------------------------------------------------------------- */
/* The model's memory and its edge cases */

static void test_alloc(void){
  aesql_nn nn, g;
  aesql_nn_work *w;
  float X[3*4] = {0};
  size_t np = aesql_nn_nparam(4, 3);
  int ok = 1;
  size_t i;
  CHECK("alloc: nparam(784,32) = 50992", aesql_nn_nparam(784, 32)==50992);
  CHECK("alloc: d or h <= 0 fails", aesql_nn_alloc(&nn, 0, 3)!=0
        && nn.param==0 && aesql_nn_alloc(&nn, 4, -1)!=0);
  CHECK("alloc: work with bad sizes is NULL", aesql_nn_work_new(4, 3, 0)==0
        && aesql_nn_work_new(0, 3, 1)==0);
  if( aesql_nn_alloc(&nn, 4, 3) || aesql_nn_alloc(&g, 4, 3) ){
    CHECK("alloc: 4-3-4", 0);
    return;
  }
  for(i=0; i<np; i++) ok &= nn.param[i]==0.0f;
  CHECK("alloc: zeroed", ok);
  CHECK("alloc: w1, b1, w2, b2 in order in param",
        nn.w1==nn.param && nn.b1==nn.param+12 && nn.w2==nn.param+15
        && nn.b2==nn.param+27 && np==31 && nn.d==4 && nn.h==3);
  w = aesql_nn_work_new(4, 3, 2);
  CHECK("forward: more rows than the work holds gives NaN",
        isnan(aesql_nn_forward(&nn, w, X, 3, 0, 0)));
  CHECK("grad: more rows than the work holds gives NaN",
        isnan(aesql_nn_grad(&nn, w, X, 3, &g)));
  for(i=0; i<np; i++) g.param[i] = 1.0f;
  CHECK("grad: 0 rows gives loss 0 and zero gradient",
        aesql_nn_grad(&nn, w, X, 0, &g)==0.0 && max_abs(g.param, np)==0.0);
  /* zero model, zero data: loss 0; x = 1 everywhere: loss 1 */
  CHECK("forward: zero model on zeros", aesql_nn_forward(&nn, w, X, 2, 0, 0)==0.0);
  for(i=0; i<12; i++) X[i] = 1.0f;
  CHECK_NEAR("forward: zero model on ones, loss 1", aesql_nn_forward(&nn, w, X, 2, 0, 0),
             1.0, 0.0);
  /* dL/dy = 2(0 - 1)/(n d) for each of n rows: gb2 = -2/d = -0.5 */
  CHECK_NEAR("grad: zero model on ones, loss 1", aesql_nn_grad(&nn, w, X, 2, &g), 1.0, 0.0);
  CHECK("grad: zero model on ones, gb2 = -2/d, gb1 = gw1 = gw2 = 0",
        g.b2[0]==-0.5f && g.b2[3]==-0.5f && max_abs(g.param, 27)==0.0);
  aesql_nn_work_free(w);
  aesql_nn_free(&nn); aesql_nn_free(&g);
  aesql_nn_free(&nn);                      /* twice is harmless */
  aesql_nn_work_free(0);
}

/* ---------------------------------------------------------------- */
/* 6. Against PyTorch (tests/fixtures/nn_torch.txt) */

typedef struct fixture {
  uint64_t seed;
  int d, h, n, batch, epochs;
  float initW1[4], initW2[4], initX[4];
  int nLoss;
  double loss[64], finalLoss;
  double sum[4], sumsq[4];
  float head[4][4];
  float adamP[4][6], adamG[3][6];
} fixture;

/* Reads up to n floats (decimal or hex) from z into a; returns how many. */
static int parse_floats(const char *z, float *a, int n){
  int k = 0;
  char *e;
  while( k<n ){
    double x = strtod(z, &e);
    if( e==z ) break;
    a[k++] = (float)x;
    z = e;
  }
  return k;
}

static int fixture_read(fixture *f, const char *zPath){
  FILE *in = fopen(zPath, "r");
  char line[1024];
  int nOk = 0;
  memset(f, 0, sizeof(*f));
  if( !in ) return 0;
  while( fgets(line, sizeof(line), in) ){
    unsigned long long seed;
    char name[16];
    int k, off;
    double a, b;
    if( sscanf(line, "model %llu %d %d %d %d %d", &seed, &f->d, &f->h, &f->n,
               &f->batch, &f->epochs)==6 ){ f->seed = seed; nOk++; }
    else if( strncmp(line, "init_w1 ", 8)==0 ) nOk += parse_floats(line+8, f->initW1, 4)==4;
    else if( strncmp(line, "init_w2 ", 8)==0 ) nOk += parse_floats(line+8, f->initW2, 4)==4;
    else if( strncmp(line, "init_x ", 7)==0 ) nOk += parse_floats(line+7, f->initX, 4)==4;
    else if( sscanf(line, "loss %d %lf", &k, &a)==2 && k==f->nLoss && k<64 ){
      f->loss[f->nLoss++] = a;
    }
    else if( sscanf(line, "final_loss %lf", &a)==1 ){ f->finalLoss = a; nOk++; }
    else if( sscanf(line, "final %15s %lf %lf %n", name, &a, &b, &off)==3 ){
      int t = strcmp(name, "w1")==0 ? 0 : strcmp(name, "b1")==0 ? 1
            : strcmp(name, "w2")==0 ? 2 : strcmp(name, "b2")==0 ? 3 : -1;
      if( t>=0 && parse_floats(line+off, f->head[t], 4)==4 ){
        f->sum[t] = a; f->sumsq[t] = b; nOk++;
      }
    }
    else if( sscanf(line, "adam_p%d %n", &k, &off)==1 && k>=0 && k<4 ){
      nOk += parse_floats(line+off, f->adamP[k], 6)==6;
    }
    else if( sscanf(line, "adam_g%d %n", &k, &off)==1 && k>=0 && k<3 ){
      nOk += parse_floats(line+off, f->adamG[k], 6)==6;
    }
  }
  fclose(in);
  return nOk==1+3+1+4+4+3 && f->nLoss>0 && f->d>0 && f->d<=1024 && f->h>0
      && f->n>0 && f->batch>0 && f->n%f->batch==0;
}

/* The fixture's path: from the repository's root (as tests/run.sh runs
** us), else next to this source file. */
static const char *fixture_path(void){
  static char z[512];
  const char *zSrc = __FILE__, *zSlash = strrchr(zSrc, '/');
  FILE *f = fopen("tests/fixtures/nn_torch.txt", "r");
  if( f ){ fclose(f); return "tests/fixtures/nn_torch.txt"; }
  snprintf(z, sizeof(z), "%.*sfixtures/nn_torch.txt",
           zSlash ? (int)(zSlash - zSrc + 1) : 0, zSrc);
  return z;
}

static void test_torch(void){
  fixture f;
  aesql_nn nn, g;
  aesql_nn_work *w = 0;
  aesql_adam opt;
  aesql_rng r;
  float *X = 0, *Xb = 0;
  uint32_t *perm = 0;
  const char *zPath = fixture_path();
  double worstLoss = 0.0;
  char z[160];
  int i, t, step = 0, ep;

  if( !fixture_read(&f, zPath) ){
    check_report(0, "torch: read the fixture", "cannot read %s (make it with "
                 "/usr/bin/python3 tests/torch_fixture.py)", zPath);
    return;
  }
  memset(&opt, 0, sizeof(opt));
  X = malloc(sizeof(float)*f.n*f.d);
  Xb = malloc(sizeof(float)*f.batch*f.d);
  perm = malloc(sizeof(uint32_t)*f.n);
  if( !X || !Xb || !perm || aesql_nn_alloc(&nn, f.d, f.h) || aesql_nn_alloc(&g, f.d, f.h)
   || (w = aesql_nn_work_new(f.d, f.h, f.n))==0
   || aesql_adam_init(&opt, aesql_nn_nparam(f.d, f.h), 0.001f, 0.9f, 0.999f, 1e-7f) ){
    CHECK("torch: alloc", 0);
    goto done;
  }
  /* the same draws as the script: glorot w1, w2, then the data */
  aesql_rng_seed(&r, f.seed);
  aesql_nn_glorot(&nn, &r);
  for(i=0; i<f.n*f.d; i++) X[i] = (float)aesql_rng_uniform(&r);
  CHECK("torch: same initial weights and data, bit for bit",
        memcmp(nn.w1, f.initW1, sizeof(f.initW1))==0
        && memcmp(nn.w2 + f.h*f.d - 4, f.initW2, sizeof(f.initW2))==0
        && memcmp(X + f.n*f.d - 4, f.initX, sizeof(f.initX))==0);

  /* epochs of shuffled mini-batches, each loss before its Adam step */
  for(ep=0; ep<f.epochs; ep++){
    for(i=0; i<f.n; i++) perm[i] = i;
    aesql_rng_shuffle(&r, perm, f.n);
    for(t=0; t<f.n; t+=f.batch){
      double loss, e;
      for(i=0; i<f.batch; i++){
        memcpy(Xb + i*f.d, X + perm[t+i]*f.d, sizeof(float)*f.d);
      }
      loss = aesql_nn_grad(&nn, w, Xb, f.batch, &g);
      aesql_adam_step(&opt, nn.param, g.param);
      if( step<f.nLoss ){
        e = fabs(loss - f.loss[step])/f.loss[step];
        if( !(e<=worstLoss) ) worstLoss = isnan(e) ? INFINITY : e;
      }
      step++;
    }
  }
  printf("# torch: %d steps, worst relative loss difference %.2e\n", step, worstLoss);
  CHECK("torch: as many steps as the fixture", step==f.nLoss);
  /* both are float32 with different summation orders: a few u per loss,
  ** which Adam does not amplify in 6 steps; measured ~1e-7 */
  check_report(worstLoss<=1e-5, "torch: loss before each step (rel 1e-5)",
               "worst relative difference %.3g", worstLoss);
  {
    double lf = aesql_nn_forward(&nn, w, X, f.n, 0, 0);
    CHECK_NEAR("torch: final loss on all rows (rel 1e-5)", lf, f.finalLoss,
               1e-5*f.finalLoss);
  }
  /* final weights: the gradients agree to ~u relative; Adam's step,
  ** lr m/sqrt(v), is insensitive to that, so weights agree to ~1e-8;
  ** allow 1e-7 for each value and 1e-7 count for sums */
  for(t=0; t<4; t++){
    static const char *tn[4] = {"w1", "b1", "w2", "b2"};
    const float *a = t==0 ? nn.w1 : t==1 ? nn.b1 : t==2 ? nn.w2 : nn.b2;
    size_t cnt = t==0 || t==2 ? (size_t)f.d*f.h : t==1 ? (size_t)f.h : (size_t)f.d;
    double s = 0.0, s2 = 0.0;
    size_t j;
    for(j=0; j<cnt; j++){ s += a[j]; s2 += (double)a[j]*a[j]; }
    printf("# torch: final %s: sum diff %.2e, sumsq diff %.2e, head diff %.2e\n",
           tn[t], fabs(s - f.sum[t]), fabs(s2 - f.sumsq[t]), max_diff(a, f.head[t], 4));
    snprintf(z, sizeof(z), "torch: final %s: sum, sum of squares (1e-7 count), first 4 (abs 1e-7)", tn[t]);
    check_report(fabs(s - f.sum[t])<=1e-7*cnt && fabs(s2 - f.sumsq[t])<=1e-7*cnt
                 && max_diff(a, f.head[t], 4)<=1e-7, z,
                 "sum %.12g want %.12g, sumsq %.12g want %.12g, head diff %.3g",
                 s, f.sum[t], s2, f.sumsq[t], max_diff(a, f.head[t], 4));
  }

  /* Adam alone, against the same update written in torch */
  {
    aesql_adam a;
    float p[6];
    memcpy(p, f.adamP[0], sizeof(p));
    if( aesql_adam_init(&a, 6, 0.01f, 0.9f, 0.999f, 1e-7f)==0 ){
      for(t=0; t<3; t++){
        double e = 0.0;
        aesql_adam_step(&a, p, f.adamG[t]);
        for(i=0; i<6; i++){
          double ei = fabs((double)p[i] - f.adamP[t+1][i])/fmax(fabs(f.adamP[t+1][i]), 0x1.0p-7);
          if( !(ei<=e) ) e = isnan(ei) ? INFINITY : ei;
        }
        /* the same float operations; only a fused multiply-add may differ:
        ** 2u relative (floor 2^-7) */
        printf("# torch: Keras Adam step %d: worst relative difference %.2e\n", t+1, e);
        snprintf(z, sizeof(z), "torch: Keras Adam step %d on 6 parameters (rel 2u)", t+1);
        check_report(e<=2*U_FLOAT, z, "worst relative difference %.3g", e);
      }
      aesql_adam_free(&a);
    }
  }
done:
  free(X); free(Xb); free(perm);
  aesql_adam_free(&opt);
  aesql_nn_free(&nn); aesql_nn_free(&g);
  aesql_nn_work_free(w);
}

/* ---------------------------------------------------------------- */
/* 7. Determinism */

/* n steps of grad + Adam at 256-784-32 from seed; params and moments out */
static int run_steps(uint64_t seed, int steps, float *out, double *losses){
  const int n = 256, d = 784, h = 32;
  size_t np = aesql_nn_nparam(d, h);
  aesql_nn nn, g;
  aesql_nn_work *w = aesql_nn_work_new(d, h, n);
  aesql_adam a;
  aesql_rng r;
  float *X = malloc(sizeof(float)*n*d);
  int s, rc = 1;
  memset(&a, 0, sizeof(a));
  if( w && X && aesql_nn_alloc(&nn, d, h)==0 && aesql_nn_alloc(&g, d, h)==0
   && aesql_adam_init(&a, np, 0.001f, 0.9f, 0.999f, 1e-7f)==0 ){
    aesql_rng_seed(&r, seed);
    aesql_nn_glorot(&nn, &r);
    for(s=0; s<steps; s++){
      size_t i;
      /* MNIST-like rows: mostly zeros */
      for(i=0; i<(size_t)n*d; i++){
        double u = aesql_rng_uniform(&r);
        X[i] = u<0.8 ? 0.0f : (float)((u - 0.8)*5.0);
      }
      losses[s] = aesql_nn_grad(&nn, w, X, n, &g);
      aesql_adam_step(&a, nn.param, g.param);
    }
    memcpy(out, nn.param, np*sizeof(float));
    memcpy(out + np, a.m, np*sizeof(float));
    memcpy(out + 2*np, a.v, np*sizeof(float));
    rc = 0;
  }
  free(X);
  aesql_adam_free(&a);
  aesql_nn_free(&nn); aesql_nn_free(&g);
  aesql_nn_work_free(w);
  return rc;
}

static void test_determinism(void){
  size_t np = aesql_nn_nparam(784, 32);
  float *a = malloc(3*np*sizeof(float)), *b = malloc(3*np*sizeof(float));
  double la[5], lb[5];
  if( !a || !b || run_steps(99, 5, a, la) || run_steps(99, 5, b, lb) ){
    CHECK("determinism: run", 0);
  }else{
    CHECK("determinism: two runs of 5 steps, identical losses",
          memcmp(la, lb, sizeof(la))==0);
    CHECK("determinism: two runs of 5 steps, bit-identical parameters and moments",
          memcmp(a, b, 3*np*sizeof(float))==0);
    CHECK("determinism: training lowers the loss", la[4] < la[0]);
  }
  free(a); free(b);
}

/* ---------------------------------------------------------------- */
/* 8. Batches as rows of a data set: the index of non-zero pixels, the
** sparse and gathered first layer, parts of a batch, Adam in pieces */

/* n rows of d bytes, a fraction `density` of them non-zero (1..255); row
** 0 all zero, so that empty rows are covered. */
static unsigned char *make_bytes(aesql_rng *r, int n, int d, double density){
  unsigned char *p = malloc((size_t)n*d);
  size_t i;
  if( !p ) return 0;
  for(i=0; i<(size_t)n*d; i++){
    p[i] = i<(size_t)d || aesql_rng_uniform(r)>=density
           ? 0 : (unsigned char)(1 + aesql_rng_below(r, 255));
  }
  return p;
}

static void test_byte_scale(void){
  aesql_nn_data x;
  int b, ok = 1, ok2 = 1;
  aesql_nn_data_init(&x, 1, 0, (const unsigned char*)"", 0);
  for(b=0; b<256; b++){
    ok &= x.lut[b]==(float)(b/255.0);
    ok2 &= (float)b/255.0f==(float)(b/255.0);
  }
  /* the tutorial's X / 255: NumPy divides float32 by 255 in float32, the
  ** old gather rounded the double quotient; every byte gives the same */
  CHECK("bytes: lut[b] = (float)(b/255.0) for every byte", ok);
  CHECK("bytes: b/255.0f = (float)(b/255.0) for every byte (the gather)", ok2);
}

static void test_index(void){
  aesql_rng r;
  aesql_nn_data x;
  unsigned char *u = 0, *big = 0;
  float *f = 0;
  int n = 50, d = 40, i, ok = 1;
  size_t row, k = 0, cnt = 0;
  aesql_rng_seed(&r, 3);
  u = make_bytes(&r, n, d, 0.2);
  f = malloc(sizeof(float)*n*d);
  big = calloc(2, 70000);
  if( !u || !f || !big ){ CHECK("index: alloc", 0); goto done; }
  aesql_nn_data_init(&x, d, n, u, 0);
  CHECK("index: ALWAYS builds it", aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS)==0
        && x.nz && x.nzStart);
  for(row=0; row<(size_t)n; row++){
    size_t j = x.nzStart[row];
    for(i=0; i<d; i++){
      if( u[row*d + i] ){
        cnt++;
        ok &= j<x.nzStart[row+1] && x.nz[j]==i;
        j++;
      }
    }
    ok &= j==x.nzStart[row+1];
  }
  CHECK("index: lists every non-zero pixel of every row, ascending", ok
        && x.nzStart[0]==0 && x.nzStart[1]==0 && x.nzStart[n]==cnt);
  /* 20% non-zero: AUTO indexes; 100%: it does not */
  CHECK("index: AUTO on 20% non-zero indexes",
        aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO)==0 && x.nz);
  CHECK("index: NEVER drops it", aesql_nn_data_index(&x, AESQL_NN_SPARSE_NEVER)==0
        && x.nz==0 && x.nzStart==0);
  for(i=0; i<n*d; i++) u[i] = 1;
  CHECK("index: AUTO on dense bytes does not index",
        aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO)==0 && x.nz==0);
  aesql_nn_data_free(&x);
  /* floats: -0.0 is a zero */
  for(i=0; i<n*d; i++) f[i] = i%3==0 ? 0.5f : i%3==1 ? 0.0f : -0.0f;
  aesql_nn_data_init(&x, d, n, 0, f);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
  for(row=0, ok=1; x.nz && row<(size_t)n; row++){
    for(k=x.nzStart[row]; k<x.nzStart[row+1]; k++) ok &= f[row*d + x.nz[k]]==0.5f;
  }
  CHECK("index: floats, -0.0 and 0.0 left out", x.nz && ok
        && x.nzStart[n]==(size_t)(n*d + 2)/3);
  aesql_nn_data_free(&x);
  aesql_nn_data_free(&x);                 /* twice is harmless */
  /* more than 65536 pixels: no index (16-bit positions) */
  aesql_nn_data_init(&x, 70000, 2, big, 0);
  CHECK("index: none above 65536 pixels",
        aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS)==0 && x.nz==0);
  aesql_nn_data_init(&x, d, 0, u, 0);
  CHECK("index: none for no rows", aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS)==0
        && x.nz==0);
done:
  free(u); free(f); free(big);
}

/* Rows idx[0..n) of x as a dense float matrix: the naive path's input. */
static void rows_dense(const aesql_nn_data *x, const uint32_t *idx, int n, float *X){
  int r, i;
  for(r=0; r<n; r++){
    for(i=0; i<x->d; i++){
      size_t o = (size_t)idx[r]*x->d + i;
      X[(size_t)r*x->d + i] = x->u8 ? (float)(x->u8[o]/255.0) : x->f32[o];
    }
  }
}

/* max |a-b| over each of the four tensors, as a fraction of max |ref| */
static double grad_rel(const aesql_nn *a, const aesql_nn *ref, char *zWhich){
  const char *tname[4] = {"w1", "b1", "w2", "b2"};
  double worst = 0.0;
  int t;
  for(t=0; t<4; t++){
    const float *p = t==0 ? a->w1 : t==1 ? a->b1 : t==2 ? a->w2 : a->b2;
    const float *q = t==0 ? ref->w1 : t==1 ? ref->b1 : t==2 ? ref->w2 : ref->b2;
    size_t cnt = t==0 || t==2 ? (size_t)a->d*a->h : t==1 ? (size_t)a->h : (size_t)a->d;
    double m = max_abs(q, cnt), e = max_diff(p, q, cnt)/(m>0 ? m : 1.0);
    if( !(e<=worst) ){ worst = isnan(e) ? INFINITY : e; strcpy(zWhich, tname[t]); }
  }
  return worst;
}

/* The row path (sparse when indexed, gathered otherwise) against the naive
** reference on n random rows of a data set of 3n rows, bytes or floats. */
static void test_rows(int n, int d, int h, double density, int isF32, int mode){
  const char *zMode = mode==AESQL_NN_SPARSE_NEVER ? "gathered" : "sparse";
  aesql_rng r;
  aesql_nn_data x;
  aesql_nn nn, gn, gr, gp;
  aesql_nn_work *w = 0, *ws = 0;
  unsigned char *u = 0;
  float *f = 0, *X = 0;
  uint32_t *idx = 0;
  int N = 3*n, i, ok;
  size_t p, np = aesql_nn_nparam(d, h);
  double ln, sse, sse2, e, fwd;
  char z[200], zw[8] = "";

  memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 500 + n + d + h);
  u = make_bytes(&r, N, d, density);
  f = malloc(sizeof(float)*N*d);
  X = malloc(sizeof(float)*n*d);
  idx = malloc(sizeof(uint32_t)*N);
  if( !u || !f || !X || !idx || aesql_nn_alloc(&nn, d, h) || aesql_nn_alloc(&gn, d, h)
   || aesql_nn_alloc(&gr, d, h) || aesql_nn_alloc(&gp, d, h)
   || !(w = aesql_nn_work_new(d, h, n)) || !(ws = aesql_nn_work_new(d, h, n/3 + 1)) ){
    CHECK("rows: alloc", 0);
    goto done;
  }
  for(i=0; i<N*d; i++) f[i] = u[i] ? (float)(aesql_rng_uniform(&r)*2.0 - 0.5) : 0.0f;
  aesql_nn_data_init(&x, d, N, isF32 ? 0 : u, isF32 ? f : 0);
  if( aesql_nn_data_index(&x, mode) ){ CHECK("rows: index", 0); goto done; }
  model_init(&nn, &r, 0.1);
  for(i=0; i<N; i++) idx[i] = i;
  aesql_rng_shuffle(&r, idx, N);
  idx[n/2] = 0;                           /* an all-zero row in the batch */
  for(i=0; i<N; i++) if( i!=n/2 && idx[i]==0 ) idx[i] = idx[n/2 + 1 + (i==n/2+1)];
  rows_dense(&x, idx, n, X);

  ln = aesql_nn_grad_naive(&nn, X, n, &gn);
  sse = aesql_nn_grad_rows(&nn, w, &x, idx, n, n, &gr, 0);
  /* as in the BLAS path: the loss to rel 1e-5, each gradient tensor to
  ** 2e-5 of its largest value (sums of <= d or <= n float products) */
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: loss = naive (rel 1e-5)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  CHECK_NEAR(z, sse/((double)n*d), ln, 1e-5*ln);
  e = grad_rel(&gr, &gn, zw);
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: gradient = naive (2e-5 of max)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  printf("# rows %s %s %dx%dx%d: worst gradient error %.2e of max (%s)\n",
         zMode, isF32 ? "f32" : "u8", n, d, h, e, zw);
  check_report(e<=2e-5, z, "worst %.3g of max, in %s", e, zw);
  /* the validation pass, through a work of n/3+1 rows: in pieces */
  fwd = aesql_nn_sse_rows(&nn, ws, &x, idx, n);
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: sse_rows in pieces = naive loss (rel 1e-5)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  CHECK_NEAR(z, fwd/((double)n*d), ln, 1e-5*ln);
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: sse_rows = grad_rows' sse (rel 1e-12)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  CHECK_NEAR(z, aesql_nn_sse_rows(&nn, w, &x, idx, n), sse, 1e-12*sse);

  /* two parts of the batch add up to the batch: the loss up to rounding
  ** (double sums; and sgemm, in the gathered path, may round a row's
  ** products differently for another number of rows: measured 3e-9),
  ** gradients up to float rounding (2e-5 of max) */
  sse2 = aesql_nn_grad_rows(&nn, w, &x, idx, n/3, n, &gp, 0);
  for(p=0; p<np; p++) gn.param[p] = gp.param[p];
  sse2 += aesql_nn_grad_rows(&nn, w, &x, idx + n/3, n - n/3, n, &gp, 0);
  for(p=0; p<np; p++) gn.param[p] += gp.param[p];
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: two parts' sse add up (rel 1e-7)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  CHECK_NEAR(z, sse2, sse, 1e-7*sse);
  e = grad_rel(&gn, &gr, zw);
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: two parts' gradients add up (2e-5 of max)",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  check_report(e<=2e-5, z, "worst %.3g of max, in %s", e, zw);
  /* the same two parts, the second added by grad_rows itself (add = 1) */
  for(p=0; p<np; p++) gp.param[p] = NAN;
  sse2 = aesql_nn_grad_rows(&nn, w, &x, idx, n/3, n, &gp, 0);
  sse2 += aesql_nn_grad_rows(&nn, w, &x, idx + n/3, n - n/3, n, &gp, 1);
  e = grad_rel(&gp, &gr, zw);
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: a part added to another (add = 1) "
           "= the batch (2e-5 of max; sse rel 1e-7)", zMode, isF32 ? "f32" : "u8", n, d, h);
  check_report(e<=2e-5 && fabs(sse2 - sse)<=1e-7*sse, z, "worst %.3g of max, in %s; "
               "sse %.9g want %.9g", e, zw, sse2, sse);

  /* bad sizes */
  ok = isnan(aesql_nn_grad_rows(&nn, ws, &x, idx, n, n, &gp, 0))   /* n > max_n */
    && isnan(aesql_nn_grad_rows(&nn, w, &x, idx, n, n-1, &gp, 0))  /* n > nAll */
    && aesql_nn_grad_rows(&nn, w, &x, idx, 0, n, &gp, 0)==0.0 && max_abs(gp.param, np)==0.0;
  snprintf(z, sizeof(z), "rows %s %s %dx%dx%d: bad sizes give NaN, no rows a zero gradient",
           zMode, isF32 ? "f32" : "u8", n, d, h);
  CHECK(z, ok);
done:
  free(u); free(f); free(X); free(idx);
  aesql_nn_data_free(&x);
  aesql_nn_free(&nn); aesql_nn_free(&gn); aesql_nn_free(&gr); aesql_nn_free(&gp);
  aesql_nn_work_free(w); aesql_nn_work_free(ws);
}

/* Adam in pieces, over ranges, adding gradients: the same bits as one
** aesql_adam_step() with the gradients added beforehand in that order. */
static void test_adam_pieces(void){
  enum { NP = 1234 };
  aesql_adam a, b;
  aesql_rng r;
  float p[NP], q[NP], g[3][NP], s[NP];
  const float *gs[3] = {g[0], g[1], g[2]};
  int i, t, ok = 1;
  aesql_rng_seed(&r, 11);
  if( aesql_adam_init(&a, NP, 0.01f, 0.9f, 0.999f, 1e-7f)
   || aesql_adam_init(&b, NP, 0.01f, 0.9f, 0.999f, 1e-7f) ){
    CHECK("adam pieces: init", 0);
    return;
  }
  fill_uniform(&r, p, NP, -1.0, 1.0);
  memcpy(q, p, sizeof(p));
  for(t=0; t<4; t++){
    int ng = t%2 ? 3 : 2;
    float lr;
    for(i=0; i<3; i++) fill_uniform(&r, g[i], NP, -0.1, 0.1);
    for(i=0; i<NP; i++){ s[i] = g[0][i] + g[1][i]; if( ng==3 ) s[i] += g[2][i]; }
    aesql_adam_step(&a, p, s);
    lr = aesql_adam_next(&b);
    aesql_adam_update(&b, lr, q, gs, ng, 700, NP+5);   /* clipped to n */
    aesql_adam_update(&b, lr, q, gs, ng, 0, 100);
    aesql_adam_update(&b, lr, q, gs, ng, 100, 700);
  }
  ok = memcmp(p, q, sizeof(p))==0 && memcmp(a.m, b.m, NP*sizeof(float))==0
    && memcmp(a.v, b.v, NP*sizeof(float))==0 && a.t==b.t;
  CHECK("adam pieces: 3 ranges, 2 or 3 gradients = one step on their sum, bit for bit", ok);
  aesql_adam_free(&a); aesql_adam_free(&b);
}

/* ---------------------------------------------------------------- */
/* 9. The thread pool and data-parallel training */

typedef struct pool_probe {
  int run;                      /* the run's number, set by the caller */
  int nThread;
  int unit[64*16];              /* unit u writes unit[16*u]: own lines */
  int bad;                      /* a thread number out of range */
} pool_probe;

static void pool_probe_task(void *arg, int u, int t){
  pool_probe *p = arg;
  p->unit[16*u] += p->run;
  if( t<0 || t>=p->nThread ) p->bad = 1;
}

static void test_pool(void){
  int nt;
  for(nt=1; nt<=4; nt++){
    aesql_pool *pool = aesql_pool_new(nt);
    pool_probe pr;
    char z[160];
    int k, u, ok = 1;
    memset(&pr, 0, sizeof(pr));
    if( !pool ){ CHECK("pool: new", 0); return; }
    pr.nThread = nt;
    snprintf(z, sizeof(z), "pool of %d: has %d threads", nt, nt);
    CHECK(z, aesql_pool_threads(pool)==nt);
    for(k=1; k<=3000; k++){
      int nUnit = 1 + k%64;
      pr.run = k;
      aesql_pool_run(pool, nUnit, pool_probe_task, &pr);
      /* each unit run once, and done when run returns */
      for(u=0; u<64; u++){
        ok &= pr.unit[16*u]==(u<nUnit ? k : 0);
        pr.unit[16*u] = 0;
      }
      if( k==1000 || k==2000 ) usleep(20000);   /* let the workers sleep */
    }
    aesql_pool_run(pool, 0, pool_probe_task, &pr);
    snprintf(z, sizeof(z), "pool of %d: 3000 runs of 1 to 64 units, each unit "
             "once, done when run returns, also after sleeping", nt);
    CHECK(z, ok && !pr.bad);
    aesql_pool_free(pool);
  }
  /* made, run and freed at once, many times: the stop must reach a worker
  ** that comes late to the last run (it once could miss it, and hang) */
  {
    pool_probe pr;
    int c, u, ok = 1;
    memset(&pr, 0, sizeof(pr));
    pr.nThread = 8;
    pr.run = 1;
    for(c=0; c<2000; c++){
      aesql_pool *pool = aesql_pool_new(2 + c%4);
      if( !pool ){ ok = 0; break; }
      aesql_pool_run(pool, 2 + c%3, pool_probe_task, &pr);
      aesql_pool_free(pool);
      for(u=0; u<64; u++){
        ok &= pr.unit[16*u]==(u<2 + c%3);
        pr.unit[16*u] = 0;
      }
    }
    CHECK("pool: 2000 pools made, run once and freed (no hang, each unit once)",
          ok && !pr.bad);
  }
  aesql_pool_free(0);
  CHECK("pool: 0 threads means 1", aesql_pool_threads(0)==1);
}

/* Trains 784-32-784 on nRows MNIST-like rows (the last fifth held out) for
** 2 epochs of batch 256 with nThread threads: the fit path. With nThread 0
** instead the plain path: one aesql_nn_grad() per batch on gathered rows.
** Writes the parameters, moments and losses. */
static int fit_run(int nThread, int isF32, float *out, double *losses, int *pThreads){
  enum { D = 784, H = 32, N = 900, B = 256, E = 2 };
  const int nTrain = N*4/5, nVal = N - nTrain;
  size_t np = aesql_nn_nparam(D, H);
  aesql_rng r;
  aesql_nn nn, g;
  aesql_adam a;
  aesql_nn_data x;
  aesql_fit *fit = 0;
  aesql_nn_work *w = 0;
  unsigned char *u = 0;
  float *f = 0, *X = 0;
  uint32_t *idx = malloc(sizeof(uint32_t)*N);
  int e, b, i, k = 0, rc = 1;
  memset(&nn, 0, sizeof(nn)); memset(&g, 0, sizeof(g)); memset(&a, 0, sizeof(a));
  memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 2024);
  u = make_bytes(&r, N, D, 0.2);
  f = malloc(sizeof(float)*N*D);
  X = malloc(sizeof(float)*B*D);
  if( !u || !f || !X || !idx ) goto done;
  for(i=0; i<N*D; i++) f[i] = (float)(u[i]/255.0);
  aesql_nn_data_init(&x, D, N, isF32 ? 0 : u, isF32 ? f : 0);
  if( aesql_nn_alloc(&nn, D, H) || aesql_nn_alloc(&g, D, H)
   || aesql_adam_init(&a, np, 0.001f, 0.9f, 0.999f, 1e-7f)
   || aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO) ) goto done;
  if( nThread>0 ){
    if( !(fit = aesql_fit_new(&nn, &a, &x, B, nThread)) ) goto done;
    *pThreads = aesql_fit_threads(fit);
  }else if( !(w = aesql_nn_work_new(D, H, B)) ){
    goto done;
  }
  aesql_nn_glorot(&nn, &r);
  for(i=nTrain; i<N; i++) idx[i] = i;
  for(e=0; e<E; e++){
    for(i=0; i<nTrain; i++) idx[i] = i;
    aesql_rng_shuffle(&r, idx, nTrain);
    for(b=0; b<nTrain; b+=B){
      int n = nTrain-b < B ? nTrain-b : B;
      if( fit ){
        losses[k++] = aesql_fit_grad(fit, idx+b, n);
        aesql_fit_step(fit);
      }else{
        rows_dense(&x, idx+b, n, X);
        losses[k++] = aesql_nn_grad(&nn, w, X, n, &g);
        aesql_adam_step(&a, nn.param, g.param);
      }
    }
    if( fit ){
      losses[k++] = aesql_fit_loss(fit, idx+nTrain, nVal);
    }else{
      double s = 0.0;
      for(b=0; b<nVal; b+=B){
        int n = nVal-b < B ? nVal-b : B;
        rows_dense(&x, idx+nTrain+b, n, X);
        s += aesql_nn_forward(&nn, w, X, n, 0, 0)*n;
      }
      losses[k++] = s/nVal;
    }
  }
  memcpy(out, nn.param, np*sizeof(float));
  memcpy(out + np, a.m, np*sizeof(float));
  memcpy(out + 2*np, a.v, np*sizeof(float));
  rc = 0;
done:
  aesql_fit_free(fit);
  aesql_nn_work_free(w);
  aesql_nn_data_free(&x);
  aesql_adam_free(&a);
  aesql_nn_free(&nn); aesql_nn_free(&g);
  free(u); free(f); free(X); free(idx);
  return rc;
}

static void test_fit(void){
  enum { NL = 8 };     /* per epoch: 3 batches' losses, then val_loss */
  size_t np = aesql_nn_nparam(784, 32), p;
  float *a = malloc(3*np*sizeof(float)), *b = malloc(3*np*sizeof(float));
  float *c = malloc(3*np*sizeof(float));
  double la[NL] = {0}, lb[NL] = {0}, lc[NL] = {0}, worst = 0.0, wl = 0.0;
  int t, got = 0, blas0 = aesql_blas_threads(), blasIn = -1;
  static const int threads[] = {2, 3, 8, 2};
  char z[160];
  if( !a || !b || !c || fit_run(1, 0, a, la, &got) ){
    CHECK("fit: run with 1 thread", 0);
    goto done;
  }
  CHECK("fit: 1 thread", got==1);
  /* every thread count, and a second run: the same bits */
  for(t=0; t<4; t++){
    /* no more threads than parts of a batch of 256 */
    int nPart = (256 + AESQL_FIT_PART_ROWS - 1)/AESQL_FIT_PART_ROWS, want;
    if( nPart>AESQL_FIT_MAX_PARTS ) nPart = AESQL_FIT_MAX_PARTS;
    want = threads[t]>nPart ? nPart : threads[t];
    memset(b, 0, 3*np*sizeof(float));
    if( fit_run(threads[t], 0, b, lb, &got) ){ CHECK("fit: run", 0); goto done; }
    snprintf(z, sizeof(z), "fit: %d threads asked, %d used; parameters, moments "
             "and losses bit-identical to 1 thread", threads[t], want);
    check_report(got==want && memcmp(a, b, 3*np*sizeof(float))==0
                 && memcmp(la, lb, sizeof(la))==0, z, "threads %d", got);
  }
  CHECK("fit: training lowers the loss and val_loss", la[6] < la[0] && la[7] < la[3]);
  /* OpenBLAS runs single-threaded while a fit exists, then is restored */
  {
    aesql_nn nn;
    aesql_adam ad;
    aesql_nn_data x;
    unsigned char px[64] = {0};
    aesql_fit *f;
    aesql_nn_alloc(&nn, 8, 2);
    aesql_adam_init(&ad, aesql_nn_nparam(8, 2), 0.001f, 0.9f, 0.999f, 1e-7f);
    aesql_nn_data_init(&x, 8, 8, px, 0);
    f = aesql_fit_new(&nn, &ad, &x, 8, 0);
    if( f ) blasIn = aesql_blas_threads();
    CHECK("fit: batch of 8 rows, one part, one thread", f && aesql_fit_threads(f)==1);
    aesql_fit_free(f);
    check_report(blasIn==1 && aesql_blas_threads()==blas0,
                 "fit: OpenBLAS single-threaded during a fit, restored after",
                 "during %d, after %d, before %d", blasIn, aesql_blas_threads(), blas0);
    aesql_adam_free(&ad);
    aesql_nn_free(&nn);
  }
  /* floats: the same computation from the same values */
  if( fit_run(2, 1, b, lb, &got) ){ CHECK("fit: f32 run", 0); goto done; }
  CHECK("fit: float pixels give the same bits as bytes", memcmp(a, b, 3*np*sizeof(float))==0);
  /* against one BLAS pass per batch: other sums, other rounding. After 8
  ** Adam steps of lr 1e-3 the parameters agree to ~1e-7 (measured); each
  ** step moves a parameter by at most ~lr, so 1e-5 is 1% of one step.
  ** Losses agree to rel 1e-5, as the row path and the BLAS path do. */
  if( fit_run(0, 0, c, lc, &got) ){ CHECK("fit: plain run", 0); goto done; }
  for(p=0; p<np; p++){
    double e = fabs((double)a[p] - c[p]);
    if( !(e<=worst) ) worst = isnan(e) ? INFINITY : e;
  }
  for(t=0; t<NL; t++){
    double e = fabs(la[t] - lc[t])/lc[t];
    if( !(e<=wl) ) wl = isnan(e) ? INFINITY : e;
  }
  printf("# fit vs one BLAS pass per batch: max |dp| %.2e, worst loss rel %.2e\n", worst, wl);
  check_report(worst<=1e-5, "fit: parameters near one BLAS pass per batch (abs 1e-5)",
               "max |dp| %.3g", worst);
  check_report(wl<=1e-5, "fit: losses near one BLAS pass per batch (rel 1e-5)",
               "worst %.3g", wl);
done:
  free(a); free(b); free(c);
}

int main(void){
  const char *zWhy = 0;
  if( aesql_blas_load(&zWhy) ){
    check_report(0, "blas: load OpenBLAS", "%s", zWhy);
    return check_done();
  }
  printf("# OpenBLAS core %s, %d threads\n", aesql_blas_core(), aesql_blas_threads());
  test_alloc();
  test_rng();
  test_sgemm_shape(37, 29, 53, 3);
  test_sgemm_shape(256, 32, 784, 0);    /* the model's shapes */
  test_sgemm_shape(32, 784, 256, 5);
  test_gradcheck();
  test_blas_vs_naive(37, 50, 9, 45);
  test_blas_vs_naive(256, 784, 32, 256);
  test_adam_hand();
  test_torch();
  test_determinism();
  test_byte_scale();
  test_index();
  test_rows(37, 50, 9, 0.3, 0, AESQL_NN_SPARSE_ALWAYS);   /* h < 16: scalar lanes */
  test_rows(33, 30, 20, 0.5, 1, AESQL_NN_SPARSE_ALWAYS);  /* 16 + 4 */
  test_rows(40, 64, 48, 1.0, 0, AESQL_NN_SPARSE_ALWAYS);  /* 32 + 16, no zeros */
  test_rows(256, 784, 32, 0.2, 0, AESQL_NN_SPARSE_AUTO);  /* the tutorial's */
  test_rows(256, 784, 32, 0.2, 1, AESQL_NN_SPARSE_AUTO);
  test_rows(64, 784, 32, 0.2, 0, AESQL_NN_SPARSE_NEVER);  /* gathered, sgemm */
  test_rows(37, 50, 9, 0.3, 1, AESQL_NN_SPARSE_NEVER);
  test_adam_pieces();
  test_pool();
  test_fit();
  return check_done();
}
