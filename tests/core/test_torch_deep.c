/*
** The deep model against PyTorch: 784-128-32-128-784, ELU hidden layers,
** a sigmoid output, mean squared error, Keras' Adam, checked against the
** numbers tests/torch_deep_fixture.py wrote to tests/fixtures/deep_torch.txt
** (committed: torch is not needed here).
**
**   make build/tests/test_torch_deep && build/tests/test_torch_deep
**
** Both sides draw the same weights and data from libaesql's generator
** (the script says how; deep_init() and deep_data() below are the same
** rules), then train 5 steps on fixed batches of 64 rows. libaesql trains
** twice: with aesql_net_grad (dense float rows, sgemm) and
** aesql_adam_step, and with aesql_fit over the same rows as bytes indexed
** by non-zero pixel (AESQL_NN_SPARSE_ALWAYS), the path ae_train takes.
** The first step's gradient is also held to aesql_net_grad_naive (plain
** loops in double) and to torch's.
**
** Both sides compute in float32 with different summation orders (sgemm's
** blocking, the sparse first layer, torch's pairwise sums and its own
** kernels), so the numbers agree to rounding, not bit for bit. Every
** tolerance is stated next to its check, with why it is that size; the
** measured differences are printed as "# ..." lines. u = 2^-24 is
** float's unit roundoff.
*/
#include "../check.h"
#include "../../ext/core/ae_net.h"
#include "../../ext/core/ae_adam.h"
#include "../../ext/core/ae_blas.h"
#include "../../ext/core/ae_data.h"
#include "../../ext/core/ae_fit.h"

#include <stdint.h>

#define FIX_NAME    "tests/fixtures/deep_torch.txt"
#define FIX_REMAKE  "/usr/bin/python3 tests/torch_deep_fixture.py"
#define MAX_SAMPLE  32
#define MAX_STEP    16
#define U_FLOAT     0x1.0p-24

/* ---------------------------------------------------------------- */
/* The fixture */

