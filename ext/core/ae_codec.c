/*
** The weights BLOB (declared in ae_codec.h): a net as bytes, version 2,
** and bytes of version 1 or 2 as a net.
**
** The decoder is the one place where bytes from a database, which anyone
** may have written, become sizes. So it reads every field before it
** believes any: the whole layout (header, layer table, nParam) must add up
** to exactly nBlob bytes before the one allocation, whose size is then at
** most nBlob, and the arithmetic is in 64 bits, where no width the limits
** admit can overflow (16 layers of at most 2^24 x 2^16 + 2^16 weights are
** below 2^45).
**
** Bytes are read and written one at a time, so the BLOB is little-endian
** whatever the host, and no pointer into it need be aligned: the float64
** values of an input transform sit at any offset after the weights.
*/
#include "ae_codec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CODEC_LAYER_REC 16   /* bytes per layer record of version 2 */
#define CODEC_XFORM_REC 16   /* bytes per feature of an input transform */
#define CODEC_FLAGS     (AESQL_CODEC_XFORM|AESQL_CODEC_FILL)

static void put_u32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v>>8);
  p[2] = (unsigned char)(v>>16); p[3] = (unsigned char)(v>>24);
}
static uint32_t get_u32(const unsigned char *p){
  return (uint32_t)p[0] | ((uint32_t)p[1]<<8) | ((uint32_t)p[2]<<16)
       | ((uint32_t)p[3]<<24);
}
static void put_f64(unsigned char *p, double v){
  uint64_t u;
  memcpy(&u, &v, 8);
  put_u32(p, (uint32_t)u);
  put_u32(p+4, (uint32_t)(u>>32));
}
static double get_f64(const unsigned char *p){
  uint64_t u = (uint64_t)get_u32(p) | ((uint64_t)get_u32(p+4)<<32);
  double v;
  memcpy(&v, &u, 8);
  return v;
}
/* Is the float64 at p finite? On the bits (exponent all ones: an
** infinity or a NaN), as the weights' test. */
static int f64_finite(const unsigned char *p){
  return (get_u32(p+4) & 0x7ff00000u)!=0x7ff00000u;
}

/* The flags of transform xf (none: 0), and the bytes it takes after the
** weights of a net of input width d. */
static uint32_t codec_xf_flags(const aesql_xform *xf){
  if( !xf || xf->d==0 ) return 0;
  return AESQL_CODEC_XFORM | (xf->fill ? AESQL_CODEC_FILL : 0);
}
static uint64_t codec_xf_bytes(uint32_t flags, uint64_t d){
  if( !(flags & AESQL_CODEC_XFORM) ) return 0;
  return (CODEC_XFORM_REC + ((flags & AESQL_CODEC_FILL) ? 8 : 0))*d;
}

/* Header plus layer table of a version-2 BLOB of nLayer layers. */
static uint64_t codec_prefix(uint64_t nLayer){
  return AESQL_MODEL_HEADER + CODEC_LAYER_REC*nLayer;
}

size_t aesql_codec_size_xf(const aesql_net *net, const aesql_xform *xf){
  uint64_t n;
  if( net->nLayer<1 || net->nLayer>AESQL_NET_MAX_LAYERS ) return 0;
  if( xf && xf->d && xf->d!=net->layer[0].nIn ) return 0;
  /* the transform's bytes: at most 24 * 2^24 */
  n = codec_prefix((uint64_t)net->nLayer)
    + codec_xf_bytes(codec_xf_flags(xf), xf ? (uint64_t)xf->d : 0);
  /* nParam is a size_t: compare before multiplying, so that no product
  ** wraps, even where size_t is 64 bits and nParam absurd */
  if( n>0x7fffffff || (uint64_t)net->nParam > (0x7fffffff - n)/4 ) return 0;
  return (size_t)(n + 4*(uint64_t)net->nParam);
}
size_t aesql_codec_size(const aesql_net *net){
  return aesql_codec_size_xf(net, 0);
}

