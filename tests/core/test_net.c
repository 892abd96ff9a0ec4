/*
** Tests of the model (ext/core/ae_net.h: ae_net.c, ae_net_pass.c,
** ae_net_ref.c, with ae_act.c, ae_data.c, ae_rng.c, ae_mem.c and
** ae_blas.c beneath them), linked with no SQLite:
**
**   rng          xoshiro256**'s recorded outputs, below(), shuffles;
**                glorot's limits and draws, layer by layer
**   shapes       aesql_net_mirror, _nparam (and its overflow), _init's
**                layout and refusals, works that do not fit a net, the
**                edge cases of the passes, aesql_net_l2 by hand
**   memory       every allocation of the model, the work, the index and
**                the reference failed in turn: a clean failure, nothing
**                left allocated; and every block freed at the end
**   sgemm        aesql_sgemm against aesql_sgemm_naive, every transpose,
**                within the classical error bound
**   gradients    aesql_net_grad_naive against central differences in
**                double, every activation, depths 1, 2 and 3, l2 > 0,
**                linear and sigmoid outputs; the BLAS pass too
**   blas         the BLAS passes (aesql_net_forward, _grad, _grad_rows,
**                _sse_rows over bytes and floats, indexed and not)
**                against the plain-loop reference, many stacks and batch
**                sizes (1, not multiples of 16, 256), parts of a batch
**   data         the byte rule (aesql_u8_float[b] = b/255.0f, and the
**                passes read bytes so: bytes and their floats give the
**                same bits), the index of non-zero pixels
**   dropout      the same bits for a key, others for another key, the
**                masks by batch position whatever the parts, about 1 - p
**                of the units kept, the gradient of the thinned net, no
**                dropout in the loss-only passes
**
**   make build/tests/test_net && build/tests/test_net
**   make build/asan-tests/test_net && AESQL_SANITIZE=1 build/asan-tests/test_net
**
** Every tolerance is stated next to its check, with why it is that size.
** u = 2^-24 is float's unit roundoff.
*/
#include "check_core.h"
#include "../../ext/core/ae_net.h"
#include "../../ext/core/ae_blas.h"
#include "../../ext/core/ae_data.h"

#include <stdint.h>

#define U_FLOAT 0x1.0p-24

/* The core's allocator is check_core.h's fm_malloc/fm_free: counted
** (every block must be freed by the end), failing on request. */

/* ---------------------------------------------------------------- */
/* helpers */


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


/* The mirrored stack d -> enc[0] -> ... -> enc[k-1] -> ... -> d with
** activation act[l] on layer l, or, when act is NULL, `hid` on every
** layer but the last and `out` on the last. 0 on success. */
static int net_make(aesql_net *net, int d, const int *enc, int k,
                    const int *act, int hid, int out){
  int width[AESQL_NET_MAX_LAYERS+1], a[AESQL_NET_MAX_LAYERS], nL, l;
  nL = aesql_net_mirror(d, enc, k, width);
  if( nL==0 ){ memset(net, 0, sizeof(*net)); return 1; }
  for(l=0; l<nL; l++) a[l] = act ? act[l] : l<nL-1 ? hid : out;
  return aesql_net_init(net, nL, width, a, k-1);
}

/* Glorot kernels, then every bias uniform in [-bias, bias]. */
static void net_randomize(aesql_net *net, aesql_rng *r, double bias){
  int l;
  aesql_net_glorot(net, r);
  for(l=0; l<net->nLayer; l++){
    fill_uniform(r, net->layer[l].b, (size_t)net->layer[l].nOut, -bias, bias);
  }
}

/* "7-5-3-5-7 tanh/sigmoid": the widths, then the hidden layers'
** activation (or "mixed") and the output's. */
static const char *net_name(const aesql_net *net, char *z, int nz){
  int l, k, mixed = 0;
  k = snprintf(z, nz, "%d", net->layer[0].nIn);
  for(l=0; l<net->nLayer && k<nz; l++){
    k += snprintf(z+k, nz-k, "-%d", net->layer[l].nOut);
    if( l>0 && l<net->nLayer-1 && net->layer[l].act!=net->layer[0].act ) mixed = 1;
  }
  if( k<nz ){
    snprintf(z+k, nz-k, " %s/%s",
             net->nLayer<2 ? "-" : mixed ? "mixed" : aesql_act_name(net->layer[0].act),
             aesql_act_name(net->layer[net->nLayer-1].act));
  }
  return z;
}

/* The worst, over the net's tensors (each layer's W and b), of max |a -
** ref| as a fraction of max |ref| (of 1 where ref is all zero: a dead
** relu's); names that tensor in zWhich ("W2", "b1": 1-based layers). */
static double grad_rel(const aesql_net *net, const float *a, const float *ref,
                       char *zWhich, int nWhich){
  double worst = 0.0;
  int l, t;
  if( zWhich ) zWhich[0] = 0;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    for(t=0; t<2; t++){
      size_t o = L->off + (t ? (size_t)L->nIn*L->nOut : 0);
      size_t cnt = t ? (size_t)L->nOut : (size_t)L->nIn*L->nOut;
      double m = max_abs(ref + o, cnt), e = max_diff(a + o, ref + o, cnt);
      e /= m>0 ? m : 1.0;
      if( !(e<=worst) ){
        worst = isnan(e) ? INFINITY : e;
        if( zWhich ) snprintf(zWhich, nWhich, "%c%d", t ? 'b' : 'W', l+1);
      }
    }
  }
  return worst;
}



/* ---------------------------------------------------------------- */
/* Random numbers and glorot */

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

  /* glorot at 784-32-784, the two-layer model: version 1's draws */
  {
    aesql_net nn, nn2;
    size_t nw = 784*32, j;
    const float *w1, *w2;
    float fl;
    if( aesql_net_init_dhd(&nn, 784, 32) || aesql_net_init_dhd(&nn2, 784, 32) ){
      CHECK("glorot: init", 0);
      return;
    }
    w1 = nn.layer[0].w;
    w2 = nn.layer[1].w;
    lim = sqrt(6.0/(784 + 32));
    fl = (float)lim;
    aesql_rng_seed(&r, 5);
    aesql_net_glorot(&nn, &r);
    ok = 1;
    sum = sum2 = 0.0;
    for(j=0; j<nw; j++){
      ok &= fabsf(w1[j])<=fl && fabsf(w2[j])<=fl;
      sum += w1[j] + w2[j];
      sum2 += (double)w1[j]*w1[j] + (double)w2[j]*w2[j];
    }
    CHECK("glorot: |w| <= sqrt(6/(d+h))", ok);
    CHECK("glorot: uses the range (max |w| > 0.999 limit)",
          fmax(max_abs(w1, nw), max_abs(w2, nw)) > 0.999*lim);
    /* mean of 2 nw draws, sd lim/sqrt(3): 5 sigma */
    CHECK_NEAR("glorot: mean about 0 (5 sigma)", sum/(2*nw), 0.0,
               5*lim/sqrt(3.0*2*nw));
    /* variance lim^2/3, within 2% (its sd is ~0.4% here) */
    CHECK_NEAR("glorot: variance lim^2/3 (rel 2%)", sum2/(2*nw), lim*lim/3,
               0.02*lim*lim/3);
    CHECK("glorot: zero biases", max_abs(nn.layer[0].b, 32)==0
          && max_abs(nn.layer[1].b, 784)==0);
    /* w1 first, row-major, then w2: replay the draws */
    aesql_rng_seed(&r, 5);
    ok = 1;
    for(j=0; j<nw; j++) ok &= w1[j]==(float)((2*aesql_rng_uniform(&r) - 1)*lim);
    for(j=0; j<nw; j++) ok &= w2[j]==(float)((2*aesql_rng_uniform(&r) - 1)*lim);
    CHECK("glorot: w = (float)((2u-1) limit), w1 then w2", ok);
    aesql_rng_seed(&r, 5);
    aesql_net_glorot(&nn2, &r);
    CHECK("glorot: same seed, same weights",
          nn.nParam==nn2.nParam && memcmp(nn.param, nn2.param, nn.nParam*sizeof(float))==0);
    aesql_net_free(&nn); aesql_net_free(&nn2);
  }
  /* a deeper stack: each layer its own limit, drawn layer by layer, and
  ** biases zeroed even when they were not */
  {
    static const int enc[3] = {6, 4, 3};
    aesql_net nn;
    size_t j;
    int l;
    if( net_make(&nn, 7, enc, 3, 0, AESQL_ACT_TANH, AESQL_ACT_LINEAR) ){
      CHECK("glorot: init 7-6-4-3-4-6-7", 0);
      return;
    }
    for(j=0; j<nn.nParam; j++) nn.param[j] = 1.0f;
    aesql_rng_seed(&r, 6);
    aesql_net_glorot(&nn, &r);
    aesql_rng_seed(&r, 6);
    ok = 1;
    for(l=0; l<nn.nLayer; l++){
      const aesql_layer *L = &nn.layer[l];
      double lm = sqrt(6.0/((double)L->nIn + L->nOut));
      for(j=0; j<(size_t)L->nIn*L->nOut; j++){
        ok &= L->w[j]==(float)((2*aesql_rng_uniform(&r) - 1)*lm);
      }
      ok &= max_abs(L->b, (size_t)L->nOut)==0.0;
    }
    CHECK("glorot: 6 layers, each drawn in turn with limit sqrt(6/(nIn+nOut)), "
          "zero biases", ok);
    aesql_net_free(&nn);
  }
}

/* ---------------------------------------------------------------- */
/* Shapes, allocation, the passes' edge cases */