typedef struct fixture {
  uint64_t seed;
  int rows, batch, steps;
  double bias;                  /* biases uniform in [-bias, bias) */
  uint32_t nLevel;              /* a pixel is one below(nLevel) draw */
  int nLayer, width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  double lr, beta1, beta2, eps;
  size_t nParam;
  double initSum, initSumsq;
  float initW[4], initB[4];
  int initX[8];
  long initNz;
  int nSample;
  size_t sample[MAX_SAMPLE];    /* offsets into the parameter buffer */
  float initSamples[MAX_SAMPLE];
  double g0Sumsq[AESQL_NET_MAX_LAYERS][2], g0Max[AESQL_NET_MAX_LAYERS][2];
  float g0Samples[MAX_SAMPLE];
  int nStep;
  double loss[MAX_STEP], sum[MAX_STEP], sumsq[MAX_STEP];
  float stepSamples[MAX_STEP][MAX_SAMPLE];
  double finalLoss;
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

/* Reads up to n integers from z into a; returns how many. */
static int parse_longs(const char *z, long *a, int n){
  int k = 0;
  char *e;
  while( k<n ){
    long x = strtol(z, &e, 10);
    if( e==z ) break;
    a[k++] = x;
    z = e;
  }
  return k;
}

/* Fills f from zPath. Returns 0 on success, else a static message saying
** what is missing or wrong. */
static const char *fixture_read(fixture *f, const char *zPath){
  static char zErr[200];
  FILE *in = fopen(zPath, "r");
  char line[8192];
  long v[MAX_SAMPLE+1];
  unsigned seen = 0;              /* one bit per kind of line */
  int nG0 = 0, l;
  memset(f, 0, sizeof(*f));
  if( !in ) return "cannot open it";
  while( fgets(line, sizeof(line), in) ){
    unsigned long long seed;
    unsigned nLevel;
    int k, off = 0;
    char name[16];
    double a, b, c;
    if( line[0]=='#' ) continue;
    if( strchr(line, '\n')==0 && !feof(in) ){
      fclose(in);
      return "a line is too long";
    }
    if( sscanf(line, "model %llu %d %d %d %lf %u", &seed, &f->rows,
               &f->batch, &f->steps, &f->bias, &nLevel)==6 ){
      f->seed = seed; f->nLevel = nLevel; seen |= 1u<<0;
    }else if( strncmp(line, "widths ", 7)==0 ){
      k = parse_longs(line+7, v, AESQL_NET_MAX_LAYERS+1);
      f->nLayer = k-1;
      for(l=0; l<k; l++) f->width[l] = (int)v[l];
      seen |= 1u<<1;
    }else if( strncmp(line, "acts ", 5)==0 ){
      char *z = line+5, *zTok;
      k = 0;
      while( (zTok = strtok(z, " \n"))!=0 && k<AESQL_NET_MAX_LAYERS ){
        f->act[k++] = aesql_act_parse(zTok);
        z = 0;
      }
      if( k==f->nLayer ) seen |= 1u<<2;
    }else if( sscanf(line, "adam %lf %lf %lf %lf", &f->lr, &f->beta1,
                     &f->beta2, &f->eps)==4 ){
      seen |= 1u<<3;
    }else if( sscanf(line, "nparam %zu", &f->nParam)==1 ){
      seen |= 1u<<4;
    }else if( sscanf(line, "init_sum %lf %lf", &f->initSum, &f->initSumsq)==2 ){
      seen |= 1u<<5;
    }else if( strncmp(line, "init_w ", 7)==0 ){
      if( parse_floats(line+7, f->initW, 4)==4 ) seen |= 1u<<6;
    }else if( strncmp(line, "init_b ", 7)==0 ){
      if( parse_floats(line+7, f->initB, 4)==4 ) seen |= 1u<<7;
    }else if( strncmp(line, "init_x ", 7)==0 ){
      if( parse_longs(line+7, v, 8)==8 ){
        for(k=0; k<8; k++) f->initX[k] = (int)v[k];
        seen |= 1u<<8;
      }
    }else if( sscanf(line, "init_nz %ld", &f->initNz)==1 ){
      seen |= 1u<<9;
    }else if( strncmp(line, "samples ", 8)==0 ){
      f->nSample = parse_longs(line+8, v, MAX_SAMPLE);
      for(k=0; k<f->nSample; k++) f->sample[k] = (size_t)v[k];
      seen |= 1u<<10;
    }else if( strncmp(line, "init_samples ", 13)==0 ){
      if( f->nSample>0
       && parse_floats(line+13, f->initSamples, f->nSample)==f->nSample ){
        seen |= 1u<<11;
      }
    }else if( sscanf(line, "grad0 %d %15s %lf %lf", &k, name, &a, &b)==4 ){
      int j = strcmp(name, "w")==0 ? 0 : strcmp(name, "b")==0 ? 1 : -1;
      if( k>=0 && k<f->nLayer && j>=0 ){
        f->g0Sumsq[k][j] = a;
        f->g0Max[k][j] = b;
        nG0++;
      }
    }else if( strncmp(line, "grad0_samples ", 14)==0 ){
      if( f->nSample>0
       && parse_floats(line+14, f->g0Samples, f->nSample)==f->nSample ){
        seen |= 1u<<12;
      }
    }else if( sscanf(line, "step %d %lf %lf %lf %n", &k, &a, &b, &c, &off)==4
              && off>0 ){
      if( k==f->nStep && k<MAX_STEP && f->nSample>0
       && parse_floats(line+off, f->stepSamples[k], f->nSample)==f->nSample ){
        f->loss[k] = a;
        f->sum[k] = b;
        f->sumsq[k] = c;
        f->nStep++;
      }
    }else if( sscanf(line, "final_loss %lf", &f->finalLoss)==1 ){
      seen |= 1u<<13;
    }
  }
  fclose(in);
  if( seen!=(1u<<14)-1 ){
    snprintf(zErr, sizeof(zErr), "incomplete (line kinds seen: 0x%x of 0x%x)",
             seen, (1u<<14)-1);
    return zErr;
  }
  if( f->nLayer<1 || f->nLayer>AESQL_NET_MAX_LAYERS || nG0!=2*f->nLayer
   || f->nStep!=f->steps || f->steps<1 || f->rows<f->batch*f->steps
   || f->batch<1 || f->nLevel<256 || f->width[0]!=f->width[f->nLayer] ){
    return "inconsistent sizes";
  }
  for(l=0; l<f->nLayer; l++) if( f->act[l]<0 ) return "unknown activation";
  if( aesql_net_nparam(f->nLayer, f->width)!=f->nParam ){
    return "parameter count does not match the widths";
  }
  for(l=0; l<f->nSample; l++){
    if( f->sample[l]>=f->nParam ) return "a sample offset is out of range";
  }
  return 0;
}

/* The fixture's path: from the repository's root (as tests/run.sh runs
** us), else next to this source file. */
static const char *fixture_path(void){
  static char z[512];
  const char *zSrc = __FILE__, *zSlash = strrchr(zSrc, '/');
  FILE *f = fopen(FIX_NAME, "r");
  if( f ){ fclose(f); return FIX_NAME; }
  snprintf(z, sizeof(z), "%.*s../fixtures/deep_torch.txt",
           zSlash ? (int)(zSlash - zSrc + 1) : 0, zSrc);
  return z;
}

/* ---------------------------------------------------------------- */
/* The script's draws, repeated */

/* Glorot kernels (aesql_net_glorot: the script's step 1), then the
** biases, layer by layer, each (2u - 1)*bias rounded to float (step 2). */
static void deep_init(aesql_net *net, aesql_rng *r, double bias){
  int l, k;
  aesql_net_glorot(net, r);
  for(l=0; l<net->nLayer; l++){
    aesql_layer *L = &net->layer[l];
    for(k=0; k<L->nOut; k++){
      L->b[k] = (float)((2.0*aesql_rng_uniform(r) - 1.0)*bias);
    }
  }
}

/* n bytes of pixels (step 3): one below(nLevel) draw k each, the byte
** k + 1 when k < 255, else 0. */
static void deep_data(unsigned char *X8, size_t n, aesql_rng *r,
                      uint32_t nLevel){
  size_t i;
  for(i=0; i<n; i++){
    uint32_t k = aesql_rng_below(r, nLevel);
    X8[i] = k<255 ? (unsigned char)(k + 1) : 0;
  }
}

/* ---------------------------------------------------------------- */
/* helpers */

/* |a - b|/|b|; NaN makes it infinite, so that checks fail. */
static double rel_diff(double a, double b){
  double e = fabs(a - b)/fabs(b);
  return isnan(e) ? INFINITY : e;
}

/* Keeps the worst of *pWorst and e (NaN counts as infinite). */
static void worst(double *pWorst, double e){
  if( isnan(e) ) e = INFINITY;
  if( !(e<=*pWorst) ) *pWorst = e;
}

/* Sum and sum of squares of a[0..n), in double. */
static void stats(const float *a, size_t n, double *pSum, double *pSumsq){
  double s = 0.0, s2 = 0.0;
  size_t i;
  for(i=0; i<n; i++){ s += a[i]; s2 += (double)a[i]*a[i]; }
  *pSum = s;
  *pSumsq = s2;
}

/* max |a - b| over a[0..n) and b[0..n), and max |b|. */
static void max_diff(const float *a, const float *b, size_t n, double *pDiff,
                     double *pMax){
  double m = 0.0, d = 0.0;
  size_t i;
  for(i=0; i<n; i++){
    worst(&d, fabs((double)a[i] - b[i]));
    worst(&m, fabs((double)b[i]));
  }
  *pDiff = d;
  *pMax = m;
}

/* ---------------------------------------------------------------- */
/* The checks */

/* Tolerances, with why (the measured values are printed as "# ..."
** lines; those below are from an x86-64 with AVX-512):
**
** Why 5 Adam steps do not amplify rounding: Keras' step is lr_t m/(sqrt(v)
** + eps), which at step 1 is lr g/(|g| + eps/sqrt(1 - b2)) = lr g/(|g| +
** 3.2e-6): about lr sign(g) wherever |g| is well above 3.2e-6 (most of
** this model's gradients are 1e-6..1e-3), so a gradient's rounding error
** (relative ~1e-7) moves the step by a small part of that, and below it
** the step is lr g/3.2e-6, moved by lr dg/3.2e-6 with dg ~ u |terms| ~
** 1e-11. A parameter thus ends within an ulp or so of torch's.
**
** LOSS_REL: a loss is the mean of 50176 squared errors of float outputs
** that differ by a few u relative (other summation orders in the
** products), averaged (torch sums pairwise in float, we sum in float
** lanes then double). Measured 7e-8; 1e-5 (the brief's) leaves room for
** other BLAS kernels and libm's expf/expm1f, and fails a 1% error in an
** activation's derivative (measured: 1e-4).
**
** PARAM_ABS + PARAM_ULPS u |p|: a parameter after the steps. The
** rounding of p - step itself can leave the two sides an ulp apart (up
** to 3e-8 at |p| = 0.25); beyond that the argument above gives ~1e-10.
** Measured 1.9e-9 (one ulp of the samples' size). 1e-8 is 1e-5 of one
** step (lr = 1e-3): a parameter whose update has the wrong size or sign
** fails.
**
** SUM_ABS_PER_PARAM * nParam: the sum and the sum of squares of all the
** parameters, in double. Independent ulp-sized differences (~5e-9) over
** 2e5 parameters add to ~sqrt(2e5)*5e-9 = 2e-6 (measured 2.1e-6 for the
** sum, 1e-7 for the squares); the tolerance, 2.1e-4, is 100 times that,
** and a step moves the sum by ~15 and the squares by ~0.5 (an update of
** lr each), so it fails a few hundred updates (0.1%) going the wrong way.
**
** GRAD_REL: the first gradient, per block (each layer's W, its b), as
** max |g - g_ref| / max |g_ref|: float products over 64 rows and up to
** 784 terms against double (naive) or torch's own float sums, a few
** hundred u at most relative to the block's scale. (Single entries can
** be far smaller than the block's largest and have cancelled: a
** per-entry relative test would fail on rounding.) 1e-5 is the brief's;
** measured 3.5e-7 against the naive, 1.4e-7 against torch. */
#define LOSS_REL           1e-5
#define PARAM_ABS          1e-8
#define PARAM_ULPS         2.0
#define SUM_ABS_PER_PARAM  1e-9
#define GRAD_REL           1e-5

typedef struct trace {
  double loss[MAX_STEP], sum[MAX_STEP], sumsq[MAX_STEP];
  float samples[MAX_STEP][MAX_SAMPLE];
  double finalLoss;
} trace;

/* Records step t: the loss before it, the parameters after. */
static void trace_step(trace *tr, const fixture *f, const aesql_net *net,
                       int t, double loss){
  int k;
  tr->loss[t] = loss;
  stats(net->param, net->nParam, &tr->sum[t], &tr->sumsq[t]);
  for(k=0; k<f->nSample; k++) tr->samples[t][k] = net->param[f->sample[k]];
}

/* Checks a run's trace against the fixture; zPath names the run. */
static void trace_check(const trace *tr, const fixture *f, const char *zPath,
                        size_t nParam){
  double wLoss = 0.0, wSum = 0.0, wSumsq = 0.0, wSample = 0.0, wAbs = 0.0;
  const double tolSum = SUM_ABS_PER_PARAM*nParam;
  char z[200];
  int t, k;
  for(t=0; t<f->steps; t++){
    worst(&wLoss, rel_diff(tr->loss[t], f->loss[t]));
    worst(&wSum, fabs(tr->sum[t] - f->sum[t]));
    worst(&wSumsq, fabs(tr->sumsq[t] - f->sumsq[t]));
    for(k=0; k<f->nSample; k++){
      /* in units of the tolerance, so that 1 is the limit */
      double want = f->stepSamples[t][k];
      worst(&wAbs, fabs(tr->samples[t][k] - want));
      worst(&wSample, fabs(tr->samples[t][k] - want)
                      /(PARAM_ABS + PARAM_ULPS*U_FLOAT*fabs(want)));
    }
  }
  printf("# %s: %d steps: loss rel diff %.2e, sum abs diff %.2e, "
         "sumsq abs diff %.2e, sampled parameters abs diff %.2e (%.2f of "
         "the tolerance)\n", zPath, f->steps, wLoss, wSum, wSumsq, wAbs, wSample);
  snprintf(z, sizeof(z), "%s: loss before each of %d steps (rel %.0e)",
           zPath, f->steps, LOSS_REL);
  check_report(wLoss<=LOSS_REL, z, "worst relative difference %.3g", wLoss);
  snprintf(z, sizeof(z), "%s: sum and sum of squares of the %zu parameters "
           "after each step (abs %.1e)", zPath, nParam, tolSum);
  check_report(wSum<=tolSum && wSumsq<=tolSum, z,
               "worst differences %.3g (sum), %.3g (squares)", wSum, wSumsq);
  snprintf(z, sizeof(z), "%s: %d sampled parameters after each step "
           "(abs %.0e + %g u |p|)", zPath, f->nSample, PARAM_ABS, PARAM_ULPS);
  check_report(wSample<=1.0, z, "worst difference %.3g times the tolerance",
               wSample);
  {
    double e = rel_diff(tr->finalLoss, f->finalLoss);
    printf("# %s: loss on all %d rows after the steps: rel diff %.2e\n",
           zPath, f->rows, e);
    snprintf(z, sizeof(z), "%s: loss on all %d rows after the steps (rel %.0e)",
             zPath, f->rows, LOSS_REL);
    check_report(e<=LOSS_REL, z, "got %.9g, want %.9g", tr->finalLoss,
                 f->finalLoss);
  }
}

/* The first step's gradient g (BLAS) against the naive reference gn and
** against torch's block statistics and samples. */
static void check_grad0(const fixture *f, const aesql_net *net, const float *g,
                        const float *gn){
  double wNaive = 0.0, wSumsq = 0.0, wMax = 0.0, wSample = 0.0;
  char z[200];
  int l, j, k;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    for(j=0; j<2; j++){
      size_t off = L->off + (j ? (size_t)L->nIn*L->nOut : 0);
      size_t n = j ? (size_t)L->nOut : (size_t)L->nIn*L->nOut;
      double d, m, s, s2, gmax = 0.0;
      size_t i;
      max_diff(g + off, gn + off, n, &d, &m);
      worst(&wNaive, d/m);
      stats(g + off, n, &s, &s2);
      for(i=0; i<n; i++) worst(&gmax, fabs(g[off+i]));
      /* a sum of squares doubles the relative error of the entries that
      ** dominate it: 2*GRAD_REL */
      worst(&wSumsq, rel_diff(s2, f->g0Sumsq[l][j]));
      worst(&wMax, rel_diff(gmax, f->g0Max[l][j]));
      for(k=0; k<f->nSample; k++){
        size_t o = f->sample[k];
        if( o>=off && o<off+n ){
          worst(&wSample, fabs((double)g[o] - f->g0Samples[k])/f->g0Max[l][j]);
        }
      }
    }
  }
  printf("# first gradient, per block, max|diff|/max|g|: BLAS vs naive %.2e, "
         "sampled entries vs torch %.2e; sum of squares rel %.2e, "
         "max |g| rel %.2e\n", wNaive, wSample, wSumsq, wMax);
  snprintf(z, sizeof(z), "first gradient: BLAS path against the naive "
           "reference, every entry (rel %.0e of its block's max)", GRAD_REL);
  check_report(wNaive<=GRAD_REL, z, "worst %.3g", wNaive);
  snprintf(z, sizeof(z), "first gradient: against torch, %d sampled entries "
           "(rel %.0e of the block's max)", f->nSample, GRAD_REL);
  check_report(wSample<=GRAD_REL, z, "worst %.3g", wSample);
  snprintf(z, sizeof(z), "first gradient: against torch, each block's sum of "
           "squares (rel %.0e) and max |g| (rel %.0e)", 2*GRAD_REL, GRAD_REL);
  check_report(wSumsq<=2*GRAD_REL && wMax<=GRAD_REL, z,
               "worst %.3g (squares), %.3g (max)", wSumsq, wMax);
}

