/*
** Training and scoring through SQL: ae_train, ae_error, ae_reconstruct,
** ae_encode, ae_scores; the stored model; every bad argument; all or
** nothing on errors and interrupts. Small synthetic data sets only; the
** acceptance run on real MNIST is in test_mnist.c.
*/
#include "check_sql.h"
#include "../../ext/sql/ae_model.h"
#include "../../ext/sql/ae_score.h"
#include "../../ext/core/ae_blas.h"
#include <pthread.h>

static char *weights_hex(sqlite3 *db, const char *zName){
  char *zSql = sqlite3_mprintf("SELECT hex(weights) FROM ae_models WHERE name=%Q", zName);
  char *z = check_query(db, zSql);
  sqlite3_free(zSql);
  return z;
}

/* Loads model zName and returns the max |a-b|/max(1,|b|) between ae_error
** over every row of table t and the naive forward pass of the model. */
static double naive_vs_sql(sqlite3 *db, const char *zName, int d){
  aesql_model *m = 0;
  char *zErr = 0;
  sqlite3_stmt *st;
  double worst = 0;
  float *x = malloc(sizeof(float)*d), *y = malloc(sizeof(float)*d);
  if( aesql_model_load(db, zName, &m, &zErr) ){ sqlite3_free(zErr); return 1e9; }
  sqlite3_prepare_v2(db, "SELECT pixels, ae_error(?1, pixels) FROM t", -1, &st, 0);
  sqlite3_bind_text(st, 1, zName, -1, SQLITE_STATIC);
  while( sqlite3_step(st)==SQLITE_ROW ){
    const unsigned char *p = sqlite3_column_blob(st, 0);
    double want = 0, got = sqlite3_column_double(st, 1), r;
    int i;
    for(i=0; i<d; i++) x[i] = (float)(p[i]/255.0);
    aesql_net_forward_naive(&m->net, x, 1, y);
    for(i=0; i<d; i++) want += ((double)y[i]-x[i])*((double)y[i]-x[i]);
    r = fabs(got-want)/(want>1 ? want : 1);
    if( r>worst ) worst = r;
  }
  sqlite3_finalize(st);
  aesql_model_free(m);
  free(x); free(y);
  return worst;
}

