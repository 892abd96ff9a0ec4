/*
** Nothing lost, nothing hung: how ae_train stores models when several
** connections share a database file (rollback journal and WAL, real
** processes), inside the caller's transactions and writing statements,
** under locks; statements that feed themselves; databases from someone
** else. Every case here failed on the code before it was fixed.
*/
#include "check_sql.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static double now_s(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

static char zDir[256];

/* A fresh database file zDir/zName in journal mode zMode with table t. */
static sqlite3 *fresh_db(const char *zName, const char *zMode, char *zPath,
                         size_t nPath){
  sqlite3 *db;
  char *z;
  snprintf(zPath, nPath, "%s/%s", zDir, zName);
  unlink(zPath);
  z = sqlite3_mprintf("%s-wal", zPath); unlink(z); sqlite3_free(z);
  z = sqlite3_mprintf("%s-shm", zPath); unlink(z); sqlite3_free(z);
  z = sqlite3_mprintf("%s-journal", zPath); unlink(z); sqlite3_free(z);
  db = check_open(zPath);
  z = sqlite3_mprintf("PRAGMA journal_mode=%s", zMode);
  sqlite3_free(check_query(db, z));
  sqlite3_free(z);
  check_make_table(db, "t", 60, 16);
  return db;
}

static int count_models(const char *zPath){
  sqlite3 *db = check_open(zPath);
  double n = check_sql_double(db, "SELECT count(*) FROM ae_models");
  sqlite3_close(db);
  return (int)n;
}

static const char *zTrain1 =
  "SELECT ae_train('t', 2, '{\"epochs\": 1, \"seed\": 1, \"name\": \"%s\"}')";

/* ---- 1. a busy commit leaves no transaction open ---- */
static void busy_commit(void){
  char zPath[300], *zSql;
  sqlite3 *a = fresh_db("busy.db", "delete", zPath, sizeof(zPath));
  sqlite3 *b = check_open(zPath);
  double t0;
  sqlite3_stmt *st = 0;
  /* a keeps a read open: b cannot commit. */
  sqlite3_exec(a, "BEGIN", 0, 0, 0);
  sqlite3_prepare_v2(a, "SELECT count(*) FROM t", -1, &st, 0);
  sqlite3_step(st);
  sqlite3_busy_timeout(b, 300);
  zSql = sqlite3_mprintf(zTrain1, "m1");
  t0 = now_s();
  check_sql_error("busy commit: the training says the lock won and nothing was stored",
                  b, zSql, "ae_train: database is locked after 0.");
  CHECK("busy commit: it waited its busy timeout", now_s() - t0 >= 0.29);
  CHECK("busy commit: the error code is SQLITE_BUSY", sqlite3_errcode(b)==SQLITE_BUSY);
  CHECK("busy commit: no transaction is left open", sqlite3_get_autocommit(b)==1);
  sqlite3_free(zSql);
  sqlite3_finalize(st);
  sqlite3_exec(a, "COMMIT", 0, 0, 0);
  zSql = sqlite3_mprintf(zTrain1, "m2");
  check_sql("busy commit: the next training reports success", b, zSql, "m2");
  sqlite3_free(zSql);
  sqlite3_close(b);
  sqlite3_close(a);
  check_sql("busy commit: what was reported as stored is stored",
            (b = check_open(zPath)), "SELECT group_concat(name) FROM ae_models", "m2");
  sqlite3_close(b);
}

