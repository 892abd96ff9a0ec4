/*
** Tests of ext/core/ae_codec.c, the weights BLOB, linked with no SQLite:
**
**   round trips      nets of 1, 2, 3, 4, 6 and 16 layers, every activation,
**                    both encodings: the decoded net is the same (shape,
**                    code layer, activations, every parameter's bits) and
**                    encodes to the same bytes
**   the format       one small net's bytes written out by hand, so that
**                    the layout and the byte order are pinned on any host
**   version 1        a BLOB built by hand, as 0.x wrote it, decodes to the
**                    d -> h relu -> d linear net with its exact weights
**   hostile BLOBs    every u32 of a header and of each layer record set to
**                    0, 1, itself + 1, 0x7fffffff, 0xffffffff, and each of
**                    its bits flipped; every truncation; a trailing byte;
**                    widths of 65536 x 65536 in 100 bytes; NaN and Inf
**                    weights. A field whose new value is still legal
**                    (the encoding, the code layer, an activation) must
**                    decode to that BLOB exactly; any other must be
**                    refused, with *net zeroed and nothing left allocated.
**   input transforms the flags word and the float64 offset, scale and fill
**                    value per feature after the weights: round trips bit
**                    for bit (with and without fill values, every
**                    special double), the bytes by hand, and every
**                    mutation of the header, of the table and of each
**                    u32 of the transform (a finite offset or fill, a
**                    finite non-zero scale decode to themselves; the rest
**                    refused), every truncation, a trailing byte, unknown
**                    flags, FILL without XFORM, a transform on u8 pixels;
**                    the old decoder checks a transform and keeps none.
**
**   make build/tests/test_codec && build/tests/test_codec
**   make build/asan-tests/test_codec && build/asan-tests/test_codec
**
** The core's allocator is replaced (aesql_nn_config_mem) by one that counts
** blocks and refuses any request above a limit, so the tests see what a
** refused BLOB made the decoder allocate: nothing above its own length.
*/
#include "../check.h"
#include "../../ext/core/ae_codec.h"

#include <float.h>

/* ---------------------------------------------------------------- */
/* a counting allocator */

static struct {
  unsigned long long limit;   /* requests above this fail */
  unsigned long long nMax;    /* the largest request seen */
  long nCall, nLive;
} mc = { ~0ULL, 0, 0, 0 };

static void *mc_malloc(unsigned long long n){
  void *p;
  mc.nCall++;
  if( n>mc.nMax ) mc.nMax = n;
  if( n>mc.limit ) return 0;
  p = malloc((size_t)n);
  if( p ) mc.nLive++;
  return p;
}
static void mc_free(void *p){
  if( p ){ mc.nLive--; free(p); }
}
static void mc_reset(unsigned long long limit){
  mc.limit = limit;
  mc.nMax = 0;
  mc.nCall = 0;
}

/* ---------------------------------------------------------------- */
/* helpers */

static void put32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v>>8);
  p[2] = (unsigned char)(v>>16); p[3] = (unsigned char)(v>>24);
}
static uint32_t get32(const unsigned char *p){
  return (uint32_t)p[0] | ((uint32_t)p[1]<<8) | ((uint32_t)p[2]<<16)
       | ((uint32_t)p[3]<<24);
}
static uint32_t fbits(float f){ uint32_t u; memcpy(&u, &f, 4); return u; }

static int net_is_zero(const aesql_net *net){
  static const aesql_net zero;
  return memcmp(net, &zero, sizeof(zero))==0;
}

/* Fills every parameter with distinct values of many magnitudes, and the
** first few with the awkward ones a round trip must keep bit for bit. */
static void fill_params(aesql_net *net, uint64_t seed){
  static const float special[] = { -0.0f, 0x1p-149f, -0x1p-149f, FLT_MAX,
                                   -FLT_MAX, FLT_MIN, 1.0f, -1.0f };
  aesql_rng r;
  size_t i;
  aesql_rng_seed(&r, seed);
  for(i=0; i<net->nParam; i++){
    double m = ldexp(2.0*aesql_rng_uniform(&r) - 1.0,
                     (int)aesql_rng_below(&r, 60) - 40);
    net->param[i] = (float)m;
  }
  for(i=0; i<net->nParam && i<sizeof(special)/sizeof(special[0]); i++){
    net->param[i] = special[i];
  }
}

/* "" when a and b are the same net, else what differs. */
static const char *net_diff(const aesql_net *a, const aesql_net *b){
  int l;
  if( a->nLayer!=b->nLayer ) return "nLayer";
  if( a->iCode!=b->iCode ) return "iCode";
  if( a->nParam!=b->nParam ) return "nParam";
  for(l=0; l<a->nLayer; l++){
    const aesql_layer *x = &a->layer[l], *y = &b->layer[l];
    if( x->nIn!=y->nIn || x->nOut!=y->nOut ) return "widths";
    if( x->act!=y->act ) return "act";
    if( x->off!=y->off ) return "offsets";
    if( y->w!=b->param + y->off || y->b!=y->w + (size_t)y->nIn*y->nOut ){
      return "layer pointers";
    }
  }
  if( a->nParam && memcmp(a->param, b->param, 4*a->nParam)!=0 ) return "parameter bits";
  return "";
}

/* Encodes net into a new malloc'd BLOB. */
static unsigned char *encode(const aesql_net *net, int dtype, size_t *pn){
  size_t n = aesql_codec_size(net);
  unsigned char *p = n ? malloc(n) : 0;
  if( p ) aesql_codec_encode(net, dtype, p);
  *pn = p ? n : 0;
  return p;
}

/* Decodes a BLOB that must be refused: rc is CORRUPT or VERSION, *net is
** zeroed, a message is given, nothing is left allocated, and no request
** was larger than the BLOB's floats need. "" when all holds. */
static const char *refused(const unsigned char *p, size_t n, int *pRc,
                           char *zErr, size_t nErr){
  aesql_net net;
  int rc, dtype = -7;
  long nLive = mc.nLive;
  memset(&net, 0x5a, sizeof(net));   /* the decoder must zero it */
  mc_reset(~0ULL);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, nErr);
  *pRc = rc;
  if( rc==AESQL_CODEC_OK ){ aesql_net_free(&net); return "accepted"; }
  if( rc!=AESQL_CODEC_CORRUPT && rc!=AESQL_CODEC_VERSION ) return "wrong code";
  if( !net_is_zero(&net) ) return "*net not zeroed";
  if( dtype!=-7 ) return "*pDtype written";
  if( zErr[0]==0 ) return "no message";
  if( mc.nLive!=nLive ) return "a block leaked";
  if( mc.nMax > n + 256 ) return "allocated more than the BLOB holds";
  return "";
}

/* ---------------------------------------------------------------- */
/* round trips */

/* Whether value v of the u32 at offset off of a valid version-2 BLOB of
** net is legal there (the BLOB then decodes, to itself). */
static int v2_legal(const aesql_net *net, size_t off, uint32_t v){
  size_t tab = AESQL_MODEL_HEADER;
  if( off==12 ) return v<=1;                               /* encoding */
  if( off==20 ) return net->nLayer==1 ? v==0 : v<(uint32_t)net->nLayer-1;
  if( off>=tab && off<tab + 16*(size_t)net->nLayer && (off-tab)%16==8 ){
    return v<AESQL_ACT_COUNT;                              /* activation */
  }
  return 0;
}
static int v1_legal(size_t off, uint32_t v){
  return off==20 && v<=1;
}

