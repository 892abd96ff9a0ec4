/*
** Tests of ext/core/ae_adam.c, Adam in its two modes (where epsilon goes):
** the modes' names and a bad mode refused; each step's lr_t and eps_t,
** bit for bit, against the formulas; AESQL_ADAM_TORCH against
** torch.optim.Adam's formula computed here in double, over several steps
** and with gradients from 1 down to 1e-9 (where the placement of epsilon
** decides the step); AESQL_ADAM_KERAS bit for bit against a float
** re-implementation of the formula it had before the modes existed;
** torch mode bit for bit against Keras' formula with epsilon replaced,
** step by step, by eps sqrt(1 - b2^t), the identity the mode rests on;
** and, in both modes, one whole step against the same step in pieces of
** every kind of size (lane tails, chunk edges), with the gradient in three
** parts, run from a pool of threads in whatever order it takes them;
** and the training loop's cfg.adam: a bad one refused, torch's another
** net than Keras' from the same seed.
**
**   make build/tests/test_adam && build/tests/test_adam
**
** Every tolerance is stated next to its check. u = 2^-24, float's unit
** roundoff.
*/
#include "../check.h"
#include "../../ext/core/ae_adam.h"
#include "../../ext/core/ae_pool.h"
#include "../../ext/core/ae_simd.h"
#include "../../ext/core/ae_loop.h"
#include "../../ext/core/ae_mem.h"

#define U_FLOAT 0x1.0p-24

/* 1061 parameters: two of ae_adam.c's chunks of 512 and 37 more, so that
** both the 16-lane loops' tails and a chunk's tail are run. */
#define NP 1061
#define NSTEP 12

/* Two sets of hyper-parameters: the tutorial's, and one where epsilon is
** large, so that it matters for every parameter. */
typedef struct adam_hp { float lr, b1, b2, eps; const char *zName; } adam_hp;
static const adam_hp aHp[] = {
  { 0.001f, 0.9f, 0.999f, 1e-7f, "lr 0.001, betas 0.9/0.999, eps 1e-7" },
  { 0.01f,  0.8f, 0.99f,  1e-4f, "lr 0.01, betas 0.8/0.99, eps 1e-4" },
};
#define NHP ((int)(sizeof(aHp)/sizeof(aHp[0])))

/* ---------------------------------------------------------------- */
/* data */

/* uniform in [0, 1) from (a, b): a hash, so that any step's gradient of
** any parameter is known without a sequence (splitmix64's finaliser). */
static double hash01(uint64_t a, uint64_t b){
  uint64_t z = a*0x9e3779b97f4a7c15ULL + b*0xbf58476d1ce4e5b9ULL + 0x94d049bb133111ebULL;
  z = (z ^ (z >> 30))*0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27))*0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11)*0x1.0p-53;
}

/* The scale of parameter i's gradients: 1 down to 1e-9, so that sqrt(v)
** is well above eps, near it, and far below it; 0 for a few (a pixel
** never lit: m = v = 0, and the parameter must not move). */
static double grad_scale(size_t i){
  static const double aScale[] = { 1, 1e-2, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9 };
  if( i%97==5 ) return 0;
  return aScale[i%8]*(hash01(i, 0)<0.5 ? -1 : 1);
}

/* G[t][i], the gradient of step t+1. With fixed signs (the first test):
** scale times 0.5..1.5, so that m and v add terms of one sign and their
** float rounding errors stay small relative to them (the tolerance below
** rests on that). Otherwise (the pieces): any sign. */
static void make_grads(float (*G)[NP], int fixedSign){
  int t;
  size_t i;
  for(t=0; t<NSTEP; t++){
    for(i=0; i<NP; i++){
      double r = hash01(i, (uint64_t)t+1);
      G[t][i] = (float)(fixedSign ? grad_scale(i)*(0.5 + r)
                                  : fabs(grad_scale(i))*(2*r - 1));
    }
  }
}

static void make_params(float *p){
  size_t i;
  for(i=0; i<NP; i++) p[i] = (float)(hash01(i, 1000) - 0.5);
}

static int same_array(const float *a, const float *b, size_t n){
  return memcmp(a, b, n*sizeof(float))==0;
}