/* ---- 2. concurrent trainers wait for each other ---- */
#define NPROC 3
#define NEACH 12
static void concurrent(const char *zMode){
  char zPath[300], zName[64];
  sqlite3 *db = fresh_db("conc.db", zMode, zPath, sizeof(zPath));
  pid_t pid[NPROC];
  int i, nOk = 0, status;
  double t0 = now_s();
  sqlite3_close(db);
  for(i=0; i<NPROC; i++){
    pid[i] = fork();
    if( pid[i]==0 ){
      int k, bad = 0;
      alarm(120);
      db = check_open(zPath);
      sqlite3_busy_timeout(db, 30000);
      for(k=0; k<NEACH; k++){
        char *zSql, *z;
        snprintf(zName, sizeof(zName), "p%d_%d", i, k);
        zSql = sqlite3_mprintf(zTrain1, zName);
        z = check_query(db, zSql);
        if( strcmp(z, zName)!=0 ){ fprintf(stderr, "%s: %s\n", zName, z); bad++; }
        if( !sqlite3_get_autocommit(db) ) bad++;
        sqlite3_free(z);
        sqlite3_free(zSql);
      }
      sqlite3_close(db);
      _exit(bad ? 1 : 0);
    }
  }
  for(i=0; i<NPROC; i++){
    if( waitpid(pid[i], &status, 0)==pid[i] && WIFEXITED(status)
     && WEXITSTATUS(status)==0 ) nOk++;
  }
  snprintf(zName, sizeof(zName), "%s: %d processes, every training waits and succeeds",
           zMode, NPROC);
  check_report(nOk==NPROC, zName, "%d of %d processes had failures", NPROC-nOk, NPROC);
  snprintf(zName, sizeof(zName), "%s: every model reported is stored", zMode);
  check_report(count_models(zPath)==NPROC*NEACH, zName, "%d models, want %d",
               count_models(zPath), NPROC*NEACH);
  printf("# %s: %d trainings in %.1f s\n", zMode, NPROC*NEACH, now_s()-t0);
}

/* ---- 3, 4. inside writing statements and transactions ---- */
static void writing_statements(void){
  sqlite3 *db = check_open(0);
  check_make_table(db, "t", 60, 16);
  sqlite3_exec(db, "CREATE TABLE log(m TEXT)", 0, 0, 0);
  check_sql("INSERT ... SELECT ae_train", db,
    "INSERT INTO log SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w1\"}');"
    "SELECT (SELECT group_concat(m) FROM log), (SELECT count(*) FROM ae_models WHERE name='w1')",
    "w1|1");
  check_sql("INSERT ... VALUES (ae_train)", db,
    "INSERT INTO log VALUES (ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w2\"}'));"
    "SELECT count(*) FROM ae_models WHERE name='w2'", "1");
  check_sql("UPDATE ... SET c = ae_train", db,
    "UPDATE log SET m = ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w3\"}') WHERE m='w2';"
    "SELECT group_concat(m, ',') FROM log", "w1,w3");
  check_sql("CREATE TABLE ... AS SELECT ae_train", db,
    "CREATE TABLE made AS SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w4\"}') AS m;"
    "SELECT m FROM made", "w4");
  check_sql("INSERT ... RETURNING ae_train", db,
    "INSERT INTO log VALUES('r') RETURNING ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w5\"}')",
    "w5");
  check_sql("every one is stored, with its history", db,
    "SELECT count(*), (SELECT count(*) FROM ae_history) FROM ae_models", "5|5");
  /* The outer statement's rollback takes the model with it. */
  check_sql_error("a writing statement that fails after the training", db,
    "CREATE TABLE strict(m TEXT CHECK(m='never'));"
    "INSERT INTO strict SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w6\"}')",
    "CHECK constraint failed");
  check_sql("... leaves no model behind", db,
    "SELECT count(*) FROM ae_models WHERE name='w6'", "0");
  check_sql_error("a writing statement whose second training fails", db,
    "INSERT INTO log SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w7\"}') "
    "UNION ALL SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w1\"}')",
    "model 'w1' already exists");
  check_sql("... keeps neither training", db,
    "SELECT count(*) FROM ae_models WHERE name='w7'", "0");
  CHECK("no transaction left open", sqlite3_get_autocommit(db)==1);
  check_sql_error("inside BEGIN, the same statement fails", db,
    "BEGIN; INSERT INTO log SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w8\"}') "
    "UNION ALL SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w1\"}')",
    "model 'w1' already exists");
  check_sql("... and its statement rollback takes the first model", db,
    "SELECT count(*) FROM ae_models WHERE name='w8'", "0");
  check_sql("the caller's ROLLBACK takes a model trained in its transaction", db,
    "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w9\"}'); ROLLBACK;"
    "SELECT count(*) FROM ae_models WHERE name='w9'", "0");
  check_sql("the caller's COMMIT keeps it", db,
    "BEGIN; SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"w10\"}'); COMMIT;"
    "SELECT count(*) FROM ae_models WHERE name='w10'", "1");

  /* A multi-row statement: each call commits on its own (the README says
  ** so); wrapped in a transaction, a failure takes them all. */
  check_sql_error("a multi-row statement failing on its third row", db,
    "SELECT ae_train('t', 2, json_object('name', 'x' || value, 'epochs', 1)) "
    "FROM json_each('[1,2,1]')", "model 'x1' already exists");
  check_sql("... keeps the two trained before (each call commits)", db,
    "SELECT group_concat(name) FROM (SELECT name FROM ae_models WHERE name GLOB 'x*' ORDER BY 1)",
    "x1,x2");
  check_sql("... and in a transaction, the caller's rollback takes them", db,
    "BEGIN; SELECT ae_train('t', 2, json_object('name', 'y' || value, 'epochs', 1)) "
    "FROM json_each('[1,2]'); ROLLBACK; "
    "SELECT count(*) FROM ae_models WHERE name GLOB 'y*'", "0");
  check_sql_error("an ae_train inside another's source is refused", db,
    "SELECT ae_train('SELECT pixels FROM t WHERE ae_train(''t'', 2, "
    "''{\"epochs\": 1, \"name\": \"inner\"}'') IS NOT NULL', 2, '{\"name\": \"outer\"}')",
    "cannot run inside the source of another ae_train");
  check_sql("... and stores neither", db,
    "SELECT count(*) FROM ae_models WHERE name IN ('inner','outer')", "0");
  sqlite3_close(db);
}