/* Every single-u32 mutation of the first nField words of blob p (n
** bytes): the values 0, 1, w+1, 0x7fffffff, 0xffffffff and each single
** bit flip. legal(off, v) says which must decode (to exactly the mutated
** BLOB); the rest must be refused. Returns the number of failures and
** describes the first in zWhy. */
static int mutate_all(const unsigned char *p, size_t n, size_t nField,
                      int (*legal)(const aesql_net*, size_t, uint32_t),
                      const aesql_net *net, int *pnTried, char *zWhy, size_t nWhy){
  unsigned char *q = malloc(n);
  size_t f;
  int nFail = 0, nTried = 0;
  memcpy(q, p, n);
  for(f=0; f<nField; f++){
    uint32_t w = get32(p + 4*f), v[5+32];
    int k;
    v[0] = 0; v[1] = 1; v[2] = w + 1; v[3] = 0x7fffffff; v[4] = 0xffffffff;
    for(k=0; k<32; k++) v[5+k] = w ^ ((uint32_t)1<<k);
    for(k=0; k<5+32; k++){
      char zErr[200];
      const char *zBad;
      int rc, ok;
      if( v[k]==w ) continue;
      put32(q + 4*f, v[k]);
      nTried++;
      ok = legal(net, 4*f, v[k]);
      if( ok ){
        aesql_net got;
        aesql_xform xf;
        int dtype;
        size_t m = 0;
        unsigned char *r = 0;
        rc = aesql_codec_decode_xf(q, n, &got, &dtype, &xf, zErr, sizeof(zErr));
        if( rc==AESQL_CODEC_OK ){   /* with its transform, if it has one */
          m = aesql_codec_size_xf(&got, &xf);
          r = m ? malloc(m) : 0;
          if( r ) aesql_codec_encode_xf(&got, dtype, &xf, r);
          aesql_xform_free(&xf);
        }
        if( rc!=AESQL_CODEC_OK ){
          zBad = zErr;
        }else if( get32(q+8)==1 ){
          /* version 1 is re-encoded as 2: only the encoding may differ */
          zBad = (uint32_t)dtype!=v[k] || !r || get32(r+12)!=v[k]
              || m!=aesql_codec_size(&got) ? "not the mutated encoding" : "";
        }else{
          zBad = (!r || m!=n || memcmp(r, q, n)!=0) ? "does not encode to itself" : "";
        }
        free(r);
        aesql_net_free(&got);
      }else{
        zBad = refused(q, n, &rc, zErr, sizeof(zErr));
      }
      if( zBad[0] ){
        if( nFail++==0 ){
          snprintf(zWhy, nWhy, "offset %zu = 0x%x (%s): %s", 4*f, v[k],
                   ok ? "legal" : "illegal", zBad);
        }
      }
      put32(q + 4*f, w);
    }
  }
  free(q);
  *pnTried = nTried;
  return nFail;
}

/* Adapter: version 1's rule ignores the net. */
static int v1_legal_net(const aesql_net *net, size_t off, uint32_t v){
  (void)net;
  return v1_legal(off, v);
}

/* Every length 0..n-1 of p is refused. Returns the failures. */
static int truncate_all(const unsigned char *p, size_t n, char *zWhy, size_t nWhy){
  size_t len;
  int nFail = 0;
  for(len=0; len<n; len++){
    char zErr[200];
    int rc;
    const char *zBad = refused(p, len, &rc, zErr, sizeof(zErr));
    if( zBad[0] && nFail++==0 ) snprintf(zWhy, nWhy, "length %zu: %s", len, zBad);
  }
  return nFail;
}

