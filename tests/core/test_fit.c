/*
** Tests of the optimiser and the training steps (ext/core/ae_adam.h,
** ae_pool.h, ae_fit.h, over the model of ae_net.h), linked with no SQLite:
**
**   adam         Keras' Adam by hand (two steps, its epsilon, not
**                torch's), and in pieces: ranges and several gradients
**                give the bits of one step on their sum
**   torch        tests/fixtures/nn_torch.txt, written by
**                tests/torch_fixture.py: the d-h-d model trained in
**                PyTorch from the same weights and data (torch is not
**                needed here); the two-layer stack through its dense
**                pass, its row pass and the data-parallel fit must give
**                PyTorch's losses and weights, and Adam alone its trace
**   determinism  two runs of the dense passes, the same bits
**   pool         every unit once, for 1 to 4 threads, and pools made and
**                freed at once
**   fit          the same model, moments and losses bit for bit for 1,
**                2, 3 and 8 threads (with dropout too), floats and bytes
**                alike, near one BLAS pass per batch; the l2 term's
**                gradient; dropout by batch position across the parts;
**                OpenBLAS single-threaded during a fit; bad arguments;
**                every allocation failed in turn
**
**   make build/tests/test_fit && build/tests/test_fit
**   make build/asan-tests/test_fit && AESQL_SANITIZE=1 build/asan-tests/test_fit
**
** Every tolerance is stated next to its check, with why it is that size.
** u = 2^-24 is float's unit roundoff.
*/
#include "check_core.h"
#include "../../ext/core/ae_net.h"
#include "../../ext/core/ae_blas.h"
#include "../../ext/core/ae_fit.h"
#include "../../ext/core/ae_pool.h"

#include <stdint.h>

#define U_FLOAT 0x1.0p-24

/* The core's allocator is check_core.h's fm_malloc/fm_free: counted
** (every block must be freed by the end), failing on request. */

/* ---------------------------------------------------------------- */
/* helpers */





/* ---------------------------------------------------------------- */
/* Adam, by hand */

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
  CHECK("adam: init zeroes t, m, v", a.t==0 && a.n==NP && a.m[0]==0 && a.v[NP-1]==0
        && a.lr==lr && a.beta1==b1 && a.beta2==b2 && a.eps==eps);
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
  aesql_adam_free(&a);                 /* twice is harmless */
  aesql_adam_free(0);
  /* too many parameters for the two moments; out of memory */
  CHECK("adam: n > SIZE_MAX/8 refused", aesql_adam_init(&a, SIZE_MAX/4, lr, b1, b2, eps)!=0
        && a.m==0);
  fm_fail_in(0);
  CHECK("adam: init out of memory fails, a zeroed",
        aesql_adam_init(&a, NP, lr, b1, b2, eps)!=0 && a.m==0 && a.n==0);
  fm_never();
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
    aesql_adam_update(&b, lr, q, gs, 0, 0, NP);        /* no gradient: nothing */
    aesql_adam_update(&b, lr, q, gs, ng, 500, 500);    /* empty range: nothing */
  }
  ok = memcmp(p, q, sizeof(p))==0 && memcmp(a.m, b.m, NP*sizeof(float))==0
    && memcmp(a.v, b.v, NP*sizeof(float))==0 && a.t==b.t && a.t==4;
  CHECK("adam pieces: 3 ranges, 2 or 3 gradients = one step on their sum, bit for bit", ok);
  aesql_adam_free(&a); aesql_adam_free(&b);
}

/* ---------------------------------------------------------------- */
/* Against PyTorch (tests/fixtures/nn_torch.txt) */

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
  snprintf(z, sizeof(z), "%.*s../fixtures/nn_torch.txt",
           zSlash ? (int)(zSlash - zSrc + 1) : 0, zSrc);
  return z;
}

