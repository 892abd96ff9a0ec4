/*
** Fault injection in the style of SQLite's own malloc tests: every
** operation of libaesql is run with its N-th allocation failing, for
** N = 1, 2, 3, ... until a run has no allocation left to fail, once with
** only the N-th failing ("transient") and once with every one from the
** N-th on failing too ("persistent").
**
**   make build/tests/test_fault build/asan-tests/test_fault
**   AESQL_FAULT_ONLY='ae_train threads 1:123:p' build/asan-tests/test_fault
**     (one operation, one N, p persistent or t transient: to read the
**      sanitizers' report of one failing run)
**   AESQL_FAULT_TRACE=1 (or =sql): where the first fault is injected, as
**     a stack (ASan build), the result, the blocks outstanding, and what
**     an application's COMMIT would keep of a transaction left open;
**     =sql: each statement as it starts, and each step's result, too
**   AESQL_FAULT_STRICT=1: the known bugs (aKnown below) fail the test too
**   AESQL_FAULT_FULL=1: every N (by default, to keep the suite quick, every
**     N among the first and last FAULT_EDGE allocations of an operation,
**     every step-th in between so as to make about FAULT_RUNS runs, and
**     every N around any run that fails)
**
** The allocator is SQLite's default one wrapped (SQLITE_CONFIG_MALLOC,
** before sqlite3_initialize): it counts the allocations from the moment a
** run arms it, fails the chosen ones, and counts the blocks outstanding.
** The numeric core allocates through sqlite3_malloc64 too (ext/core/ae_mem.h), so
** its failures are injected here as well. Not reached: the IDX reader's
** own malloc() (idx_file.h: blocks that may pass SQLite's 2 GiB limit),
** zlib's allocations for the IDX reader's gzip files (gzFile has no
** allocator hook), OpenBLAS's, and thread creation.
**
** Each run starts from a fresh copy of a small database file (a table of
** 40 rows of 16 bytes, a model trained on it; or a table of 40 rows of
** three numeric columns, INTEGER, REAL with NULLs and numeric TEXT, and a
** model of its columns) and a fresh connection
** without lookaside (so that every allocation reaches the allocator).
** A run passes when, with the allocator healthy again:
**   - the operation succeeded with exactly the result of a run without
**     faults, or failed with SQLITE_NOMEM / "out of memory";
**   - the connection is not left inside a transaction;
**   - PRAGMA integrity_check says ok;
**   - the state the operation may change (the models and their history,
**     weights and losses, and whether each model scores; the schema) is
**     exactly what a run without faults leaves after success, or exactly
**     what was there before after a failure: all or nothing;
**   - the connection closes (no statement left behind) and every block
**     allocated during the run has been freed (and, under ASan, the leak
**     checker finds nothing after each operation).
** Each operation prints one line: how many values of N it covered, and
** how long it took. Failing runs are described on "# " lines, grouped by
** symptom with the range of N that shows it.
*/
#include "check_sql.h"
#include <zlib.h>
#include <stdint.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
# define FAULT_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define FAULT_ASAN 1
# endif
#endif
#ifdef FAULT_ASAN
# include <sanitizer/lsan_interface.h>
# include <sanitizer/common_interface_defs.h>
#endif

static int fault_trace;   /* AESQL_FAULT_TRACE: print where faults are injected */

static double now_s(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec*1e-9;
}

/* ---- the failing allocator ---- */

static sqlite3_mem_methods fault_base;   /* SQLite's default, wrapped */
static struct {
  int armed;        /* counting allocations */
  int iFail;        /* the iFail-th allocation since arming fails... */
  int persist;      /* ...and, persistent, every one after it */
  int nCall;        /* allocations since arming */
  int nFail;        /* of which failed */
  long nLive;       /* blocks outstanding, armed or not */
} ft;

static int fault_now(void){
  int n;
  if( !__atomic_load_n(&ft.armed, __ATOMIC_SEQ_CST) ) return 0;
  n = __atomic_add_fetch(&ft.nCall, 1, __ATOMIC_SEQ_CST);
  if( n==ft.iFail || (ft.persist && n>ft.iFail) ){
    if( __atomic_add_fetch(&ft.nFail, 1, __ATOMIC_SEQ_CST)==1 && fault_trace ){
      fprintf(stderr, "-- allocation %d fails here:\n", n);
#ifdef FAULT_ASAN
      __sanitizer_print_stack_trace();
#endif
    }
    return 1;
  }
  return 0;
}
static void *fault_malloc(int n){
  void *p;
  if( fault_now() ) return 0;
  p = fault_base.xMalloc(n);
  if( p ) __atomic_add_fetch(&ft.nLive, 1, __ATOMIC_SEQ_CST);
  return p;
}
static void fault_free(void *p){
  if( p ) __atomic_sub_fetch(&ft.nLive, 1, __ATOMIC_SEQ_CST);
  fault_base.xFree(p);
}
static void *fault_realloc(void *p, int n){
  if( fault_now() ) return 0;
  return fault_base.xRealloc(p, n);
}
static int fault_size(void *p){ return fault_base.xSize(p); }
static int fault_roundup(int n){ return fault_base.xRoundup(n); }
static int fault_init(void *p){ return fault_base.xInit(p); }
static void fault_shutdown(void *p){ fault_base.xShutdown(p); }

