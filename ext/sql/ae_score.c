/*
** Scoring with a trained model, one row at a time, in any query:
**
**   .load ./libaesql
**   SELECT rowid, ae_error('mnist_train_32', pixels) FROM mnist_test;
**
**   ae_error(model, pixels)       -> REAL, sum over pixels of (x - y)^2
**   ae_reconstruct(model, pixels) -> BLOB in the input's encoding
**   ae_encode(model, pixels)      -> BLOB, the code layer as float32 LE
**
** model is a name in ae_models; pixels a BLOB of d bytes (u8 models) or
** d little-endian float32 (f32 models); NULL pixels give NULL.
**
** A model of numeric columns (ae_columns.h) takes its d features instead,
** as arguments, ae_error('cells', radius_mean, texture_mean, ...), or as
** one vector BLOB of the raw values (ae_vector); each value goes through
** the model's input transform into a row of floats that the same kernels
** score. ae_is_anomaly takes an optional rate after either form. Then:
**
**   ae_reconstruct(model, x1, ..., xd) -> JSON {"x1": value, ...}, the
**                                         original units, in order
**   ae_explain(model, x1, ..., xd)     -> JSON [{"feature", "share",
**                                         "value", "reconstructed"}, ...]
**                                         largest share of the error first
**
** The scalar functions are registered for the counts of a model of pixels
** (2, and 3 for ae_is_anomaly), as they always were, and for any count
** (-1), which SQLite falls back to for the others.
**
** The model is read from ae_models and decoded once per statement: it is
** kept as the function's auxdata on its first argument, which SQLite keeps
** for as long as that argument is a constant.
**
** ae_error on byte images never builds the reconstruction. With x the
** scaled input, h = relu(b1 + x W1) and y = h W2 + b2:
**   |y - x|^2 = h'(W2 W2')h + 2 h'(W2 b2) - 2 h'(W2 x) + b2.b2 - 2 b2.x + x.x
** where W2 W2' (h x h) and W2 b2 are computed once per model (ae_model.c),
** and every term that involves x runs over its non-zero pixels only:
** about a fifth of an MNIST digit. The kernel lists the non-zero pixels
** (AVX-512: 64 tested at once, compressed 16 at a time), then makes one
** pass over them, reading for each one row of w12 = [W1 | W2'] (2h floats,
** contiguous) into vector accumulators: x W1 and W2 x at once, 4h flops a
** pixel. The code layer is padded to a multiple of 16 units with zeros,
** so any h runs the same vector code. On MNIST (150 non-zero pixels, h =
** 32) that pass moves 38 KB from L2, which bounds the kernel (~0.4 us of
** its ~0.6 on AMD Zen 4); SQLite's own cost per row is ~0.35 us.
**
** Precision: the terms above are ten times the error on a well trained
** model and cancel; float sums over 400 pixels (Fashion-MNIST) lose 1e-5
** of it. So the pass sums 16 pixels at a time in float and the blocks in
** double, and the rest runs in double: within ~5e-7 of the naive double
** pass on MNIST and Fashion-MNIST (tests/sql/test_score.c holds it to 1e-5).
**
** The dense form (encode, decode, sum of squares; zero pixels and inactive
** units skipped) serves f32 models and wide code layers (2h >= d, or
** past the AESQL_SPARSE_MAX_* limits), where the expansion would not pay.
**
** ae_scores (ae_scores.c) calls the same kernel: its errors equal
** ae_error's bit for bit on one machine.
*/
#include "ae_model.h"
#include "ae_score.h"
#include "ae_calib.h"
#include "ae_store.h"
#include "ae_columns.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__!=__ORDER_LITTLE_ENDIAN__
# error "libaesql reads float32 BLOBs as little-endian: port ae_score.c first"
#endif

/* The kernels (ae_score_kern.h) are compiled for AVX-512, for AVX2+FMA
** and for the baseline, and chosen at run time with __builtin_cpu_supports
** (no ifunc, so the sanitizers see them all). -DAESQL_NO_DISPATCH keeps
** the baseline only, as on other architectures. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(AESQL_NO_DISPATCH)
# define AE_X86 1
# include <immintrin.h>
# define AE_V4 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,popcnt")))
# define AE_V3 __attribute__((target("avx2,fma,popcnt")))
#else
# define AE_X86 0
#endif

static int isa_detect(void){
  int isa = AESQL_ISA_BASE;
#if AE_X86
  __builtin_cpu_init();
  if( __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
   && __builtin_cpu_supports("popcnt") ){
    isa = AESQL_ISA_AVX2;
    if( __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
     && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ){
      isa = AESQL_ISA_AVX512;
    }
  }
#endif
  return isa;
}

int aesql_score_isa(void){
  static int best = -1;   /* every thread computes the same value */
  int isa = __atomic_load_n(&best, __ATOMIC_RELAXED);
  if( isa<0 ){
    isa = isa_detect();
    __atomic_store_n(&best, isa, __ATOMIC_RELAXED);
  }
  return isa;
}

static int isa_pick(int isa){
  int best = aesql_score_isa();
  return isa<0 || isa>best ? best : isa;
}