void aesql_codec_encode(const aesql_net *net, int dtype, void *out){
  aesql_codec_encode_xf(net, dtype, 0, out);
}

void aesql_codec_encode_xf(const aesql_net *net, int dtype,
                           const aesql_xform *xf, void *out){
  unsigned char *p = out;
  const uint32_t flags = codec_xf_flags(xf);
  size_t i;
  int l;
  memcpy(p, AESQL_MODEL_MAGIC, 8);
  put_u32(p+8, AESQL_MODEL_VERSION);
  put_u32(p+12, (uint32_t)dtype);
  put_u32(p+16, (uint32_t)net->nLayer);
  put_u32(p+20, (uint32_t)net->iCode);
  put_u32(p+24, (uint32_t)net->nParam);
  put_u32(p+28, flags);
  p += AESQL_MODEL_HEADER;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    put_u32(p, (uint32_t)L->nIn);
    put_u32(p+4, (uint32_t)L->nOut);
    put_u32(p+8, (uint32_t)L->act);
    put_u32(p+12, 0);
    p += CODEC_LAYER_REC;
  }
  for(i=0; i<net->nParam; i++){
    uint32_t u;
    memcpy(&u, &net->param[i], 4);
    put_u32(p + 4*i, u);
  }
  if( flags ){
    p += 4*net->nParam;
    for(l=0; l<xf->d; l++){
      put_f64(p + CODEC_XFORM_REC*(size_t)l, xf->offset[l]);
      put_f64(p + CODEC_XFORM_REC*(size_t)l + 8, xf->scale[l]);
    }
    p += CODEC_XFORM_REC*(size_t)xf->d;
    for(l=0; xf->fill && l<xf->d; l++) put_f64(p + 8*(size_t)l, xf->fill[l]);
  }
}

/* ---- decoding ---- */

static int codec_error(char *zErr, size_t nErr, int rc, const char *zFmt, ...){
  if( zErr && nErr>0 ){
    va_list ap;
    va_start(ap, zFmt);
    vsnprintf(zErr, nErr, zFmt, ap);
    va_end(ap);
  }
  return rc;
}

/* Today's phrase for every header that does not add up; the new fields
** of version 2 add what they found after a colon. */
#define CODEC_BAD_SIZE "corrupt model weights (inconsistent header or size"

/* The weights: nParam floats at p into net->param, each one finite. The
** test is on the bits (exponent all ones: an infinity or a NaN), which no
** compiler flag about floating point can take away. */
static int codec_weights(const unsigned char *p, aesql_net *net,
                         char *zErr, size_t nErr){
  size_t i;
  for(i=0; i<net->nParam; i++){
    uint32_t u = get_u32(p + 4*i);
    if( (u & 0x7f800000)==0x7f800000 ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                         "corrupt model weights (a weight is not finite)");
    }
    memcpy(&net->param[i], &u, 4);
  }
  return AESQL_CODEC_OK;
}