static void test_shapes(void){
  static const int enc2[2] = {5, 3};
  static const int enc8[8] = {9, 8, 7, 6, 5, 4, 3, 2};
  int width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS], l, ok;
  aesql_net nn, g;
  aesql_net_work *w;
  float X[3*4] = {0}, Y[3*4];
  size_t np, i;

  /* aesql_net_mirror */
  ok = aesql_net_mirror(7, enc2, 2, width)==4 && width[0]==7 && width[1]==5
    && width[2]==3 && width[3]==5 && width[4]==7;
  CHECK("mirror: 7 [5,3] gives 7-5-3-5-7, 4 layers", ok);
  ok = aesql_net_mirror(7, enc2, 1, width)==2 && width[0]==7 && width[1]==5
    && width[2]==7;
  CHECK("mirror: 7 [5] gives 7-5-7, 2 layers", ok);
  ok = aesql_net_mirror(10, enc8, 8, width)==16 && width[0]==10 && width[8]==2
    && width[9]==3 && width[15]==9 && width[16]==10;
  CHECK("mirror: eight widths give 16 layers", ok);
  CHECK("mirror: 0 or 9 widths give 0", aesql_net_mirror(7, enc2, 0, width)==0
        && aesql_net_mirror(7, enc8, 9, width)==0);

  /* aesql_net_nparam */
  width[0] = 784; width[1] = 32; width[2] = 784;
  CHECK("nparam: 784-32-784 is 50992", aesql_net_nparam(2, width)==50992);
  aesql_net_mirror(7, enc2, 2, width);
  CHECK("nparam: 7-5-3-5-7 is 40 + 18 + 20 + 42",
        aesql_net_nparam(4, width)==120);
  width[2] = 0;
  CHECK("nparam: a width of 0 gives 0", aesql_net_nparam(4, width)==0);
  width[2] = 3;
  CHECK("nparam: 0 or 17 layers give 0", aesql_net_nparam(0, width)==0
        && aesql_net_nparam(AESQL_NET_MAX_LAYERS+1, width)==0);
  for(l=0; l<5; l++) width[l] = 1<<30;
  /* 2^60 + 2^30 floats a layer: three fit in SIZE_MAX/4 bytes, four not */
  CHECK("nparam: 3 layers of 2^30 x 2^30 counted, 4 overflow to 0",
        aesql_net_nparam(3, width)==3*(((size_t)1<<60) + ((size_t)1<<30))
        && aesql_net_nparam(4, width)==0);

  /* aesql_net_init's refusals: non-zero, *net zeroed */
  aesql_net_mirror(7, enc2, 2, width);
  for(l=0; l<4; l++) act[l] = AESQL_ACT_RELU;
  ok = 1;
  ok &= aesql_net_init(&nn, 4, width, act, -1)!=0 && nn.param==0 && nn.nLayer==0;
  ok &= aesql_net_init(&nn, 4, width, act, 4)!=0 && nn.param==0;
  act[2] = -1;
  ok &= aesql_net_init(&nn, 4, width, act, 1)!=0 && nn.param==0;
  act[2] = AESQL_ACT_COUNT;
  ok &= aesql_net_init(&nn, 4, width, act, 1)!=0 && nn.param==0;
  act[2] = AESQL_ACT_RELU;
  width[1] = 0;
  ok &= aesql_net_init(&nn, 4, width, act, 1)!=0 && nn.param==0;
  width[1] = 5;
  ok &= aesql_net_init(&nn, 0, width, act, 0)!=0 && nn.param==0;
  CHECK("init: iCode -1 or nLayer, an activation -1 or COUNT, a width 0, "
        "0 layers: refused, net zeroed", ok);
  CHECK("init_dhd: d or h <= 0 refused", aesql_net_init_dhd(&nn, 0, 3)!=0
        && nn.param==0 && aesql_net_init_dhd(&nn, 4, -1)!=0);

  /* a deep stack's layout: each layer W then b, in order, one buffer */
  act[0] = AESQL_ACT_TANH; act[1] = AESQL_ACT_ELU; act[2] = AESQL_ACT_SELU;
  act[3] = AESQL_ACT_SIGMOID;
  if( aesql_net_init(&nn, 4, width, act, 1) ){
    CHECK("init: 7-5-3-5-7", 0);
    return;
  }
  ok = nn.nLayer==4 && nn.iCode==1 && nn.nParam==120
    && aesql_net_width(&nn)==7 && aesql_net_code_width(&nn)==3;
  {
    size_t off = 0;
    for(l=0; l<4; l++){
      const aesql_layer *L = &nn.layer[l];
      ok &= L->nIn==width[l] && L->nOut==width[l+1] && L->act==act[l]
         && L->off==off && L->w==nn.param + off
         && L->b==nn.param + off + (size_t)L->nIn*L->nOut;
      off += (size_t)L->nIn*L->nOut + L->nOut;
    }
    ok &= off==nn.nParam;
  }
  for(i=0; i<nn.nParam; i++) ok &= nn.param[i]==0.0f;
  CHECK("init: 7-5-3-5-7: widths, activations, code layer 1 (3 wide), "
        "W then b per layer at their offsets, zeroed", ok);
  aesql_net_free(&nn);

  /* the tutorial's model, version 1's order */
  if( aesql_net_init_dhd(&nn, 4, 3) || aesql_net_init_dhd(&g, 4, 3) ){
    CHECK("init_dhd: 4-3-4", 0);
    return;
  }
  np = nn.nParam;
  ok = 1;
  for(i=0; i<np; i++) ok &= nn.param[i]==0.0f;
  CHECK("init_dhd: zeroed", ok);
  CHECK("init_dhd: w1, b1, w2, b2 in order in param; relu then linear; code 0",
        nn.layer[0].w==nn.param && nn.layer[0].b==nn.param+12
        && nn.layer[1].w==nn.param+15 && nn.layer[1].b==nn.param+27 && np==31
        && nn.nLayer==2 && nn.iCode==0 && nn.layer[0].act==AESQL_ACT_RELU
        && nn.layer[1].act==AESQL_ACT_LINEAR && aesql_net_width(&nn)==4
        && aesql_net_code_width(&nn)==3);

  /* works */
  CHECK("work: 0 rows, dropout 1, -0.1 or NaN give NULL",
        aesql_net_work_new(&nn, 0, 0.0)==0 && aesql_net_work_new(&nn, 2, 1.0)==0
        && aesql_net_work_new(&nn, 2, -0.1)==0 && aesql_net_work_new(&nn, 2, NAN)==0);
  w = aesql_net_work_new(&nn, 2, 0.0);
  if( w==0 ){ CHECK("work: 4-3-4, 2 rows", 0); return; }
  CHECK("forward: more rows than the work holds gives NaN",
        isnan(aesql_net_forward(&nn, w, X, 3, 0)));
  CHECK("grad: more rows than the work holds gives NaN",
        isnan(aesql_net_grad(&nn, w, X, 3, g.param)));
  for(i=0; i<np; i++) g.param[i] = 1.0f;
  CHECK("grad: 0 rows gives loss 0 and zero gradient",
        aesql_net_grad(&nn, w, X, 0, g.param)==0.0 && max_abs(g.param, np)==0.0);
  CHECK("forward: 0 rows gives 0", aesql_net_forward(&nn, w, X, 0, 0)==0.0);
  /* zero model, zero data: loss 0; x = 1 everywhere: loss 1 */
  CHECK("forward: zero model on zeros", aesql_net_forward(&nn, w, X, 2, 0)==0.0);
  for(i=0; i<12; i++) X[i] = 1.0f;
  CHECK_NEAR("forward: zero model on ones, loss 1", aesql_net_forward(&nn, w, X, 2, Y),
             1.0, 0.0);
  CHECK("forward: zero model: Y = 0", max_abs(Y, 8)==0.0);
  /* dL/dy = 2(0 - 1)/(n d) for each of n rows: gb2 = -2/d = -0.5 */
  CHECK_NEAR("grad: zero model on ones, loss 1", aesql_net_grad(&nn, w, X, 2, g.param),
             1.0, 0.0);
  CHECK("grad: zero model on ones, gb2 = -2/d, gb1 = gw1 = gw2 = 0",
        g.param[27]==-0.5f && g.param[30]==-0.5f && max_abs(g.param, 27)==0.0);
  CHECK_NEAR("naive: zero model on ones, loss 1",
             aesql_net_grad_naive(&nn, X, 2, 0.0, g.param), 1.0, 0.0);
  CHECK("naive: zero model on ones, gb2 = -0.5, the rest 0",
        g.param[27]==-0.5f && g.param[30]==-0.5f && max_abs(g.param, 27)==0.0);

  /* a work made for another net: refused, not overrun */
  {
    aesql_net other, wide;
    aesql_nn_data x;
    uint32_t idx[2] = {0, 1};
    int wd[3] = {4, 5, 4};
    aesql_nn_data_init(&x, 4, 2, 0, X);
    if( aesql_net_init_dhd(&other, 5, 3)
     || aesql_net_init(&wide, 2, wd, act, 0) ){
      CHECK("work: other nets", 0);
    }else{
      float go[64];
      ok = isnan(aesql_net_forward(&other, w, X, 1, 0))
        && isnan(aesql_net_grad(&other, w, X, 1, go));
      CHECK("work: a work for 4-3-4 on 5-3-5 gives NaN", ok);
      /* 4-5-4: the same depth and input width, a hidden layer wider
      ** than the work's */
      ok = isnan(aesql_net_forward(&wide, w, X, 2, 0))
        && isnan(aesql_net_grad(&wide, w, X, 2, go))
        && isnan(aesql_net_grad_rows(&wide, w, &x, idx, 2, 2, go, 0, 0, 0))
        && isnan(aesql_net_sse_rows(&wide, w, &x, idx, 2));
      CHECK("work: a work for 4-3-4 on 4-5-4 (a wider hidden layer) gives NaN", ok);
    }
    /* 40-10-40's work on 40-30-40: every width within the work's widest
    ** (40), but the hidden layer's output three times what it holds */
    {
      aesql_net n10, n30;
      aesql_net_work *w10 = 0;
      float *Xb = calloc(16*40, sizeof(float)), *gw = 0;
      uint32_t id16[16];
      for(l=0; l<16; l++) id16[l] = (uint32_t)l;
      if( aesql_net_init_dhd(&n10, 40, 10) || aesql_net_init_dhd(&n30, 40, 30)
       || !(w10 = aesql_net_work_new(&n10, 16, 0.5)) || !Xb
       || !(gw = malloc(sizeof(float)*n30.nParam)) ){
        CHECK("work: 40-10-40", 0);
      }else{
        aesql_nn_data_init(&x, 40, 16, 0, Xb);
        ok = isnan(aesql_net_forward(&n30, w10, Xb, 16, 0))
          && isnan(aesql_net_grad(&n30, w10, Xb, 16, gw))
          && isnan(aesql_net_grad_rows(&n30, w10, &x, id16, 16, 16, gw, 0, 1, 0))
          && isnan(aesql_net_sse_rows(&n30, w10, &x, id16, 16));
        CHECK("work: a work for 40-10-40 on 40-30-40 gives NaN (not an overrun)", ok);
      }
      aesql_net_work_free(w10);
      aesql_net_free(&n10); aesql_net_free(&n30);
      free(Xb); free(gw);
    }
    aesql_net_free(&other);
    aesql_net_free(&wide);
  }
  aesql_net_work_free(w);

  /* aesql_net_l2, by hand: l2 times the kernels' squares, biases not */
  for(i=0; i<np; i++) nn.param[i] = (float)(i%5) - 2.0f;   /* -2 .. 2 */
  {
    double s = 0.0;
    for(i=0; i<12; i++) s += (double)nn.param[i]*nn.param[i];
    for(i=15; i<27; i++) s += (double)nn.param[i]*nn.param[i];
    CHECK("l2: l2 times the sum of the kernels' squares, biases not",
          aesql_net_l2(&nn, 0.25)==0.25*s && s>0);
    CHECK("l2: 0 and negative l2 give 0",
          aesql_net_l2(&nn, 0.0)==0.0 && aesql_net_l2(&nn, -1.0)==0.0);
    /* the reference with l2 and no rows: the penalty and its gradient */
    for(i=0; i<np; i++) g.param[i] = 7.0f;
    ok = aesql_net_grad_naive(&nn, X, 0, 0.25, g.param)==0.25*s;
    for(i=0; i<np; i++){
      int isW = i<12 || (i>=15 && i<27);
      ok &= g.param[i]==(isW ? 0.5f*nn.param[i] : 0.0f);
    }
    CHECK("naive: no rows, l2 0.25: loss the penalty, gradient 2 l2 W (biases 0)", ok);
  }
  aesql_net_free(&nn); aesql_net_free(&g);
  aesql_net_free(&nn);                      /* twice is harmless */
  aesql_net_free(0);
  aesql_net_work_free(0);
}

