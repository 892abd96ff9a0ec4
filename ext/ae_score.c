/*
** Scoring with a trained model, one row at a time, in any query:
**   ae_error(model, pixels)       -> REAL, sum over pixels of (x - y)^2
**   ae_reconstruct(model, pixels) -> BLOB in the input's encoding
**   ae_encode(model, pixels)      -> BLOB, the code layer as float32 LE
**
** The model is read from ae_models and decoded once per statement: it is
** kept as the function's auxdata on its first argument, which SQLite keeps
** for as long as that argument is a constant.
**
** ae_error on byte images never builds the reconstruction. With x the
** scaled input, h = relu(b1 + x W1) and y = h W2 + b2:
**   |y - x|^2 = h'(W2 W2')h + 2 h'(W2 b2) - 2 h'(W2 x) + b2.b2 - 2 b2.x + x.x
** where W2 W2' (h x h) and W2 b2 are computed once per model, and every
** term that involves x runs over its non-zero pixels only: about a fifth
** of an MNIST digit. The dense form is used when it is cheaper (many
** non-zero pixels, or a wide code layer); both are tested against each
** other and against the BLAS forward pass.
*/
#include "ae_model.h"
#include "ae_score.h"

#include <math.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__!=__ORDER_LITTLE_ENDIAN__
# error "libaesql reads float32 BLOBs as little-endian: port ae_score.c first"
#endif

/* Compiled for several instruction sets; the loader picks the best. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) \
    && !defined(__SANITIZE_ADDRESS__)
# define AE_MULTIVERSION __attribute__((target_clones("avx512f","avx2","default")))
#else
# define AE_MULTIVERSION
#endif

/* x scaled to the model's units: bytes/255 or float32 as is. */
static inline float pixel(const aesql_model *m, const void *px, int i){
  if( m->dtype==AESQL_U8 ) return ((const unsigned char*)px)[i]*m->scale;
  {
    float f;
    memcpy(&f, (const unsigned char*)px + 4*(size_t)i, 4);
    return f;
  }
}

/* hacc[k] += v * row[k] for k < h. */
AE_MULTIVERSION
static void axpy(int h, float v, const float *restrict row, float *restrict acc){
  int k;
  for(k=0; k<h; k++) acc[k] += v*row[k];
}

/* The code layer: h = relu(b1 + x W1), over non-zero pixels only. When u is
** not NULL, also u = W2 x (the column sums used by the sparse error).
** Returns the number of non-zero pixels and their sum of squares in *pxx
** and dot product with b2 in *pbx. */
static int encode_row(const aesql_model *m, const void *px, float *hv,
                      float *u, double *pxx, double *pbx){
  const aesql_nn *nn = &m->nn;
  int d = nn->d, h = nn->h, i, k, nnz = 0;
  double xx = 0, bx = 0;
  memcpy(hv, nn->b1, sizeof(float)*h);
  if( u ) memset(u, 0, sizeof(float)*h);
  for(i=0; i<d; i++){
    float x = pixel(m, px, i);
    if( x==0.0f ) continue;
    nnz++;
    axpy(h, x, nn->w1 + (size_t)i*h, hv);
    if( u ){
      axpy(h, x, m->w2t + (size_t)i*h, u);
      xx += (double)x*x;
      bx += (double)x*nn->b2[i];
    }
  }
  for(k=0; k<h; k++) if( hv[k]<0.0f ) hv[k] = 0.0f;
  if( pxx ) *pxx = xx;
  if( pbx ) *pbx = bx;
  return nnz;
}

/* y = b2 + h W2, skipping inactive units. */
static void decode_row(const aesql_model *m, const float *hv, float *y){
  const aesql_nn *nn = &m->nn;
  int k, d = nn->d;
  memcpy(y, nn->b2, sizeof(float)*d);
  for(k=0; k<nn->h; k++){
    if( hv[k]!=0.0f ) axpy(d, hv[k], nn->w2 + (size_t)k*d, y);
  }
}

