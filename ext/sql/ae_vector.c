/*
** ae_vector(): numbers as the little-endian float32 BLOB the models read
** (and sqlite-vec's vec_f32 makes), so that ordinary numeric columns can be
** trained on and scored wherever pixels are.
**
**   .load ./libaesql
**   SELECT ae_vector(radius, texture, smoothness) FROM cells;
**   SELECT ae_vector('[1.5, 2, -3e-2]');
**
** ae_vector(X1, ..., XN) -> BLOB of N float32
**   each X an INTEGER, a REAL, or TEXT that reads wholly as a number (what
**   the shell's CSV import makes);
** ae_vector(JSON) -> BLOB: TEXT holding a JSON array of numbers;
** ae_vector(BLOB) -> the same BLOB, checked: a whole number of float32,
**   every one finite.
** A NULL, a non-numeric value, a number beyond float32's range or not
** finite is an error naming the argument (or the array's element). The
** result has at least one value. Pure: DETERMINISTIC and INNOCUOUS.
*/
#include "aesql_int.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void put_f32(unsigned char *p, float f){
  uint32_t u;
  memcpy(&u, &f, 4);
  p[0] = (unsigned char)u; p[1] = (unsigned char)(u>>8);
  p[2] = (unsigned char)(u>>16); p[3] = (unsigned char)(u>>24);
}

static void vector_error(sqlite3_context *ctx, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_free(z);
}

/* The double v as a float32, or 1 when it does not fit one. */
static int to_f32(double v, float *pf){
  if( !isfinite(v) || fabs(v)>FLT_MAX ) return 1;
  *pf = (float)v;
  return 0;
}

/* Length of the JSON number at z (RFC 8259 grammar), 0 if none. */
static int json_number_len(const char *z){
  int i = 0;
  if( z[i]=='-' ) i++;
  if( z[i]=='0' ) i++;
  else if( z[i]>='1' && z[i]<='9' ){ while( isdigit((unsigned char)z[i]) ) i++; }
  else return 0;
  if( z[i]=='.' ){
    i++;
    if( !isdigit((unsigned char)z[i]) ) return 0;
    while( isdigit((unsigned char)z[i]) ) i++;
  }
  if( z[i]=='e' || z[i]=='E' ){
    i++;
    if( z[i]=='+' || z[i]=='-' ) i++;
    if( !isdigit((unsigned char)z[i]) ) return 0;
    while( isdigit((unsigned char)z[i]) ) i++;
  }
  return i;
}

/* ae_vector('[...]'). */
static void vector_json(sqlite3_context *ctx, const char *z){
  unsigned char *out = 0;
  sqlite3_int64 n = 0, nAlloc = 0;
  const char *p = z;
  while( isspace((unsigned char)*p) ) p++;
  p++;                                   /* the '[' */
  for(;;){
    int len;
    float f;
    while( isspace((unsigned char)*p) ) p++;
    if( *p==']' && n==0 ) break;
    len = json_number_len(p);
    if( len==0 ){
      vector_error(ctx, "ae_vector: element %lld of the JSON array is not a "
                   "number: '%.20s'", n+1, p);
      goto fail;
    }
    if( to_f32(strtod(p, 0), &f) ){
      vector_error(ctx, "ae_vector: element %lld of the JSON array, %.*s, is "
                   "beyond float32's range", n+1, len, p);
      goto fail;
    }
    if( n==nAlloc ){
      sqlite3_int64 nNew = nAlloc ? 2*nAlloc : 64;
      unsigned char *q = sqlite3_realloc64(out, (sqlite3_uint64)nNew*4);
      if( !q ){ sqlite3_result_error_nomem(ctx); goto fail; }
      out = q;
      nAlloc = nNew;
    }
    put_f32(out + 4*n, f);
    n++;
    p += len;
    while( isspace((unsigned char)*p) ) p++;
    if( *p==',' ){ p++; continue; }
    if( *p==']' ) break;
    vector_error(ctx, "ae_vector: the JSON array is malformed after element "
                 "%lld (expected ',' or ']')", n);
    goto fail;
  }
  p++;
  while( isspace((unsigned char)*p) ) p++;
  if( *p ){
    vector_error(ctx, "ae_vector: text after the JSON array's ']'");
    goto fail;
  }
  if( n==0 ){
    vector_error(ctx, "ae_vector: the JSON array is empty; a vector has at "
                 "least one value");
    goto fail;
  }
  sqlite3_result_blob64(ctx, out, (sqlite3_uint64)n*4, sqlite3_free);
  return;
fail:
  sqlite3_free(out);
}