/* Every allocation of the model's functions failed in turn. */
static void test_nomem(void){
  static const int enc[2] = {5, 3};
  aesql_net nn;
  aesql_net_work *w;
  aesql_nn_data x;
  unsigned char px[6*7];
  float X[6*7], g[200];
  long k, live;
  int rc, ok, done, drop;

  for(k=0; k<(long)sizeof(px); k++) px[k] = (unsigned char)(k%3 ? 0 : k);
  for(k=0; k<(long)sizeof(px); k++) X[k] = px[k]/255.0f;
  /* aesql_net_init: one allocation */
  live = fm.nLive;
  fm_fail_in(0);
  rc = net_make(&nn, 7, enc, 2, 0, AESQL_ACT_RELU, AESQL_ACT_LINEAR);
  fm_never();
  CHECK("nomem: init fails cleanly (non-zero, net zeroed, nothing allocated)",
        rc!=0 && nn.param==0 && nn.nLayer==0 && fm.nLive==live);
  if( net_make(&nn, 7, enc, 2, 0, AESQL_ACT_RELU, AESQL_ACT_LINEAR) ){
    CHECK("nomem: init", 0);
    return;
  }
  /* the work, with and without dropout */
  ok = 1;
  for(drop=0; drop<2; drop++){
    for(k=0, done=0; !done && k<10; k++){
      live = fm.nLive;
      fm_fail_in(k);
      w = aesql_net_work_new(&nn, 6, drop ? 0.5 : 0.0);
      fm_never();
      if( w ){ done = 1; aesql_net_work_free(w); }
      ok &= (w!=0)==(k>0) && fm.nLive==live;
    }
    ok &= done;
  }
  CHECK("nomem: work_new, without and with dropout: NULL when its one allocation "
        "fails, nothing left", ok);
  /* the reference passes: NaN */
  fm_fail_in(0);
  ok = isnan(aesql_net_forward_naive(&nn, X, 6, 0));
  fm_fail_in(0);
  ok &= isnan(aesql_net_grad_naive(&nn, X, 6, 0.01, g));
  fm_never();
  CHECK("nomem: forward_naive and grad_naive give NaN", ok && fm.nLive==live);
  /* the index: non-zero, no index left */
  ok = 1;
  for(k=0, done=0; !done && k<10; k++){
    live = fm.nLive;
    aesql_nn_data_init(&x, 7, 6, px, 0);
    fm_fail_in(k);
    rc = aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS);
    fm_never();
    if( rc==0 ){
      done = x.nz!=0;
      aesql_nn_data_free(&x);
      ok &= done;
    }else{
      ok &= x.nz==0 && x.nzStart==0 && fm.nLive==live;
    }
  }
  CHECK("nomem: data_index: non-zero and no index while it cannot allocate", ok && done);
  aesql_net_free(&nn);
}

/* ---------------------------------------------------------------- */
/* aesql_sgemm against aesql_sgemm_naive */

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
/* The reference's gradient against central differences */

/* The activations written out again here, from Keras' definitions, so
** that the differences do not lean on ae_act.c. */
static double act_ref(int act, double x){
  const double alpha = 1.6732632423543772848170429916717;
  const double scale = 1.0507009873554804934193349852946;
  switch( act ){
    case AESQL_ACT_RELU:       return x>0 ? x : 0.0;
    case AESQL_ACT_LEAKY_RELU: return x>0 ? x : 0.2*x;
    case AESQL_ACT_ELU:        return x>0 ? x : expm1(x);
    case AESQL_ACT_SELU:       return scale*(x>0 ? x : alpha*expm1(x));
    case AESQL_ACT_TANH:       return tanh(x);
    case AESQL_ACT_SIGMOID:    return 1.0/(1.0 + exp(-x));
  }
  return x;
}
/* The activations whose derivative (or, elu, second derivative) jumps at 0. */
static int act_kinked(int act){
  return act==AESQL_ACT_RELU || act==AESQL_ACT_LEAKY_RELU
      || act==AESQL_ACT_ELU || act==AESQL_ACT_SELU;
}

/* The loss of net's shape with parameters P (doubles, net's layout) on
** X (n rows), plus l2 times the kernels' squares, all in double: what the
** differences differentiate. When sig is not NULL, it gets z > 0 for the
** pre-activation z of every unit of every row at a kinked layer, and
** *pnNeg, *pnZ count those z < 0 and all of them (hidden layers). */
static double ref_loss(const aesql_net *net, const double *P, const float *X,
                       int n, double l2, unsigned char *sig, int *pnNeg, int *pnZ){
  const int d = aesql_net_width(net);
  double loss = 0.0, pen = 0.0, a[2][64];
  int r, l, i, k, s = 0, nNeg = 0, nZ = 0;
  for(r=0; r<n; r++){
    for(i=0; i<d; i++) a[0][i] = X[(size_t)r*d + i];
    for(l=0; l<net->nLayer; l++){
      const aesql_layer *L = &net->layer[l];
      const double *W = P + L->off, *b = W + (size_t)L->nIn*L->nOut;
      const double *in = a[l%2];
      double *out = a[(l+1)%2];
      for(k=0; k<L->nOut; k++){
        double z = b[k];
        for(i=0; i<L->nIn; i++) z += in[i]*W[(size_t)i*L->nOut + k];
        out[k] = act_ref(L->act, z);
        if( sig && act_kinked(L->act) ) sig[s++] = z>0;
        if( l<net->nLayer-1 ){ nZ++; nNeg += z<0; }
      }
    }
    for(i=0; i<d; i++){
      double e = a[net->nLayer%2][i] - X[(size_t)r*d + i];
      loss += e*e;
    }
  }
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    for(i=0; i<L->nIn*L->nOut; i++) pen += P[L->off + i]*P[L->off + i];
  }
  if( pnNeg ){ *pnNeg = nNeg; *pnZ = nZ; }
  return loss/((double)n*d) + l2*pen;
}

/* The smallest |z| over every pre-activation of a kinked layer. */
static double ref_margin(const aesql_net *net, const float *X, int n){
  const int d = aesql_net_width(net);
  double m = INFINITY, a[2][64];
  int r, l, i, k;
  for(r=0; r<n; r++){
    for(i=0; i<d; i++) a[0][i] = X[(size_t)r*d + i];
    for(l=0; l<net->nLayer; l++){
      const aesql_layer *L = &net->layer[l];
      for(k=0; k<L->nOut; k++){
        double z = L->b[k];
        for(i=0; i<L->nIn; i++) z += a[l%2][i]*L->w[(size_t)i*L->nOut + k];
        a[(l+1)%2][k] = act_ref(L->act, z);
        if( act_kinked(L->act) && fabs(z)<m ) m = fabs(z);
      }
    }
  }
  return m;
}

/* At x = 0 the derivatives of the kinked activations are a choice:
** TensorFlow's kernels take relu 0, leaky_relu 0.2, elu 1 and selu scale
** (elu and selu select on a < 0, relu and leaky_relu on a > 0). The float
** pass, from the output a = f(0), and the reference, at the input 0,
** must make the same choice, or the BLAS pass and the reference differ
** wherever a pre-activation is exactly 0 (a zero row through zero
** biases). */
static void test_kinks(void){
  static const double want[AESQL_ACT_COUNT] = {
    1.0, 0.0, 0.2, 1.0, 1.0507009873554804934193349852946, 1.0, 0.25 };
  int act, ok = 1;
  for(act=0; act<AESQL_ACT_COUNT; act++){
    float a = 0.0f, g = 1.0f, gb = 7.0f;
    aesql_act_forward(act, &a, 1);
    aesql_act_backward(act, &g, &a, &gb, 1, 1, 0);
    /* float: the constants rounded once, rel 2^-24 */
    ok &= fabs(g - want[act])<=U_FLOAT*want[act] && gb==g
       && aesql_act_df(act, 0.0)==want[act] && a==(float)act_ref(act, 0.0);
  }
  CHECK("kinks: f'(0) of the float pass (from a = f(0)) and of the reference: linear 1, "
        "relu 0, leaky_relu 0.2, elu 1, selu scale, tanh 1, sigmoid 1/4", ok);
}

/* Counters over every gradient check, for the summary line. */
static struct { double worstNaive, worstBlas; int nNet, nSkip, nParam; } gc;