/* One net: round trip, then (when `hostile`) mutations, truncations, a
** trailing byte and non-finite weights. */
static void check_net(const char *zName, aesql_net *net, int dtype, int hostile){
  char zCheck[200], zWhy[300] = "", zErr[200];
  unsigned char *p, *p2 = 0;
  size_t n, n2 = 0, want;
  aesql_net got;
  int rc, dt = -1, l;

  want = AESQL_MODEL_HEADER + 16*(size_t)net->nLayer + 4*net->nParam;
  snprintf(zCheck, sizeof(zCheck), "%s: size is header + table + weights", zName);
  CHECK(zCheck, aesql_codec_size(net)==want);
  p = encode(net, dtype, &n);
  snprintf(zCheck, sizeof(zCheck), "%s: encodes", zName);
  CHECK(zCheck, p!=0 && n==want);
  if( !p ) return;
  snprintf(zCheck, sizeof(zCheck), "%s: header says version 2, shape and code", zName);
  {
    int ok = memcmp(p, "AESQLAE\0", 8)==0 && get32(p+8)==2
          && get32(p+12)==(uint32_t)dtype && get32(p+16)==(uint32_t)net->nLayer
          && get32(p+20)==(uint32_t)net->iCode && get32(p+24)==net->nParam
          && get32(p+28)==0;
    for(l=0; l<net->nLayer; l++){
      const unsigned char *r = p + AESQL_MODEL_HEADER + 16*l;
      ok = ok && get32(r)==(uint32_t)net->layer[l].nIn
              && get32(r+4)==(uint32_t)net->layer[l].nOut
              && get32(r+8)==(uint32_t)net->layer[l].act && get32(r+12)==0;
    }
    CHECK(zCheck, ok);
  }

  mc_reset(~0ULL);
  rc = aesql_codec_decode(p, n, &got, &dt, zErr, sizeof(zErr));
  snprintf(zCheck, sizeof(zCheck), "%s: decodes", zName);
  check_report(rc==AESQL_CODEC_OK, zCheck, "rc %d: %s", rc, zErr);
  if( rc==AESQL_CODEC_OK ){
    const char *zDiff = net_diff(net, &got);
    snprintf(zCheck, sizeof(zCheck), "%s: the same net, every parameter's bits", zName);
    check_report(zDiff[0]==0, zCheck, "%s differs", zDiff);
    snprintf(zCheck, sizeof(zCheck), "%s: the same encoding", zName);
    CHECK(zCheck, dt==dtype);
    snprintf(zCheck, sizeof(zCheck), "%s: one allocation, of the parameters", zName);
    CHECK(zCheck, mc.nCall==1 && mc.nMax < 4*net->nParam + 256);
    p2 = encode(&got, dt, &n2);
    snprintf(zCheck, sizeof(zCheck), "%s: re-encodes to the same bytes", zName);
    CHECK(zCheck, p2 && n2==n && memcmp(p, p2, n)==0);
    free(p2);
    aesql_net_free(&got);
  }
  if( !hostile ){ free(p); return; }

  {
    int nTried = 0;
    size_t nField = (AESQL_MODEL_HEADER + 16*(size_t)net->nLayer)/4;
    int nFail = mutate_all(p, n, nField, v2_legal, net, &nTried, zWhy, sizeof(zWhy));
    snprintf(zCheck, sizeof(zCheck), "%s: %d mutations of header and layer "
             "table: legal ones decode to themselves, others refused", zName, nTried);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    int nFail = truncate_all(p, n, zWhy, sizeof(zWhy));
    snprintf(zCheck, sizeof(zCheck), "%s: every truncation (%zu) refused", zName, n);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    unsigned char *q = malloc(n+1);
    const char *zBad;
    memcpy(q, p, n);
    q[n] = 0;
    zBad = refused(q, n+1, &rc, zErr, sizeof(zErr));
    snprintf(zCheck, sizeof(zCheck), "%s: a trailing byte refused", zName);
    check_report(zBad[0]==0 && strcmp(zErr, "corrupt model weights "
                 "(inconsistent header or size)")==0, zCheck, "%s (%s)", zBad, zErr);
    free(q);
  }
  {
    static const uint32_t bad[] = { 0x7fc00000, 0xffc00000, 0x7f800001,
                                    0x7f800000, 0xff800000, 0x7fffffff };
    size_t at[3], w0 = AESQL_MODEL_HEADER + 16*(size_t)net->nLayer;
    unsigned i, j;
    int nFail = 0;
    at[0] = 0; at[1] = net->nParam/2; at[2] = net->nParam-1;
    for(i=0; i<3; i++){
      for(j=0; j<sizeof(bad)/sizeof(bad[0]); j++){
        uint32_t keep = get32(p + w0 + 4*at[i]);
        const char *zBad;
        put32(p + w0 + 4*at[i], bad[j]);
        zBad = refused(p, n, &rc, zErr, sizeof(zErr));
        if( zBad[0]==0 && (rc!=AESQL_CODEC_CORRUPT || strcmp(zErr,
            "corrupt model weights (a weight is not finite)")!=0) ) zBad = zErr;
        if( zBad[0] && nFail++==0 ){
          snprintf(zWhy, sizeof(zWhy), "weight %zu = 0x%08x: %s", at[i], bad[j], zBad);
        }
        put32(p + w0 + 4*at[i], keep);
      }
    }
    snprintf(zCheck, sizeof(zCheck), "%s: NaN and Inf weights refused "
             "(first, middle, last)", zName);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  free(p);
}

static void check_round_trips(void){
  static const struct {
    const char *zName;
    int nLayer, iCode, dtype;
    int width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
    int hostile;
  } nets[] = {
    { "1 layer 9 -> 9 sigmoid", 1, 0, AESQL_F32, {9, 9}, {AESQL_ACT_SIGMOID}, 1 },
    { "1 layer 1 -> 1 linear", 1, 0, AESQL_U8, {1, 1}, {AESQL_ACT_LINEAR}, 1 },
    { "2 layers 5 -> 2 -> 5 selu, tanh", 2, 0, AESQL_F32, {5, 2, 5},
      {AESQL_ACT_SELU, AESQL_ACT_TANH}, 1 },
    { "3 layers 10 -> 4 -> 6 -> 10, code 0", 3, 0, AESQL_U8, {10, 4, 6, 10},
      {AESQL_ACT_TANH, AESQL_ACT_LEAKY_RELU, AESQL_ACT_SIGMOID}, 1 },
    { "3 layers 10 -> 4 -> 6 -> 10, code 1", 3, 1, AESQL_F32, {10, 4, 6, 10},
      {AESQL_ACT_ELU, AESQL_ACT_LINEAR, AESQL_ACT_RELU}, 0 },
    { "4 layers 20 -> 8 -> 3 -> 8 -> 20", 4, 1, AESQL_U8, {20, 8, 3, 8, 20},
      {AESQL_ACT_RELU, AESQL_ACT_ELU, AESQL_ACT_SELU, AESQL_ACT_LINEAR}, 1 },
    { "6 layers 37 -> 16 -> 7 -> 2 -> 7 -> 16 -> 37", 6, 2, AESQL_F32,
      {37, 16, 7, 2, 7, 16, 37},
      {AESQL_ACT_LINEAR, AESQL_ACT_RELU, AESQL_ACT_LEAKY_RELU, AESQL_ACT_ELU,
       AESQL_ACT_SELU, AESQL_ACT_TANH}, 1 },
    { "16 layers", 16, 14, AESQL_U8,
      {6, 5, 4, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 2, 6},
      {0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1}, 1 },
  };
  unsigned k;
  aesql_net net;
  for(k=0; k<sizeof(nets)/sizeof(nets[0]); k++){
    if( aesql_net_init(&net, nets[k].nLayer, nets[k].width, nets[k].act,
                       nets[k].iCode) ){
      check_report(0, nets[k].zName, "aesql_net_init failed");
      continue;
    }
    fill_params(&net, 1000 + k);
    check_net(nets[k].zName, &net, nets[k].dtype, nets[k].hostile);
    aesql_net_free(&net);
  }
  /* The tutorial's model, full size; mutated too (a larger table of
  ** weights behind the same header). */
  if( aesql_net_init_dhd(&net, 784, 32)==0 ){
    fill_params(&net, 7);
    check_net("2 layers 784 -> 32 relu -> 784 linear", &net, AESQL_U8, 1);
    aesql_net_free(&net);
  }else{
    CHECK("aesql_net_init_dhd(784, 32)", 0);
  }
}

/* ---------------------------------------------------------------- */
/* the format, byte for byte */

static void check_format(void){
  static const unsigned char want[72] = {
    'A','E','S','Q','L','A','E',0,  2,0,0,0,  1,0,0,0,     /* f32 */
    1,0,0,0,  0,0,0,0,  6,0,0,0,  0,0,0,0,                 /* 1 layer, 6 */
    2,0,0,0,  2,0,0,0,  5,0,0,0,  0,0,0,0,                 /* 2 -> 2 tanh */
    0x00,0x00,0x80,0x3f,  0x00,0x00,0x00,0xc0,             /* 1, -2 */
    0x00,0x00,0x00,0x3f,  0x00,0x00,0x80,0x3e,             /* 0.5, 0.25 */
    0x00,0x00,0x00,0x80,  0x00,0x00,0x40,0x40,             /* -0, 3 */
  };
  static const float param[6] = { 1.0f, -2.0f, 0.5f, 0.25f, -0.0f, 3.0f };
  const int width[2] = { 2, 2 }, act[1] = { AESQL_ACT_TANH };
  aesql_net net;
  unsigned char got[72];
  if( aesql_net_init(&net, 1, width, act, 0) ){ CHECK("format: init", 0); return; }
  memcpy(net.param, param, sizeof(param));
  CHECK("format: 72 bytes", aesql_codec_size(&net)==72);
  memset(got, 0xee, sizeof(got));
  aesql_codec_encode(&net, AESQL_F32, got);
  CHECK("format: the bytes of version 2, little-endian, as documented",
        memcmp(got, want, sizeof(want))==0);
  aesql_net_free(&net);
}

/* ---------------------------------------------------------------- */
/* input transforms */

static uint64_t dbits(double v){ uint64_t u; memcpy(&u, &v, 8); return u; }
static double get64(const unsigned char *p){
  uint64_t u = (uint64_t)get32(p) | ((uint64_t)get32(p+4)<<32);
  double v;
  memcpy(&v, &u, 8);
  return v;
}
static void put64(unsigned char *p, double v){
  uint64_t u = dbits(v);
  put32(p, (uint32_t)u); put32(p+4, (uint32_t)(u>>32));
}

/* A transform of d features whose values cover the awkward doubles. */
static void fill_xform(aesql_xform *xf, uint64_t seed){
  static const double special[] = { -0.0, 0x1p-1074, -0x1p-1074, 1.7976931348623157e308,
                                    -1.7976931348623157e308, 0x1p-1022, 1.0/3, -1e-300 };
  aesql_rng r;
  int i;
  aesql_rng_seed(&r, seed);
  for(i=0; i<xf->d; i++){
    xf->offset[i] = ldexp(2.0*aesql_rng_uniform(&r) - 1.0, (int)aesql_rng_below(&r, 200) - 100);
    xf->scale[i] = ldexp(0.5 + aesql_rng_uniform(&r), (int)aesql_rng_below(&r, 200) - 100);
    if( i%3==1 ) xf->scale[i] = -xf->scale[i];
    if( xf->fill ) xf->fill[i] = ldexp(aesql_rng_uniform(&r) - 0.5, (int)aesql_rng_below(&r, 60));
    if( i<(int)(sizeof(special)/sizeof(special[0])) ){
      xf->offset[i] = special[i];
      if( special[i]!=0 ) xf->scale[i] = special[(i+3)%8]!=0 ? special[(i+3)%8] : 2.0;
      if( xf->fill ) xf->fill[i] = special[(i+5)%8];
    }
  }
}

/* "" when the transforms are the same, bit for bit. */
static const char *xform_diff(const aesql_xform *a, const aesql_xform *b){
  int i;
  if( a->d!=b->d ) return "d";
  if( (a->fill==0)!=(b->fill==0) ) return "fill or not";
  for(i=0; i<a->d; i++){
    if( dbits(a->offset[i])!=dbits(b->offset[i]) ) return "an offset";
    if( dbits(a->scale[i])!=dbits(b->scale[i]) ) return "a scale";
    if( a->fill && dbits(a->fill[i])!=dbits(b->fill[i]) ) return "a fill value";
  }
  return "";
}

static unsigned char *encode_xf(const aesql_net *net, int dtype,
                                const aesql_xform *xf, size_t *pn){
  size_t n = aesql_codec_size_xf(net, xf);
  unsigned char *p = n ? malloc(n) : 0;
  if( p ) aesql_codec_encode_xf(net, dtype, xf, p);
  *pn = p ? n : 0;
  return p;
}

/* Decodes q (n bytes) that must decode, with its transform, and encode
** back to exactly q. "" when it does. */
static const char *decodes_to_itself(const unsigned char *q, size_t n){
  static char zErr[200];
  aesql_net got;
  aesql_xform xf;
  int dtype, rc;
  size_t m;
  unsigned char *r;
  const char *zBad = "";
  rc = aesql_codec_decode_xf(q, n, &got, &dtype, &xf, zErr, sizeof(zErr));
  if( rc!=AESQL_CODEC_OK ) return zErr;
  r = encode_xf(&got, dtype, &xf, &m);
  if( !r || m!=n || memcmp(r, q, n)!=0 ) zBad = "does not encode to itself";
  free(r);
  aesql_net_free(&got);
  aesql_xform_free(&xf);
  return zBad;
}

/* A BLOB with a transform that must be refused by both decoders, *xf
** zeroed too. "" when it is. */
static const char *refused_xf(const unsigned char *p, size_t n, char *zErr,
                              size_t nErr){
  aesql_net net;
  aesql_xform xf;
  static const aesql_xform zero;
  int rc, dtype = -7;
  long nLive = mc.nLive;
  const char *zBad = refused(p, n, &rc, zErr, nErr);
  if( zBad[0] ) return zBad;
  memset(&xf, 0x5a, sizeof(xf));
  rc = aesql_codec_decode_xf(p, n, &net, &dtype, &xf, zErr, nErr);
  if( rc==AESQL_CODEC_OK ){ aesql_net_free(&net); aesql_xform_free(&xf); return "accepted"; }
  if( memcmp(&xf, &zero, sizeof(zero))!=0 ) return "*xf not zeroed";
  if( !net_is_zero(&net) || dtype!=-7 ) return "*net or *pDtype written";
  if( mc.nLive!=nLive ) return "a block leaked";
  return "";
}

/* Whether value v of the u32 at offset off is legal in a BLOB with a
** transform: as v2_legal, but for the encoding (a transform needs f32). */
static int v2x_legal(const aesql_net *net, size_t off, uint32_t v){
  if( off==12 ) return 0;
  return v2_legal(net, off, v);
}

/* Every single-u32 mutation of the transform at offset x0 of BLOB p (n
** bytes, d features, fill values or not): legal when the double it makes
** is finite (and, for a scale, not 0); a legal one decodes to itself. */
static int mutate_xform(const unsigned char *p, size_t n, size_t x0, int d,
                        int hasFill, int *pnTried, char *zWhy, size_t nWhy){
  unsigned char *q = malloc(n);
  size_t f, nWord = (size_t)d*(hasFill ? 6 : 4);
  int nFail = 0, nTried = 0;
  memcpy(q, p, n);
  for(f=0; f<nWord; f++){
    size_t off = x0 + 4*f, dbl = x0 + 8*(f/2);
    int isScale = (size_t)(dbl - x0) < 16*(size_t)d && ((dbl - x0)/8)%2==1;
    uint32_t w = get32(p + off), v[5+32];
    int k;
    v[0] = 0; v[1] = 1; v[2] = w + 1; v[3] = 0x7fffffff; v[4] = 0xffffffff;
    for(k=0; k<32; k++) v[5+k] = w ^ ((uint32_t)1<<k);
    for(k=0; k<5+32; k++){
      char zErr[200];
      const char *zBad;
      double x;
      int ok;
      if( v[k]==w ) continue;
      put32(q + off, v[k]);
      nTried++;
      x = get64(q + dbl);
      ok = isfinite(x) && !(isScale && x==0.0);
      zBad = ok ? decodes_to_itself(q, n) : refused_xf(q, n, zErr, sizeof(zErr));
      if( zBad[0] && nFail++==0 ){
        snprintf(zWhy, nWhy, "offset %zu = 0x%x (%s): %s", off, v[k],
                 ok ? "legal" : "illegal", zBad);
      }
      put32(q + off, w);
    }
  }
  free(q);
  *pnTried = nTried;
  return nFail;
}

static void check_xform_net(const char *zName, aesql_net *net, int hasFill){
  char zCheck[300], zWhy[300] = "", zErr[200];
  const int d = net->layer[0].nIn;
  size_t n, want, x0 = AESQL_MODEL_HEADER + 16*(size_t)net->nLayer + 4*net->nParam;
  aesql_xform xf, got;
  aesql_net gnet;
  unsigned char *p;
  int rc, dt = -1, i, ok;

  if( aesql_xform_init(&xf, d, hasFill) ){ CHECK("aesql_xform_init", 0); return; }
  fill_xform(&xf, 77u + (unsigned)d);
  want = x0 + (size_t)d*(hasFill ? 24 : 16);
  snprintf(zCheck, sizeof(zCheck), "%s: size is header + table + weights + transform", zName);
  CHECK(zCheck, aesql_codec_size_xf(net, &xf)==want);
  p = encode_xf(net, AESQL_F32, &xf, &n);
  if( !p ){ CHECK(zCheck, 0); aesql_xform_free(&xf); return; }
  snprintf(zCheck, sizeof(zCheck), "%s: flags %d, then the float64 values after the weights", zName,
           hasFill ? 3 : 1);
  ok = get32(p+28)==(uint32_t)(hasFill ? 3 : 1);
  for(i=0; i<d; i++){
    ok = ok && dbits(get64(p + x0 + 16*(size_t)i))==dbits(xf.offset[i])
            && dbits(get64(p + x0 + 16*(size_t)i + 8))==dbits(xf.scale[i]);
    if( hasFill ) ok = ok && dbits(get64(p + x0 + 16*(size_t)d + 8*(size_t)i))==dbits(xf.fill[i]);
  }
  CHECK(zCheck, ok);

  mc_reset(~0ULL);
  rc = aesql_codec_decode_xf(p, n, &gnet, &dt, &got, zErr, sizeof(zErr));
  snprintf(zCheck, sizeof(zCheck), "%s: decodes, the transform too", zName);
  check_report(rc==AESQL_CODEC_OK, zCheck, "rc %d: %s", rc, zErr);
  if( rc==AESQL_CODEC_OK ){
    const char *zDiff = xform_diff(&xf, &got);
    snprintf(zCheck, sizeof(zCheck), "%s: the same transform, every double's bits", zName);
    check_report(zDiff[0]==0, zCheck, "%s differs", zDiff);
    snprintf(zCheck, sizeof(zCheck), "%s: the same net", zName);
    CHECK(zCheck, net_diff(net, &gnet)[0]==0 && dt==AESQL_F32);
    snprintf(zCheck, sizeof(zCheck), "%s: two allocations, parameters and transform", zName);
    CHECK(zCheck, mc.nCall==2 && mc.nMax < n + 256);
    snprintf(zCheck, sizeof(zCheck), "%s: re-encodes to the same bytes", zName);
    CHECK(zCheck, decodes_to_itself(p, n)[0]==0);
    aesql_net_free(&gnet);
    aesql_xform_free(&got);
  }
  /* The decoder without a transform: the net, checked, and no more. */
  mc_reset(~0ULL);
  rc = aesql_codec_decode(p, n, &gnet, &dt, zErr, sizeof(zErr));
  snprintf(zCheck, sizeof(zCheck), "%s: aesql_codec_decode reads the net, keeps no transform", zName);
  CHECK(zCheck, rc==AESQL_CODEC_OK && mc.nCall==1 && net_diff(net, &gnet)[0]==0);
  if( rc==AESQL_CODEC_OK ) aesql_net_free(&gnet);

  {
    int nTried = 0;
    size_t nField = (AESQL_MODEL_HEADER + 16*(size_t)net->nLayer)/4;
    int nFail = mutate_all(p, n, nField, v2x_legal, net, &nTried, zWhy, sizeof(zWhy));
    snprintf(zCheck, sizeof(zCheck), "%s: %d mutations of header and layer "
             "table: legal ones decode, others refused", zName, nTried);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    int nTried = 0;
    int nFail = mutate_xform(p, n, x0, d, hasFill, &nTried, zWhy, sizeof(zWhy));
    snprintf(zCheck, sizeof(zCheck), "%s: %d mutations of the transform: finite "
             "values (non-zero scales) decode to themselves, others refused", zName, nTried);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    int nFail = truncate_all(p, n, zWhy, sizeof(zWhy));
    snprintf(zCheck, sizeof(zCheck), "%s: every truncation (%zu) refused", zName, n);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    unsigned char *q = malloc(n+1);
    const char *zBad;
    memcpy(q, p, n);
    q[n] = 0;
    zBad = refused_xf(q, n+1, zErr, sizeof(zErr));
    snprintf(zCheck, sizeof(zCheck), "%s: a trailing byte refused", zName);
    check_report(zBad[0]==0 && strcmp(zErr, "corrupt model weights "
                 "(inconsistent header or size)")==0, zCheck, "%s (%s)", zBad, zErr);
    free(q);
  }
  {
    /* The messages: a NaN offset, an infinite scale, a zero scale (and
    ** -0), a NaN fill value. */
    static const struct { int rec; int at; double v; const char *zWant; } bad[] = {
      { 0, 0, NAN, "input transform: the offset of feature 1 is not finite" },
      { 0, 8, INFINITY, "input transform: the scale of feature 1 is not finite" },
      { 1, 8, 0.0, "input transform: the scale of feature 2 is 0" },
      { 1, 8, -0.0, "input transform: the scale of feature 2 is 0" },
      { -1, 0, NAN, "input transform: the fill value of feature 1 is not finite" },
    };
    unsigned k;
    int nFail = 0;
    for(k=0; k<sizeof(bad)/sizeof(bad[0]); k++){
      size_t at;
      double keep;
      const char *zBad;
      if( bad[k].rec<0 && !hasFill ) continue;
      if( bad[k].rec>=d ) continue;
      at = bad[k].rec<0 ? x0 + 16*(size_t)d : x0 + 16*(size_t)bad[k].rec + bad[k].at;
      keep = get64(p + at);
      put64(p + at, bad[k].v);
      zBad = refused_xf(p, n, zErr, sizeof(zErr));
      if( zBad[0]==0 && !strstr(zErr, bad[k].zWant) ) zBad = zErr;
      if( zBad[0] && nFail++==0 ) snprintf(zWhy, sizeof(zWhy), "%s: %s", bad[k].zWant, zBad);
      put64(p + at, keep);
    }
    snprintf(zCheck, sizeof(zCheck), "%s: non-finite values and zero scales refused, named", zName);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    const char *zBad;
    put32(p+12, AESQL_U8);
    zBad = refused_xf(p, n, zErr, sizeof(zErr));
    snprintf(zCheck, sizeof(zCheck), "%s: a transform on u8 pixels refused", zName);
    check_report(zBad[0]==0 && strstr(zErr, "an input transform on a model of u8 pixels"),
                 zCheck, "%s (%s)", zBad, zErr);
    put32(p+12, AESQL_F32);
    put32(p+28, 4 | (hasFill ? 3 : 1));
    zBad = refused_xf(p, n, zErr, sizeof(zErr));
    snprintf(zCheck, sizeof(zCheck), "%s: an unknown flag refused", zName);
    check_report(zBad[0]==0 && strstr(zErr, "flags 0x"), zCheck, "%s (%s)", zBad, zErr);
    put32(p+28, hasFill ? 3 : 1);
  }
  free(p);
  aesql_xform_free(&xf);
}

static void check_xforms(void){
  static const struct {
    const char *zName;
    int nLayer, iCode;
    int width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  } nets[] = {
    { "transform: 1 layer 1 -> 1", 1, 0, {1, 1}, {AESQL_ACT_LINEAR} },
    { "transform: 2 layers 5 -> 2 -> 5", 2, 0, {5, 2, 5}, {AESQL_ACT_RELU, AESQL_ACT_LINEAR} },
    { "transform: 4 layers 30 -> 16 -> 8 -> 16 -> 30", 4, 1, {30, 16, 8, 16, 30},
      {AESQL_ACT_ELU, AESQL_ACT_TANH, AESQL_ACT_RELU, AESQL_ACT_LINEAR} },
  };
  unsigned k;
  int fill;
  aesql_net net;
  for(k=0; k<sizeof(nets)/sizeof(nets[0]); k++){
    if( aesql_net_init(&net, nets[k].nLayer, nets[k].width, nets[k].act, nets[k].iCode) ){
      check_report(0, nets[k].zName, "aesql_net_init failed");
      continue;
    }
    fill_params(&net, 500 + k);
    for(fill=0; fill<2; fill++){
      char z[120];
      snprintf(z, sizeof(z), "%s%s", nets[k].zName, fill ? ", fill values" : "");
      check_xform_net(z, &net, fill);
    }
    aesql_net_free(&net);
  }
  /* No transform (NULL or d 0): today's bytes, flags 0. */
  {
    const int width[3] = { 3, 2, 3 }, act[2] = { AESQL_ACT_RELU, AESQL_ACT_LINEAR };
    aesql_xform none;
    size_t n1, n2;
    unsigned char *p1, *p2;
    memset(&none, 0, sizeof(none));
    aesql_net_init(&net, 2, width, act, 0);
    fill_params(&net, 3);
    p1 = encode(&net, AESQL_F32, &n1);
    p2 = encode_xf(&net, AESQL_F32, &none, &n2);
    CHECK("transform: none (d 0) writes the bytes of no transform, flags 0",
          p1 && p2 && n1==n2 && memcmp(p1, p2, n1)==0 && get32(p1+28)==0);
    {
      aesql_net got;
      aesql_xform xf;
      char zErr[200];
      int dt, rc = aesql_codec_decode_xf(p1, n1, &got, &dt, &xf, zErr, sizeof(zErr));
      CHECK("transform: a BLOB without one decodes with xf->d 0",
            rc==AESQL_CODEC_OK && xf.d==0 && xf.offset==0 && xf.fill==0);
      if( rc==AESQL_CODEC_OK ) aesql_net_free(&got);
    }
    {
      aesql_xform wrong;
      aesql_xform_init(&wrong, 4, 0);
      CHECK("transform: of another width than the input's: size 0",
            aesql_codec_size_xf(&net, &wrong)==0);
      aesql_xform_free(&wrong);
    }
    /* FILL without XFORM, on a BLOB whose length would fit a transform
    ** of fill values alone. */
    {
      unsigned char *q = malloc(n1 + 8*3);
      char zErr[200];
      const char *zBad;
      memcpy(q, p1, n1);
      memset(q + n1, 0, 8*3);
      put32(q+28, AESQL_CODEC_FILL);
      zBad = refused_xf(q, n1 + 8*3, zErr, sizeof(zErr));
      check_report(zBad[0]==0 && strstr(zErr, "flags 0x2"), "transform: FILL without "
                   "XFORM refused", "%s (%s)", zBad, zErr);
      free(q);
    }
    free(p1); free(p2);
    aesql_net_free(&net);
  }
  /* The bytes, by hand: 1 -> 1 linear, f32, weights 0.5 and -1, offset
  ** 2.5, scale 0.25, fill -3. */
  {
    static const unsigned char want[32 + 16 + 8 + 16 + 8] = {
      'A','E','S','Q','L','A','E',0,  2,0,0,0,  1,0,0,0,
      1,0,0,0,  0,0,0,0,  2,0,0,0,  3,0,0,0,                 /* flags 3 */
      1,0,0,0,  1,0,0,0,  0,0,0,0,  0,0,0,0,
      0x00,0x00,0x00,0x3f,  0x00,0x00,0x80,0xbf,             /* 0.5, -1 */
      0,0,0,0,0,0,0x04,0x40,  0,0,0,0,0,0,0xd0,0x3f,         /* 2.5, 0.25 */
      0,0,0,0,0,0,0x08,0xc0,                                 /* -3 */
    };
    const int width[2] = { 1, 1 }, act[1] = { AESQL_ACT_LINEAR };
    aesql_xform xf;
    unsigned char got[sizeof(want)];
    aesql_net_init(&net, 1, width, act, 0);
    net.param[0] = 0.5f; net.param[1] = -1.0f;
    aesql_xform_init(&xf, 1, 1);
    xf.offset[0] = 2.5; xf.scale[0] = 0.25; xf.fill[0] = -3;
    CHECK("transform format: 80 bytes", aesql_codec_size_xf(&net, &xf)==sizeof(want));
    memset(got, 0xee, sizeof(got));
    aesql_codec_encode_xf(&net, AESQL_F32, &xf, got);
    CHECK("transform format: the float64 values little-endian after the weights",
          memcmp(got, want, sizeof(want))==0);
    aesql_xform_free(&xf);
    aesql_net_free(&net);
  }
}

/* ---------------------------------------------------------------- */
/* version 1 */

/* d=3, h=2, f32: 17 weights, w1 (3 x 2), b1 (2), w2 (2 x 3), b2 (3). */
static unsigned char *make_v1(size_t *pn, float *w){
  const uint32_t d = 3, h = 2, np = 2*d*h + h + d;
  unsigned char *p = malloc(AESQL_MODEL_HEADER + 4*np);
  uint32_t i;
  memcpy(p, "AESQLAE\0", 8);
  put32(p+8, 1); put32(p+12, d); put32(p+16, h); put32(p+20, AESQL_F32);
  put32(p+24, np); put32(p+28, 0);
  for(i=0; i<np; i++){
    w[i] = i==5 ? -0.0f : ((float)i - 8.0f)/4.0f + (float)i*1e-7f;
    put32(p + AESQL_MODEL_HEADER + 4*i, fbits(w[i]));
  }
  *pn = AESQL_MODEL_HEADER + 4*np;
  return p;
}

static void check_v1(void){
  float w[17];
  size_t n, i;
  unsigned char *p = make_v1(&n, w);
  aesql_net net;
  char zErr[200], zWhy[300] = "";
  int rc, dtype = -1, ok;

  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  check_report(rc==AESQL_CODEC_OK, "v1: decodes", "rc %d: %s", rc, zErr);
  if( rc==AESQL_CODEC_OK ){
    const aesql_layer *L0 = &net.layer[0], *L1 = &net.layer[1];
    CHECK("v1: two layers, code at layer 0, f32",
          net.nLayer==2 && net.iCode==0 && dtype==AESQL_F32 && net.nParam==17);
    CHECK("v1: 3 -> 2 relu -> 3 linear",
          L0->nIn==3 && L0->nOut==2 && L0->act==AESQL_ACT_RELU
       && L1->nIn==2 && L1->nOut==3 && L1->act==AESQL_ACT_LINEAR);
    ok = 1;
    for(i=0; i<6; i++) ok = ok && fbits(L0->w[i])==fbits(w[i]);
    for(i=0; i<2; i++) ok = ok && fbits(L0->b[i])==fbits(w[6+i]);
    for(i=0; i<6; i++) ok = ok && fbits(L1->w[i])==fbits(w[8+i]);
    for(i=0; i<3; i++) ok = ok && fbits(L1->b[i])==fbits(w[14+i]);
    CHECK("v1: w1, b1, w2, b2 bit for bit where the layers point", ok);
    CHECK("v1: code width 2, input width 3",
          aesql_net_code_width(&net)==2 && aesql_net_width(&net)==3);
    /* the migration: a version-1 BLOB re-encoded is a version-2 one of
    ** the same net */
    {
      size_t n2;
      unsigned char *p2 = encode(&net, dtype, &n2);
      aesql_net net2;
      int dt2 = -1;
      rc = p2 ? aesql_codec_decode(p2, n2, &net2, &dt2, zErr, sizeof(zErr)) : -1;
      CHECK("v1: re-encoded as version 2, decodes to the same net",
            rc==AESQL_CODEC_OK && get32(p2+8)==2 && dt2==dtype
         && net_diff(&net, &net2)[0]==0);
      if( rc==AESQL_CODEC_OK ) aesql_net_free(&net2);
      free(p2);
    }
    aesql_net_free(&net);
  }
  {
    int nTried = 0;
    int nFail = mutate_all(p, n, AESQL_MODEL_HEADER/4, v1_legal_net, 0,
                           &nTried, zWhy, sizeof(zWhy));
    char zCheck[120];
    snprintf(zCheck, sizeof(zCheck), "v1: %d mutations of the header: the "
             "encoding may change, others refused", nTried);
    check_report(nFail==0, zCheck, "%d failed, first %s", nFail, zWhy);
  }
  {
    int nFail = truncate_all(p, n, zWhy, sizeof(zWhy));
    check_report(nFail==0, "v1: every truncation refused", "%d failed, first %s",
                 nFail, zWhy);
  }
  {
    unsigned char *q = malloc(n+1);
    const char *zBad;
    memcpy(q, p, n); q[n] = 0;
    zBad = refused(q, n+1, &rc, zErr, sizeof(zErr));
    check_report(zBad[0]==0 && strcmp(zErr, "corrupt model weights "
                 "(inconsistent header or size)")==0, "v1: a trailing byte refused",
                 "%s (%s)", zBad, zErr);
    free(q);
  }
  {
    const char *zBad;
    put32(p + AESQL_MODEL_HEADER + 4*16, 0x7fc00000);
    zBad = refused(p, n, &rc, zErr, sizeof(zErr));
    check_report(zBad[0]==0 && !strcmp(zErr, "corrupt model weights (a weight "
                 "is not finite)"), "v1: a NaN weight refused", "%s (%s)", zBad, zErr);
    put32(p + AESQL_MODEL_HEADER + 4*16, 0xff800000);
    zBad = refused(p, n, &rc, zErr, sizeof(zErr));
    check_report(zBad[0]==0 && !strcmp(zErr, "corrupt model weights (a weight "
                 "is not finite)"), "v1: a -Inf weight refused", "%s (%s)", zBad, zErr);
    put32(p + AESQL_MODEL_HEADER + 4*16, fbits(w[16]));
  }
  free(p);
}

/* ---------------------------------------------------------------- */
/* hostile sizes, messages, out of memory */

/* A version-2 header and table in a BLOB of n zeroed bytes. */
static unsigned char *make_v2(size_t n, uint32_t nLayer, uint32_t iCode,
                              uint32_t np, const uint32_t *width, const uint32_t *act){
  unsigned char *p = calloc(1, n < 64 ? 64 : n);
  uint32_t l;
  memcpy(p, "AESQLAE\0", 8);
  put32(p+8, 2); put32(p+12, AESQL_U8); put32(p+16, nLayer);
  put32(p+20, iCode); put32(p+24, np); put32(p+28, 0);
  for(l=0; l<nLayer && AESQL_MODEL_HEADER + 16*(l+1)<=n; l++){
    unsigned char *r = p + AESQL_MODEL_HEADER + 16*l;
    put32(r, width[l]); put32(r+4, width[l+1]); put32(r+8, act ? act[l] : 0);
  }
  return p;
}

/* Decodes p under an allocator that fails above 1 MB; refused, and
** nothing was even asked for. */
static void check_hostile(const char *zName, const unsigned char *p, size_t n,
                          const char *zWant){
  aesql_net net;
  char zErr[200] = "";
  int rc, dtype = -1;
  long nLive = mc.nLive;
  mc_reset(1<<20);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  check_report(rc==AESQL_CODEC_CORRUPT && mc.nCall==0 && mc.nLive==nLive
               && net_is_zero(&net) && strstr(zErr, zWant)!=0, zName,
               "rc %d, %ld requests (largest %llu), message '%s'",
               rc, mc.nCall, mc.nMax, zErr);
  if( rc==AESQL_CODEC_OK ) aesql_net_free(&net);
  mc_reset(~0ULL);
}

static void check_sizes(void){
  const uint32_t big[3] = { 65536, 65536, 65536 };
  const uint32_t act2[2] = { AESQL_ACT_RELU, AESQL_ACT_LINEAR };
  uint64_t need2 = 2*((uint64_t)65536*65536 + 65536);
  unsigned char *p;
  uint32_t w[AESQL_NET_MAX_LAYERS+1];
  int l;

  p = make_v2(100, 2, 0, (uint32_t)need2, big, act2);
  check_hostile("65536 x 65536 in 100 bytes, nParam its low 32 bits: "
                "refused, nothing allocated", p, 100, "inconsistent header or size");
  put32(p+24, 0xffffffff);
  check_hostile("65536 x 65536 in 100 bytes, nParam 0xffffffff: refused", p, 100,
                "inconsistent header or size");
  free(p);

  /* One layer 2^24 -> 2^24: 2^48 + 2^24 weights, whose low 32 bits are
  ** 2^24, a count a 32-bit product would believe. */
  w[0] = w[1] = AESQL_MAX_WIDTH;
  p = make_v2(100, 1, 0, (uint32_t)((1ULL<<48) + (1ULL<<24)), w, 0);
  check_hostile("2^24 -> 2^24 in 100 bytes, nParam wrapped to 2^24: refused",
                p, 100, "inconsistent header or size");
  free(p);

  /* One layer 65536 -> 65536: 2^32 + 2^16 weights, 2^16 in 32 bits, in
  ** a BLOB as long as 2^16 weights: only a count kept in 64 bits refuses
  ** it (else aesql_net_init would be asked for 16 GB). */
  {
    size_t n = 32 + 16 + 4*(size_t)65536;
    w[0] = w[1] = 65536;
    p = make_v2(n, 1, 0, 65536, w, 0);
    check_hostile("65536 -> 65536 in a BLOB of 2^16 weights, the count wrapped "
                  "to fit: refused, nothing allocated", p, n,
                  "inconsistent header or size");
    free(p);
  }

  /* Sixteen layers at the limits: the sum of the counts near 2^44. */
  for(l=0; l<=AESQL_NET_MAX_LAYERS; l++){
    w[l] = (l==0 || l==AESQL_NET_MAX_LAYERS) ? AESQL_MAX_WIDTH : AESQL_MAX_HIDDEN;
  }
  p = make_v2(32 + 16*16 + 8, 16, 3, 0, w, 0);
  check_hostile("16 layers at the width limits: refused, nothing allocated",
                p, 32 + 16*16 + 8, "inconsistent header or size");
  free(p);

  /* The limits themselves, with sizes that would agree were they legal. */
  w[0] = AESQL_MAX_WIDTH + 1; w[1] = 1; w[2] = AESQL_MAX_WIDTH + 1;
  p = make_v2(100, 2, 0, 0, w, act2);
  check_hostile("input width 2^24 + 1 refused", p, 100, "layer 0 is 16777217 -> 1 wide");
  free(p);
  w[0] = 1; w[1] = AESQL_MAX_HIDDEN + 1; w[2] = 1;
  p = make_v2(100, 2, 0, 0, w, act2);
  check_hostile("hidden width 65537 refused", p, 100, "layer 0 is 1 -> 65537 wide");
  free(p);
  w[0] = 5; w[1] = 3; w[2] = 4; w[3] = 5;
  p = make_v2(100, 3, 0, 0, w, 0);
  put32(p + 32 + 16 + 4, 2);   /* layer 1: 3 -> 2, then layer 2 4 -> 5 */
  check_hostile("widths that do not chain refused", p, 100, "layer 2 is 4 -> 5 wide");
  free(p);
  w[0] = 5; w[1] = 3; w[2] = 6;
  p = make_v2(100, 2, 0, 0, w, act2);
  check_hostile("output width unlike the input's refused", p, 100,
                "layer 1 is 3 -> 6 wide");
  free(p);
  w[0] = 5; w[1] = 3; w[2] = 5;
  p = make_v2(100, 2, 1, 0, w, act2);
  check_hostile("the last layer as the code refused", p, 100, "code layer 1 of 2 layers");
  free(p);
  p = make_v2(100, 17, 0, 0, w, 0);   /* the table as far as 100 bytes go */
  check_hostile("17 layers refused", p, 100, "17 layers, not 1 to 16");
  free(p);
  p = make_v2(100, 0, 0, 0, w, 0);
  check_hostile("0 layers refused", p, 100, "0 layers, not 1 to 16");
  free(p);
  {
    const uint32_t act7[2] = { AESQL_ACT_COUNT, 0 };
    p = make_v2(100, 2, 0, 0, w, act7);
    check_hostile("activation 7 refused", p, 100, "layer 0's activation 7 is unknown");
    free(p);
  }

  /* Version 1 with d = 2^24, h = 65536: nParam's low 32 bits, 100 bytes. */
  p = calloc(1, 100);
  memcpy(p, "AESQLAE\0", 8);
  put32(p+8, 1); put32(p+12, AESQL_MAX_WIDTH); put32(p+16, AESQL_MAX_HIDDEN);
  put32(p+24, (uint32_t)(2*(uint64_t)AESQL_MAX_WIDTH*AESQL_MAX_HIDDEN
                         + AESQL_MAX_WIDTH + AESQL_MAX_HIDDEN));
  check_hostile("v1 2^24 x 65536 in 100 bytes: refused, nothing allocated", p, 100,
                "inconsistent header or size");
  free(p);

  /* The largest hidden width, in a BLOB that holds it: accepted, and
  ** 65537 in one that would hold it refused (above: by its widths). */
  {
    const uint32_t wide[3] = { 1, AESQL_MAX_HIDDEN, 1 };
    uint32_t np = 3*AESQL_MAX_HIDDEN + 1;
    size_t n = 32 + 32 + 4*(size_t)np;
    aesql_net net;
    char zErr[200];
    int rc, dtype;
    p = make_v2(n, 2, 0, np, wide, act2);
    mc_reset(1<<20);
    rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
    check_report(rc==AESQL_CODEC_OK && net.nParam==np && mc.nCall==1,
                 "1 -> 65536 -> 1 accepted, one allocation", "rc %d: %s", rc, zErr);
    if( rc==AESQL_CODEC_OK ) aesql_net_free(&net);
    mc_reset(~0ULL);
    free(p);
  }
}

static void check_messages(void){
  aesql_net net;
  char zErr[200];
  unsigned char *p;
  size_t n;
  float w[17];
  int rc, dtype;

  p = make_v1(&n, w);
  put32(p+8, 7);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  CHECK("version 7: AESQL_CODEC_VERSION", rc==AESQL_CODEC_VERSION && net_is_zero(&net));
  CHECK("version 7: says which versions are read", !strcmp(zErr,
        "model format version 7 is not supported (this libaesql reads versions 1 and 2)"));
  put32(p+8, 0);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  CHECK("version 0: AESQL_CODEC_VERSION", rc==AESQL_CODEC_VERSION);
  put32(p+8, 0xffffffff);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  CHECK("version 0xffffffff: AESQL_CODEC_VERSION, unsigned in the message",
        rc==AESQL_CODEC_VERSION && strstr(zErr, "version 4294967295 ")!=0);
  put32(p+8, 1);

  p[0] = 'X';
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  CHECK("bad magic: CORRUPT, today's message", rc==AESQL_CODEC_CORRUPT
        && !strcmp(zErr, "the weights are not a libaesql model (bad magic number)"));
  p[0] = 'A';
  rc = aesql_codec_decode(p, 20, &net, &dtype, zErr, sizeof(zErr));
  CHECK("shorter than a header: bad magic, as today",
        rc==AESQL_CODEC_CORRUPT && strstr(zErr, "bad magic number")!=0);
  rc = aesql_codec_decode(0, 0, &net, &dtype, zErr, sizeof(zErr));
  CHECK("NULL BLOB: bad magic", rc==AESQL_CODEC_CORRUPT && net_is_zero(&net));

  /* The message fits what it is given, terminated, or is not written. */
  memset(zErr, 'z', sizeof(zErr));
  put32(p+8, 7);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, 6);
  CHECK("a short message buffer: cut and terminated",
        rc==AESQL_CODEC_VERSION && !strcmp(zErr, "model") && zErr[6]=='z');
  rc = aesql_codec_decode(p, n, &net, &dtype, 0, 0);
  CHECK("no message buffer", rc==AESQL_CODEC_VERSION);
  put32(p+8, 1);

  /* Out of memory: every request refused. */
  mc_reset(0);
  rc = aesql_codec_decode(p, n, &net, &dtype, zErr, sizeof(zErr));
  CHECK("out of memory: AESQL_CODEC_NOMEM, *net zeroed",
        rc==AESQL_CODEC_NOMEM && net_is_zero(&net) && mc.nCall==1);
  mc_reset(~0ULL);
  free(p);
}

static void check_size_limit(void){
  aesql_net net;
  /* Only nLayer and nParam are read: a net that is never allocated. */
  memset(&net, 0, sizeof(net));
  net.nLayer = 2;
  net.nParam = (0x7fffffff - 64)/4;           /* 2^31 - 4 bytes in all */
  CHECK("codec_size: 2^31 - 4 bytes", aesql_codec_size(&net)==0x7ffffffc);
  net.nParam++;
  CHECK("codec_size: 2^31 bytes is 0", aesql_codec_size(&net)==0);
  net.nParam = SIZE_MAX/2;
  CHECK("codec_size: absurd nParam is 0, no wrap", aesql_codec_size(&net)==0);
  net.nParam = 10;
  net.nLayer = 0;
  CHECK("codec_size: no layers is 0", aesql_codec_size(&net)==0);
}

int main(void){
  aesql_nn_config_mem(mc_malloc, mc_free);
  check_format();
  check_round_trips();
  check_v1();
  check_sizes();
  check_messages();
  check_size_limit();
  check_xforms();
  CHECK("every block freed", mc.nLive==0);
  aesql_nn_config_mem(0, 0);
  return check_done();
}
