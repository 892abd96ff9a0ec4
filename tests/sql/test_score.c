/*
** Tests of the scoring kernels (ext/sql/ae_score.c, ext/sql/ae_score_kern.h) and of
** ae_scores (ext/sql/ae_scores.c):
**   - the sparse and dense forms of the error, at every instruction set
**     the CPU runs, against the naive double-precision forward pass, on
**     random models (h a multiple of 16 or not, h > d/2, h past the
**     sparse limit, f32 models) and images (random, all zero, all 255,
**     one pixel at either end);
**   - ae_reconstruct against the rounded naive output, ae_encode against
**     the naive code layer;
**   - ae_scores against ae_error, row by row and bit for bit, for tables,
**     views and queries, around every block boundary, with 1 to 4 threads,
**     re-run by a correlated subquery;
**   - bad rows (NULL, TEXT, wrong length): an error naming the row, once
**     the rows before it are returned;
**   - corrupt models in ae_models: a clear error, no crash.
**
**   make build/tests/test_score build/asan-tests/test_score
**
** Tolerances: the kernels sum in float (blocks of 16 pixels, then double)
** and the naive pass in double; the errors must agree to 1e-5 relative
** (the kernels reach ~5e-7 on MNIST and Fashion-MNIST).
**
** ae_scores takes over a chunk a worker holds for SCORES_PATIENCE, which
** happens when the system preempts the worker; to have it on every block,
** build this test with -DSCORES_PATIENCE=0 and every ext source file
** compiled into it (as was done with -fsanitize=address,undefined and
** -fsanitize=thread).
*/
#include "check_sql.h"
#include "../../ext/sql/ae_model.h"
#include "../../ext/sql/ae_score.h"
#include "../../ext/core/ae_blas.h"
#include "../../ext/core/ae_net.h"

#define REL_TOL 1e-5

/* ---- helpers ---- */

/* A random d-h-d model in encoding dtype, decoded from its BLOB as
** ae_models would give it. Weights uniform in +-limit (glorot), biases
** in +-0.3 so that units are both active and not. */
static aesql_model *random_model(int d, int h, int dtype, uint64_t seed){
  aesql_net nn;
  aesql_rng r;
  aesql_model *m = sqlite3_malloc(sizeof(*m));
  char *zErr = 0;
  void *blob;
  int nBlob, i;
  memset(m, 0, sizeof(*m));
  aesql_rng_seed(&r, seed);
  if( aesql_net_init_dhd(&nn, d, h) ) return 0;
  aesql_net_glorot(&nn, &r);
  for(i=0; i<h; i++) nn.layer[0].b[i] = (float)(0.6*aesql_rng_uniform(&r) - 0.3);
  for(i=0; i<d; i++) nn.layer[1].b[i] = (float)(0.6*aesql_rng_uniform(&r) - 0.3);
  blob = aesql_model_encode(&nn, dtype, &nBlob);
  aesql_net_free(&nn);
  if( !blob || aesql_model_decode(blob, nBlob, m, &zErr)!=SQLITE_OK ){
    printf("# random_model: %s\n", zErr ? zErr : "out of memory");
    sqlite3_free(zErr);
    sqlite3_free(blob);
    aesql_model_free(m);
    return 0;
  }
  sqlite3_free(blob);
  m->zName = sqlite3_mprintf("random");
  return m;
}

enum { IMG_RANDOM, IMG_ZERO, IMG_FULL, IMG_FIRST, IMG_LAST, IMG_DENSE, IMG_KINDS };
static const char *const img_name[IMG_KINDS] = {
  "random", "all zero", "all 255", "first pixel", "last pixel", "dense"
};

/* One image of the given kind: d bytes (u8) or d float32 (f32). Random:
** a fifth of the pixels non-zero, a third of those 255, like MNIST. */
static void make_image(aesql_rng *r, int kind, int d, int dtype, void *px){
  int i;
  for(i=0; i<d; i++){
    double v = 0;
    switch( kind ){
      case IMG_RANDOM:
        if( aesql_rng_uniform(r)<0.2 ){
          v = aesql_rng_uniform(r)<0.33 ? 255 : 1 + aesql_rng_below(r, 254);
        }
        break;
      case IMG_ZERO: break;
      case IMG_FULL: v = 255; break;
      case IMG_FIRST: v = i==0 ? 200 : 0; break;
      case IMG_LAST: v = i==d-1 ? 77 : 0; break;
      case IMG_DENSE: v = 1 + aesql_rng_below(r, 255); break;
    }
    if( dtype==AESQL_U8 ) ((unsigned char*)px)[i] = (unsigned char)v;
    else{
      float f = (float)(v/255.0);
      if( kind==IMG_DENSE && i%7==0 ) f = -f;     /* f32 takes any value */
      memcpy((char*)px + 4*(size_t)i, &f, 4);
    }
  }
}

