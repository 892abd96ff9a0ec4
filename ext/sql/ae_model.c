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
  "  n_input INTEGER NOT NULL,   -- pixels per image\n"
  "  n_hidden INTEGER NOT NULL,  -- units of the code layer\n"
  "  dtype TEXT NOT NULL,        -- pixel encoding: 'u8' or 'f32'\n"
  "  source TEXT NOT NULL,       -- the table or query trained on\n"
  "  rows_train INTEGER NOT NULL,\n"
  "  rows_val INTEGER NOT NULL,\n"
  "  epochs INTEGER NOT NULL,\n"
  "  loss REAL NOT NULL,         -- training loss of the last epoch\n"
  "  val_loss REAL,              -- validation loss of the last epoch\n"
  "  train_seconds REAL NOT NULL,\n"
  "  options TEXT NOT NULL,      -- JSON: every option in effect, seed included\n"
  "  created TEXT NOT NULL,      -- UTC, 'YYYY-MM-DD HH:MM:SS'\n"
  "  weights BLOB NOT NULL       -- versioned format, see ext/ae_model.h\n"
  ");\n"
  "CREATE TABLE IF NOT EXISTS main.ae_history(\n"
  "  model TEXT NOT NULL,\n"
  "  epoch INTEGER NOT NULL,     -- 1-based\n"
  "  loss REAL NOT NULL,\n"
  "  val_loss REAL,\n"
  "  seconds REAL NOT NULL,\n"
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

int aesql_dtype_size(int dtype){ return dtype==AESQL_F32 ? 4 : 1; }
const char *aesql_dtype_name(int dtype){ return dtype==AESQL_F32 ? "f32" : "u8"; }

static void put_u32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v>>8);
  p[2] = (unsigned char)(v>>16); p[3] = (unsigned char)(v>>24);
}
static uint32_t get_u32(const unsigned char *p){
  return (uint32_t)p[0] | ((uint32_t)p[1]<<8) | ((uint32_t)p[2]<<16)
       | ((uint32_t)p[3]<<24);
}

void *aesql_model_encode(const aesql_nn *nn, int dtype, int *pnByte){
  size_t np = aesql_nn_nparam(nn->d, nn->h), i;
  size_t n = AESQL_MODEL_HEADER + 4*np;
  unsigned char *p;
  if( n > 0x7fffffff ) return 0;
  p = sqlite3_malloc64(n);
  if( !p ) return 0;
  memcpy(p, AESQL_MODEL_MAGIC, 8);
  put_u32(p+8, AESQL_MODEL_VERSION);
  put_u32(p+12, (uint32_t)nn->d);
  put_u32(p+16, (uint32_t)nn->h);
  put_u32(p+20, (uint32_t)dtype);
  put_u32(p+24, (uint32_t)np);
  put_u32(p+28, 0);
  for(i=0; i<np; i++){
    uint32_t u;
    memcpy(&u, &nn->param[i], 4);
    put_u32(p + AESQL_MODEL_HEADER + 4*i, u);
  }
  *pnByte = (int)n;
  return p;
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
  pm->scale = pm->dtype==AESQL_U8 ? (float)(1.0/255.0) : 1.0f;
  pm->hp = hp;
  pm->b2sq = 0;
  for(i=0; i<(size_t)d; i++) pm->b2sq += (double)b2[i]*b2[i];
  pm->sparse = 0;
  if( pm->dtype!=AESQL_U8 || h>AESQL_SPARSE_MAX_HIDDEN
   || (double)d*h*h>AESQL_SPARSE_MAX_WORK ) return SQLITE_OK;
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
  const unsigned char *p = pBlob;
  uint32_t ver, d, h, dtype, np;
  size_t i;
  if( !p || nBlob < AESQL_MODEL_HEADER || memcmp(p, AESQL_MODEL_MAGIC, 8)!=0 ){
    *pzErr = sqlite3_mprintf("the weights are not a libaesql model (bad magic number)");
    return SQLITE_CORRUPT;
  }
  ver = get_u32(p+8); d = get_u32(p+12); h = get_u32(p+16);
  dtype = get_u32(p+20); np = get_u32(p+24);
  if( ver!=AESQL_MODEL_VERSION ){
    *pzErr = sqlite3_mprintf("model format version %u is not supported "
                             "(this libaesql reads version %d)",
                             ver, AESQL_MODEL_VERSION);
    return SQLITE_CORRUPT;
  }
  if( d<1 || d>AESQL_MAX_WIDTH || h<1 || h>AESQL_MAX_HIDDEN
   || (dtype!=AESQL_U8 && dtype!=AESQL_F32)
   || np!=aesql_nn_nparam((int)d, (int)h)
   || (size_t)nBlob!=AESQL_MODEL_HEADER + 4*(size_t)np ){
    *pzErr = sqlite3_mprintf("corrupt model weights (inconsistent header or size)");
    return SQLITE_CORRUPT;
  }
  if( aesql_nn_alloc(&pm->nn, (int)d, (int)h) ) return SQLITE_NOMEM;
  for(i=0; i<np; i++){
    uint32_t u = get_u32(p + AESQL_MODEL_HEADER + 4*i);
    float f;
    memcpy(&f, &u, 4);
    if( !isfinite(f) ){
      *pzErr = sqlite3_mprintf("corrupt model weights (a weight is not finite)");
      return SQLITE_CORRUPT;
    }
    pm->nn.param[i] = f;
  }
  pm->dtype = (int)dtype;
  return model_derive(pm);
}

void aesql_model_free(aesql_model *pm){
  if( !pm ) return;
  aesql_nn_free(&pm->nn);
  sqlite3_free(pm->pDerived);
  sqlite3_free(pm->zName);
  sqlite3_free(pm);
}

int aesql_model_load(sqlite3 *db, const char *zName, aesql_model **ppModel,
                     char **pzErr){
  sqlite3_stmt *st = 0;
  aesql_model *pm;
  int rc, exists = 0;
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
  rc = sqlite3_prepare_v2(db, "SELECT weights FROM main.ae_models WHERE name=?1",
                          -1, &st, 0);
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