/* ---- scratch space ----
** Sparse form: acc (2hp doubles, 64-byte aligned), then the non-zero
** list: idx and val, d+32 entries each. Dense form (dense_layout): hd (hp
** doubles, aligned), yd (d doubles) and d floats, hv (hw floats), y (d
** floats). Then, for models with middle layers, their scratch (mid_layout):
** three vectors of hw doubles. hw is the widest of h and the middle layers,
** rounded up to 16. */
static size_t work_hw(const aesql_model *m){
  size_t w = (size_t)(m->nn.wMid > m->hp ? m->nn.wMid : m->hp);
  return (w + 15) & ~(size_t)15;
}
static size_t work_base(const aesql_model *m){
  const size_t hp = (size_t)m->hp, d = (size_t)m->nn.d, hw = work_hw(m);
  const size_t nSparse = 4*hp + 2*(d + 32), nDense = 2*hp + hw + 4*d;
  return 16 + (nSparse > nDense ? nSparse : nDense);
}
size_t aesql_score_work_floats(const aesql_model *m){
  return work_base(m) + (m->nn.nMid ? 6*work_hw(m) + 16 : 0);
}
static float *work_align(float *w){
  return (float*)(((uintptr_t)w + 63) & ~(uintptr_t)63);
}
static void dense_layout(const aesql_model *m, float *work, double **phd,
                         double **pyd, float **phv){
  double *hd = (double*)work_align(work);
  *phd = hd;
  *pyd = hd + m->hp;
  *phv = (float*)(hd + m->hp + m->nn.d) + m->nn.d;
}
static double *mid_layout(const aesql_model *m, float *work){
  return (double*)work_align(work + work_base(m));
}

/* ---- the middle layers ----
** Layers 1..upto of a deeper model, on the first layer's output a (h
** doubles), in place: a ends as layer upto's output (its width; the
** caller's array holds hw). Plain loops in double, one input at a time
** (each a row of the kernel, contiguous), zero inputs skipped (the
** ReLU's). They are narrow: the first and last layers dominate. */
static void score_mid_d(const aesql_model *m, double *a, float *work, int upto){
  const size_t hw = work_hw(m);
  double *t = mid_layout(m, work), *u = t + hw, *x;
  int l, i, k, nIn = m->nn.h;
  memcpy(t, a, sizeof(double)*(size_t)nIn);
  for(l=1; l<=upto; l++){
    const aesql_layer *L = &m->net.layer[l];
    for(k=0; k<L->nOut; k++) u[k] = L->b[k];
    for(i=0; i<L->nIn; i++){
      const float *w = L->w + (size_t)i*L->nOut;
      const double xi = t[i];
      if( xi==0.0 ) continue;
      for(k=0; k<L->nOut; k++) u[k] += xi*w[k];
    }
    for(k=0; k<L->nOut; k++) u[k] = aesql_act_f(L->act, u[k]);
    x = t; t = u; u = x;
    nIn = L->nOut;
  }
  memcpy(a, t, sizeof(double)*(size_t)nIn);
}
/* The same on floats hv (rounded once at the end). */
static void score_mid_f(const aesql_model *m, float *hv, float *work, int upto){
  double *a = mid_layout(m, work) + 2*work_hw(m);
  int k, nOut = upto>0 ? m->net.layer[upto].nOut : m->nn.h;
  for(k=0; k<m->nn.h; k++) a[k] = hv[k];
  score_mid_d(m, a, work, upto);
  for(k=0; k<nOut; k++) hv[k] = (float)a[k];
}

/* ---- listing the non-zero pixels of a u8 row ----
** Writes their indices and values (b/255.0f, ae_data.h's one rule) to idx
** and val, zeroes val[n..n+16), returns their number n and b2.x in *pbx. */

static inline __attribute__((always_inline))
int nz_list(const unsigned char *p, int d, const float *b2, int32_t *idx,
            float *val, double *pbx){
  double bx[4] = {0, 0, 0, 0};
  int i = 0, n = 0, j, t;
  for(; i+8<=d; i+=8){
    uint64_t w;
    memcpy(&w, p+i, 8);
    if( w==0 ) continue;        /* MNIST: most of the frame is empty */
    for(j=0; j<8; j++){         /* branch-free: write, count if non-zero */
      idx[n] = i+j; val[n] = aesql_u8_float[p[i+j]];
      n += p[i+j]!=0;
    }
  }
  for(; i<d; i++){
    idx[n] = i; val[n] = aesql_u8_float[p[i]];
    n += p[i]!=0;
  }
  for(j=0; j<16; j++) val[n+j] = 0;
  for(t=0; t+4<=n; t+=4){
    for(j=0; j<4; j++) bx[j] += (double)val[t+j]*b2[idx[t+j]];
  }
  for(; t<n; t++) bx[0] += (double)val[t]*b2[idx[t]];
  *pbx = (bx[0] + bx[1]) + (bx[2] + bx[3]);
  return n;
}

#if AE_X86
/* The end of a vector nz_list: the lanes' partial b2.x (nLane floats) are
** summed in double, the pixels from i on listed one by one, val padded. */
static int nz_list_tail(const unsigned char *p, int i, int d,
                        const float *b2, int32_t *idx, float *val, int n,
                        const float *lane, int nLane, double *pbx){
  double s = 0;
  int j;
  for(j=0; j<nLane; j++) s += lane[j];
  for(; i<d; i++){
    idx[n] = i; val[n] = aesql_u8_float[p[i]];
    s += (double)val[n]*b2[i];
    n += p[i]!=0;
  }
  *pbx = s;
  for(j=0; j<16; j++) val[n+j] = 0;
  return n;
}
#endif

