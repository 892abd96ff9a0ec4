/*
** The hot loops of ae_net_pass.c, written once for any vector width, as
** ext/sql/ae_score_kern.h is for the scoring kernels. ae_net_pass.c
** includes this file once per instruction set after defining:
**   KERN(f)      the name of f for this instruction set (f_v4, f_v3, f_v0)
**   KERN_TARGET  its target attribute (empty for the baseline)
**   KERN_VW      floats per vector register: 16 (AVX-512), 8 (AVX2), 4
**   KERN_NT      vector registers per slice of dH's row held by X' dH
**                row by row (rows_xtdh)
**   KERN_XW      vector registers per column tile of X W1 (two chains:
**                2*KERN_XW accumulators, which with the loads must fit
**                in the registers)
**   KERN_XT      vector registers per column tile of X' dH by pixel
**                (one chain each)
** and undefines them at its end. Defines, all static:
**   KERN(sparse_xw_u8), KERN(sparse_xw_f32)   H = X W1
**   KERN(rows_xtdh_u8), KERN(rows_xtdh_f32)   G (+)= X' dH row by row
**   KERN(csc_xtdh)      G (+)= X' dH by pixel, over a block's transposed
**                       index (nn_csc_build in ae_net_pass.c)
**   KERN(out_loss_row), KERN(out_grad_row)   the output sweeps
**   KERN(transpose_sum) B = alpha (A_0 + ... + A_k)', the Gram way's
** with the arguments and meaning of ae_net_pass.c's nn_* functions of the
** same names.
**
** Why not NN_CLONES over a GCC vector of NN_LANES (16) floats: it is
** one AVX-512 register but two AVX2 or four SSE ones, and in the AVX2
** and SSE2 clones GCC splits it through the stack: a broadcast becomes
** sixteen 4-byte stores read back by 32-byte loads, whose store
** forwarding fails. On AMD Zen 3 (AVX2) that made the two products 2/3
** of a tutorial epoch, and ten times slower than they are here, where
** every vector is one register of the instruction set the function is
** compiled for, and a tile's registers are arrays in loops unrolled with
** #pragma GCC unroll, which GCC keeps in registers.
**
** The arithmetic is the clones' own: the same target options (AVX-512
** may fuse a multiply and an add, AVX2 and SSE2 do not), and every
** output element is summed in the same order as before, which no tiling
** of the columns changes. So the models are those of the NN_CLONES
** functions these replaced, bit for bit (checked on AVX2 and on the
** baseline, -DNN_CLONES=, over widths with and without tails).
*/

#if KERN_XW>8 || KERN_XT>8
# error "the column tails of the sparse products take up to 7 registers"
#endif

#define VF     KERN(vf)
/* The functions below are not inlined into their one caller, so that a
** profile names them. */
#define KFN    static __attribute__((noinline)) KERN_TARGET
#define KLD(p)    ({ VF l_; memcpy(&l_, (p), sizeof(l_)); l_; })
#define KST(p, v) do{ VF s_ = (v); memcpy((p), &s_, sizeof(s_)); }while(0)

typedef float VF __attribute__((vector_size(4*KERN_VW)));

/* ---- the first layer's products over the non-zero pixels ---- */