/* The fixture's training, three ways: 0 the dense pass on gathered
** batches (aesql_net_grad), 1 the row pass over an indexed data set of
** floats (aesql_net_grad_rows), 2 the data-parallel fit (2 threads asked,
** 1 used: a batch of 16 rows is one part);
** each batch's loss before its Adam step, then the final weights. */
static void torch_run(const fixture *f, int how){
  static const char *azHow[3] = { "dense pass", "row pass, indexed", "the fit" };
  aesql_net nn;
  aesql_net_work *w = 0;
  aesql_adam opt;
  aesql_nn_data x;
  aesql_fit *fit = 0;
  aesql_rng r;
  float *X = 0, *Xb = 0, *g = 0;
  uint32_t *perm = 0;
  double worstLoss = 0.0;
  char z[200];
  int i, t, step = 0, ep;

  memset(&opt, 0, sizeof(opt));
  memset(&x, 0, sizeof(x));
  memset(&nn, 0, sizeof(nn));
  X = malloc(sizeof(float)*f->n*f->d);
  Xb = malloc(sizeof(float)*f->batch*f->d);
  perm = malloc(sizeof(uint32_t)*f->n);
  if( !X || !Xb || !perm || aesql_net_init_dhd(&nn, f->d, f->h)
   || !(g = malloc(sizeof(float)*nn.nParam))
   || (w = aesql_net_work_new(&nn, f->n, 0.0))==0
   || aesql_adam_init(&opt, nn.nParam, 0.001f, 0.9f, 0.999f, 1e-7f) ){
    CHECK("torch: alloc", 0);
    goto done;
  }
  /* the same draws as the script: glorot w1, w2, then the data */
  aesql_rng_seed(&r, f->seed);
  aesql_net_glorot(&nn, &r);
  for(i=0; i<f->n*f->d; i++) X[i] = (float)aesql_rng_uniform(&r);
  if( how==0 ){
    CHECK("torch: same initial weights and data, bit for bit",
          memcmp(nn.layer[0].w, f->initW1, sizeof(f->initW1))==0
          && memcmp(nn.layer[1].w + f->h*f->d - 4, f->initW2, sizeof(f->initW2))==0
          && memcmp(X + f->n*f->d - 4, f->initX, sizeof(f->initX))==0);
  }
  aesql_nn_data_init(&x, f->d, f->n, 0, X);
  if( how==1 && (aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS) || !x.nz) ){
    CHECK("torch: index", 0);
    goto done;
  }
  if( how==2 && !(fit = aesql_fit_new(&nn, &opt, &x, f->batch, 2, 0.0, 0.0)) ){
    CHECK("torch: fit", 0);
    goto done;
  }

  /* epochs of shuffled mini-batches, each loss before its Adam step */
  for(ep=0; ep<f->epochs; ep++){
    for(i=0; i<f->n; i++) perm[i] = i;
    aesql_rng_shuffle(&r, perm, f->n);
    for(t=0; t<f->n; t+=f->batch){
      double loss = 0.0, e;
      if( how==0 ){
        for(i=0; i<f->batch; i++){
          memcpy(Xb + i*f->d, X + perm[t+i]*f->d, sizeof(float)*f->d);
        }
        loss = aesql_net_grad(&nn, w, Xb, f->batch, g);
        aesql_adam_step(&opt, nn.param, g);
      }else if( how==1 ){
        loss = aesql_net_grad_rows(&nn, w, &x, perm+t, f->batch, f->batch, g, 0, 0, 0)
               /((double)f->batch*f->d);
        aesql_adam_step(&opt, nn.param, g);
      }else{
        loss = aesql_fit_grad(fit, perm+t, f->batch, 0);
        aesql_fit_step(fit);
      }
      if( step<f->nLoss ){
        e = fabs(loss - f->loss[step])/f->loss[step];
        if( !(e<=worstLoss) ) worstLoss = isnan(e) ? INFINITY : e;
      }
      step++;
    }
  }
  printf("# torch, %s: %d steps, worst relative loss difference %.2e\n", azHow[how],
         step, worstLoss);
  snprintf(z, sizeof(z), "torch, %s: as many steps as the fixture", azHow[how]);
  CHECK(z, step==f->nLoss);
  /* both are float32 with different summation orders: a few u per loss,
  ** which Adam does not amplify in 6 steps; measured ~1e-7 */
  snprintf(z, sizeof(z), "torch, %s: loss before each step (rel 1e-5)", azHow[how]);
  check_report(worstLoss<=1e-5, z, "worst relative difference %.3g", worstLoss);
  {
    double lf = aesql_net_forward(&nn, w, X, f->n, 0);
    snprintf(z, sizeof(z), "torch, %s: final loss on all rows (rel 1e-5)", azHow[how]);
    CHECK_NEAR(z, lf, f->finalLoss, 1e-5*f->finalLoss);
  }
  /* final weights: the gradients agree to ~u relative; Adam's step,
  ** lr m/sqrt(v), is insensitive to that, so weights agree to ~1e-8;
  ** allow 1e-7 for each value and 1e-7 count for sums */
  for(t=0; t<4; t++){
    static const char *tn[4] = {"w1", "b1", "w2", "b2"};
    const aesql_layer *L = &nn.layer[t/2];
    const float *a = t%2 ? L->b : L->w;
    size_t cnt = t%2 ? (size_t)L->nOut : (size_t)L->nIn*L->nOut;
    double s = 0.0, s2 = 0.0;
    size_t j;
    for(j=0; j<cnt; j++){ s += a[j]; s2 += (double)a[j]*a[j]; }
    printf("# torch, %s: final %s: sum diff %.2e, sumsq diff %.2e, head diff %.2e\n",
           azHow[how], tn[t], fabs(s - f->sum[t]), fabs(s2 - f->sumsq[t]),
           max_diff(a, f->head[t], 4));
    snprintf(z, sizeof(z), "torch, %s: final %s: sum, sum of squares (1e-7 count), "
             "first 4 (abs 1e-7)", azHow[how], tn[t]);
    check_report(fabs(s - f->sum[t])<=1e-7*cnt && fabs(s2 - f->sumsq[t])<=1e-7*cnt
                 && max_diff(a, f->head[t], 4)<=1e-7, z,
                 "sum %.12g want %.12g, sumsq %.12g want %.12g, head diff %.3g",
                 s, f->sum[t], s2, f->sumsq[t], max_diff(a, f->head[t], 4));
  }
done:
  aesql_fit_free(fit);
  free(X); free(Xb); free(perm); free(g);
  aesql_nn_data_free(&x);
  aesql_adam_free(&opt);
  aesql_net_free(&nn);
  aesql_net_work_free(w);
}

static void test_torch(void){
  fixture f;
  const char *zPath = fixture_path();
  char z[160];
  int how, i, t;

  if( !fixture_read(&f, zPath) ){
    check_report(0, "torch: read the fixture", "cannot read %s (make it with "
                 "/usr/bin/python3 tests/torch_fixture.py)", zPath);
    return;
  }
  for(how=0; how<3; how++) torch_run(&f, how);

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
    }else{
      CHECK("torch: Adam init", 0);
    }
  }
}

/* ---------------------------------------------------------------- */
/* Determinism of the dense passes */

/* n steps of grad + Adam at 256-784-32 from seed; params and moments out */
static int run_steps(uint64_t seed, int steps, float *out, double *losses){
  const int n = 256, d = 784, h = 32;
  aesql_net nn;
  aesql_net_work *w = 0;
  aesql_adam a;
  aesql_rng r;
  float *X = malloc(sizeof(float)*n*d), *g = 0;
  size_t np;
  int s, rc = 1;
  memset(&a, 0, sizeof(a));
  if( aesql_net_init_dhd(&nn, d, h)==0 && (w = aesql_net_work_new(&nn, n, 0.0))
   && X && (g = malloc(sizeof(float)*nn.nParam))
   && aesql_adam_init(&a, nn.nParam, 0.001f, 0.9f, 0.999f, 1e-7f)==0 ){
    np = nn.nParam;
    aesql_rng_seed(&r, seed);
    aesql_net_glorot(&nn, &r);
    for(s=0; s<steps; s++){
      size_t i;
      /* MNIST-like rows: mostly zeros */
      for(i=0; i<(size_t)n*d; i++){
        double u = aesql_rng_uniform(&r);
        X[i] = u<0.8 ? 0.0f : (float)((u - 0.8)*5.0);
      }
      losses[s] = aesql_net_grad(&nn, w, X, n, g);
      aesql_adam_step(&a, nn.param, g);
    }
    memcpy(out, nn.param, np*sizeof(float));
    memcpy(out + np, a.m, np*sizeof(float));
    memcpy(out + 2*np, a.v, np*sizeof(float));
    rc = 0;
  }
  free(X); free(g);
  aesql_adam_free(&a);
  aesql_net_free(&nn);
  aesql_net_work_free(w);
  return rc;
}