/* The image as the model sees it: bytes/255 or the floats. */
static void image_floats(const aesql_model *m, const void *px, float *x){
  int i;
  for(i=0; i<m->nn.d; i++){
    if( m->dtype==AESQL_U8 ) x[i] = (float)(((const unsigned char*)px)[i]/255.0);
    else memcpy(&x[i], (const char*)px + 4*(size_t)i, 4);
  }
}

/* Naive error (sum of squares) of one image; code layer and output too:
** plain loops in double (the model's two layers, then its output). */
static double naive_error(const aesql_model *m, const void *px, float *x,
                          float *hv, float *y){
  const aesql_layer *L0 = &m->net.layer[0], *L1 = &m->net.layer[1];
  const int d = m->nn.d, h = m->nn.h;
  double e = 0, *a = malloc(sizeof(double)*(size_t)h);
  int i, j, k;
  image_floats(m, px, x);
  for(k=0; k<h; k++){
    double z = L0->b[k];
    for(i=0; i<d; i++) z += (double)x[i]*L0->w[(size_t)i*h + k];
    a[k] = aesql_act_f(L0->act, z);
    if( hv ) hv[k] = (float)a[k];
  }
  for(j=0; j<d; j++){
    double v = L1->b[j];
    for(k=0; k<h; k++) v += a[k]*L1->w[(size_t)k*d + j];
    v = aesql_act_f(L1->act, v);
    y[j] = (float)v;
    e += (v - x[j])*(v - x[j]);
  }
  free(a);
  return e;
}

static double rel_err(double got, double want){
  return fabs(got - want)/(fabs(want)>1 ? fabs(want) : 1);
}

/* ---- the kernels against the naive pass ---- */

