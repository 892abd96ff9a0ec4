/*
** Resolves the source of ae_train() and ae_scores() (see ae_source.h): a
** table or view name, quoted safely into the SQL we build, or a read-only
** SELECT statement.
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

/* Is there a table or view zTab in schema zDb? Sets *pFound (0 or 1) and
** *pIsView; returns SQLITE_OK or SQLite's error (SQLITE_BUSY...). A zDb
** that is no schema of this connection holds nothing. */
static int source_in_schema(sqlite3 *db, const char *zDb, const char *zTab,
                            int *pFound, int *pIsView){
  sqlite3_stmt *st = 0;
  char *zSql;
  int rc;
  *pFound = 0;
  *pIsView = 0;
  if( sqlite3_db_filename(db, zDb)==0 && sqlite3_stricmp(zDb, "temp")!=0
   && sqlite3_stricmp(zDb, "main")!=0 ){
    return SQLITE_OK;   /* not attached */
  }
  zSql = sqlite3_mprintf("SELECT type FROM \"%w\".sqlite_schema WHERE "
                         "type IN ('table','view') AND name=?1 COLLATE NOCASE", zDb);
  if( !zSql ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){
    const char *zType = (const char*)sqlite3_column_text(st, 0);
    *pFound = 1;
    *pIsView = zType && strcmp(zType, "view")==0;
    rc = SQLITE_OK;
  }else if( rc==SQLITE_DONE ){
    rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* Finds the schema of zTab in SQLite's search order (temp, main, then
** attached databases): *pzDb is set (sqlite3_malloc'd) when found. */
static int source_find_schema(sqlite3 *db, const char *zTab, char **pzDb,
                              int *pIsView){
  sqlite3_stmt *st = 0;
  int rc, found = 0;
  *pzDb = 0;
  rc = source_in_schema(db, "temp", zTab, &found, pIsView);
  if( rc!=SQLITE_OK ) return rc;
  if( found ){
    *pzDb = sqlite3_mprintf("temp");
    return *pzDb ? SQLITE_OK : SQLITE_NOMEM;
  }
  rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_database_list "
                          "WHERE name<>'temp' ORDER BY seq", -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  while( !found && (rc = sqlite3_step(st))==SQLITE_ROW ){
    const char *zDb = (const char*)sqlite3_column_text(st, 0);
    int r2;
    if( !zDb ) continue;
    r2 = source_in_schema(db, zDb, zTab, &found, pIsView);
    if( r2!=SQLITE_OK ){ sqlite3_finalize(st); return r2; }
    if( found ){
      *pzDb = sqlite3_mprintf("%s", zDb);
      if( !*pzDb ){ sqlite3_finalize(st); return SQLITE_NOMEM; }
    }
  }
  if( rc==SQLITE_ROW || rc==SQLITE_DONE ) rc = SQLITE_OK;
  sqlite3_finalize(st);
  return rc;
}

/* The name the rowid of table zDb.zTab answers to (see ae_source.h), as
** an SQL expression (sqlite3_malloc'd), or NULL in *pzKey for none. */
static int source_table_key(sqlite3 *db, const char *zDb, const char *zTab,
                            char **pzKey){
  static const char *const azAlias[] = { "rowid", "_rowid_", "oid" };
  sqlite3_stmt *st = 0;
  int rc, nPk = 0, i, shadowed[3] = {0, 0, 0};
  char *zIpk = 0, *zSql;
  *pzKey = 0;
  rc = sqlite3_prepare_v2(db, "SELECT name, type, pk FROM pragma_table_info(?1, ?2)",
                          -1, &st, 0);
  if( rc!=SQLITE_OK ) return rc;
  sqlite3_bind_text(st, 1, zTab, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, zDb, -1, SQLITE_STATIC);
  while( (rc = sqlite3_step(st))==SQLITE_ROW ){
    const char *zCol = (const char*)sqlite3_column_text(st, 0);
    const char *zType = (const char*)sqlite3_column_text(st, 1);
    if( !zCol ) continue;
    for(i=0; i<3; i++) if( sqlite3_stricmp(zCol, azAlias[i])==0 ) shadowed[i] = 1;
    if( sqlite3_column_int(st, 2)>0 ){
      nPk++;
      if( zType && sqlite3_stricmp(zType, "INTEGER")==0 && !zIpk ){
        zIpk = sqlite3_mprintf("\"%w\"", zCol);
        if( !zIpk ){ sqlite3_finalize(st); return SQLITE_NOMEM; }
      }
    }
  }
  sqlite3_finalize(st);
  if( rc!=SQLITE_DONE ){ sqlite3_free(zIpk); return rc; }
  if( zIpk && nPk==1 ){ *pzKey = zIpk; return SQLITE_OK; }
  sqlite3_free(zIpk);
  for(i=0; i<3 && shadowed[i]; i++){}
  if( i==3 ) return SQLITE_OK;
  /* A WITHOUT ROWID table has none: "no such column". */
  zSql = sqlite3_mprintf("SELECT %s FROM \"%w\".\"%w\"", azAlias[i], zDb, zTab);
  if( !zSql ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  sqlite3_finalize(st);
  sqlite3_free(zSql);
  if( rc==SQLITE_OK ){
    *pzKey = sqlite3_mprintf("%s", azAlias[i]);
    return *pzKey ? SQLITE_OK : SQLITE_NOMEM;
  }
  return rc==SQLITE_ERROR ? SQLITE_OK : rc;
}

/* Prepares zSql and checks it is one read-only statement. */
static int source_prepare_query(sqlite3 *db, const char *zSql,
                                const char *zSource, sqlite3_stmt **ppStmt,
                                char **pzErr){
  const char *zTail = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, ppStmt, &zTail);
  if( rc!=SQLITE_OK ){
    if( rc==SQLITE_ERROR ){
      *pzErr = sqlite3_mprintf("cannot read source '%s': %s", zSource,
                               sqlite3_errmsg(db));
    }
    *ppStmt = 0;
    return rc;
  }
  while( zTail && isspace((unsigned char)*zTail) ) zTail++;
  if( !*ppStmt || (zTail && *zTail) || !sqlite3_stmt_readonly(*ppStmt) ){
    *pzErr = sqlite3_mprintf("source must be a single read-only SELECT "
                             "statement: '%s'", zSource);
    sqlite3_finalize(*ppStmt);
    *ppStmt = 0;
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

int aesql_source_prepare(sqlite3 *db, const char *zSource, int withKey,
                         sqlite3_stmt **ppStmt, int *pHasKey,
                         char **pzName, char **pzErr){
  char *zSql = 0, *zDb = 0, *zTab = 0, *zInner = 0, *zKey = 0;
  sqlite3_stmt *pInner = 0;
  int rc, found = 0, isView = 0;
  *ppStmt = 0;
  if( pzName ) *pzName = 0;
  if( pHasKey ) *pHasKey = 0;

  /* A table or view name: exactly as given, in SQLite's search order; or
  ** "schema.table". */
  rc = source_find_schema(db, zSource, &zDb, &isView);
  if( rc==SQLITE_OK && zDb ){
    zTab = sqlite3_mprintf("%s", zSource);
    if( !zTab ) rc = SQLITE_NOMEM;
  }else if( rc==SQLITE_OK && strchr(zSource, '.') ){
    const char *zDot = strchr(zSource, '.');
    char *zPre = sqlite3_mprintf("%.*s", (int)(zDot-zSource), zSource);
    if( !zPre ) rc = SQLITE_NOMEM;
    else rc = source_in_schema(db, zPre, zDot+1, &found, &isView);
    if( rc==SQLITE_OK && found ){
      zDb = zPre;
      zTab = sqlite3_mprintf("%s", zDot+1);
      if( !zTab ) rc = SQLITE_NOMEM;
    }else{
      sqlite3_free(zPre);
    }
  }
  if( rc!=SQLITE_OK ) goto done;

  if( zTab && !isView ){
    /* A table: its pixels column, and its rowid for the key. */
    if( withKey ){
      rc = source_table_key(db, zDb, zTab, &zKey);
      if( rc!=SQLITE_OK ) goto done;
    }
    zSql = zKey ? sqlite3_mprintf("SELECT %s, pixels FROM \"%w\".\"%w\"", zKey, zDb, zTab)
                : sqlite3_mprintf("SELECT pixels FROM \"%w\".\"%w\"", zDb, zTab);
    if( !zSql ){ rc = SQLITE_NOMEM; goto done; }
    rc = sqlite3_prepare_v2(db, zSql, -1, ppStmt, 0);
    if( rc==SQLITE_ERROR ){
      if( strstr(sqlite3_errmsg(db), "no such column: pixels") ){
        *pzErr = sqlite3_mprintf("source '%s' has no pixels column", zSource);
      }else{
        *pzErr = sqlite3_mprintf("cannot read source '%s': %s", zSource,
                                 sqlite3_errmsg(db));
      }
    }
    if( rc==SQLITE_OK && pHasKey ) *pHasKey = zKey!=0;
    goto done;
  }

  /* A view or a query: its columns named pixels and key (or rowid). */
  if( zTab ){
    zInner = sqlite3_mprintf("SELECT * FROM \"%w\".\"%w\"", zDb, zTab);
  }else if( source_is_query(zSource) ){
    /* Trailing semicolons and space are harmless; anything after the
    ** query is caught by the tail check. */
    size_t n = strlen(zSource);
    while( n>0 && (isspace((unsigned char)zSource[n-1]) || zSource[n-1]==';') ) n--;
    zInner = sqlite3_mprintf("%.*s", (int)n, zSource);
  }else{
    *pzErr = sqlite3_mprintf("no table or view named '%s' (the source is a "
                             "table name or a SELECT statement)", zSource);
    rc = SQLITE_ERROR;
    goto done;
  }
  if( !zInner ){ rc = SQLITE_NOMEM; goto done; }
  rc = source_prepare_query(db, zInner, zSource, &pInner, pzErr);
  if( rc==SQLITE_OK ){
    int i, n = sqlite3_column_count(pInner), iPix = -1, iKey = -1, iRowid = -1;
    for(i=0; i<n; i++){
      const char *zCol = sqlite3_column_name(pInner, i);
      if( !zCol ){ rc = SQLITE_NOMEM; break; }
      if( iPix<0 && sqlite3_stricmp(zCol, "pixels")==0 ) iPix = i;
      if( iKey<0 && sqlite3_stricmp(zCol, "key")==0 ) iKey = i;
      if( iRowid<0 && (sqlite3_stricmp(zCol, "rowid")==0
                    || sqlite3_stricmp(zCol, "_rowid_")==0
                    || sqlite3_stricmp(zCol, "oid")==0) ) iRowid = i;
    }
    if( rc==SQLITE_OK && iPix<0 ){
      *pzErr = sqlite3_mprintf("source '%s' has no pixels column", zSource);
      rc = SQLITE_ERROR;
    }
    if( iKey<0 ) iKey = iRowid;
    if( !withKey ) iKey = -1;
    if( rc==SQLITE_OK ){
      /* The wrapper names the columns c0, c1, ... by position (SQLite
      ** would rename duplicate names), with a column list on a CTE. */
      char *zCols = sqlite3_mprintf("c0");
      for(i=1; zCols && i<n; i++) zCols = sqlite3_mprintf("%z, c%d", zCols, i);
      if( !zCols ) rc = SQLITE_NOMEM;
      else{
        zSql = iKey>=0
          ? sqlite3_mprintf("WITH s(%s) AS (%s\n) SELECT c%d, c%d FROM s", zCols, zInner, iKey, iPix)
          : sqlite3_mprintf("WITH s(%s) AS (%s\n) SELECT c%d FROM s", zCols, zInner, iPix);
        sqlite3_free(zCols);
        if( !zSql ) rc = SQLITE_NOMEM;
      }
    }
    if( rc==SQLITE_OK ){
      rc = source_prepare_query(db, zSql, zSource, ppStmt, pzErr);
      if( rc==SQLITE_OK && pHasKey ) *pHasKey = iKey>=0;
    }
  }

done:
  sqlite3_finalize(pInner);
  if( rc==SQLITE_OK && pzName && zTab ){ *pzName = zTab; zTab = 0; }
  if( rc!=SQLITE_OK ){
    sqlite3_finalize(*ppStmt);
    *ppStmt = 0;
  }
  sqlite3_free(zSql);
  sqlite3_free(zInner);
  sqlite3_free(zKey);
  sqlite3_free(zDb);
  sqlite3_free(zTab);
  return rc;
}
