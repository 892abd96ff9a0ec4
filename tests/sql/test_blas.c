/*
** Tests of how libaesql finds OpenBLAS (ext/core/ae_blas.c), each case in a
** process of its own, since OpenBLAS is loaded once per process:
**
**  0. ae_info() is registered with SQLITE_RESULT_SUBTYPE;
**  1. on its own: libaesql loads a private OpenBLAS (its own link
**     namespace) with the kernels the CPU allows (SkylakeX for AVX-512,
**     Haswell for AVX2), one thread a call, and leaves no trace of
**     OPENBLAS_CORETYPE or OPENBLAS_NUM_THREADS in the environment;
**  2. OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS set by the user: honoured,
**     and left as they were;
**  3. a host that loaded OpenBLAS first (as Python with numpy does):
**     libaesql's instance is its own all the same; the host's kernels and
**     thread count are not changed, before, during or after training, and
**     the model is the one of case 1, bit for bit;
**  4. dlmopen() failing (no namespace left): the host's instance, used as
**     it is, or, with no host, our own in the process's namespace (then
**     the same model, bit for bit);
**  5. memory: what OpenBLAS maps for each thread calling it (measured),
**     and aesql_blas_reserve(): it maps that ahead, refuses what cannot
**     be mapped, and not what OpenBLAS holds already;
**  6. memory limits (RLIMIT_AS, not under ASan, whose shadow memory needs
**     terabytes of address space): a training and scoring at limits from
**     40 MB to 700 MB each end, within 60 s, in success or "out of memory"
**     (SQLITE_NOMEM), in a process that exits normally; a load of
**     OpenBLAS that failed for want of memory is tried again.
*/
#define _GNU_SOURCE                /* RTLD_NEXT, LM_ID_NEWLM, CPU_COUNT */
#include "check_sql.h"
#include "../../ext/core/ae_blas.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

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