/* ---- 5, 6. errors under a lock; what cannot be stored fails first ---- */
static void lock_errors(void){
  char zPath[300];
  sqlite3 *a = fresh_db("lock.db", "delete", zPath, sizeof(zPath)), *b, *ro;
  double t0;
  sqlite3_free(check_query(a, "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"m\"}')"));
  b = check_open(zPath);
  /* Read the schema first: SQLite 3.52 reads it even to prepare a statement
  ** that names no table, and would say "database is locked" itself. */
  sqlite3_free(check_query(b, "SELECT count(*) FROM sqlite_schema"));
  sqlite3_exec(a, "BEGIN EXCLUSIVE; INSERT INTO t(pixels) VALUES(zeroblob(16))", 0, 0, 0);
  check_sql_error("under another's lock, ae_error says the database is locked", b,
    "SELECT ae_error('m', zeroblob(16))", "ae_error: cannot read model 'm': database is locked");
  CHECK("... with the code SQLITE_BUSY", sqlite3_errcode(b)==SQLITE_BUSY);
  check_sql_error("ae_train says the database is locked", b,
    "SELECT ae_train('t', 2)", "database is locked");
  check_sql_error("ae_train with options says the database is locked", b,
    "SELECT ae_train('t', 2, '{\"epochs\": 1}')", "database is locked");
  check_sql_error("ae_scores says the database is locked", b,
    "SELECT count(*) FROM ae_scores('m', 't')", "database is locked");
  sqlite3_exec(a, "ROLLBACK", 0, 0, 0);

  t0 = now_s();
  check_sql_error("a name that is taken fails before training", b,
    "SELECT ae_train('t', 2, '{\"epochs\": 1000000, \"name\": \"m\"}')",
    "ae_train: model 'm' already exists; give another \"name\" or pass \"replace\": true");
  CHECK("... at once", now_s() - t0 < 5);
  if( sqlite3_open_v2(zPath, &ro, SQLITE_OPEN_READONLY, 0)==SQLITE_OK ){
    sqlite3_aesql_init(ro, 0, 0);
    t0 = now_s();
    check_sql_error("a read-only database fails before training", ro,
      "SELECT ae_train('t', 2, '{\"epochs\": 1000000, \"name\": \"n\"}')",
      "ae_train: the database is read-only, so the model could not be stored");
    CHECK("... at once", now_s() - t0 < 5);
    check_sql("... and scoring works there", ro,
      "SELECT ae_error('m', zeroblob(16)) > 0", "1");
    sqlite3_close(ro);
  }
  sqlite3_close(b);
  sqlite3_close(a);
}