#if AE_X86
/* The same with AVX-512: 64 pixels tested at once and skipped when all
** zero, else compressed into the lists 16 at a time (in registers: a
** compress straight to memory is slow on AMD Zen 4), each group of 16 at
** an offset counted from the 64-bit mask so that they do not wait for
** each other; b2.x summed densely. */
AE_V4 static int nz_list_v4(const unsigned char *p, int d, const float *b2,
                            int32_t *idx, float *val, double *pbx){
  const __m512i iota = _mm512_setr_epi32(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
  const __m512 k255 = _mm512_set1_ps(255.0f);  /* a division: b/255.0f exactly */
  __m512 bx = _mm512_setzero_ps();
  int i = 0, n = 0, j;
  for(; i+64<=d; i+=64){
    __m512i v64 = _mm512_loadu_si512((const void*)(p+i));
    uint64_t k64 = _mm512_test_epi8_mask(v64, v64);
    if( k64==0 ) continue;
    for(j=0; j<4; j++){
      const int o = n + (j ? __builtin_popcountll(k64 << (64-16*j)) : 0);
      const __mmask16 k = (__mmask16)(k64 >> 16*j);
      __m512 f = _mm512_div_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                     _mm_loadu_si128((const __m128i*)(p+i+16*j)))), k255);
      bx = _mm512_fmadd_ps(f, _mm512_loadu_ps(b2+i+16*j), bx);
      _mm512_storeu_si512((void*)(idx+o), _mm512_maskz_compress_epi32(k,
                           _mm512_add_epi32(iota, _mm512_set1_epi32(i+16*j))));
      _mm512_storeu_ps(val+o, _mm512_maskz_compress_ps(k, f));
    }
    n += __builtin_popcountll(k64);
  }
  for(; i+16<=d; i+=16){
    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(p+i)));
    const __mmask16 k = _mm512_test_epi32_mask(v, v);
    __m512 f = _mm512_div_ps(_mm512_cvtepi32_ps(v), k255);
    bx = _mm512_fmadd_ps(f, _mm512_loadu_ps(b2+i), bx);
    _mm512_storeu_si512((void*)(idx+n), _mm512_maskz_compress_epi32(k,
                         _mm512_add_epi32(iota, _mm512_set1_epi32(i))));
    _mm512_storeu_ps(val+n, _mm512_maskz_compress_ps(k, f));
    n += __builtin_popcount(k);
  }
  {
    float lane[16];
    _mm512_storeu_ps(lane, bx);
    return nz_list_tail(p, i, d, b2, idx, val, n, lane, 16, pbx);
  }
}
#endif

#if AE_X86
/* The set bits of a 4-bit mask, in increasing order, one per nibble. */
static const uint16_t nz_lut4[16] = {
  0x0000, 0x0000, 0x0001, 0x0010, 0x0002, 0x0020, 0x0021, 0x0210,
  0x0003, 0x0030, 0x0031, 0x0310, 0x0032, 0x0320, 0x0321, 0x3210
};

/* The same with AVX2: 32 pixels tested at once, empty ones skipped, then
** 8 at a time packed to the left with a permutation whose indices are
** the set bits of the 8-bit mask (two nibble tables); b2.x densely. */
AE_V3 static int nz_list_v3(const unsigned char *p, int d, const float *b2,
                            int32_t *idx, float *val, double *pbx){
  const __m256i iota = _mm256_setr_epi32(0,1,2,3,4,5,6,7);
  const __m256i nib = _mm256_setr_epi32(0,4,8,12,16,20,24,28);
  const __m256i f15 = _mm256_set1_epi32(15);
  const __m256 k255 = _mm256_set1_ps(255.0f);  /* a division: b/255.0f exactly */
  __m256 bx = _mm256_setzero_ps();
  int i = 0, n = 0, j;
  for(; i+32<=d; i+=32){
    __m256i v = _mm256_loadu_si256((const __m256i*)(p+i));
    uint32_t k = ~(uint32_t)_mm256_movemask_epi8(
                     _mm256_cmpeq_epi8(v, _mm256_setzero_si256()));
    if( k==0 ) continue;
    for(j=0; j<4; j++){
      const uint32_t m = (k >> 8*j) & 255, lo = m & 15, hi = m >> 4;
      const int nlo = __builtin_popcount(lo);
      const uint32_t packed = nz_lut4[lo] | ((nz_lut4[hi]
          + (0x4444u & ((1u << 4*__builtin_popcount(hi)) - 1))) << 4*nlo);
      const __m256i perm = _mm256_and_si256(_mm256_srlv_epi32(
                               _mm256_set1_epi32((int)packed), nib), f15);
      __m256 f = _mm256_div_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                     _mm_loadl_epi64((const __m128i*)(p+i+8*j)))), k255);
      bx = _mm256_fmadd_ps(f, _mm256_loadu_ps(b2+i+8*j), bx);
      _mm256_storeu_si256((__m256i*)(idx+n), _mm256_permutevar8x32_epi32(
          _mm256_add_epi32(iota, _mm256_set1_epi32(i+8*j)), perm));
      _mm256_storeu_ps(val+n, _mm256_permutevar8x32_ps(f, perm));
      n += nlo + __builtin_popcount(hi);
    }
  }
  {
    float lane[8];
    _mm256_storeu_ps(lane, bx);
    return nz_list_tail(p, i, d, b2, idx, val, n, lane, 8, pbx);
  }
}
#endif