/* The central differences of one stack against aesql_net_grad_naive (with
** l2) and aesql_net_grad (without: the difference of the l2 term, 2 l2 W,
** taken off). Five-point differences, (8 (f(p+h) - f(p-h)) - (f(p+2h) -
** f(p-2h)))/12h: their error is ~h^4 f^(5) ~ 1e-12 at h = 1e-3, and their
** rounding ~1e-16 L/h ~ 1e-14, far below float's 6e-8 in what they check
** (two-point ones at h = 1e-6 round at ~1e-10 L/h^0, too close). */
static void gradcheck_one(aesql_net *net, const char *zNet){
  enum { N = 4 };                   /* rows */
  const double h = 1e-3;            /* step of the differences */
  const double margin = 1e-2;       /* |z| of a kinked unit at least this:
                                    ** 5 times the reach of 2h */
  const double l2 = 1e-3;
  const int d = aesql_net_width(net), np = (int)net->nParam;
  const size_t nSig = (size_t)N*64*AESQL_NET_MAX_LAYERS;
  aesql_net_work *w = aesql_net_work_new(net, N, 0.0);
  aesql_rng r;
  float X[N*16], *gn = malloc(sizeof(float)*np), *gb = malloc(sizeof(float)*np);
  double *P = malloc(sizeof(double)*np), *fd = malloc(sizeof(double)*np);
  unsigned char *s0 = calloc(nSig, 1), *s1 = calloc(nSig, 1);
  double fdmax = 0.0, errN = 0.0, errB = 0.0, l0, ln, lb;
  uint64_t seed;
  int p, nSkip = 0, nNeg = 0, nZ = 0, ok = 0, kinked = 0, l;
  char z[200];

  if( !w || !gn || !gb || !P || !fd || !s0 || !s1 || d>16 ){
    check_report(0, zNet, "out of memory");
    goto done;
  }
  for(l=0; l<net->nLayer; l++) kinked |= act_kinked(net->layer[l].act);
  /* a draw where no kinked unit is within `margin` of its kink and, for
  ** the kinked activations, between a tenth and nine tenths of the hidden
  ** pre-activations are negative: both branches in play */
  for(seed=1; seed<2000 && !ok; seed++){
    aesql_rng_seed(&r, seed);
    net_randomize(net, &r, 0.2);
    fill_uniform(&r, X, (size_t)N*d, 0.0, 1.0);
    for(p=0; p<np; p++) P[p] = net->param[p];
    ref_loss(net, P, X, N, 0.0, 0, &nNeg, &nZ);
    ok = !kinked || (ref_margin(net, X, N)>=margin && nNeg*10>=nZ && nNeg*10<=9*nZ);
  }
  snprintf(z, sizeof(z), "gradcheck %s: a draw with both branches and no kink in reach", zNet);
  check_report(ok, z, "none in 2000 seeds");

  ref_loss(net, P, X, N, l2, s0, 0, 0);
  for(p=0; p<np; p++){
    static const double step[4] = { 2.0, 1.0, -1.0, -2.0 };
    double keep = P[p], f[4];
    int q, across = 0;
    for(q=0; q<4; q++){
      P[p] = keep + step[q]*h;
      f[q] = ref_loss(net, P, X, N, l2, s1, 0, 0);
      if( kinked && memcmp(s0, s1, nSig)!=0 ) across = 1;
    }
    P[p] = keep;
    /* a difference across a kink is not a derivative: skipped (the margin
    ** makes this rare; the count is checked below) */
    if( across ){
      fd[p] = NAN;
      nSkip++;
      continue;
    }
    fd[p] = (8.0*(f[1] - f[2]) - (f[0] - f[3]))/(12.0*h);
    if( fabs(fd[p])>fdmax ) fdmax = fabs(fd[p]);
  }
  l0 = ref_loss(net, P, X, N, l2, 0, 0, 0);
  ln = aesql_net_grad_naive(net, X, N, l2, gn);
  lb = aesql_net_grad(net, w, X, N, gb);
  /* the reference's loss is the double loss, up to summation order */
  snprintf(z, sizeof(z), "gradcheck %s: naive loss (l2 1e-3) = double loss (rel 1e-12)", zNet);
  CHECK_NEAR(z, ln, l0, 1e-12*l0);
  /* the BLAS loss: float sums of <= 16 float products, rel ~ 16u */
  snprintf(z, sizeof(z), "gradcheck %s: blas loss + aesql_net_l2 = double loss (rel 1e-5)", zNet);
  CHECK_NEAR(z, lb + aesql_net_l2(net, l2), l0, 1e-5*l0);
  /* error of parameter p: |g - fd| / max(|fd|, 1e-3 max|fd|); the floor
  ** keeps near-zero derivatives from dividing by nothing (the BLAS pass's
  ** floor is higher, see below) */
  for(p=0; p<np; p++){
    double den = fmax(fabs(fd[p]), 1e-3*fdmax), en, eb, fdData = fd[p];
    int isW = 0;
    if( isnan(fd[p]) ) continue;
    for(l=0; l<net->nLayer; l++){
      const aesql_layer *L = &net->layer[l];
      if( (size_t)p>=L->off && (size_t)p<L->off + (size_t)L->nIn*L->nOut ) isW = 1;
    }
    if( isW ) fdData -= 2.0*l2*P[p];
    en = fabs(gn[p] - fd[p])/den;
    eb = fabs(gb[p] - fdData)/fmax(fabs(fdData), 1e-2*fdmax);
    if( !(en<=errN) ) errN = isnan(en) ? INFINITY : en;
    if( !(eb<=errB) ) errB = isnan(eb) ? INFINITY : eb;
  }
  /* naive: double throughout, rounded once to float (u = 6e-8); the
  ** differences' own error is ~1e-12 */
  snprintf(z, sizeof(z), "gradcheck %s: naive grad = central differences (rel 2e-7)", zNet);
  check_report(errN<=2e-7, z, "max rel error %.3g (max|fd| %.3g)", errN, fdmax);
  /* BLAS: float sums of <= 16 terms and float products, ~16u of the
  ** largest terms, which for the small entries of deep and sigmoid stacks
  ** are the gradient's largest (measured: 5e-8 max|fd| on entries of 1e-4
  ** max|fd|): so a floor of 1e-2 max|fd|, and rel 2e-5 (measured <= 9e-6) */
  snprintf(z, sizeof(z), "gradcheck %s: blas grad = central differences "
           "(rel 2e-5, floor 1e-2 max|fd|)", zNet);
  check_report(errB<=2e-5, z, "max rel error %.3g (max|fd| %.3g)", errB, fdmax);
  /* at most 2% of the differences straddle a kink (none, with the margin) */
  snprintf(z, sizeof(z), "gradcheck %s: %d of %d differences across a kink, skipped", zNet,
           nSkip, np);
  check_report(nSkip*50<=np && fdmax>0, z, "max|fd| %.3g", fdmax);
  if( errN>gc.worstNaive ) gc.worstNaive = errN;
  if( errB>gc.worstBlas ) gc.worstBlas = errB;
  gc.nNet++; gc.nSkip += nSkip; gc.nParam += np;
done:
  aesql_net_work_free(w);
  free(gn); free(gb); free(P); free(fd); free(s0); free(s1);
}

static void test_gradcheck(void){
  static const int enc[3][3] = { {5}, {5, 3}, {6, 4, 3} };
  static const int outs[2] = { AESQL_ACT_LINEAR, AESQL_ACT_SIGMOID };
  static const int mixed[6] = { AESQL_ACT_TANH, AESQL_ACT_RELU, AESQL_ACT_ELU,
                                AESQL_ACT_SELU, AESQL_ACT_LEAKY_RELU, AESQL_ACT_SIGMOID };
  int act, k, o;
  char z[120];
  memset(&gc, 0, sizeof(gc));
  for(act=0; act<AESQL_ACT_COUNT; act++){
    for(k=1; k<=3; k++){
      for(o=0; o<2; o++){
        aesql_net nn;
        if( net_make(&nn, 7, enc[k-1], k, 0, act, outs[o]) ){
          CHECK("gradcheck: init", 0);
          continue;
        }
        gradcheck_one(&nn, net_name(&nn, z, sizeof(z)));
        aesql_net_free(&nn);
      }
    }
  }
  /* every activation in one stack, and one layer alone */
  {
    aesql_net nn;
    int width[2] = {7, 7}, a1 = AESQL_ACT_SIGMOID;
    if( net_make(&nn, 7, enc[2], 3, mixed, 0, 0)==0 ){
      gradcheck_one(&nn, "7-6-4-3-4-6-7 tanh,relu,elu,selu,leaky_relu/sigmoid");
      aesql_net_free(&nn);
    }
    if( aesql_net_init(&nn, 1, width, &a1, 0)==0 ){
      gradcheck_one(&nn, net_name(&nn, z, sizeof(z)));
      aesql_net_free(&nn);
    }
  }
  printf("# gradcheck: %d stacks, %d parameters, %d differences skipped; "
         "worst rel error naive %.2e, blas %.2e\n", gc.nNet, gc.nParam, gc.nSkip,
         gc.worstNaive, gc.worstBlas);
  CHECK("gradcheck: every activation at depths 1, 2, 3, linear and sigmoid "
        "outputs, a mixed stack, one layer: 44 stacks", gc.nNet==44);
}

/* ---------------------------------------------------------------- */
/* The BLAS passes against the reference */

typedef struct stack_case {
  int d, k, enc[3];
  int hid, out;          /* activations, unless act[0] >= 0 */
  int act[6];
  int n;                 /* rows of the batch */
  double density;        /* of the pixels */
} stack_case;