double aesql_score_error_dense(const aesql_model *m, const void *px,
                               float *work){
  float *hv = work, *y = work + m->nn.h;
  double s = 0;
  int i;
  encode_row(m, px, hv, 0, 0, 0);
  decode_row(m, hv, y);
  for(i=0; i<m->nn.d; i++){
    float r = y[i] - pixel(m, px, i);
    s += (double)(r*r);
  }
  return s;
}

double aesql_score_error_sparse(const aesql_model *m, const void *px,
                                float *work){
  int h = m->nn.h, k, j;
  float *hv = work, *u = work + h;
  double xx, bx, q = 0, s;
  encode_row(m, px, hv, u, &xx, &bx);
  for(k=0; k<h; k++){
    double a;
    if( hv[k]==0.0f ) continue;
    a = 0;
    for(j=0; j<h; j++) a += m->gram[(size_t)k*h + j]*hv[j];
    q += hv[k]*(a + 2.0*(m->c[k] - u[k]));
  }
  s = q + m->b2sq - 2.0*bx + xx;
  return s < 0 ? 0 : s;  /* rounding can take an exact fit a hair below 0 */
}

double aesql_score_error(const aesql_model *m, const void *px, float *work){
  const aesql_nn *nn = &m->nn;
  /* The sparse form costs about nnz*2h + h*h, the dense one nnz*h + h*d;
  ** a byte image's non-zero count is cheap to bound by d itself, so decide
  ** from the shape: sparse pays when h is small against d. */
  if( m->dtype==AESQL_U8 && 2*nn->h < nn->d ){
    return aesql_score_error_sparse(m, px, work);
  }
  return aesql_score_error_dense(m, px, work);
}

size_t aesql_score_work_floats(const aesql_model *m){
  return (size_t)m->nn.h*2 + m->nn.d;
}

/* ---- SQL functions ---- */

/* Per-statement state kept as auxdata on the model-name argument. */
typedef struct score_aux {
  aesql_model *m;
  float *work;
} score_aux;

static void score_aux_free(void *p){
  score_aux *a = p;
  if( !a ) return;
  aesql_model_free(a->m);
  sqlite3_free(a->work);
  sqlite3_free(a);
}

/* The model named by argv[0], from the auxdata or freshly loaded (then
** *pFresh is set and score_done() must hand it to SQLite), and the pixels
** of argv[1], checked. Returns NULL after setting an error or a NULL
** result; the model is still to be passed to score_done(). */
static score_aux *score_args(sqlite3_context *ctx, sqlite3_value **argv,
                             const char *zFunc, const void **ppx,
                             score_aux **ppAux, int *pFresh){
  score_aux *a = sqlite3_get_auxdata(ctx, 0);
  const char *zName = (const char*)sqlite3_value_text(argv[0]);
  int n, want, t;
  *ppAux = 0;
  *pFresh = 0;
  if( sqlite3_value_type(argv[0])!=SQLITE_TEXT || !zName ){
    char *z = sqlite3_mprintf("%s: the first argument must be a model name "
                              "(TEXT), as ae_train() returns", zFunc);
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
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
      a->work = sqlite3_malloc64(sizeof(float)*aesql_score_work_floats(a->m));
      if( !a->work ) rc = SQLITE_NOMEM;
    }
    if( rc!=SQLITE_OK ){
      if( rc==SQLITE_NOMEM ) sqlite3_result_error_nomem(ctx);
      else{
        char *z = sqlite3_mprintf("%s: %s", zFunc, zErr ? zErr : "error");
        sqlite3_result_error(ctx, z, -1);
        sqlite3_free(z);
      }
      sqlite3_free(zErr);
      score_aux_free(a);
      return 0;
    }
    *pFresh = 1;
  }
  *ppAux = a;
  t = sqlite3_value_type(argv[1]);
  if( t==SQLITE_NULL ){
    sqlite3_result_null(ctx);
    return 0;
  }
  want = a->m->nn.d * aesql_dtype_size(a->m->dtype);
  if( t!=SQLITE_BLOB ){
    char *z = sqlite3_mprintf("%s: pixels must be a BLOB of %d bytes (%s) for "
                              "model '%s', got %s", zFunc, want,
                              aesql_dtype_name(a->m->dtype), zName,
                              t==SQLITE_TEXT ? "TEXT" :
                              t==SQLITE_INTEGER ? "INTEGER" : "REAL");
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    return 0;
  }
  n = sqlite3_value_bytes(argv[1]);
  if( n!=want ){
    char *z = sqlite3_mprintf("%s: model '%s' takes %d %s pixels (%d bytes), "
                              "got a BLOB of %d bytes", zFunc, zName,
                              a->m->nn.d, aesql_dtype_name(a->m->dtype), want, n);
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    return 0;
  }
  *ppx = sqlite3_value_blob(argv[1]);
  return a;
}

