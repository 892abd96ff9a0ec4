/*
** The model tables and the weights BLOB format (see ae_model.h).
*/
#include "ae_model.h"
#include "ae_store.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char aesql_model_schema[] =
  "CREATE TABLE IF NOT EXISTS main.ae_models(\n"
  "  name TEXT PRIMARY KEY,      -- what ae_error() and friends take\n"
  "  n_input INTEGER NOT NULL,   -- pixels per image, or features per row\n"
  "  n_hidden INTEGER NOT NULL,  -- units of the code layer\n"
  "  dtype TEXT NOT NULL,        -- pixel encoding: 'u8' or 'f32'\n"
  "  source TEXT NOT NULL,       -- the table or query trained on\n"
  "  rows_train INTEGER NOT NULL,\n"
  "  rows_val INTEGER NOT NULL,\n"
  "  epochs INTEGER NOT NULL,    -- that ran (early stopping may end sooner)\n"
  "  loss REAL NOT NULL,         -- training loss of the last epoch\n"
  "  val_loss REAL,              -- validation loss of the last epoch\n"
  "  train_seconds REAL NOT NULL,\n"
  "  options TEXT NOT NULL,      -- JSON: every option in effect, seed included\n"
  "  created TEXT NOT NULL,      -- UTC, 'YYYY-MM-DD HH:MM:SS'\n"
  "  weights BLOB NOT NULL,      -- versioned format, see ext/core/ae_codec.h\n"
  "  layers TEXT,                -- JSON: the widths, e.g. [784,128,32,128,784]\n"
  "  activations TEXT,           -- JSON: each layer's, e.g. [\"relu\",\"linear\"]\n"
  "  best_epoch INTEGER,         -- lowest val_loss (early stopping's rule)\n"
  "  features TEXT               -- JSON: the names of the columns read, in\n"
  "                              -- order; NULL for a model of pixels\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.ae_history(\n"
  "  model TEXT NOT NULL,\n"
  "  epoch INTEGER NOT NULL,     -- 1-based\n"
  "  loss REAL NOT NULL,\n"
  "  val_loss REAL,\n"
  "  seconds REAL NOT NULL,\n"
  "  best INTEGER,               -- 1 for the model's best_epoch, else 0\n"
  "  PRIMARY KEY(model, epoch)\n"
  ") WITHOUT ROWID;\n"
  "CREATE TABLE IF NOT EXISTS main.ae_calibration(\n"
  "  model TEXT PRIMARY KEY,\n"
  "  rows INTEGER NOT NULL,      -- normal rows whose errors calibrate it\n"
  "  source TEXT NOT NULL,       -- 'validation_split', or ae_calibrate's source\n"
  "  calibrated TEXT NOT NULL,   -- UTC, 'YYYY-MM-DD HH:MM:SS'\n"
  "  false_alarm_rate REAL NOT NULL, -- the default rate of ae_threshold & co\n"
  "  errors BLOB NOT NULL        -- float64 LE, ascending, in ae_error's units\n"
  ") WITHOUT ROWID;\n";

/* Does main.zTab have column zCol? */
static int model_has_column(sqlite3 *db, const char *zTab, const char *zCol,
                            int *pHas){
  sqlite3_stmt *st = 0;
  int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info(?1, "
                              "'main') WHERE name=?2", -1, &st, 0);
  *pHas = 0;
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zCol, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if( rc==SQLITE_ROW ){ *pHas = sqlite3_column_int(st, 0)>0; rc = SQLITE_OK; }
  }
  sqlite3_finalize(st);
  return rc;
}

int aesql_model_migrate(sqlite3 *db, char **pzErr){
  int rc, has = 0;
  (void)pzErr;
  rc = model_has_column(db, "ae_models", "layers", &has);
  if( rc==SQLITE_OK && !has ){
    /* Models of the earlier release are all d -> h relu -> d linear. */
    rc = sqlite3_exec(db,
      "ALTER TABLE main.ae_models ADD COLUMN layers TEXT;"
      "ALTER TABLE main.ae_models ADD COLUMN activations TEXT;"
      "ALTER TABLE main.ae_models ADD COLUMN best_epoch INTEGER;"
      "UPDATE main.ae_models SET layers = json_array(n_input, n_hidden, n_input),"
      " activations = '[\"relu\",\"linear\"]' WHERE layers IS NULL;", 0, 0, 0);
  }
  /* Models of the releases before the models of numeric columns are all
  ** models of pixels: features NULL. */
  if( rc==SQLITE_OK ) rc = model_has_column(db, "ae_models", "features", &has);
  if( rc==SQLITE_OK && !has ){
    rc = sqlite3_exec(db, "ALTER TABLE main.ae_models ADD COLUMN features TEXT",
                      0, 0, 0);
  }
  if( rc==SQLITE_OK ) rc = model_has_column(db, "ae_history", "best", &has);
  if( rc==SQLITE_OK && !has ){
    rc = sqlite3_exec(db, "ALTER TABLE main.ae_history ADD COLUMN best INTEGER",
                      0, 0, 0);
  }
  return rc;
}

