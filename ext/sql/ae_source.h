/*
** What ae_train() and ae_scores() read from: a table or view name (with an
** optional schema, "aux.t") or a SELECT statement, given as text.
**
** A name is looked up first, in SQLite's order (temp, main, attached
** schemas), so a table may be called "select" or "with x"; only text that
** names no table or view and starts with SELECT, WITH or VALUES is a query.
**
** What is read from it:
**   - its pixels column (AESQL_SOURCE_PIXELS): a model of pixels;
**   - for ae_train (AESQL_SOURCE_ANY): its pixels column when it has one,
**     else every column, in order, each a feature of a model of numeric
**     columns (ae_columns.h), named as sqlite3_column_name names it: the
**     names must be distinct (case-insensitively) and not empty;
**   - the columns of given names (AESQL_SOURCE_NAMED): a model of numeric
**     columns scoring a source, which may have other columns too. Names
**     are matched case-insensitively, as SQL does, the first of a name
**     taken.
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

/* A source, opened: its statement gives one row per row of the source,
** the key first when hasKey, then the pixels (nCol 0) or nCol columns. */
typedef struct aesql_source {
  sqlite3_stmt *pStmt;
  int hasKey;
  int nCol;          /* 0: one column, pixels; else the feature columns */
  char **azCol;      /* AESQL_SOURCE_ANY: their nCol names, else NULL */
  char *zName;       /* the table's or view's name, NULL for a query */
} aesql_source;

#define AESQL_SOURCE_PIXELS 0
#define AESQL_SOURCE_ANY    1   /* withKey must be 0 */
#define AESQL_SOURCE_NAMED  2

/* Opens zSource as eMode says (azWant: the nWant names, NAMED only) into
** *p, zeroed on error. Errors as aesql_source_prepare's. Close it with
** aesql_source_close (which may be called on a zeroed one). */
int aesql_source_open(sqlite3 *db, const char *zSource, int eMode, int withKey,
                      int nWant, char *const *azWant, aesql_source *p,
                      char **pzErr);
void aesql_source_close(aesql_source *p);

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