static void ae_vector_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  unsigned char *out;
  int i;
  if( argc==0 ){
    vector_error(ctx, "ae_vector: takes the values, ae_vector(x1, x2, ...), "
                 "or one JSON array, ae_vector('[1, 2]')");
    return;
  }
  if( argc==1 && sqlite3_value_type(argv[0])==SQLITE_BLOB ){
    const unsigned char *p = sqlite3_value_blob(argv[0]);
    int nb = sqlite3_value_bytes(argv[0]);
    if( nb==0 || nb%4 ){
      vector_error(ctx, "ae_vector: a BLOB of %d bytes is not a whole number "
                   "of float32 values", nb);
      return;
    }
    for(i=0; i<nb/4; i++){
      uint32_t u = (uint32_t)p[4*i] | (uint32_t)p[4*i+1]<<8
                 | (uint32_t)p[4*i+2]<<16 | (uint32_t)p[4*i+3]<<24;
      if( (u & 0x7f800000u)==0x7f800000u ){
        vector_error(ctx, "ae_vector: value %d of the BLOB is not a finite "
                     "number", i+1);
        return;
      }
    }
    sqlite3_result_value(ctx, argv[0]);
    return;
  }
  if( argc==1 && sqlite3_value_type(argv[0])==SQLITE_TEXT ){
    const char *z = (const char*)sqlite3_value_text(argv[0]);
    const char *p = z;
    if( !z ){ sqlite3_result_error_nomem(ctx); return; }
    while( isspace((unsigned char)*p) ) p++;
    if( *p=='[' ){ vector_json(ctx, z); return; }
  }
  out = sqlite3_malloc64((sqlite3_uint64)argc*4);
  if( !out ){ sqlite3_result_error_nomem(ctx); return; }
  for(i=0; i<argc; i++){
    int tt = sqlite3_value_type(argv[i]), t = tt;
    double v;
    float f;
    if( t==SQLITE_TEXT ) t = sqlite3_value_numeric_type(argv[i]);
    if( t!=SQLITE_INTEGER && t!=SQLITE_FLOAT ){
      const char *zV = tt==SQLITE_TEXT ? (const char*)sqlite3_value_text(argv[i]) : 0;
      vector_error(ctx, "ae_vector: argument %d is %s%.40s%s, not a number", i+1,
                   tt==SQLITE_NULL ? "NULL" : tt==SQLITE_BLOB ? "a BLOB" : "'",
                   tt==SQLITE_TEXT && zV ? zV : "", tt==SQLITE_TEXT ? "'" : "");
      sqlite3_free(out);
      return;
    }
    v = sqlite3_value_double(argv[i]);
    if( to_f32(v, &f) ){
      vector_error(ctx, "ae_vector: argument %d, %g, is beyond float32's range",
                   i+1, v);
      sqlite3_free(out);
      return;
    }
    put_f32(out + 4*(size_t)i, f);
  }
  sqlite3_result_blob64(ctx, out, (sqlite3_uint64)argc*4, sqlite3_free);
}

int aesql_vector_register(sqlite3 *db){
  return sqlite3_create_function(db, "ae_vector", -1,
                                 SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS,
                                 0, ae_vector_func, 0, 0);
}