int main(void){
  sqlite3 *db = check_open(0);
  char *z1, *z2;
  double t0;

  check_make_table(db, "t", 500, 64);

  /* ---- a first model ---- */
  check_sql("train returns the default name", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 5, \"seed\": 7, \"batch_size\": 32}')",
    "t_8");
  check_sql("ae_models row", db,
    "SELECT name, n_input, n_hidden, dtype, source, rows_train, rows_val, epochs, "
    "length(weights), json_extract(options,'$.seed'), json_extract(options,'$.batch_size'), "
    "loss>0, val_loss>0, train_seconds>0, created LIKE '20__-__-__ __:__:__' FROM ae_models",
    "t_8|64|8|u8|t|400|100|5|4448|7|32|1|1|1|1");
  check_sql("history has one row per epoch", db,
    "SELECT count(*), min(epoch), max(epoch), sum(seconds>0) FROM ae_history WHERE model='t_8'",
    "5|1|5|5");
  check_sql("loss decreases", db,
    "SELECT (SELECT loss FROM ae_history WHERE epoch=5) < (SELECT loss FROM ae_history WHERE epoch=1)",
    "1");
  check_sql("final loss stored equals last epoch", db,
    "SELECT m.loss = h.loss AND m.val_loss = h.val_loss FROM ae_models m "
    "JOIN ae_history h ON h.model=m.name AND h.epoch=m.epochs", "1");
  /* Keras split: val_loss is the mean per-pixel squared error over the last
  ** 20% of rows, which ae_error computes per row (as a sum over 64 pixels). */
  t0 = check_sql_double(db,
    "SELECT (SELECT avg(ae_error('t_8', pixels))/64 FROM t WHERE rowid>400) "
    "/ (SELECT val_loss FROM ae_models WHERE name='t_8')");
  CHECK_NEAR("val_loss equals ae_error over the last 20% of rows", t0, 1.0, 1e-5);
  CHECK("ae_error matches the naive forward pass", naive_vs_sql(db, "t_8", 64) < 1e-5);

  /* ---- determinism ---- */
  check_sql("same seed, second model", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 5, \"seed\": 7, \"batch_size\": 32, \"name\": \"again\"}')",
    "again");
  z1 = weights_hex(db, "t_8"); z2 = weights_hex(db, "again");
  CHECK("same seed gives bit-identical weights", z1 && z2 && strcmp(z1, z2)==0 && strlen(z1)>1000);
  sqlite3_free(z1); sqlite3_free(z2);
  check_sql("another seed, another model", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 1, \"seed\": 8, \"name\": \"other\"}');"
    "SELECT (SELECT weights FROM ae_models WHERE name='other') <> "
    "(SELECT weights FROM ae_models WHERE name='again')", "1");

  /* ---- adam: where epsilon goes (ae_adam.h) ---- */
  check_sql("adam keras is the default, and stored", db,
    "SELECT json_extract(options, '$.adam') FROM ae_models WHERE name='t_8'", "keras");
  check_sql("adam torch trains, and is stored", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 5, \"seed\": 7, \"batch_size\": 32, "
    "\"adam\": \"torch\", \"name\": \"adam_torch\"}');"
    "SELECT json_extract(options, '$.adam'), loss < (SELECT loss FROM ae_history "
    "WHERE model='adam_torch' AND epoch=1) FROM ae_models WHERE name='adam_torch'",
    "torch|1");
  check_sql("adam keras given: the default's model, bit for bit", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 5, \"seed\": 7, \"batch_size\": 32, "
    "\"adam\": \"keras\", \"name\": \"adam_keras\"}');"
    "SELECT (SELECT weights FROM ae_models WHERE name='adam_keras') = "
    "(SELECT weights FROM ae_models WHERE name='t_8')", "1");
  /* The same seed and batches: only the optimizer differs, so the
  ** option reached it. */
  check_sql("adam torch: another model than keras from the same seed", db,
    "SELECT (SELECT weights FROM ae_models WHERE name='adam_torch') <> "
    "(SELECT weights FROM ae_models WHERE name='t_8')", "1");
  check_sql_error("bad adam", db, "SELECT ae_train('t', 2, '{\"adam\": \"sgd\"}')",
                  "ae_train: option 'adam' must be 'keras'");
  /* (the checks below count the models) */
  sqlite3_exec(db, "DELETE FROM ae_history WHERE model LIKE 'adam\\_%' ESCAPE '\\';"
                   "DELETE FROM ae_models WHERE name LIKE 'adam\\_%' ESCAPE '\\'", 0, 0, 0);

  /* ---- scoring functions ---- */
  check_sql("ae_reconstruct keeps the encoding", db,
    "SELECT length(ae_reconstruct('t_8', pixels)), typeof(ae_reconstruct('t_8', pixels)) "
    "FROM t WHERE rowid=1", "64|blob");
  check_sql("ae_encode is h float32", db,
    "SELECT length(ae_encode('t_8', pixels)) FROM t WHERE rowid=1", "32");
  t0 = check_sql_double(db,
    "SELECT max(abs(e.error - ae_error('t_8', t.pixels))) FROM ae_scores('t_8', 't') e "
    "JOIN t ON t.rowid = e.key");
  CHECK_NEAR("ae_scores equals ae_error row by row", t0, 0.0, 1e-9);
  check_sql("ae_scores covers every row", db,
    "SELECT count(*), min(key), max(key) FROM ae_scores('t_8', 't')", "500|1|500");
  check_sql("ae_scores on a query numbers its rows", db,
    "SELECT count(*), min(key), max(key) FROM ae_scores('t_8', "
    "'SELECT pixels FROM t WHERE class = 1')", "125|1|125");
  check_sql("NULL pixels score NULL", db, "SELECT ae_error('t_8', NULL)", "NULL");

  /* ---- sources ---- */
  check_sql("train on a SELECT", db,
    "SELECT ae_train('SELECT pixels FROM t WHERE class = 1', 4, "
    "'{\"epochs\": 2, \"seed\": 1, \"name\": \"ones\"}');"
    "SELECT rows_train + rows_val, source FROM ae_models WHERE name='ones'",
    "125|SELECT pixels FROM t WHERE class = 1");
  sqlite3_exec(db, "ATTACH ':memory:' AS aux; CREATE TABLE aux.\"we\"\"ird\"(pixels BLOB);"
                   "INSERT INTO aux.\"we\"\"ird\" SELECT pixels FROM t LIMIT 50;"
                   "CREATE TEMP VIEW tv AS SELECT pixels FROM t LIMIT 40;", 0, 0, 0);
  check_sql("train on an attached table with a quote in its name", db,
    "SELECT ae_train('aux.we\"ird', 4, '{\"epochs\": 1, \"seed\": 1}')", "we\"ird_4");
  check_sql("train on a temp view", db,
    "SELECT ae_train('tv', 4, '{\"epochs\": 1, \"seed\": 1, \"validation_split\": 0}');"
    "SELECT rows_train, rows_val, val_loss FROM ae_models WHERE name='tv_4'", "40|0|NULL");
  check_sql("train with f32 pixels", db,
    "CREATE TABLE f(pixels BLOB);"
    "INSERT INTO f SELECT ae_encode('t_8', pixels) FROM t;"
    "SELECT ae_train('f', 3, '{\"epochs\": 2, \"seed\": 1, \"dtype\": \"f32\"}');"
    "SELECT n_input, dtype, length(ae_reconstruct('f_3', pixels)) FROM ae_models, f "
    "WHERE name='f_3' LIMIT 1", "8|f32|32");

  /* ---- bad arguments: clear errors, nothing written ---- */
  check_sql_error("unknown model", db, "SELECT ae_error('nope', pixels) FROM t",
                  "ae_error: unknown model 'nope'");
  check_sql_error("wrong pixel count", db, "SELECT ae_error('t_8', x'0102')",
                  "ae_error: model 't_8' takes 64 u8 pixels (64 bytes), got a BLOB of 2 bytes");
  check_sql_error("pixels not a blob", db, "SELECT ae_encode('t_8', 'abc')",
                  "ae_encode: pixels must be a BLOB of 64 bytes (u8) for model 't_8', got TEXT");
  check_sql_error("model name not text", db, "SELECT ae_reconstruct(1, x'00')",
                  "ae_reconstruct: the first argument must be a model name");
  check_sql_error("hidden not an integer", db, "SELECT ae_train('t', 'x')",
                  "ae_train: hidden must be an integer from 1 to 65536");
  check_sql_error("hidden zero", db, "SELECT ae_train('t', 0)", "hidden must be an integer");
  check_sql_error("source not text", db, "SELECT ae_train(1, 2)",
                  "ae_train: the source must be a table name or a SELECT");
  check_sql_error("missing table", db, "SELECT ae_train('nosuch', 2)",
                  "ae_train: no table or view named 'nosuch'");
  /* No pixels column: the columns are the features (test_columns.c). */
  check_sql_error("no pixels column: read as numeric columns", db,
                  "CREATE TABLE np(a); INSERT INTO np VALUES('x'); SELECT ae_train('np', 2)",
                  "ae_train: column 'a' of row 1 of the source is 'x', not a number");
  check_sql_error("two statements", db,
                  "SELECT ae_train('SELECT pixels FROM t; DROP TABLE t', 2)",
                  "single read-only SELECT");
  check_sql_error("a query that breaks out of a wrapper is refused", db,
                  "SELECT ae_train('SELECT pixels FROM t); DROP TABLE t; --', 2)",
                  "ae_train: cannot read source 'SELECT pixels FROM t); DROP TABLE t; --': "
                  "near \")\": syntax error");
  check_sql("and the table is still there", db, "SELECT count(*)>0 FROM t", "1");
  check_sql_error("empty source", db,
                  "SELECT ae_train('SELECT pixels FROM t WHERE 0', 2)", "has no rows");
  check_sql_error("rows of different lengths", db,
                  "CREATE TABLE ragged(pixels); INSERT INTO ragged VALUES(x'0102'),(x'010203');"
                  "SELECT ae_train('ragged', 2)",
                  "ae_train: row 2 has 3 bytes of pixels, the first row 2");
  check_sql_error("NULL pixels in training", db,
                  "CREATE TABLE nul(pixels); INSERT INTO nul VALUES(x'0102'),(NULL);"
                  "SELECT ae_train('nul', 2)", "ae_train: row 2 of the source has NULL pixels");
  check_sql_error("options not JSON", db, "SELECT ae_train('t', 2, 'epochs=3')",
                  "ae_train: options must be a JSON object");
  check_sql_error("options an array", db, "SELECT ae_train('t', 2, '[1]')",
                  "ae_train: options must be a JSON object");
  check_sql_error("option given twice", db,
                  "SELECT ae_train('t', 2, '{\"epochs\": 3, \"seed\": 1, \"epochs\": 4}')",
                  "ae_train: option 'epochs' is given twice");
  check_sql_error("unknown option", db, "SELECT ae_train('t', 2, '{\"epoch\": 3}')",
                  "ae_train: unknown option 'epoch'");
  check_sql_error("option of wrong type", db, "SELECT ae_train('t', 2, '{\"epochs\": \"3\"}')",
                  "ae_train: option 'epochs' must be an integer from 1 to 1000000");
  check_sql_error("option out of range", db,
                  "SELECT ae_train('t', 2, '{\"validation_split\": 1}')",
                  "ae_train: option 'validation_split' must be a number from 0");
  check_sql_error("negative learning rate", db,
                  "SELECT ae_train('t', 2, '{\"learning_rate\": -0.1}')",
                  "ae_train: option 'learning_rate' must be a number above 0");
  check_sql_error("bad dtype", db, "SELECT ae_train('t', 2, '{\"dtype\": \"u16\"}')",
                  "ae_train: option 'dtype' must be 'u8'");
  check_sql_error("bad boolean", db, "SELECT ae_train('t', 2, '{\"shuffle\": 1}')",
                  "ae_train: option 'shuffle' must be true or false");
  check_sql_error("existing name", db, "SELECT ae_train('t', 8, '{\"epochs\": 1}')",
                  "ae_train: model 't_8' already exists; give another \"name\" or pass \"replace\": true");
  check_sql("replace an existing model", db,
    "SELECT ae_train('t', 8, '{\"epochs\": 2, \"seed\": 3, \"replace\": true, \"name\": \"other\"}');"
    "SELECT epochs, (SELECT count(*) FROM ae_history WHERE model='other') FROM ae_models WHERE name='other'",
    "2|2");
  check_sql_error("loss becomes infinite", db,
                  "CREATE TABLE big(pixels); INSERT INTO big SELECT "
                  "x'0000807f0000807f' FROM t LIMIT 10;"
                  "SELECT ae_train('big', 2, '{\"dtype\": \"f32\"}')",
                  "not a finite number");
  check_sql_error("loss diverges", db,
                  "CREATE TABLE huge(pixels); INSERT INTO huge SELECT x'ffff7f7fffff7f7f' FROM t LIMIT 10;"
                  "SELECT ae_train('huge', 2, '{\"dtype\": \"f32\", \"epochs\": 3}')",
                  "ae_train: the loss became");
  check_sql("no model left by the failures", db,
    "SELECT group_concat(name, ',') FROM (SELECT name FROM ae_models ORDER BY name)",
    "again,f_3,ones,other,t_8,tv_4,we\"ird_4");

  /* ---- trust: no training from views or triggers ---- */
  check_sql_error("ae_train is DIRECTONLY", db,
                  "CREATE VIEW tv2 AS SELECT ae_train('t', 2) AS m; SELECT * FROM tv2",
                  "unsafe use of ae_train()");
  check_sql_error("ae_scores is DIRECTONLY", db,
                  "CREATE VIEW tv3 AS SELECT * FROM ae_scores('t_8', 't'); SELECT * FROM tv3",
                  "unsafe use of virtual table");

  /* ---- interrupt: stops within a second, leaves nothing ---- */
  {
    pthread_t th;
    check_interrupter it = { db, 300, 0 };
    check_make_table(db, "long", 20000, 784);
    pthread_create(&th, 0, check_interrupt_later, &it);
    check_sql_error("interrupt stops training", db,
                    "SELECT ae_train('long', 32, '{\"epochs\": 100000, \"name\": \"long\"}')",
                    "interrupted");
    t0 = check_now();
    pthread_join(th, 0);
    t0 -= it.at;
    check_report(t0 < 1.0, "interrupt is honoured within a second",
                 "%.3f s after the interrupt", t0);
    check_sql("interrupted training stored nothing", db,
              "SELECT count(*) FROM ae_models WHERE name='long'", "0");
  }
  {
    sqlite3 *db2 = check_open(0);
    check_make_table(db2, "t", 30, 16);
    check_sql_error("a failure before any model leaves no table", db2,
                    "SELECT ae_train('t', 2, '{\"learning_rate\": 0}')", "learning_rate");
    check_sql("no ae_models table was created", db2,
              "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'ae_%'", "0");
    sqlite3_close(db2);
  }

  sqlite3_close(db);
  /* ---- the layer stack through SQL ---- */
  {
    sqlite3 *ds = check_open(0);
    check_make_table(ds, "t", 400, 64);
    check_sql_error("hidden: an empty array is refused", ds,
      "SELECT ae_train('t', '[]')", "ae_train: hidden must be an integer from 1 to 65536");
    check_sql_error("hidden: a zero width is refused", ds,
      "SELECT ae_train('t', '[16, 0]')", "or a JSON array of 1 to 8 such encoder widths");
    check_sql_error("hidden: a fractional width is refused", ds,
      "SELECT ae_train('t', '[16, 2.5]')", "got '[16, 2.5]'");
    check_sql_error("hidden: nine widths are refused", ds,
      "SELECT ae_train('t', '[9,8,7,6,5,4,3,2,1]')", "1 to 8 such encoder widths");
    check_sql_error("hidden: JSON5 is refused", ds,
      "SELECT ae_train('t', '[16, 4,]')", "got '[16, 4,]'");
    check_sql_error("hidden: a string of digits is not a width", ds,
      "SELECT ae_train('t', '32')", "got '32'");
    check_sql_error("hidden: a width over 65536 is refused", ds,
      "SELECT ae_train('t', '[65537]')", "got '[65537]'");
    check_sql("an array of one width is the tutorial's model, the same bits as the integer",
      ds, "SELECT ae_train('t', 8, '{\"epochs\": 2, \"seed\": 4, \"name\": \"i8\"}'),"
      " ae_train('t', '[8]', '{\"epochs\": 2, \"seed\": 4, \"name\": \"a8\"}');"
      "SELECT count(DISTINCT weights) FROM ae_models WHERE name IN ('i8', 'a8')",
      "1");
    check_sql("a stack's default name joins its widths", ds,
      "SELECT ae_train('t', '[16, 8, 4]', '{\"epochs\": 1, \"seed\": 4}');"
      "SELECT name, layers || ' ' || n_hidden FROM ae_models WHERE name='t_16_8_4'",
      "t_16_8_4|[64,16,8,4,8,16,64] 4");
    check_sql("the code of a stack is its narrowest layer's output", ds,
      "SELECT length(ae_encode('t_16_8_4', pixels)), length(ae_reconstruct('t_16_8_4', "
      "pixels)) FROM t LIMIT 1", "16|64");
    check_sql("a stack's ae_error equals its ae_scores, row by row", ds,
      "SELECT count(*) FROM t JOIN ae_scores('t_16_8_4', 't') s ON s.key = t.rowid "
      "WHERE s.error <> ae_error('t_16_8_4', t.pixels)", "0");
    CHECK("a stack's ae_error equals the plain-loop reference (1e-5)",
          naive_vs_sql(ds, "t_16_8_4", 64) < 1e-5);
    check_sql("every activation trains, with a sigmoid output", ds,
      "SELECT count(ae_train('t', '[12, 6]', json_object('epochs', 1, 'seed', 2, "
      "'activation', value, 'output_activation', 'sigmoid', 'name', 'act_' || value))) "
      "FROM json_each('[\"linear\",\"relu\",\"leaky_relu\",\"elu\",\"selu\",\"tanh\",\"sigmoid\"]')",
      "7");
    {
      const char *az[] = { "act_linear", "act_relu", "act_leaky_relu", "act_elu",
                           "act_selu", "act_tanh", "act_sigmoid" };
      int i;
      for(i=0; i<7; i++){
        char zName[96];
        snprintf(zName, sizeof(zName), "%s: ae_error equals the reference (1e-5)", az[i]);
        CHECK(zName, naive_vs_sql(ds, az[i], 64) < 1e-5);
      }
    }
    check_sql("dropout and l2: the same bits with 1 and 2 threads", ds,
      "SELECT ae_train('t', '[16, 8]', '{\"epochs\": 2, \"seed\": 5, \"dropout\": 0.3, "
      "\"l2\": 0.001, \"threads\": 1, \"batch_size\": 128, \"name\": \"d1\"}'),"
      " ae_train('t', '[16, 8]', '{\"epochs\": 2, \"seed\": 5, \"dropout\": 0.3, "
      "\"l2\": 0.001, \"threads\": 2, \"batch_size\": 128, \"name\": \"d2\"}');"
      "SELECT count(DISTINCT weights) FROM ae_models WHERE name IN ('d1', 'd2')",
      "1");
    check_sql_error("patience needs held-out rows", ds,
      "SELECT ae_train('t', 8, '{\"patience\": 2, \"validation_split\": 0}')",
      "ae_train: option 'patience' watches the validation loss, but 400 rows with "
      "validation_split 0 hold none out");
    check_sql("early stopping through SQL: epochs counts those that ran, best_epoch "
      "names the best, ae_history marks it", ds,
      "SELECT ae_train('t', 8, '{\"epochs\": 400, \"seed\": 6, \"patience\": 2, "
      "\"learning_rate\": 0.05, \"name\": \"es\"}');"
      "SELECT (SELECT epochs < 400 AND epochs = (SELECT count(*) FROM ae_history WHERE model='es') "
      " AND best_epoch = (SELECT epoch FROM ae_history WHERE model='es' AND best=1) "
      " AND (SELECT sum(best) FROM ae_history WHERE model='es') = 1 "
      " AND best_epoch = (SELECT epoch FROM ae_history WHERE model='es' "
      "                   ORDER BY val_loss, epoch LIMIT 1) "
      " AND json_extract(options, '$.restore_best') "
      " FROM ae_models WHERE name='es')", "1");
    check_sql("... and the stored model is the best epoch's: its held-out error is "
      "that epoch's val_loss", ds,
      "SELECT abs((SELECT avg(error) FROM ae_scores('es', 'SELECT rowid AS key, pixels "
      "FROM t WHERE rowid > 320'))/64 - (SELECT val_loss FROM ae_history WHERE model='es' "
      "AND best=1)) < 1e-6", "1");
    sqlite3_close(ds);
  }

  return check_done();
}
