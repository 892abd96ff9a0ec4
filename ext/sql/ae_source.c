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

/* The column names of statement st, as sqlite3_column_name gives them,
** into p->azCol (ANY mode: every column is a feature, in order). Names
** must be distinct (case-insensitively, as SQL reads them) and not empty:
** a model of numeric columns reads its columns by name. */
static int source_names(sqlite3_stmt *st, const char *zSource, aesql_source *p,
                        char **pzErr){
  int i, j, n = sqlite3_column_count(st);
  if( n<1 ){
    *pzErr = sqlite3_mprintf("source '%s' has no columns", zSource);
    return SQLITE_ERROR;
  }
  p->azCol = sqlite3_malloc64(sizeof(char*)*(size_t)n);
  if( !p->azCol ) return SQLITE_NOMEM;
  for(i=0; i<n; i++){
    const char *zCol = sqlite3_column_name(st, i);
    if( !zCol ) return SQLITE_NOMEM;
    if( !zCol[0] ){
      *pzErr = sqlite3_mprintf("column %d of source '%s' has no name; a model "
                               "of numeric columns reads each column by its name: "
                               "give it one (AS name)", i+1, zSource);
      return SQLITE_ERROR;
    }
    for(j=0; j<i; j++){
      if( sqlite3_stricmp(p->azCol[j], zCol)==0 ){
        *pzErr = sqlite3_mprintf("source '%s' has two columns named '%s'; a "
                                 "model of numeric columns reads each column by "
                                 "its name: rename one (AS name)", zSource, zCol);
        return SQLITE_ERROR;
      }
    }
    p->azCol[i] = sqlite3_mprintf("%s", zCol);
    if( !p->azCol[i] ) return SQLITE_NOMEM;
    p->nCol = i+1;
  }
  return SQLITE_OK;
}

/* Finds each of azWant[0..nWant) among the columns of st (the first of
** that name, case-insensitively): aiCol[k] its index. */
static int source_find_named(sqlite3_stmt *st, const char *zSource, int nWant,
                             char *const *azWant, int *aiCol, char **pzErr){
  int k, i, n = sqlite3_column_count(st);
  for(k=0; k<nWant; k++){
    aiCol[k] = -1;
    for(i=0; i<n && aiCol[k]<0; i++){
      const char *zCol = sqlite3_column_name(st, i);
      if( !zCol ) return SQLITE_NOMEM;
      if( sqlite3_stricmp(zCol, azWant[k])==0 ) aiCol[k] = i;
    }
    if( aiCol[k]<0 ){
      *pzErr = sqlite3_mprintf("source '%s' has no column named '%s' (a model "
                               "of numeric columns reads its columns by name)",
                               zSource, azWant[k]);
      return SQLITE_ERROR;
    }
  }
  return SQLITE_OK;
}

