/*
** Models of numeric columns (see ae_columns.h): cells read as numbers,
** strictly, the errors that name the cell, the feature names as JSON, and
** a row of SQL values, transformed, as the floats the kernels score.
*/
#include "ae_columns.h"

#include <math.h>
#include <string.h>

/* ---- cells ---- */

/* SQLite's white space (sqlite3Isspace), which its numeric affinity
** skips around a number. */
static int cols_space(unsigned char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\v' || c=='\f' || c=='\r';
}
static int cols_digit(unsigned char c){ return c>='0' && c<='9'; }

int aesql_text_is_number(const unsigned char *z, int n){
  int i = 0, nDigit = 0;
  if( !z ) return 0;
  while( i<n && cols_space(z[i]) ) i++;
  if( i<n && (z[i]=='+' || z[i]=='-') ) i++;
  while( i<n && cols_digit(z[i]) ){ i++; nDigit++; }
  if( i<n && z[i]=='.' ){
    i++;
    while( i<n && cols_digit(z[i]) ){ i++; nDigit++; }
  }
  if( nDigit==0 ) return 0;
  if( i<n && (z[i]=='e' || z[i]=='E') ){
    int nExp = 0;
    i++;
    if( i<n && (z[i]=='+' || z[i]=='-') ) i++;
    while( i<n && cols_digit(z[i]) ){ i++; nExp++; }
    if( nExp==0 ) return 0;
  }
  while( i<n && cols_space(z[i]) ) i++;
  return i==n;
}

/* The two readers differ only in where the value comes from; SQLite
** converts TEXT to a double itself (sqlite3AtoF: no locale), the same way
** for a column and for an argument, so that a row scores the same read
** from a table as passed to a function. -1: out of memory. */
#define CELL_READ(TYPE, TEXT, BYTES, DOUBLE, INT64) do{ \
  switch( TYPE ){ \
    case SQLITE_INTEGER: *pv = (double)(INT64); return AESQL_CELL_NUMBER; \
    case SQLITE_FLOAT: \
      *pv = (DOUBLE); \
      return isfinite(*pv) ? AESQL_CELL_NUMBER : AESQL_CELL_INFINITE; \
    case SQLITE_TEXT: { \
      const unsigned char *z_ = (TEXT); \
      if( !z_ ) return -1; \
      if( !aesql_text_is_number(z_, (BYTES)) ) return AESQL_CELL_TEXT; \
      *pv = (DOUBLE); \
      return isfinite(*pv) ? AESQL_CELL_NUMBER : AESQL_CELL_INFINITE; \
    } \
    case SQLITE_NULL: *pv = NAN; return AESQL_CELL_NULL; \
    default: return AESQL_CELL_BLOB; \
  } \
}while(0)

int aesql_cell_column(sqlite3_stmt *st, int i, double *pv){
  CELL_READ(sqlite3_column_type(st, i), sqlite3_column_text(st, i),
            sqlite3_column_bytes(st, i), sqlite3_column_double(st, i),
            sqlite3_column_int64(st, i));
}
int aesql_cell_value(sqlite3_value *v, double *pv){
  CELL_READ(sqlite3_value_type(v), sqlite3_value_text(v),
            sqlite3_value_bytes(v), sqlite3_value_double(v),
            sqlite3_value_int64(v));
}

char *aesql_cell_error(const char *zFunc, const char *zWhere, int kind,
                       const char *zText, const char *zNull){
  switch( kind ){
    case AESQL_CELL_NULL:
      return sqlite3_mprintf("%s: %s is NULL; %s", zFunc, zWhere, zNull);
    case AESQL_CELL_TEXT: {
      const char *z = zText ? zText : "";
      while( cols_space((unsigned char)*z) ) z++;
      if( *z==0 ){
        /* The shell's .import makes an empty field '', not NULL. */
        return sqlite3_mprintf("%s: %s is '%!.40s' (empty text), not a number; "
            "an empty field of a CSV file is imported as '': NULLIF(column, '') "
            "makes it NULL", zFunc, zWhere, zText ? zText : "");
      }
      return sqlite3_mprintf("%s: %s is '%!.40s', not a number; a model reads "
          "numbers only (TEXT categories are not encoded): cast the column, or "
          "encode a category as numbers, one 0/1 column per value", zFunc,
          zWhere, zText);
    }
    case AESQL_CELL_BLOB:
      return sqlite3_mprintf("%s: %s is a BLOB, not a number", zFunc, zWhere);
    default:
      return sqlite3_mprintf("%s: %s is not a finite number", zFunc, zWhere);
  }
}