static void fault_install(void){
  static sqlite3_mem_methods m = {
    fault_malloc, fault_free, fault_realloc, fault_size, fault_roundup,
    fault_init, fault_shutdown, 0
  };
  if( sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fault_base)!=SQLITE_OK
   || sqlite3_config(SQLITE_CONFIG_MALLOC, &m)!=SQLITE_OK
   || sqlite3_initialize()!=SQLITE_OK ){
    fprintf(stderr, "cannot install the failing allocator\n");
    exit(2);
  }
}

static void fault_arm(int iFail, int persist){
  ft.iFail = iFail;
  ft.persist = persist;
  ft.nCall = 0;
  ft.nFail = 0;
  __atomic_store_n(&ft.armed, 1, __ATOMIC_SEQ_CST);
}
static void fault_disarm(void){
  __atomic_store_n(&ft.armed, 0, __ATOMIC_SEQ_CST);
}

/* ---- running SQL without SQLite's allocator ----
** The runner's own text lives in malloc()'d memory, so that it neither
** counts nor fails. */

typedef struct outbuf { char *z; size_t n, nAlloc; } outbuf;
static void out_add(outbuf *o, const char *z, size_t n){
  if( o->n + n + 1 > o->nAlloc ){
    o->nAlloc = (o->n + n + 1)*2;
    o->z = realloc(o->z, o->nAlloc);
    if( !o->z ){ fprintf(stderr, "out of memory\n"); exit(2); }
  }
  memcpy(o->z + o->n, z, n);
  o->n += n;
  o->z[o->n] = 0;
}
static void out_str(outbuf *o, const char *z){ out_add(o, z, strlen(z)); }

/* Runs every statement of zSql, as check_query() does: the rows of the
** last statement that returned any, or "ERROR: message" (then *pRc is the
** extended error code, else SQLITE_OK). free() the result. */
static char *run_sql(sqlite3 *db, const char *zSql, int *pRc){
  outbuf o = {0, 0, 0};
  const char *zTail = zSql;
  int rc = SQLITE_OK;
  out_str(&o, "");
  while( zTail && *zTail ){
    sqlite3_stmt *st = 0;
    int nRow = 0;
    rc = sqlite3_prepare_v2(db, zTail, -1, &st, &zTail);
    if( rc!=SQLITE_OK ) break;
    if( st==0 ) continue;
    while( (rc = sqlite3_step(st))==SQLITE_ROW ){
      int i, n = sqlite3_column_count(st);
      if( nRow==0 ) o.n = 0;
      if( nRow++ ) out_str(&o, "\n");
      for(i=0; i<n; i++){
        const unsigned char *z;
        if( i ) out_str(&o, "|");
        if( sqlite3_column_type(st, i)==SQLITE_NULL ){ out_str(&o, "NULL"); continue; }
        z = sqlite3_column_text(st, i);
        if( z==0 ){ rc = SQLITE_NOMEM; break; }   /* the text conversion failed */
        out_str(&o, (const char*)z);
      }
      if( rc==SQLITE_NOMEM ) break;
    }
    if( fault_trace>1 ){
      fprintf(stderr, "-- step rc %d, autocommit %d\n", rc, sqlite3_get_autocommit(db));
    }
    if( rc==SQLITE_NOMEM ){
      sqlite3_finalize(st);
      break;
    }
    if( rc!=SQLITE_DONE ){
      sqlite3_finalize(st);
      break;
    }
    rc = sqlite3_finalize(st);
    if( rc!=SQLITE_OK ) break;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_DONE ){
    int ec = sqlite3_extended_errcode(db);
    const char *zMsg = sqlite3_errmsg(db);
    if( rc==SQLITE_NOMEM && ec==SQLITE_OK ){ ec = SQLITE_NOMEM; zMsg = "out of memory"; }
    o.n = 0;
    out_str(&o, "ERROR: ");
    out_str(&o, zMsg ? zMsg : "(null)");
    *pRc = ec ? ec : rc;
  }else{
    *pRc = SQLITE_OK;
  }
  return o.z;
}

/* ---- the data ---- */

#define ROWS 40
#define PIX  16

/* Table t(class, pixels): ROWS rows of PIX bytes, stripes by class, sparse. */
static void make_table(sqlite3 *db){
  sqlite3_stmt *st;
  unsigned char px[PIX];
  uint32_t s = 12345;
  int r, i;
  sqlite3_exec(db, "PRAGMA synchronous=OFF; BEGIN; "
                   "CREATE TABLE t(class INTEGER, pixels BLOB)", 0, 0, 0);
  sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1, ?2)", -1, &st, 0);
  for(r=0; r<ROWS; r++){
    int cls = r % 4;
    for(i=0; i<PIX; i++){
      int v = ((i + cls*PIX/4) % PIX) < PIX/4 ? 200 : 0;
      s = s*1103515245u + 12345u;
      v += (s>>16) % 40;
      if( (s>>8) % 3 == 0 ) v = 0;
      px[i] = (unsigned char)(v > 255 ? 255 : v);
    }
    sqlite3_bind_int(st, 1, cls);
    sqlite3_bind_blob(st, 2, px, PIX, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  sqlite3_exec(db, "COMMIT", 0, 0, 0);
}

/* Table c(a, b, c): ROWS rows of numbers, INTEGER, REAL with a NULL in
** every seventh row, and numeric TEXT: a source of numeric columns. */
static void make_columns(sqlite3 *db){
  sqlite3_exec(db, "PRAGMA synchronous=OFF; CREATE TABLE c(a, b, c);"
    "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n<40)"
    " INSERT INTO c SELECT n % 9, CASE WHEN n % 7 THEN (n % 5) * 1.5 END,"
    " printf('%.2f', (n % 9) * 0.5 + (n % 5)) FROM i", 0, 0, 0);
}

static void put_be32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)(v>>24); p[1] = (unsigned char)(v>>16);
  p[2] = (unsigned char)(v>>8); p[3] = (unsigned char)v;
}

