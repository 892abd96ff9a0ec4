/*
** Internal declarations shared by the extension's source files.
** Every non-static symbol carries the aesql_ prefix.
*/
#ifndef AESQL_INT_H
#define AESQL_INT_H

#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT3

#include <stddef.h>
#include <stdint.h>
#include "../include/aesql.h"

/* Each source file that defines SQL objects exposes one registration
** function, called from sqlite3_aesql_init() in aesql.c. */
int aesql_idx_register(sqlite3 *db);     /* idx_vtab.c: the idx virtual table */
int aesql_image_register(sqlite3 *db);   /* ae_image.c: ae_png, ae_ascii      */
int aesql_info_register(sqlite3 *db);    /* ae_info.c:  ae_info               */
int aesql_train_register(sqlite3 *db);   /* ae_train.c: ae_train              */
int aesql_score_register(sqlite3 *db);   /* ae_score.c: ae_error, ...         */
int aesql_eval_register(sqlite3 *db);    /* ae_eval.c:  ae_auroc, ...         */
int aesql_vector_register(sqlite3 *db);  /* ae_vector.c: ae_vector           */
int aesql_calib_register(sqlite3 *db);   /* ae_calib.c: ae_threshold, ...     */

#endif /* AESQL_INT_H */