int aesql_dtype_size(int dtype){ return dtype==AESQL_F32 ? 4 : 1; }
const char *aesql_dtype_name(int dtype){ return dtype==AESQL_F32 ? "f32" : "u8"; }

void *aesql_model_encode(const aesql_net *net, int dtype, int *pnByte){
  return aesql_model_encode_xf(net, dtype, 0, pnByte);
}
void *aesql_model_encode_xf(const aesql_net *net, int dtype,
                            const aesql_xform *xf, int *pnByte){
  size_t n = aesql_codec_size_xf(net, xf);
  void *p;
  if( n==0 ) return 0;
  p = sqlite3_malloc64(n);
  if( !p ) return 0;
  aesql_codec_encode_xf(net, dtype, xf, p);
  *pnByte = (int)n;
  return p;
}

/* The kernels' view of pm->net (ae_model.h). */
static void model_view(aesql_model *pm){
  const aesql_net *net = &pm->net;
  const aesql_layer *F = &net->layer[0], *L = &net->layer[net->nLayer-1];
  aesql_kview *v = &pm->nn;
  int l;
  memset(v, 0, sizeof(*v));
  v->d = F->nIn;
  v->h = F->nOut;
  v->w1 = F->w; v->b1 = F->b; v->act1 = F->act;
  v->w2 = L->w; v->b2 = L->b; v->actOut = L->act;
  v->nMid = net->nLayer - 2;
  for(l=1; l<net->nLayer-1; l++){
    if( net->layer[l].nOut>v->wMid ) v->wMid = net->layer[l].nOut;
  }
}

/* Precomputes what the sparse scorer in ae_score.c needs, in one 64-byte
** aligned block: w12 (d x 2hp floats) and gram (hp x hp floats), then c
** and b1p (hp doubles each), all zero-padded. */
static int model_derive(aesql_model *pm){
  const int d = pm->nn.d, h = pm->nn.h, hp = (h + 15) & ~15;
  const float *w1 = pm->nn.w1, *w2 = pm->nn.w2, *b2 = pm->nn.b2;
  size_t nw, nd, i;
  int j, k;
  unsigned char *raw, *p;
  pm->hp = hp;
  pm->b2sq = 0;
  for(i=0; i<(size_t)d; i++) pm->b2sq += (double)b2[i]*b2[i];
  pm->sparse = 0;
  /* The expansion needs a linear last layer (and a single-layer model
  ** has no code layer between: it is scored densely). */
  if( pm->dtype!=AESQL_U8 || pm->net.nLayer<2 || pm->nn.actOut!=AESQL_ACT_LINEAR
   || h>AESQL_SPARSE_MAX_HIDDEN || (double)d*h*h>AESQL_SPARSE_MAX_WORK ){
    return SQLITE_OK;
  }
  nw = sizeof(float)*((size_t)d*2*hp + (size_t)hp*hp);  /* a multiple of 64 */
  nd = sizeof(double)*2*(size_t)hp;
  raw = sqlite3_malloc64(nw + nd + 64);
  if( !raw ) return SQLITE_NOMEM;
  pm->pDerived = raw;
  p = raw + (64 - ((uintptr_t)raw & 63));
  memset(p, 0, nw + nd);
  pm->w12 = (float*)p;
  pm->gram = pm->w12 + (size_t)d*2*hp;
  pm->c = (double*)(p + nw);
  pm->b1p = pm->c + hp;
  for(i=0; i<(size_t)d; i++){
    float *row = pm->w12 + i*2*hp;
    memcpy(row, w1 + i*h, sizeof(float)*h);
    for(k=0; k<h; k++) row[hp + k] = w2[(size_t)k*d + i];
  }
  for(k=0; k<h; k++){
    const float *wk = w2 + (size_t)k*d;
    double s = 0;
    for(j=k; j<h; j++){
      const float *wj = w2 + (size_t)j*d;
      double g[4] = {0, 0, 0, 0};   /* four chains: d*h*h/2 products */
      for(i=0; i+4<=(size_t)d; i+=4){
        g[0] += (double)wk[i]*wj[i];     g[1] += (double)wk[i+1]*wj[i+1];
        g[2] += (double)wk[i+2]*wj[i+2]; g[3] += (double)wk[i+3]*wj[i+3];
      }
      for(; i<(size_t)d; i++) g[0] += (double)wk[i]*wj[i];
      pm->gram[(size_t)k*hp + j] = pm->gram[(size_t)j*hp + k]
                                 = (float)((g[0] + g[1]) + (g[2] + g[3]));
    }
    for(i=0; i<(size_t)d; i++) s += (double)wk[i]*b2[i];
    pm->c[k] = s;
    pm->b1p[k] = pm->nn.b1[k];
  }
  /* Weights so large that the float Gram matrix overflows (a hostile or
  ** a diverged model): the expansion would give NaN; score densely. */
  for(i=0; i<(size_t)hp*hp; i++){
    if( !isfinite(pm->gram[i]) ){
      pm->w12 = 0;
      pm->gram = 0;
      return SQLITE_OK;
    }
  }
  pm->sparse = 2*h < d;
  return SQLITE_OK;
}