/* Writes an IDX file (gzip-compressed when gz) of type eType with nDim
** dimensions aDim and nData bytes of (big-endian) data. */
static void write_idx(const char *zPath, int gz, int eType, int nDim,
                      const uint32_t *aDim, const unsigned char *aData,
                      size_t nData){
  unsigned char hdr[4 + 4*3];
  int i;
  hdr[0] = hdr[1] = 0; hdr[2] = (unsigned char)eType; hdr[3] = (unsigned char)nDim;
  for(i=0; i<nDim; i++) put_be32(hdr + 4 + 4*i, aDim[i]);
  if( gz ){
    gzFile f = gzopen(zPath, "wb");
    if( !f || gzwrite(f, hdr, 4 + 4*nDim)!=4 + 4*nDim
     || gzwrite(f, aData, (unsigned)nData)!=(int)nData || gzclose(f)!=Z_OK ){
      fprintf(stderr, "cannot write %s\n", zPath); exit(2);
    }
  }else{
    FILE *f = fopen(zPath, "wb");
    if( !f || fwrite(hdr, 1, 4 + 4*nDim, f)!=(size_t)(4 + 4*nDim)
     || fwrite(aData, 1, nData, f)!=nData || fclose(f)!=0 ){
      fprintf(stderr, "cannot write %s\n", zPath); exit(2);
    }
  }
}

#define IDX_N 30   /* items of the IDX files */

static char zImgU8[256], zImgU8gz[256], zImgF32[256], zImgF32gz[256];
static char zLab[256], zLabGz[256];

/* Images IDX_N x 4 x 4 u8, IDX_N x 5 f32 (values k/4 - 3), labels u8. */
static void make_idx_files(const char *zDir){
  unsigned char aU8[IDX_N*16], aF32[IDX_N*5*4], aLab[IDX_N];
  uint32_t d3[3] = {IDX_N, 4, 4}, d2[2] = {IDX_N, 5}, d1[1] = {IDX_N};
  int i;
  for(i=0; i<IDX_N*16; i++) aU8[i] = (unsigned char)((i*37) % 251);
  for(i=0; i<IDX_N*5; i++){
    float f = (float)(i % 23)/4.0f - 3.0f;
    uint32_t u;
    memcpy(&u, &f, 4);
    put_be32(aF32 + 4*i, u);
  }
  for(i=0; i<IDX_N; i++) aLab[i] = (unsigned char)(i % 10);
  snprintf(zImgU8, sizeof(zImgU8), "%s/img-u8.idx", zDir);
  snprintf(zImgU8gz, sizeof(zImgU8gz), "%s/img-u8.idx.gz", zDir);
  snprintf(zImgF32, sizeof(zImgF32), "%s/img-f32.idx", zDir);
  snprintf(zImgF32gz, sizeof(zImgF32gz), "%s/img-f32.idx.gz", zDir);
  snprintf(zLab, sizeof(zLab), "%s/lab.idx", zDir);
  snprintf(zLabGz, sizeof(zLabGz), "%s/lab.idx.gz", zDir);
  write_idx(zImgU8, 0, 0x08, 3, d3, aU8, sizeof(aU8));
  write_idx(zImgU8gz, 1, 0x08, 3, d3, aU8, sizeof(aU8));
  write_idx(zImgF32, 0, 0x0D, 2, d2, aF32, sizeof(aF32));
  write_idx(zImgF32gz, 1, 0x0D, 2, d2, aF32, sizeof(aF32));
  write_idx(zLab, 0, 0x08, 1, d1, aLab, sizeof(aLab));
  write_idx(zLabGz, 1, 0x08, 1, d1, aLab, sizeof(aLab));
}

/* ---- files ---- */

/* Copies zFrom to a new file zTo (a new file: ext4 flushes a file that is
** truncated and rewritten when it is closed, which would cost more than
** the rest of a run). */
static void copy_file(const char *zFrom, const char *zTo){
  static char buf[1<<16];
  FILE *a, *b;
  unlink(zTo);
  a = fopen(zFrom, "rb");
  b = fopen(zTo, "wb");
  size_t n;
  if( !a || !b ){ fprintf(stderr, "cannot copy %s to %s\n", zFrom, zTo); exit(2); }
  while( (n = fread(buf, 1, sizeof(buf), a))>0 ){
    if( fwrite(buf, 1, n, b)!=n ){ fprintf(stderr, "cannot write %s\n", zTo); exit(2); }
  }
  fclose(a);
  if( fclose(b)!=0 ){ fprintf(stderr, "cannot write %s\n", zTo); exit(2); }
}

static char zWork[256], zJournal[256];

/* A fresh copy of zTemplate at zWork, opened with libaesql and without
** lookaside. */
static sqlite3 *open_copy(const char *zTemplate){
  sqlite3 *db;
  copy_file(zTemplate, zWork);
  unlink(zJournal);
  db = check_open(zWork);
  sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, 0, 0, 0);
  /* No fsync: a rollback journal all the same, in a tenth of the time. */
  sqlite3_exec(db, "PRAGMA synchronous=OFF", 0, 0, 0);
  /* The schema read before the faults, as an application has it once it
  ** has run anything: the runs are then about libaesql's allocations, not
  ** SQLite's schema parser (a thousand allocations of each run). */
  sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", 0, 0, 0);
  return db;
}