/* ---- the instantiations (see ae_score_kern.h) ---- */

#define KERN(f)      f##_v0
#define KERN_TARGET
#define KERN_VW      4
#define KERN_NV      4
#define KERN_UP      2
#define KERN_BLOCK   16
#define KERN_NZ      nz_list
#include "ae_score_kern.h"

#if AE_X86
# define KERN(f)     f##_v3
# define KERN_TARGET AE_V3
# define KERN_VW     8
# define KERN_NV     4
# define KERN_UP     2
# define KERN_BLOCK  16
# define KERN_NZ     nz_list_v3
# include "ae_score_kern.h"

# define KERN(f)     f##_v4
# define KERN_TARGET AE_V4
# define KERN_VW     16
# define KERN_NV     4
# define KERN_UP     2
# define KERN_BLOCK  16
# define KERN_NZ     nz_list_v4
  /* GCC 12 converts a half-vector in two quarters; one instruction each: */
# define KERN_CVTH(p) ((vd_v4)_mm512_cvtps_pd(_mm256_loadu_ps(p)))
# define KERN_SPLIT(v, lo, hi) do{ __m512 t_ = (__m512)(v); \
    lo = (vd_v4)_mm512_cvtps_pd(_mm512_castps512_ps256(t_)); \
    hi = (vd_v4)_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd( \
                                 _mm512_castps_pd(t_), 1))); }while(0)
# include "ae_score_kern.h"

# define AE_DISPATCH(isa, f, args) \
    ((isa)==AESQL_ISA_AVX512 ? f##_v4 args : (isa)==AESQL_ISA_AVX2 ? f##_v3 args \
                             : f##_v0 args)
#else
# define AE_DISPATCH(isa, f, args) f##_v0 args
#endif

double aesql_score_error_with(const aesql_model *m, const void *px,
                              float *work, int sparse, int isa){
  isa = isa_pick(isa);
  if( sparse && m->w12 ) return AE_DISPATCH(isa, error_sparse, (m, px, work));
  return AE_DISPATCH(isa, error_dense, (m, px, work));
}
double aesql_score_error(const aesql_model *m, const void *px, float *work){
  return aesql_score_error_with(m, px, work, m->sparse, AESQL_ISA_BEST);
}
double aesql_score_error_dense(const aesql_model *m, const void *px, float *work){
  return aesql_score_error_with(m, px, work, 0, AESQL_ISA_BEST);
}
double aesql_score_error_sparse(const aesql_model *m, const void *px, float *work){
  return aesql_score_error_with(m, px, work, 1, AESQL_ISA_BEST);
}
void aesql_score_encode(const aesql_model *m, const void *px, float *hv,
                        float *work, int isa){
  double *hd, *yd;
  float *hv0;
  isa = isa_pick(isa);
  dense_layout(m, work, &hd, &yd, &hv0);
  AE_DISPATCH(isa, encode, (m, px, hv, hd));
  if( m->net.iCode>0 ) score_mid_f(m, hv, work, m->net.iCode);
}
void aesql_score_decode(const aesql_model *m, const float *hv, float *y,
                        float *work, int isa){
  double *hd, *yd;
  float *hv0;
  int i;
  isa = isa_pick(isa);
  dense_layout(m, work, &hd, &yd, &hv0);
  AE_DISPATCH(isa, decode, (m, hv, y, yd));
  if( m->nn.actOut!=AESQL_ACT_LINEAR && y ){
    for(i=0; i<m->nn.d; i++) y[i] = (float)aesql_act_f(m->nn.actOut, yd[i]);
  }
}
void aesql_score_reconstruct(const aesql_model *m, const void *px, float *y,
                             float *work, int isa){
  double *hd, *yd;
  float *hv;
  isa = isa_pick(isa);
  dense_layout(m, work, &hd, &yd, &hv);
  AE_DISPATCH(isa, encode, (m, px, hv, hd));
  if( m->nn.nMid ) score_mid_f(m, hv, work, m->net.nLayer-2);
  aesql_score_decode(m, hv, y, work, isa);
}

int aesql_score_nonfinite(const aesql_model *m, const void *px){
  const unsigned char *p = px;
  int i;
  if( m->dtype!=AESQL_F32 ) return 0;
  for(i=0; i<m->nn.d; i++){
    uint32_t u;
    memcpy(&u, p + 4*(size_t)i, 4);
    if( (u & 0x7f800000u)==0x7f800000u ) return i+1;   /* exponent all ones */
  }
  return 0;
}

/* ---- SQL functions ---- */

/* Per-statement state kept as auxdata on the model-name argument. */
typedef struct score_aux {
  aesql_model *m;
  float *work;
  float *x;          /* a model of numeric columns: the row, transformed */
  double *raw;       /* ... and as given (NaN for a NULL), for ae_explain */
  float *y;          /* ... its reconstruction */
  aesql_calib cal;   /* loaded by the first p-value function that needs it */
  int hasCal;
} score_aux;

static void score_aux_free(void *p){
  score_aux *a = p;
  if( !a ) return;
  aesql_model_free(a->m);
  sqlite3_free(a->work);
  sqlite3_free(a->x);
  sqlite3_free(a->raw);
  sqlite3_free(a->y);
  aesql_calib_clear(&a->cal);
  sqlite3_free(a);
}

static void score_error_msg(sqlite3_context *ctx, char *z){
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_free(z);
}

/* The model named by argv[0], from the auxdata or freshly loaded (then
** *pFresh is set and score_done() must hand it to SQLite). NULL after
** setting an error. */
static score_aux *score_model(sqlite3_context *ctx, sqlite3_value **argv,
                              const char *zFunc, int *pFresh){
  score_aux *a = sqlite3_get_auxdata(ctx, 0);
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  *pFresh = 0;
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT || !zName ){
    score_error_msg(ctx, sqlite3_mprintf("%s: the first argument must be a model "
                                         "name (TEXT), as ae_train() returns", zFunc));
    return 0;
  }
  if( (int)strlen(zName)!=sqlite3_value_bytes(argv[0]) ){
    score_error_msg(ctx, sqlite3_mprintf("%s: the model name must not contain a "
                                         "NUL character", zFunc));
    return 0;
  }
  if( !a || strcmp(a->m->zName, zName)!=0 ){
    char *zErr = 0;
    int rc;
    a = sqlite3_malloc(sizeof(*a));
    if( !a ){ sqlite3_result_error_nomem(ctx); return 0; }
    memset(a, 0, sizeof(*a));
    rc = aesql_model_load(sqlite3_context_db_handle(ctx), zName, &a->m, &zErr);
    if( rc==SQLITE_OK ){
      const size_t d = (size_t)a->m->nn.d;
      a->work = sqlite3_malloc64(sizeof(float)*aesql_score_work_floats(a->m));
      if( !a->work ) rc = SQLITE_NOMEM;
      if( rc==SQLITE_OK && aesql_cols_model(a->m) ){
        a->x = sqlite3_malloc64(sizeof(float)*d);
        a->y = sqlite3_malloc64(sizeof(float)*d);
        a->raw = sqlite3_malloc64(sizeof(double)*d);
        if( !a->x || !a->y || !a->raw ) rc = SQLITE_NOMEM;
      }
    }
    if( rc!=SQLITE_OK ){
      if( (rc & 0xff)==SQLITE_NOMEM ) sqlite3_result_error_nomem(ctx);
      else{
        char *z = sqlite3_mprintf("%s: %s", zFunc, zErr ? zErr : sqlite3_errstr(rc));
        if( !z ) sqlite3_result_error_nomem(ctx);
        else{
          sqlite3_result_error(ctx, z, -1);
          if( rc!=SQLITE_ERROR ) sqlite3_result_error_code(ctx, rc);
        }
        sqlite3_free(z);
      }
      sqlite3_free(zErr);
      score_aux_free(a);
      return 0;
    }
    *pFresh = 1;
  }
  return a;
}