int aesql_model_decode(const void *pBlob, int nBlob, aesql_model *pm,
                       char **pzErr){
  char zErr[200];
  int rc = aesql_codec_decode_xf(pBlob, nBlob<0 ? 0 : (size_t)nBlob, &pm->net,
                                 &pm->dtype, &pm->xf, zErr, sizeof(zErr));
  if( rc==AESQL_CODEC_NOMEM ) return SQLITE_NOMEM;
  if( rc!=AESQL_CODEC_OK ){
    *pzErr = sqlite3_mprintf("%s", zErr);
    return SQLITE_CORRUPT;
  }
  /* The kernels read the first layer and the last around the middle
  ** ones (ae_model.h): two layers at least, the last as wide as the first
  ** layer's output, as every model ae_train makes is. */
  if( pm->net.nLayer<2
   || pm->net.layer[pm->net.nLayer-1].nIn!=pm->net.layer[0].nOut ){
    aesql_net_free(&pm->net);
    aesql_xform_free(&pm->xf);
    *pzErr = sqlite3_mprintf("corrupt model weights (a model needs two layers "
                             "at least, the last as wide as the first one's output)");
    return SQLITE_CORRUPT;
  }
  model_view(pm);
  return model_derive(pm);
}

void aesql_model_clear(aesql_model *pm){
  int i;
  aesql_net_free(&pm->net);
  aesql_xform_free(&pm->xf);
  for(i=0; i<pm->nFeature; i++) sqlite3_free(pm->azFeature[i]);
  sqlite3_free(pm->azFeature);
  pm->azFeature = 0;
  pm->nFeature = 0;
  sqlite3_free(pm->pDerived);
  pm->pDerived = 0;
  pm->w12 = 0;
  pm->gram = 0;
}

void aesql_model_free(aesql_model *pm){
  if( !pm ) return;
  aesql_model_clear(pm);
  sqlite3_free(pm->zName);
  sqlite3_free(pm);
}

/* Reads zJson, the model's features column, into pm->azFeature: a JSON
** array of pm->nn.d non-empty names, for an f32 model. The column comes
** from a database anyone may have written: every part is checked.
** SQLITE_OK, SQLITE_NOMEM, SQLite's error, or SQLITE_CORRUPT with *pzErr. */
static int model_features(sqlite3 *db, aesql_model *pm, const char *zJson,
                          char **pzErr){
  sqlite3_stmt *st = 0;
  const int d = pm->nn.d;
  int rc, n = 0, bad = pm->dtype!=AESQL_F32 ? 2 : 0;
  if( bad ) goto check;
  /* Not json_valid(), which reads out of memory as invalid JSON: text that
  ** is not JSON makes json_type() fail with SQLITE_ERROR ("malformed
  ** JSON"), out of memory with SQLITE_NOMEM. */
  rc = sqlite3_prepare_v2(db, "SELECT json_type(?1)='array' AND "
                          "json_array_length(?1)=?2", -1, &st, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zJson, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, d);
    rc = sqlite3_step(st);
    if( rc==SQLITE_ROW ){ bad = !sqlite3_column_int(st, 0); rc = SQLITE_OK; }
    else if( rc==SQLITE_ERROR ){ bad = 1; rc = SQLITE_OK; }
  }
  sqlite3_finalize(st);
  st = 0;
  if( rc!=SQLITE_OK ) return rc;
  if( !bad ){
    pm->azFeature = sqlite3_malloc64(sizeof(char*)*(size_t)d);
    if( !pm->azFeature ) return SQLITE_NOMEM;
    rc = sqlite3_prepare_v2(db, "SELECT type, value FROM json_each(?1)", -1, &st, 0);
    if( rc==SQLITE_OK ) sqlite3_bind_text(st, 1, zJson, -1, SQLITE_STATIC);
    while( rc==SQLITE_OK && n<d && (rc = sqlite3_step(st))==SQLITE_ROW ){
      const char *zType = (const char*)sqlite3_column_text(st, 0);
      const char *zVal = (const char*)sqlite3_column_text(st, 1);
      rc = SQLITE_OK;
      if( !zType || strcmp(zType, "text")!=0 || !zVal || !zVal[0] ){
        bad = 1;
        break;
      }
      pm->azFeature[n] = sqlite3_mprintf("%s", zVal);
      if( !pm->azFeature[n] ){ rc = SQLITE_NOMEM; break; }
      pm->nFeature = ++n;
    }
    if( rc==SQLITE_DONE || rc==SQLITE_ROW ) rc = SQLITE_OK;
    sqlite3_finalize(st);
    if( rc==SQLITE_OK && !bad && n!=d ) bad = 1;
  }
  if( rc!=SQLITE_OK ) return rc;