static void test_determinism(void){
  size_t np = 784*32*2 + 784 + 32;
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
/* The thread pool */

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

static void test_pool(int nRuns){
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
    for(k=1; k<=nRuns; k++){
      int nUnit = 1 + k%64;
      pr.run = k;
      aesql_pool_run(pool, nUnit, pool_probe_task, &pr);
      /* each unit run once, and done when run returns */
      for(u=0; u<64; u++){
        ok &= pr.unit[16*u]==(u<nUnit ? k : 0);
        pr.unit[16*u] = 0;
      }
      if( k==nRuns/3 || k==2*nRuns/3 ) usleep(20000);   /* let the workers sleep */
    }
    aesql_pool_run(pool, 0, pool_probe_task, &pr);
    snprintf(z, sizeof(z), "pool of %d: %d runs of 1 to 64 units, each unit "
             "once, done when run returns, also after sleeping", nt, nRuns);
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
    for(c=0; c<2*nRuns/3; c++){
      aesql_pool *pool = aesql_pool_new(2 + c%4);
      if( !pool ){ ok = 0; break; }
      aesql_pool_run(pool, 2 + c%3, pool_probe_task, &pr);
      aesql_pool_free(pool);
      for(u=0; u<64; u++){
        ok &= pr.unit[16*u]==(u<2 + c%3);
        pr.unit[16*u] = 0;
      }
    }
    CHECK("pool: pools made, run once and freed (no hang, each unit once)",
          ok && !pr.bad);
  }
  /* out of memory: NULL, nothing left */
  {
    long live = fm.nLive, k;
    int ok = 1, done = 0;
    for(k=0; !done && k<10; k++){
      aesql_pool *pool;
      fm_fail_in(k);
      pool = aesql_pool_new(3);
      fm_never();
      if( pool ){
        done = 1;
        ok &= aesql_pool_threads(pool)==3;
        aesql_pool_free(pool);
      }
      ok &= fm.nLive==live;
    }
    CHECK("pool: NULL while it cannot allocate, then 3 threads; nothing left", ok && done);
  }
  aesql_pool_free(0);
  {
    aesql_pool *pool = aesql_pool_new(0);
    CHECK("pool: 0 threads means 1", pool && aesql_pool_threads(pool)==1);
    aesql_pool_free(pool);
  }
}

/* ---------------------------------------------------------------- */
/* Data-parallel training */

