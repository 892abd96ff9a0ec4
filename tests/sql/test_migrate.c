/*
** A database made by the release before the layer stack
** (tests/fixtures/v1.db: version-1 weights, ae_models without layers,
** activations and best_epoch, ae_history without best) keeps working:
**  - its models load and score as that release scored them, within 1e-6
**    relative: the expected errors were computed on one machine (AVX2)
**    by that release's -O2 build, and the kernels picked for another CPU
**    (AVX-512's fused multiply-adds) or another build (ASan's -O1) round
**    the last bits differently; for the u8 model the rule that turns
**    bytes into floats changed too (b/255.0f now in scoring as in
**    training, where that release scored with b*(1/255f): the two differ
**    in float32 for 126 of the 256 byte values). Measured on the fixture's machine: f32
**    0 (-O2) and 8e-8 (ASan), u8 2.1e-7 (the byte rule) in both;
**  - ae_scores, the p-values of its stored calibration, ae_encode and
**    ae_reconstruct work on it;
**  - reading it changes nothing; the next ae_train migrates the tables in
**    place (the new columns, filled for the old models), in every kind of
**    transaction ae_train writes in, and a rolled-back training leaves
**    the old tables as they were;
**  - the old models score the same after the migration.
*/
#include "check_sql.h"

#include <errno.h>

static char zDir[256];

/* A copy of the fixture at zDir/zName. */
static void copy_fixture(const char *zName, char *zPath, size_t nPath){
  FILE *in = fopen("tests/fixtures/v1.db", "rb"), *out;
  char buf[8192];
  size_t n;
  snprintf(zPath, nPath, "%s/%s", zDir, zName);
  out = fopen(zPath, "wb");
  if( !in || !out ){
    fprintf(stderr, "cannot copy tests/fixtures/v1.db to %s: %s\n", zPath,
            strerror(errno));
    exit(2);
  }
  while( (n = fread(buf, 1, sizeof(buf), in))>0 ) fwrite(buf, 1, n, out);
  fclose(in);
  fclose(out);
}

static int has_column(sqlite3 *db, const char *zTab, const char *zCol){
  char *zSql = sqlite3_mprintf("SELECT count(*) FROM pragma_table_info(%Q) "
                               "WHERE name=%Q", zTab, zCol);
  double n = check_sql_double(db, zSql);
  sqlite3_free(zSql);
  return n>0;
}

/* The worst relative difference between ae_error (or ae_scores' error)
** and the errors the old release stored in `expected`, over model zModel's
** rows; -1 when a row is missing. */
static double worst_vs_expected(sqlite3 *db, const char *zModel,
                                const char *zTab, int viaScores){
  char *zSql = viaScores
    ? sqlite3_mprintf("SELECT e.error, s.error FROM expected e JOIN "
                      "ae_scores(%Q, %Q) s ON s.key = e.id WHERE e.model = %Q",
                      zModel, zTab, zModel)
    : sqlite3_mprintf("SELECT e.error, ae_error(%Q, r.pixels) FROM expected e "
                      "JOIN %s r ON r.id = e.id WHERE e.model = %Q",
                      zModel, zTab, zModel);
  sqlite3_stmt *st = 0;
  double worst = 0;
  int n = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &st, 0)!=SQLITE_OK ){
    printf("# %s\n", sqlite3_errmsg(db));
    sqlite3_free(zSql);
    return -1;
  }
  while( sqlite3_step(st)==SQLITE_ROW ){
    double want = sqlite3_column_double(st, 0), got = sqlite3_column_double(st, 1);
    double r = fabs(got - want)/(fabs(want)>1e-300 ? fabs(want) : 1);
    if( sqlite3_column_type(st, 1)!=SQLITE_FLOAT ) r = 1e9;
    if( r>worst ) worst = r;
    n++;
  }
  sqlite3_finalize(st);
  sqlite3_free(zSql);
  return n==200 ? worst : -1;
}

