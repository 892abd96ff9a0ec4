/*
** libaesql: train autoencoders and score images with them inside SQLite.
**
** Public header. As a loadable extension, nothing here is needed:
**     .load ./libaesql
** Linked statically into an application that already uses SQLite:
**     #include "aesql.h"
**     sqlite3_auto_extension((void (*)(void))sqlite3_aesql_init);
** after which every new connection has the idx module and the ae_* functions.
*/
#ifndef AESQL_H
#define AESQL_H

#include <sqlite3.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef AESQL_API
# if defined(_WIN32)
#  define AESQL_API __declspec(dllexport)
# elif defined(__GNUC__)
#  define AESQL_API __attribute__((visibility("default")))
# else
#  define AESQL_API
# endif
#endif

#define AESQL_VERSION "0.1.0"
#define AESQL_VERSION_STR AESQL_VERSION
#define AESQL_VERSION_NUMBER 1000  /* major*1000000 + minor*1000 + patch */

/* Registers the idx virtual table and the ae_* SQL functions on db.
** Returns SQLITE_OK, or an error code with *pzErrMsg set (sqlite3_malloc'd). */
AESQL_API int sqlite3_aesql_init(sqlite3 *db, char **pzErrMsg,
                                 const sqlite3_api_routines *pApi);

#ifdef __cplusplus
}
#endif
#endif /* AESQL_H */