/* The pixels of argv[1] for a model of pixels, checked (an f32 model with
** an input transform, made by hand, has its BLOB transformed into a->x).
** 0, or 1 after setting an error or a NULL result. */
static int score_pixels(sqlite3_context *ctx, score_aux *a, sqlite3_value **argv,
                        const char *zFunc, const void **ppx){
  const char *zName = a->m->zName;
  int n, want, t = sqlite3_value_type(argv[1]);
  if( t==SQLITE_NULL ){
    sqlite3_result_null(ctx);
    return 1;
  }
  want = a->m->nn.d * aesql_dtype_size(a->m->dtype);
  if( t!=SQLITE_BLOB ){
    score_error_msg(ctx, sqlite3_mprintf("%s: pixels must be a BLOB of %d bytes "
                              "(%s) for model '%s', got %s", zFunc, want,
                              aesql_dtype_name(a->m->dtype), zName,
                              t==SQLITE_TEXT ? "TEXT" :
                              t==SQLITE_INTEGER ? "INTEGER" : "REAL"));
    return 1;
  }
  n = sqlite3_value_bytes(argv[1]);
  if( n!=want ){
    score_error_msg(ctx, sqlite3_mprintf("%s: model '%s' takes %d %s pixels (%d "
                              "bytes), got a BLOB of %d bytes", zFunc, zName,
                              a->m->nn.d, aesql_dtype_name(a->m->dtype), want, n));
    return 1;
  }
  *ppx = sqlite3_value_blob(argv[1]);
  if( (n = aesql_score_nonfinite(a->m, *ppx))!=0 ){
    float f;
    memcpy(&f, (const unsigned char*)*ppx + 4*(size_t)(n-1), 4);
    score_error_msg(ctx, sqlite3_mprintf("%s: pixel %d of the row is %s; every "
                        "pixel must be a finite number", zFunc, n, isnan(f) ? "NaN" :
                        f>0 ? "+Inf" : "-Inf"));
    return 1;
  }
  if( a->m->xf.d ){
    char *zErr = 0;
    if( aesql_cols_vector(a->m, *ppx, zFunc, a->x, 0, &zErr) ){
      score_error_msg(ctx, zErr);
      return 1;
    }
    *ppx = a->x;
  }
  return 0;
}

