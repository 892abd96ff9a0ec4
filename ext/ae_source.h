/*
** What ae_train() and ae_scores() read from: a table or view name (with an
** optional schema, "aux.t") or a SELECT statement, given as text.
*/
#ifndef AE_SOURCE_H
#define AE_SOURCE_H

#include "aesql_int.h"

/* Prepares a statement reading the source's pixels column: "SELECT pixels
** FROM <source>", or, when withRowid is set and the source is a table that
** has rowids, "SELECT rowid, pixels ...". *pHasRowid tells which (may be
** NULL). A query source must be one read-only statement. On error returns
** non-OK with *pzErr set (sqlite3_malloc'd, without a function prefix).
** *pzName receives a short name for the source, for default model names:
** the table's name, or NULL for a query. */
int aesql_source_prepare(sqlite3 *db, const char *zSource, int withRowid,
                         sqlite3_stmt **ppStmt, int *pHasRowid,
                         char **pzName, char **pzErr);

#endif /* AE_SOURCE_H */