/* ---- 8, 9. statements that feed themselves ---- */
static void self_feeding(void){
  sqlite3 *db = check_open(0);
  check_make_table(db, "t", 60, 16);
  sqlite3_free(check_query(db, "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"m\"}')"));
  check_sql("INSERT INTO t SELECT FROM ae_scores('m', 't') scores the rows there were", db,
    "INSERT INTO t(pixels) SELECT randomblob(16) FROM ae_scores('m', 't');"
    "SELECT count(*) FROM t", "120");
  check_sql("... and over a query source too", db,
    "INSERT INTO t(pixels) SELECT zeroblob(16) FROM ae_scores('m', 'SELECT pixels FROM t');"
    "SELECT count(*) FROM t", "240");
  check_sql("... with the same errors as a plain scan", db,
    "CREATE TABLE s AS SELECT key, error FROM ae_scores('m', 't');"
    "SELECT count(*), sum(s.error = ae_error('m', t.pixels)) FROM s JOIN t ON t.rowid=s.key",
    "240|240");
  check_sql_error("retraining every model from ae_models is refused", db,
    "SELECT ae_train(source, n_hidden, json_object('name', name || '_v2', 'epochs', 1)) "
    "FROM ae_models", "the statement that calls ae_train reads ae_models");
  check_sql("... before it trains any", db, "SELECT count(*) FROM ae_models", "1");
  check_sql_error("... also through a view", db,
    "CREATE VIEW mv AS SELECT * FROM ae_models;"
    "SELECT ae_train(source, n_hidden, json_object('name', name || '_v2', 'epochs', 1)) "
    "FROM mv", "reads ae_models, ae_history or ae_calibration");
  check_sql("the way the message gives works", db,
    "CREATE TEMP TABLE todo AS SELECT name, source, n_hidden FROM ae_models;"
    "SELECT ae_train(source, n_hidden, json_object('name', name || '_v2', 'epochs', 1)) "
    "FROM todo; SELECT group_concat(name) FROM (SELECT name FROM ae_models ORDER BY 1)",
    "m,m_v2");
  sqlite3_close(db);
}

