/* TEMPORARY during bring-up; idx helper deletes this when idx_vtab.c defines it. */
#include "aesql_int.h"
int aesql_idx_register(sqlite3 *db){ (void)db; return SQLITE_OK; }