/* One stack: the dense passes, then the row passes over bytes and floats,
** indexed and not, all against aesql_net_grad_naive (l2 0) on the same
** rows, and parts of the batch against the whole. */
static void test_stack(const stack_case *c){
  const int n = c->n, d = c->d, N = 3*n + 2;
  aesql_rng r;
  aesql_net nn;
  aesql_net_work *w = 0, *ws = 0;
  unsigned char *u = 0;
  float *f = 0, *X = 0, *Yn = 0, *Yb = 0, *gn = 0, *gb = 0, *gp = 0, *gq = 0;
  uint32_t *idx = 0;
  double ln, lb, lb2, lg, lgn, e, sse, sse2, fwd;
  char zn[80], z[240], zw[8];
  size_t np, p;
  int i, v, ok;

  memset(&nn, 0, sizeof(nn));
  if( c->k==0 ){
    /* one layer, d -> d */
    int width[2];
    width[0] = width[1] = d;
    if( aesql_net_init(&nn, 1, width, &c->out, 0) ){ CHECK("blas: init", 0); return; }
  }else if( net_make(&nn, d, c->enc, c->k, c->act[0]>=0 ? c->act : 0, c->hid, c->out) ){
    CHECK("blas: init", 0);
    return;
  }
  net_name(&nn, zn, sizeof(zn));
  np = nn.nParam;
  aesql_rng_seed(&r, 1000 + n + d);
  u = make_bytes(&r, N, d, c->density);
  f = malloc(sizeof(float)*N*d);
  X = malloc(sizeof(float)*n*d);
  Yn = malloc(sizeof(float)*n*d); Yb = malloc(sizeof(float)*n*d);
  gn = malloc(sizeof(float)*np); gb = malloc(sizeof(float)*np);
  gp = malloc(sizeof(float)*np); gq = malloc(sizeof(float)*np);
  idx = malloc(sizeof(uint32_t)*N);
  w = aesql_net_work_new(&nn, n, 0.0);
  ws = aesql_net_work_new(&nn, n/3 + 1, 0.0);
  if( !u || !f || !X || !Yn || !Yb || !gn || !gb || !gp || !gq || !idx || !w || !ws ){
    check_report(0, zn, "out of memory");
    goto done;
  }
  /* floats where the bytes are non-zero: negative ones too */
  for(i=0; i<N*d; i++) f[i] = u[i] ? (float)(aesql_rng_uniform(&r)*2.0 - 0.5) : 0.0f;
  net_randomize(&nn, &r, 0.1);
  for(i=0; i<N; i++) idx[i] = i;
  aesql_rng_shuffle(&r, idx, N);
  if( n>=4 ){
    /* row 0, all zero, in the batch */
    for(i=0; idx[i]!=0; i++){}
    idx[i] = idx[n/2];
    idx[n/2] = 0;
  }

  /* 1. the dense passes, on float rows */
  for(i=0; i<n*d; i++) X[i] = f[(size_t)idx[i/d]*d + i%d];
  ln = aesql_net_forward_naive(&nn, X, n, Yn);
  lb = aesql_net_forward(&nn, w, X, n, Yb);
  lb2 = aesql_net_forward(&nn, w, X, n, 0);
  e = max_diff(Yn, Yb, (size_t)n*d);
  /* Y: each layer's float sums of <= 784 products, about nIn u of the
  ** largest terms, carried through the stack: 1e-5 of max |Y| (measured
  ** ~1e-7) */
  snprintf(z, sizeof(z), "blas %s, %d rows: forward's Y = naive (1e-5 of max|Y|)", zn, n);
  check_report(e<=1e-5*max_abs(Yn, (size_t)n*d), z, "max diff %.3g, max |Y| %.3g",
               e, max_abs(Yn, (size_t)n*d));
  /* the loss: a mean of n d squares of float residuals: rel 1e-5 */
  snprintf(z, sizeof(z), "blas %s, %d rows: forward's loss = naive (rel 1e-5)", zn, n);
  CHECK_NEAR(z, lb, ln, 1e-5*ln);
  snprintf(z, sizeof(z), "blas %s, %d rows: forward without Y, the same loss", zn, n);
  CHECK(z, lb2==lb);
  lgn = aesql_net_grad_naive(&nn, X, n, 0.0, gn);
  lg = aesql_net_grad(&nn, w, X, n, gb);
  snprintf(z, sizeof(z), "blas %s, %d rows: grad's loss = forward's (rel 1e-12)", zn, n);
  check_report(fabs(lg - lb)<=1e-12*lb && fabs(lgn - ln)<=1e-12*ln, z,
               "blas %.9g and %.9g, naive %.9g and %.9g", lg, lb, lgn, ln);
  /* each tensor: max |blas - naive| <= 1e-5 max |naive|: float sums over
  ** the n rows (W, b) or a layer's width (the gradient passed down), each
  ** ~sqrt(n) u to n u of its largest terms, against double; measured
  ** <= 1e-6 at 256 rows */
  e = grad_rel(&nn, gb, gn, zw, sizeof(zw));
  printf("# blas %s, %d rows: worst gradient error %.2e of max (%s)\n", zn, n, e, zw);
  snprintf(z, sizeof(z), "blas %s, %d rows: grad = naive (1e-5 of max, per tensor)", zn, n);
  check_report(e<=1e-5, z, "worst %.3g of max, in %s", e, zw);

  /* 2. the row passes: bytes and floats, indexed and gathered */
  for(v=0; v<4; v++){
    const int isF32 = v&1, mode = v&2 ? AESQL_NN_SPARSE_NEVER : AESQL_NN_SPARSE_ALWAYS;
    const char *zv = v==0 ? "u8 indexed" : v==1 ? "f32 indexed"
                   : v==2 ? "u8 gathered" : "f32 gathered";
    aesql_nn_data x;
    aesql_nn_data_init(&x, d, N, isF32 ? 0 : u, isF32 ? f : 0);
    if( aesql_nn_data_index(&x, mode) || (mode==AESQL_NN_SPARSE_ALWAYS && !x.nz) ){
      CHECK("rows: index", 0);
      continue;
    }
    rows_dense(&x, idx, n, X);
    ln = aesql_net_grad_naive(&nn, X, n, 0.0, gn);
    sse = aesql_net_grad_rows(&nn, w, &x, idx, n, n, gb, 0, 0, 0);
    /* as the dense pass: the loss to rel 1e-5, each tensor to 1e-5 of max */
    snprintf(z, sizeof(z), "rows %s %s, %d rows: loss = naive (rel 1e-5)", zv, zn, n);
    CHECK_NEAR(z, sse/((double)n*d), ln, 1e-5*ln);
    e = grad_rel(&nn, gb, gn, zw, sizeof(zw));
    printf("# rows %s %s, %d rows: worst gradient error %.2e of max (%s)\n", zv, zn, n, e, zw);
    snprintf(z, sizeof(z), "rows %s %s, %d rows: gradient = naive (1e-5 of max)", zv, zn, n);
    check_report(e<=1e-5, z, "worst %.3g of max, in %s", e, zw);
    /* the loss-only pass, through a work of n/3+1 rows: in pieces */
    fwd = aesql_net_sse_rows(&nn, ws, &x, idx, n);
    snprintf(z, sizeof(z), "rows %s %s, %d rows: sse_rows in pieces = naive (rel 1e-5)",
             zv, zn, n);
    CHECK_NEAR(z, fwd/((double)n*d), ln, 1e-5*ln);
    /* the same sums of the same residuals; a compiler may fuse a multiply
    ** and an add in one and not in the other */
    snprintf(z, sizeof(z), "rows %s %s, %d rows: sse_rows = grad_rows' sse (rel 1e-12)",
             zv, zn, n);
    CHECK_NEAR(z, aesql_net_sse_rows(&nn, w, &x, idx, n), sse, 1e-12*sse);

    /* two parts add up to the batch: the loss up to rounding (double sums;
    ** sgemm may round a row's products differently for another number of
    ** rows: measured 3e-9), gradients up to float rounding (1e-5 of max) */
    if( n>=2 ){
      sse2 = aesql_net_grad_rows(&nn, w, &x, idx, n/3, n, gp, 0, 0, 0);
      memcpy(gq, gp, sizeof(float)*np);
      sse2 += aesql_net_grad_rows(&nn, w, &x, idx + n/3, n - n/3, n, gp, 0, 0, n/3);
      for(p=0; p<np; p++) gq[p] += gp[p];
      e = grad_rel(&nn, gq, gb, zw, sizeof(zw));
      snprintf(z, sizeof(z), "rows %s %s, %d rows: two parts add up (sse rel 1e-7, "
               "gradients 1e-5 of max)", zv, zn, n);
      check_report(fabs(sse2 - sse)<=1e-7*sse && e<=1e-5, z,
                   "sse %.9g want %.9g, worst %.3g of max in %s", sse2, sse, e, zw);
      /* the same two, the second added by grad_rows itself (add = 1) */
      for(p=0; p<np; p++) gp[p] = NAN;
      sse2 = aesql_net_grad_rows(&nn, w, &x, idx, n/3, n, gp, 0, 0, 0);
      sse2 += aesql_net_grad_rows(&nn, w, &x, idx + n/3, n - n/3, n, gp, 1, 0, n/3);
      e = grad_rel(&nn, gp, gb, zw, sizeof(zw));
      snprintf(z, sizeof(z), "rows %s %s, %d rows: a part added to another (add = 1) "
               "= the batch (1e-5 of max; sse rel 1e-7)", zv, zn, n);
      check_report(e<=1e-5 && fabs(sse2 - sse)<=1e-7*sse, z, "worst %.3g of max, in %s; "
                   "sse %.9g want %.9g", e, zw, sse2, sse);
    }
    /* bad sizes */
    for(p=0; p<np; p++) gp[p] = 1.0f;
    ok = (n<=n/3+1 || isnan(aesql_net_grad_rows(&nn, ws, &x, idx, n, n, gp, 0, 0, 0)))
      && isnan(aesql_net_grad_rows(&nn, w, &x, idx, n, n-1, gp, 0, 0, 0))  /* n > nAll */
      && aesql_net_grad_rows(&nn, w, &x, idx, 0, n, gp, 0, 0, 0)==0.0
      && max_abs(gp, np)==0.0;
    x.d = d + 1;
    ok &= isnan(aesql_net_grad_rows(&nn, w, &x, idx, n, n, gp, 0, 0, 0))
       && isnan(aesql_net_sse_rows(&nn, w, &x, idx, n));
    x.d = d;
    snprintf(z, sizeof(z), "rows %s %s, %d rows: n > max_n, n > nAll, another d give NaN; "
             "no rows a zero gradient", zv, zn, n);
    CHECK(z, ok);
    aesql_nn_data_free(&x);
  }
done:
  free(u); free(f); free(X); free(Yn); free(Yb); free(gn); free(gb); free(gp); free(gq);
  free(idx);
  aesql_net_free(&nn);
  aesql_net_work_free(w); aesql_net_work_free(ws);
}

static void test_blas(void){
  enum { R = AESQL_ACT_RELU, L = AESQL_ACT_LINEAR, S = AESQL_ACT_SIGMOID,
         T = AESQL_ACT_TANH, E = AESQL_ACT_ELU, SE = AESQL_ACT_SELU,
         LR = AESQL_ACT_LEAKY_RELU };
  /* the first layer's width picks the sparse kernels' paths: < 16 (scalar
  ** lanes), 20 (16 + 4), 32 (the tutorial's: dH in registers), 48
  ** (32 + 16), 64 */
  static const stack_case cases[] = {
    { 50, 1, {9},        R,  L, {-1}, 37, 0.3 },
    { 30, 1, {20},       R,  L, {-1}, 33, 0.5 },
    { 64, 1, {48},       R,  L, {-1}, 40, 1.0 },
    { 784, 1, {32},      R,  L, {-1}, 256, 0.2 },   /* the tutorial's */
    { 784, 1, {32},      R,  L, {-1}, 64, 0.2 },
    { 30, 2, {20, 12},   T,  L, {-1}, 17, 0.5 },
    { 40, 3, {24, 16, 8}, E, S, {-1}, 16, 0.4 },
    { 33, 1, {33},       SE, S, {-1}, 1, 0.6 },
    { 20, 2, {16, 5},    LR, L, {-1}, 15, 0.5 },
    { 24, 1, {18},       S,  L, {-1}, 64, 0.5 },
    { 19, 2, {10, 4},    L,  L, {-1}, 33, 0.5 },
    { 100, 2, {64, 32},  R,  S, {-1}, 100, 0.2 },
    { 40, 3, {32, 16, 8}, 0, 0, {T, R, E, SE, LR, S}, 47, 0.3 },
    { 12, 0, {0},        0,  L, {-1}, 9, 0.5 },     /* one layer */
    { 12, 0, {0},        0,  S, {-1}, 18, 0.5 },
  };
  int i;
  for(i=0; i<(int)(sizeof(cases)/sizeof(cases[0])); i++) test_stack(&cases[i]);
}