/* Columns [k, k + nv*KERN_VW) of row hr of H = X W1, over the row's list
** of cnt pixels nz (see nn_sparse_xw_u8 in ae_net_pass.c for the order
** of the sums: even and odd positions of the list in two chains). nv is
** a constant, so a and c are registers. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(xw_tile)(float *restrict hr, const aesql_nn_data *x, int isU8,
                   const unsigned char *restrict xb,
                   const float *restrict xf, const uint16_t *restrict nz,
                   int cnt, const float *restrict W1, int h, int k,
                   const int nv){
  VF a[KERN_XW], c[KERN_XW];
  int j, l;
#pragma GCC unroll 16
  for(l=0; l<nv; l++){ a[l] = (VF){0}; c[l] = (VF){0}; }
  for(j=0; j+1<cnt; j+=2){
    const float *p = W1 + (size_t)nz[j]*h + k;
    const float *q = W1 + (size_t)nz[j+1]*h + k;
    const float u = NN_PX(nz[j]), v = NN_PX(nz[j+1]);
#pragma GCC unroll 16
    for(l=0; l<nv; l++){
      a[l] += u*KLD(p + l*KERN_VW);
      c[l] += v*KLD(q + l*KERN_VW);
    }
  }
  if( j<cnt ){
    const float *p = W1 + (size_t)nz[j]*h + k;
    const float u = NN_PX(nz[j]);
#pragma GCC unroll 16
    for(l=0; l<nv; l++) a[l] += u*KLD(p + l*KERN_VW);
  }
#pragma GCC unroll 16
  for(l=0; l<nv; l++) KST(hr + k + l*KERN_VW, a[l] + c[l]);
}

/* H (n x h) = X W1. Each row's columns go in tiles of KERN_XW registers,
** then one tile of the whole registers left, then one column at a time;
** each makes its own pass over the row's list. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(sparse_xw_t)(float *restrict H, const aesql_nn_data *x, int isU8,
                       const uint32_t *idx, int n, const float *restrict W1,
                       int h){
  const size_t d = (size_t)x->d;
  int r;
  for(r=0; r<n && r<NN_PF_FAR; r++) __builtin_prefetch(x->nzStart + idx[r]);
  for(r=0; r<n && r<NN_PF_NEAR; r++) nn_prefetch_row(x, idx[r], isU8);
  for(r=0; r<n; r++){
    const size_t row = idx[r];
    if( r+NN_PF_FAR<n ) __builtin_prefetch(x->nzStart + idx[r+NN_PF_FAR]);
    if( r+NN_PF_NEAR<n ) nn_prefetch_row(x, idx[r+NN_PF_NEAR], isU8);
    const uint16_t *restrict nz = x->nz + x->nzStart[row];
    const int cnt = (int)(x->nzStart[row+1] - x->nzStart[row]);
    const unsigned char *restrict xb = isU8 ? x->u8 + row*d : 0;
    const float *restrict xf = isU8 ? 0 : x->f32 + row*d;
    float *restrict hr = H + (size_t)r*h;
    int j, k;
    for(k=0; k+KERN_XW*KERN_VW<=h; k+=KERN_XW*KERN_VW){
      KERN(xw_tile)(hr, x, isU8, xb, xf, nz, cnt, W1, h, k, KERN_XW);
    }
    switch( (h-k)/KERN_VW ){   /* 0 .. KERN_XW-1 registers left */
#define XW_CASE(m) \
      case m: KERN(xw_tile)(hr, x, isU8, xb, xf, nz, cnt, W1, h, k, m); break;
#if KERN_XW>7
      XW_CASE(7) XW_CASE(6) XW_CASE(5) XW_CASE(4)
#endif
#if KERN_XW>3
      XW_CASE(3)
#endif
#if KERN_XW>2
      XW_CASE(2)
#endif
      XW_CASE(1)
#undef XW_CASE
    }
    for(k+=(h-k)/KERN_VW*KERN_VW; k<h; k++){
      float a0 = 0.0f, c0 = 0.0f;
      for(j=0; j+1<cnt; j+=2){
        a0 += NN_PX(nz[j])*W1[(size_t)nz[j]*h + k];
        c0 += NN_PX(nz[j+1])*W1[(size_t)nz[j+1]*h + k];
      }
      if( j<cnt ) a0 += NN_PX(nz[j])*W1[(size_t)nz[j]*h + k];
      hr[k] = a0 + c0;
    }
  }
}

