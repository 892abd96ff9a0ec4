/*
** How libaesql writes to a database: the checks made before a long
** training, the model tables' sanity, and one transaction discipline.
**
** Where a model is written, by what the connection is doing when
** ae_train() stores it:
**   - in autocommit mode (the usual `SELECT ae_train(...)`): in a
**     transaction of its own, BEGIN IMMEDIATE ... COMMIT, so the write
**     lock is taken first and the connection's busy timeout is honoured
**     both for it and for the commit; on any failure the transaction is
**     rolled back, so no transaction of libaesql's is ever left open, and
**     a model reported as stored is committed;
**   - inside the caller's transaction (after BEGIN or SAVEPOINT): in a
**     savepoint, released into that transaction: the caller's ROLLBACK
**     takes the model with it;
**   - inside a statement that writes (INSERT ... SELECT ae_train(...),
**     CREATE TABLE ... AS SELECT, UPDATE ... SET c = ae_train(...),
**     RETURNING): as part of that statement, which SQLite keeps atomic: if
**     it fails, its rollback takes the model with it.
*/
#ifndef AE_STORE_H
#define AE_STORE_H

#include "aesql_int.h"

/* Per-connection state, the user data of the functions that write. */
typedef struct aesql_conn {
  sqlite3 *db;
  int nTraining;        /* ae_train calls running on this connection */
} aesql_conn;

/* Sets an SQL function's error from an SQLite error code, reported as
** itself: "zFunc: database is locked", "interrupted", out of memory...
** with zWhat (may be NULL) between, as in "zFunc: zWhat: reason". */
void aesql_result_sqlite_error(sqlite3_context *ctx, const char *zFunc,
                               const char *zWhat, int rc, sqlite3 *db);

/* Checks that main.ae_models and main.ae_history, where they exist, are
** libaesql's tables: ordinary tables (not views, not virtual tables) with
** the expected columns. *pExists is set when main.ae_models exists.
** Returns SQLITE_OK, or an error code with *pzErr set (sqlite3_malloc'd;
** NULL for an SQLite error such as SQLITE_BUSY, which is in db). */
int aesql_store_check(sqlite3 *db, int *pExists, char **pzErr);

/* The checks ae_train makes before it trains, so that what cannot be
** stored fails at once: main is writable; the model tables are sane; the
** name is free (or replace is set); no statement running on this
** connection reads the model tables (it would see the new model and could
** feed itself without end). Same return convention as above. */
int aesql_store_precheck(sqlite3 *db, const char *zName, int replace,
                         char **pzErr);

/* A write of the model tables, as described above. */
typedef struct aesql_txn {
  sqlite3 *db;
  int mode;             /* AESQL_TXN_OWN, _SAVEPOINT or _STATEMENT */
  int open;
  /* The undo, prepared before anything is written: once an allocation has
  ** failed inside the calling statement, SQLite refuses to prepare any
  ** statement until that one ends, and a ROLLBACK prepared only then would
  ** never run, leaving the transaction open. */
  sqlite3_stmt *pUndo;      /* ROLLBACK, or ROLLBACK TO ae_store */
  sqlite3_stmt *pRelease;   /* RELEASE ae_store (savepoint mode)  */
} aesql_txn;
enum { AESQL_TXN_OWN = 1, AESQL_TXN_SAVEPOINT = 2, AESQL_TXN_STATEMENT = 3 };

/* Opens the write: takes the write lock at once in AESQL_TXN_OWN mode,
** waiting for it up to the connection's busy timeout. */
int aesql_txn_begin(aesql_txn *t, sqlite3 *db, char **pzErr);
/* Commits (or releases) it; on failure rolls it back and returns the
** error: "database is locked after N s; the model was not stored". */
int aesql_txn_commit(aesql_txn *t, char **pzErr);
/* Undoes it; afterwards no transaction of ours is open. */
void aesql_txn_rollback(aesql_txn *t);

/* The statement running on db that writes, if any (NULL otherwise). */
sqlite3_stmt *aesql_store_writer(sqlite3 *db);

#endif /* AE_STORE_H */