/* OpenBLAS's count of CPUs (get_num_procs): the configured ones, or
** fewer when the affinity mask allows fewer. */
static int expected_procs(void){
  long n = sysconf(_SC_NPROCESSORS_CONF);
  cpu_set_t set;
  if( sched_getaffinity(0, sizeof(set), &set)==0 && CPU_COUNT(&set)>0
   && CPU_COUNT(&set)<n ){
    n = CPU_COUNT(&set);
  }
  return n>0 ? (int)n : 1;
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

/* ae_info()'s zKey is zWant. */
static void check_info(const char *zName, sqlite3 *db, const char *zKey,
                       const char *zWant){
  char *z = info(db, zKey);
  check_report(z && zWant && strcmp(z, zWant)==0, zName, "%s is '%s', want '%s'",
               zKey, z ? z : "(null)", zWant ? zWant : "(null)");
  sqlite3_free(z);
}

/* A model trained by train_small(): its weights in hex and the sum of its
** errors on its rows. */
typedef struct trained { char *zWeights; double sum; } trained;

/* Trains a d-input, h-unit model on 512 made-up byte rows for nEpoch
** epochs with two threads and a fixed seed. zWeights is NULL on failure.
** At d = 784 OpenBLAS's kernel families differ in the last bits (Zen's
** and Haswell's do here), at d = 64 they did not. */
static trained train_rows(sqlite3 *db, int d, int h, int nEpoch){
  trained r = { 0, -1 };
  sqlite3_stmt *st = 0;
  unsigned char a[784];
  char *zSql;
  int i, j, rc;
  if( d>784 || sqlite3_exec(db, "CREATE TABLE t(pixels BLOB)", 0, 0, 0)
   || sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?1)", -1, &st, 0) ){
    return r;
  }
  for(i=0; i<512; i++){
    for(j=0; j<d; j++) a[j] = (unsigned char)((i*7 + j*j*3 + (i*j)%13) & 0xff);
    sqlite3_bind_blob(st, 1, a, d, SQLITE_STATIC);
    sqlite3_step(st);
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  zSql = sqlite3_mprintf("SELECT ae_train('t', %d, '{\"epochs\": %d, "
      "\"seed\": 7, \"threads\": 2, \"batch_size\": 128, \"name\": \"m\"}')",
      h, nEpoch);
  rc = sqlite3_exec(db, zSql, 0, 0, 0);
  sqlite3_free(zSql);
  if( rc!=SQLITE_OK ){
    printf("# train_rows: %s\n", sqlite3_errmsg(db));
    return r;
  }
  r.sum = check_sql_double(db, "SELECT sum(ae_error('m', pixels)) FROM t");
  r.zWeights = check_query(db, "SELECT hex(weights) FROM ae_models WHERE name='m'");
  return r;
}
/* The model the cases compare: MNIST's shape, 784 -> 32 -> 784. */
static trained train_small(sqlite3 *db){
  return train_rows(db, 784, 32, 5);
}

/* Where case_own leaves its model for the others. */
static char *own_result_path(void){
  return sqlite3_mprintf("%s/own-result.txt", check_tmpdir());
}
static trained own_result(void){
  trained r = { 0, -1 };
  char *zPath = own_result_path(), *zLine = 0;
  size_t n = 0;
  FILE *f = fopen(zPath, "r");
  if( f ){
    if( fscanf(f, "%lf\n", &r.sum)!=1 ) r.sum = -1;
    if( getline(&zLine, &n, f)>0 ) r.zWeights = sqlite3_mprintf("%s", zLine);
    free(zLine);
    fclose(f);
  }
  sqlite3_free(zPath);
  return r;
}

/* The model m is case_own's, bit for bit. */
static void check_same_model(const char *zName, trained m){
  trained own = own_result();
  check_report(m.zWeights && own.zWeights && strcmp(m.zWeights, own.zWeights)==0,
               zName, "weights %s (%d hex digits), errors %.17g vs %.17g",
               !m.zWeights || !own.zWeights ? "missing" : "differ",
               m.zWeights ? (int)strlen(m.zWeights) : 0, m.sum, own.sum);
  sqlite3_free(own.zWeights);
}

static int has_env(const char *zPrefix){
  char **e;
  for(e=environ; *e; e++) if( strncmp(*e, zPrefix, strlen(zPrefix))==0 ) return 1;
  return 0;
}

static void case_own(void){
  char **env0 = environ;
  sqlite3 *db = check_open(0);
  const char *zWant = expected_core();
  char *zCore = info(db, "blas_core");
  char *zWhy = info(db, "blas_core_chosen");
  char zProcs[16];
  trained m;
  if( zWant ){
    CHECK("own OpenBLAS: the kernels the CPU allows",
          zCore && strcmp(zCore, zWant)==0);
    CHECK("own OpenBLAS: ae_info says libaesql chose them",
          zWhy && strstr(zWhy, "chosen by libaesql")!=0);
  }else{
    CHECK("own OpenBLAS: OpenBLAS's own choice on this CPU",
          zWhy && strstr(zWhy, "OpenBLAS's own detection")!=0);
  }
  check_info("own OpenBLAS: a private instance", db, "blas_instance", "private");
  check_info("own OpenBLAS: no host's OpenBLAS named", db, "blas_host", "NULL");
  check_info("own OpenBLAS: one thread a call", db, "blas_threads", "1");
  snprintf(zProcs, sizeof(zProcs), "%d", expected_procs());
  check_info("own OpenBLAS: libaesql's threads, OpenBLAS's default (the CPUs)",
             db, "threads", zProcs);
  CHECK("own OpenBLAS: OPENBLAS_CORETYPE is not left in the environment",
        getenv("OPENBLAS_CORETYPE")==0 && !has_env("OPENBLAS_CORETYPE="));
  CHECK("own OpenBLAS: nor OPENBLAS_NUM_THREADS",
        getenv("OPENBLAS_NUM_THREADS")==0 && !has_env("OPENBLAS_NUM_THREADS="));
  CHECK("own OpenBLAS: the process's environment is the one it had",
        environ==env0);
  m = train_small(db);
  {
    char *zPath = own_result_path();
    FILE *f = fopen(zPath, "w");
    CHECK("own OpenBLAS: trains and scores", m.sum>0 && m.zWeights && f!=0);
    if( f ){ fprintf(f, "%.17g\n%s", m.sum, m.zWeights ? m.zWeights : ""); fclose(f); }
    sqlite3_free(zPath);
  }
  sqlite3_free(m.zWeights);
  sqlite3_free(zCore);
  sqlite3_free(zWhy);
  sqlite3_close(db);
}

static void case_env(void){
  sqlite3 *db;
  setenv("OPENBLAS_CORETYPE", "Haswell", 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  db = check_open(0);
  check_info("OPENBLAS_CORETYPE set: honoured", db, "blas_core", "Haswell");
  check_info("OPENBLAS_CORETYPE set: ae_info says so", db, "blas_core_chosen",
             "OPENBLAS_CORETYPE from the environment");
  check_info("OPENBLAS_NUM_THREADS=1: libaesql's threads follow it", db,
             "threads", "1");
  CHECK("OPENBLAS_CORETYPE set: left as it was",
        getenv("OPENBLAS_CORETYPE") && strcmp(getenv("OPENBLAS_CORETYPE"), "Haswell")==0);
  CHECK("OPENBLAS_NUM_THREADS set: left as it was",
        getenv("OPENBLAS_NUM_THREADS") && strcmp(getenv("OPENBLAS_NUM_THREADS"), "1")==0);
  sqlite3_close(db);
}

/* The rule is OpenBLAS's: the first of OPENBLAS_NUM_THREADS,
** GOTO_NUM_THREADS, OMP_NUM_THREADS above 0, at most the CPUs. */
static void case_env_rule(void){
  sqlite3 *db;
  char zWant[16];
  setenv("GOTO_NUM_THREADS", "0", 1);
  setenv("OMP_NUM_THREADS", "1000", 1);
  db = check_open(0);
  snprintf(zWant, sizeof(zWant), "%d", expected_procs());
  check_info("GOTO_NUM_THREADS=0, OMP_NUM_THREADS=1000: the CPUs", db,
             "threads", zWant);
  aesql_blas_set_threads(0);             /* ignored: not 1 or more */
  check_info("aesql_blas_set_threads(0): ignored", db, "threads", zWant);
  aesql_blas_set_threads(3);
  check_info("aesql_blas_set_threads(3): libaesql's threads", db, "threads", "3");
  check_info("aesql_blas_set_threads(3): OpenBLAS still one thread a call", db,
             "blas_threads", "1");
  sqlite3_close(db);
}

/* OpenBLAS's functions in a library handle. */
typedef struct blas_fns {
  char *(*corename)(void);
  void (*set_threads)(int);
  int (*get_threads)(void);
} blas_fns;
static int blas_fns_get(void *lib, blas_fns *p){
  p->corename = (char*(*)(void))dlsym(lib, "openblas_get_corename");
  p->set_threads = (void(*)(int))dlsym(lib, "openblas_set_num_threads");
  p->get_threads = (int(*)(void))dlsym(lib, "openblas_get_num_threads");
  return p->corename && p->set_threads && p->get_threads;
}

/* A long training in its own thread and connection, while the caller
** watches the host's OpenBLAS thread count. */
static atomic_int watch_done;
static void *watch_train(void *arg){
  sqlite3 *db = check_open(0);
  trained m = train_rows(db, 64, 8, 2000);
  *(double*)arg = m.sum;
  sqlite3_free(m.zWeights);
  sqlite3_close(db);
  atomic_store(&watch_done, 1);
  return 0;
}
/* The host's thread count, nWant, is never anything else while a
** training runs, nor after. */
static void check_watch(const char *zName, blas_fns *host, int nWant){
  pthread_t th;
  double s = -1;
  int nMin = 1000, nMax = -1, nPoll = 0;
  atomic_store(&watch_done, 0);
  if( pthread_create(&th, 0, watch_train, &s)==0 ){
    while( !atomic_load(&watch_done) ){
      int n = host->get_threads();
      if( n<nMin ) nMin = n;
      if( n>nMax ) nMax = n;
      nPoll++;
      usleep(100);
    }
    pthread_join(th, 0);
  }
  printf("# %d looks at the host's OpenBLAS thread count during training: "
         "%d to %d\n", nPoll, nMin, nMax);
  check_report(s>0 && nPoll>=10 && nMin==nWant && nMax==nWant
               && host->get_threads()==nWant, zName,
               "trained %d, %d looks, %d to %d, after %d, want %d", s>0, nPoll,
               nMin, nMax, host->get_threads(), nWant);
}

/* The host loads libopenblas.so.0 as a program linked with it has it
** (global); numpy has it the same way through libblas.so.3. */
static void *host_load(blas_fns *p, char **pzCore){
  void *lib = dlopen("libopenblas.so.0", RTLD_NOW|RTLD_GLOBAL);
  if( !lib || !blas_fns_get(lib, p) ){
    CHECK("host: loads libopenblas.so.0 and finds its functions", 0);
    return 0;
  }
  *pzCore = sqlite3_mprintf("%s", p->corename());
  printf("# the host's OpenBLAS picked %s\n", *pzCore);
  p->set_threads(2);               /* the host's choice */
  return lib;
}

static void case_host(void){
  sqlite3 *db;
  blas_fns host;
  char *zHostCore = 0, *zHost, zProcs[16];
  const char *zWant = expected_core();
  trained m;
  if( !host_load(&host, &zHostCore) ) return;
  db = check_open(0);
  check_info("host's OpenBLAS loaded: libaesql's is private all the same", db,
             "blas_instance", "private");
  zHost = info(db, "blas_host");
  CHECK("host's OpenBLAS loaded: ae_info names it",
        zHost && strstr(zHost, "libopenblas")!=0);
  if( zWant ){
    check_info("host's OpenBLAS loaded: ours has the kernels the CPU allows",
               db, "blas_core", zWant);
  }
  check_info("host's OpenBLAS loaded: ours runs one thread a call", db,
             "blas_threads", "1");
  snprintf(zProcs, sizeof(zProcs), "%d", expected_procs());
  check_info("host's OpenBLAS loaded: libaesql's threads are not the host's",
             db, "threads", zProcs);
  m = train_small(db);
  check_same_model("host's OpenBLAS loaded: the model of a plain process, "
                   "bit for bit", m);
  CHECK("host's OpenBLAS: its kernels are its own",
        strcmp(host.corename(), zHostCore)==0);
  CHECK("host's OpenBLAS: its thread count after training is its own",
        host.get_threads()==2);
  check_watch("host's OpenBLAS: training never changes its thread count",
              &host, 2);
  sqlite3_free(m.zWeights);
  sqlite3_free(zHostCore);
  sqlite3_free(zHost);
  sqlite3_close(db);
}

#ifdef LM_ID_NEWLM
/* Takes every link namespace dlmopen() can give (each new one needs its
** own C library, in static TLS), so that libaesql's fails. */
static void use_up_namespaces(void){
  int i;
  for(i=0; i<64; i++){
    if( dlmopen(LM_ID_NEWLM, "libz.so.1", RTLD_NOW|RTLD_LOCAL)==0 ) break;
  }
  printf("# %d namespaces taken, then: %s\n", i, dlerror());
}

static void case_fallback_host(void){
  sqlite3 *db;
  blas_fns host;
  char *zHostCore = 0, *zHow;
  trained m, own;
  if( !host_load(&host, &zHostCore) ) return;
  use_up_namespaces();
  db = check_open(0);
  check_info("no namespace left: the host's OpenBLAS", db, "blas_instance", "host");
  zHow = info(db, "blas_instance_chosen");
  CHECK("no namespace left: ae_info says dlmopen failed, and why",
        zHow && strstr(zHow, "dlmopen failed (")!=0 && strstr(zHow, "TLS"));
  check_info("no namespace left: the host's kernels", db, "blas_core", zHostCore);
  check_info("no namespace left: the host's thread count", db, "blas_threads", "2");
  m = train_small(db);
  own = own_result();
  /* Other kernels may round differently: the same within 1e-4. */
  CHECK_NEAR("no namespace left: the host's OpenBLAS gives the same model",
             own.sum>0 && m.sum>0 ? m.sum/own.sum : -1.0, 1.0, 1e-4);
  printf("# with the host's OpenBLAS (%s kernels, 2 threads) the weights are "
         "%s a plain process's\n", zHostCore, m.zWeights && own.zWeights
         && strcmp(m.zWeights, own.zWeights)==0 ? "the same bits as" : "not bit for bit");
  check_watch("no namespace left: training never changes the host's thread count",
              &host, 2);
  sqlite3_free(own.zWeights);
  sqlite3_free(m.zWeights);
  sqlite3_free(zHostCore);
  sqlite3_free(zHow);
  sqlite3_close(db);
}

static void case_fallback_own(void){
  sqlite3 *db;
  trained m;
  use_up_namespaces();
  db = check_open(0);
  check_info("no namespace left, no host: our own in the process's namespace",
             db, "blas_instance", "process");
  check_info("no namespace left, no host: one thread a call", db,
             "blas_threads", "1");
  m = train_small(db);
  check_same_model("no namespace left, no host: the same model, bit for bit", m);
  sqlite3_free(m.zWeights);
  sqlite3_close(db);
}
#endif


/* Instances of OpenBLAS in the process: mappings of its file's start. */
static int blas_code_maps(void){
  FILE *f = fopen("/proc/self/maps", "r");
  char z[600];
  int n = 0;
  while( f && fgets(z, sizeof(z), f) ){
    char *zOff = strchr(z, ' ');
    if( zOff && strncmp(zOff+6, "00000000 ", 9)==0 && strstr(z, "libopenblas") ) n++;
  }
  if( f ) fclose(f);
  return n;
}

/* The loadable extension, ./libaesql.so, loaded and unloaded (SQLite
** unloads it with the last connection) again and again: one private
** OpenBLAS all along, not a new namespace each time. */
static void case_reload(void){
  int i, nPrivate = 0;
  if( access("libaesql.so", R_OK)!=0 ){
    CHECK("reload: ./libaesql.so is built (make)", 0);
    return;
  }
  for(i=0; i<15; i++){
    sqlite3 *db = 0;
    char *zErr = 0, *z;
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    if( sqlite3_load_extension(db, "./libaesql.so", 0, &zErr)!=SQLITE_OK ){
      check_report(0, "reload: .load ./libaesql.so", "%s", zErr ? zErr : "?");
      sqlite3_free(zErr);
      sqlite3_close(db);
      return;
    }
    z = check_query(db, "SELECT json_extract(ae_info(), '$.blas_instance')");
    nPrivate += z && strcmp(z, "private")==0;
    sqlite3_free(z);
    sqlite3_close(db);
  }
  check_report(nPrivate==15, "reload: 15 times loaded and unloaded, a private "
               "OpenBLAS each time", "%d of 15", nPrivate);
  check_report(blas_code_maps()==1, "reload: and the same one",
               "%d instances of OpenBLAS mapped", blas_code_maps());
}

/* ---- memory ---- */

/* Bytes of the process's mappings: all of them, or the anonymous
** read-write ones (OpenBLAS's buffers are of those). Read with read()
** into a static buffer, so that measuring allocates nothing. */
static char maps_buf[1<<20];
static long long maps_bytes(int bAnonRw){
  int fd = open("/proc/self/maps", O_RDONLY);
  long long n = 0;
  size_t k = 0;
  ssize_t r;
  char *z, *zEnd;
  if( fd<0 ) return -1;
  while( k<sizeof(maps_buf)-1 && (r = read(fd, maps_buf+k, sizeof(maps_buf)-1-k))>0 ){
    k += (size_t)r;
  }
  close(fd);
  maps_buf[k] = 0;
  for(z=maps_buf; *z; z=zEnd){
    unsigned long long a, b, off;
    unsigned long inode;
    char perm[8], dev[16];
    int pos = 0;
    zEnd = strchr(z, '\n');
    zEnd = zEnd ? zEnd+1 : z+strlen(z);
    if( sscanf(z, "%llx-%llx %7s %llx %15s %lu%n", &a, &b, perm, &off, dev,
               &inode, &pos)<6 || pos==0 ){
      continue;
    }
    while( z[pos]==' ' || z[pos]=='\t' ) pos++;
    if( bAnonRw && (inode!=0 || strcmp(perm, "rw-p")!=0
                    || (z[pos]!='\n' && z[pos]!=0)) ){
      continue;                    /* a file, [heap], [stack]... */
    }
    n += (long long)(b - a);
  }
  return n;
}

/* Whole buffers in d bytes of new mappings, or -1: d is k buffers and
** less than 4 MiB of other mappings (none in a plain build; ASan's
** allocator and thread bookkeeping make some). */
static long long buffers_in(long long d){
  long long B = (long long)aesql_blas_buffer_bytes(), k;
  if( d<0 || B<=0 ) return -1;
  k = d / B;
  return d - k*B < (4<<20) ? k : -1;
}

/* A product big enough for OpenBLAS's buffered path on every core. */
static float *mm_a, *mm_b, *mm_c;
static void mm_big(void){
  aesql_sgemm(0, 0, 200, 200, 200, 1.0f, mm_a, 200, mm_b, 200, 0.0f, mm_c, 200);
}

/* Threads that call OpenBLAS at the same time: each does 200 products
** between two barriers, the caller measures around them. */
static pthread_barrier_t mm_bar;
static void *mm_thread(void *arg){
  int i;
  (void)arg;
  pthread_barrier_wait(&mm_bar);
  for(i=0; i<200; i++) mm_big();
  pthread_barrier_wait(&mm_bar);
  pthread_barrier_wait(&mm_bar);   /* until the caller has measured */
  return 0;
}
/* Bytes of anonymous mappings made while nThread threads call OpenBLAS at
** once (their stacks made before). */
static long long mm_together(int nThread){
  pthread_t th[4];
  long long m0, m1;
  int i;
  if( nThread>4 ) return -1;
  pthread_barrier_init(&mm_bar, 0, nThread + 1);
  for(i=0; i<nThread; i++) pthread_create(&th[i], 0, mm_thread, 0);
  m0 = maps_bytes(1);
  pthread_barrier_wait(&mm_bar);
  pthread_barrier_wait(&mm_bar);
  m1 = maps_bytes(1);
  pthread_barrier_wait(&mm_bar);
  for(i=0; i<nThread; i++) pthread_join(th[i], 0);
  pthread_barrier_destroy(&mm_bar);
  return m1 - m0;
}
/* The same, one thread: its first product, then its second. */
static long long mm_first, mm_second;
static void *mm_once(void *arg){
  long long m0 = maps_bytes(1);
  (void)arg;
  mm_big();
  mm_first = maps_bytes(1) - m0;
  m0 = maps_bytes(1);
  mm_big();
  mm_second = maps_bytes(1) - m0;
  return 0;
}

static int mm_setup(void){
  const char *zWhy = 0;
  mm_a = calloc(200*200, sizeof(float));
  mm_b = calloc(200*200, sizeof(float));
  mm_c = calloc(200*200, sizeof(float));
  if( !mm_a || !mm_b || !mm_c || aesql_blas_load(&zWhy) ){
    check_report(0, "buffers: load OpenBLAS", "%s", zWhy ? zWhy : "no memory");
    return 1;
  }
  return 0;
}

/* Buffers as OpenBLAS maps them, without a reservation: one for a new
** thread's first product, none for its second, two for two threads at
** once. */
static void case_buffers_measured(void){
  long long B = (long long)aesql_blas_buffer_bytes(), d;
  pthread_t th;
  if( mm_setup() ) return;
  pthread_create(&th, 0, mm_once, 0);
  pthread_join(th, 0);
  printf("# a thread's first product mapped %lld bytes, its second %lld; "
         "aesql_blas_buffer_bytes() %lld\n", mm_first, mm_second, B);
  check_report(buffers_in(mm_first)==1, "buffers: a new thread's first sgemm "
               "maps aesql_blas_buffer_bytes()", "%lld, want %lld", mm_first, B);
  check_report(buffers_in(mm_second)==0, "buffers: its second maps nothing",
               "%lld", mm_second);
  pthread_create(&th, 0, mm_once, 0);
  pthread_join(th, 0);
  check_report(buffers_in(mm_first)==0, "buffers: another thread after it "
               "reuses that buffer", "%lld", mm_first);
  d = mm_together(3);
  /* How much the three overlap is the scheduler's to say on a busy
  ** machine: at least one more buffer, never more than two. */
  check_report(buffers_in(d)>=1 && buffers_in(d)<=2, "buffers: three threads at "
               "once map one or two more, no more", "%lld, want %lld or %lld", d, B, 2*B);
}

/* Sets the soft limit on address space to the process's size now plus
** nMore bytes; returns the old limit. */
static struct rlimit as_limit(long long nMore){
  struct rlimit old, r;
  getrlimit(RLIMIT_AS, &old);
  r = old;
  r.rlim_cur = (rlim_t)(maps_bytes(0) + nMore);
  setrlimit(RLIMIT_AS, &r);
  return old;
}

static void case_buffers_reserved(void){
  long long B = (long long)aesql_blas_buffer_bytes(), m0, d;
  int nThread;
  if( mm_setup() ) return;
  nThread = aesql_blas_threads();
  m0 = maps_bytes(1);
  CHECK("reserve: 2 threads", aesql_blas_reserve(2)==AESQL_BLAS_OK);
  d = maps_bytes(1) - m0;
  check_report(buffers_in(d)==2, "reserve: OpenBLAS maps their buffers there "
               "and then", "%lld, want %lld", d, 2*B);
  check_report(aesql_blas_threads()==1, "reserve: libaesql's threads are 1 "
               "while it is held", "%d", aesql_blas_threads());
  d = mm_together(2);
  check_report(buffers_in(d)==0, "reserve: then two threads at once map "
               "no buffer", "%lld", d);
  aesql_blas_release(2);
  check_report(aesql_blas_threads()==nThread, "reserve: released, libaesql's "
               "threads are back", "%d, want %d", aesql_blas_threads(), nThread);
  m0 = maps_bytes(1);
  CHECK("reserve: again, 2 threads", aesql_blas_reserve(2)==AESQL_BLAS_OK);
  d = maps_bytes(1) - m0;
  check_report(buffers_in(d)==0, "reserve: again, what OpenBLAS holds is used",
               "%lld", d);
  aesql_blas_release(2);
  if( getenv("AESQL_SANITIZE") ){
    CHECK("reserve under a limit (skipped: ASan cannot run under RLIMIT_AS)", 1);
    return;
  }
  {
    /* room for less than one more buffer */
    struct rlimit old = as_limit(B/2);
    int rc2 = aesql_blas_reserve(2), rc3;
    if( rc2==AESQL_BLAS_OK ) aesql_blas_release(2);
    rc3 = aesql_blas_reserve(3);
    if( rc3==AESQL_BLAS_OK ) aesql_blas_release(3);
    setrlimit(RLIMIT_AS, &old);
    check_report(rc2==AESQL_BLAS_OK, "reserve under a limit: what OpenBLAS "
                 "holds is not refused", "rc %d", rc2);
    check_report(rc3==AESQL_BLAS_NOMEM, "reserve under a limit: a buffer "
                 "that cannot be mapped is out of memory", "rc %d", rc3);
    check_report(aesql_blas_threads()==nThread, "reserve under a limit: "
                 "nothing left reserved", "%d", aesql_blas_threads());
  }
}

/* ---- memory limits ---- */

/* One step of a job: "ok", "out of memory" (SQLITE_NOMEM with that
** message, or an "out of memory" error of ours), or what went wrong. */
static void step_result(sqlite3 *db, int rc, char *zOut, size_t nOut){
  const char *zMsg = sqlite3_errmsg(db);
  if( rc==SQLITE_OK ) snprintf(zOut, nOut, "ok");
  else if( (sqlite3_errcode(db)==SQLITE_NOMEM || rc==SQLITE_NOMEM)
        && strstr(zMsg, "out of memory") ){
    snprintf(zOut, nOut, "out of memory");
  }else snprintf(zOut, nOut, "error %d: %s", rc, zMsg);
}

static int exec_rows(sqlite3 *db, const char *zSql){
  sqlite3_stmt *st = 0;
  int rc = sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  if( rc==SQLITE_OK ){
    while( (rc = sqlite3_step(st))==SQLITE_ROW ){}
    if( rc==SQLITE_DONE ) rc = SQLITE_OK;
  }
  sqlite3_finalize(st);
  return rc;
}

/* In a child: under a limit of nMB MB of address space, make a table of
** 3000 rows of 784 random bytes, train on it with two threads, score it with
** ae_error and ae_scores; write "train=...;score=..." to fd. */
static void limited_job(int nMB, int fd){
  struct rlimit r;
  sqlite3 *db = 0;
  char zTrain[200] = "not run", zScore[200] = "not run", zOut[450];
  int rc;
  r.rlim_cur = r.rlim_max = (rlim_t)nMB << 20;
  setrlimit(RLIMIT_AS, &r);
  rc = sqlite3_open(":memory:", &db);
  if( rc==SQLITE_OK ) rc = sqlite3_aesql_init(db, 0, 0);
  if( rc==SQLITE_OK ){
    rc = exec_rows(db, "CREATE TABLE t(pixels BLOB)");
    if( rc==SQLITE_OK ){
      rc = exec_rows(db, "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i+1 "
          "FROM r WHERE i<2999) INSERT INTO t SELECT randomblob(784) FROM r");
    }
    if( rc!=SQLITE_OK ){
      step_result(db, rc, zTrain, sizeof(zTrain));
      memmove(zTrain+7, zTrain, strlen(zTrain)+1);
      memcpy(zTrain, "setup: ", 7);
    }
  }else{
    snprintf(zTrain, sizeof(zTrain), "setup: %s", rc==SQLITE_NOMEM
             ? "out of memory" : sqlite3_errstr(rc));
  }
  if( rc==SQLITE_OK ){
    rc = exec_rows(db, "SELECT ae_train('t', 32, '{\"epochs\": 2, \"seed\": 1, "
                   "\"threads\": 2, \"name\": \"m\"}')");
    step_result(db, rc, zTrain, sizeof(zTrain));
    if( rc==SQLITE_OK ){
      rc = exec_rows(db, "SELECT sum(ae_error('m', pixels)) FROM t");
      if( rc==SQLITE_OK ){
        rc = exec_rows(db, "SELECT count(*), sum(error) FROM ae_scores('m', 't')");
      }
      step_result(db, rc, zScore, sizeof(zScore));
    }
  }
  sqlite3_close(db);
  snprintf(zOut, sizeof(zOut), "train=%s;score=%s", zTrain, zScore);
  if( write(fd, zOut, strlen(zOut))<0 ){ /* the parent sees nothing */ }
}

/* Runs limited_job(nMB) in a child; kills it after nSec seconds. Returns
** 0 when it exited normally (zOut has its result), 1 when it was killed,
** 2 when it died otherwise. */
static int run_limited(int nMB, int nSec, char *zOut, size_t nOut, double *pSec){
  int fds[2], status = 0, rc = 2;
  size_t k = 0;
  struct timespec t0, t1;
  pid_t pid;
  if( pipe(fds) ) return 2;
  fflush(stdout);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid = fork();
  if( pid==0 ){
    close(fds[0]);
    limited_job(nMB, fds[1]);
    _exit(0);
  }
  close(fds[1]);
  zOut[0] = 0;
  for(;;){
    struct pollfd p = { fds[0], POLLIN, 0 };
    double dt;
    int n;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec)*1e-9;
    if( dt>nSec ){ kill(pid, SIGKILL); waitpid(pid, &status, 0); rc = 1; break; }
    n = poll(&p, 1, 100);
    if( n>0 ){
      ssize_t r = read(fds[0], zOut+k, nOut-1-k);
      if( r>0 ){ k += (size_t)r; zOut[k] = 0; continue; }
      /* end of file: the child is ending */
      waitpid(pid, &status, 0);
      rc = WIFEXITED(status) && WEXITSTATUS(status)==0 ? 0 : 2;
      break;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  *pSec = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec)*1e-9;
  close(fds[0]);
  return rc;
}

static void case_limits(void){
  static const int aMB[] = { 40, 80, 150, 250, 350, 500, 700 };
  int i, nOk = 0, nNomem = 0;
  if( getenv("AESQL_SANITIZE") ){
    CHECK("memory limits (skipped: ASan cannot run under RLIMIT_AS)", 1);
    return;
  }
  for(i=0; i<(int)(sizeof(aMB)/sizeof(aMB[0])); i++){
    char zOut[500], zName[120];
    double sec = 0;
    int rc = run_limited(aMB[i], 60, zOut, sizeof(zOut), &sec);
    const char *zTrain = strstr(zOut, "train="), *zScore = strstr(zOut, ";score=");
    int trainOk = zTrain && strncmp(zTrain+6, "ok;", 3)==0;
    int trainNomem = zTrain && (strncmp(zTrain+6, "out of memory;", 14)==0
                                || strncmp(zTrain+6, "setup: out of memory;", 21)==0);
    int scoreOk = zScore && (strcmp(zScore+7, "ok")==0
                             || strcmp(zScore+7, "out of memory")==0
                             || (!trainOk && strcmp(zScore+7, "not run")==0));
    printf("# %d MB: %s in %.1f s: %s\n", aMB[i], rc==0 ? "exited" : rc==1
           ? "KILLED" : "DIED", sec, zOut);
    snprintf(zName, sizeof(zName), "memory limit %d MB: ends within 60 s, "
             "exits normally", aMB[i]);
    check_report(rc==0, zName, "%s after %.1f s", rc==1 ? "killed" : "died", sec);
    snprintf(zName, sizeof(zName), "memory limit %d MB: trains or says "
             "\"out of memory\" (SQLITE_NOMEM), and scores or says so", aMB[i]);
    check_report(rc==0 && (trainOk || trainNomem) && scoreOk, zName, "%s", zOut);
    nOk += trainOk;
    nNomem += trainNomem && strncmp(zTrain+6, "setup", 5)!=0;
  }
  check_report(nOk>0 && nNomem>0, "memory limits: some trained, some were "
               "refused (out of memory)", "%d trained, %d refused", nOk, nNomem);
}

/* Scoring a trained model with little room left: ae_error and ae_scores
** (whose workers want stacks and 8 MB blocks) each end in a result or
** "out of memory", never a hang. */
static void case_score_limits(void){
  static const int aKB[] = { 0, 256, 1024, 4096, 16384, 65536 };
  sqlite3 *db;
  int i, nOk = 0;
  if( getenv("AESQL_SANITIZE") ){
    CHECK("scoring under a limit (skipped: ASan cannot run under RLIMIT_AS)", 1);
    return;
  }
  db = check_open(0);
  if( exec_rows(db, "CREATE TABLE t(pixels BLOB)")
   || exec_rows(db, "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i+1 "
          "FROM r WHERE i<9999) INSERT INTO t SELECT randomblob(784) FROM r")
   || exec_rows(db, "SELECT ae_train('t', 32, '{\"epochs\": 1, \"name\": \"m\"}')") ){
    check_report(0, "scoring under a limit: a model to score", "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    return;
  }
  for(i=0; i<(int)(sizeof(aKB)/sizeof(aKB[0])); i++){
    char zName[120], zErr[200], zScores[200];
    struct rlimit old = as_limit((long long)aKB[i] << 10);
    int rc1 = exec_rows(db, "SELECT sum(ae_error('m', pixels)) FROM t"), rc2;
    step_result(db, rc1, zErr, sizeof(zErr));
    rc2 = exec_rows(db, "SELECT count(*), sum(error) FROM ae_scores('m', 't')");
    step_result(db, rc2, zScores, sizeof(zScores));
    setrlimit(RLIMIT_AS, &old);
    printf("# %d KB of room: ae_error %s, ae_scores %s\n", aKB[i], zErr, zScores);
    snprintf(zName, sizeof(zName), "scoring with %d KB of room: a result or "
             "\"out of memory\" (SQLITE_NOMEM)", aKB[i]);
    check_report((rc1==SQLITE_OK || strcmp(zErr, "out of memory")==0)
                 && (rc2==SQLITE_OK || strcmp(zScores, "out of memory")==0),
                 zName, "ae_error: %s; ae_scores: %s", zErr, zScores);
    nOk += rc1==SQLITE_OK && rc2==SQLITE_OK;
  }
  CHECK("scoring under a limit: the last ones score", nOk>0);
  sqlite3_close(db);
}

/* A load of OpenBLAS that failed for want of memory is tried again. */
static void case_load_retry(void){
  sqlite3 *db;
  struct rlimit old;
  const char *zWhy = 0;
  char *zErr = 0;
  int rc1, rc2;
  if( getenv("AESQL_SANITIZE") ){
    CHECK("load under a limit (skipped: ASan cannot run under RLIMIT_AS)", 1);
    return;
  }
  db = check_open(0);
  sqlite3_exec(db, "CREATE TABLE t(pixels BLOB); WITH RECURSIVE r(i) AS "
               "(SELECT 0 UNION ALL SELECT i+1 FROM r WHERE i<9) "
               "INSERT INTO t SELECT randomblob(64) FROM r", 0, 0, 0);
  old = as_limit(8<<20);               /* too little for OpenBLAS */
  rc1 = aesql_blas_load(&zWhy);
  check_report(rc1==AESQL_BLAS_NOMEM && zWhy && strcmp(zWhy, "out of memory")==0,
               "load under a limit: out of memory", "rc %d, %s", rc1,
               zWhy ? zWhy : "(null)");
  check_info("load under a limit: ae_info says out of memory", db,
             "blas_error", "out of memory");
  rc2 = sqlite3_exec(db, "SELECT ae_train('t', 4, '{\"epochs\": 1}')", 0, 0, &zErr);
  check_report(rc2==SQLITE_NOMEM && zErr && strstr(zErr, "out of memory"),
               "load under a limit: ae_train fails with out of memory (SQLITE_NOMEM)",
               "rc %d, %s", rc2, zErr ? zErr : "(null)");
  sqlite3_free(zErr);
  zErr = 0;
  setrlimit(RLIMIT_AS, &old);
  check_report(aesql_blas_load(&zWhy)==AESQL_BLAS_OK, "load: tried again once "
               "there is room, it loads", "%s", zWhy ? zWhy : "");
  check_info("load: then ae_info has OpenBLAS", db, "blas", "OpenBLAS");
  rc2 = sqlite3_exec(db, "SELECT ae_train('t', 4, '{\"epochs\": 1}')", 0, 0, &zErr);
  check_report(rc2==SQLITE_OK, "load: then ae_train trains", "%s", zErr ? zErr : "");
  sqlite3_free(zErr);
  sqlite3_close(db);
}

int main(void){
  int nFail = 0;
  const char *zDir = check_tmpdir();     /* made here, shared by the cases */
  /* case 1 needs them unset: OpenBLAS's defaults */
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv("OPENBLAS_NUM_THREADS");
  unsetenv("GOTO_NUM_THREADS");
  unsetenv("OMP_NUM_THREADS");
  nFail += in_child(case_register);
  nFail += in_child(case_own);
  nFail += in_child(case_env);
  nFail += in_child(case_env_rule);
  nFail += in_child(case_host);
#ifdef LM_ID_NEWLM
  nFail += in_child(case_fallback_host);
  nFail += in_child(case_fallback_own);
#endif
  nFail += in_child(case_reload);
  nFail += in_child(case_buffers_measured);
  nFail += in_child(case_buffers_reserved);
  nFail += in_child(case_load_retry);
  nFail += in_child(case_limits);
  nFail += in_child(case_score_limits);
  CHECK("each case ran to its end in its own process", nFail==0);
  {
    char *zPath = own_result_path();
    unlink(zPath);
    sqlite3_free(zPath);
  }
  rmdir(zDir);
  return check_done();
}