/* ---- 10-13. seeds, temp tables, non-finite inputs, keys ---- */
static void wrong_answers(void){
  sqlite3 *db = check_open(0);
  char *z;
  check_make_table(db, "t", 60, 16);
  check_sql("two unseeded trainings in the same second differ", db,
    "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"a\"}'),"
    "       ae_train('t', 2, '{\"epochs\": 1, \"name\": \"b\"}');"
    "SELECT (SELECT weights FROM ae_models WHERE name='a') <> "
    "       (SELECT weights FROM ae_models WHERE name='b'),"
    "       (SELECT json_extract(options, '$.seed') FROM ae_models WHERE name='a') <> "
    "       (SELECT json_extract(options, '$.seed') FROM ae_models WHERE name='b')",
    "1|1");
  check_sql("the seed drawn is stored and trains the same model again", db,
    "CREATE TEMP TABLE seed AS SELECT json_extract(options, '$.seed') AS s "
    "  FROM ae_models WHERE name='a';"
    "SELECT ae_train('t', 2, json_object('epochs', 1, 'name', 'a2', 'seed', s)) FROM seed;"
    "SELECT (SELECT weights FROM ae_models WHERE name='a') = "
    "       (SELECT weights FROM ae_models WHERE name='a2')", "1");
  check_sql_error("a negative seed is refused", db,
    "SELECT ae_train('t', 2, '{\"seed\": -1}')",
    "ae_train: option 'seed' must be an integer from 0 to 9223372036854775807");

  check_sql("a temp table named ae_models does not hide the models", db,
    "CREATE TEMP TABLE ae_models(name TEXT, weights BLOB);"
    "INSERT INTO temp.ae_models VALUES('a', x'00');"
    "SELECT ae_error('a', pixels) > 0 FROM t WHERE rowid=1", "1");
  sqlite3_exec(db, "DROP TABLE temp.ae_models", 0, 0, 0);

  /* float32 rows with NaN or an infinity: an error that names them. */
  sqlite3_exec(db, "CREATE TABLE f(pixels BLOB);"
    "INSERT INTO f SELECT ae_test_f32(value) FROM json_each('[1,2,3,4,5,6,7,8,9,10]')", 0, 0, 0);
  sqlite3_free(check_query(db,
    "SELECT ae_train('f', 2, '{\"epochs\": 1, \"dtype\": \"f32\", \"name\": \"f\"}')"));
  check_sql_error("ae_error of a row holding NaN names the pixel", db,
    "SELECT ae_error('f', x'0000803f0000c07f0000803f0000803f')",
    "ae_error: pixel 2 of the row is NaN; every pixel must be a finite number");
  check_sql_error("... and +Inf", db,
    "SELECT ae_error('f', x'0000803f0000803f0000803f0000807f')",
    "pixel 4 of the row is +Inf");
  check_sql_error("ae_reconstruct of it too", db,
    "SELECT ae_reconstruct('f', x'0000803f0000c07f0000803f0000803f')", "is NaN");
  check_sql_error("ae_scores names the row", db,
    "INSERT INTO f VALUES(x'000080ff0000803f0000803f0000803f');"
    "SELECT count(*) FROM ae_scores('f', 'f')",
    "ae_scores: row 11 of the source has a pixel that is not a finite number (pixel 1)");

  /* Keys. */
  sqlite3_free(check_query(db, "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"k\"}')"));
  check_sql("a table with a column named rowid: the key is the real rowid", db,
    "CREATE TABLE kr(rowid INTEGER, pixels BLOB);"
    "INSERT INTO kr(_rowid_, rowid, pixels) SELECT 10*rowid, 0, pixels FROM t WHERE rowid<=3;"
    "SELECT group_concat(key) FROM ae_scores('k', 'kr')", "10,20,30");
  check_sql("a table with an INTEGER PRIMARY KEY: the key is it", db,
    "CREATE TABLE ki(id INTEGER PRIMARY KEY, pixels BLOB);"
    "INSERT INTO ki SELECT 7*rowid, pixels FROM t WHERE rowid<=3;"
    "SELECT group_concat(key) FROM ae_scores('k', 'ki')", "7,14,21");
  check_sql("a query that gives the rowid: the key is it", db,
    "SELECT group_concat(key) FROM ae_scores('k', 'SELECT rowid, pixels FROM t WHERE rowid>57')",
    "58,59,60");
  check_sql("a query with a key column", db,
    "SELECT group_concat(key) FROM ae_scores('k', "
    "'SELECT pixels, 100+rowid AS key FROM t WHERE rowid<3')", "101,102");
  check_sql("a query without: row numbers", db,
    "SELECT group_concat(key) FROM ae_scores('k', 'SELECT pixels FROM t WHERE rowid>57')",
    "1,2,3");
  check_sql("a WITHOUT ROWID table with a TEXT key: row numbers", db,
    "CREATE TABLE kw(name TEXT PRIMARY KEY, pixels BLOB) WITHOUT ROWID;"
    "INSERT INTO kw SELECT 'n' || rowid, pixels FROM t WHERE rowid<=2;"
    "SELECT group_concat(key) FROM ae_scores('k', 'kw')", "1,2");
  check_sql_error("a key that is not an integer is an error", db,
    "SELECT count(*) FROM ae_scores('k', 'SELECT ''a'' AS key, pixels FROM t')",
    "ae_scores: row 1 of the source has a key that is not an integer");
  check_sql("ae_error agrees with ae_scores by key", db,
    "SELECT count(*), sum(s.error = ae_error('k', ki.pixels)) "
    "FROM ae_scores('k', 'ki') s JOIN ki ON ki.id = s.key", "3|3");
  z = check_query(db, "SELECT 1");
  sqlite3_free(z);
  sqlite3_close(db);
}

/* ---- 14. a database from someone else ---- */
static void hostile(void){
  sqlite3 *db = check_open(0);
  double t0;
  check_make_table(db, "t", 20, 16);
  sqlite3_exec(db, "CREATE VIEW ae_models AS SELECT 'big' AS name, "
    "x'414553514c414500' || x'01000000' || x'00004000' || x'20000000' || x'00000000' "
    "|| x'00000000' || x'00000000' || zeroblob(1000) AS weights", 0, 0, 0);
  t0 = now_s();
  check_sql_error("a view named ae_models is refused", db,
    "SELECT ae_error('big', zeroblob(16))",
    "ae_error: main.ae_models is a view, not libaesql's table of models");
  CHECK("... at once, before reading it", now_s() - t0 < 1);
  check_sql_error("... and ae_train will not write next to it", db,
    "SELECT ae_train('t', 2, '{\"epochs\": 1000000}')", "main.ae_models is a view");
  sqlite3_exec(db, "DROP VIEW ae_models", 0, 0, 0);
  {
    char zPath[300];
    static const unsigned char idx1[13] = { 0,0,8,2, 0,0,0,1, 0,0,0,1, 7 };  /* 1 x 1 */
    snprintf(zPath, sizeof(zPath), "%s/one.idx", zDir);
    check_write_file(zPath, idx1, sizeof(idx1));
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE ae_models USING idx(images='%q')", zPath);
    sqlite3_free(check_query(db, zSql));
    sqlite3_free(zSql);
  }
  check_sql_error("a virtual table named ae_models is refused", db,
    "SELECT ae_error('x', zeroblob(16))", "main.ae_models is a virtual table");
  sqlite3_exec(db, "DROP TABLE ae_models", 0, 0, 0);
  check_sql_error("a table named ae_models without the columns is refused", db,
    "CREATE TABLE ae_models(name TEXT, weights BLOB);"
    "SELECT ae_error('x', zeroblob(16))",
    "main.ae_models is not libaesql's table of models: it has no column 'n_input'");
  sqlite3_close(db);
}