/* Trains 784-32-784 on nRows MNIST-like rows (the last fifth held out) for
** 2 epochs of batch 256 with nThread threads: the fit path, with l2 and
** dropout as given (dropout keyed by the step). With nThread 0 instead
** the plain path: one aesql_net_grad() per batch on gathered rows (no l2,
** no dropout). Writes the parameters, moments and losses. */
static int fit_run(int nThread, int isF32, double l2, double dropout, uint64_t keyBase,
                   float *out, double *losses, int *pThreads){
  enum { D = 784, H = 32, N = 900, B = 256, E = 2 };
  const int nTrain = N*4/5, nVal = N - nTrain;
  aesql_rng r;
  aesql_net nn;
  aesql_adam a;
  aesql_nn_data x;
  aesql_fit *fit = 0;
  aesql_net_work *w = 0;
  unsigned char *u = 0;
  float *f = 0, *X = 0, *g = 0;
  uint32_t *idx = malloc(sizeof(uint32_t)*N);
  size_t np = 0;
  int e, b, i, k = 0, rc = 1;
  memset(&nn, 0, sizeof(nn)); memset(&a, 0, sizeof(a)); memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 2024);
  u = make_bytes(&r, N, D, 0.2);
  f = malloc(sizeof(float)*N*D);
  X = malloc(sizeof(float)*B*D);
  if( !u || !f || !X || !idx ) goto done;
  for(i=0; i<N*D; i++) f[i] = (float)(u[i]/255.0);
  aesql_nn_data_init(&x, D, N, isF32 ? 0 : u, isF32 ? f : 0);
  if( aesql_net_init_dhd(&nn, D, H) || !(g = malloc(sizeof(float)*nn.nParam))
   || aesql_adam_init(&a, nn.nParam, 0.001f, 0.9f, 0.999f, 1e-7f)
   || aesql_nn_data_index(&x, AESQL_NN_SPARSE_AUTO) ) goto done;
  np = nn.nParam;
  if( nThread>0 ){
    if( !(fit = aesql_fit_new(&nn, &a, &x, B, nThread, l2, dropout)) ) goto done;
    *pThreads = aesql_fit_threads(fit);
  }else if( !(w = aesql_net_work_new(&nn, B, 0.0)) ){
    goto done;
  }
  aesql_net_glorot(&nn, &r);
  for(i=nTrain; i<N; i++) idx[i] = i;
  for(e=0; e<E; e++){
    for(i=0; i<nTrain; i++) idx[i] = i;
    aesql_rng_shuffle(&r, idx, nTrain);
    for(b=0; b<nTrain; b+=B){
      int n = nTrain-b < B ? nTrain-b : B;
      if( fit ){
        losses[k] = aesql_fit_grad(fit, idx+b, n, keyBase + (uint64_t)k);
        k++;
        aesql_fit_step(fit);
      }else{
        rows_dense(&x, idx+b, n, X);
        losses[k++] = aesql_net_grad(&nn, w, X, n, g);
        aesql_adam_step(&a, nn.param, g);
      }
    }
    if( fit ){
      losses[k++] = aesql_fit_loss(fit, idx+nTrain, nVal);
    }else{
      double s = 0.0;
      for(b=0; b<nVal; b+=B){
        int n = nVal-b < B ? nVal-b : B;
        rows_dense(&x, idx+nTrain+b, n, X);
        s += aesql_net_forward(&nn, w, X, n, 0)*n;
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
  aesql_net_work_free(w);
  aesql_nn_data_free(&x);
  aesql_adam_free(&a);
  aesql_net_free(&nn);
  free(u); free(f); free(X); free(idx); free(g);
  return rc;
}

static void test_fit_threads(void){
  enum { NL = 8 };     /* per epoch: 3 batches' losses, then val_loss */
  size_t np = 784*32*2 + 784 + 32, p;
  float *a = malloc(3*np*sizeof(float)), *b = malloc(3*np*sizeof(float));
  float *c = malloc(3*np*sizeof(float));
  double la[NL] = {0}, lb[NL] = {0}, lc[NL] = {0}, worst = 0.0, wl = 0.0;
  int t, got = 0, blas0 = aesql_blas_threads(), blasIn = -1, drop;
  static const int threads[] = {2, 3, 8, 2};
  char z[200];
  if( !a || !b || !c ){ CHECK("fit: alloc", 0); goto done; }
  /* without and with dropout and l2: every thread count, and a second
  ** run, give the same bits */
  for(drop=0; drop<2; drop++){
    const double l2 = drop ? 1e-4 : 0.0, dr = drop ? 0.25 : 0.0;
    const char *zd = drop ? ", dropout 0.25 and l2 1e-4" : "";
    if( fit_run(1, 0, l2, dr, 7, a, la, &got) ){
      CHECK("fit: run with 1 thread", 0);
      goto done;
    }
    CHECK("fit: 1 thread", got==1);
    for(t=0; t<4; t++){
      /* no more threads than parts of a batch of 256 */
      int nPart = (256 + AESQL_FIT_PART_ROWS - 1)/AESQL_FIT_PART_ROWS, want;
      if( nPart>AESQL_FIT_MAX_PARTS ) nPart = AESQL_FIT_MAX_PARTS;
      want = threads[t]>nPart ? nPart : threads[t];
      memset(b, 0, 3*np*sizeof(float));
      if( fit_run(threads[t], 0, l2, dr, 7, b, lb, &got) ){ CHECK("fit: run", 0); goto done; }
      snprintf(z, sizeof(z), "fit%s: %d threads asked, %d used; parameters, moments "
               "and losses bit-identical to 1 thread", zd, threads[t], want);
      check_report(got==want && memcmp(a, b, 3*np*sizeof(float))==0
                   && memcmp(la, lb, sizeof(la))==0, z, "threads %d", got);
    }
    snprintf(z, sizeof(z), "fit%s: training lowers the loss and val_loss", zd);
    CHECK(z, la[6] < la[0] && la[7] < la[3]);
    /* floats: the same computation from the same values */
    if( fit_run(2, 1, l2, dr, 7, b, lb, &got) ){ CHECK("fit: f32 run", 0); goto done; }
    snprintf(z, sizeof(z), "fit%s: float pixels give the same bits as bytes", zd);
    CHECK(z, memcmp(a, b, 3*np*sizeof(float))==0 && memcmp(la, lb, sizeof(la))==0);
    if( drop ){
      /* other keys, other masks: another model */
      if( fit_run(2, 0, l2, dr, 8, b, lb, &got) ){ CHECK("fit: run", 0); goto done; }
      CHECK("fit, dropout: other keys give another model",
            memcmp(a, b, np*sizeof(float))!=0 && la[0]!=lb[0]);
    }
  }
  /* against one BLAS pass per batch: other sums, other rounding. After 8
  ** Adam steps of lr 1e-3 the parameters agree to ~1e-7 (measured); each
  ** step moves a parameter by at most ~lr, so 1e-5 is 1% of one step.
  ** Losses agree to rel 1e-5, as the row path and the BLAS path do. */
  if( fit_run(1, 0, 0.0, 0.0, 7, a, la, &got) || fit_run(0, 0, 0.0, 0.0, 7, c, lc, &got) ){
    CHECK("fit: plain run", 0);
    goto done;
  }
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
  /* l2 changes the model */
  if( fit_run(2, 0, 1e-3, 0.0, 7, b, lb, &got) ){ CHECK("fit: l2 run", 0); goto done; }
  CHECK("fit: l2 1e-3 gives another model", memcmp(a, b, np*sizeof(float))!=0);

  /* OpenBLAS runs single-threaded while a fit exists, then is restored */
  {
    aesql_net nn;
    aesql_adam ad;
    aesql_nn_data x;
    unsigned char px[64] = {0};
    aesql_fit *f = 0;
    memset(&ad, 0, sizeof(ad));
    if( aesql_net_init_dhd(&nn, 8, 2)==0
     && aesql_adam_init(&ad, nn.nParam, 0.001f, 0.9f, 0.999f, 1e-7f)==0 ){
      aesql_nn_data_init(&x, 8, 8, px, 0);
      f = aesql_fit_new(&nn, &ad, &x, 8, 0, 0.0, 0.0);
      if( f ) blasIn = aesql_blas_threads();
    }
    CHECK("fit: batch of 8 rows, one part, one thread", f && aesql_fit_threads(f)==1);
    aesql_fit_free(f);
    check_report(blasIn==1 && aesql_blas_threads()==blas0,
                 "fit: OpenBLAS single-threaded during a fit, restored after",
                 "during %d, after %d, before %d", blasIn, aesql_blas_threads(), blas0);
    aesql_adam_free(&ad);
    aesql_net_free(&nn);
  }
done:
  free(a); free(b); free(c);
}

/* One step of a fit against the same step spelled out, on a batch of at
** most one pass (aesql_fit_pass_rows: one part, one pass): the row
** pass, 2 l2 W added to the kernels' gradient (as 2.0f*(float)l2 times
** W, in float), Adam. The same bits. Then dropout by batch position
** across the parts of a batch of 200 rows: the fit's loss is one pass's
** over the whole batch with the same key. And the fit's other edges. */
static void test_fit_steps(void){
  static const int enc[2] = {24, 12};
  enum { N = 300, D = 40 };
  const double l2 = 0.01;
  aesql_rng r;
  aesql_net nn, nm;
  aesql_adam aa, am;
  aesql_nn_data x;
  aesql_net_work *w = 0, *wb = 0;
  aesql_fit *fit = 0;
  unsigned char *u = 0;
  float *g = 0, *p0 = 0;
  uint32_t idx[N];
  int i, l, ok, width[5];
  double lf, lm;

  memset(&nn, 0, sizeof(nn)); memset(&nm, 0, sizeof(nm));
  memset(&aa, 0, sizeof(aa)); memset(&am, 0, sizeof(am));
  memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 31);
  u = make_bytes(&r, N, D, 0.4);
  aesql_net_mirror(D, enc, 2, width);
  if( !u || aesql_net_init(&nn, 4, width, (int[]){AESQL_ACT_ELU, AESQL_ACT_TANH,
                           AESQL_ACT_RELU, AESQL_ACT_SIGMOID}, 1)
   || aesql_net_init(&nm, 4, width, (int[]){AESQL_ACT_ELU, AESQL_ACT_TANH,
                     AESQL_ACT_RELU, AESQL_ACT_SIGMOID}, 1)
   || !(g = malloc(sizeof(float)*nn.nParam)) || !(p0 = malloc(sizeof(float)*nn.nParam))
   || aesql_adam_init(&aa, nn.nParam, 0.01f, 0.9f, 0.999f, 1e-7f)
   || aesql_adam_init(&am, nn.nParam, 0.01f, 0.9f, 0.999f, 1e-7f)
   || !(w = aesql_net_work_new(&nm, aesql_fit_pass_rows(&nm), 0.0))
   || !(wb = aesql_net_work_new(&nm, 200, 0.3)) ){
    CHECK("fit steps: alloc", 0);
    goto done;
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
  aesql_net_glorot(&nn, &r);
  memcpy(nm.param, nn.param, sizeof(float)*nn.nParam);
  memcpy(p0, nn.param, sizeof(float)*nn.nParam);
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);

  /* bad arguments */
  {
    aesql_nn_data x2 = x;
    aesql_adam a2 = aa;
    x2.d = D + 1;
    a2.n = aa.n - 1;
    ok = aesql_fit_new(&nn, &aa, &x, 0, 1, 0.0, 0.0)==0
      && aesql_fit_new(&nn, &aa, &x2, 8, 1, 0.0, 0.0)==0
      && aesql_fit_new(&nn, &a2, &x, 8, 1, 0.0, 0.0)==0
      && aesql_fit_new(&nn, &aa, &x, 8, 1, -1e-3, 0.0)==0
      && aesql_fit_new(&nn, &aa, &x, 8, 1, NAN, 0.0)==0
      && aesql_fit_new(&nn, &aa, &x, 8, 1, 0.0, 1.0)==0
      && aesql_fit_new(&nn, &aa, &x, 8, 1, 0.0, -0.5)==0
      && aesql_fit_new(&nn, &aa, &x, 8, 1, 0.0, NAN)==0;
    CHECK("fit: maxBatch 0, another width, another Adam size, l2 < 0 or NaN, "
          "dropout 1, < 0 or NaN: NULL", ok);
  }

  /* one step with l2, spelled out */
  if( !(fit = aesql_fit_new(&nn, &aa, &x, 256, 2, l2, 0.0)) ){
    CHECK("fit steps: fit", 0);
    goto done;
  }
  lf = aesql_fit_grad(fit, idx, 29, 0);
  aesql_fit_step(fit);
  lm = aesql_net_grad_rows(&nm, w, &x, idx, 29, 29, g, 0, 0, 0)/(29.0*D);
  for(l=0; l<nm.nLayer; l++){
    const aesql_layer *L = &nm.layer[l];
    const float c = 2.0f*(float)l2;
    size_t q;
    for(q=0; q<(size_t)L->nIn*L->nOut; q++) g[L->off + q] += c*L->w[q];
  }
  aesql_adam_step(&am, nm.param, g);
  CHECK("fit: one step with l2 = row pass + 2 l2 W + Adam, bit for bit (loss "
        "without l2)", lf==lm && memcmp(nn.param, nm.param, sizeof(float)*nn.nParam)==0
        && memcmp(aa.m, am.m, sizeof(float)*nn.nParam)==0
        && memcmp(aa.v, am.v, sizeof(float)*nn.nParam)==0 && aa.t==1);
  /* the loss-only pass, and a step after it: nothing to step with */
  {
    double v = aesql_fit_loss(fit, idx, N);
    double want = aesql_net_sse_rows(&nm, w, &x, idx, N)/((double)N*D);
    memcpy(p0, nn.param, sizeof(float)*nn.nParam);
    aesql_fit_step(fit);
    /* the fit's parts (two of 150 rows here) take the rows a pass at a
    ** time from other starts than one pass over all does, and sgemm may round
    ** a row differently for another number of rows (measured 6e-10):
    ** rel 1e-7 */
    CHECK_NEAR("fit: fit_loss = sse_rows / (n d) (rel 1e-7)", v, want, 1e-7*want);
    CHECK("fit: a step after fit_loss changes nothing",
          memcmp(p0, nn.param, sizeof(float)*nn.nParam)==0 && aa.t==1);
  }
  ok = isnan(aesql_fit_grad(fit, idx, 0, 0)) && isnan(aesql_fit_grad(fit, idx, 257, 0))
    && aesql_fit_loss(fit, idx, 0)==0.0 && isnan(aesql_fit_loss(fit, idx, N+1));
  CHECK("fit: grad of 0 or more than maxBatch rows is NaN; loss of 0 rows 0, of more "
        "than the data set NaN", ok);
  aesql_fit_free(fit);
  fit = 0;

  /* dropout: the fit's parts (2 of 100 rows for this stack, on 3 threads)
  ** draw each row's masks by its position in the batch, as one pass of
  ** the 200 rows does. The row sums are the same; their double sums in
  ** another order, and sgemm's rounding for other row counts: rel 1e-7 */
  if( !(fit = aesql_fit_new(&nn, &aa, &x, 256, 3, 0.0, 0.3)) ){
    CHECK("fit steps: fit with dropout", 0);
    goto done;
  }
  memcpy(nm.param, nn.param, sizeof(float)*nn.nParam);
  lf = aesql_fit_grad(fit, idx, 200, 4321);
  lm = aesql_net_grad_rows(&nm, wb, &x, idx, 200, 200, g, 0, 4321, 0)/(200.0*D);
  CHECK_NEAR("fit, dropout 0.3: a batch's loss over parts and threads = one pass's, "
             "same key (rel 1e-7)", lf, lm, 1e-7*lm);
  lm = aesql_net_grad_rows(&nm, wb, &x, idx, 200, 200, g, 0, 4322, 0)/(200.0*D);
  check_report(fabs(lf - lm)>1e-4*lm, "fit, dropout 0.3: another key, another loss "
               "(> 1e-4 apart)", "%.9g and %.9g", lf, lm);
  /* the loss-only pass has no dropout */
  lm = aesql_net_sse_rows(&nm, w, &x, idx, N)/((double)N*D);
  CHECK_NEAR("fit, dropout 0.3: fit_loss has no dropout (= sse_rows, rel 1e-7, as above)",
             aesql_fit_loss(fit, idx, N), lm, 1e-7*lm);
done:
  aesql_fit_free(fit);
  aesql_net_work_free(w); aesql_net_work_free(wb);
  aesql_adam_free(&aa); aesql_adam_free(&am);
  aesql_nn_data_free(&x);
  aesql_net_free(&nn); aesql_net_free(&nm);
  free(u); free(g); free(p0);
}

/* aesql_fit_new with each of its allocations failing in turn: NULL,
** nothing left allocated; then a fit that trains. */
static void test_fit_nomem(void){
  aesql_net nn;
  aesql_adam a;
  aesql_nn_data x;
  unsigned char px[40*20];
  uint32_t idx[40];
  long k, live;
  int ok = 1, done = 0, nFail = 0, i;
  for(i=0; i<(int)sizeof(px); i++) px[i] = (unsigned char)(i*7 % 5 ? 0 : i);
  for(i=0; i<40; i++) idx[i] = (uint32_t)i;
  memset(&a, 0, sizeof(a));
  aesql_nn_data_init(&x, 20, 40, px, 0);
  if( aesql_net_init_dhd(&nn, 20, 16)
   || aesql_adam_init(&a, nn.nParam, 0.01f, 0.9f, 0.999f, 1e-7f) ){
    CHECK("fit nomem: init", 0);
    return;
  }
  for(k=0; !done && k<200; k++){
    aesql_fit *f;
    live = fm.nLive;
    fm_fail_in(k);
    f = aesql_fit_new(&nn, &a, &x, 200, 3, 0.01, 0.2);
    fm_never();
    if( f ){
      double l = aesql_fit_grad(f, idx, 40, 1);
      aesql_fit_step(f);
      done = 1;
      /* 200 rows: 4 parts, so the 3 threads asked for */
      ok &= isfinite(l) && aesql_fit_threads(f)==3;
      aesql_fit_free(f);
    }else{
      nFail++;
    }
    ok &= fm.nLive==live;
  }
  check_report(ok && done && nFail>=5, "fit: NULL while any of its allocations fails, "
               "nothing left; then it trains", "ok %d, done %d after %d failures", ok, done,
               nFail);
  aesql_adam_free(&a);
  aesql_net_free(&nn);
}

/* A batch whose gradient no step used: the next batch's passes write over
** it rather than add to it, and a part of it that the next batch does not
** have plays no part in the step. Two fits from the same weights:
** A takes a batch of 200 rows (2 parts) and then one of 29 (1 part) before
** its step, B only the second; then both take a batch of 200 and step:
** the same parameters, bit for bit. */
static void test_fit_unstepped(void){
  static const int enc[2] = {24, 12};
  enum { N = 300, D = 40 };
  aesql_rng r;
  aesql_net na, nb;
  aesql_adam aa, ab;
  aesql_nn_data x;
  aesql_fit *fa = 0, *fb = 0;
  unsigned char *u;
  uint32_t idx[N];
  int i, width[5], ok;
  static const int act[4] = {AESQL_ACT_ELU, AESQL_ACT_TANH, AESQL_ACT_RELU,
                             AESQL_ACT_LINEAR};
  memset(&na, 0, sizeof(na)); memset(&nb, 0, sizeof(nb));
  memset(&aa, 0, sizeof(aa)); memset(&ab, 0, sizeof(ab));
  memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 77);
  u = make_bytes(&r, N, D, 0.4);
  aesql_net_mirror(D, enc, 2, width);
  if( !u || aesql_net_init(&na, 4, width, act, 1) || aesql_net_init(&nb, 4, width, act, 1)
   || aesql_adam_init(&aa, na.nParam, 0.01f, 0.9f, 0.999f, 1e-7f)
   || aesql_adam_init(&ab, na.nParam, 0.01f, 0.9f, 0.999f, 1e-7f) ){
    CHECK("fit unstepped: init", 0);
    goto done;
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
  aesql_net_glorot(&na, &r);
  memcpy(nb.param, na.param, sizeof(float)*na.nParam);
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);
  fa = aesql_fit_new(&na, &aa, &x, 256, 2, 1e-3, 0.0);
  fb = aesql_fit_new(&nb, &ab, &x, 256, 2, 1e-3, 0.0);
  if( !fa || !fb ){ CHECK("fit unstepped: fit", 0); goto done; }
  aesql_fit_grad(fa, idx + 50, 200, 0);
  aesql_fit_grad(fa, idx, 29, 0);
  aesql_fit_step(fa);
  aesql_fit_grad(fb, idx, 29, 0);
  aesql_fit_step(fb);
  ok = memcmp(na.param, nb.param, sizeof(float)*na.nParam)==0;
  aesql_fit_grad(fa, idx + 100, 200, 0);
  aesql_fit_step(fa);
  aesql_fit_grad(fb, idx + 100, 200, 0);
  aesql_fit_step(fb);
  CHECK("fit: a batch no step used is written over by the next one, its part "
        "the next one lacks left out of the step: the same bits as without it",
        ok && memcmp(na.param, nb.param, sizeof(float)*na.nParam)==0
        && memcmp(aa.m, ab.m, sizeof(float)*na.nParam)==0
        && memcmp(aa.v, ab.v, sizeof(float)*na.nParam)==0);
done:
  aesql_fit_free(fa); aesql_fit_free(fb);
  aesql_nn_data_free(&x);
  aesql_adam_free(&aa); aesql_adam_free(&ab);
  aesql_net_free(&na); aesql_net_free(&nb);
  free(u);
}

