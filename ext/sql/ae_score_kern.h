/*
** The scoring kernels, written once for any vector width. ae_score.c
** includes this file once per instruction set after defining:
**   KERN(f)      the name of f for this instruction set (f_v4, f_v3, f_v0)
**   KERN_TARGET  its target attribute (empty for the baseline)
**   KERN_VW      floats per vector register: 16 (AVX-512), 8 (AVX2), 4
**   KERN_NV      vector accumulators per pixel in the sparse pass
**   KERN_UP      pixels per step of that pass, 1 or 2 (with their own
**                accumulators: 2*KERN_NV must fit in the registers)
**   KERN_BLOCK   pixels summed in float before the sum goes to double
**   KERN_NZ      the function listing the non-zero pixels of a u8 row
**                (and computing their dot product with b2)
**   KERN_SPLIT   optional: KSPLIT below with the ISA's own intrinsics
**   KERN_CVTH    optional: KLDH below likewise
** and undefines them at its end. Defines, all static:
**   double KERN(error_sparse)(m, px, work)   the expansion (u8, w12 set)
**   double KERN(error_dense)(m, px, work)    encode, decode, compare
**   void KERN(encode)(m, px, hv, hd)         hv: h floats, hd: h doubles
**   void KERN(decode)(m, hv, y, yd)          y: d floats or NULL, yd: d
**                                            doubles and d floats
** The vectors are GCC vector extensions of the register's own width: a
** wider type would be split through memory, many times slower. Loops over
** a tile's registers are unrolled (#pragma GCC unroll) so that its
** accumulator array lives in registers.
*/

#define VF     KERN(vf)
#define VI     KERN(vi)
#define VH     KERN(vh)
#define VD     KERN(vd)
#define VL     KERN(vl)
#define VB     KERN(vb)
#define KLD(p)    ({ VF l_; memcpy(&l_, (p), sizeof(l_)); l_; })
#define KST(p, v) do{ VF s_ = (v); memcpy((p), &s_, sizeof(s_)); }while(0)
#define KLDD(p)    ({ VD l_; memcpy(&l_, (p), sizeof(l_)); l_; })
#define KSTD(p, v) do{ VD s_ = (v); memcpy((p), &s_, sizeof(s_)); }while(0)
/* KERN_VW/2 floats as doubles */
#ifdef KERN_CVTH
# define KLDH(p)   KERN_CVTH(p)
#else
# define KLDH(p)   ({ VH l_; memcpy(&l_, (p), sizeof(l_)); __builtin_convertvector(l_, VD); })
#endif
/* KERN_VW bytes as floats 0..255 */
#define KLDB(p)   ({ VB b_; memcpy(&b_, (p), sizeof(b_)); __builtin_convertvector(b_, VF); })
/* The two halves of a float vector as double vectors. */
#if defined(__has_builtin)
# if __has_builtin(__builtin_shufflevector)
#  define KERN_SHUFFLE 1
# endif
#endif
#ifdef KERN_SPLIT
# define KSPLIT KERN_SPLIT
#elif defined(KERN_SHUFFLE)
# if KERN_VW==16
#  define KLO 0,1,2,3,4,5,6,7
#  define KHI 8,9,10,11,12,13,14,15
# elif KERN_VW==8
#  define KLO 0,1,2,3
#  define KHI 4,5,6,7
# else
#  define KLO 0,1
#  define KHI 2,3
# endif
# define KSPLIT(v, lo, hi) do{ VF t_ = (v); \
    lo = __builtin_convertvector(__builtin_shufflevector(t_, t_, KLO), VD); \
    hi = __builtin_convertvector(__builtin_shufflevector(t_, t_, KHI), VD); }while(0)
#else
# define KSPLIT(v, lo, hi) do{ VF t_ = (v); VH l_, h_; \
    memcpy(&l_, &t_, sizeof(l_)); memcpy(&h_, (char*)&t_ + sizeof(l_), sizeof(h_)); \
    lo = __builtin_convertvector(l_, VD); hi = __builtin_convertvector(h_, VD); }while(0)
#endif