static void check_kernels(int d, int h, int dtype){
  aesql_model *m = random_model(d, h, dtype, 1000u*d + h + dtype);
  aesql_rng r;
  float *work, *x, *hv, *y, *hk, *yk;
  void *px;
  double worst[3][2] = {{0,0},{0,0},{0,0}};  /* [isa][sparse] */
  double worstEnc = 0, worstDec = 0;
  int isa, best = aesql_score_isa(), kind, rep, i, autoSame = 1;
  char zName[160];
  if( !m ){ CHECK("random model", 0); return; }
  aesql_rng_seed(&r, 99u + d + h);
  work = malloc(sizeof(float)*aesql_score_work_floats(m));
  x = malloc(sizeof(float)*d); y = malloc(sizeof(float)*d);
  yk = malloc(sizeof(float)*d);
  hv = malloc(sizeof(float)*h); hk = malloc(sizeof(float)*h);
  px = malloc(4*(size_t)d);
  for(kind=0; kind<IMG_KINDS; kind++){
    for(rep=0; rep<(kind==IMG_RANDOM ? 20 : 1); rep++){
      double want;
      make_image(&r, kind, d, dtype, px);
      want = naive_error(m, px, x, hv, y);
      for(isa=0; isa<=best; isa++){
        int sp;
        for(sp=0; sp<2; sp++){
          double got = aesql_score_error_with(m, px, work, sp, isa);
          double e = rel_err(got, want);
          if( !(e<=worst[isa][sp]) ) worst[isa][sp] = isnan(e) ? INFINITY : e;
          if( e>REL_TOL ){
            printf("# d=%d h=%d %s image %s isa %d %s: got %.9g want %.9g\n",
                   d, h, aesql_dtype_name(dtype), img_name[kind], isa,
                   sp ? "sparse" : "dense", got, want);
          }
        }
        aesql_score_encode(m, px, hk, work, isa);
        for(i=0; i<h; i++){
          double e = fabs(hk[i] - hv[i])/(fabs(hv[i])>1 ? fabs(hv[i]) : 1);
          if( !(e<=worstEnc) ) worstEnc = isnan(e) ? INFINITY : e;
        }
        aesql_score_decode(m, hk, yk, work, isa);
        for(i=0; i<d; i++){
          double e = fabs(yk[i] - y[i])/(fabs(y[i])>1 ? fabs(y[i]) : 1);
          if( !(e<=worstDec) ) worstDec = isnan(e) ? INFINITY : e;
        }
      }
      if( aesql_score_error(m, px, work)
          != aesql_score_error_with(m, px, work, m->sparse, AESQL_ISA_BEST) ){
        autoSame = 0;
      }
    }
  }
  for(isa=0; isa<=best; isa++){
    sqlite3_snprintf(sizeof(zName), zName, "d=%d h=%d %s isa %d: dense error "
                     "within %g of naive (worst %.2g)", d, h,
                     aesql_dtype_name(dtype), isa, REL_TOL, worst[isa][0]);
    CHECK(zName, worst[isa][0]<=REL_TOL);
    sqlite3_snprintf(sizeof(zName), zName, "d=%d h=%d %s isa %d: sparse error "
                     "within %g of naive (worst %.2g)%s", d, h,
                     aesql_dtype_name(dtype), isa, REL_TOL, worst[isa][1],
                     m->w12 ? "" : " (falls back to dense)");
    CHECK(zName, worst[isa][1]<=REL_TOL);
  }
  /* Code layer and output in float against double: a few float roundings
  ** of sums of d (or h) terms; 1e-5 relative to max(1, |value|). */
  sqlite3_snprintf(sizeof(zName), zName, "d=%d h=%d %s: code layer within 1e-5 "
                   "of naive (worst %.2g)", d, h, aesql_dtype_name(dtype), worstEnc);
  CHECK(zName, worstEnc<=1e-5);
  sqlite3_snprintf(sizeof(zName), zName, "d=%d h=%d %s: reconstruction within "
                   "1e-5 of naive (worst %.2g)", d, h, aesql_dtype_name(dtype), worstDec);
  CHECK(zName, worstDec<=1e-5);
  sqlite3_snprintf(sizeof(zName), zName, "d=%d h=%d %s: ae_error's kernel is the "
                   "%s form (2h %s d), bit for bit", d, h, aesql_dtype_name(dtype),
                   m->sparse ? "sparse" : "dense", 2*h<d ? "<" : ">=");
  CHECK(zName, autoSame && m->sparse==(dtype==AESQL_U8 && 2*h<d
                                       && h<=AESQL_SPARSE_MAX_HIDDEN
                                       && (double)d*h*h<=AESQL_SPARSE_MAX_WORK));
  free(work); free(x); free(y); free(yk); free(hv); free(hk); free(px);
  aesql_model_free(m);
}

/* ---- SQL: a model in ae_models, tables of images ---- */

static void store_model(sqlite3 *db, const char *zName, int d, int h,
                        int dtype, uint64_t seed){
  aesql_net nn;
  aesql_rng r;
  sqlite3_stmt *st;
  void *blob;
  int nBlob, i;
  aesql_rng_seed(&r, seed);
  aesql_net_init_dhd(&nn, d, h);
  aesql_net_glorot(&nn, &r);
  for(i=0; i<h; i++) nn.layer[0].b[i] = (float)(0.6*aesql_rng_uniform(&r) - 0.3);
  for(i=0; i<d; i++) nn.layer[1].b[i] = (float)(0.6*aesql_rng_uniform(&r) - 0.3);
  blob = aesql_model_encode(&nn, dtype, &nBlob);
  aesql_net_free(&nn);
  sqlite3_exec(db, aesql_model_schema, 0, 0, 0);
  sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO ae_models(name, n_input, n_hidden, "
                     "dtype, source, rows_train, rows_val, epochs, loss, val_loss, "
                     "train_seconds, options, created, weights) VALUES(?1, ?2, ?3, ?4, "
                     "'test', 0, 0, 0, 0, NULL, 0, '{}', '2024-01-01 00:00:00', ?5)",
                     -1, &st, 0);
  sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, d);
  sqlite3_bind_int(st, 3, h);
  sqlite3_bind_text(st, 4, aesql_dtype_name(dtype), -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, blob, nBlob, sqlite3_free);
  if( sqlite3_step(st)!=SQLITE_DONE ) printf("# store_model: %s\n", sqlite3_errmsg(db));
  sqlite3_finalize(st);
}