/* A stack whose first layer goes by pixel (80-48-8-48-80, indexed bytes):
** the fit leaves that layer's weight gradient to the step, which sums the
** parts' a block at a time (ae_fit.c, defer). Against the same steps
** spelled out (each part's full gradient, pass by pass, 2 l2 W added to
** part 0's, Adam over all): the same parameters and moments bit for bit,
** on 1, 2 and 3 threads, with dropout and l2, over three steps; batches
** of 256 rows (2 parts of one pass: deferred) and of 1100 (8 parts of two
** passes: those write their gradients as before). */
static void test_fit_defer(void){
  static const int enc[2] = {48, 8};
  static const int act[4] = {AESQL_ACT_RELU, AESQL_ACT_ELU, AESQL_ACT_RELU,
                             AESQL_ACT_LINEAR};
  static const int batches[2] = {256, 1100};
  enum { N = 1400, D = 80 };
  const double l2 = 1e-3, pDrop = 0.2;
  aesql_rng r;
  aesql_net n0, nf;
  aesql_adam a0, af;
  aesql_nn_data x;
  aesql_net_work *w = 0;
  unsigned char *u;
  float *g[AESQL_FIT_MAX_PARTS] = {0};
  uint32_t idx[N];
  int i, t, s, l, ib, width[5], nBad = 0, ok = 1;
  char z[64] = "";
  memset(&n0, 0, sizeof(n0)); memset(&nf, 0, sizeof(nf));
  memset(&a0, 0, sizeof(a0)); memset(&af, 0, sizeof(af));
  memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 91);
  u = make_bytes(&r, N, D, 0.3);
  aesql_net_mirror(D, enc, 2, width);
  if( !u || aesql_net_init(&n0, 4, width, act, 1) || aesql_net_init(&nf, 4, width, act, 1) ){
    CHECK("fit defer: init", 0);
    goto done;
  }
  for(i=0; i<AESQL_FIT_MAX_PARTS; i++) ok &= (g[i] = malloc(sizeof(float)*n0.nParam))!=0;
  if( !ok || !(w = aesql_net_work_new(&n0, aesql_fit_pass_rows(&n0), pDrop)) ){
    CHECK("fit defer: alloc", 0);
    goto done;
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
  CHECK("fit defer: the stack's first layer goes by pixel",
        aesql_net_first_by_pixel(&n0));
  CHECK("fit defer: 256 rows are 2 parts of one pass, 1100 are 8 of two",
        aesql_fit_parts(&n0, 256)==2 && aesql_fit_parts(&n0, 1100)==8
        && aesql_fit_pass_rows(&n0)==128);
  aesql_net_glorot(&n0, &r);
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);
  for(ib=0; ib<2; ib++) for(t=1; t<=3; t++){
    const int B = batches[ib], nPart = aesql_fit_parts(&n0, B);
    const int nPassRows = aesql_fit_pass_rows(&n0);
    aesql_fit *fit;
    float *p0 = malloc(sizeof(float)*n0.nParam);
    if( !p0 ) break;
    memcpy(p0, n0.param, sizeof(float)*n0.nParam);
    memcpy(nf.param, p0, sizeof(float)*n0.nParam);
    aesql_adam_init(&a0, n0.nParam, 0.01f, 0.9f, 0.999f, 1e-7f);
    aesql_adam_init(&af, n0.nParam, 0.01f, 0.9f, 0.999f, 1e-7f);
    fit = aesql_fit_new(&nf, &af, &x, B, t, l2, pDrop);
    if( !fit ){ CHECK("fit defer: fit", 0); free(p0); break; }
    for(s=0; s<3; s++){
      const uint32_t *bi = idx + s*100;
      const uint64_t key = 1000 + s;
      int part;
      aesql_fit_grad(fit, bi, B, key);
      aesql_fit_step(fit);
      /* the parts and passes as ae_fit.c cuts them */
      for(part=0; part<nPart; part++){
        const int lo = B*part/nPart, hi = B*(part+1)/nPart;
        const int nPass = (hi - lo + nPassRows - 1)/nPassRows;
        int q;
        for(q=0; q<nPass; q++){
          const int a = (hi - lo)*q/nPass, e = (hi - lo)*(q+1)/nPass;
          aesql_net_grad_rows(&n0, w, &x, bi + lo + a, e - a, B, g[part], q>0,
                              key, lo + a);
        }
      }
      for(l=0; l<n0.nLayer; l++){
        const aesql_layer *L = &n0.layer[l];
        const float c = 2.0f*(float)l2;
        size_t q;
        for(q=0; q<(size_t)L->nIn*L->nOut; q++) g[0][L->off + q] += c*L->w[q];
      }
      aesql_adam_update(&a0, aesql_adam_next(&a0), n0.param,
                        (const float*const*)g, nPart, 0, n0.nParam);
    }
    if( memcmp(n0.param, nf.param, sizeof(float)*n0.nParam)!=0
     || memcmp(a0.m, af.m, sizeof(float)*n0.nParam)!=0
     || memcmp(a0.v, af.v, sizeof(float)*n0.nParam)!=0 ){
      if( nBad++==0 ) snprintf(z, sizeof(z), "first: batch %d, %d threads", B, t);
    }
    aesql_fit_free(fit);
    aesql_adam_free(&a0); aesql_adam_free(&af);
    memcpy(n0.param, p0, sizeof(float)*n0.nParam);
    free(p0);
  }
  check_report(nBad==0, "fit, 80-48-8-48-80, first layer's gradient summed by the "
               "step: the steps spelled out, bit for bit, batches of 256 and 1100, "
               "on 1, 2 and 3 threads (dropout 0.2, l2 1e-3, 3 steps)",
               "%d of 6 differ; %s", nBad, z);