typedef float VF __attribute__((vector_size(4*KERN_VW)));
typedef int VI __attribute__((vector_size(4*KERN_VW)));
typedef float VH __attribute__((vector_size(2*KERN_VW)));
typedef double VD __attribute__((vector_size(4*KERN_VW)));
typedef long long VL __attribute__((vector_size(4*KERN_VW)));
typedef unsigned char VB __attribute__((vector_size(KERN_VW)));

/* ---- the dense form ---- */

/* y[0..n) += a * x[0..n) */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(axpy)(int n, float a, const float *x, float *y){
  int k = 0;
  for(; k+KERN_VW<=n; k+=KERN_VW) KST(y+k, KLD(y+k) + a*KLD(x+k));
  for(; k<n; k++) y[k] += a*x[k];
}

/* dst[0..n) += src[0..n) in double; src[0..n) = 0. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(flush)(int n, float *src, double *dst){
  int k = 0;
  for(; k+KERN_VW<=n; k+=KERN_VW){
    VD lo, hi;
    KSPLIT(KLD(src+k), lo, hi);
    KSTD(dst+k, KLDD(dst+k) + lo);
    KSTD(dst+k+KERN_VW/2, KLDD(dst+k+KERN_VW/2) + hi);
    KST(src+k, (VF){0});
  }
  for(; k<n; k++){ dst[k] += src[k]; src[k] = 0; }
}

/* hv = relu(b1 + x W1), over the non-zero pixels, summed in float
** KERN_BLOCK pixels at a time and the blocks in double (hd: h doubles). */
static KERN_TARGET
void KERN(encode)(const aesql_model *m, const void *px, float *hv, double *hd){
  const aesql_kview *nn = &m->nn;
  const int d = nn->d, h = nn->h;
  int i, k, nb = 0;
  memset(hv, 0, sizeof(float)*h);
  for(k=0; k<h; k++) hd[k] = nn->b1[k];
  for(i=0; i<d; i++){
    float x;
    if( m->dtype==AESQL_U8 ){
      x = aesql_u8_float[((const unsigned char*)px)[i]];
    }else{
      memcpy(&x, (const unsigned char*)px + 4*(size_t)i, 4);
    }
    if( x==0.0f ) continue;
    KERN(axpy)(h, x, nn->w1 + (size_t)i*h, hv);
    if( ++nb==KERN_BLOCK ){ KERN(flush)(h, hv, hd); nb = 0; }
  }
  KERN(flush)(h, hv, hd);
  if( m->nn.act1==AESQL_ACT_RELU ){
    for(k=0; k<h; k++) hv[k] = hd[k]>0.0 ? (float)hd[k] : 0.0f;
  }else{
    for(k=0; k<h; k++) hv[k] = (float)aesql_act_f(m->nn.act1, hd[k]);
  }
}

/* yd = b2 + hv W2 (d doubles), skipping the inactive units, summed like
** encode's; y = yd rounded to float unless y is NULL. */
static KERN_TARGET
void KERN(decode)(const aesql_model *m, const float *hv, float *y, double *yd){
  const aesql_kview *nn = &m->nn;
  const int d = nn->d;
  float *acc = (float*)(yd + d);    /* d floats of scratch after yd */
  int i, k, nb = 0;
  memset(acc, 0, sizeof(float)*d);
  for(i=0; i<d; i++) yd[i] = nn->b2[i];
  for(k=0; k<nn->h; k++){
    if( hv[k]==0.0f ) continue;
    KERN(axpy)(d, hv[k], nn->w2 + (size_t)k*d, acc);
    if( ++nb==KERN_BLOCK ){ KERN(flush)(d, acc, yd); nb = 0; }
  }
  KERN(flush)(d, acc, yd);
  if( y ) for(i=0; i<d; i++) y[i] = (float)yd[i];
}

