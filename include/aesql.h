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

/* Training progress, for applications that embed libaesql. After every
** epoch of every ae_train() on db, xProgress(pArg, p) is called on the
** training's thread, inside the ae_train() call (so it must not use db).
** Returning non-zero stops the training: ae_train() then fails with
** "interrupted" (SQLITE_INTERRUPT) and stores nothing. One hook per
** connection: a new one replaces the old, NULL removes it. Returns
** SQLITE_OK, SQLITE_NOMEM, or SQLITE_MISUSE without db. From any
** connection of the process, SELECT * FROM ae_progress lists the trainings
** running, batch by batch. */
typedef struct aesql_progress_info {
  const char *zModel;   /* the model's name                              */
  int epoch, epochs;    /* the epoch just done (1-based), of how many     */
  double loss;          /* its training loss                              */
  double val_loss;      /* its validation loss; NaN when none is held out */
  double seconds;       /* how long it took                               */
} aesql_progress_info;
AESQL_API int aesql_progress_hook(sqlite3 *db,
    int (*xProgress)(void *pArg, const aesql_progress_info *p), void *pArg);

#ifdef __cplusplus
}
#endif
#endif /* AESQL_H */
