/*
** ae_info(): what libaesql is and which OpenBLAS it runs on.
**
**   .load ./libaesql
**   SELECT ae_info();
**   SELECT json_extract(ae_info(), '$.blas_instance');   -- 'private'
**
** ae_info() takes no argument and returns JSON (subtype 'J'): version,
** sqlite, blas ("OpenBLAS" or null, then blas_error), blas_core,
** blas_core_chosen, blas_instance, blas_instance_chosen, blas_host,
** blas_threads (threads one OpenBLAS call uses), threads (libaesql's
** default for its own parallel work), blas_config. ext/core/ae_blas.c
** explains the choices.
*/
#include "aesql_int.h"
#include "../core/ae_blas.h"

/* SQLite 3.45 added SQLITE_RESULT_SUBTYPE and, with SQLITE_STRICT_SUBTYPE,
** refuses sqlite3_result_subtype() from functions registered without it.
** Older versions ignore the flag. */
#ifndef SQLITE_RESULT_SUBTYPE
# define SQLITE_RESULT_SUBTYPE 0x001000000
#endif

_Static_assert(AESQL_BLAS_OK==SQLITE_OK && AESQL_BLAS_ERROR==SQLITE_ERROR
               && AESQL_BLAS_NOMEM==SQLITE_NOMEM, "ae_blas.h's codes");

/* Appends z to s as a JSON string ("null" for NULL). */
static void info_str(sqlite3_str *s, const char *z){
  if( z==0 ){ sqlite3_str_appendall(s, "null"); return; }
  sqlite3_str_appendchar(s, 1, '"');
  for(; *z; z++){
    unsigned char c = (unsigned char)*z;
    if( c=='"' || c=='\\' ) sqlite3_str_appendf(s, "\\%c", c);
    else if( c<0x20 ) sqlite3_str_appendf(s, "\\u%04x", c);
    else sqlite3_str_appendchar(s, 1, (char)c);
  }
  sqlite3_str_appendchar(s, 1, '"');
}

/* ae_info() -> JSON text (see the top of this file). */
static void ae_info_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  sqlite3_str *s = sqlite3_str_new(sqlite3_context_db_handle(ctx));
  aesql_blas_desc b;
  char *z;
  (void)argc; (void)argv;
  sqlite3_str_appendall(s, "{\"version\":");
  info_str(s, AESQL_VERSION_STR);
  sqlite3_str_appendall(s, ",\"sqlite\":");
  info_str(s, sqlite3_libversion());
  aesql_blas_describe(&b);
  if( b.zError ){
    sqlite3_str_appendall(s, ",\"blas\":null,\"blas_error\":");
    info_str(s, b.zError);
  }else{
    sqlite3_str_appendall(s, ",\"blas\":\"OpenBLAS\",\"blas_core\":");
    info_str(s, b.zCore);
    sqlite3_str_appendall(s, ",\"blas_core_chosen\":");
    info_str(s, b.zCoreChosen);
    sqlite3_str_appendall(s, ",\"blas_instance\":");
    info_str(s, b.zInstance);
    sqlite3_str_appendall(s, ",\"blas_instance_chosen\":");
    info_str(s, b.zInstanceChosen);
    sqlite3_str_appendall(s, ",\"blas_host\":");
    info_str(s, b.zHost);
    sqlite3_str_appendf(s, ",\"blas_threads\":%d,\"threads\":%d,"
                        "\"blas_config\":", b.nCallThreads, b.nThreads);
    info_str(s, b.zConfig);
  }
  sqlite3_str_appendchar(s, 1, '}');
  if( sqlite3_str_errcode(s) ){
    sqlite3_free(sqlite3_str_finish(s));
    sqlite3_result_error_nomem(ctx);
    return;
  }
  z = sqlite3_str_finish(s);
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');  /* JSON, as json() marks it */
}

int aesql_info_register(sqlite3 *db){
  /* RESULT_SUBTYPE: it sets one ('J'); SQLITE_STRICT_SUBTYPE builds refuse
  ** that from functions not registered with it. */
  return sqlite3_create_function(db, "ae_info", 0,
                                 SQLITE_UTF8|SQLITE_INNOCUOUS|SQLITE_RESULT_SUBTYPE,
                                 0, ae_info_func, 0, 0);
}