/* Weights that overflow float32 on the way: an error, never a NaN (SQL
** would read it as NULL, the least unusual row). */
static void overflow(void){
  sqlite3 *db = check_open(0);
  unsigned char blob[32 + 4*82];
  static const unsigned char hdr[32] = { 'A','E','S','Q','L','A','E',0, 1,0,0,0,
    16,0,0,0, 2,0,0,0, 0,0,0,0, 82,0,0,0, 0,0,0,0 };
  sqlite3_stmt *st = 0;
  int i;
  check_make_table(db, "t", 20, 16);
  memcpy(blob, hdr, 32);
  for(i=0; i<82; i++){      /* every weight 6e37, a finite float32 */
    blob[32+4*i] = 0x52; blob[33+4*i] = 0x8e; blob[34+4*i] = 0x34; blob[35+4*i] = 0x7e;
  }
  sqlite3_free(check_query(db, "SELECT ae_train('t', 2, '{\"epochs\": 1, \"name\": \"huge\"}')"));
  sqlite3_prepare_v2(db, "UPDATE ae_models SET weights = ?1 WHERE name = 'huge'", -1, &st, 0);
  sqlite3_bind_blob(st, 1, blob, sizeof(blob), SQLITE_STATIC);
  CHECK("a model whose weights are all 6e37", sqlite3_step(st)==SQLITE_DONE);
  sqlite3_finalize(st);
  check_sql_error("... ae_error says the error overflows, not NULL", db,
    "SELECT ae_error('huge', pixels) FROM t",
    "ae_error: the reconstruction error of this row overflows");
  check_sql_error("... and so does ae_scores", db,
    "SELECT error FROM ae_scores('huge', 't')",
    "ae_scores: the reconstruction error of row 1 overflows");
  check_sql_error("... and ae_calibrate", db,
    "SELECT ae_calibrate('huge', 't')",
    "ae_calibrate: the reconstruction error of row 1 of the source overflows");
  sqlite3_close(db);
}

