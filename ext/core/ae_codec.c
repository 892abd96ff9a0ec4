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
** whatever the host, and no pointer into it need be aligned.
*/
#include "ae_codec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CODEC_LAYER_REC 16   /* bytes per layer record of version 2 */

static void put_u32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v>>8);
  p[2] = (unsigned char)(v>>16); p[3] = (unsigned char)(v>>24);
}
static uint32_t get_u32(const unsigned char *p){
  return (uint32_t)p[0] | ((uint32_t)p[1]<<8) | ((uint32_t)p[2]<<16)
       | ((uint32_t)p[3]<<24);
}

/* Header plus layer table of a version-2 BLOB of nLayer layers. */
static uint64_t codec_prefix(uint64_t nLayer){
  return AESQL_MODEL_HEADER + CODEC_LAYER_REC*nLayer;
}

size_t aesql_codec_size(const aesql_net *net){
  uint64_t n;
  if( net->nLayer<1 || net->nLayer>AESQL_NET_MAX_LAYERS ) return 0;
  n = codec_prefix((uint64_t)net->nLayer);
  /* nParam is a size_t: compare before multiplying, so that no product
  ** wraps, even where size_t is 64 bits and nParam absurd */
  if( (uint64_t)net->nParam > (0x7fffffff - n)/4 ) return 0;
  return (size_t)(n + 4*(uint64_t)net->nParam);
}

void aesql_codec_encode(const aesql_net *net, int dtype, void *out){
  unsigned char *p = out;
  size_t i;
  int l;
  memcpy(p, AESQL_MODEL_MAGIC, 8);
  put_u32(p+8, AESQL_MODEL_VERSION);
  put_u32(p+12, (uint32_t)dtype);
  put_u32(p+16, (uint32_t)net->nLayer);
  put_u32(p+20, (uint32_t)net->iCode);
  put_u32(p+24, (uint32_t)net->nParam);
  put_u32(p+28, 0);
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

static int codec_decode_v2(const unsigned char *p, size_t nBlob,
                           aesql_net *net, int *pDtype,
                           char *zErr, size_t nErr){
  uint32_t dtype = get_u32(p+12), nLayer = get_u32(p+16);
  uint32_t iCode = get_u32(p+20), np = get_u32(p+24), reserved = get_u32(p+28);
  int width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  uint64_t need = 0;
  uint32_t l;
  if( (dtype!=AESQL_U8 && dtype!=AESQL_F32) || reserved!=0 ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
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
  if( need!=np || (uint64_t)nBlob!=codec_prefix(nLayer) + 4*need ){
    return codec_error(zErr, nErr, AESQL_CODEC_CORRUPT, CODEC_BAD_SIZE ")");
  }
  /* Only now, with np floats known to be in the BLOB, allocate them. */
  if( aesql_net_init(net, (int)nLayer, width, act, (int)iCode)
   || net->nParam!=np ){
    aesql_net_free(net);
    return codec_error(zErr, nErr, AESQL_CODEC_NOMEM, "out of memory");
  }
  *pDtype = (int)dtype;
  return codec_weights(p + codec_prefix(nLayer), net, zErr, nErr);
}

int aesql_codec_decode(const void *pBlob, size_t nBlob, aesql_net *net,
                       int *pDtype, char *zErr, size_t nErr){
  const unsigned char *p = pBlob;
  uint32_t ver;
  int rc, dtype = 0;
  memset(net, 0, sizeof(*net));
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
    case 2:  rc = codec_decode_v2(p, nBlob, net, &dtype, zErr, nErr); break;
    default:
      return codec_error(zErr, nErr, AESQL_CODEC_VERSION,
                         "model format version %u is not supported "
                         "(this libaesql reads versions 1 and 2)", ver);
  }
  if( rc!=AESQL_CODEC_OK ){
    aesql_net_free(net);   /* zeroes *net */
    return rc;
  }
  *pDtype = dtype;
  return AESQL_CODEC_OK;
}