/* Version 1: the tutorial's d -> h relu -> d linear, code at layer 0. */
static int codec_decode_v1(const unsigned char *p, size_t nBlob,
                           aesql_net *net, int *pDtype,
                           char *zErr, size_t nErr){
  uint32_t d = get_u32(p+12), h = get_u32(p+16);
  uint32_t dtype = get_u32(p+20), np = get_u32(p+24), reserved = get_u32(p+28);
  uint64_t need;
  if( d<1 || d>AESQL_MAX_WIDTH || h<1 || h>AESQL_MAX_HIDDEN
   || (dtype!=AESQL_U8 && dtype!=AESQL_F32) || reserved!=0 ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  need = 2*(uint64_t)d*h + h + d;   /* below 2^42: no overflow */
  if( need!=np || (uint64_t)nBlob!=AESQL_MODEL_HEADER + 4*need ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  if( aesql_net_init_dhd(net, (int)d, (int)h) || net->nParam!=np ){
    aesql_net_free(net);
    return codec_error(zErr, nErr, AESQL_CODEC_NOMEM, "out of memory");
  }
  *pDtype = (int)dtype;
  return codec_weights(p + AESQL_MODEL_HEADER, net, zErr, nErr);
}

/* The input transform of d features at p (flags say what it holds), each
** value checked; kept in *xf when xf is not NULL (allocated here: its size
** is within the BLOB's, which the caller has checked). */
static int codec_xform(const unsigned char *p, uint32_t flags, int d,
                       aesql_xform *xf, char *zErr, size_t nErr){
  const unsigned char *pFill = p + CODEC_XFORM_REC*(size_t)d;
  int i;
  for(i=0; i<d; i++){
    const unsigned char *r = p + CODEC_XFORM_REC*(size_t)i;
    if( !f64_finite(r) || !f64_finite(r+8) ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, "corrupt model "
                         "weights (input transform: the %s of feature %d is "
                         "not finite)", f64_finite(r) ? "scale" : "offset", i+1);
    }
    if( get_f64(r+8)==0.0 ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, "corrupt model "
                         "weights (input transform: the scale of feature %d "
                         "is 0)", i+1);
    }
    if( (flags & AESQL_CODEC_FILL) && !f64_finite(pFill + 8*(size_t)i) ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, "corrupt model "
                         "weights (input transform: the fill value of feature "
                         "%d is not finite)", i+1);
    }
  }
  if( !xf ) return AESQL_CODEC_OK;
  if( aesql_xform_init(xf, d, (flags & AESQL_CODEC_FILL)!=0) ){
    return codec_error(zErr, nErr, AESQL_CODEC_NOMEM, "out of memory");
  }
  for(i=0; i<d; i++){
    xf->offset[i] = get_f64(p + CODEC_XFORM_REC*(size_t)i);
    xf->scale[i] = get_f64(p + CODEC_XFORM_REC*(size_t)i + 8);
    if( xf->fill ) xf->fill[i] = get_f64(pFill + 8*(size_t)i);
  }
  return AESQL_CODEC_OK;
}