KFN
void KERN(sparse_xw_f32)(float *restrict H, const aesql_nn_data *x,
                         const uint32_t *idx, int n,
                         const float *restrict W1, int h){
  KERN(sparse_xw_t)(H, x, 0, idx, n, W1, h);
}
KFN
void KERN(sparse_xw_u8)(float *restrict H, const aesql_nn_data *x,
                        const uint32_t *idx, int n,
                        const float *restrict W1, int h){
  KERN(sparse_xw_t)(H, x, 1, idx, n, W1, h);
}
/* Columns [k, k + nv*KERN_VW) of row i of G (+)= X' dH: the sum over the
** pixel's entries, in the rows' order, held in registers. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(xtdh_tile)(float *restrict g, const uint16_t *restrict crow,
                     const float *restrict cval, uint32_t e0, uint32_t e1,
                     const float *restrict dH, int h, int k, int add,
                     const int nv){
  VF a[KERN_XT];
  uint32_t e;
  int l;
#pragma GCC unroll 16
  for(l=0; l<nv; l++) a[l] = add ? KLD(g + k + l*KERN_VW) : (VF){0};
  for(e=e0; e<e1; e++){
    const float *restrict dh = dH + (size_t)crow[e]*h + k;
    const float u = cval[e];
#pragma GCC unroll 16
    for(l=0; l<nv; l++) a[l] += u*KLD(dh + l*KERN_VW);
  }
#pragma GCC unroll 16
  for(l=0; l<nv; l++) KST(g + k + l*KERN_VW, a[l]);
}

/* Columns [k, k + nv*KERN_VW) of G for every pixel. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(xtdh_cols)(float *restrict G, const uint32_t *restrict st,
                     const uint16_t *restrict crow,
                     const float *restrict cval, int d,
                     const float *restrict dH, int h, int add, int k,
                     const int nv){
  int i;
  for(i=0; i<d; i++){
    if( st[i]==st[i+1] ) continue;
    KERN(xtdh_tile)(G + (size_t)i*h, crow, cval, st[i], st[i+1], dH, h, k,
                    add, nv);
  }
}

/* Rows [i0, i1) of G (d x h) (+)= X' dH for the block's rows (dH:
** n x h), G pointing at row i0; its rows of pixels no row has are zeroed
** when !add. Columns in tiles of KERN_XT registers, pixels in the inner
** loop: the tile's slice of dH (n x 64 floats on AVX2, 32 kB at 128 rows)
** stays in L1 or close to it. */
KFN
void KERN(csc_xtdh)(float *restrict G, const uint32_t *restrict st,
                    const uint16_t *restrict crow,
                    const float *restrict cval, int i0, int i1,
                    const float *restrict dH, int h, int add){
  int i, k, d = i1 - i0;
  uint32_t e;
  st += i0;
  if( !add ){
    for(i=0; i<d; i++){
      if( st[i]==st[i+1] ) memset(G + (size_t)i*h, 0, (size_t)h*sizeof(float));
    }
  }
  for(k=0; k+KERN_XT*KERN_VW<=h; k+=KERN_XT*KERN_VW){
    KERN(xtdh_cols)(G, st, crow, cval, d, dH, h, add, k, KERN_XT);
  }
  switch( (h-k)/KERN_VW ){   /* 0 .. KERN_XT-1 registers left */
#define XT_CASE(m) \
    case m: KERN(xtdh_cols)(G, st, crow, cval, d, dH, h, add, k, m); break;
#if KERN_XT>7
    XT_CASE(7) XT_CASE(6) XT_CASE(5) XT_CASE(4)
#endif
#if KERN_XT>3
    XT_CASE(3) XT_CASE(2)
#endif
    XT_CASE(1)
#undef XT_CASE
  }
  for(k+=(h-k)/KERN_VW*KERN_VW; k<h; k++){
    for(i=0; i<d; i++){
      float a;
      if( st[i]==st[i+1] ) continue;
      a = add ? G[(size_t)i*h + k] : 0.0f;
      for(e=st[i]; e<st[i+1]; e++) a += cval[e]*dH[(size_t)crow[e]*h + k];
      G[(size_t)i*h + k] = a;
    }
  }
}