/* ---- the operations ---- */

typedef struct fault_op {
  const char *zName;
  const char *zTemplate;   /* database file each run starts from */
  char *zSql;              /* run under faults (sqlite3_mprintf'd) */
  const char *zState;      /* what it may change, read afterwards */
  int multi;               /* several statements: a failure may leave the
                           ** state of a successful first one */
  int fails;               /* fails without faults too (with an error that
                           ** a run must then give exactly, or NOMEM) */
} fault_op;

/* What the operations may change: the models, their history, whether
** they score; the schema. Timings and dates left out (they vary). */
#define STATE_MODELS \
  "SELECT name, n_input, n_hidden, dtype, source, rows_train, rows_val, " \
  "epochs, loss, val_loss, json_remove(options, '$.threads'), hex(weights), " \
  "(SELECT group_concat(epoch || ':' || loss || ':' || ifnull(val_loss, '-'), ',') " \
  "  FROM ae_history h WHERE h.model = m.name), " \
  "(SELECT ae_error(m.name, pixels) FROM t WHERE rowid = 3) " \
  "FROM ae_models m ORDER BY name;" \
  "SELECT 'orphan history', count(*) FROM ae_history " \
  "WHERE model NOT IN (SELECT name FROM ae_models);"
/* The same for the models of numeric columns of table c. */
#define STATE_MODELS_C \
  "SELECT name, n_input, n_hidden, dtype, source, rows_train, rows_val, " \
  "epochs, loss, val_loss, json_remove(options, '$.threads'), hex(weights), features, " \
  "(SELECT group_concat(epoch || ':' || loss || ':' || ifnull(val_loss, '-'), ',') " \
  "  FROM ae_history h WHERE h.model = m.name), " \
  "(SELECT ae_error(m.name, a, b, c) FROM c WHERE rowid = 3) " \
  "FROM ae_models m ORDER BY name;" \
  "SELECT 'orphan history', count(*) FROM ae_history " \
  "WHERE model NOT IN (SELECT name FROM ae_models);"
#define STATE_SCHEMA \
  "SELECT group_concat(type || ' ' || name, ', ') FROM " \
  "(SELECT type, name FROM sqlite_schema ORDER BY name)"

/* The state text of an op: STATE_MODELS gives the last statement's rows
** only, so each part is read apart and joined. */
static char *read_state(sqlite3 *db, const char *zState){
  outbuf o = {0, 0, 0};
  const char *z = zState;
  out_str(&o, "");
  while( *z ){
    const char *zEnd = strchr(z, ';');
    size_t n = zEnd ? (size_t)(zEnd - z) : strlen(z);
    char *zOne = malloc(n + 1), *zGot;
    int rc;
    memcpy(zOne, z, n);
    zOne[n] = 0;
    zGot = run_sql(db, zOne, &rc);
    out_str(&o, zGot);
    out_str(&o, "\n--\n");
    free(zGot);
    free(zOne);
    z += n;
    if( *z==';' ) z++;
  }
  return o.z;
}

/* Reference of an op: its result and the states before and after, from a
** run without faults. */
typedef struct fault_ref {
  char *zResult, *zBefore, *zAfter;
  int rc;
  int nAlloc;               /* allocations of the run without faults */
} fault_ref;

static void op_reference(const fault_op *op, fault_ref *ref){
  sqlite3 *db = open_copy(op->zTemplate);
  int rc;
  ref->zBefore = read_state(db, op->zState);
  fault_arm(0x7fffffff, 0);           /* counts, fails nothing */
  ref->zResult = run_sql(db, op->zSql, &rc);
  fault_disarm();
  ref->nAlloc = ft.nCall;
  ref->rc = rc;
  ref->zAfter = read_state(db, op->zState);
  if( (rc!=SQLITE_OK)!=op->fails ){
    fprintf(stderr, "%s %s without faults: %s\n", op->zName,
            op->fails ? "succeeds" : "fails", ref->zResult);
    exit(2);
  }
  sqlite3_close(db);
}

/* Is the error an out-of-memory one? */
static int is_nomem(int rc, const char *zMsg){
  return (rc & 0xff)==SQLITE_NOMEM || strstr(zMsg, "out of memory")!=0;
}

#define MAX_N    20000   /* a run has no more allocations than this */
#ifndef FAULT_RUNS
# define FAULT_RUNS 150  /* runs per operation and mode, about, by default */
#endif
#define FAULT_EDGE 24    /* every N among the first and last FAULT_EDGE */
static int fault_full;   /* AESQL_FAULT_FULL: every N */

/* Bugs found by this test in files being rewritten by others, described
** in full in the report that came with this test: a failing run whose
** symptom starts with zWhy, in an operation whose name starts with zOp,
** is counted against the bug and does not fail the test, unless
** AESQL_FAULT_STRICT is set. Anything else fails it. Remove an entry once
** its bug is fixed (with AESQL_FAULT_FULL the test says when an entry
** matched nothing). */
static const struct known_bug {
  const char *zId, *zOp, *zWhy;
} aKnown[] = {
  /* None open: the store's three (a transaction left open after a failed
  ** allocation, the name copied after the commit, out of memory in the
  ** options read as bad JSON) are fixed. An entry keeps the array whole. */
  { "none", "", "\001" },
};
#define N_KNOWN ((int)(sizeof(aKnown)/sizeof(aKnown[0])))
static int aKnownSeen[N_KNOWN];
static int fault_strict;   /* AESQL_FAULT_STRICT: known bugs fail too */