/* ---- 15-18. limits and small things ---- */
static void limits(void){
  sqlite3 *db = check_open(0);
  int ms;
  char *z;
  check_make_table(db, "t", 60, 64);
  check_sql("two rows of 2^21 pixels train in a batch of 2", db,
    "CREATE TABLE wide(pixels BLOB);"
    "INSERT INTO wide VALUES(randomblob(2097152)), (randomblob(2097152));"
    "SELECT ae_train('wide', 2, '{\"epochs\": 1, \"batch_size\": 2, "
    "\"validation_split\": 0, \"name\": \"wide\"}')", "wide");
  check_sql("... and score", db,
    "SELECT count(*), sum(error > 0) FROM ae_scores('wide', 'wide')", "2|2");
  sqlite3_exec(db, "DROP TABLE wide", 0, 0, 0);

  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 4000);
  check_sql_error("weights over the length limit: a clear error", db,
    "SELECT ae_train('t', 16, '{\"epochs\": 1, \"name\": \"long\"}')",
    "ae_train: cannot store the model: its weights BLOB of 8576 bytes is over "
    "this connection's length limit (4000 bytes, SQLITE_LIMIT_LENGTH)");
  check_sql("... and nothing stored", db,
    "SELECT count(*) FROM ae_models WHERE name='long'", "0");
  {
    double t1 = now_s();
    check_sql_error("... found before training (a million epochs are not run)", db,
      "SELECT ae_train('t', 16, '{\"epochs\": 1000000, \"name\": \"long\"}')",
      "is over this connection's length limit");
    CHECK("... at once", now_s() - t1 < 5);
    CHECK("... as SQLITE_TOOBIG", sqlite3_errcode(db)==SQLITE_TOOBIG);
  }
  sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000000);

  check_sql_error("a name holding NUL is refused, not cut", db,
    "SELECT ae_train('t', 2, json_object('name', 'a' || char(0) || 'b'))",
    "ae_train: options must not contain a NUL character (\\u0000)");
  check_sql("... while a backslash before u0000 is plain text", db,
    "SELECT ae_train('t', 2, json_object('name', 'a\\u0000b', 'epochs', 1))",
    "a\\u0000b");
  z = check_query(db, "SELECT ae_train('t', 2, json_object(printf('%.100000c', 'k'), 1))");
  check_report(strstr(z, "unknown option 'kkkk") && strlen(z) < 400,
               "an over-long option name is cut in the message", "%.300s", z);
  sqlite3_free(z);
  check_sql("a table named select is a source", db,
    "CREATE TABLE \"select\"(pixels BLOB); INSERT INTO \"select\" SELECT pixels FROM t;"
    "SELECT ae_train('select', 2, '{\"epochs\": 1, \"name\": \"sel\"}')", "sel");
  check_sql("a table named 'with x' is a source", db,
    "CREATE TABLE \"with x\"(pixels BLOB); INSERT INTO \"with x\" SELECT pixels FROM t;"
    "SELECT count(*) FROM ae_scores('sel', 'with x')", "60");
  check_sql_error("options in JSON5 are refused on every SQLite version", db,
    "SELECT ae_train('t', 2, '{epochs: 1}')",
    "ae_train: options must be a JSON object, e.g. '{\"epochs\": 10, \"seed\": 1}' "
    "(strict JSON: names in double quotes)");

  /* Interrupts during the setup: reading, indexing, allocating. */
  check_make_table(db, "big", 30000, 784);
  for(ms=1; ms<=200; ms*=3){
    pthread_t th;
    check_interrupter it = { db, ms, 0 };
    double t0 = now_s(), dt;
    char zName[96];
    pthread_create(&th, 0, check_interrupt_later, &it);
    z = check_query(db, "SELECT ae_train('big', 256, '{\"epochs\": 1000}')");
    pthread_join(th, 0);
    dt = check_now() - (it.at>0 ? it.at : t0);
    snprintf(zName, sizeof(zName), "an interrupt after %d ms is reported as such", ms);
    check_report(strcmp(z, "ERROR: ae_train: interrupted")==0
              && sqlite3_errcode(db)==SQLITE_INTERRUPT, zName, "%s", z);
    snprintf(zName, sizeof(zName), "... and stops the training within 1 s (%.3f s)", dt);
    check_report(dt < 1.0, zName, "took %.3f s", dt);
    sqlite3_free(z);
  }
  check_sql("the connection works after them", db,
    "SELECT count(*) FROM ae_models WHERE name GLOB 'big*'", "0");
  sqlite3_close(db);
}

/* ae_test_f32(i): four float32 pixels i, i+1, i/2, 1. */
static void test_f32(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  float v[4];
  double x = sqlite3_value_double(argv[0]);
  (void)argc;
  v[0] = (float)x; v[1] = (float)(x+1); v[2] = (float)(x/2); v[3] = 1.0f;
  sqlite3_result_blob(ctx, v, sizeof(v), SQLITE_TRANSIENT);
}
static int register_test_f32(sqlite3 *db, char **pzErr, const sqlite3_api_routines *p){
  (void)pzErr; (void)p;
  return sqlite3_create_function(db, "ae_test_f32", 1, SQLITE_UTF8, 0, test_f32, 0, 0);
}

int main(void){
  snprintf(zDir, sizeof(zDir), "%s", check_tmpdir());
  sqlite3_auto_extension((void(*)(void))register_test_f32);
  busy_commit();
  concurrent("delete");
  concurrent("wal");
  writing_statements();
  lock_errors();
  self_feeding();
  wrong_answers();
  hostile();
  overflow();
  limits();
  return check_done();
}