/* The row of a model of numeric columns, argv[1..argc), into a->x
** (transformed) and a->raw: its d features as arguments, or one vector
** BLOB of them (raw float32, as ae_vector makes). hasRate: the function
** takes an optional false-alarm rate after the row; *piRate is then its
** argument's index, or -1. 0, or 1 after setting an error or a NULL
** result (a NULL vector). */
static int score_columns(sqlite3_context *ctx, score_aux *a, int argc,
                         sqlite3_value **argv, const char *zFunc, int hasRate,
                         int *piRate){
  const aesql_model *m = a->m;
  const int d = m->nn.d, nRow = argc - 1;
  char *zErr = 0;
  const int t = sqlite3_value_type(argv[1]);
  const int fitsArgs = nRow==d || (hasRate && nRow==d+1);
  *piRate = -1;
  if( (nRow==1 || (hasRate && nRow==2))
   && (t==SQLITE_BLOB || (t==SQLITE_NULL && !fitsArgs)) ){
    /* One vector: the row as ae_vector makes it (a BLOB is never a
    ** feature). A NULL one gives NULL, as NULL pixels do, unless the
    ** arguments can be the features: then it is a NULL feature. */
    int nb;
    if( nRow==2 ) *piRate = 2;
    if( t==SQLITE_NULL ){ sqlite3_result_null(ctx); return 1; }
    nb = sqlite3_value_bytes(argv[1]);
    if( nb!=4*d ){
      score_error_msg(ctx, sqlite3_mprintf("%s: model '%s' takes a vector of its "
          "%d features as %d float32 values (%d bytes, as ae_vector makes it), "
          "got a BLOB of %d bytes", zFunc, m->zName, d, d, 4*d, nb));
      return 1;
    }
    if( aesql_cols_vector(m, sqlite3_value_blob(argv[1]), zFunc, a->x, a->raw, &zErr) ){
      score_error_msg(ctx, zErr);
      return 1;
    }
    return 0;
  }
  if( fitsArgs ){
    if( nRow==d+1 ) *piRate = d+1;
    if( aesql_cols_args(m, argv+1, zFunc, a->x, a->raw, &zErr) ){
      score_error_msg(ctx, zErr);
      return 1;
    }
    return 0;
  }
  {
    sqlite3_str *s = sqlite3_str_new(0);
    sqlite3_str_appendf(s, "%s: model '%s' takes its %d features as arguments "
                        "after its name, %s(model, ", zFunc, m->zName, d, zFunc);
    aesql_cols_append_names(s, m);
    sqlite3_str_appendf(s, "%s), or one vector BLOB of them (ae_vector); got %d "
                        "argument%s after the name", hasRate ? " [, rate]" : "",
                        nRow, nRow==1 ? "" : "s");
    score_error_msg(ctx, sqlite3_str_finish(s));
    return 1;
  }
}

/* The model named by argv[0] and the row that follows it, checked: the
** pixels of argv[1] (*ppx), or a model of numeric columns' row (*ppx
** then a->x). Returns NULL after setting an error or a NULL result; the
** model (*ppAux) is still to be passed to score_done(). *piRate: the
** index of the rate argument, or -1 (hasRate: the function takes one). */
static score_aux *score_args(sqlite3_context *ctx, int argc, sqlite3_value **argv,
                             const char *zFunc, int hasRate, const void **ppx,
                             int *piRate, score_aux **ppAux, int *pFresh){
  score_aux *a;
  *ppAux = 0;
  *piRate = -1;
  if( argc<2 ){
    score_error_msg(ctx, sqlite3_mprintf("%s: takes a model name and a row: "
        "%s(model, pixels) or, for a model of numeric columns, %s(model, x1, "
        "x2, ...)", zFunc, zFunc, zFunc));
    *pFresh = 0;
    return 0;
  }
  a = score_model(ctx, argv, zFunc, pFresh);
  if( !a ) return 0;
  *ppAux = a;
  if( a->m->nFeature>0 ){
    if( score_columns(ctx, a, argc, argv, zFunc, hasRate, piRate) ) return 0;
    *ppx = a->x;
    return a;
  }
  if( argc>2+hasRate ){
    score_error_msg(ctx, sqlite3_mprintf("%s: model '%s' is a model of pixels: "
        "it takes one pixels BLOB after its name, %s(model, pixels%s); got %d "
        "arguments after the name", zFunc, a->m->zName, zFunc,
        hasRate ? " [, rate]" : "", argc-1));
    return 0;
  }
  if( hasRate && argc==3 ) *piRate = 2;
  if( score_pixels(ctx, a, argv, zFunc, ppx) ) return 0;
  return a;
}

/* Hands a freshly loaded model to SQLite, to keep while argv[0] is
** constant. Called last: SQLite may free it at once. */
static void score_done(sqlite3_context *ctx, score_aux *a, int fresh){
  if( a && fresh ) sqlite3_set_auxdata(ctx, 0, a, score_aux_free);
}