static int known_bug(const char *zOp, const char *zWhy){
  int k;
  if( fault_strict ) return -1;
  for(k=0; k<N_KNOWN; k++){
    if( strncmp(zOp, aKnown[k].zOp, strlen(aKnown[k].zOp))==0
     && strncmp(zWhy, aKnown[k].zWhy, strlen(aKnown[k].zWhy))==0 ) return k;
  }
  return -1;
}

/* The failing runs of an operation, by symptom. */
#define MAX_KIND 24
typedef struct fault_bad {
  int n;                       /* symptoms of failing runs, known bugs left out */
  int nKnown;                  /* symptoms of a known bug */
  int nKind;
  struct { char zWhy[512]; int persist, n, iFirst, iLast, nCall, iKnown; } a[MAX_KIND];
} fault_bad;

static void bad_add(fault_bad *p, const char *zOp, const char *zWhy,
                    int persist, int iFail, int nCall){
  int k, iKnown = known_bug(zOp, zWhy);
  if( iKnown>=0 ){
    p->nKnown++;
    aKnownSeen[iKnown]++;
  }else{
    p->n++;
  }
  for(k=0; k<p->nKind; k++){
    if( p->a[k].persist==persist && strcmp(p->a[k].zWhy, zWhy)==0 ) break;
  }
  if( k==p->nKind ){
    if( k==MAX_KIND ) return;
    p->nKind++;
    snprintf(p->a[k].zWhy, sizeof(p->a[k].zWhy), "%s", zWhy);
    p->a[k].persist = persist;
    p->a[k].n = 0;
    p->a[k].iFirst = iFail;
    p->a[k].nCall = nCall;
    p->a[k].iKnown = iKnown;
  }
  p->a[k].n++;
  p->a[k].iLast = iFail;
}

static void bad_print(const fault_bad *p, const char *zOp){
  int k;
  for(k=0; k<p->nKind; k++){
    char zLast[32] = "";
    if( p->a[k].n>1 ) snprintf(zLast, sizeof(zLast), " .. %d", p->a[k].iLast);
    printf("# %s%s, %s: %d run(s), N=%d (of %d allocations)%s: %s\n",
           p->a[k].iKnown>=0 ? "known bug: " : "", zOp,
           p->a[k].persist ? "persistent" : "transient", p->a[k].n,
           p->a[k].iFirst, p->a[k].nCall, zLast, p->a[k].zWhy);
  }
}

/* AESQL_FAULT_TRACE: each statement as it starts, with the autocommit
** state, to stderr. */
static int trace_stmt(unsigned t, void *pCtx, void *pStmt, void *pX){
  (void)t; (void)pCtx;
  fprintf(stderr, "-- [autocommit %d, allocation %d] %.100s\n",
          sqlite3_get_autocommit(sqlite3_db_handle((sqlite3_stmt*)pStmt)),
          ft.nCall, (const char*)pX);
  return 0;
}

/* One run with the iFail-th allocation failing (and the later ones, with
** persist). Returns 1 if no allocation was failed (the loop is done),
** 0 otherwise; a failed check is added to *pBad. */
static int op_run(const fault_op *op, const fault_ref *ref, int iFail,
                  int persist, fault_bad *pBad){
  sqlite3 *db;
  long nLive0 = ft.nLive;
  char *zGot, *zState, zWhy[512];
  int rc, hit, nCall, inTxn;
/* Each check that fails adds its symptom: one run may show several. */
#define BAD(...) do{ snprintf(zWhy, sizeof(zWhy), __VA_ARGS__); \
    bad_add(pBad, op->zName, zWhy, persist, iFail, nCall); }while(0)

  db = open_copy(op->zTemplate);
  if( fault_trace>1 ) sqlite3_trace_v2(db, SQLITE_TRACE_STMT, trace_stmt, 0);
  fault_arm(iFail, persist);
  zGot = run_sql(db, op->zSql, &rc);
  fault_disarm();
  hit = ft.nFail>0;
  nCall = ft.nCall;
  if( fault_trace ){
    fprintf(stderr, "-- %d allocations, %d failed; result: %.200s\n", nCall,
            ft.nFail, zGot);
  }

  /* The result: the one of a run without faults, or out of memory. */
  if( op->fails && (strcmp(zGot, ref->zResult)==0
                    || (rc==ref->rc && strncmp(zGot, "ERROR: ", 7)==0
                        && strcmp(zGot+7, sqlite3_errstr(rc))==0)) ){
    /* the error it gives without faults; or its code with SQLite's own
    ** message for it, when SQLite had no memory to copy the message
    ** (sqlite3VdbeTransferError) */
  }else if( rc==SQLITE_OK && op->fails ){
    BAD("succeeded where it fails without faults: [%.200s]", zGot);
  }else if( rc==SQLITE_OK ){
    if( strcmp(zGot, ref->zResult)!=0 ){
      BAD("succeeded with another result: [%.200s]", zGot);
    }
  }else if( !hit ){
    BAD("failed with no fault injected: %.200s", zGot);
  }else if( !is_nomem(rc, zGot) ){
    BAD("wrong error (code %d): %.300s", rc, zGot);
  }

  /* The connection, the file, the state. */
  inTxn = !sqlite3_get_autocommit(db);
  if( inTxn ) BAD("left a transaction open (%s)", zGot);
  {
    int rc2;
    char *zIc = run_sql(db, "PRAGMA integrity_check", &rc2);
    if( strcmp(zIc, "ok")!=0 ) BAD("integrity_check: %.300s", zIc);
    free(zIc);
  }
  if( inTxn && fault_trace ){
    /* What an application's COMMIT would keep of it. */
    int rc2;
    char *zC = run_sql(db, "COMMIT", &rc2);
    char *zS = run_sql(db, "SELECT 'models', count(*), 'history', (SELECT "
                       "count(*) FROM ae_history) FROM ae_models", &rc2);
    fprintf(stderr, "-- COMMIT: %s; then %.600s\n", zC, zS);
    free(zC); free(zS);
  }
  zState = read_state(db, op->zState);
  if( !inTxn ){           /* else what is there is about to be rolled back */
    int isAfter = strcmp(zState, ref->zAfter)==0;
    int isBefore = strcmp(zState, ref->zBefore)==0;
    if( op->fails ){
      if( !isBefore ) BAD("changed the state: [%.300s]", zState);
    }else if( rc!=SQLITE_OK && isAfter && !isBefore && !op->multi ){
      BAD("failed (%s) but did its work: the state is that of a success", zGot);
    }else if( rc==SQLITE_OK ? !isAfter : !(isBefore || (op->multi && isAfter)) ){
      BAD("%s, and left neither the state before nor the state after: "
          "[%.300s]", rc==SQLITE_OK ? "succeeded" : "failed", zState);
    }
  }

  /* Nothing left behind. */
  if( sqlite3_close(db)!=SQLITE_OK ){
    BAD("the connection does not close: a statement is left behind (%s)", zGot);
    sqlite3_close_v2(db);
  }
  if( fault_trace ){
    fprintf(stderr, "-- blocks: %ld before, %ld after\n", nLive0, ft.nLive);
  }
  if( ft.nLive!=nLive0 ){
    BAD("leaked %ld block(s) of sqlite3_malloc (%s)", ft.nLive - nLive0, zGot);
  }