/* What the old models give, checked the same way before and after a
** migration. */
static void check_old_models(sqlite3 *db, const char *zWhen){
  char zName[200];
  double w;
  w = worst_vs_expected(db, "v1_f32", "f32rows", 0);
  snprintf(zName, sizeof(zName), "%s: the f32 model's ae_error is the old "
           "release's within 1e-6 relative (200 rows)", zWhen);
  check_report(w>=0 && w<=1e-6, zName, "worst relative difference %.3g", w);
  w = worst_vs_expected(db, "v1_f32", "f32rows", 1);
  snprintf(zName, sizeof(zName), "%s: ... and its ae_scores", zWhen);
  check_report(w>=0 && w<=1e-6, zName, "worst relative difference %.3g", w);
  w = worst_vs_expected(db, "v1_u8", "u8rows", 0);
  printf("# %s: u8 model, worst relative difference %.3g\n", zWhen, w);
  snprintf(zName, sizeof(zName), "%s: the u8 model's ae_error is the old "
           "release's within 1e-6 relative (the byte rule)", zWhen);
  check_report(w>=0 && w<=1e-6, zName, "worst relative difference %.3g", w);
  w = worst_vs_expected(db, "v1_u8", "u8rows", 1);
  snprintf(zName, sizeof(zName), "%s: ... and its ae_scores", zWhen);
  check_report(w>=0 && w<=1e-6, zName, "worst relative difference %.3g", w);
  snprintf(zName, sizeof(zName), "%s: the old models' calibration gives "
           "p-values and flags", zWhen);
  check_sql(zName, db,
    "SELECT count(*), min(pvalue)>0, max(pvalue)<=1, count(is_anomaly) "
    "FROM ae_scores('v1_u8', 'u8rows')", "200|1|1|200");
  snprintf(zName, sizeof(zName), "%s: ae_encode gives the 4-unit code, "
           "ae_reconstruct 16 bytes", zWhen);
  check_sql(zName, db,
    "SELECT length(ae_encode('v1_u8', pixels)), length(ae_reconstruct('v1_u8', "
    "pixels)), length(ae_reconstruct('v1_f32', (SELECT pixels FROM f32rows "
    "WHERE id=1))) FROM u8rows WHERE id=1", "16|16|64");
}