/* A reconstruction error that is not a finite number: the model's weights
** or the row's values are too large for float32. Never a NaN (which SQL
** would read as NULL, the least unusual row). */
static void score_overflow(sqlite3_context *ctx, const char *zFunc){
  char *z = sqlite3_mprintf("%s: the reconstruction error of this row "
      "overflows (the model's weights or the row's values are too large)", zFunc);
  if( z ) sqlite3_result_error(ctx, z, -1); else sqlite3_result_error_nomem(ctx);
  sqlite3_free(z);
}

static void ae_error_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_error", 0, &px, &iRate, &aux, &fresh);
  if( a ){
    double e = aesql_score_error(a->m, px, a->work);
    if( isfinite(e) ) sqlite3_result_double(ctx, e);
    else score_overflow(ctx, "ae_error");
  }
  score_done(ctx, aux, fresh);
}

/* The reconstruction of row px (the model's encoding, transformed) into
** the model's scratch: d floats, returned. */
static float *score_recon(score_aux *a, const void *px){
  double *hd, *yd;
  float *hv, *y;
  dense_layout(a->m, a->work, &hd, &yd, &hv);
  y = hv + work_hw(a->m);
  aesql_score_reconstruct(a->m, px, y, a->work, AESQL_ISA_BEST);
  return y;
}

static void ae_reconstruct_func(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_reconstruct", 0, &px, &iRate,
                            &aux, &fresh);
  int d, i;
  float *y;
  if( !a ){ score_done(ctx, aux, fresh); return; }
  d = a->m->nn.d;
  y = score_recon(a, px);
  if( a->m->nFeature>0 ){
    /* A model of numeric columns: {"feature": value, ...} in the
    ** original units, in the features' order. */
    sqlite3_str *s = sqlite3_str_new(0);
    for(i=0; i<d; i++){
      sqlite3_str_appendchar(s, 1, i ? ',' : '{');
      aesql_json_string(s, a->m->azFeature[i]);
      sqlite3_str_appendchar(s, 1, ':');
      aesql_json_number(s, aesql_xform_inverse(&a->m->xf, i, y[i]));
    }
    sqlite3_str_appendchar(s, 1, '}');
    if( sqlite3_str_errcode(s) ){
      sqlite3_free(sqlite3_str_finish(s));
      sqlite3_result_error_nomem(ctx);
    }else{
      sqlite3_result_text(ctx, sqlite3_str_finish(s), -1, sqlite3_free);
    }
  }else if( a->m->dtype==AESQL_U8 ){
    unsigned char *out = sqlite3_malloc(d);
    if( !out ){ sqlite3_result_error_nomem(ctx); score_done(ctx, aux, fresh); return; }
    for(i=0; i<d; i++){
      float v = y[i]*255.0f;
      out[i] = v<=0.0f ? 0 : v>=255.0f ? 255 : (unsigned char)lrintf(v);
    }
    sqlite3_result_blob(ctx, out, d, sqlite3_free);
  }else{
    if( a->m->xf.d ){
      /* float32 in the original units, as the row came */
      for(i=0; i<d; i++) y[i] = (float)aesql_xform_inverse(&a->m->xf, i, y[i]);
    }
    sqlite3_result_blob(ctx, y, 4*d, SQLITE_TRANSIENT);
  }
  score_done(ctx, aux, fresh);
}

static void ae_encode_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_encode", 0, &px, &iRate, &aux, &fresh);
  if( a ){
    double *hd, *yd;
    float *hv;
    dense_layout(a->m, a->work, &hd, &yd, &hv);
    aesql_score_encode(a->m, px, hv, a->work, AESQL_ISA_BEST);
    sqlite3_result_blob(ctx, hv, 4*aesql_net_code_width(&a->m->net),
                        SQLITE_TRANSIENT);
  }
  score_done(ctx, aux, fresh);
}

/* One feature's part of a row's error, for ae_explain. */
typedef struct explain_part { double share; int i; } explain_part;
static int explain_cmp(const void *pa, const void *pb){
  const explain_part *a = pa, *b = pb;
  if( a->share!=b->share ) return a->share>b->share ? -1 : 1;  /* largest first */
  return a->i - b->i;                                         /* then in order */
}