/* ---------------------------------------------------------------- */

/* Builds the fixture's net with its initial parameters into net, and its
** data into X8 (rows x d bytes); checks both against the fixture. */
static int deep_setup(const fixture *f, aesql_net *net, unsigned char *X8,
                      int bCheck){
  aesql_rng r;
  double s, s2;
  size_t i, nPx = (size_t)f->rows*f->width[0];
  long nz = 0;
  int k, ok = 1;
  if( aesql_net_init(net, f->nLayer, f->width, f->act, f->nLayer/2 - 1) ){
    return 1;
  }
  aesql_rng_seed(&r, f->seed);
  deep_init(net, &r, f->bias);
  deep_data(X8, nPx, &r, f->nLevel);
  if( !bCheck ) return 0;

  stats(net->param, net->nParam, &s, &s2);
  /* the same floats summed in double in two orders: ~1e-16 relative */
  CHECK("init: sum and sum of squares of the parameters (rel 1e-12)",
        rel_diff(s, f->initSum)<=1e-12 && rel_diff(s2, f->initSumsq)<=1e-12);
  for(k=0; k<f->nSample; k++){
    if( net->param[f->sample[k]]!=f->initSamples[k] ) ok = 0;
  }
  CHECK("init: same glorot kernels and biases, bit for bit",
        ok && memcmp(net->layer[0].w, f->initW, sizeof(f->initW))==0
        && memcmp(net->layer[f->nLayer-1].b + net->layer[f->nLayer-1].nOut - 4,
                  f->initB, sizeof(f->initB))==0);
  for(i=0; i<nPx; i++) nz += X8[i]!=0;
  for(k=0, ok=1; k<8; k++) if( X8[nPx-8+k]!=f->initX[k] ) ok = 0;
  CHECK("init: same data (last bytes, non-zero count)", ok && nz==f->initNz);
  return 0;
}