/* Work (see dense_layout() in ae_score.c): hd (hp doubles), yd (d
** doubles) and d floats of decode's scratch, hv (hp floats). */
static KERN_TARGET
double KERN(error_dense)(const aesql_model *m, const void *px, float *work){
  const int d = m->nn.d;
  const unsigned char *p = px;
  double *hd, *yd;
  float *hv;
  VD acc = {0}, lo, hi;
  double s = 0;
  int i = 0;
  dense_layout(m, work, &hd, &yd, &hv);
  KERN(encode)(m, px, hv, hd);
  if( m->nn.nMid ) score_mid_f(m, hv, work, m->net.nLayer-2);
  KERN(decode)(m, hv, 0, yd);
  if( m->nn.actOut!=AESQL_ACT_LINEAR ){
    for(i=0; i<d; i++) yd[i] = aesql_act_f(m->nn.actOut, yd[i]);
    i = 0;
  }
  if( m->dtype==AESQL_U8 ){
    for(; i+KERN_VW<=d; i+=KERN_VW){
      VD r0, r1;
      KSPLIT(KLDB(p+i)/255.0f, lo, hi);
      r0 = KLDD(yd+i) - lo;
      r1 = KLDD(yd+i+KERN_VW/2) - hi;
      acc += r0*r0 + r1*r1;
    }
    for(; i<d; i++){
      double r = yd[i] - (double)aesql_u8_float[p[i]];
      s += r*r;
    }
  }else{
    for(; i+KERN_VW<=d; i+=KERN_VW){
      VD r0, r1;
      KSPLIT(KLD(p + 4*(size_t)i), lo, hi);
      r0 = KLDD(yd+i) - lo;
      r1 = KLDD(yd+i+KERN_VW/2) - hi;
      acc += r0*r0 + r1*r1;
    }
    for(; i<d; i++){
      float x;
      double r;
      memcpy(&x, p + 4*(size_t)i, 4);
      r = yd[i] - x;
      s += r*r;
    }
  }
  for(i=0; i<KERN_VW/2; i++) s += acc[i];
  return s;
}

/* ---- the sparse form ---- */

/* dacc[0 .. nv*VW) = sum over the n listed pixels t of val[t] times
** columns [0, nv*VW) of w12 row idx[t] (w points at the first column).
** Summed in float over blocks of KERN_BLOCK pixels, in registers, and the
** blocks in double: float alone loses too much to the cancellation in
** the expansion (1e-5 relative on Fashion-MNIST). */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(tile)(const float *w, int cols, int n, const int32_t *idx,
                const float *val, double *dacc, const int nv){
  VD da[2*KERN_NV];
  int t0, t, j;
#pragma GCC unroll 32
  for(j=0; j<2*nv; j++) da[j] = (VD){0};
  for(t0=0; t0<n; t0+=KERN_BLOCK){
    const int t1 = n-t0 < KERN_BLOCK ? n : t0+KERN_BLOCK;
    VF a[KERN_NV], e[KERN_NV];
#pragma GCC unroll 16
    for(j=0; j<nv; j++){ a[j] = (VF){0}; e[j] = (VF){0}; }
#if KERN_UP==2
    for(t=t0; t+2<=t1; t+=2){
      const float *r = w + (size_t)idx[t]*cols, *r2 = w + (size_t)idx[t+1]*cols;
      const float x = val[t], x2 = val[t+1];
#pragma GCC unroll 16
      for(j=0; j<nv; j++){
        a[j] += x*KLD(r + j*KERN_VW);
        e[j] += x2*KLD(r2 + j*KERN_VW);
      }
    }
#else
    t = t0;
#endif
    for(; t<t1; t++){
      const float *r = w + (size_t)idx[t]*cols;
      const float x = val[t];
#pragma GCC unroll 16
      for(j=0; j<nv; j++) a[j] += x*KLD(r + j*KERN_VW);
    }
#pragma GCC unroll 16
    for(j=0; j<nv; j++){
      VD lo, hi;
      KSPLIT(a[j] + e[j], lo, hi);
      da[2*j] += lo;
      da[2*j+1] += hi;
    }
  }
#pragma GCC unroll 32
  for(j=0; j<2*nv; j++) KSTD(dacc + j*(KERN_VW/2), da[j]);
}

