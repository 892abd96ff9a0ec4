/*
** The helpers of the tests/sql/ programs, on top of tests/check.h: a
** connection with libaesql, queries and their expected text or error,
** tables of made-up pixels, an interrupter thread.
**
** The programs link the extension statically (compiled with -DSQLITE_CORE)
** and register it on each connection with sqlite3_aesql_init().
*/
#ifndef AESQL_CHECK_SQL_H
#define AESQL_CHECK_SQL_H

#include <sqlite3.h>
#include "../check.h"
#include "../../include/aesql.h"

/* A connection to an in-memory database (or FILENAME) with libaesql. */
static __attribute__((unused)) sqlite3 *check_open(const char *zFile){
  sqlite3 *db = 0;
  char *zErr = 0;
  if( sqlite3_open(zFile ? zFile : ":memory:", &db)!=SQLITE_OK ){
    fprintf(stderr, "cannot open %s\n", zFile ? zFile : ":memory:");
    exit(2);
  }
  if( sqlite3_aesql_init(db, &zErr, 0)!=SQLITE_OK ){
    fprintf(stderr, "aesql init: %s\n", zErr ? zErr : "?");
    exit(2);
  }
  return db;
}

/* Runs every statement of zSql; returns the rows of the last statement
** that returned any as text, columns joined by '|', rows by '\n', NULL
** as "NULL", BLOBs as x'hex' - or "ERROR: message". sqlite3_free() it. */
static __attribute__((unused)) char *check_query(sqlite3 *db, const char *zSql){
  sqlite3_str *out = sqlite3_str_new(0);
  const char *zTail = zSql;
  while( zTail && *zTail ){
    sqlite3_stmt *st = 0;
    int rc = sqlite3_prepare_v2(db, zTail, -1, &st, &zTail);
    int nRow = 0;
    if( rc!=SQLITE_OK ){
      sqlite3_str_reset(out);
      sqlite3_str_appendf(out, "ERROR: %s", sqlite3_errmsg(db));
      return sqlite3_str_finish(out);
    }
    if( st==0 ) continue;
    while( (rc = sqlite3_step(st))==SQLITE_ROW ){
      int i, n = sqlite3_column_count(st);
      if( nRow==0 ) sqlite3_str_reset(out);
      if( nRow++ ) sqlite3_str_append(out, "\n", 1);
      for(i=0; i<n; i++){
        if( i ) sqlite3_str_append(out, "|", 1);
        switch( sqlite3_column_type(st, i) ){
          case SQLITE_NULL: sqlite3_str_appendall(out, "NULL"); break;
          case SQLITE_BLOB: {
            const unsigned char *p = sqlite3_column_blob(st, i);
            int j, nb = sqlite3_column_bytes(st, i);
            sqlite3_str_appendall(out, "x'");
            for(j=0; j<nb; j++) sqlite3_str_appendf(out, "%02x", p[j]);
            sqlite3_str_appendall(out, "'");
            break;
          }
          default:
            sqlite3_str_appendall(out, (const char*)sqlite3_column_text(st, i));
        }
      }
    }
    if( rc!=SQLITE_DONE ){
      sqlite3_str_reset(out);
      sqlite3_str_appendf(out, "ERROR: %s", sqlite3_errmsg(db));
      sqlite3_finalize(st);
      return sqlite3_str_finish(out);
    }
    sqlite3_finalize(st);
  }
  {
    char *z = sqlite3_str_finish(out);   /* NULL when empty */
    return z ? z : sqlite3_mprintf("");
  }
}

/* The query's text (see check_query) equals zWant exactly. */
static __attribute__((unused)) void check_sql(const char *name, sqlite3 *db, const char *zSql,
                      const char *zWant){
  char *z = check_query(db, zSql);
  check_report(z && strcmp(z, zWant)==0, name, "sql [%s]\n  got  [%s]\n  want [%s]",
               zSql, z ? z : "(null)", zWant);
  sqlite3_free(z);
}

/* The query fails with an error message containing zWant. */
static __attribute__((unused)) void check_sql_error(const char *name, sqlite3 *db, const char *zSql,
                            const char *zWant){
  char *z = check_query(db, zSql);
  check_report(z && strncmp(z, "ERROR: ", 7)==0 && strstr(z, zWant)!=0, name,
               "sql [%s]\n  got  [%s]\n  want an error containing [%s]",
               zSql, z ? z : "(null)", zWant);
  sqlite3_free(z);
}