/* Path A: aesql_net_grad on dense floats, aesql_adam_step. */
static void run_dense(const fixture *f, trace *tr){
  const int d = f->width[0];
  aesql_net net;
  aesql_net_work *w = 0;
  aesql_adam opt;
  unsigned char *X8 = malloc((size_t)f->rows*d);
  float *X = malloc(sizeof(float)*(size_t)f->rows*d);
  float *g = 0, *gn = 0;
  size_t i;
  int t;

  memset(&opt, 0, sizeof(opt));
  memset(&net, 0, sizeof(net));
  if( !X8 || !X || deep_setup(f, &net, X8, 1)
   || (g = malloc(sizeof(float)*net.nParam))==0
   || (gn = malloc(sizeof(float)*net.nParam))==0
   || (w = aesql_net_work_new(&net, f->rows, 0.0))==0
   || aesql_adam_init(&opt, net.nParam, (float)f->lr, (float)f->beta1,
                      (float)f->beta2, (float)f->eps) ){
    CHECK("dense: alloc", 0);
    goto done;
  }
  /* the float of byte b is b/255.0f (ae_data.h), as in the script */
  for(i=0; i<(size_t)f->rows*d; i++) X[i] = aesql_u8_float[X8[i]];

  for(t=0; t<f->steps; t++){
    const float *Xb = X + (size_t)t*f->batch*d;
    double loss = aesql_net_grad(&net, w, Xb, f->batch, g);
    if( t==0 ){
      double ln = aesql_net_grad_naive(&net, Xb, f->batch, 0.0, gn);
      double e = rel_diff(loss, ln);
      /* float outputs and sums against double: a few u */
      printf("# first loss: BLAS vs naive rel diff %.2e\n", e);
      check_report(e<=1e-6, "first loss: BLAS path against the naive "
                   "reference (rel 1e-6)", "got %.9g, want %.9g", loss, ln);
      check_grad0(f, &net, g, gn);
    }
    aesql_adam_step(&opt, net.param, g);
    trace_step(tr, f, &net, t, loss);
  }
  tr->finalLoss = aesql_net_forward(&net, w, X, f->rows, 0);
  trace_check(tr, f, "aesql_net_grad", net.nParam);

done:
  free(X8); free(X); free(g); free(gn);
  aesql_adam_free(&opt);
  aesql_net_work_free(w);
  aesql_net_free(&net);
}