#undef BAD
  free(zGot);
  free(zState);
  return !hit;
}

/* AESQL_FAULT_ONLY="name:N:p" (or ":t"): that one run only. */
static int only_run(const char *zOnly, const fault_op *aOp, int nOp){
  const char *c1 = strrchr(zOnly, ':');
  const char *c0;
  int i;
  if( !c1 ) return 0;
  for(c0=c1-1; c0>zOnly && *c0!=':'; c0--){}
  for(i=0; i<nOp; i++){
    if( strlen(aOp[i].zName)==(size_t)(c0-zOnly)
     && strncmp(aOp[i].zName, zOnly, (size_t)(c0-zOnly))==0 ){
      fault_ref ref;
      static fault_bad bad;
      int n = atoi(c0+1);
      op_reference(&aOp[i], &ref);
      op_run(&aOp[i], &ref, n, c1[1]=='p', &bad);
      bad_print(&bad, aOp[i].zName);
      printf("%s run %s N=%d: %s\n", bad.n ? "not ok -" : "ok -", aOp[i].zName,
             n, bad.n ? "failed" : bad.nKnown ? "a known bug only" : "clean");
      free(ref.zResult); free(ref.zBefore); free(ref.zAfter);
      return 1;
    }
  }
  fprintf(stderr, "no operation named in AESQL_FAULT_ONLY=%s\n", zOnly);
  exit(2);
}

int main(void){
  const char *zDir;
  char zT0[256], zT1[256], zT2[256], zT3[256], zT4[256], zT5[256], zGone[256];
  sqlite3 *db;
  fault_op aOp[24];
  int nOp = 0, i;
  const char *zOnly = getenv("AESQL_FAULT_ONLY");

  fault_install();
  zDir = check_tmpdir();
  snprintf(zWork, sizeof(zWork), "%s/work.db", zDir);
  snprintf(zJournal, sizeof(zJournal), "%s/work.db-journal", zDir);
  make_idx_files(zDir);

  /* t0.db: the table alone. t1.db: the table and model m. t2.db: t1 and
  ** an idx table v on the plain files. */
  snprintf(zT0, sizeof(zT0), "%s/t0.db", zDir);
  snprintf(zT1, sizeof(zT1), "%s/t1.db", zDir);
  snprintf(zT2, sizeof(zT2), "%s/t2.db", zDir);
  db = check_open(zT0);
  make_table(db);
  sqlite3_close(db);
  copy_file(zT0, zT1);
  db = check_open(zT1);
  {
    char *z = check_query(db, "SELECT ae_train('t', 3, '{\"epochs\": 3, "
                          "\"seed\": 1, \"name\": \"m\", \"progress\": false}')");
    if( strcmp(z, "m")!=0 ){ fprintf(stderr, "cannot train m: %s\n", z); exit(2); }
    sqlite3_free(z);
  }
  sqlite3_close(db);
  copy_file(zT1, zT2);
  db = check_open(zT2);
  {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE v USING idx(images='%q', "
                                 "labels='%q')", zImgU8, zLab);
    char *zErr = 0;
    if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "cannot create v: %s\n", zErr); exit(2);
    }
    sqlite3_free(zSql);
  }
  sqlite3_close(db);
  /* t3.db: t1 and an idx table whose file is gone since. */
  snprintf(zT3, sizeof(zT3), "%s/t3.db", zDir);
  snprintf(zGone, sizeof(zGone), "%s/gone.idx", zDir);
  copy_file(zT1, zT3);
  copy_file(zImgU8, zGone);
  db = check_open(zT3);
  {
    char *zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE gone USING idx(images='%q')",
                                 zGone);
    char *zErr = 0;
    if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
      fprintf(stderr, "cannot create gone: %s\n", zErr); exit(2);
    }
    sqlite3_free(zSql);
  }
  sqlite3_close(db);
  unlink(zGone);
  /* t4.db: a table of numeric columns c. t5.db: t4 and a model of its
  ** columns mc (NULLs filled with the training mean). */
  snprintf(zT4, sizeof(zT4), "%s/t4.db", zDir);
  snprintf(zT5, sizeof(zT5), "%s/t5.db", zDir);
  db = check_open(zT4);
  make_columns(db);
  sqlite3_close(db);
  copy_file(zT4, zT5);
  db = check_open(zT5);
  {
    char *z = check_query(db, "SELECT ae_train('c', 2, '{\"epochs\": 3, \"seed\": 1, "
                          "\"name\": \"mc\", \"nulls\": \"mean\", \"progress\": false}')");
    if( strcmp(z, "mc")!=0 ){ fprintf(stderr, "cannot train mc: %s\n", z); exit(2); }
    sqlite3_free(z);
  }
  sqlite3_close(db);