/* Work: dacc (2hp doubles, aligned), then the lists idx and val (d+32
** entries each). */
static KERN_TARGET
double KERN(error_sparse)(const aesql_model *m, const void *px, float *work){
  enum { W = KERN_VW/2 };     /* doubles per vector */
  const int d = m->nn.d, hp = m->hp, cols = 2*hp;
  const double s = 1.0;       /* the listed values are b/255.0f already */
  double *acc = (double*)work_align(work), *hv = acc, *u = acc + hp;
  int32_t *idx = (int32_t*)(acc + cols);
  float *val = (float*)(idx + d + 32);
  VD qv = {0}, xxv = {0}, lo, hi;
  double q = 0, bx = 0, xx = 0;
  int n, c0, t, k, b;
  n = KERN_NZ(px, d, m->nn.b2, idx, val, &bx);

  /* acc = [x W1 | W2 x] / s, a tile of columns at a time. */
  for(c0=0; c0+KERN_NV*KERN_VW<=cols; c0+=KERN_NV*KERN_VW){
    KERN(tile)(m->w12 + c0, cols, n, idx, val, acc + c0, KERN_NV);
  }
  for(; c0<cols; c0+=(KERN_NV/2)*KERN_VW){
    KERN(tile)(m->w12 + c0, cols, n, idx, val, acc + c0, KERN_NV/2);
  }

  /* The first layer in place: h = act(b1 + s acc[0..hp)); u = s
  ** acc[hp..). Padding units stay 0 (act(0) is 0 for every activation
  ** but sigmoid's 0.5: they are zeroed again). Then the middle layers. */
  if( m->nn.act1==AESQL_ACT_RELU ){
    for(k=0; k<hp; k+=W){
      VD h = KLDD(m->b1p + k) + s*KLDD(hv + k);
      KSTD(hv + k, (VD)((VL)h & (h > 0.0)));
    }
  }else{
    for(k=0; k<m->nn.h; k++) hv[k] = aesql_act_f(m->nn.act1, m->b1p[k] + s*hv[k]);
    for(; k<hp; k++) hv[k] = 0.0;
  }
  if( m->nn.nMid ) score_mid_d(m, hv, work, m->net.nLayer-2);

  /* q = h'(G h + 2 c - 2 u), G h in four chains; G in float (its
  ** rounding costs ~1e-8 of E; summing in float would cost ~1e-6). */
  for(b=0; b<hp; b+=W){
    const float *g = m->gram + b;
    VD g0 = {0}, g1 = {0}, g2 = {0}, g3 = {0}, zv;
    for(k=0; k<hp; k+=4){
      g0 += hv[k]*KLDH(g + (size_t)k*hp);
      g1 += hv[k+1]*KLDH(g + (size_t)(k+1)*hp);
      g2 += hv[k+2]*KLDH(g + (size_t)(k+2)*hp);
      g3 += hv[k+3]*KLDH(g + (size_t)(k+3)*hp);
    }
    zv = (g0 + g1) + (g2 + g3) + 2.0*(KLDD(m->c + b) - s*KLDD(u + b));
    qv += KLDD(hv + b)*zv;
  }

  /* x.x over the list (zero-padded), in double. */
  for(t=0; t<n; t+=KERN_VW){
    KSPLIT(KLD(val + t), lo, hi);
    xxv += lo*lo + hi*hi;
  }
  for(k=0; k<W; k++){ q += qv[k]; xx += xxv[k]; }
  q += m->b2sq - 2.0*s*bx + s*s*xx;
  return q<0 ? 0 : q;  /* rounding can take an exact fit a hair below 0 */
}

#undef VF
#undef VI
#undef VH
#undef VD
#undef VL
#undef VB
#undef KLD
#undef KST
#undef KLDD
#undef KSTD
#undef KLDH
#undef KERN_CVTH
#undef KLDB
#undef KSPLIT
#undef KERN_SHUFFLE
#undef KLO
#undef KHI
#undef KERN
#undef KERN_TARGET
#undef KERN_VW
#undef KERN_NV
#undef KERN_UP
#undef KERN_BLOCK
#undef KERN_NZ
#undef KERN_SPLIT