done:
  aesql_net_work_free(w);
  for(i=0; i<AESQL_FIT_MAX_PARTS; i++) free(g[i]);
  aesql_nn_data_free(&x);
  aesql_net_free(&n0); aesql_net_free(&nf);
  free(u);
}

/* The last layer by its Gram matrix (ae_net.h, ae_fit.c gram): a stack
** over indexed bytes, 200-64-16-64-200, batches of 256 rows (2 parts), the
** Gram way turned on. (1) On 1, 2 and 3 threads, with dropout 0.2 and l2
** 1e-3 over three steps, the same parameters and moments bit for bit. (2)
** Its first step's gradient, read from Adam's first moment (m = (1 - b1)
** g), against the same step taken the direct way (the Gram way off):
** every parameter within 2e-6 of its layer's largest |g| (seen: 2e-7); and the batch
** losses within 1e-6 relative. (3) The cost rule: on for this stack, and
** for MNIST's shape, 784-128-32-128-784 at 150 non-zero pixels a row and
** batches of 256; off at batches of 128. */
static void test_fit_gram(void){
  static const int enc[2] = {64, 16};
  static const int act[4] = {AESQL_ACT_RELU, AESQL_ACT_ELU, AESQL_ACT_RELU,
                             AESQL_ACT_LINEAR};
  enum { N = 900, D = 200, B = 256 };
  aesql_rng r;
  aesql_net n0, nf[4];
  aesql_adam af[4];
  aesql_nn_data x;
  unsigned char *u;
  uint32_t idx[N];
  double loss[4] = {0}, worst = 0.0;
  int i, t, s, l, width[5], nBad = 0, gramOn = 1, gramDefault = -1;
  char z[80] = "";
  memset(&n0, 0, sizeof(n0)); memset(nf, 0, sizeof(nf));
  memset(af, 0, sizeof(af)); memset(&x, 0, sizeof(x));
  aesql_rng_seed(&r, 17);
  u = make_bytes(&r, N, D, 0.2);
  aesql_net_mirror(D, enc, 2, width);
  if( !u || aesql_net_init(&n0, 4, width, act, 1) ){
    CHECK("fit gram: init", 0);
    goto done;
  }
  for(t=0; t<4; t++){
    if( aesql_net_init(&nf[t], 4, width, act, 1) ){ CHECK("fit gram: init", 0); goto done; }
  }
  aesql_nn_data_init(&x, D, N, u, 0);
  aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
  aesql_net_glorot(&n0, &r);
  for(l=0; l<n0.nLayer; l++){        /* biases too, for the terms in b */
    for(i=0; i<n0.layer[l].nOut; i++){
      n0.layer[l].b[i] = (float)(0.2*aesql_rng_uniform(&r) - 0.1);
    }
  }
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);
  /* nf[0..2]: the Gram way on 1, 2, 3 threads; nf[3]: the direct way */
  for(t=0; t<4; t++){
    aesql_fit *fit;
    memcpy(nf[t].param, n0.param, sizeof(float)*n0.nParam);
    aesql_adam_init(&af[t], n0.nParam, 0.01f, 0.9f, 0.999f, 1e-7f);
    fit = aesql_fit_new(&nf[t], &af[t], &x, B, t<3 ? t+1 : 2, 1e-3, t<3 ? 0.2 : 0.0);
    if( !fit ){ CHECK("fit gram: fit", 0); goto done; }
    if( t==0 ) gramDefault = aesql_fit_gram(fit);
    aesql_fit_set_gram(fit, t<3);
    gramOn &= aesql_fit_gram(fit)==(t<3);
    if( t<3 ){
      for(s=0; s<3; s++){
        aesql_fit_grad(fit, idx + s*200, B, 77 + s);
        aesql_fit_step(fit);
      }
    }
    aesql_fit_free(fit);
  }
  CHECK("fit gram: on by the cost rule for this stack, and off when set so",
        gramOn && gramDefault==1);
  for(t=1; t<3; t++){
    if( memcmp(nf[0].param, nf[t].param, sizeof(float)*n0.nParam)!=0
     || memcmp(af[0].m, af[t].m, sizeof(float)*n0.nParam)!=0
     || memcmp(af[0].v, af[t].v, sizeof(float)*n0.nParam)!=0 ) nBad++;
  }
  check_report(nBad==0, "fit gram, 200-64-16-64-200: the same parameters and "
               "moments bit for bit on 1, 2 and 3 threads (dropout 0.2, l2 1e-3, "
               "3 steps)", "%d of 2 differ", nBad);
  /* (2) one step each way, no dropout, from the same weights */
  for(t=0; t<2; t++){
    aesql_fit *fit;
    memcpy(nf[t].param, n0.param, sizeof(float)*n0.nParam);
    aesql_adam_free(&af[t]);
    aesql_adam_init(&af[t], n0.nParam, 0.01f, 0.9f, 0.999f, 1e-7f);
    fit = aesql_fit_new(&nf[t], &af[t], &x, B, 2, 1e-3, 0.0);
    if( !fit ){ CHECK("fit gram: fit", 0); goto done; }
    aesql_fit_set_gram(fit, t==0);
    loss[t] = aesql_fit_grad(fit, idx, B, 0);
    aesql_fit_step(fit);
    aesql_fit_free(fit);
  }
  for(l=0; l<n0.nLayer; l++){
    const aesql_layer *L = &n0.layer[l];
    const size_t a = L->off, e = L->off + (size_t)L->nIn*L->nOut + L->nOut;
    double big = 0.0, err = 0.0;
    size_t q;
    for(q=a; q<e; q++) if( fabs(af[1].m[q])>big ) big = fabs(af[1].m[q]);
    for(q=a; q<e; q++){
      const double dq = fabs((double)af[0].m[q] - af[1].m[q]);
      if( dq>err ) err = dq;
    }
    if( big>0.0 && err/big>worst ){
      worst = err/big;
      snprintf(z, sizeof(z), "layer %d: %.3g of its largest |g|", l, worst);
    }
  }
  check_report(worst<=2e-6 && worst>0.0, "fit gram, 200-64-16-64-200: the first "
               "step's gradient the Gram way, within 2e-6 of each layer's "
               "largest |g| of the direct way's (and not the same bits: it "
               "took the other way)", "%s", z[0] ? z : "no difference at all");
  CHECK_NEAR("fit gram: the batch's loss, relative", loss[0]/loss[1], 1.0, 1e-6);
  /* the held-out loss (aesql_fit_loss) over all 900 rows, 4 parts: the
  ** Gram way on 1 and 3 threads (the same bits), against the direct way */
  {
    double vl[3] = {0, 0, 0};
    int ok = 1;
    for(t=0; t<3; t++){
      aesql_fit *fit = aesql_fit_new(&nf[0], &af[0], &x, B, t==1 ? 3 : 1,
                                     0.0, 0.0);
      if( !fit ){ ok = 0; break; }
      aesql_fit_set_gram(fit, t<2);
      ok &= aesql_fit_gram(fit)==(t<2);
      vl[t] = aesql_fit_loss(fit, idx, N);
      aesql_fit_free(fit);
    }
    check_report(ok && vl[0]==vl[1], "fit gram: the held-out loss the Gram "
                 "way, the same bits on 1 and 3 threads", "%.17g against %.17g",
                 vl[0], vl[1]);
    check_report(ok && fabs(vl[0]/vl[2] - 1.0)<=1e-6 && vl[0]!=vl[2],
                 "fit gram: the held-out loss the Gram way within 1e-6 "
                 "(relative) of the direct way's, and not its bits",
                 "%.17g against %.17g", vl[0], vl[2]);
  }
  /* a weight gone NaN gives a NaN loss, for the loop's NaN stop, not a
  ** loss clamped to 0; the held-out loss too */
  {
    aesql_fit *fit = aesql_fit_new(&nf[0], &af[0], &x, B, 2, 0.0, 0.0);
    double bad = 0.0, badVal = 0.0;
    if( fit ){
      const aesql_layer *Lo = &nf[0].layer[nf[0].nLayer-1];
      aesql_fit_set_gram(fit, 1);
      Lo->w[3] = NAN;
      bad = aesql_fit_grad(fit, idx, B, 0);
      badVal = aesql_fit_loss(fit, idx, N);
      aesql_fit_free(fit);
    }
    CHECK("fit gram: a NaN weight in the last layer gives a NaN loss, and a "
          "NaN held-out loss", fit && isnan(bad) && isnan(badVal));
  }
  /* (3) the cost rule at MNIST's shape */
  {
    static const int enc2[2] = {128, 32};
    static const int act2[4] = {AESQL_ACT_RELU, AESQL_ACT_RELU,
                                AESQL_ACT_RELU, AESQL_ACT_LINEAR};
    enum { NM = 600, DM = 784 };
    aesql_net nm;
    aesql_adam am;
    aesql_nn_data xm;
    unsigned char *um = make_bytes(&r, NM, DM, 150.0/784);
    int wm[5], on256 = -1, on128 = -1;
    memset(&nm, 0, sizeof(nm)); memset(&am, 0, sizeof(am));
    memset(&xm, 0, sizeof(xm));
    aesql_net_mirror(DM, enc2, 2, wm);
    if( um && aesql_net_init(&nm, 4, wm, act2, 1)==0
     && aesql_adam_init(&am, nm.nParam, 0.001f, 0.9f, 0.999f, 1e-7f)==0 ){
      aesql_fit *fit;
      aesql_nn_data_init(&xm, DM, NM, um, 0);
      aesql_nn_data_index(&xm, AESQL_NN_SPARSE_ALWAYS);
      if( (fit = aesql_fit_new(&nm, &am, &xm, 256, 1, 0.0, 0.0))!=0 ){
        on256 = aesql_fit_gram(fit);
        aesql_fit_free(fit);
      }
      if( (fit = aesql_fit_new(&nm, &am, &xm, 128, 1, 0.0, 0.0))!=0 ){
        on128 = aesql_fit_gram(fit);
        aesql_fit_free(fit);
      }
    }
    CHECK("fit gram: the cost rule, on at 784-128-32-128-784 and batches of "
          "256, off at 128", on256==1 && on128==0);
    aesql_nn_data_free(&xm);
    aesql_adam_free(&am);
    aesql_net_free(&nm);
    free(um);
  }
done:
  for(t=0; t<4; t++){ aesql_adam_free(&af[t]); aesql_net_free(&nf[t]); }
  aesql_nn_data_free(&x);
  aesql_net_free(&n0);
  free(u);
}

int main(void){
  const char *zWhy = 0;
  const int san = getenv("AESQL_SANITIZE")!=0;
  double t0 = check_now();
  aesql_nn_config_mem(fm_malloc, fm_free);
  if( aesql_blas_load(&zWhy) ){
    check_report(0, "blas: load OpenBLAS", "%s", zWhy);
    return check_done();
  }
  printf("# OpenBLAS core %s, %d threads\n", aesql_blas_core(), aesql_blas_threads());
  test_adam_hand();
  test_adam_pieces();
  test_torch();
  test_determinism();
  test_pool(san ? 1000 : 3000);
  test_fit_threads();
  test_fit_steps();
  test_fit_unstepped();
  test_fit_defer();
  test_fit_gram();
  test_fit_nomem();
  check_report(fm.nLive==0, "memory: every block the core allocated is freed",
               "%ld blocks left", fm.nLive);
  printf("# %.1f s\n", check_now() - t0);
  return check_done();
}