/* ---------------------------------------------------------------- */
/* Bytes as floats, and the index */

static void test_bytes(void){
  static const int enc[2] = {20, 8};
  aesql_nn_data x, xf;
  aesql_net nn;
  aesql_net_work *w = 0;
  aesql_rng r;
  unsigned char *u = 0;
  float *f = 0, *ga = 0, *gb = 0;
  uint32_t idx[40];
  int b, ok = 1, ok2 = 1, ok3 = 1, mode;

  aesql_nn_data_init(&x, 1, 0, (const unsigned char*)"", 0);
  for(b=0; b<256; b++){
    ok &= aesql_u8_float[b]==(float)b/255.0f && x.lut[b]==aesql_u8_float[b];
    ok2 &= (float)b/255.0f==(float)(b/255.0);
    ok3 &= aesql_u8_float[b]>=0.0f && aesql_u8_float[b]<=1.0f
        && (b==0 || aesql_u8_float[b]>aesql_u8_float[b-1]);
  }
  CHECK("bytes: aesql_u8_float[b] = b/255.0f = the data set's lut[b], every byte", ok);
  /* the tutorial's X / 255: NumPy divides float32 by 255 in float32; the
  ** double quotient rounded once to float is the same for every byte */
  CHECK("bytes: b/255.0f = (float)(b/255.0) for every byte", ok2);
  CHECK("bytes: 0 .. 1, increasing", ok3 && aesql_u8_float[0]==0.0f
        && aesql_u8_float[255]==1.0f);

  /* training reads bytes by the rule: the row passes over bytes and over
  ** their floats aesql_u8_float[b] give the same bits, indexed and
  ** gathered (the same operations on the same values) */
  aesql_rng_seed(&r, 8);
  u = make_bytes(&r, 40, 50, 0.3);
  f = malloc(sizeof(float)*40*50);
  if( !u || !f || net_make(&nn, 50, enc, 2, 0, AESQL_ACT_RELU, AESQL_ACT_LINEAR)
   || !(w = aesql_net_work_new(&nn, 40, 0.0))
   || !(ga = malloc(sizeof(float)*nn.nParam)) || !(gb = malloc(sizeof(float)*nn.nParam)) ){
    CHECK("bytes: alloc", 0);
    goto done;
  }
  for(b=0; b<40*50; b++) f[b] = aesql_u8_float[u[b]];
  for(b=0; b<40; b++) idx[b] = (uint32_t)(39 - b);
  net_randomize(&nn, &r, 0.1);
  for(mode=0; mode<2; mode++){
    const int m = mode ? AESQL_NN_SPARSE_NEVER : AESQL_NN_SPARSE_ALWAYS;
    double sa, sb;
    aesql_nn_data_init(&x, 50, 40, u, 0);
    aesql_nn_data_init(&xf, 50, 40, 0, f);
    aesql_nn_data_index(&x, m);
    aesql_nn_data_index(&xf, m);
    sa = aesql_net_grad_rows(&nn, w, &x, idx, 40, 40, ga, 0, 0, 0);
    sb = aesql_net_grad_rows(&nn, w, &xf, idx, 40, 40, gb, 0, 0, 0);
    CHECK(mode ? "bytes: gathered rows of bytes = rows of their floats, bit for bit"
               : "bytes: indexed rows of bytes = rows of their floats, bit for bit",
          sa==sb && memcmp(ga, gb, sizeof(float)*nn.nParam)==0
          && aesql_net_sse_rows(&nn, w, &xf, idx, 40)==aesql_net_sse_rows(&nn, w, &x, idx, 40));
    aesql_nn_data_free(&x);
    aesql_nn_data_free(&xf);
  }
done:
  aesql_net_free(&nn);
  aesql_net_work_free(w);
  free(u); free(f); free(ga); free(gb);
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
  CHECK("index: init: bytes, no index", x.u8==u && x.f32==0 && x.nz==0 && x.d==d
        && x.n==(size_t)n);
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
  /* floats: -0.0 is a zero; f32 is ignored when there are bytes */
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
  aesql_nn_data_init(&x, d, n, u, f);
  CHECK("index: init with bytes and floats reads the bytes", x.u8==u && x.f32==0);
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

/* ---------------------------------------------------------------- */
/* Dropout */

/* Which of layer l's units (l < nLayer-1) a one-row pass dropped, read
** from its gradient g: row k of W_{l+1}'s gradient is a_k m_k dz, dz
** being layer l+1's dL/dz, so it is all zero exactly when unit k was
** dropped (m_k = 0), given a_k != 0 (tanh: a = 0 only at z = 0) and dz
** != 0. dz_j is 0 where layer l+1 dropped unit j: the kept rows share one
** pattern of zeros. Sets keep[k] (1 kept, 0 dropped); returns 1, or 0
** when every row is zero (layer l+1 dropped all its units: nothing to
** read), or -1 when the kept rows disagree (not a mask). */
static int mask_of(const aesql_net *net, const float *g, int l, signed char *keep){
  const aesql_layer *L = &net->layer[l+1];
  const float *first = 0;
  int k, j, any = 0, agree = 1;
  for(k=0; k<L->nIn; k++){
    const float *row = g + L->off + (size_t)k*L->nOut;
    keep[k] = 0;
    for(j=0; j<L->nOut; j++) if( row[j]!=0.0f ) keep[k] = 1;
    if( !keep[k] ) continue;
    any = 1;
    if( first==0 ){ first = row; continue; }
    for(j=0; j<L->nOut; j++) agree &= (row[j]!=0.0f)==(first[j]!=0.0f);
  }
  return !agree ? -1 : any;
}

/* Batches of 64 rows of 40 pixels through 40-24-16-24-40, tanh on the
** hidden layers (never exactly 0, see mask_of), linear out. */
static void test_dropout_p(double pDrop, int isU8, int mode){
  static const int enc[2] = {24, 16};
  enum { N = 80, D = 40, B = 64 };
  const float keepScale = (float)(1.0/(1.0 - pDrop));
  aesql_rng r;
  aesql_net nn, thin;
  aesql_nn_data x;
  aesql_net_work *wd = 0, *w0 = 0, *w1 = 0;
  unsigned char *u = 0;
  float *f = 0, *g1 = 0, *g2 = 0, *ga = 0, *gb = 0, *gn = 0, Xr[D], *Xd = 0;
  uint32_t idx[N];
  char zc[80], z[240], zw[8];
  double s1, s2, sa, e, worst = 0.0;
  size_t np = 0, p;
  int i, l, ok, nKept = 0, nUnit = 0, nBad = 0, nSame02 = 0, nSamePos = 0;
  signed char mk[3][24], mPrev[24];

  memset(&x, 0, sizeof(x));
  memset(&thin, 0, sizeof(thin));
  snprintf(zc, sizeof(zc), "dropout %.2f, %s %s", pDrop, isU8 ? "u8" : "f32",
           mode==AESQL_NN_SPARSE_NEVER ? "gathered" : "indexed");
  aesql_rng_seed(&r, 4242);
  if( net_make(&nn, D, enc, 2, 0, AESQL_ACT_TANH, AESQL_ACT_LINEAR) ){
    CHECK("dropout: init", 0);
    return;
  }
  np = nn.nParam;
  u = make_bytes(&r, N, D, 0.5);
  f = malloc(sizeof(float)*N*D);
  g1 = malloc(sizeof(float)*np); g2 = malloc(sizeof(float)*np);
  ga = malloc(sizeof(float)*np); gb = malloc(sizeof(float)*np);
  gn = malloc(sizeof(float)*np);
  Xd = malloc(sizeof(float)*B*D);
  wd = aesql_net_work_new(&nn, B, pDrop);
  w0 = aesql_net_work_new(&nn, B, 0.0);
  w1 = aesql_net_work_new(&nn, 1, pDrop);
  if( !u || !f || !g1 || !g2 || !ga || !gb || !gn || !Xd || !wd || !w0 || !w1
   || aesql_net_init(&thin, nn.nLayer, (int[]){D, 24, 16, 24, D},
                     (int[]){AESQL_ACT_TANH, AESQL_ACT_TANH, AESQL_ACT_TANH,
                             AESQL_ACT_LINEAR}, 1) ){
    check_report(0, zc, "out of memory");
    goto done;
  }
  for(i=0; i<N*D; i++) f[i] = aesql_u8_float[u[i]];
  aesql_nn_data_init(&x, D, N, isU8 ? u : 0, isU8 ? 0 : f);
  if( aesql_nn_data_index(&x, mode) ){ CHECK("dropout: index", 0); goto done; }
  net_randomize(&nn, &r, 0.3);
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);

  /* a key gives the same bits twice; another key others; no dropout others */
  s1 = aesql_net_grad_rows(&nn, wd, &x, idx, B, B, g1, 0, 123, 0);
  s2 = aesql_net_grad_rows(&nn, wd, &x, idx, B, B, g2, 0, 123, 0);
  snprintf(z, sizeof(z), "%s: key 123 twice, the same bits", zc);
  CHECK(z, s1==s2 && memcmp(g1, g2, sizeof(float)*np)==0 && isfinite(s1));
  s2 = aesql_net_grad_rows(&nn, wd, &x, idx, B, B, g2, 0, 124, 0);
  snprintf(z, sizeof(z), "%s: key 124, another loss and gradient", zc);
  CHECK(z, s1!=s2 && memcmp(g1, g2, sizeof(float)*np)!=0);
  s2 = aesql_net_grad_rows(&nn, w0, &x, idx, B, B, g2, 0, 123, 0);
  snprintf(z, sizeof(z), "%s: differs from no dropout", zc);
  CHECK(z, s1!=s2 && memcmp(g1, g2, sizeof(float)*np)!=0);

  /* the masks go by the row's position in the batch, whatever the parts:
  ** 2 x 32 (iFirst 0 and 32) and 3 parts (0, 21, 45) add up to the one
  ** pass of 64. Each row computes what it did in the whole pass; only the
  ** float sums over the rows (W, b) run in another order: ~n u of their
  ** largest terms, measured ~1e-7 of max; 1e-6. The loss: double sums of
  ** the same row sums (sgemm may round a row differently for another
  ** number of rows): rel 1e-7. */
  sa = aesql_net_grad_rows(&nn, wd, &x, idx, 32, B, ga, 0, 123, 0);
  sa += aesql_net_grad_rows(&nn, wd, &x, idx+32, 32, B, gb, 0, 123, 32);
  for(p=0; p<np; p++) ga[p] += gb[p];
  e = grad_rel(&nn, ga, g1, zw, sizeof(zw));
  snprintf(z, sizeof(z), "%s: 2 x 32 rows (iFirst 0, 32) = one pass of 64 "
           "(1e-6 of max; sse rel 1e-7)", zc);
  check_report(e<=1e-6 && fabs(sa - s1)<=1e-7*s1, z, "worst %.3g of max in %s, "
               "sse %.9g want %.9g", e, zw, sa, s1);
  sa = aesql_net_grad_rows(&nn, wd, &x, idx, 21, B, ga, 0, 123, 0);
  sa += aesql_net_grad_rows(&nn, wd, &x, idx+21, 24, B, ga, 1, 123, 21);
  sa += aesql_net_grad_rows(&nn, wd, &x, idx+45, 19, B, ga, 1, 123, 45);
  e = grad_rel(&nn, ga, g1, zw, sizeof(zw));
  snprintf(z, sizeof(z), "%s: 21 + 24 + 19 rows, added in place = one pass of 64 "
           "(1e-6 of max; sse rel 1e-7)", zc);
  check_report(e<=1e-6 && fabs(sa - s1)<=1e-7*s1, z, "worst %.3g of max in %s, "
               "sse %.9g want %.9g", e, zw, sa, s1);
  /* and the position matters: the second half given as rows 0.. again */
  sa = aesql_net_grad_rows(&nn, wd, &x, idx, 32, B, ga, 0, 123, 0);
  sa += aesql_net_grad_rows(&nn, wd, &x, idx+32, 32, B, ga, 1, 123, 0);
  e = grad_rel(&nn, ga, g1, zw, sizeof(zw));
  snprintf(z, sizeof(z), "%s: 2 x 32 rows both from iFirst 0: other masks (> 1e-3 of max)", zc);
  check_report(e>1e-3, z, "worst %.3g of max", e);

  /* one row at a time, at positions 0..255: the masks read from the
  ** gradient (mask_of); the gradient of the thinned net, whose W_{l+1}
  ** rows are scaled by the masks, against the reference; the fraction
  ** kept; the layers' and positions' masks independent */
  for(i=0; i<256; i++){
    const uint32_t row = idx[i%N];
    int bad = 0, j, k, known[3], dead;
    aesql_net_grad_rows(&nn, w1, &x, &row, 1, 1, g1, 0, 99, i);
    memcpy(thin.param, nn.param, sizeof(float)*np);
    /* from the top: layer 2's mask is always readable (the output layer
    ** drops nothing, its dz has no zero); once a layer has dropped every
    ** unit, nothing below it gets a gradient and its masks cannot be
    ** read, nor do they matter: taken as all kept */
    for(l=2, dead=0; l>=0; l--){
      const aesql_layer *L = &thin.layer[l+1];
      int rc = mask_of(&nn, g1, l, mk[l]);
      if( rc<0 || (rc>0 && dead) ) bad = 1;
      known[l] = !dead;
      if( dead ){
        memset(mk[l], 1, sizeof(mk[l]));
      }else{
        for(k=0; k<L->nIn; k++){ nKept += mk[l][k]==1; nUnit++; }
        if( rc==0 ) dead = 1;
      }
      for(k=0; k<L->nIn; k++){
        for(j=0; j<L->nOut; j++){
          L->w[(size_t)k*L->nOut + j] *= mk[l][k]==1 ? keepScale : 0.0f;
        }
      }
    }
    nBad += bad;
    if( known[0] ){
      nSame02 += memcmp(mk[0], mk[2], 24)==0;
      if( i>0 ) nSamePos += memcmp(mk[0], mPrev, 24)==0;
      memcpy(mPrev, mk[0], 24);
    }
    /* the thinned net's gradient, mapped back: dL/dW_{l+1}[k] = m_k
    ** dL/dW'_{l+1}[k]; every other tensor is the same */
    rows_dense(&x, &row, 1, Xr);
    aesql_net_grad_naive(&thin, Xr, 1, 0.0, gn);
    for(l=0; l<3; l++){
      const aesql_layer *L = &thin.layer[l+1];
      for(k=0; k<L->nIn; k++){
        for(j=0; j<L->nOut; j++){
          gn[L->off + (size_t)k*L->nOut + j] *= mk[l][k]==1 ? keepScale : 0.0f;
        }
      }
    }
    /* float against double, one row through 4 layers: errors of a few u
    ** of the terms, but with most units dropped (p = 0.75) a tensor's
    ** entries can all come of sums of a few cancelling terms: measured
    ** up to 2.2e-5 of max. What this is for, a mask left out, the scale
    ** 1/(1-p) missing, A used for A m, is O(1): 1e-4 */
    e = grad_rel(&nn, g1, gn, zw, sizeof(zw));
    if( !(e<=worst) ) worst = isnan(e) ? INFINITY : e;
    /* the same row at the same position but another row of the data
    ** set: the same masks (they go by position, not by row) */
    if( i==5 ){
      const uint32_t other = idx[(i+1)%N];
      signed char mo[24];
      aesql_net_grad_rows(&nn, w1, &x, &other, 1, 1, g2, 0, 99, i);
      mask_of(&nn, g2, 2, mo);
      snprintf(z, sizeof(z), "%s: at one position, another row has the same masks", zc);
      CHECK(z, other!=row && memcmp(mo, mk[2], 24)==0);
    }
  }
  snprintf(z, sizeof(z), "%s: one row at a time: the gradient's rows read as masks", zc);
  check_report(nBad==0, z, "%d rows not", nBad);
  snprintf(z, sizeof(z), "%s: the gradient = the thinned net's by the reference "
           "(1e-4 of max, 256 rows)", zc);
  printf("# %s: thinned net, worst %.2e of max\n", zc, worst);
  check_report(worst<=1e-4, z, "worst %.3g of max", worst);
  /* 256 rows x 64 units: sd of the fraction sqrt(p(1-p)/16384), 5 sigma */
  {
    double frac = (double)nKept/nUnit, sd = sqrt(pDrop*(1.0 - pDrop)/nUnit);
    snprintf(z, sizeof(z), "%s: %.4f of %d units kept, 1 - p within 5 sigma (%.4f)",
             zc, frac, nUnit, 5*sd);
    check_report(fabs(frac - (1.0 - pDrop))<=5*sd, z, "kept %.4f, want %.4f", frac,
                 1.0 - pDrop);
  }
  /* two 24-unit masks agree by chance with probability (p^2 + (1-p)^2)^24,
  ** below 2e-3 for p in 0.3 .. 0.75: not once in 256 rows */
  snprintf(z, sizeof(z), "%s: layers 1 and 3 (both 24 wide) never the same mask; "
           "nor consecutive positions", zc);
  check_report(nSame02==0 && nSamePos==0, z, "%d rows, %d positions", nSame02, nSamePos);

  /* the loss-only passes have no dropout: the same bits as a work without */
  rows_dense(&x, idx, B, Xd);
  ok = aesql_net_sse_rows(&nn, wd, &x, idx, N)==aesql_net_sse_rows(&nn, w0, &x, idx, N);
  s1 = aesql_net_forward(&nn, wd, Xd, B, 0);
  ok &= s1==aesql_net_forward(&nn, w0, Xd, B, 0);
  snprintf(z, sizeof(z), "%s: sse_rows and forward: no dropout (the bits of a work "
           "without)", zc);
  CHECK(z, ok);
  s1 = aesql_net_grad(&nn, wd, Xd, B, g1);
  s2 = aesql_net_grad(&nn, w0, Xd, B, g2);
  snprintf(z, sizeof(z), "%s: aesql_net_grad: no dropout (the bits of a work without)", zc);
  CHECK(z, s1==s2 && memcmp(g1, g2, sizeof(float)*np)==0);
  /* without dropout the key changes nothing */
  s1 = aesql_net_grad_rows(&nn, w0, &x, idx, B, B, g1, 0, 1, 0);
  s2 = aesql_net_grad_rows(&nn, w0, &x, idx, B, B, g2, 0, 2, 7);
  snprintf(z, sizeof(z), "%s: a work without dropout ignores the key and iFirst", zc);
  CHECK(z, s1==s2 && memcmp(g1, g2, sizeof(float)*np)==0);
done:
  aesql_nn_data_free(&x);
  aesql_net_free(&nn); aesql_net_free(&thin);
  aesql_net_work_free(wd); aesql_net_work_free(w0); aesql_net_work_free(w1);
  free(u); free(f); free(g1); free(g2); free(ga); free(gb); free(gn); free(Xd);
}