/* The same, row by row (no index): a slice of KERN_NT registers of dH's
** row is held while the row's pixels add it, scaled, to G's slices. */
static inline __attribute__((always_inline)) KERN_TARGET
void KERN(rows_xtdh_t)(float *restrict G, const aesql_nn_data *x, int isU8,
                       const uint32_t *idx, int n, const float *restrict dH,
                       int h, int add){
  const size_t d = (size_t)x->d;
  int r, k;
  if( !add ) memset(G, 0, d*h*sizeof(float));
  for(k=0; k<h; k+=KERN_NT*KERN_VW){
    const int nv = h-k>=KERN_NT*KERN_VW ? KERN_NT : (h-k)/KERN_VW;
    for(r=0; r<n; r++){
      const size_t row = idx[r];
      const uint16_t *restrict nz = x->nz + x->nzStart[row];
      const int cnt = (int)(x->nzStart[row+1] - x->nzStart[row]);
      const unsigned char *restrict xb = isU8 ? x->u8 + row*d : 0;
      const float *restrict xf = isU8 ? 0 : x->f32 + row*d;
      const float *restrict dh = dH + (size_t)r*h + k;
      VF e[KERN_NT];
      int j, l;
      if( nv==KERN_NT ){
#pragma GCC unroll 16
        for(l=0; l<KERN_NT; l++) e[l] = KLD(dh + l*KERN_VW);
        for(j=0; j<cnt; j++){
          float *g = G + (size_t)nz[j]*h + k;
          const float u = NN_PX(nz[j]);
#pragma GCC unroll 16
          for(l=0; l<KERN_NT; l++) KST(g + l*KERN_VW, KLD(g + l*KERN_VW) + u*e[l]);
        }
      }else{
        const int kk = k + nv*KERN_VW;
        for(j=0; j<cnt; j++){
          float *g = G + (size_t)nz[j]*h;
          const float u = NN_PX(nz[j]);
          int c;
          for(l=0; l<nv; l++) KST(g + k + l*KERN_VW, KLD(g + k + l*KERN_VW) + u*KLD(dh + l*KERN_VW));
          for(c=kk; c<h; c++) g[c] += u*dH[(size_t)r*h + c];
        }
      }
    }
  }
}
KFN
void KERN(rows_xtdh_u8)(float *restrict G, const aesql_nn_data *x,
                        const uint32_t *idx, int n,
                        const float *restrict dH, int h, int add){
  KERN(rows_xtdh_t)(G, x, 1, idx, n, dH, h, add);
}
KFN
void KERN(rows_xtdh_f32)(float *restrict G, const aesql_nn_data *x,
                         const uint32_t *idx, int n,
                         const float *restrict dH, int h, int add){
  KERN(rows_xtdh_t)(G, x, 0, idx, n, dH, h, add);
}

/* ---- the output layer's sweeps ---- */

/* See nn_out_loss_row and nn_out_grad_row in ae_net_pass.c. The NN_LANES
** lanes of the sum of squares are NN_LANES/KERN_VW registers (as an
** array of floats they went through memory on every block), written out
** for the tail and the final sum, which go lane by lane as before. */
KFN
double KERN(out_loss_row)(float *restrict y, const float *restrict x,
                          const float *restrict b, int d){
  enum { NA = NN_LANES/KERN_VW };
  VF acc[NA];
  float lane[NN_LANES];
  double loss = 0.0;
  int j, l;
#pragma GCC unroll 16
  for(l=0; l<NA; l++) acc[l] = (VF){0};
  for(j=0; j+NN_LANES<=d; j+=NN_LANES){
#pragma GCC unroll 16
    for(l=0; l<NA; l++){
      const int o = j + l*KERN_VW;
      VF v = KLD(y + o) + KLD(b + o);
      VF e = v - KLD(x + o);
      KST(y + o, v);
      acc[l] += e*e;
    }
  }
#pragma GCC unroll 16
  for(l=0; l<NA; l++) KST(lane + l*KERN_VW, acc[l]);
  for(; j<d; j++){
    float v = y[j] + b[j];
    float e = v - x[j];
    y[j] = v;
    lane[0] += e*e;
  }
  for(l=0; l<NN_LANES; l++) loss += lane[l];
  return loss;
}

KFN
double KERN(out_grad_row)(float *restrict y, const float *restrict x,
                          const float *restrict b, float *restrict gb,
                          int d, float scale){
  enum { NA = NN_LANES/KERN_VW };
  VF acc[NA];
  float lane[NN_LANES];
  double loss = 0.0;
  int j, l;
#pragma GCC unroll 16
  for(l=0; l<NA; l++) acc[l] = (VF){0};
  for(j=0; j+NN_LANES<=d; j+=NN_LANES){
#pragma GCC unroll 16
    for(l=0; l<NA; l++){
      const int o = j + l*KERN_VW;
      VF e = KLD(y + o) + KLD(b + o) - KLD(x + o);
      VF g = scale*e;
      KST(y + o, g);
      KST(gb + o, KLD(gb + o) + g);
      acc[l] += e*e;
    }
  }
#pragma GCC unroll 16
  for(l=0; l<NA; l++) KST(lane + l*KERN_VW, acc[l]);
  for(; j<d; j++){
    float e = y[j] + b[j] - x[j];
    float g = scale*e;
    y[j] = g;
    gb[j] += g;
    lane[0] += e*e;
  }
  for(l=0; l<NN_LANES; l++) loss += lane[l];
  return loss;
}

