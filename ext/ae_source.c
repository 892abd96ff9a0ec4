/*
** Resolves the source of ae_train() and ae_scores(): a table or view name,
** quoted safely into the SQL we build, or a read-only SELECT statement.
*/
#include "ae_source.h"

#include <ctype.h>
#include <string.h>

/* Is zSql, after leading white space, a query (SELECT, WITH or VALUES)? */
static int source_is_query(const char *z){
  static const char *const kw[] = { "select", "with", "values", 0 };
  int i;
  while( isspace((unsigned char)*z) || *z=='(' ) z++;
  for(i=0; kw[i]; i++){
    size_t n = strlen(kw[i]);
    if( sqlite3_strnicmp(z, kw[i], (int)n)==0
     && (z[n]==0 || !(isalnum((unsigned char)z[n]) || z[n]=='_')) ) return 1;
  }
  return 0;
}

/* Does schema zDb hold a table or view named zTab? -1 when zDb is not a
** schema of this connection. */
static int source_in_schema(sqlite3 *db, const char *zDb, const char *zTab){
  sqlite3_stmt *st = 0;
  char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_schema WHERE "
                               "type IN ('table','view') AND name=?1 "
                               "COLLATE NOCASE", zDb);
  int rc, found = -1;
  if( !zSql ) return -1;
  rc = sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
    found = sqlite3_step(st)==SQLITE_ROW;
  }
  sqlite3_finalize(st);
  return found;
}

/* Finds the schema of table zTab in SQLite's search order (temp, main,
** then attached databases). Returns a sqlite3_malloc'd schema name. */
static char *source_find_schema(sqlite3 *db, const char *zTab){
  sqlite3_stmt *st = 0;
  char *zFound = 0;
  if( source_in_schema(db, "temp", zTab)==1 ) return sqlite3_mprintf("temp");
  if( sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list "
                         "WHERE name<>'temp' ORDER BY seq", -1, &st, 0) ){
    return 0;
  }
  while( !zFound && sqlite3_step(st)==SQLITE_ROW ){
    const char *zDb = (const char*)sqlite3_column_text(st, 0);
    if( zDb && source_in_schema(db, zDb, zTab)==1 ){
      zFound = sqlite3_mprintf("%s", zDb);
    }
  }
  sqlite3_finalize(st);
  return zFound;
}

int aesql_source_prepare(sqlite3 *db, const char *zSource, int withRowid,
                         sqlite3_stmt **ppStmt, int *pHasRowid,
                         char **pzName, char **pzErr){
  char *zSql = 0, *zDb = 0, *zTab = 0;
  const char *zTail = 0;
  int rc, hasRowid = 0;
  *ppStmt = 0;
  if( pzName ) *pzName = 0;
  if( pHasRowid ) *pHasRowid = 0;
  if( source_is_query(zSource) ){
    /* Trailing semicolons and space are harmless; anything after the query
    ** is caught by the tail check below. */
    size_t n = strlen(zSource);
    while( n>0 && (isspace((unsigned char)zSource[n-1]) || zSource[n-1]==';') ) n--;
    zSql = sqlite3_mprintf("SELECT pixels FROM (%.*s\n)", (int)n, zSource);
  }else{
    const char *zDot = strchr(zSource, '.');
    if( source_in_schema(db, "main", zSource)!=1 && zDot ){
      /* "schema.table", when the part before the dot is a schema. */
      char *zPre = sqlite3_mprintf("%.*s", (int)(zDot-zSource), zSource);
      if( zPre && source_in_schema(db, zPre, zDot+1)==1 ){
        zDb = zPre;
        zTab = sqlite3_mprintf("%s", zDot+1);
      }else{
        sqlite3_free(zPre);
      }
    }
    if( !zTab ){
      zTab = sqlite3_mprintf("%s", zSource);
      zDb = source_find_schema(db, zSource);
    }
    if( !zDb ){
      *pzErr = sqlite3_mprintf("no table or view named '%s' (the source is a "
                               "table name or a SELECT statement)", zSource);
      sqlite3_free(zTab);
      return SQLITE_ERROR;
    }
    if( withRowid ){
      zSql = sqlite3_mprintf("SELECT rowid, pixels FROM \"%w\".\"%w\"", zDb, zTab);
      rc = zSql ? sqlite3_prepare_v2(db, zSql, -1, ppStmt, 0) : SQLITE_NOMEM;
      sqlite3_free(zSql);
      zSql = 0;
      if( rc==SQLITE_OK ) hasRowid = 1;
    }
    if( !hasRowid ){
      zSql = sqlite3_mprintf("SELECT pixels FROM \"%w\".\"%w\"", zDb, zTab);
    }
    if( pzName ){ *pzName = zTab; zTab = 0; }
    sqlite3_free(zTab);
    sqlite3_free(zDb);
  }
  if( hasRowid ){
    if( pHasRowid ) *pHasRowid = 1;
    return SQLITE_OK;
  }
  if( !zSql ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, ppStmt, &zTail);
  if( rc!=SQLITE_OK ){
    const char *zMsg = sqlite3_errmsg(db);
    if( strstr(zMsg, "no such column: pixels") ){
      *pzErr = sqlite3_mprintf("source '%s' has no pixels column", zSource);
    }else{
      *pzErr = sqlite3_mprintf("cannot read source '%s': %s", zSource, zMsg);
    }
  }else{
    while( zTail && isspace((unsigned char)*zTail) ) zTail++;
    if( (zTail && *zTail) || !sqlite3_stmt_readonly(*ppStmt) ){
      *pzErr = sqlite3_mprintf("source must be a single read-only SELECT "
                               "statement: '%s'", zSource);
      rc = SQLITE_ERROR;
    }
  }
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(*ppStmt);
    *ppStmt = 0;
    if( pzName ){ sqlite3_free(*pzName); *pzName = 0; }
  }
  return rc;
}
