/*
** Tests of how libaesql finds OpenBLAS (ext/ae_blas.c), each case in a
** process of its own, since OpenBLAS is loaded once per process:
**
**  1. on its own: libaesql loads OpenBLAS with the kernels the CPU allows
**     (SkylakeX for AVX-512, Haswell for AVX2) and leaves no trace of
**     OPENBLAS_CORETYPE in the environment;
**  2. OPENBLAS_CORETYPE set by the user: honoured, and left as it was;
**  3. a host that loaded OpenBLAS first (as Python with numpy does): that
**     instance is used as it is, its kernels and its thread count are
**     not changed, before, during or after training, and results are
**     the same as with libaesql's own instance.
**
**  0. ae_info() is registered with SQLITE_RESULT_SUBTYPE.
*/
#define _GNU_SOURCE                /* RTLD_NEXT */
#include "check.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* Every SQL function libaesql registers comes through here: the test
** program's own definition binds before libsqlite3's, which it calls. */
static int info_flags = -1;
int sqlite3_create_function(sqlite3 *db, const char *zName, int nArg,
                            int eTextRep, void *pApp,
                            void (*xFunc)(sqlite3_context*, int, sqlite3_value**),
                            void (*xStep)(sqlite3_context*, int, sqlite3_value**),
                            void (*xFinal)(sqlite3_context*)){
  static int (*real)(sqlite3*, const char*, int, int, void*,
                     void (*)(sqlite3_context*, int, sqlite3_value**),
                     void (*)(sqlite3_context*, int, sqlite3_value**),
                     void (*)(sqlite3_context*));
  if( real==0 ) *(void**)&real = dlsym(RTLD_NEXT, "sqlite3_create_function");
  if( real==0 ) return SQLITE_ERROR;
  if( zName && strcmp(zName, "ae_info")==0 ) info_flags = eTextRep;
  return real(db, zName, nArg, eTextRep, pApp, xFunc, xStep, xFinal);
}

/* SQLite 3.45's SQLITE_STRICT_SUBTYPE builds refuse a subtype ('J', JSON)
** from a function registered without SQLITE_RESULT_SUBTYPE; older ones
** ignore the flag, so the flag itself is what is checked. */
static void case_register(void){
  sqlite3 *db = check_open(0);
  check_report(info_flags==(SQLITE_UTF8|SQLITE_INNOCUOUS|0x001000000),
               "ae_info: registered UTF8|INNOCUOUS|RESULT_SUBTYPE",
               "flags 0x%x, want 0x%x", info_flags,
               SQLITE_UTF8|SQLITE_INNOCUOUS|0x001000000);
  if( sqlite3_compileoption_used("STRICT_SUBTYPE") ){
    check_sql("ae_info: its JSON subtype accepted by a strict-subtype SQLite",
              db, "SELECT ae_info() ->> '$.version'", AESQL_VERSION_STR);
  }else{
    printf("# SQLite %s without SQLITE_STRICT_SUBTYPE: the flag is what "
           "is checked\n", sqlite3_libversion());
  }
  sqlite3_close(db);
}

/* The core libaesql should ask for on this CPU (as ae_blas.c decides). */
static const char *expected_core(void){
  __builtin_cpu_init();
  if( __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
   && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") ){
    return "SkylakeX";
  }
  if( __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ){
    return "Haswell";
  }
  return 0;
}

/* Runs fn in a child process; its checks print their own lines. Returns
** the child's failures (1 if it crashed). */
static int in_child(void (*fn)(void)){
  pid_t pid;
  int status = 0;
  fflush(stdout);
  pid = fork();
  if( pid==0 ){
    fn();
    fflush(stdout);
    _exit(check_nfail ? 1 : 0);
  }
  if( pid<0 || waitpid(pid, &status, 0)!=pid ) return 1;
  return !(WIFEXITED(status) && WEXITSTATUS(status)==0);
}