/* ---- the Gram way's transposes ---- */

/* The lanes of a register, as a list: KT_LIST(F, s) is F(0, s), ...,
** F(KERN_VW-1, s), for __builtin_shufflevector's constant indices. */
#define KT_4(F, s, o) F(o, s), F(o+1, s), F(o+2, s), F(o+3, s)
#if KERN_VW==16
# define KT_LIST(F, s) KT_4(F, s, 0), KT_4(F, s, 4), KT_4(F, s, 8), \
                       KT_4(F, s, 12)
#elif KERN_VW==8
# define KT_LIST(F, s) KT_4(F, s, 0), KT_4(F, s, 4)
#elif KERN_VW==4
# define KT_LIST(F, s) KT_4(F, s, 0)
#else
# error "KERN_VW must be 4, 8 or 16"
#endif
/* A stage of the transpose swaps bit s of the row and the column: row r
** (bit s clear) and row r|s become lo and hi of the pair, lane c taken
** from r or r|s (indices past KERN_VW name the second register). */
#define KT_LO(c, s) ((c)&(s) ? KERN_VW + (c) - (s) : (c))
#define KT_HI(c, s) ((c)&(s) ? KERN_VW + (c) : (c) + (s))
#define KT_STAGE(s) do{ \
    int r_; \
    _Pragma("GCC unroll 16") \
    for(r_=0; r_<KERN_VW; r_++){ \
      if( r_ & (s) ) continue; \
      { VF a_ = v[r_], b_ = v[r_|(s)]; \
        v[r_] = __builtin_shufflevector(a_, b_, KT_LIST(KT_LO, s)); \
        v[r_|(s)] = __builtin_shufflevector(a_, b_, KT_LIST(KT_HI, s)); } \
    } \
  }while(0)

/* B (cols x rows, ldb) = alpha (A_0 + ... + A_{nA-1})', for the nA
** matrices aA (rows x cols, lda each) summed in that order then scaled:
** in blocks of KERN_VW x KERN_VW transposed in registers, the edges
** element by element with the same operations, so the same values. */
KFN
void KERN(transpose_sum)(float *restrict B, int ldb,
                         const float *const *aA, int nA, int lda,
                         int rows, int cols, float alpha){
  int i0, j0, i, j, p;
  for(i0=0; i0+KERN_VW<=rows; i0+=KERN_VW){
    for(j0=0; j0+KERN_VW<=cols; j0+=KERN_VW){
      VF v[KERN_VW];
#pragma GCC unroll 16
      for(i=0; i<KERN_VW; i++){
        const size_t o = (size_t)(i0 + i)*lda + j0;
        v[i] = KLD(aA[0] + o);
        for(p=1; p<nA; p++) v[i] += KLD(aA[p] + o);
      }
#if KERN_VW>8
      KT_STAGE(8);
#endif
#if KERN_VW>4
      KT_STAGE(4);
#endif
      KT_STAGE(2);
      KT_STAGE(1);
#pragma GCC unroll 16
      for(j=0; j<KERN_VW; j++){
        KST(B + (size_t)(j0 + j)*ldb + i0, alpha*v[j]);
      }
    }
    for(j=j0; j<cols; j++){
      for(i=i0; i<i0+KERN_VW; i++){
        float e = aA[0][(size_t)i*lda + j];
        for(p=1; p<nA; p++) e += aA[p][(size_t)i*lda + j];
        B[(size_t)j*ldb + i] = alpha*e;
      }
    }
  }
  for(j=0; j<cols; j++){
    for(i=i0; i<rows; i++){
      float e = aA[0][(size_t)i*lda + j];
      for(p=1; p<nA; p++) e += aA[p][(size_t)i*lda + j];
      B[(size_t)j*ldb + i] = alpha*e;
    }
  }
}
#undef KT_4
#undef KT_LIST
#undef KT_LO
#undef KT_HI
#undef KT_STAGE

#undef VF
#undef KFN
#undef KLD
#undef KST
#undef KERN
#undef KERN_TARGET
#undef KERN_VW
#undef KERN_NT
#undef KERN_XW
#undef KERN_XT