static int codec_decode_v2(const unsigned char *p, size_t nBlob,
                           aesql_net *net, int *pDtype, aesql_xform *xf,
                           char *zErr, size_t nErr){
  uint32_t dtype = get_u32(p+12), nLayer = get_u32(p+16);
  uint32_t iCode = get_u32(p+20), np = get_u32(p+24), flags = get_u32(p+28);
  int width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  uint64_t need = 0, nXf;
  uint32_t l;
  int rc;
  if( dtype!=AESQL_U8 && dtype!=AESQL_F32 ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  if( (flags & ~(uint32_t)CODEC_FLAGS)!=0
   || (flags==AESQL_CODEC_FILL) ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                       CODEC_BAD_SIZE ": flags 0x%x)", flags);
  }
  if( flags && dtype!=AESQL_F32 ){
    /* Bytes are scaled by 1/255, always; a transform is for numbers. */
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                       "corrupt model weights (an input transform on a model "
                       "of u8 pixels)");
  }
  if( nLayer<1 || nLayer>AESQL_NET_MAX_LAYERS ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                       CODEC_BAD_SIZE ": %u layers, not 1 to %d)",
                       nLayer, AESQL_NET_MAX_LAYERS);
  }
  if( (uint64_t)nBlob < codec_prefix(nLayer) ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  /* The code is a hidden layer's output; only a one-layer net, which has
  ** none, has its output (the reconstruction) as its code. */
  if( nLayer==1 ? iCode!=0 : iCode>=nLayer-1 ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                       CODEC_BAD_SIZE ": code layer %u of %u layers)",
                       iCode, nLayer);
  }
  for(l=0; l<nLayer; l++){
    const unsigned char *r = p + codec_prefix(l);
    uint32_t nIn = get_u32(r), nOut = get_u32(r+4);
    uint32_t a = get_u32(r+8), res = get_u32(r+12);
    int ok;
    if( l==0 ){
      ok = nIn>=1 && nIn<=AESQL_MAX_WIDTH;
      width[0] = (int)nIn;     /* in range of int: at most 2^24 */
    }else{
      ok = nIn==(uint32_t)width[l];
    }
    if( l==nLayer-1 ){
      ok = ok && nOut==(uint32_t)width[0];
    }else{
      ok = ok && nOut>=1 && nOut<=AESQL_MAX_HIDDEN;
    }
    if( !ok ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                         CODEC_BAD_SIZE ": layer %u is %u -> %u wide)",
                         l, nIn, nOut);
    }
    if( res!=0 ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                         CODEC_BAD_SIZE ": layer %u's reserved field is %u)",
                         l, res);
    }
    /* Checked as a number: the names are ae_act.c's, and a BLOB needs
    ** none of them to be read. */
    if( a>=AESQL_ACT_COUNT ){
      return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                         "corrupt model weights (layer %u's activation %u "
                         "is unknown)", l, a);
    }
    width[l+1] = (int)nOut;
    act[l] = (int)a;
    need += (uint64_t)nIn*nOut + nOut;   /* below 2^41 a layer, 2^45 all */
  }
  nXf = codec_xf_bytes(flags, (uint64_t)width[0]);   /* at most 24 * 2^24 */
  if( need!=np || (uint64_t)nBlob!=codec_prefix(nLayer) + 4*need + nXf ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  /* The transform's values before any allocation, then the weights: only
  ** now, with np floats known to be in the BLOB, allocate them. */
  if( flags ){
    rc = codec_xform(p + codec_prefix(nLayer) + 4*need, flags, width[0], 0,
                     zErr, nErr);
    if( rc!=AESQL_CODEC_OK ) return rc;
  }
  if( aesql_net_init(net, (int)nLayer, width, act, (int)iCode)
   || net->nParam!=np ){
    aesql_net_free(net);
    return codec_error(zErr, nErr, AESQL_CODEC_NOMEM, "out of memory");
  }
  *pDtype = (int)dtype;
  rc = codec_weights(p + codec_prefix(nLayer), net, zErr, nErr);
  if( rc==AESQL_CODEC_OK && flags && xf ){
    rc = codec_xform(p + codec_prefix(nLayer) + 4*need, flags, width[0], xf,
                     zErr, nErr);
  }
  return rc;
}

int aesql_codec_decode(const void *pBlob, size_t nBlob, aesql_net *net,
                       int *pDtype, char *zErr, size_t nErr){
  return aesql_codec_decode_xf(pBlob, nBlob, net, pDtype, 0, zErr, nErr);
}

int aesql_codec_decode_xf(const void *pBlob, size_t nBlob, aesql_net *net,
                          int *pDtype, aesql_xform *xf, char *zErr, size_t nErr){
  const unsigned char *p = pBlob;
  uint32_t ver;
  int rc, dtype = 0;
  memset(net, 0, sizeof(*net));
  if( xf ) memset(xf, 0, sizeof(*xf));
  if( zErr && nErr>0 ) zErr[0] = 0;
  /* Shorter than a header is "bad magic", as version 1's reader said:
  ** nothing that short was ever written by libaesql. */
  if( !p || nBlob<AESQL_MODEL_HEADER || memcmp(p, AESQL_MODEL_MAGIC, 8)!=0 ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT,
                       "the weights are not a libaesql model (bad magic number)");
  }
  ver = get_u32(p+8);
  switch( ver ){
    case 1:  rc = codec_decode_v1(p, nBlob, net, &dtype, zErr, nErr); break;
    case 2:  rc = codec_decode_v2(p, nBlob, net, &dtype, xf, zErr, nErr); break;
    default:
      return codec_error(zErr, nErr, AESQL_CODEC_VERSION,
                         "model format version %u is not supported "
                         "(this libaesql reads versions 1 and 2)", ver);
  }
  if( rc!=AESQL_CODEC_OK ){
    aesql_net_free(net);   /* zeroes *net */
    if( xf ) aesql_xform_free(xf);
    return rc;
  }
  *pDtype = dtype;
  return AESQL_CODEC_OK;
}