/* The query's single value as a double (NAN on error or no row). */
static __attribute__((unused)) double check_sql_double(sqlite3 *db, const char *zSql){
  sqlite3_stmt *st = 0;
  double v = NAN;
  if( sqlite3_prepare_v2(db, zSql, -1, &st, 0)==SQLITE_OK
   && sqlite3_step(st)==SQLITE_ROW ){
    v = sqlite3_column_double(st, 0);
  }else{
    fprintf(stderr, "check_sql_double: %s: %s\n", zSql, sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return v;
}

/* Writes n bytes to a new file at zPath; returns 0 on success. */
static __attribute__((unused)) int check_write_file(const char *zPath, const void *p, size_t n){
  FILE *f = fopen(zPath, "wb");
  if( !f ) return 1;
  if( n && fwrite(p, 1, n, f)!=n ){ fclose(f); return 1; }
  return fclose(f)!=0;
}

/* A fresh temporary directory for the files a test makes; static buffer. */
static __attribute__((unused)) const char *check_tmpdir(void){
  static char z[64];
  if( z[0]==0 ){
    strcpy(z, "/tmp/aesql-test-XXXXXX");
    if( mkdtemp(z)==0 ){ perror("mkdtemp"); exit(2); }
  }
  return z;
}

/* Where the real data sets are: $AESQL_DATA or "data". */
static __attribute__((unused)) const char *check_datadir(void){
  const char *z = getenv("AESQL_DATA");
  return z && z[0] ? z : "data";
}

/* A table zTab(class INTEGER, pixels BLOB) of n rows of d bytes: a stripe
** whose place depends on the class (rowid % 4), plus deterministic noise,
** sparse as MNIST is. The same arguments give the same table. */
static __attribute__((unused)) void check_make_table(sqlite3 *db, const char *zTab,
                                                     int n, int d){
  sqlite3_stmt *st = 0;
  unsigned char *px = malloc(d);
  char *zSql = sqlite3_mprintf("CREATE TABLE \"%w\"(class INTEGER, pixels BLOB);"
                               "INSERT INTO \"%w\"(class, pixels) VALUES(?1, ?2)",
                               zTab, zTab);
  const char *zTail = 0;
  uint32_t s = 12345;
  int r, i;
  if( !px || !zSql
   || sqlite3_prepare_v2(db, zSql, -1, &st, &zTail)!=SQLITE_OK
   || sqlite3_step(st)!=SQLITE_DONE ){
    fprintf(stderr, "check_make_table: %s\n", sqlite3_errmsg(db));
    exit(2);
  }
  sqlite3_finalize(st);
  if( sqlite3_prepare_v2(db, zTail, -1, &st, 0)!=SQLITE_OK ){
    fprintf(stderr, "check_make_table: %s\n", sqlite3_errmsg(db));
    exit(2);
  }
  sqlite3_exec(db, "SAVEPOINT make_table", 0, 0, 0);
  for(r=0; r<n; r++){
    int cls = r % 4;
    for(i=0; i<d; i++){
      int v = ((i + cls*d/4) % d) < d/4 ? 200 : 0;
      s = s*1103515245u + 12345u;
      v += (s>>16) % 40;
      if( (s>>8) % 3 == 0 ) v = 0;
      px[i] = (unsigned char)(v > 255 ? 255 : v);
    }
    sqlite3_bind_int(st, 1, cls);
    sqlite3_bind_blob(st, 2, px, d, SQLITE_STATIC);
    if( sqlite3_step(st)!=SQLITE_DONE ){
      fprintf(stderr, "check_make_table: %s\n", sqlite3_errmsg(db));
      exit(2);
    }
    sqlite3_reset(st);
  }
  sqlite3_exec(db, "RELEASE make_table", 0, 0, 0);
  sqlite3_finalize(st);
  sqlite3_free(zSql);
  free(px);
}

/* A thread's argument that interrupts db after ms milliseconds:
**   check_interrupter it = { db, 50, 0 };
**   pthread_create(&th, 0, check_interrupt_later, &it);
** After the join, it.at is when it interrupted (CLOCK_MONOTONIC seconds,
** check_now()): latencies are measured from there, not from a start that
** a loaded machine may delay the thread behind. */
typedef struct check_interrupter { sqlite3 *db; int ms; double at; } check_interrupter;
static __attribute__((unused)) void *check_interrupt_later(void *p){
  check_interrupter *it = p;
  usleep(it->ms*1000);
  it->at = check_now();
  sqlite3_interrupt(it->db);
  return 0;
}

#endif /* AESQL_CHECK_SQL_H */