/* Path B: aesql_fit over the bytes, indexed by non-zero pixel. */
static void run_fit(const fixture *f, trace *tr){
  const int d = f->width[0];
  aesql_net net;
  aesql_adam opt;
  aesql_nn_data data;
  aesql_fit *fit = 0;
  unsigned char *X8 = malloc((size_t)f->rows*d);
  uint32_t *idx = malloc(sizeof(uint32_t)*(size_t)f->rows);
  int t, i;

  memset(&opt, 0, sizeof(opt));
  memset(&net, 0, sizeof(net));
  memset(&data, 0, sizeof(data));
  if( !X8 || !idx || deep_setup(f, &net, X8, 0) ){
    CHECK("fit: alloc", 0);
    goto done;
  }
  aesql_nn_data_init(&data, d, (size_t)f->rows, X8, 0);
  if( aesql_nn_data_index(&data, AESQL_NN_SPARSE_ALWAYS)
   || aesql_adam_init(&opt, net.nParam, (float)f->lr, (float)f->beta1,
                      (float)f->beta2, (float)f->eps)
   || (fit = aesql_fit_new(&net, &opt, &data, f->batch, 1, 0.0, 0.0))==0 ){
    CHECK("fit: alloc", 0);
    goto done;
  }
  CHECK("fit: the data set is indexed", data.nz!=0);
  for(i=0; i<f->rows; i++) idx[i] = (uint32_t)i;
  for(t=0; t<f->steps; t++){
    double loss = aesql_fit_grad(fit, idx + (size_t)t*f->batch, f->batch, 0);
    aesql_fit_step(fit);
    trace_step(tr, f, &net, t, loss);
  }
  tr->finalLoss = aesql_fit_loss(fit, idx, f->rows);
  trace_check(tr, f, "aesql_fit", net.nParam);

done:
  aesql_fit_free(fit);
  aesql_nn_data_free(&data);
  free(X8); free(idx);
  aesql_adam_free(&opt);
  aesql_net_free(&net);
}