/* ---- JSON ---- */

void aesql_json_string(sqlite3_str *s, const char *z){
  sqlite3_str_appendchar(s, 1, '"');
  for(; *z; z++){
    unsigned char c = (unsigned char)*z;
    if( c=='"' || c=='\\' ) sqlite3_str_appendf(s, "\\%c", c);
    else if( c<0x20 ) sqlite3_str_appendf(s, "\\u%04x", c);
    else sqlite3_str_appendchar(s, 1, (char)c);
  }
  sqlite3_str_appendchar(s, 1, '"');
}

void aesql_json_number(sqlite3_str *s, double v){
  if( isfinite(v) ) sqlite3_str_appendf(s, "%!.15g", v);
  else sqlite3_str_appendall(s, "null");
}

char *aesql_json_names(char *const *az, int n){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendchar(s, 1, '[');
  for(i=0; i<n; i++){
    if( i ) sqlite3_str_appendchar(s, 1, ',');
    aesql_json_string(s, az[i]);
  }
  sqlite3_str_appendchar(s, 1, ']');
  if( sqlite3_str_errcode(s)!=SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(s));
    return 0;
  }
  return sqlite3_str_finish(s);
}

/* ---- rows ---- */

#define COLS_NAMES_SHOWN 32

void aesql_cols_append_names(sqlite3_str *s, const aesql_model *m){
  int i;
  for(i=0; i<m->nFeature && i<COLS_NAMES_SHOWN; i++){
    sqlite3_str_appendf(s, "%s%s", i ? ", " : "", m->azFeature[i]);
  }
  if( m->nFeature>COLS_NAMES_SHOWN ){
    sqlite3_str_appendf(s, ", ... and %d more", m->nFeature - COLS_NAMES_SHOWN);
  }
}

int aesql_cols_model(const aesql_model *m){
  return m->nFeature>0 || m->xf.d>0;
}

/* "column 'x'" / "argument 3 (x)" / "value 3 (x)": which cell, for
** messages; a model with a transform and no names (made by hand) has
** numbers only. */
static char *cols_where(const aesql_model *m, int i, int eWhat, sqlite3_int64 iRow){
  const char *zName = i<m->nFeature ? m->azFeature[i] : 0;
  switch( eWhat ){
    case 0:
      return zName ? sqlite3_mprintf("column '%s' of row %lld of the source", zName, iRow)
                   : sqlite3_mprintf("column %d of row %lld of the source", i+1, iRow);
    case 1:
      return zName ? sqlite3_mprintf("argument %d (%s)", i+2, zName)
                   : sqlite3_mprintf("argument %d", i+2);
    default:
      return zName ? sqlite3_mprintf("value %d (%s) of the vector", i+1, zName)
                   : sqlite3_mprintf("value %d of the vector", i+1);
  }
}

/* Sets *pzErr for cell i, of kind (an AESQL_CELL_*) or, kind -1, a value
** that the transform takes beyond float32. Returns 1. */
static int cols_error(const aesql_model *m, int i, int eWhat, sqlite3_int64 iRow,
                      const char *zFunc, int kind, const char *zText, double v,
                      char **pzErr){
  char *zWhere = cols_where(m, i, eWhat, iRow), *zNull = 0;
  *pzErr = 0;
  if( !zWhere ) return 1;
  if( kind<0 ){
    *pzErr = sqlite3_mprintf("%s: %s, %!.15g, is too large for model '%s' "
        "(beyond float32's range in the units it was trained in)", zFunc,
        zWhere, v, m->zName ? m->zName : "?");
  }else{
    if( kind==AESQL_CELL_NULL ){
      zNull = sqlite3_mprintf("model '%s' was trained with \"nulls\": \"error\" "
          "and has no value for it (train it with \"nulls\": \"mean\" to fill "
          "NULLs with the training mean, or leave such rows out)",
          m->zName ? m->zName : "?");
    }
    if( kind!=AESQL_CELL_NULL || zNull ){
      *pzErr = aesql_cell_error(zFunc, zWhere, kind, zText, zNull);
    }
  }
  sqlite3_free(zNull);
  sqlite3_free(zWhere);
  return 1;
}