static void test_dropout(void){
  test_dropout_p(0.3, 1, AESQL_NN_SPARSE_ALWAYS);
  test_dropout_p(0.3, 0, AESQL_NN_SPARSE_NEVER);
  test_dropout_p(0.75, 1, AESQL_NN_SPARSE_NEVER);
  /* distinct inputs, distinct seeds */
  CHECK("dropout: drop_seed differs by key, row and layer",
        aesql_net_drop_seed(1, 2, 3)!=aesql_net_drop_seed(2, 2, 3)
        && aesql_net_drop_seed(1, 2, 3)!=aesql_net_drop_seed(1, 3, 3)
        && aesql_net_drop_seed(1, 2, 3)!=aesql_net_drop_seed(1, 2, 4)
        && aesql_net_drop_seed(1, 2, 3)==aesql_net_drop_seed(1, 2, 3));
}

/* The first layer's X' dH row by row and by pixel (ae_net_pass.c) are the
** same sums in the same order: the same gradient bit for bit, over widths
** around the register tiles, bytes and floats, one row to more than a
** block of the transposed index (256 rows), written and added. */
static void test_xtdh_kernels(void){
  static const int widths[] = {1, 3, 8, 13, 31, 32, 33, 48, 64, 100, 129};
  static const int rows[] = {1, 7, 128, 300};
  enum { N = 400, D = 57 };
  aesql_rng r;
  unsigned char *u;
  float *f, *ga = 0, *gb = 0;
  uint32_t idx[N];
  int iw, in, isF, add, i, nBad = 0, nRun = 0;
  char z[160];
  aesql_rng_seed(&r, 41);
  u = make_bytes(&r, N, D, 0.3);
  f = malloc(sizeof(float)*N*D);
  if( !u || !f ){ CHECK("xtdh kernels: alloc", 0); free(u); free(f); return; }
  for(i=0; i<N*D; i++) f[i] = aesql_u8_float[u[i]]*(i%2 ? 1.5f : -0.75f);
  for(i=0; i<N; i++) idx[i] = (uint32_t)i;
  aesql_rng_shuffle(&r, idx, N);
  for(iw=0; iw<(int)(sizeof(widths)/sizeof(widths[0])); iw++){
    const int h = widths[iw];
    int width[3] = {D, h, D};
    aesql_net nn;
    aesql_net_work *wa, *wb;
    if( aesql_net_init(&nn, 2, width, (int[]){AESQL_ACT_ELU, AESQL_ACT_LINEAR}, 0) ){
      CHECK("xtdh kernels: init", 0);
      break;
    }
    aesql_net_glorot(&nn, &r);
    wa = aesql_net_work_new(&nn, N, 0.0);
    wb = aesql_net_work_new(&nn, N, 0.0);
    ga = malloc(sizeof(float)*nn.nParam);
    gb = malloc(sizeof(float)*nn.nParam);
    if( !wa || !wb || !ga || !gb ){
      CHECK("xtdh kernels: alloc", 0);
    }else{
      aesql_net_work_set_xtdh(wa, AESQL_NET_XTDH_ROWS);
      aesql_net_work_set_xtdh(wb, AESQL_NET_XTDH_CSC);
      for(isF=0; isF<2; isF++){
        aesql_nn_data x;
        aesql_nn_data_init(&x, D, N, isF ? 0 : u, isF ? f : 0);
        if( aesql_nn_data_index(&x, AESQL_NN_SPARSE_ALWAYS) ){
          CHECK("xtdh kernels: index", 0);
          continue;
        }
        for(in=0; in<(int)(sizeof(rows)/sizeof(rows[0])); in++){
          const int n = rows[in];
          for(add=0; add<2; add++){
            double sa, sb;
            fill_uniform(&r, ga, nn.nParam, -1.0, 1.0);
            memcpy(gb, ga, sizeof(float)*nn.nParam);
            sa = aesql_net_grad_rows(&nn, wa, &x, idx, n, N, ga, add, 0, 0);
            sb = aesql_net_grad_rows(&nn, wb, &x, idx, n, N, gb, add, 0, 0);
            nRun++;
            if( !(sa==sb) || memcmp(ga, gb, sizeof(float)*nn.nParam)!=0 ){
              if( nBad++==0 ){
                snprintf(z, sizeof(z), "first: %s %d-%d-%d, %d rows, add %d",
                         isF ? "f32" : "u8", D, h, D, n, add);
              }
            }
          }
        }
        aesql_nn_data_free(&x);
      }
    }
    aesql_net_work_free(wa); aesql_net_work_free(wb);
    free(ga); free(gb); ga = gb = 0;
    aesql_net_free(&nn);
  }
  check_report(nBad==0 && nRun==176, "xtdh kernels: X' dH row by row and by pixel, "
               "widths 1 to 129, 1 to 300 rows, bytes and floats, written and "
               "added: the same gradient and loss, bit for bit",
               "%d of %d differ; %s", nBad, nRun, nBad ? z : "");
  free(u); free(f);
}