check:
  if( bad ){
    *pzErr = bad==2
      ? sqlite3_mprintf("corrupt model (a model of numeric columns must read "
                        "f32 values)")
      : sqlite3_mprintf("corrupt model (its features are not a JSON array of "
                        "%d column names, one per input)", d);
    return *pzErr ? SQLITE_CORRUPT : SQLITE_NOMEM;
  }
  return SQLITE_OK;
}

int aesql_model_load(sqlite3 *db, const char *zName, aesql_model **ppModel,
                     char **pzErr){
  sqlite3_stmt *st = 0;
  aesql_model *pm;
  int rc, exists = 0, hasFeatures = 0;
  *ppModel = 0;
  /* The models are in main.ae_models, where ae_train writes them, whatever
  ** a temp or attached schema holds; and it must be libaesql's table, not
  ** a view or a virtual table from someone else's database. */
  rc = aesql_store_check(db, &exists, pzErr);
  if( rc!=SQLITE_OK ){
    if( !*pzErr ){
      *pzErr = sqlite3_mprintf("cannot read model '%s': %s", zName,
                               (rc & 0xff)==SQLITE_INTERRUPT ? "interrupted"
                               : sqlite3_errmsg(db));
    }
    return rc;
  }
  if( !exists ){
    *pzErr = sqlite3_mprintf("unknown model '%s': no model has been trained "
                             "in this database; train one with ae_train()", zName);
    return SQLITE_ERROR;
  }
  /* A database of an earlier release has no features column until its
  ** next ae_train migrates it: its models are all models of pixels. */
  rc = model_has_column(db, "ae_models", "features", &hasFeatures);
  if( rc==SQLITE_OK ){
    rc = sqlite3_prepare_v2(db, hasFeatures
        ? "SELECT weights, features FROM main.ae_models WHERE name=?1"
        : "SELECT weights, NULL FROM main.ae_models WHERE name=?1", -1, &st, 0);
  }
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
  }
  if( rc!=SQLITE_ROW ){
    if( rc==SQLITE_DONE ){
      *pzErr = sqlite3_mprintf("unknown model '%s'; SELECT name FROM ae_models "
                               "lists the trained ones", zName);
      rc = SQLITE_ERROR;
    }else{
      *pzErr = sqlite3_mprintf("cannot read model '%s': %s", zName,
                               (rc & 0xff)==SQLITE_INTERRUPT ? "interrupted"
                               : sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
  }
  pm = sqlite3_malloc(sizeof(*pm));
  if( !pm ){ sqlite3_finalize(st); return SQLITE_NOMEM; }
  memset(pm, 0, sizeof(*pm));
  rc = aesql_model_decode(sqlite3_column_blob(st, 0),
                          sqlite3_column_bytes(st, 0), pm, pzErr);
  if( rc==SQLITE_OK && sqlite3_column_type(st, 1)!=SQLITE_NULL ){
    const char *zJson = (const char*)sqlite3_column_text(st, 1);
    rc = zJson ? model_features(db, pm, zJson, pzErr) : SQLITE_NOMEM;
  }
  sqlite3_finalize(st);
  if( rc==SQLITE_OK ){
    pm->zName = sqlite3_mprintf("%s", zName);
    if( !pm->zName ) rc = SQLITE_NOMEM;
  }else if( *pzErr ){
    char *z = sqlite3_mprintf("model '%s': %z", zName, *pzErr);
    *pzErr = z;
  }
  if( rc!=SQLITE_OK ){ aesql_model_free(pm); return rc; }
  *ppModel = pm;
  return SQLITE_OK;
}