/* Table zTab(pixels) of n random images (the kinds in turn). */
static void make_table(sqlite3 *db, const char *zTab, int n, int d, int dtype,
                       uint64_t seed){
  sqlite3_stmt *st;
  aesql_rng r;
  void *px = malloc(4*(size_t)d);
  char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\";"
                               "CREATE TABLE \"%w\"(pixels BLOB);", zTab, zTab);
  int i, nb = d*aesql_dtype_size(dtype);
  aesql_rng_seed(&r, seed);
  sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("INSERT INTO \"%w\" VALUES(?1)", zTab);
  sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_free(zSql);
  sqlite3_exec(db, "BEGIN", 0, 0, 0);
  for(i=0; i<n; i++){
    make_image(&r, i%11<6 ? i%11 : IMG_RANDOM, d, dtype, px);
    sqlite3_bind_blob(st, 1, px, nb, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_exec(db, "COMMIT", 0, 0, 0);
  sqlite3_finalize(st);
  free(px);
}

/* ae_reconstruct and ae_encode through SQL against the naive pass. */
static void check_reconstruct(sqlite3 *db, const char *zModel, const char *zTab){
  aesql_model *m = 0;
  char *zErr = 0, *zSql, zName[160];
  sqlite3_stmt *st;
  float *x, *hv, *y;
  int nRow = 0, badBytes = 0, nearHalf = 0, badF32 = 0, badEnc = 0, i;
  if( aesql_model_load(db, zModel, &m, &zErr) ){
    printf("# %s\n", zErr);
    sqlite3_free(zErr);
    CHECK("load model for ae_reconstruct", 0);
    return;
  }
  x = malloc(sizeof(float)*m->nn.d); y = malloc(sizeof(float)*m->nn.d);
  hv = malloc(sizeof(float)*m->nn.h);
  zSql = sqlite3_mprintf("SELECT pixels, ae_reconstruct(%Q, pixels), "
                         "ae_encode(%Q, pixels) FROM \"%w\"", zModel, zModel, zTab);
  sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_free(zSql);
  while( sqlite3_step(st)==SQLITE_ROW ){
    const void *px = sqlite3_column_blob(st, 0);
    const unsigned char *rec = sqlite3_column_blob(st, 1);
    const unsigned char *enc = sqlite3_column_blob(st, 2);
    nRow++;
    if( sqlite3_column_bytes(st, 1)!=m->nn.d*aesql_dtype_size(m->dtype)
     || sqlite3_column_bytes(st, 2)!=4*m->nn.h ){
      badBytes++;
      continue;
    }
    naive_error(m, px, x, hv, y);
    for(i=0; i<m->nn.h; i++){
      float f;
      memcpy(&f, enc + 4*i, 4);
      if( fabs(f - hv[i]) > 1e-5*(fabs(hv[i])>1 ? fabs(hv[i]) : 1) ) badEnc++;
    }
    for(i=0; i<m->nn.d; i++){
      if( m->dtype==AESQL_U8 ){
        /* The naive value in bytes, rounded half to even and clamped; +-1
        ** allowed where it is within 1e-4 of a .5 boundary (float vs double). */
        double v = (double)y[i]*255.0, want = v<=0 ? 0 : v>=255 ? 255 : nearbyint(v);
        double frac = v - floor(v);
        int d = abs((int)rec[i] - (int)want);
        if( d>0 && fabs(frac-0.5)<1e-4 && d==1 ) nearHalf++;
        else if( d>0 ) badBytes++;
      }else{
        float f;
        memcpy(&f, rec + 4*i, 4);
        if( fabs(f - y[i]) > 1e-5*(fabs(y[i])>1 ? fabs(y[i]) : 1) ) badF32++;
      }
    }
  }
  sqlite3_finalize(st);
  sqlite3_snprintf(sizeof(zName), zName, "%s: ae_reconstruct of %d rows is the "
                   "rounded naive output (%d off by one at a .5 boundary)",
                   zModel, nRow, nearHalf);
  CHECK(zName, nRow>0 && badBytes==0 && badF32==0);
  sqlite3_snprintf(sizeof(zName), zName, "%s: ae_encode is the naive code layer "
                   "(1e-5)", zModel);
  CHECK(zName, nRow>0 && badEnc==0);
  free(x); free(y); free(hv);
  aesql_model_free(m);
}

/* ae_scores(zModel, zSource) against ae_error row by row: zMap is an SQL
** expression giving the rowid in zTab of the row with the given key. */
static void check_scores(sqlite3 *db, const char *zLabel, const char *zModel,
                         const char *zSource, const char *zTab, const char *zMap,
                         int nWant){
  char *zSql, *zWant, zName[200];
  zSql = sqlite3_mprintf(
    "SELECT count(*), coalesce(sum(s.key), 0), "
    "       coalesce(sum(s.error = ae_error(%Q, t.pixels)), 0), "
    "       coalesce(sum(s.error IS NULL), 0) "
    "FROM ae_scores(%Q, %Q) s LEFT JOIN \"%w\" t ON t.rowid = (%s)",
    zModel, zModel, zSource, zTab, zMap);
  zWant = sqlite3_mprintf("%d|%lld|%d|0", nWant,
                          (long long)nWant*(nWant+1)/2, nWant);
  sqlite3_snprintf(sizeof(zName), zName, "ae_scores = ae_error bit for bit: %s",
                   zLabel);
  check_sql(zName, db, zSql, zWant);
  sqlite3_free(zSql);
  sqlite3_free(zWant);
}

static void check_blocks(sqlite3 *db){
  /* Around the boundaries of ae_scores's blocks (256 rows, then 4096) and
  ** the usual ones; 784 pixels: the AVX-512 lister's 64-byte steps. */
  static const int sizes[] = { 0, 1, 2, 255, 256, 257, 4095, 4096, 4097,
                               4351, 4352, 4353, 8447, 8448, 8449 };
  unsigned k;
  int threads[] = { 1, 2, 4 }, it;
  make_table(db, "big", 8449, 784, AESQL_U8, 5);
  for(k=0; k<sizeof(sizes)/sizeof(sizes[0]); k++){
    char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS part;"
        "CREATE TABLE part AS SELECT pixels FROM big WHERE rowid<=%d;"
        "DROP VIEW IF EXISTS vpart; CREATE VIEW vpart AS SELECT pixels FROM part;",
        sizes[k]);
    char zLabel[80];
    sqlite3_exec(db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
    for(it=0; it<3; it++){
      if( it>0 && sizes[k]!=4097 && sizes[k]!=257 ) continue;
      aesql_blas_set_threads(threads[it]);
      sqlite3_snprintf(sizeof(zLabel), zLabel, "table of %d rows, %d threads",
                       sizes[k], aesql_blas_threads() ? threads[it] : 0);
      check_scores(db, zLabel, "m784", "part", "part", "s.key", sizes[k]);
    }
    if( sizes[k]==4097 || sizes[k]==1 ){
      sqlite3_snprintf(sizeof(zLabel), zLabel, "view of %d rows", sizes[k]);
      check_scores(db, zLabel, "m784", "vpart", "part", "s.key", sizes[k]);
      zSql = sqlite3_mprintf("%d + 1 - s.key", sizes[k]);
      sqlite3_snprintf(sizeof(zLabel), zLabel, "query of %d rows, descending",
                       sizes[k]);
      check_scores(db, zLabel, "m784", "SELECT pixels FROM part ORDER BY rowid DESC",
                   "part", zSql, sizes[k]);
      sqlite3_free(zSql);
    }
  }
  aesql_blas_set_threads(2);
}

/* Bad rows: NULL, TEXT, wrong length; at the start, within, and around a
** block boundary. The error names the row, after the rows before it. */
static void check_bad_rows(sqlite3 *db){
  static const int where[] = { 1, 100, 256, 257, 4352, 4353, 5000 };
  static const char *const what[] = { "NULL", "'text'", "x'0102'" };
  static const char *const msg[] = { "NULL", "non-BLOB", "a wrong number of" };
  unsigned k;
  char zName[200];
  for(k=0; k<sizeof(where)/sizeof(where[0]); k++){
    int j = k % 3;
    char *zSql = sqlite3_mprintf("DROP TABLE IF EXISTS bad;"
        "CREATE TABLE bad AS SELECT pixels FROM big WHERE rowid<=5000;"
        "UPDATE bad SET pixels=%s WHERE rowid=%d;", what[j], where[k]);
    char *zWant = sqlite3_mprintf("ae_scores: row %d of the source has %s pixels; "
                                  "model 'm784' takes BLOBs of 784 bytes",
                                  where[k], msg[j]);
    sqlite3_exec(db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
    sqlite3_snprintf(sizeof(zName), zName, "%s pixels in row %d: an error "
                     "naming the row", what[j], where[k]);
    check_sql_error(zName, db, "SELECT count(*) FROM ae_scores('m784', 'bad')", zWant);
    sqlite3_snprintf(sizeof(zName), zName, "%s pixels in row %d: the error comes "
                     "from a query too", what[j], where[k]);
    check_sql_error(zName, db, "SELECT count(*) FROM ae_scores('m784', "
                    "'SELECT pixels FROM bad')", zWant);
    sqlite3_free(zWant);
    if( where[k]>1 ){
      char *zWant2 = sqlite3_mprintf("%d", where[k]-1);
      zSql = sqlite3_mprintf("SELECT count(*) FROM (SELECT * FROM "
                             "ae_scores('m784', 'bad') LIMIT %d)", where[k]-1);
      sqlite3_snprintf(sizeof(zName), zName, "the %d rows before row %d are "
                       "returned", where[k]-1, where[k]);
      check_sql(zName, db, zSql, zWant2);
      sqlite3_free(zSql);
      sqlite3_free(zWant2);
    }
  }
  check_sql("ae_error gives NULL for NULL pixels", db,
            "SELECT ae_error('m784', NULL) IS NULL, ae_encode('m784', NULL) IS NULL, "
            "ae_reconstruct('m784', NULL) IS NULL", "1|1|1");
}

/* Corrupt weights in ae_models: clear errors from every function. */
static void check_corrupt(sqlite3 *db){
  static const struct { const char *zName, *zBlob, *zWant; } bad[] = {
    { "trunc", "substr(w, 1, length(w) - 4)", "inconsistent header or size" },
    { "short", "substr(w, 1, 20)", "bad magic number" },
    { "empty", "x''", "bad magic number" },
    { "magic", "x'58' || substr(w, 2)", "bad magic number" },
    { "version", "substr(w, 1, 8) || x'07000000' || substr(w, 13)",
      "model format version 7 is not supported" },
    { "nan", "substr(w, 1, 100) || x'0000c07f' || substr(w, 105)",
      "a weight is not finite" },
    { "inf", "substr(w, 1, length(w) - 4) || x'0000807f'", "a weight is not finite" },
    { "layers", "substr(w, 1, 16) || x'00000100' || substr(w, 21)",
      "inconsistent header or size" },
    { "hidden", "substr(w, 1, 36) || x'00000100' || substr(w, 41)",
      "inconsistent header or size" },
    { "width", "substr(w, 1, 32) || x'ffffffff' || substr(w, 37)",
      "inconsistent header or size" },
    { "dtype", "substr(w, 1, 12) || x'07000000' || substr(w, 17)",
      "inconsistent header or size" },
    { "act", "substr(w, 1, 40) || x'09000000' || substr(w, 45)",
      "activation 9 is unknown" },
    { "text", "'not a blob'", "bad magic number" },
  };
  unsigned k;
  char zName[160];
  for(k=0; k<sizeof(bad)/sizeof(bad[0]); k++){
    char *zSql = sqlite3_mprintf(
      "INSERT OR REPLACE INTO ae_models(name, n_input, n_hidden, dtype, source, "
      "rows_train, rows_val, epochs, loss, val_loss, train_seconds, options, created, "
      "weights) SELECT %Q, n_input, n_hidden, dtype, source, "
      "rows_train, rows_val, epochs, loss, val_loss, train_seconds, options, created, "
      "(SELECT %s FROM (SELECT weights AS w FROM ae_models WHERE name='m64')) "
      "FROM ae_models WHERE name='m64'", bad[k].zName, bad[k].zBlob);
    char *zWant;
    int rc = sqlite3_exec(db, zSql, 0, 0, 0);
    sqlite3_free(zSql);
    if( rc!=SQLITE_OK ){
      printf("# corrupt %s: %s\n", bad[k].zName, sqlite3_errmsg(db));
      CHECK("store a corrupt model", 0);
      continue;
    }
    zWant = sqlite3_mprintf("ae_error: model '%s': ", bad[k].zName);
    zSql = sqlite3_mprintf("SELECT ae_error(%Q, pixels) FROM t64", bad[k].zName);
    sqlite3_snprintf(sizeof(zName), zName, "corrupt model (%s): ae_error says "
                     "what is wrong", bad[k].zName);
    check_sql_error(zName, db, zSql, zWant);
    sqlite3_snprintf(sizeof(zName), zName, "corrupt model (%s): %s", bad[k].zName,
                     bad[k].zWant);
    check_sql_error(zName, db, zSql, bad[k].zWant);
    sqlite3_free(zSql);
    sqlite3_free(zWant);
    zWant = sqlite3_mprintf("ae_scores: model '%s': ", bad[k].zName);
    zSql = sqlite3_mprintf("SELECT count(*) FROM ae_scores(%Q, 't64')", bad[k].zName);
    sqlite3_snprintf(sizeof(zName), zName, "corrupt model (%s): ae_scores says "
                     "what is wrong", bad[k].zName);
    check_sql_error(zName, db, zSql, zWant);
    sqlite3_free(zSql);
    sqlite3_free(zWant);
    zSql = sqlite3_mprintf("SELECT ae_reconstruct(%Q, pixels), ae_encode(%Q, pixels) "
                           "FROM t64", bad[k].zName, bad[k].zName);
    sqlite3_snprintf(sizeof(zName), zName, "corrupt model (%s): ae_reconstruct "
                     "and ae_encode fail cleanly", bad[k].zName);
    check_sql_error(zName, db, zSql, bad[k].zWant);
    sqlite3_free(zSql);
  }
}

/* A model trained one epoch on a real data set (MNIST, Fashion-MNIST):
** reconstructions close to the input make the expansion's terms cancel,
** ten to one, which random models do not show. Every 6th training image
** against the naive pass; all of them ae_scores against ae_error. Skipped
** without the data (make data) and under the sanitizers (too slow). */
static void check_real(sqlite3 *db, const char *zSet, const char *zFile){
  char *zPath = sqlite3_mprintf("%s/%s", check_datadir(), zFile);
  char *zSql, zName[160], zModel[40], zTab[40];
  aesql_model *m = 0;
  sqlite3_stmt *st;
  float *x, *y, *work;
  double worst[3] = {0, 0, 0};
  int n = 0, isa, best = aesql_score_isa(), same = 1;
  if( access(zPath, R_OK)!=0 || getenv("AESQL_SANITIZE") ){
    printf("# skipped: %s %s\n", zPath, getenv("AESQL_SANITIZE") ?
           "(under the sanitizers)" : "is missing (make data)");
    sqlite3_free(zPath);
    return;
  }
  sqlite3_snprintf(sizeof(zTab), zTab, "real_%s", zSet);
  sqlite3_snprintf(sizeof(zModel), zModel, "real_%s_32", zSet);
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.%s USING idx(images='%q');"
                         "SELECT ae_train('%s', 32, '{\"seed\": 1, \"epochs\": 1}');",
                         zTab, zPath, zTab);
  sqlite3_snprintf(sizeof(zName), zName, "%s: train one epoch", zSet);
  check_sql(zName, db, zSql, zModel);
  sqlite3_free(zSql);
  sqlite3_free(zPath);
  if( aesql_model_load(db, zModel, &m, 0) ) return;
  x = malloc(sizeof(float)*m->nn.d); y = malloc(sizeof(float)*m->nn.d);
  work = malloc(sizeof(float)*aesql_score_work_floats(m));
  zSql = sqlite3_mprintf("SELECT pixels, ae_error('%s', pixels) FROM %s "
                         "WHERE rowid %% 6 = 0", zModel, zTab);
  sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_free(zSql);
  while( sqlite3_step(st)==SQLITE_ROW ){
    const void *px = sqlite3_column_blob(st, 0);
    double want = naive_error(m, px, x, 0, y);
    for(isa=0; isa<=best; isa++){
      double got = aesql_score_error_with(m, px, work, 1, isa);
      double e = fabs(got - want)/want;
      if( !(e<=worst[isa]) ) worst[isa] = isnan(e) ? INFINITY : e;
      if( isa==best && got!=sqlite3_column_double(st, 1) ) same = 0;
    }
    n++;
  }
  sqlite3_finalize(st);
  for(isa=0; isa<=best; isa++){
    sqlite3_snprintf(sizeof(zName), zName, "%s: sparse error of %d trained-on "
                     "images within %g of naive, isa %d (worst %.2g)", zSet, n,
                     REL_TOL, isa, worst[isa]);
    CHECK(zName, n>0 && worst[isa]<=REL_TOL);
  }
  sqlite3_snprintf(sizeof(zName), zName, "%s: ae_error is that kernel", zSet);
  CHECK(zName, n>0 && same);
  free(work);
  check_scores(db, zSet, zModel, zTab, zTab, "s.key", 60000);
  free(x); free(y);
  aesql_model_free(m);
}

int main(void){
  sqlite3 *db = check_open(0);
  static const int shapes[][2] = {
    { 784, 32 },   /* MNIST                                   */
    { 784, 48 },   /* a tile and a half of columns (AVX-512)  */
    { 784, 7 },    /* h padded to 16                          */
    { 64, 8 },     /* small                                   */
    { 64, 31 },    /* 2h < d, h not a multiple of 16          */
    { 64, 40 },    /* h > d/2: dense, sparse still derived    */
    { 33, 5 },     /* d not a multiple of 8, 16 or 64         */
    { 1000, 17 },  /* d past 64-byte steps with a tail        */
    { 20000, 120 },/* d*h*h past AESQL_SPARSE_MAX_WORK: dense */
    { 600, 257 },  /* h past the sparse limit                 */
    { 100, 300 },  /* h > d                                   */
    { 1, 1 },
  };
  unsigned k;

  printf("# best instruction set: %d (0 base, 1 AVX2, 2 AVX-512)\n", aesql_score_isa());
  for(k=0; k<sizeof(shapes)/sizeof(shapes[0]); k++){
    check_kernels(shapes[k][0], shapes[k][1], AESQL_U8);
  }
  check_kernels(784, 32, AESQL_F32);
  check_kernels(40, 3, AESQL_F32);

  /* ---- SQL ---- */
  store_model(db, "m784", 784, 32, AESQL_U8, 11);
  store_model(db, "m64", 64, 8, AESQL_U8, 12);
  store_model(db, "m64w", 64, 40, AESQL_U8, 13);
  store_model(db, "f40", 40, 3, AESQL_F32, 14);
  make_table(db, "t784", 300, 784, AESQL_U8, 21);
  make_table(db, "t64", 300, 64, AESQL_U8, 22);
  make_table(db, "f40t", 300, 40, AESQL_F32, 23);
  check_reconstruct(db, "m784", "t784");
  check_reconstruct(db, "m64", "t64");
  check_reconstruct(db, "m64w", "t64");
  check_reconstruct(db, "f40", "f40t");
  check_scores(db, "f32 model", "f40", "f40t", "f40t", "s.key", 300);
  check_scores(db, "wide model (dense form)", "m64w", "t64", "t64", "s.key", 300);
  check_sql("one statement, two models by name (auxdata per name)", db,
    "SELECT count(*), sum(e = ae_error(n, pixels)) FROM (SELECT n, pixels, "
    "ae_error(n, pixels) AS e FROM t64, (SELECT 'm64' AS n UNION ALL SELECT 'm64w'))",
    "600|600");
  check_sql("correlated re-runs of ae_scores, the model changing (pool and "
            "buffers reused)", db,
    "SELECT group_concat(n || ':' || (SELECT count(*) FROM ae_scores(n, 't64')), ' ') "
    "FROM (SELECT 'm64' AS n UNION ALL SELECT 'm64w' UNION ALL SELECT 'm64')",
    "m64:300 m64w:300 m64:300");
  check_sql("ae_scores inside a join, re-filtered per outer row", db,
    "SELECT count(*) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) o, "
    "ae_scores('m64', 'SELECT pixels FROM t64 LIMIT 50') s", "150");
  check_sql("rowid of ae_scores is the row number", db,
    "SELECT min(rowid), max(rowid), count(DISTINCT rowid) FROM ae_scores('m64', 't64')",
    "1|300|300");

  check_blocks(db);
  check_bad_rows(db);
  check_real(db, "mnist", "mnist/train-images-idx3-ubyte");
  check_real(db, "fashion", "fashion/train-images-idx3-ubyte.gz");
  check_corrupt(db);

  sqlite3_close(db);
  return check_done();
}