static char *info(sqlite3 *db, const char *zKey){
  char *zSql = sqlite3_mprintf("SELECT json_extract(ae_info(), '$.%s')", zKey);
  char *z = check_query(db, zSql);
  sqlite3_free(zSql);
  return z;
}

/* Trains a 64-input, 8-unit model on 512 made-up byte rows for nEpoch
** epochs with two threads and a fixed seed; returns the sum of its errors
** on them, or -1. */
static double train_small(sqlite3 *db, int nEpoch){
  sqlite3_stmt *st = 0;
  unsigned char a[64];
  double sum = -1;
  int i, j;
  if( sqlite3_exec(db, "CREATE TABLE t(pixels BLOB)", 0, 0, 0)
   || sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1)", -1, &st, 0) ){
    return -1;
  }
  for(i=0; i<512; i++){
    for(j=0; j<64; j++) a[j] = (unsigned char)((i*7 + j*j*3 + (i*j)%13) & 0xff);
    sqlite3_bind_blob(st, 1, a, 64, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  char *zTrain = sqlite3_mprintf("SELECT ae_train('t', 8, '{\"epochs\": %d, "
      "\"seed\": 7, \"threads\": 2, \"batch_size\": 128}')", nEpoch);
  int rc = sqlite3_exec(db, zTrain, 0, 0, 0);
  sqlite3_free(zTrain);
  if( rc==SQLITE_OK
   && sqlite3_prepare_v2(db, "SELECT sum(ae_error('t_8', pixels)) FROM t",
                         -1, &st, 0)==SQLITE_OK
   && sqlite3_step(st)==SQLITE_ROW ){
    sum = sqlite3_column_double(st, 0);
  }else{
    printf("# train_small: %s\n", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return sum;
}

/* Where case_own leaves its result for case_host. */
static char *own_result_path(void){
  return sqlite3_mprintf("%s/own-result.txt", check_tmpdir());
}

static void case_own(void){
  sqlite3 *db = check_open(0);
  const char *zWant = expected_core();
  char *zCore = info(db, "blas_core");
  char *zWhy = info(db, "blas_core_chosen");
  if( zWant ){
    CHECK("own OpenBLAS: the kernels the CPU allows",
          zCore && strcmp(zCore, zWant)==0);
    CHECK("own OpenBLAS: ae_info says libaesql chose them",
          zWhy && strstr(zWhy, "chosen by libaesql")!=0);
  }else{
    CHECK("own OpenBLAS: OpenBLAS's own choice on this CPU",
          zWhy && strstr(zWhy, "OpenBLAS's own detection")!=0);
  }
  CHECK("own OpenBLAS: OPENBLAS_CORETYPE is not left in the environment",
        getenv("OPENBLAS_CORETYPE")==0);
  {
    double s = train_small(db, 5);
    char *zPath = own_result_path();
    FILE *f = fopen(zPath, "w");
    CHECK("own OpenBLAS: trains and scores", s>0 && f!=0);
    if( f ){ fprintf(f, "%.17g\n", s); fclose(f); }
    sqlite3_free(zPath);
  }
  sqlite3_free(zCore);
  sqlite3_free(zWhy);
  sqlite3_close(db);
}

static void case_env(void){
  sqlite3 *db;
  char *zCore, *zWhy;
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  db = check_open(0);
  zCore = info(db, "blas_core");
  zWhy = info(db, "blas_core_chosen");
  CHECK("OPENBLAS_CORETYPE set: honoured", zCore && strcmp(zCore, "Haswell")==0);
  CHECK("OPENBLAS_CORETYPE set: ae_info says so",
        zWhy && strstr(zWhy, "from the environment")!=0);
  CHECK("OPENBLAS_CORETYPE set: left as it was",
        getenv("OPENBLAS_CORETYPE") && strcmp(getenv("OPENBLAS_CORETYPE"), "Haswell")==0);
  sqlite3_free(zCore);
  sqlite3_free(zWhy);
  sqlite3_close(db);
}

/* A long training in its own thread and connection, while the caller
** watches the host's OpenBLAS thread count. */
static atomic_int watch_done;
static void *watch_train(void *arg){
  sqlite3 *db = check_open(0);
  *(double*)arg = train_small(db, 2000);
  sqlite3_close(db);
  atomic_store(&watch_done, 1);
  return 0;
}

static void case_host(void){
  sqlite3 *db;
  void *lib = dlopen("libopenblas.so.0", RTLD_NOW|RTLD_GLOBAL);
  char *(*corename)(void);
  void (*set_threads)(int);
  int (*get_threads)(void);
  char *zHostCore, *zCore, *zWhy, *zThreads;
  double own = -1, host;
  if( !lib ){
    CHECK("host: loads libopenblas.so.0", 0);
    return;
  }
  corename = (char*(*)(void))dlsym(lib, "openblas_get_corename");
  set_threads = (void(*)(int))dlsym(lib, "openblas_set_num_threads");
  get_threads = (int(*)(void))dlsym(lib, "openblas_get_num_threads");
  if( !corename || !set_threads || !get_threads ){
    CHECK("host: OpenBLAS's functions", 0);
    return;
  }
  zHostCore = sqlite3_mprintf("%s", corename());
  printf("# the host's OpenBLAS picked %s\n", zHostCore);
  set_threads(2);               /* the host's choice */
  db = check_open(0);
  zCore = info(db, "blas_core");
  zWhy = info(db, "blas_core_chosen");
  zThreads = info(db, "blas_threads");
  CHECK("host's OpenBLAS: used as it is (its kernels)",
        zCore && strcmp(zCore, zHostCore)==0);
  CHECK("host's OpenBLAS: ae_info says it was already loaded",
        zWhy && strstr(zWhy, "already loaded by the host process")!=0);
  CHECK("host's OpenBLAS: ae_info reports the host's thread count",
        zThreads && strcmp(zThreads, "2")==0);
  host = train_small(db, 5);
  CHECK("host's OpenBLAS: its thread count after training is its own",
        get_threads()==2);
  {
    pthread_t th;
    double s = -1;
    int nMin = 1000, nPoll = 0;
    if( pthread_create(&th, 0, watch_train, &s)==0 ){
      while( !atomic_load(&watch_done) ){
        int n = get_threads();
        if( n<nMin ) nMin = n;
        nPoll++;
        usleep(100);
      }
      pthread_join(th, 0);
    }
    printf("# %d looks at OpenBLAS's thread count during training: "
           "lowest %d\n", nPoll, nMin);
    CHECK("host's OpenBLAS: training never changes its thread count",
          s>0 && nPoll>=10 && nMin==2);
  }
  {
    char *zPath = own_result_path();
    FILE *f = fopen(zPath, "r");
    if( f ){ if( fscanf(f, "%lf", &own)!=1 ) own = -1; fclose(f); }
    unlink(zPath);
    sqlite3_free(zPath);
  }
  /* Other kernels may round differently: the same within 1e-4. */
  CHECK_NEAR("host's OpenBLAS: the same model as with libaesql's own",
             own>0 && host>0 ? host/own : -1.0, 1.0, 1e-4);
  sqlite3_free(zHostCore);
  sqlite3_free(zCore);
  sqlite3_free(zWhy);
  sqlite3_free(zThreads);
  sqlite3_close(db);
}

int main(void){
  int nFail = 0;
  const char *zDir = check_tmpdir();     /* made here, shared by the cases */
  unsetenv("OPENBLAS_CORETYPE");         /* case 1 needs it unset */
  nFail += in_child(case_register);
  nFail += in_child(case_own);
  nFail += in_child(case_env);
  nFail += in_child(case_host);
  CHECK("each case ran to its end in its own process", nFail==0);
  rmdir(zDir);
  return check_done();
}
