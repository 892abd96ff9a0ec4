/*
** Entry point of libaesql: registers every SQL object on a connection.
*/
#include "aesql_int.h"
#include "ae_progress.h"
SQLITE_EXTENSION_INIT1
#include "../include/aesql.h"
#include "../core/ae_mem.h"

AESQL_API int sqlite3_aesql_init(sqlite3 *db, char **pzErrMsg,
                                 const sqlite3_api_routines *pApi){
  int rc;
  SQLITE_EXTENSION_INIT2(pApi);
  /* The numeric core's memory through SQLite's allocator too (ae_mem.h). */
  aesql_nn_config_mem(sqlite3_malloc64, sqlite3_free);
  if( (rc = aesql_idx_register(db))!=SQLITE_OK
   || (rc = aesql_image_register(db))!=SQLITE_OK
   || (rc = aesql_info_register(db))!=SQLITE_OK
   || (rc = aesql_train_register(db))!=SQLITE_OK
   || (rc = aesql_score_register(db))!=SQLITE_OK
   || (rc = aesql_progress_register(db))!=SQLITE_OK
   || (rc = aesql_eval_register(db))!=SQLITE_OK
   || (rc = aesql_vector_register(db))!=SQLITE_OK
   || (rc = aesql_calib_register(db))!=SQLITE_OK ){
    if( pzErrMsg ){
      *pzErrMsg = sqlite3_mprintf("aesql: cannot register: %s",
                                  sqlite3_errstr(rc));
    }
    return rc;
  }
  return SQLITE_OK;
}
