/*
** Data sets and their index of non-zero pixels (declared in ae_data.h).
*/
#include "ae_data.h"
#include "ae_mem.h"

#include <stdint.h>
#include <string.h>

/* b/255.0f for every byte, computed once by the compiler. */
#define U8F(b) ((float)(b)/255.0f)
#define U8F4(b) U8F(b), U8F(b+1), U8F(b+2), U8F(b+3)
#define U8F16(b) U8F4(b), U8F4(b+4), U8F4(b+8), U8F4(b+12)
#define U8F64(b) U8F16(b), U8F16(b+16), U8F16(b+32), U8F16(b+48)
const float aesql_u8_float[256] = { U8F64(0), U8F64(64), U8F64(128), U8F64(192) };

void aesql_nn_data_init(aesql_nn_data *x, int d, size_t n,
                        const unsigned char *u8, const float *f32){
  memset(x, 0, sizeof(*x));
  x->d = d;
  x->n = n;
  x->u8 = u8;
  x->f32 = u8 ? 0 : f32;
  memcpy(x->lut, aesql_u8_float, sizeof(x->lut));
}

/* Bytes are looked at eight at a time (most words of a sparse image are
** all zero): the non-zero bytes of a word w are the high bits of
** ((w & 0x7f..) + 0x7f..) | w. */
#define NN_LO7 0x7f7f7f7f7f7f7f7full
#define NN_HI1 0x8080808080808080ull

/* Non-zero pixels of row r. */
static size_t nn_row_nnz(const aesql_nn_data *x, size_t r){
  size_t c = 0;
  int i = 0;
  if( x->u8 ){
    const unsigned char *p = x->u8 + r*x->d;
    for(; i+8<=x->d; i+=8){
      uint64_t w;
      memcpy(&w, p+i, 8);
      if( w ){
        w = ((((w & NN_LO7) + NN_LO7) | w) & NN_HI1) >> 7;
        c += (size_t)((w*0x0101010101010101ull) >> 56);
      }
    }
    for(; i<x->d; i++) c += p[i]!=0;
  }else{
    const float *p = x->f32 + r*x->d;
    for(; i<x->d; i++) c += p[i]!=0.0f;
  }
  return c;
}

/* Writes row r's non-zero pixels' positions to nz; returns how many. The
** writes are branch-free: a slot for every pixel, kept for the non-zero
** ones, so nz needs one spare slot after the last. */
static size_t nn_row_fill(const aesql_nn_data *x, size_t r, uint16_t *nz){
  size_t k = 0;
  int i = 0, j;
  if( x->u8 ){
    const unsigned char *p = x->u8 + r*x->d;
    for(; i+8<=x->d; i+=8){
      uint64_t w;
      memcpy(&w, p+i, 8);
      if( w==0 ) continue;
      for(j=0; j<8; j++){ nz[k] = (uint16_t)(i+j); k += p[i+j]!=0; }
    }
    for(; i<x->d; i++){ nz[k] = (uint16_t)i; k += p[i]!=0; }
  }else{
    const float *p = x->f32 + r*x->d;
    for(; i<x->d; i++){ nz[k] = (uint16_t)i; k += p[i]!=0.0f; }
  }
  return k;
}

int aesql_nn_data_index(aesql_nn_data *x, int mode){
  size_t r, nnz = 0;
  aesql_nn_data_free(x);
  if( mode==AESQL_NN_SPARSE_NEVER || x->d<=0 || x->d>65536 || x->n==0 ) return 0;
  if( x->n > (SIZE_MAX/sizeof(size_t)) - 1 ) return 1;
  x->nzStart = aesql_nn_malloc((x->n + 1)*sizeof(size_t));
  if( x->nzStart==0 ) return 1;
  for(r=0; r<x->n; r++){
    x->nzStart[r] = nnz;
    nnz += nn_row_nnz(x, r);
  }
  x->nzStart[x->n] = nnz;
  if( mode==AESQL_NN_SPARSE_AUTO
   && (double)nnz > AESQL_NN_SPARSE_MAX*(double)x->n*x->d ){
    aesql_nn_data_free(x);
    return 0;
  }
  x->nz = aesql_nn_malloc((nnz + 1)*sizeof(uint16_t));     /* a spare: nn_row_fill */
  if( x->nz==0 ){
    aesql_nn_data_free(x);
    return 1;
  }
  for(r=0; r<x->n; r++) nn_row_fill(x, r, x->nz + x->nzStart[r]);
  return 0;
}

void aesql_nn_data_free(aesql_nn_data *x){
  aesql_nn_mfree(x->nzStart);
  aesql_nn_mfree(x->nz);
  x->nzStart = 0;
  x->nz = 0;
}