int main(void){
  static fixture f;
  static trace trA, trB;
  const char *zWhy = 0, *zPath = fixture_path(), *zErr;
  double t0 = check_now();

  if( aesql_blas_load(&zWhy) ){
    check_report(0, "load OpenBLAS", "%s", zWhy ? zWhy : "unknown error");
    return check_done();
  }
  zErr = fixture_read(&f, zPath);
  if( zErr ){
    /* the fixture is committed: its absence is a failure, not a skip */
    check_report(0, "read the fixture", "%s: %s (regenerate it from the "
                 "repository's root with %s)", zPath, zErr, FIX_REMAKE);
    return check_done();
  }
  CHECK("read the fixture", 1);
  run_dense(&f, &trA);
  run_fit(&f, &trB);
  {
    /* the two paths against each other, for the record: the sparse first
    ** layer and the passes of 32 rows sum in other orders */
    double wL = 0.0, wP = 0.0;
    int t, k;
    for(t=0; t<f.steps; t++){
      worst(&wL, rel_diff(trB.loss[t], trA.loss[t]));
      for(k=0; k<f.nSample; k++){
        worst(&wP, fabs((double)trB.samples[t][k] - trA.samples[t][k]));
      }
    }
    printf("# aesql_fit vs aesql_net_grad: loss rel diff %.2e, sampled "
           "parameters abs diff %.2e\n", wL, wP);
  }
  printf("# %.2f s\n", check_now() - t0);
  return check_done();
}