/* One value v of feature i, of kind (aesql_cell_*), into x[i]. */
static int cols_put(const aesql_model *m, int i, int kind, double v, int eWhat,
                    sqlite3_int64 iRow, const char *zFunc, const char *zText,
                    float *x, char **pzErr){
  int rc;
  if( kind<0 ){ *pzErr = 0; return 1; }   /* out of memory */
  if( kind!=AESQL_CELL_NUMBER && kind!=AESQL_CELL_NULL ){
    return cols_error(m, i, eWhat, iRow, zFunc, kind, zText, v, pzErr);
  }
  rc = aesql_xform_one(&m->xf, i, v, &x[i]);
  if( rc==AESQL_XFORM_MISSING ){
    return cols_error(m, i, eWhat, iRow, zFunc, AESQL_CELL_NULL, 0, v, pzErr);
  }
  if( rc!=AESQL_XFORM_OK ){
    return cols_error(m, i, eWhat, iRow, zFunc, -1, 0, v, pzErr);
  }
  return 0;
}

int aesql_cols_stmt(const aesql_model *m, sqlite3_stmt *st, int iFirst,
                    sqlite3_int64 iRow, const char *zFunc, float *x,
                    char **pzErr){
  int i;
  for(i=0; i<m->nn.d; i++){
    double v = 0;
    int kind = aesql_cell_column(st, iFirst+i, &v);
    const char *zText = kind==AESQL_CELL_TEXT
                      ? (const char*)sqlite3_column_text(st, iFirst+i) : 0;
    if( cols_put(m, i, kind, v, 0, iRow, zFunc, zText, x, pzErr) ) return 1;
  }
  return 0;
}

int aesql_cols_args(const aesql_model *m, sqlite3_value **argv,
                    const char *zFunc, float *x, double *raw, char **pzErr){
  int i;
  for(i=0; i<m->nn.d; i++){
    double v = 0;
    int kind = aesql_cell_value(argv[i], &v);
    if( raw ) raw[i] = kind==AESQL_CELL_NUMBER ? v : NAN;
    if( cols_put(m, i, kind, v, 1, 0, zFunc, kind==AESQL_CELL_TEXT
                 ? (const char*)sqlite3_value_text(argv[i]) : 0, x, pzErr) ){
      return 1;
    }
  }
  return 0;
}

int aesql_cols_vector(const aesql_model *m, const void *pBlob,
                      const char *zFunc, float *x, double *raw, char **pzErr){
  const unsigned char *p = pBlob;
  int i;
  for(i=0; i<m->nn.d; i++){
    uint32_t u = (uint32_t)p[4*i] | (uint32_t)p[4*i+1]<<8
               | (uint32_t)p[4*i+2]<<16 | (uint32_t)p[4*i+3]<<24;
    float f;
    memcpy(&f, &u, 4);
    if( (u & 0x7f800000u)==0x7f800000u ){
      char *zWhere = cols_where(m, i, 2, 0);
      *pzErr = zWhere ? sqlite3_mprintf("%s: %s is %s; every value must be a "
                                        "finite number", zFunc, zWhere,
                                        isnan(f) ? "NaN" : f>0 ? "+Inf" : "-Inf") : 0;
      sqlite3_free(zWhere);
      return 1;
    }
    if( raw ) raw[i] = f;
    if( cols_put(m, i, AESQL_CELL_NUMBER, f, 2, 0, zFunc, 0, x, pzErr) ) return 1;
  }
  return 0;
}