#define OP(zN, zT, bMulti, zS, ...) do{ \
    aOp[nOp].zName = (zN); aOp[nOp].zTemplate = (zT); \
    aOp[nOp].multi = (bMulti); aOp[nOp].zState = (zS); \
    aOp[nOp].fails = strcmp((zT), zT3)==0; \
    aOp[nOp].zSql = sqlite3_mprintf(__VA_ARGS__); nOp++; }while(0)
#define TRAIN_OPTS(threads, extra) "'{\"epochs\": 2, \"seed\": 5, \"threads\": " \
    #threads ", \"progress\": false" extra "}'"

  OP("ae_train threads 1", zT0, 0, STATE_MODELS STATE_SCHEMA,
     "SELECT ae_train('t', 3, " TRAIN_OPTS(1, "") ")");
  OP("ae_train threads 2", zT0, 0, STATE_MODELS STATE_SCHEMA,
     "SELECT ae_train('t', 3, " TRAIN_OPTS(2, "") ")");
  OP("ae_train beside a model, threads 2", zT1, 0, STATE_MODELS STATE_SCHEMA,
     "SELECT ae_train('SELECT pixels FROM t WHERE class < 3', 3, "
     TRAIN_OPTS(2, ", \"name\": \"q\"") ")");
  OP("ae_train replace", zT1, 0, STATE_MODELS STATE_SCHEMA,
     "SELECT ae_train('t', 3, " TRAIN_OPTS(1, ", \"name\": \"m\", \"replace\": true") ")");
  OP("ae_error", zT1, 0, STATE_MODELS,
     "SELECT rowid, ae_error('m', pixels) FROM t WHERE rowid <= 5");
  OP("ae_reconstruct", zT1, 0, STATE_MODELS,
     "SELECT rowid, hex(ae_reconstruct('m', pixels)) FROM t WHERE rowid <= 5");
  OP("ae_encode", zT1, 0, STATE_MODELS,
     "SELECT rowid, hex(ae_encode('m', pixels)) FROM t WHERE rowid <= 5");
  OP("ae_png and ae_ascii", zT1, 0, STATE_SCHEMA,
     "SELECT hex(ae_png(pixels, 4, 4, 3)), ae_ascii(pixels, 4), "
     "hex(ae_png(ae_reconstruct('m', pixels))), "
     "hex(ae_png(zeroblob(16), 2, 2)) FROM t WHERE rowid <= 2");
  OP("ae_scores on a table", zT1, 0, STATE_MODELS,
     "SELECT key, error FROM ae_scores('m', 't')");
  OP("ae_scores on a query", zT1, 0, STATE_MODELS,
     "SELECT key, error FROM ae_scores('m', 'SELECT pixels FROM t WHERE class = 2')");
  OP("ae_train columns, nulls mean", zT4, 0, STATE_MODELS_C STATE_SCHEMA,
     "SELECT ae_train('c', 2, " TRAIN_OPTS(1, ", \"nulls\": \"mean\"") ")");
  OP("ae_train columns minmax, threads 2", zT5, 0, STATE_MODELS_C STATE_SCHEMA,
     "SELECT ae_train('SELECT a, c FROM c', 2, " TRAIN_OPTS(2, ", \"scale\": \"minmax\", "
     "\"name\": \"q\"") ")");
  OP("ae_error columns, by arguments and by vector", zT5, 0, STATE_MODELS_C,
     "SELECT rowid, ae_error('mc', a, b, c), ae_error('mc', ae_vector(a, 1, c)), "
     "ae_is_anomaly('mc', a, b, c, 0.5) FROM c WHERE rowid <= 8");
  OP("ae_reconstruct and ae_explain columns", zT5, 0, STATE_MODELS_C,
     "SELECT rowid, ae_reconstruct('mc', a, b, c), ae_explain('mc', a, b, c), "
     "hex(ae_encode('mc', a, b, c)) FROM c WHERE rowid <= 8");
  OP("ae_scores columns by name", zT5, 0, STATE_MODELS_C,
     "SELECT key, error FROM ae_scores('mc', 'SELECT c, rowid, b, a FROM c')");
  OP("idx u8 plain", zT1, 1, STATE_SCHEMA,
     "CREATE VIRTUAL TABLE w USING idx(images='%q', labels='%q');"
     "SELECT rowid, class, hex(pixels), height, width, dtype FROM w", zImgU8, zLab);
  OP("idx u8 gzip", zT1, 1, STATE_SCHEMA,
     "CREATE VIRTUAL TABLE w USING idx(images='%q', labels='%q');"
     "SELECT rowid, class, hex(pixels), height, width, dtype FROM w", zImgU8gz, zLabGz);
  OP("idx f32 plain", zT1, 1, STATE_SCHEMA,
     "CREATE VIRTUAL TABLE w USING idx(images='%q');"
     "SELECT rowid, class, hex(pixels) FROM w ORDER BY rowid DESC", zImgF32);
  OP("idx f32 gzip", zT1, 1, STATE_SCHEMA,
     "CREATE VIRTUAL TABLE w USING idx( images = \"%w\", labels = '%q' );"
     "SELECT rowid, class, hex(pixels) FROM w WHERE rowid BETWEEN 3 AND 7",
     zImgF32gz, zLabGz);
  OP("idx reconnect", zT2, 0, STATE_SCHEMA,
     "SELECT rowid, class, hex(pixels) FROM v WHERE rowid IN (1, 30) OR class = 4");
  OP("idx reconnect, file gone", zT3, 0, STATE_SCHEMA,
     "SELECT count(*) FROM gone");

  fault_strict = getenv("AESQL_FAULT_STRICT")!=0;
  fault_full = getenv("AESQL_FAULT_FULL")!=0;
  {
    const char *z = getenv("AESQL_FAULT_TRACE");
    fault_trace = z ? 1 + (strcmp(z, "sql")==0) : 0;
  }
  if( zOnly && zOnly[0] ){
    only_run(zOnly, aOp, nOp);
    for(i=0; i<nOp; i++) sqlite3_free(aOp[i].zSql);
    return check_done();
  }

  for(i=0; i<nOp; i++){
    const fault_op *op = &aOp[i];
    fault_ref ref;
    static fault_bad bad;
    int persist, n[2] = {0, 0}, nRun[2] = {0, 0}, st[2] = {1, 1}, done = 0;
    double t0 = now_s();
    op_reference(op, &ref);
    for(persist=0; persist<2; persist++){
      /* Every N at both ends, every step-th in between (every N with
      ** AESQL_FAULT_FULL), and every N around a run that fails. */
      const int nRef = ref.nAlloc, off = persist;
      const int nMid = nRef - 2*FAULT_EDGE;
      const int step = fault_full || nMid<=FAULT_RUNS ? 1
                     : (nMid + FAULT_RUNS - 1)/FAULT_RUNS;
      int iFail = 1, iDense = 0, j;
      while( iFail<=MAX_N ){
        int nBad0 = bad.n;
        done = op_run(op, &ref, iFail, persist, &bad);
        nRun[persist]++;
        if( done ) break;
        if( bad.n>nBad0 && step>1 && iDense<iFail ){
          for(j=iFail-step+1; j<iFail; j++){    /* the ones skipped before */
            if( j>0 && op_run(op, &ref, j, persist, &bad)==0 ) nRun[persist]++;
          }
          iDense = iFail + step;
        }
        if( iFail<FAULT_EDGE || iFail>=nRef-FAULT_EDGE || iFail<iDense ){
          iFail++;
        }else{
          iFail += step - (iFail + step - off) % step;   /* next = off mod step */
          if( iFail>nRef-FAULT_EDGE ) iFail = nRef-FAULT_EDGE;
        }
      }
      n[persist] = iFail;
      st[persist] = step;
      if( !done ){
        bad_add(&bad, op->zName, "still failing allocations at N=MAX_N",
                persist, iFail, 0);
      }
    }
#ifdef FAULT_ASAN
    if( __lsan_do_recoverable_leak_check() ){
      bad_add(&bad, op->zName, "LeakSanitizer found leaks (see its report "
              "above)", 1, 0, 0);
    }
#endif
    bad_print(&bad, op->zName);
    {
      char zLabel[320], zKnown[64] = "";
      if( bad.nKnown ){
        snprintf(zKnown, sizeof(zKnown), "; %d known-bug symptom(s)",
                 bad.nKnown);
      }
      char zT[64] = "", zP[64] = "";
      if( st[0]>1 ) snprintf(zT, sizeof(zT), " (1 in %d: %d runs)", st[0], nRun[0]);
      if( st[1]>1 ) snprintf(zP, sizeof(zP), " (1 in %d: %d runs)", st[1], nRun[1]);
      snprintf(zLabel, sizeof(zLabel), "fault: %s: N=1..%d transient%s, "
               "N=1..%d persistent%s, %.1f s%s", op->zName, n[0], zT, n[1], zP,
               now_s() - t0, zKnown);
      check_report(bad.n==0, zLabel, "%d symptom(s) of failing runs, described "
                   "above", bad.n);
    }
    memset(&bad, 0, sizeof(bad));
    free(ref.zResult); free(ref.zBefore); free(ref.zAfter);
  }
  for(i=0; i<N_KNOWN; i++){
    /* Only a run of every N can tell that a bug is gone. */
    if( fault_full && !fault_strict && aKnownSeen[i]==0 ){
      printf("# known bug no longer seen, remove its entry: %s [%s]\n",
             aKnown[i].zId, aKnown[i].zWhy);
    }
  }
  for(i=0; i<nOp; i++) sqlite3_free(aOp[i].zSql);
  return check_done();
}