int aesql_source_open(sqlite3 *db, const char *zSource, int eMode, int withKey,
                      int nWant, char *const *azWant, aesql_source *pOut,
                      char **pzErr){
  char *zSql = 0, *zDb = 0, *zTab = 0, *zInner = 0, *zKey = 0;
  sqlite3_stmt *pInner = 0;
  int *aiCol = 0;
  int rc, found = 0, isView = 0, i;
  sqlite3_stmt **ppStmt = &pOut->pStmt;
  memset(pOut, 0, sizeof(*pOut));

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
  if( eMode==AESQL_SOURCE_NAMED ){
    aiCol = sqlite3_malloc64(sizeof(int)*(size_t)(nWant>0 ? nWant : 1));
    if( !aiCol ){ rc = SQLITE_NOMEM; goto done; }
  }

  if( zTab && !isView ){
    if( withKey ){
      rc = source_table_key(db, zDb, zTab, &zKey);
      if( rc!=SQLITE_OK ) goto done;
    }
    if( eMode!=AESQL_SOURCE_PIXELS ){
      /* Its columns, as SELECT * gives them (hidden columns not). */
      zInner = sqlite3_mprintf("SELECT * FROM \"%w\".\"%w\"", zDb, zTab);
      if( !zInner ){ rc = SQLITE_NOMEM; goto done; }
      rc = sqlite3_prepare_v2(db, zInner, -1, &pInner, 0);
      if( rc!=SQLITE_OK ){
        if( rc==SQLITE_ERROR ){
          *pzErr = sqlite3_mprintf("cannot read source '%s': %s", zSource,
                                   sqlite3_errmsg(db));
        }
        goto done;
      }
      if( eMode==AESQL_SOURCE_ANY ){
        int n = sqlite3_column_count(pInner), hasPix = 0;
        for(i=0; i<n; i++){
          const char *zCol = sqlite3_column_name(pInner, i);
          if( !zCol ){ rc = SQLITE_NOMEM; goto done; }
          if( sqlite3_stricmp(zCol, "pixels")==0 ) hasPix = 1;
        }
        if( !hasPix ){
          /* Every column, in order: the statement itself (ae_train reads
          ** no key). */
          rc = source_names(pInner, zSource, pOut, pzErr);
          if( rc==SQLITE_OK ){ *ppStmt = pInner; pInner = 0; }
          goto done;
        }
        eMode = AESQL_SOURCE_PIXELS;
      }
    }
    if( eMode==AESQL_SOURCE_PIXELS ){
      /* A table: its pixels column, and its rowid for the key. */
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
      if( rc==SQLITE_OK ) pOut->hasKey = zKey!=0;
      goto done;
    }
    /* The columns named, by the table's own spelling of their names. */
    rc = source_find_named(pInner, zSource, nWant, azWant, aiCol, pzErr);
    if( rc!=SQLITE_OK ) goto done;
    {
      sqlite3_str *q = sqlite3_str_new(db);
      sqlite3_str_appendall(q, "SELECT ");
      if( zKey ) sqlite3_str_appendf(q, "%s, ", zKey);
      for(i=0; i<nWant; i++){
        sqlite3_str_appendf(q, "%s\"%w\"", i ? ", " : "",
                            sqlite3_column_name(pInner, aiCol[i]));
      }
      sqlite3_str_appendf(q, " FROM \"%w\".\"%w\"", zDb, zTab);
      zSql = sqlite3_str_finish(q);
    }
    if( !zSql ){ rc = SQLITE_NOMEM; goto done; }
    rc = sqlite3_prepare_v2(db, zSql, -1, ppStmt, 0);
    if( rc==SQLITE_ERROR ){
      *pzErr = sqlite3_mprintf("cannot read source '%s': %s", zSource,
                               sqlite3_errmsg(db));
    }
    if( rc==SQLITE_OK ){ pOut->hasKey = zKey!=0; pOut->nCol = nWant; }
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
    int n = sqlite3_column_count(pInner), iPix = -1, iKey = -1, iRowid = -1;
    for(i=0; i<n; i++){
      const char *zCol = sqlite3_column_name(pInner, i);
      if( !zCol ){ rc = SQLITE_NOMEM; break; }
      if( iPix<0 && sqlite3_stricmp(zCol, "pixels")==0 ) iPix = i;
      if( iKey<0 && sqlite3_stricmp(zCol, "key")==0 ) iKey = i;
      if( iRowid<0 && (sqlite3_stricmp(zCol, "rowid")==0
                    || sqlite3_stricmp(zCol, "_rowid_")==0
                    || sqlite3_stricmp(zCol, "oid")==0) ) iRowid = i;
    }
    if( rc==SQLITE_OK && eMode==AESQL_SOURCE_ANY ){
      if( iPix>=0 ){
        eMode = AESQL_SOURCE_PIXELS;
      }else{
        /* Every column, in order: the query itself (ae_train reads no
        ** key). */
        rc = source_names(pInner, zSource, pOut, pzErr);
        if( rc==SQLITE_OK ){ *ppStmt = pInner; pInner = 0; }
        goto done;
      }
    }
    if( rc==SQLITE_OK && eMode==AESQL_SOURCE_PIXELS && iPix<0 ){
      *pzErr = sqlite3_mprintf("source '%s' has no pixels column", zSource);
      rc = SQLITE_ERROR;
    }
    if( rc==SQLITE_OK && eMode==AESQL_SOURCE_NAMED ){
      rc = source_find_named(pInner, zSource, nWant, azWant, aiCol, pzErr);
    }
    if( iKey<0 ) iKey = iRowid;
    if( !withKey ) iKey = -1;
    if( rc==SQLITE_OK ){
      /* The wrapper names the columns c0, c1, ... by position (SQLite
      ** would rename duplicate names), with a column list on a CTE. */
      sqlite3_str *q = sqlite3_str_new(db);
      sqlite3_str_appendall(q, "WITH s(c0");
      for(i=1; i<n; i++) sqlite3_str_appendf(q, ", c%d", i);
      sqlite3_str_appendf(q, ") AS (%s\n) SELECT ", zInner);
      if( iKey>=0 ) sqlite3_str_appendf(q, "c%d, ", iKey);
      if( eMode==AESQL_SOURCE_PIXELS ){
        sqlite3_str_appendf(q, "c%d", iPix);
      }else{
        for(i=0; i<nWant; i++) sqlite3_str_appendf(q, "%sc%d", i ? ", " : "", aiCol[i]);
      }
      sqlite3_str_appendall(q, " FROM s");
      zSql = sqlite3_str_finish(q);
      if( !zSql ) rc = SQLITE_NOMEM;
    }
    if( rc==SQLITE_OK ){
      rc = source_prepare_query(db, zSql, zSource, ppStmt, pzErr);
      if( rc==SQLITE_OK ){
        pOut->hasKey = iKey>=0;
        if( eMode==AESQL_SOURCE_NAMED ) pOut->nCol = nWant;
      }
    }
  }

done:
  sqlite3_finalize(pInner);
  if( rc==SQLITE_OK && zTab ){ pOut->zName = zTab; zTab = 0; }
  if( rc!=SQLITE_OK ) aesql_source_close(pOut);
  sqlite3_free(aiCol);
  sqlite3_free(zSql);
  sqlite3_free(zInner);
  sqlite3_free(zKey);
  sqlite3_free(zDb);
  sqlite3_free(zTab);
  return rc;
}

void aesql_source_close(aesql_source *p){
  int i;
  sqlite3_finalize(p->pStmt);
  if( p->azCol ){
    for(i=0; i<p->nCol; i++) sqlite3_free(p->azCol[i]);
    sqlite3_free(p->azCol);
  }
  sqlite3_free(p->zName);
  memset(p, 0, sizeof(*p));
}

int aesql_source_prepare(sqlite3 *db, const char *zSource, int withKey,
                         sqlite3_stmt **ppStmt, int *pHasKey,
                         char **pzName, char **pzErr){
  aesql_source src;
  int rc = aesql_source_open(db, zSource, AESQL_SOURCE_PIXELS, withKey, 0, 0,
                             &src, pzErr);
  *ppStmt = src.pStmt;
  if( pHasKey ) *pHasKey = src.hasKey;
  if( pzName ) *pzName = src.zName; else sqlite3_free(src.zName);
  return rc;
}