/* Hands a freshly loaded model to SQLite, to keep while argv[0] is
** constant. Called last: SQLite may free it at once. */
static void score_done(sqlite3_context *ctx, score_aux *a, int fresh){
  if( a && fresh ) sqlite3_set_auxdata(ctx, 0, a, score_aux_free);
}

static void ae_error_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh;
  score_aux *a = score_args(ctx, argv, "ae_error", &px, &aux, &fresh);
  (void)argc;
  if( a ) sqlite3_result_double(ctx, aesql_score_error(a->m, px, a->work));
  score_done(ctx, aux, fresh);
}

static void ae_reconstruct_func(sqlite3_context *ctx, int argc,
                                sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh;
  score_aux *a = score_args(ctx, argv, "ae_reconstruct", &px, &aux, &fresh);
  int d, i;
  float *y;
  (void)argc;
  if( !a ){ score_done(ctx, aux, fresh); return; }
  d = a->m->nn.d;
  encode_row(a->m, px, a->work, 0, 0, 0);
  y = a->work + a->m->nn.h;
  decode_row(a->m, a->work, y);
  if( a->m->dtype==AESQL_U8 ){
    unsigned char *out = sqlite3_malloc(d);
    if( !out ){ sqlite3_result_error_nomem(ctx); score_done(ctx, aux, fresh); return; }
    for(i=0; i<d; i++){
      float v = y[i]*255.0f;
      out[i] = v<=0.0f ? 0 : v>=255.0f ? 255 : (unsigned char)lrintf(v);
    }
    sqlite3_result_blob(ctx, out, d, sqlite3_free);
  }else{
    sqlite3_result_blob(ctx, y, 4*d, SQLITE_TRANSIENT);
  }
  score_done(ctx, aux, fresh);
}

static void ae_encode_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  const void *px = 0;
  score_aux *aux; int fresh;
  score_aux *a = score_args(ctx, argv, "ae_encode", &px, &aux, &fresh);
  (void)argc;
  if( a ){
    encode_row(a->m, px, a->work, 0, 0, 0);
    sqlite3_result_blob(ctx, a->work, 4*a->m->nn.h, SQLITE_TRANSIENT);
  }
  score_done(ctx, aux, fresh);
}

int aesql_score_register(sqlite3 *db){
  /* Not SQLITE_DETERMINISTIC: the model behind a name can change. They
  ** only read ae_models, so they may be used in views and triggers. */
  int rc = sqlite3_create_function(db, "ae_error", 2, SQLITE_UTF8, 0,
                                   ae_error_func, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_function(db, "ae_reconstruct", 2,
                              SQLITE_UTF8, 0, ae_reconstruct_func, 0, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_function(db, "ae_encode", 2,
                              SQLITE_UTF8, 0, ae_encode_func, 0, 0);
  if( rc==SQLITE_OK ) rc = aesql_scores_register(db);
  return rc;
}