/* ae_explain(model, row): each feature's share of the row's squared error
** (in the units the model was trained in), largest first, with the value
** observed and the value reconstructed, both in the original units. */
static void ae_explain_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_explain", 0, &px, &iRate, &aux, &fresh);
  explain_part *part = 0;
  sqlite3_str *s;
  double sum = 0;
  float *y;
  int d, i;
  if( !a ){ score_done(ctx, aux, fresh); return; }
  if( a->m->nFeature==0 ){
    score_error_msg(ctx, sqlite3_mprintf("ae_explain: model '%s' is a model of "
        "pixels; ae_explain explains models of numeric columns, by column (for "
        "an image, look at its reconstruction: ae_reconstruct, ae_png)", a->m->zName));
    score_done(ctx, aux, fresh);
    return;
  }
  d = a->m->nn.d;
  part = sqlite3_malloc64(sizeof(*part)*(size_t)d);
  if( !part ){ sqlite3_result_error_nomem(ctx); score_done(ctx, aux, fresh); return; }
  y = score_recon(a, px);
  for(i=0; i<d; i++){
    double r = (double)y[i] - (double)a->x[i];
    part[i].share = r*r;
    part[i].i = i;
    sum += r*r;
  }
  if( !isfinite(sum) ){
    sqlite3_free(part);
    score_overflow(ctx, "ae_explain");
    score_done(ctx, aux, fresh);
    return;
  }
  /* An exact reconstruction has no error to share: every share 0. */
  for(i=0; i<d; i++) part[i].share = sum>0 ? part[i].share/sum : 0.0;
  qsort(part, (size_t)d, sizeof(*part), explain_cmp);
  s = sqlite3_str_new(0);
  for(i=0; i<d; i++){
    const int k = part[i].i;
    sqlite3_str_appendall(s, i ? ",{\"feature\":" : "[{\"feature\":");
    aesql_json_string(s, a->m->azFeature[k]);
    sqlite3_str_appendall(s, ",\"share\":");
    aesql_json_number(s, part[i].share);
    sqlite3_str_appendall(s, ",\"value\":");
    aesql_json_number(s, a->raw[k]);      /* null for a NULL (filled) */
    sqlite3_str_appendall(s, ",\"reconstructed\":");
    aesql_json_number(s, aesql_xform_inverse(&a->m->xf, k, y[k]));
    sqlite3_str_appendchar(s, 1, '}');
  }
  sqlite3_str_appendchar(s, 1, ']');
  sqlite3_free(part);
  if( sqlite3_str_errcode(s) ){
    sqlite3_free(sqlite3_str_finish(s));
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_text(ctx, sqlite3_str_finish(s), -1, sqlite3_free);
  }
  score_done(ctx, aux, fresh);
}

/* The model's calibration, loaded once into the auxdata. Returns 0, or 1
** after setting an error. */
static int score_calib(sqlite3_context *ctx, score_aux *a, const char *zFunc){
  char *zErr = 0;
  int rc;
  if( a->hasCal ) return 0;
  rc = aesql_calib_load(sqlite3_context_db_handle(ctx), a->m->zName, &a->cal, &zErr);
  if( rc==SQLITE_OK ){ a->hasCal = 1; return 0; }
  if( (rc & 0xff)==SQLITE_NOMEM ){ sqlite3_result_error_nomem(ctx); }
  else if( zErr ){
    char *z = sqlite3_mprintf("%s: %s", zFunc, zErr);
    if( z ) sqlite3_result_error(ctx, z, -1); else sqlite3_result_error_nomem(ctx);
    sqlite3_free(z);
  }else{
    aesql_result_sqlite_error(ctx, zFunc, "cannot read the calibration", rc,
                              sqlite3_context_db_handle(ctx));
  }
  sqlite3_free(zErr);
  return 1;
}

static void ae_pvalue_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_pvalue", 0, &px, &iRate, &aux, &fresh);
  if( a && !score_calib(ctx, a, "ae_pvalue") ){
    double e = aesql_score_error(a->m, px, a->work);
    if( isfinite(e) ) sqlite3_result_double(ctx, aesql_calib_pvalue(&a->cal, e));
    else score_overflow(ctx, "ae_pvalue");
  }
  score_done(ctx, aux, fresh);
}

static void ae_is_anomaly_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh, iRate;
  score_aux *a = score_args(ctx, argc, argv, "ae_is_anomaly", 1, &px, &iRate,
                            &aux, &fresh);
  double rate;
  if( a && !score_calib(ctx, a, "ae_is_anomaly") ){
    rate = a->cal.rate;
    if( iRate<0 || !aesql_calib_rate_arg(ctx, "ae_is_anomaly", argv[iRate], &rate) ){
      double e = aesql_score_error(a->m, px, a->work);
      if( isfinite(e) ) sqlite3_result_int(ctx, aesql_calib_flag(&a->cal, e, rate));
      else score_overflow(ctx, "ae_is_anomaly");
    }
  }
  score_done(ctx, aux, fresh);
}

int aesql_score_register(sqlite3 *db){
  /* Not SQLITE_DETERMINISTIC: the model behind a name can change. They
  ** only read ae_models, so they may be used in views and triggers. The
  ** counts of a model of pixels are registered as such (SQLite prefers an
  ** exact count), and every count (-1) for the features of a model of
  ** numeric columns. */
  static const struct {
    const char *zName;
    int nArg;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "ae_error", 2, ae_error_func },
    { "ae_error", -1, ae_error_func },
    { "ae_reconstruct", 2, ae_reconstruct_func },
    { "ae_reconstruct", -1, ae_reconstruct_func },
    { "ae_encode", 2, ae_encode_func },
    { "ae_encode", -1, ae_encode_func },
    { "ae_pvalue", 2, ae_pvalue_func },
    { "ae_pvalue", -1, ae_pvalue_func },
    { "ae_is_anomaly", 2, ae_is_anomaly_func },
    { "ae_is_anomaly", 3, ae_is_anomaly_func },
    { "ae_is_anomaly", -1, ae_is_anomaly_func },
    { "ae_explain", -1, ae_explain_func },
  };
  int rc = SQLITE_OK;
  unsigned i;
  for(i=0; rc==SQLITE_OK && i<sizeof(aFunc)/sizeof(aFunc[0]); i++){
    rc = sqlite3_create_function(db, aFunc[i].zName, aFunc[i].nArg, SQLITE_UTF8,
                                 0, aFunc[i].xFunc, 0, 0);
  }
  if( rc==SQLITE_OK ) rc = aesql_scores_register(db);
  return rc;
}