int main(void){
  char zPath[400];
  sqlite3 *db;
  char *z;
  snprintf(zDir, sizeof(zDir), "%s", check_tmpdir());

  /* ---- read as it is ---- */
  copy_fixture("read.db", zPath, sizeof(zPath));
  db = check_open(zPath);
  CHECK("the fixture has the old ae_models (no layers column)",
        !has_column(db, "ae_models", "layers") && has_column(db, "ae_models", "weights"));
  check_sql("its weights are format version 1", db,
    "SELECT group_concat(hex(substr(weights, 9, 4)), ',') FROM ae_models",
    "01000000,01000000");
  check_old_models(db, "before any training");
  CHECK("scoring does not migrate: still no layers column",
        !has_column(db, "ae_models", "layers") && !has_column(db, "ae_history", "best"));
  sqlite3_close(db);

  /* ---- the next ae_train migrates, in its own transaction ---- */
  db = check_open(zPath);
  check_sql("a new model trains into the old database", db,
    "SELECT ae_train('u8rows', '[8, 4]', '{\"epochs\": 2, \"seed\": 3, \"name\": \"new\"}')",
    "new");
  CHECK("ae_models gained layers, activations, best_epoch, features",
        has_column(db, "ae_models", "layers") && has_column(db, "ae_models", "activations")
        && has_column(db, "ae_models", "best_epoch") && has_column(db, "ae_models", "features"));
  check_sql("the old models are models of pixels: features NULL", db,
    "SELECT count(*) FROM ae_models WHERE features IS NULL", "3");
  CHECK("ae_history gained best", has_column(db, "ae_history", "best"));
  check_sql("the old models' architecture is filled in", db,
    "SELECT group_concat(name || ' ' || layers || ' ' || activations, '; ') FROM "
    "(SELECT * FROM ae_models ORDER BY name)",
    "new [16,8,4,8,16] [\"relu\",\"relu\",\"relu\",\"linear\"]; "
    "v1_f32 [16,4,16] [\"relu\",\"linear\"]; v1_u8 [16,4,16] [\"relu\",\"linear\"]");
  check_sql("the new model's history marks its best epoch; the old ones' have no mark",
    db, "SELECT group_concat(model || ':' || epoch || ':' || ifnull(best, 'NULL'), ',') "
    "FROM (SELECT * FROM ae_history ORDER BY model, epoch)",
    "new:1:0,new:2:1,v1_f32:1:NULL,v1_f32:2:NULL,v1_f32:3:NULL,"
    "v1_u8:1:NULL,v1_u8:2:NULL,v1_u8:3:NULL");
  check_old_models(db, "after the migration");
  check_sql("the new model is version 2 and scores", db,
    "SELECT hex(substr(weights, 9, 4)), (SELECT count(*) FROM ae_scores('new', "
    "'u8rows') WHERE error>0) FROM ae_models WHERE name='new'", "02000000|200");
  check_sql("a second training does not migrate again", db,
    "SELECT ae_train('u8rows', 4, '{\"epochs\": 1, \"seed\": 3, \"name\": \"new2\"}'),"
    " (SELECT count(*) FROM pragma_table_info('ae_models'))", "new2|18");
  sqlite3_close(db);

  /* ---- inside a transaction the caller rolls back ---- */
  copy_fixture("rollback.db", zPath, sizeof(zPath));
  db = check_open(zPath);
  sqlite3_exec(db, "BEGIN", 0, 0, 0);
  check_sql("a training inside the caller's transaction", db,
    "SELECT ae_train('u8rows', 4, '{\"epochs\": 1, \"seed\": 3, \"name\": \"t1\"}')", "t1");
  CHECK("... sees the migrated tables", has_column(db, "ae_models", "layers"));
  sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
  CHECK("the caller's rollback takes the migration with the model",
        !has_column(db, "ae_models", "layers") && !has_column(db, "ae_history", "best"));
  check_sql("... and nothing else changed", db,
    "SELECT count(*), group_concat(name) FROM ae_models", "2|v1_f32,v1_u8");
  check_old_models(db, "after a rolled-back migration");
  sqlite3_close(db);

  /* ---- inside a writing statement ---- */
  copy_fixture("statement.db", zPath, sizeof(zPath));
  db = check_open(zPath);
  check_sql("a training inside INSERT ... SELECT migrates too", db,
    "CREATE TABLE log(m TEXT);"
    "INSERT INTO log SELECT ae_train('u8rows', 4, '{\"epochs\": 1, \"seed\": 3, "
    "\"name\": \"s1\"}');"
    "SELECT (SELECT group_concat(m) FROM log), (SELECT layers FROM ae_models "
    "WHERE name='v1_u8')", "s1|[16,4,16]");
  check_old_models(db, "after a migration inside a statement");
  sqlite3_close(db);

  /* ---- a read-only copy is still read ---- */
  copy_fixture("ro.db", zPath, sizeof(zPath));
  z = sqlite3_mprintf("file:%s?mode=ro", zPath);
  {
    sqlite3 *ro = 0;
    if( sqlite3_open_v2(z, &ro, SQLITE_OPEN_READONLY|SQLITE_OPEN_URI, 0)==SQLITE_OK ){
      sqlite3_aesql_init(ro, 0, 0);
      check_old_models(ro, "read-only");
      check_sql_error("a read-only old database refuses a training before it "
                      "starts", ro,
                      "SELECT ae_train('u8rows', 4, '{\"epochs\": 1}')", "read");
    }else{
      CHECK("open the read-only copy", 0);
    }
    sqlite3_close(ro);
  }
  sqlite3_free(z);
  return check_done();
}
