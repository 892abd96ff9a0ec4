/*
** What ae_train() and ae_scores() read from: a table or view name (with an
** optional schema, "aux.t") or a SELECT statement, given as text.
**
** A name is looked up first, in SQLite's order (temp, main, attached
** schemas), so a table may be called "select" or "with x"; only text that
** names no table or view and starts with SELECT, WITH or VALUES is a query.
**
** The key of each row, for ae_scores (withKey):
**   - a table: its rowid, by the name it answers to: the INTEGER PRIMARY
**     KEY column if it has one, else rowid, _rowid_ or oid, whichever no
**     column shadows; a WITHOUT ROWID table without an INTEGER PRIMARY KEY,
**     or one whose three rowid names are all columns, has none;
**   - a view or a query: its column named key, else one named rowid (as
**     `SELECT rowid, pixels FROM t` names it), else none;
**   - none: the rows are numbered 1, 2, ... in the order they come.
*/
#ifndef AE_SOURCE_H
#define AE_SOURCE_H

#include "aesql_int.h"

/* Prepares a statement reading the source: "SELECT pixels ..." or, when
** withKey is set and the source has a key, "SELECT <key>, pixels ...";
** *pHasKey tells which (may be NULL). A query source must be one
** read-only statement. On error returns non-OK with *pzErr set
** (sqlite3_malloc'd, without a function prefix; NULL when the error is
** SQLite's own, e.g. SQLITE_BUSY, whose message is in db). *pzName
** receives a short name for the source, for default model names: the
** table's name, or NULL for a query. */
int aesql_source_prepare(sqlite3 *db, const char *zSource, int withKey,
                         sqlite3_stmt **ppStmt, int *pHasKey,
                         char **pzName, char **pzErr);

#endif /* AE_SOURCE_H */
