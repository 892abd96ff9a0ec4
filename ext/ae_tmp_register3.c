/* TEMPORARY during bring-up; image helper deletes this when ae_image.c defines it. */
#include "aesql_int.h"
int aesql_image_register(sqlite3 *db){ (void)db; return SQLITE_OK; }
