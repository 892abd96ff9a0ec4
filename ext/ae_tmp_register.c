/* TEMPORARY during bring-up; deleted once the real files land. */
#include "aesql_int.h"
int aesql_train_register(sqlite3 *db){ (void)db; return SQLITE_OK; }
int aesql_score_register(sqlite3 *db){ (void)db; return SQLITE_OK; }
