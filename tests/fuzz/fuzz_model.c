/*
** libFuzzer target: the weights BLOB decoder (aesql_model_decode, ext/sql/
** ae_model.h), then, when a BLOB decodes, one row scored with the model
** in every form (ext/sql/ae_score.h): the sparse and dense errors at every
** instruction set the CPU has, the code layer and the reconstruction,
** which read the arrays derived when the model was decoded.
**
**   make fuzz
**   build/fuzz/fuzz_model tests/fuzz/corpus/fuzz_model
**
** The first byte of the input picks how the rest is taken:
**   bit 0 clear  the rest is the BLOB, as it is
**   bit 0 set    the rest is a 32-byte header whose bytes choose a
**                consistent version-2 model, followed by bytes that become
**                its weights: d (bytes 12-15, modulo 97 plus 1), 1 to 3
**                encoder widths (byte 16; bytes 17-19, modulo 70 plus 1:
**                the sparse form (2h < d) and the dense one are reached,
**                and the code layer pads to 16 units or not), the hidden
**                activation (byte 20), a linear or sigmoid output (byte
**                21), the encoding (byte 22); each weight a small float
**                from one byte, so that most inputs decode and reach the
**                scoring kernels.
** The row scored: bytes of the input from the end backwards, as u8 pixels
** or as floats in [-2, 2) for an f32 model. The errors of every form must
** agree (1e-3 relative, or 1e-3 absolute near 0), and be finite, for
** models whose weights are at most FZ_WMAX in magnitude (a trained model's
** are far below). Beyond, only the sanitizers judge: the decoder accepts
** any finite weight, and with weights near float's range the sparse form's
** float32 Gram matrix overflows to inf and its error is NaN where the
** dense form's (in double) is finite: reported, ae_model.c.
*/
#include "../../ext/sql/ae_model.h"
#include "../../ext/sql/ae_score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_WMAX 1e4

static uint32_t fz_get32(const unsigned char *p){
  return (uint32_t)p[0] | (uint32_t)p[1]<<8 | (uint32_t)p[2]<<16 | (uint32_t)p[3]<<24;
}

/* A consistent version-2 BLOB from the header and weight bytes of a (see
** above). */
static unsigned char *fz_repair(const unsigned char *a, size_t n, size_t *pn){
  unsigned char hdr[AESQL_MODEL_HEADER];
  int enc[3], width[AESQL_NET_MAX_LAYERS+1], act[AESQL_NET_MAX_LAYERS];
  int d, k, nL, i;
  size_t np, q;
  aesql_net net;
  unsigned char *p;
  memset(hdr, 0, sizeof(hdr));
  memcpy(hdr, a, n<sizeof(hdr) ? n : sizeof(hdr));
  d = (int)(fz_get32(hdr+12) % 97) + 1;
  k = hdr[16] % 3 + 1;
  for(i=0; i<k; i++) enc[i] = hdr[17+i] % 70 + 1;
  nL = aesql_net_mirror(d, enc, k, width);
  for(i=0; i<nL; i++){
    act[i] = i<nL-1 ? hdr[20] % AESQL_ACT_COUNT
                    : (hdr[21] & 1) ? AESQL_ACT_SIGMOID : AESQL_ACT_LINEAR;
  }
  if( aesql_net_init(&net, nL, width, act, k-1) ) return 0;
  np = net.nParam;
  for(q=0; q<np; q++){
    size_t j = AESQL_MODEL_HEADER + q;
    signed char b = (signed char)(n>AESQL_MODEL_HEADER ? a[AESQL_MODEL_HEADER + j % (n - AESQL_MODEL_HEADER)] : 0);
    net.param[q] = (float)b/64.0f;
  }
  *pn = aesql_codec_size(&net);
  p = malloc(*pn);
  if( p ) aesql_codec_encode(&net, hdr[22] & 1, p);
  aesql_net_free(&net);
  return p;
}

static int fz_check;   /* the model's weights are within FZ_WMAX */

static void fz_close(double a, double b, const char *zWhat){
  double tol;
  if( !fz_check ) return;
  tol = 1e-3*(fabs(a) > fabs(b) ? fabs(a) : fabs(b));
  if( tol<1e-3 ) tol = 1e-3;
  if( !(fabs(a-b)<=tol) ){
    fprintf(stderr, "%s: %.9g against %.9g\n", zWhat, a, b);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size){
  aesql_model m;
  char *zErr = 0;
  unsigned char *aRep = 0;
  const unsigned char *pBlob;
  size_t nBlob;
  int rc;

  if( size<1 ) return 0;
  if( data[0] & 1 ){
    aRep = fz_repair(data+1, size-1, &nBlob);
    if( !aRep ) return 0;
    pBlob = aRep;
  }else{
    pBlob = data+1;
    nBlob = size-1;
  }
  memset(&m, 0, sizeof(m));
  rc = aesql_model_decode(nBlob ? pBlob : 0, (int)nBlob, &m, &zErr);
  if( rc!=SQLITE_OK && rc!=SQLITE_NOMEM && zErr==0 ){
    fprintf(stderr, "an error without a message (%d)\n", rc);
    abort();
  }
  if( rc==SQLITE_OK ){
    const int d = m.nn.d, h = m.nn.h, isF32 = m.dtype==AESQL_F32;
    float *work = malloc(sizeof(float)*aesql_score_work_floats(&m));
    float *hv = malloc(sizeof(float)*((size_t)h + m.nn.wMid + 16));
    float *y = malloc(sizeof(float)*(size_t)d);
    unsigned char *px = malloc((size_t)d*(isF32 ? 4 : 1));
    double e0, e;
    size_t k, np = m.net.nParam;
    int i, isa;
    fz_check = 1;
    for(k=0; k<np; k++) if( fabsf(m.net.param[k])>FZ_WMAX ) fz_check = 0;
    for(i=0; i<d; i++){
      unsigned char b = data[(size - 1 - (size_t)i % size)];
      if( isF32 ){
        float f = (float)((int)b - 128)/64.0f;
        memcpy(px + 4*i, &f, 4);
      }else{
        px[i] = (i % 3)==0 ? 0 : b;    /* sparse, like an image */
      }
    }
    e0 = aesql_score_error_with(&m, px, work, 0, AESQL_ISA_BASE);
    if( fz_check && (!isfinite(e0) || e0<0) ){
      fprintf(stderr, "dense error %.9g\n", e0);
      abort();
    }
    for(isa=AESQL_ISA_BASE; isa<=aesql_score_isa(); isa++){
      e = aesql_score_error_with(&m, px, work, 0, isa);
      fz_close(e, e0, "dense error at another instruction set");
      e = aesql_score_error_with(&m, px, work, 1, isa);
      fz_close(e, e0, "sparse error against dense");
      aesql_score_encode(&m, px, hv, work, isa);
      aesql_score_reconstruct(&m, px, y, work, isa);
    }
    e = aesql_score_error(&m, px, work);
    fz_close(e, e0, "aesql_score_error against dense");
    {
      /* the error from the reconstruction */
      double s = 0;
      for(i=0; i<d; i++){
        float x;
        if( isF32 ) memcpy(&x, px + 4*i, 4); else x = aesql_u8_float[px[i]];
        s += ((double)y[i] - x)*((double)y[i] - x);
      }
      fz_close(s, e0, "sum over the reconstruction against the error");
    }
    free(work); free(hv); free(y); free(px);
  }
  aesql_model_clear(&m);
  sqlite3_free(zErr);
  free(aRep);
  return 0;
}