/* aesql_ssyrk against the naive product of A and A': its upper triangle
** within the classical bound (as sgemm's, above), the strictly lower one
** left as it was, NaNs in C not read with beta 0; both transpositions,
** the Gram way's shapes (32 x 784, 128 x 128) and odd ones. */
static void test_ssyrk_shape(int N, int K, int pad){
  aesql_rng r;
  int tr, beta;
  for(tr=0; tr<2; tr++) for(beta=0; beta<2; beta++){
    const int ar = tr ? K : N, ac = tr ? N : K, lda = ac + pad, ldc = N + pad;
    float *A = calloc((size_t)ar*lda, sizeof(float));
    float *Aa = calloc((size_t)ar*lda, sizeof(float));
    float *C = malloc((size_t)N*ldc*sizeof(float));
    float *Cr = malloc((size_t)N*ldc*sizeof(float));
    float *Cb = malloc((size_t)N*ldc*sizeof(float));
    float *C0 = malloc((size_t)N*ldc*sizeof(float));
    const float alpha = -1.25f;
    double worst = 0.0;
    int i, j, lowerKept = 1;
    if( !A || !Aa || !C || !Cr || !Cb || !C0 ){
      check_report(0, "ssyrk", "out of memory");
      goto next;
    }
    aesql_rng_seed(&r, 91 + tr*2 + beta);
    fill_uniform(&r, A, (size_t)ar*lda, -1.0, 1.0);
    fill_uniform(&r, C, (size_t)N*ldc, -1.0, 1.0);
    for(i=0; i<N; i++){           /* beta 0: the upper C is not read */
      for(j=i; j<N && beta==0; j++) C[(size_t)i*ldc + j] = NAN;
    }
    memcpy(Cr, C, (size_t)N*ldc*sizeof(float));
    memcpy(C0, C, (size_t)N*ldc*sizeof(float));
    for(i=0; i<ar*lda; i++) Aa[i] = fabsf(A[i]);
    aesql_ssyrk(tr, N, K, alpha, A, lda, (float)beta, C, ldc);
    aesql_sgemm_naive(tr, !tr, N, N, K, alpha, A, lda, A, lda, (float)beta,
                      Cr, ldc);
    aesql_sgemm_naive(tr, !tr, N, N, K, 1.0f, Aa, lda, Aa, lda, 0.0f, Cb, ldc);
    for(i=0; i<N; i++){
      for(j=0; j<N; j++){
        const size_t o = (size_t)i*ldc + j;
        if( j<i ){
          if( memcmp(&C[o], &C0[o], sizeof(float))!=0 ) lowerKept = 0;
        }else{
          double bound = (K + 2)*U_FLOAT*(fabs(alpha)*Cb[o]
                                          + (beta ? 1.0 : 0.0)) + 1e-30;
          double e = fabs((double)C[o] - Cr[o])/bound;
          if( !(e<=worst) ) worst = isnan(e) ? INFINITY : e;
        }
      }
    }
    check_report(worst<=1.0 && lowerKept, "ssyrk", "%d x %d, %s, beta %d: "
                 "upper triangle at %.3g of the error bound%s", N, K,
                 tr ? "A'A" : "AA'", beta, worst,
                 lowerKept ? ", lower triangle kept" : ", LOWER TRIANGLE WRITTEN");
  next:
    free(A); free(Aa); free(C); free(Cr); free(Cb); free(C0);
  }
}

/* aesql_net_transpose_sum against the plain loop, bit for bit: shapes
** around the register blocks (1 to 40 rows, 1 to 392 columns), padded
** leading dimensions, one to three matrices. */
static void test_transpose_sum(void){
  static const int rows[] = {1, 3, 15, 16, 17, 33, 40};
  static const int cols[] = {1, 7, 16, 31, 64, 392};
  enum { LDA = 400, LDB = 48, NA = 3 };
  aesql_rng r;
  float *a = malloc(sizeof(float)*NA*40*LDA), *b = malloc(sizeof(float)*392*LDB);
  float *ref = malloc(sizeof(float)*392*LDB);
  const float *aA[NA];
  int ir, ic, nA, i, j, p, nBad = 0, nRun = 0;
  char z[120] = "";
  if( !a || !b || !ref ){
    CHECK("transpose_sum: alloc", 0);
    free(a); free(b); free(ref);
    return;
  }
  aesql_rng_seed(&r, 43);
  fill_uniform(&r, a, (size_t)NA*40*LDA, -2.0, 2.0);
  for(p=0; p<NA; p++) aA[p] = a + (size_t)p*40*LDA + p;  /* unaligned too */
  for(ir=0; ir<(int)(sizeof(rows)/sizeof(rows[0])); ir++){
    for(ic=0; ic<(int)(sizeof(cols)/sizeof(cols[0])); ic++){
      for(nA=1; nA<=NA; nA++){
        const int m = rows[ir], n = cols[ic];
        const int lda = n + 5 <= LDA ? n + 5 : LDA, ldb = m + 3;
        const float alpha = nA==1 ? 1.0f : -0.3711f;
        for(i=0; i<392*LDB; i++) b[i] = ref[i] = 7.0f;
        for(j=0; j<n; j++){
          for(i=0; i<m; i++){
            float e = aA[0][(size_t)i*lda + j];
            for(p=1; p<nA; p++) e += aA[p][(size_t)i*lda + j];
            ref[(size_t)j*ldb + i] = alpha*e;
          }
        }
        aesql_net_transpose_sum(b, ldb, aA, nA, lda, m, n, alpha);
        nRun++;
        if( memcmp(b, ref, sizeof(float)*392*LDB)!=0 && nBad++==0 ){
          snprintf(z, sizeof(z), "first: %d x %d, %d matrices", m, n, nA);
        }
      }
    }
  }
  check_report(nBad==0 && nRun==126, "transpose_sum: 1 to 40 rows, 1 to 392 "
               "columns, 1 to 3 matrices: the plain loop's values, bit for bit, "
               "and nothing written outside B", "%d of %d differ; %s",
               nBad, nRun, z);
  free(a); free(b); free(ref);
}

int main(void){
  const char *zWhy = 0;
  double t0 = check_now();
  aesql_nn_config_mem(fm_malloc, fm_free);
  if( aesql_blas_load(&zWhy) ){
    check_report(0, "blas: load OpenBLAS", "%s", zWhy);
    return check_done();
  }
  printf("# OpenBLAS core %s, %d threads\n", aesql_blas_core(), aesql_blas_threads());
  test_rng();
  test_shapes();
  test_nomem();
  test_sgemm_shape(37, 29, 53, 3);
  test_sgemm_shape(256, 32, 784, 0);    /* the model's shapes */
  test_sgemm_shape(32, 784, 256, 5);
  test_ssyrk_shape(32, 784, 0);         /* the Gram way's blocks of W W' */
  test_ssyrk_shape(128, 128, 0);        /* and its A'A */
  test_ssyrk_shape(37, 19, 3);
  test_kinks();
  test_gradcheck();
  test_blas();
  test_bytes();
  test_index();
  test_xtdh_kernels();
  test_transpose_sum();
  test_dropout();
  check_report(fm.nLive==0, "memory: every block the core allocated is freed",
               "%ld blocks left", fm.nLive);
  printf("# %.1f s\n", check_now() - t0);
  return check_done();
}