/* The ISA's clones of ae_adam.c's kernel (ae_simd.h) may fuse a multiply
** and an add on AVX-512, and whether the compiler fuses the same ones in
** this file's loops is its own choice: there a "bit for bit" check
** allows 4 u of the value instead. On every other x86-64 and elsewhere it
** is exact. */
static int fma_may_differ(void){
#if defined(__x86_64__) && defined(__GNUC__)
  return __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}
static int same_or_fused(const float *a, const float *b, size_t n){
  size_t i;
  if( same_array(a, b, n) ) return 1;
  if( !fma_may_differ() ) return 0;
  for(i=0; i<n; i++){
    double d = fabs((double)a[i] - b[i]);
    if( !(d <= 4*U_FLOAT*fabs((double)b[i])) ) return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------- */
/* 1. names, and a bad mode */

static void test_names(void){
  aesql_adam a;
  CHECK("keras is mode 0, the default of a zeroed configuration", AESQL_ADAM_KERAS==0);
  CHECK("name of keras", aesql_adam_mode_name(AESQL_ADAM_KERAS)
                         && strcmp(aesql_adam_mode_name(AESQL_ADAM_KERAS), "keras")==0);
  CHECK("name of torch", aesql_adam_mode_name(AESQL_ADAM_TORCH)
                         && strcmp(aesql_adam_mode_name(AESQL_ADAM_TORCH), "torch")==0);
  CHECK("no name past the last", aesql_adam_mode_name(AESQL_ADAM_COUNT)==0);
  CHECK("no name below 0", aesql_adam_mode_name(-1)==0);
  CHECK("parse keras", aesql_adam_mode_parse("keras")==AESQL_ADAM_KERAS);
  CHECK("parse torch", aesql_adam_mode_parse("torch")==AESQL_ADAM_TORCH);
  CHECK("parse is exact", aesql_adam_mode_parse("Torch")==-1
                          && aesql_adam_mode_parse("torch ")==-1
                          && aesql_adam_mode_parse("")==-1);
  CHECK("parse NULL", aesql_adam_mode_parse(0)==-1);
  if( aesql_adam_init(&a, 10, 0.001f, 0.9f, 0.999f, 1e-7f)==0 ){
    CHECK("init: keras mode, and eps_t is eps before any step",
          a.mode==AESQL_ADAM_KERAS && a.eps_t==1e-7f && a.t==0);
    CHECK("set_mode torch", aesql_adam_set_mode(&a, AESQL_ADAM_TORCH)==0
                            && a.mode==AESQL_ADAM_TORCH);
    CHECK("set_mode refuses 2, the mode unchanged",
          aesql_adam_set_mode(&a, AESQL_ADAM_COUNT)!=0 && a.mode==AESQL_ADAM_TORCH);
    CHECK("set_mode refuses -1, the mode unchanged",
          aesql_adam_set_mode(&a, -1)!=0 && a.mode==AESQL_ADAM_TORCH);
    CHECK("set_mode keras", aesql_adam_set_mode(&a, AESQL_ADAM_KERAS)==0
                            && a.mode==AESQL_ADAM_KERAS);
  }else{
    CHECK("init", 0);
  }
  aesql_adam_free(&a);
}

/* ---------------------------------------------------------------- */
/* 2. lr_t and eps_t of each step */

/* Before the modes, aesql_adam_next() returned this, and the kernel
** added a->eps; torch's eps_t is eps sqrt(1 - b2^t), in double, rounded
** once. Both from the optimizer's own float constants. */
static float lr_t_formula(const adam_hp *h, long t){
  return (float)(h->lr*(sqrt(1.0 - pow(h->b2, (double)t))/(1.0 - pow(h->b1, (double)t))));
}
static float eps_t_torch(const adam_hp *h, long t){
  return (float)(h->eps*sqrt(1.0 - pow(h->b2, (double)t)));
}

static void test_step_constants(void){
  int k, mode;
  for(k=0; k<NHP; k++){
    const adam_hp *h = &aHp[k];
    for(mode=0; mode<AESQL_ADAM_COUNT; mode++){
      aesql_adam a;
      long t;
      int okLr = 1, okEps = 1;
      char zName[160];
      if( aesql_adam_init(&a, 4, h->lr, h->b1, h->b2, h->eps)
       || aesql_adam_set_mode(&a, mode) ){
        CHECK("init", 0);
        continue;
      }
      /* past 1000 steps too, where sqrt(1 - b2^t) nears 1 */
      for(t=1; t<=3000; t++){
        float lr_t = aesql_adam_next(&a);
        float want = mode==AESQL_ADAM_TORCH ? eps_t_torch(h, t) : h->eps;
        if( memcmp(&lr_t, &(float){lr_t_formula(h, t)}, sizeof(float))!=0 ) okLr = 0;
        if( memcmp(&a.eps_t, &want, sizeof(float))!=0 ) okEps = 0;
      }
      snprintf(zName, sizeof(zName), "%s, %s: lr_t of steps 1..3000, bit for bit "
               "the formula of before the modes", aesql_adam_mode_name(mode), h->zName);
      CHECK(zName, okLr);
      snprintf(zName, sizeof(zName), "%s, %s: eps_t of steps 1..3000, bit for bit %s",
               aesql_adam_mode_name(mode), h->zName,
               mode==AESQL_ADAM_TORCH ? "(float)(eps sqrt(1 - b2^t))" : "eps");
      CHECK(zName, okEps);
      aesql_adam_free(&a);
    }
  }
}

/* ---------------------------------------------------------------- */
/* 3. torch mode against torch.optim.Adam's formula, in double */

/* torch.optim.Adam (torch/optim/adam.py, _single_tensor_adam), in
** double, with the optimizer's float constants (the rounding of 0.999 to
** float is the optimizer's input, not its error):
**   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
**   m_hat = m/(1 - b1^t);   v_hat = v/(1 - b2^t)
**   p -= lr m_hat/(sqrt(v_hat) + eps)
** and beside it Keras' formula, to show that the two differ, here, by
** far more than the tolerance.
**
** The tolerance, per parameter, adds up over the steps what float
** rounding can do to one step: the subtraction from p rounds once (u |p|);
** the step itself, lr_t m/(sqrt(v) + eps_t), carries the errors of m and
** v, which grow by at most about 2 u a step (two roundings each, of
** terms of one sign: the gradients keep theirs), halved by the square
** root, and about ten more roundings (g^2, the products by 1 - b, lr_t,
** eps_t, sqrt, the sum, the product and the quotient). (16 + 4 t) u of
** the step covers all of it with room: a factor of about 2. */
static void test_torch_formula(void){
  static float G[NSTEP][NP];
  int k;
  make_grads(G, 1);
  for(k=0; k<NHP; k++){
    const adam_hp *h = &aHp[k];
    aesql_adam a;
    float p[NP], p0[NP];
    double pt[NP], pk[NP], m[NP], v[NP], mk[NP], vk[NP], tol[NP];
    double worst = 0, apart = INFINITY, b1 = h->b1, b2 = h->b2;
    size_t i, iWorst = 0;
    int t, zeroStill = 1;
    char zName[200];
    make_params(p);
    memcpy(p0, p, sizeof(p));
    for(i=0; i<NP; i++){
      pt[i] = pk[i] = p[i];
      m[i] = v[i] = mk[i] = vk[i] = tol[i] = 0;
    }
    if( aesql_adam_init(&a, NP, h->lr, h->b1, h->b2, h->eps)
     || aesql_adam_set_mode(&a, AESQL_ADAM_TORCH) ){
      CHECK("init", 0);
      continue;
    }
    for(t=1; t<=NSTEP; t++){
      double c1 = 1.0 - pow(b1, t), c2 = 1.0 - pow(b2, t);
      aesql_adam_step(&a, p, G[t-1]);
      for(i=0; i<NP; i++){
        double g = G[t-1][i], dt, dk;
        m[i] = b1*m[i] + (1 - b1)*g;
        v[i] = b2*v[i] + (1 - b2)*g*g;
        dt = m[i] == 0 ? 0 : h->lr*(m[i]/c1)/(sqrt(v[i]/c2) + h->eps);
        pt[i] -= dt;
        tol[i] += U_FLOAT*fabs(pt[i]) + (16 + 4*t)*U_FLOAT*fabs(dt);
        /* Keras: lr_t m/(sqrt(v) + eps) */
        mk[i] = b1*mk[i] + (1 - b1)*g;
        vk[i] = b2*vk[i] + (1 - b2)*g*g;
        dk = mk[i] == 0 ? 0 : h->lr*sqrt(c2)/c1*mk[i]/(sqrt(vk[i]) + h->eps);
        pk[i] -= dk;
      }
    }
    for(i=0; i<NP; i++){
      double e = fabs((double)p[i] - pt[i]);
      if( grad_scale(i)==0 ){
        if( memcmp(&p[i], &p0[i], sizeof(float))!=0 ) zeroStill = 0;
        continue;
      }
      if( e/tol[i] > worst ){ worst = e/tol[i]; iWorst = i; }
      /* torch's and Keras' formulas apart, in tolerances, where eps is
      ** not negligible (|g| <= 100 eps) and the steps not so small that
      ** the rounding of p hides them (|g| >= eps/100) */
      if( fabs(grad_scale(i)) <= 100*h->eps && fabs(grad_scale(i)) >= h->eps/100 ){
        double s = fabs(pt[i] - pk[i])/tol[i];
        if( s<apart ) apart = s;
      }
    }
    printf("# torch mode, %s: %d steps, worst error %.3f of the tolerance "
           "(parameter %zu, gradient scale %g); torch's and Keras' formulas at "
           "least %.3g tolerances apart where eps/100 <= |g| <= 100 eps\n",
           h->zName, NSTEP, worst, iWorst, grad_scale(iWorst), apart);
    snprintf(zName, sizeof(zName), "torch mode, %s: %d steps within the "
             "tolerance of torch.optim.Adam's formula in double", h->zName, NSTEP);
    check_report(worst<=1.0, zName, "worst %.3f of the tolerance at parameter %zu "
                 "(got %.9g, want %.9g)", worst, iWorst, p[iWorst], pt[iWorst]);
    snprintf(zName, sizeof(zName), "torch mode, %s: a parameter whose gradient is 0 "
             "does not move", h->zName);
    CHECK(zName, zeroStill);
    snprintf(zName, sizeof(zName), "%s: the test tells the formulas apart "
             "(Keras' at least 100 tolerances off where eps/100 <= |g| <= 100 eps)", h->zName);
    check_report(apart>=100, zName, "only %.3g tolerances apart", apart);
    aesql_adam_free(&a);
  }
}

/* ---------------------------------------------------------------- */
/* 4. keras mode as before; torch mode as Keras' with eps_t */

/* Keras' Adam as ae_adam.c computed it before the modes (with eps as an
** argument, so that it serves both checks): the same operations in the
** same order, in float, compiled for the same instruction sets. */
NN_CLONES
static void keras_before(float *p, float *m, float *v, const float *g, size_t n,
                         float lr_t, float c1, float c2, float eps){
  size_t i;
  for(i=0; i<n; i++){
    float gi = g[i];
    float mi = m[i] + (gi - m[i])*c1;
    float vi = v[i] + (gi*gi - v[i])*c2;
    m[i] = mi;
    v[i] = vi;
    p[i] -= mi*lr_t/(sqrtf(vi) + eps);
  }
}

static void test_keras_unchanged(void){
  static float G[NSTEP][NP];
  int k, mode;
  make_grads(G, 0);
  for(k=0; k<NHP; k++){
    const adam_hp *h = &aHp[k];
    for(mode=0; mode<AESQL_ADAM_COUNT; mode++){
      aesql_adam a;
      float p[NP], q[NP], m[NP], v[NP];
      int t, ok = 1, tBad = 0;
      char zName[200];
      make_params(p);
      memcpy(q, p, sizeof(p));
      memset(m, 0, sizeof(m));
      memset(v, 0, sizeof(v));
      if( aesql_adam_init(&a, NP, h->lr, h->b1, h->b2, h->eps)
       || aesql_adam_set_mode(&a, mode) ){
        CHECK("init", 0);
        continue;
      }
      for(t=1; t<=NSTEP; t++){
        float eps = mode==AESQL_ADAM_TORCH ? eps_t_torch(h, t) : h->eps;
        aesql_adam_step(&a, p, G[t-1]);
        keras_before(q, m, v, G[t-1], NP, lr_t_formula(h, t), 1.0f - h->b1,
                     1.0f - h->b2, eps);
        if( ok && !(same_or_fused(p, q, NP) && same_or_fused(a.m, m, NP)
                    && same_or_fused(a.v, v, NP)) ){
          ok = 0;
          tBad = t;
        }
      }
      if( mode==AESQL_ADAM_KERAS ){
        snprintf(zName, sizeof(zName), "keras mode, %s: %d steps bit for bit "
                 "as before the modes (p, m, v)", h->zName, NSTEP);
      }else{
        snprintf(zName, sizeof(zName), "torch mode, %s: %d steps bit for bit Keras' "
                 "formula with eps sqrt(1 - b2^t) for eps (p, m, v)", h->zName, NSTEP);
      }
      check_report(ok, zName, "first differs at step %d", tBad);
      aesql_adam_free(&a);
    }
  }
}

/* ---------------------------------------------------------------- */
/* 5. pieces and threads */

/* The pieces, uneven: 0, 1, 15 and 17 parameters (lane tails), across a
** chunk's edge (512), a chunk and a half, and the rest. */
static const size_t aCut[] = { 0, 1, 1, 16, 33, 500, 513, 1024, 1060, NP };
#define NPIECE ((int)(sizeof(aCut)/sizeof(aCut[0])) - 1)

typedef struct piece_run {
  const aesql_adam *a;
  float lr_t, *p;
  const float *const *g;
} piece_run;

static void piece_task(void *arg, int j, int iThread){
  piece_run *r = arg;
  (void)iThread;
  aesql_adam_update(r->a, r->lr_t, r->p, r->g, 3, aCut[j], aCut[j+1]);
}

static void test_pieces(void){
  static float G[NSTEP][NP], H[NSTEP][NP], J[NSTEP][NP], S[NSTEP][NP];
  aesql_pool *pool = aesql_pool_new(3);
  int k, mode, t;
  size_t i;
  make_grads(G, 0);
  /* three parts of each step's gradient, and their sum added as
  ** aesql_adam_update adds them: (g0 + g1) + g2 */
  for(t=0; t<NSTEP; t++){
    for(i=0; i<NP; i++){
      H[t][i] = (float)(hash01(i, 5000 + (uint64_t)t) - 0.5)*1e-3f;
      J[t][i] = G[t][i]*0.25f;
      S[t][i] = (G[t][i] + H[t][i]) + J[t][i];
    }
  }
  if( !pool ){ CHECK("pool", 0); return; }
  printf("# pieces: %d units on a pool of %d threads\n", NPIECE, aesql_pool_threads(pool));
  for(k=0; k<NHP; k++){
    const adam_hp *h = &aHp[k];
    for(mode=0; mode<AESQL_ADAM_COUNT; mode++){
      aesql_adam whole, cut;
      float p[NP], q[NP];
      int okP = 1, okRange = 1;
      char zName[200];
      make_params(p);
      memcpy(q, p, sizeof(p));
      if( aesql_adam_init(&whole, NP, h->lr, h->b1, h->b2, h->eps)
       || aesql_adam_set_mode(&whole, mode) ){
        CHECK("init", 0);
        continue;
      }
      if( aesql_adam_init(&cut, NP, h->lr, h->b1, h->b2, h->eps)
       || aesql_adam_set_mode(&cut, mode) ){
        CHECK("init", 0);
        aesql_adam_free(&whole);
        continue;
      }
      for(t=0; t<NSTEP; t++){
        const float *g3[3];
        piece_run r;
        g3[0] = G[t]; g3[1] = H[t]; g3[2] = J[t];
        aesql_adam_step(&whole, p, S[t]);
        r.a = &cut;
        r.lr_t = aesql_adam_next(&cut);
        r.p = q;
        r.g = g3;
        aesql_pool_run(pool, NPIECE, piece_task, &r);
        /* out of range and empty pieces change nothing */
        aesql_adam_update(&cut, r.lr_t, q, g3, 3, NP, NP + 100);
        aesql_adam_update(&cut, r.lr_t, q, g3, 3, 7, 7);
        aesql_adam_update(&cut, r.lr_t, q, g3, 0, 0, NP);
        if( !same_array(p, q, NP) || !same_array(whole.m, cut.m, NP)
         || !same_array(whole.v, cut.v, NP) ) okP = 0;
      }
      /* i1 past n is cut to n: one more step as [0, n) and [0, n + 100) */
      {
        const float *g1 = S[0];
        float lr_t = aesql_adam_next(&whole);
        aesql_adam_update(&whole, lr_t, p, &g1, 1, 0, NP);
        lr_t = aesql_adam_next(&cut);
        aesql_adam_update(&cut, lr_t, q, &g1, 1, 0, NP + 100);
        okRange = same_array(p, q, NP);
      }
      snprintf(zName, sizeof(zName), "%s, %s: %d steps in %d pieces on threads, "
               "the gradient in 3 parts, bit for bit the whole step",
               aesql_adam_mode_name(mode), h->zName, NSTEP, NPIECE);
      CHECK(zName, okP);
      snprintf(zName, sizeof(zName), "%s, %s: an update past n stops at n",
               aesql_adam_mode_name(mode), h->zName);
      CHECK(zName, okRange);
      aesql_adam_free(&whole);
      aesql_adam_free(&cut);
    }
  }
  aesql_pool_free(pool);
}

/* ---------------------------------------------------------------- */
/* 6. the training loop's cfg.adam */

/* Trains 8-3-8 on 40 rows of bytes for 2 epochs with cfg.adam = mode;
** the parameters in *pParam (malloc'd) when it trained. */
static int loop_train(int mode, float **pParam, size_t *pnParam){
  static unsigned char px[40*8];
  aesql_net net;
  aesql_nn_data x;
  aesql_loop_cfg c;
  aesql_loop_res res;
  size_t i;
  int rc;
  for(i=0; i<sizeof(px); i++) px[i] = (unsigned char)(hash01(i, 77)*256);
  *pParam = 0;
  if( aesql_net_init_dhd(&net, 8, 3) ) return -1;
  aesql_nn_data_init(&x, 8, 40, px, 0);
  memset(&c, 0, sizeof(c));
  c.epochs = 2;
  c.batch_size = 8;
  c.validation_split = 0.25;
  c.shuffle = 1;
  c.seed = 3;
  c.learning_rate = 0.01;
  c.beta_1 = 0.9;
  c.beta_2 = 0.999;
  c.epsilon = 1e-7;
  c.threads = 1;
  c.adam = mode;
  rc = aesql_loop_run(&net, &x, &c, 0, &res);
  if( rc==AESQL_LOOP_OK ){
    *pParam = malloc(sizeof(float)*net.nParam);
    if( *pParam ) memcpy(*pParam, net.param, sizeof(float)*net.nParam);
    *pnParam = net.nParam;
  }
  aesql_nn_mfree(res.aEpoch);
  aesql_net_free(&net);
  return rc;
}

static void test_loop(void){
  float *pk = 0, *pt = 0, *pt2 = 0, *px = 0;
  size_t n = 0;
  CHECK("loop: cfg.adam 2 is misuse", loop_train(2, &px, &n)==AESQL_LOOP_MISUSE && px==0);
  CHECK("loop: cfg.adam -1 is misuse", loop_train(-1, &px, &n)==AESQL_LOOP_MISUSE && px==0);
  if( loop_train(AESQL_ADAM_KERAS, &pk, &n)==AESQL_LOOP_OK && pk
   && loop_train(AESQL_ADAM_TORCH, &pt, &n)==AESQL_LOOP_OK && pt
   && loop_train(AESQL_ADAM_TORCH, &pt2, &n)==AESQL_LOOP_OK && pt2 ){
    CHECK("loop: torch mode trains another net than keras from the same seed",
          !same_array(pk, pt, n));
    CHECK("loop: torch mode twice, the same bits", same_array(pt, pt2, n));
  }else{
    CHECK("loop: keras and torch train", 0);
  }
  free(pk); free(pt); free(pt2);
}

int main(void){
  if( fma_may_differ() ){
    printf("# AVX-512: \"bit for bit\" against this file's loops allows 4 u "
           "(fused multiply-adds)\n");
  }
  test_names();
  test_step_constants();
  test_torch_formula();
  test_keras_unchanged();
  test_pieces();
  test_loop();
  return check_done();
}
