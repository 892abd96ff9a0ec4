/*
** Models of numeric columns (ext/sql/ae_columns.h): training on a source
** without a pixels column, the input transform stored with the model, and
** scoring by arguments, by vector and by name.
**
**   - the scaling round trips exactly: the stored float64 offsets and
**     scales are the training rows' statistics computed here, bit for bit
**     (standard and minmax), the held-out rows excluded; the calibration's
**     errors are ae_error's of the held-out rows, bit for bit;
**   - constant features (scale 1, no division by zero);
**   - each NULL policy: "error" names the column and the row (training),
**     the argument (scoring), the row (ae_scores); "mean" fills with the
**     training rows' mean, stored exactly, when training and when scoring;
**   - INTEGER, REAL and numeric TEXT mixed, each scoring the same; the
**     strict parse (hex, inf, nan, 1e999, '' refused);
**   - non-numeric TEXT and BLOB cells named in the error;
**   - the wrong number of arguments: how many, and their names;
**   - feature names with quotes and spaces, read by name;
**   - a model of columns and a model of pixels in one database; options
**     that suit one kind of source refused for the other;
**   - p-values, thresholds and flags on a model of columns; ae_calibrate;
**   - ae_scores by name, with extra columns, in another order, from a
**     view or a query; a missing column named;
**   - ae_reconstruct as JSON in the original units, ae_explain's shares
**     (summing to 1, largest first; all 0 for an exact reconstruction);
**   - corrupt features in ae_models refused;
**   - the acceptance run on the Wisconsin breast-cancer data
**     (data/breast_cancer.csv, `make data`): a model of the first 80% of
**     the benign rows, in file order, tells the malignant rows from the
**     remaining benign ones with an AUROC of 0.93 or more, averaged over
**     three seeds (tests/bench/columns_reference.py: PCA and the same
**     autoencoder in PyTorch on the same split).
**
**   make build/tests/test_columns build/asan-tests/test_columns
*/
#include "check_sql.h"
#include "../../ext/sql/ae_model.h"
#include "../../ext/sql/ae_columns.h"

/* The model zName as ae_error reads it (the test links libaesql). */
static aesql_model *load(sqlite3 *db, const char *zName){
  aesql_model *m = 0;
  char *zErr = 0;
  if( aesql_model_load(db, zName, &m, &zErr)!=SQLITE_OK ){
    printf("# load %s: %s\n", zName, zErr ? zErr : "?");
  }
  sqlite3_free(zErr);
  return m;
}

/* A table zTab(a, b, c) of n rows of deterministic values of several
** magnitudes, c depending on a and b (a model can learn it). */
static void make_abc(sqlite3 *db, const char *zTab, int n){
  char *z = sqlite3_mprintf(
    "CREATE TABLE \"%w\"(a REAL, b REAL, c REAL);"
    "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k+1 FROM i WHERE k<%d)"
    "INSERT INTO \"%w\" SELECT (k*37 %% 101)/10.0, 1000 + (k*53 %% 97)*3.5,"
    " (k*37 %% 101)/10.0 - (k*53 %% 97)/20.0 FROM i;", zTab, n, zTab);
  sqlite3_exec(db, z, 0, 0, 0);
  sqlite3_free(z);
}

/* ---- the transform, exactly ---- */
static void check_scaling(sqlite3 *db){
  aesql_model *m;
  double x[3][200], mean[3], sd[3], lo[3], hi[3];
  sqlite3_stmt *st = 0;
  int r = 0, i, nTrain = 160, ok;

  make_abc(db, "abc", 200);
  check_sql("a table without pixels trains on its columns", db,
    "SELECT ae_train('abc', 2, '{\"epochs\": 200, \"seed\": 1, \"batch_size\": 16, "
    "\"learning_rate\": 0.01}')", "abc_2");
  check_sql("ae_models: f32, 3 inputs, the features' names, scale stored", db,
    "SELECT n_input, n_hidden, dtype, rows_train, rows_val, features, "
    "json_extract(options, '$.scale'), json_extract(options, '$.nulls') "
    "FROM ae_models WHERE name = 'abc_2'",
    "3|2|f32|160|40|[\"a\",\"b\",\"c\"]|standard|error");
  check_sql("the weights BLOB says an input transform follows (flags 1)", db,
    "SELECT hex(substr(weights, 29, 4)), length(weights) = 32 + 2*16 + 4*(3*2+2+2*3+3) + 3*16 "
    "FROM ae_models WHERE name = 'abc_2'", "01000000|1");

  sqlite3_prepare_v2(db, "SELECT a, b, c FROM abc ORDER BY rowid", -1, &st, 0);
  while( sqlite3_step(st)==SQLITE_ROW && r<200 ){
    for(i=0; i<3; i++) x[i][r] = sqlite3_column_double(st, i);
    r++;
  }
  sqlite3_finalize(st);
  /* The statistics of the 160 training rows (the last 40 held out), as
  ** the transform is documented: sums in order, population std. */
  for(i=0; i<3; i++){
    double s = 0, ss = 0;
    lo[i] = hi[i] = x[i][0];
    for(r=0; r<nTrain; r++){
      s += x[i][r];
      if( x[i][r]<lo[i] ) lo[i] = x[i][r];
      if( x[i][r]>hi[i] ) hi[i] = x[i][r];
    }
    mean[i] = s/nTrain;
    for(r=0; r<nTrain; r++) ss += (x[i][r]-mean[i])*(x[i][r]-mean[i]);
    sd[i] = sqrt(ss/nTrain);
  }
  m = load(db, "abc_2");
  ok = m && m->xf.d==3 && m->xf.fill==0 && m->nFeature==3;
  for(i=0; ok && i<3; i++) ok = m->xf.offset[i]==mean[i] && m->xf.scale[i]==1.0/sd[i];
  CHECK("standard: the stored offsets and scales are the training rows' mean "
        "and 1/std, bit for bit (the held-out rows left out)", ok);
  aesql_model_free(m);

  check_sql("minmax", db,
    "SELECT ae_train('abc', 2, '{\"epochs\": 3, \"seed\": 1, \"scale\": \"minmax\", "
    "\"name\": \"abc_mm\"}')", "abc_mm");
  m = load(db, "abc_mm");
  ok = m && m->xf.d==3;
  for(i=0; ok && i<3; i++) ok = m->xf.offset[i]==lo[i] && m->xf.scale[i]==1.0/(hi[i]-lo[i]);
  CHECK("minmax: the stored offsets and scales are min and 1/(max - min), exactly", ok);
  aesql_model_free(m);
  check_sql("none", db,
    "SELECT ae_train('abc', 2, '{\"epochs\": 3, \"seed\": 1, \"scale\": \"none\", "
    "\"name\": \"abc_none\"}')", "abc_none");
  m = load(db, "abc_none");
  CHECK("none: offsets 0, scales 1", m && m->xf.d==3 && m->xf.offset[1]==0 && m->xf.scale[2]==1);
  aesql_model_free(m);

  /* The held-out rows score as they were calibrated: the same scaling,
  ** the same kernel. */
  {
    sqlite3_stmt *a = 0, *b = 0;
    const double *p = 0;
    int k = 0, same = 1, nb = 0;
    sqlite3_prepare_v2(db, "SELECT errors FROM ae_calibration WHERE model = 'abc_2'", -1, &a, 0);
    if( sqlite3_step(a)==SQLITE_ROW ){ p = sqlite3_column_blob(a, 0); nb = sqlite3_column_bytes(a, 0); }
    sqlite3_prepare_v2(db, "SELECT ae_error('abc_2', a, b, c) AS e FROM abc WHERE rowid > 160 "
                       "ORDER BY e", -1, &b, 0);
    while( sqlite3_step(b)==SQLITE_ROW ){
      if( !p || k>=nb/8 || p[k]!=sqlite3_column_double(b, 0) ) same = 0;
      k++;
    }
    CHECK("the calibration's errors are ae_error(model, a, b, c) of the held-out "
          "rows, bit for bit", same && k==40 && nb==320);
    sqlite3_finalize(a);
    sqlite3_finalize(b);
  }
  check_sql("ae_error by arguments, by vector, by ae_scores: the same, row by row", db,
    "SELECT count(*), sum(s.error = ae_error('abc_2', t.a, t.b, t.c)),"
    " sum(abs(s.error - ae_error('abc_2', ae_vector(t.a, t.b, t.c))) < 1e-3*s.error + 1e-9)"
    " FROM ae_scores('abc_2', 'abc') AS s JOIN abc AS t ON t.rowid = s.key", "200|200|200");
  check_sql("a vector of float32-exact values scores as its arguments, bit for bit", db,
    "SELECT ae_error('abc_2', 0.5, 1024, -2.25) = ae_error('abc_2', ae_vector(0.5, 1024, -2.25)),"
    " ae_error('abc_2', '0.5', ' 1024 ', '-2.25e0') = ae_error('abc_2', 0.5, 1024, -2.25)", "1|1");
  check_sql("ae_encode: the code layer, 2 float32", db,
    "SELECT length(ae_encode('abc_2', 1, 2, 3)), ae_encode('abc_2', 1, 2, 3) = "
    "ae_encode('abc_2', ae_vector(1, 2, 3))", "8|1");
}

/* ---- constants, NULLs, types ---- */
static void check_cells(sqlite3 *db){
  aesql_model *m;
  check_sql("a constant feature trains: scale 1, offset its value", db,
    "CREATE TABLE k(a, b);"
    "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n<50)"
    " INSERT INTO k SELECT n % 7, 42 FROM i;"
    "SELECT ae_train('k', 1, '{\"epochs\": 5, \"seed\": 2}'), "
    "       ae_train('k', 1, '{\"epochs\": 5, \"seed\": 2, \"scale\": \"minmax\", \"name\": \"kmm\"}')",
    "k_1|kmm");
  m = load(db, "k_1");
  CHECK("standard: the constant's scale is 1, offset 42", m && m->xf.scale[1]==1.0
        && m->xf.offset[1]==42.0);
  aesql_model_free(m);
  m = load(db, "kmm");
  CHECK("minmax: the constant's scale is 1, offset 42", m && m->xf.scale[1]==1.0
        && m->xf.offset[1]==42.0);
  aesql_model_free(m);
  check_sql("... and every row scores, finite", db,
    "SELECT count(*), sum(ae_error('k_1', a, b) >= 0), sum(ae_error('kmm', a, b) >= 0) FROM k",
    "50|50|50");

  /* NULLs */
  check_sql("a table with NULLs", db,
    "CREATE TABLE n(x, y);"
    "INSERT INTO n VALUES (1, 10), (2, NULL), (3, 30), (NULL, 40), (5, 50),"
    " (6, 60), (7, NULL), (8, 80), (9, 90), (10, 100);", "");
  check_sql_error("by default a NULL is an error naming the column and the row", db,
    "SELECT ae_train('n', 1, '{\"epochs\": 1}')",
    "ae_train: column 'y' of row 2 of the source is NULL; give \"nulls\": \"mean\" to "
    "fill NULLs with the training rows' mean, or leave such rows out");
  check_sql("nulls mean: trains", db,
    "SELECT ae_train('n', 1, '{\"epochs\": 3, \"seed\": 1, \"nulls\": \"mean\", "
    "\"validation_split\": 0.2}')", "n_1");
  check_sql("... nulls stored as mean", db,
    "SELECT json_extract(options, '$.nulls'), hex(substr(weights, 29, 4)) FROM ae_models "
    "WHERE name = 'n_1'", "mean|03000000");
  m = load(db, "n_1");
  /* the first 8 rows train: x 1,2,3,5,6,7,8 (NULL left out), y 10,30,40,50,60,80 */
  CHECK("the fill values are the training rows' means, NULLs left out, exactly",
        m && m->xf.fill && m->xf.fill[0]==32.0/7 && m->xf.fill[1]==270.0/6
        && m->xf.offset[0]==32.0/7);
  aesql_model_free(m);
  check_sql("a NULL scores as the training mean", db,
    "SELECT ae_error('n_1', NULL, 20) = ae_error('n_1', 32.0/7, 20),"
    " ae_error('n_1', 4, NULL) = ae_error('n_1', 4, 270.0/6)", "1|1");
  check_sql("ae_scores fills NULLs as ae_error does", db,
    "SELECT count(*), sum(s.error = ae_error('n_1', n.x, n.y)) FROM ae_scores('n_1', 'n') s "
    "JOIN n ON n.rowid = s.key", "10|10");
  check_sql("ae_explain shows a NULL as null, scored as the mean", db,
    "SELECT count(*), sum(json_extract(value, '$.value') IS NULL) FROM "
    "json_each(ae_explain('n_1', NULL, 20))", "2|1");
  check_sql_error("a model trained with nulls error: a NULL argument names the argument", db,
    "SELECT ae_error('abc_2', 1, NULL, 3)",
    "ae_error: argument 3 (b) is NULL; model 'abc_2' was trained with \"nulls\": "
    "\"error\" and has no value for it");
  check_sql_error("... and ae_scores names the column and the row", db,
    "SELECT count(*) FROM ae_scores('abc_2', 'SELECT a, NULL AS b, c FROM abc')",
    "ae_scores: column 'b' of row 1 of the source is NULL");
  check_sql_error("a column NULL in every training row has no mean", db,
    "CREATE TABLE nn(x, y); INSERT INTO nn VALUES (1, NULL), (2, NULL), (3, NULL), (4, 5);"
    "SELECT ae_train('nn', 1, '{\"nulls\": \"mean\", \"validation_split\": 0.25}')",
    "ae_train: column 'y' is NULL in every training row (the first 3); there is no mean");

  /* types */
  check_sql("INTEGER, REAL and numeric TEXT mixed in one column", db,
    "CREATE TABLE mix(p, q);"
    "INSERT INTO mix VALUES (1, '2.5'), (2.5, ' 3 '), ('3', 4), ('+4.0e0', '.5'),"
    " (5, '5.'), (6, 7), (-7, '-1E-1'), (8.25, 9), (9, 10), (10, 11);"
    "SELECT ae_train('mix', 1, '{\"epochs\": 2, \"seed\": 1}')", "mix_1");
  check_sql("... each form scores the same value the same", db,
    "SELECT ae_error('mix_1', 3, 4) = ae_error('mix_1', '3', '4'),"
    " ae_error('mix_1', 3.0, 4.0) = ae_error('mix_1', ' 3', '4.0 '),"
    " ae_error('mix_1', 0.5, 1) = ae_error('mix_1', '.5', '1.')", "1|1|1");
  {
    static const struct { const char *zVal, *zWant; } bad[] = {
      { "'abc'", "column 'q' of row 3 of the source is 'abc', not a number; a model "
                 "reads numbers only (TEXT categories are not encoded)" },
      { "x'00'", "column 'q' of row 3 of the source is a BLOB, not a number" },
      { "'0x10'", "is '0x10', not a number" },
      { "'inf'", "is 'inf', not a number" },
      { "'nan'", "is 'nan', not a number" },
      { "'1e'", "is '1e', not a number" },
      { "'1 2'", "is '1 2', not a number" },
      { "'1e999'", "column 'q' of row 3 of the source is not a finite number" },
      { "1e999", "column 'q' of row 3 of the source is not a finite number" },
      { "''", "column 'q' of row 3 of the source is '' (empty text), not a number; an "
              "empty field of a CSV file is imported as '': NULLIF(column, '') makes it NULL" },
    };
    unsigned k;
    for(k=0; k<sizeof(bad)/sizeof(bad[0]); k++){
      /* row 3 holds the bad value */
      char *zQuery = sqlite3_mprintf("SELECT p, q FROM mix WHERE rowid < 3 UNION ALL "
                                     "SELECT 1, %s UNION ALL SELECT 1, 2", bad[k].zVal);
      char *zSql = sqlite3_mprintf("SELECT ae_train(%Q, 1)", zQuery);
      char *zName = sqlite3_mprintf("training refuses %s, naming the column and the row",
                                    bad[k].zVal);
      check_sql_error(zName, db, zSql, bad[k].zWant);
      sqlite3_free(zName);
      sqlite3_free(zSql);
      sqlite3_free(zQuery);
    }
  }
  check_sql_error("scoring: non-numeric TEXT named by argument", db,
    "SELECT ae_error('abc_2', 1, 'abc', 3)",
    "ae_error: argument 3 (b) is 'abc', not a number");
  check_sql_error("scoring: a BLOB among the features", db,
    "SELECT ae_error('abc_2', 1, 2, x'00')", "ae_error: argument 4 (c) is a BLOB, not a number");
  check_sql_error("scoring: ae_scores names the cell", db,
    "SELECT count(*) FROM ae_scores('abc_2', 'SELECT a, b, ''n/a'' AS c FROM abc')",
    "ae_scores: column 'c' of row 1 of the source is 'n/a', not a number");
  check_sql_error("scoring: a value beyond float32 once scaled", db,
    "SELECT ae_error('abc_none', 1, 2, 1e300)",
    "ae_error: argument 4 (c), 1.0e+300, is too large for model 'abc_none'");
}

/* ---- arguments ---- */
static void check_arity(sqlite3 *db){
  check_sql_error("too few features: how many, and their names", db,
    "SELECT ae_error('abc_2', 1, 2)",
    "ae_error: model 'abc_2' takes its 3 features as arguments after its name, "
    "ae_error(model, a, b, c), or one vector BLOB of them (ae_vector); got 2 arguments "
    "after the name");
  check_sql_error("too many", db, "SELECT ae_reconstruct('abc_2', 1, 2, 3, 4)",
    "ae_reconstruct: model 'abc_2' takes its 3 features as arguments after its name, "
    "ae_reconstruct(model, a, b, c), or one vector BLOB");
  check_sql_error("ae_is_anomaly says it takes a rate", db,
    "SELECT ae_is_anomaly('abc_2', 1, 2, 3, 0.1, 5)",
    "ae_is_anomaly(model, a, b, c [, rate]), or one vector BLOB of them (ae_vector); got 5");
  check_sql_error("no row at all", db, "SELECT ae_encode('abc_2')",
    "ae_encode: takes a model name and a row");
  check_sql_error("a vector of the wrong length", db,
    "SELECT ae_error('abc_2', ae_vector(1, 2))",
    "ae_error: model 'abc_2' takes a vector of its 3 features as 3 float32 values "
    "(12 bytes, as ae_vector makes it), got a BLOB of 8 bytes");
  check_sql_error("a vector holding NaN", db,
    "SELECT ae_error('abc_2', x'0000803f0000c07f0000803f')",
    "ae_error: value 2 (b) of the vector is NaN; every value must be a finite number");
  check_sql("a NULL vector gives NULL, as NULL pixels do", db,
    "SELECT ae_error('abc_2', NULL) IS NULL, ae_is_anomaly('abc_2', NULL, 0.1) IS NULL", "1|1");
  check_sql_error("ae_pvalue takes no rate", db, "SELECT ae_pvalue('abc_2', 1, 2, 3, 0.1)",
    "ae_pvalue: model 'abc_2' takes its 3 features as arguments after its name, "
    "ae_pvalue(model, a, b, c), or one vector");
}

/* ---- names, by name ---- */
static void check_names(sqlite3 *db){
  check_sql("feature names with quotes and spaces", db,
    "CREATE TABLE q(\"it's\" REAL, \"a b\" REAL, \"say \"\"hi\"\"\" REAL, label TEXT);"
    "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n<60)"
    " INSERT INTO q SELECT n % 5, n % 3, (n % 5) + (n % 3), 'x' || n FROM i;"
    "SELECT ae_train('SELECT \"it''s\", \"a b\", \"say \"\"hi\"\"\" FROM q', 2, "
    "'{\"epochs\": 3, \"seed\": 1, \"name\": \"quoted\"}');"
    "SELECT 'quoted', features FROM ae_models WHERE name = 'quoted'",
    "quoted|[\"it's\",\"a b\",\"say \\\"hi\\\"\"]");
  check_sql("ae_scores reads them by name from the table, with its extra column", db,
    "SELECT count(*), sum(s.error = ae_error('quoted', q.\"it's\", q.\"a b\", q.\"say \"\"hi\"\"\")) "
    "FROM ae_scores('quoted', 'q') AS s JOIN q ON q.rowid = s.key", "60|60");
  check_sql("by name from a query, in another order, in another case", db,
    "SELECT count(*), sum(s.error = ae_error('quoted', q.\"it's\", q.\"a b\", q.\"say \"\"hi\"\"\")) "
    "FROM ae_scores('quoted', 'SELECT label, rowid, \"SAY \"\"HI\"\"\", \"A B\", \"it''s\" FROM q') AS s "
    "JOIN q ON q.rowid = s.key", "60|60");
  check_sql("from a view", db,
    "CREATE VIEW qv AS SELECT rowid AS key, * FROM q;"
    "SELECT count(*), min(key), max(key) FROM ae_scores('quoted', 'qv')", "60|1|60");
  check_sql_error("a missing column is named", db,
    "SELECT count(*) FROM ae_scores('quoted', 'SELECT \"it''s\", label FROM q')",
    "ae_scores: source 'SELECT \"it's\", label FROM q' has no column named 'a b' "
    "(a model of numeric columns reads its columns by name)");
  check_sql("ae_explain names them, JSON-escaped", db,
    "SELECT group_concat(json_extract(value, '$.feature'), '|') FROM "
    "(SELECT value FROM json_each(ae_explain('quoted', 1, 2, 3)) ORDER BY 1)",
    "a b|it's|say \"hi\"");
  check_sql_error("two columns of one name are refused", db,
    "SELECT ae_train('SELECT \"a b\", \"A B\" FROM q', 1)",
    "ae_train: source 'SELECT \"a b\", \"A B\" FROM q' has two columns named 'a b'; a model "
    "of numeric columns reads each column by its name: rename one (AS name)");
  check_sql_error("... and a column without a name", db,
    "SELECT ae_train('SELECT 1 AS \"\", 2 AS b', 1)",
    "ae_train: column 1 of source 'SELECT 1 AS \"\", 2 AS b' has no name");
}

/* ---- columns and pixels together; options ---- */
static void check_kinds(sqlite3 *db){
  check_make_table(db, "img", 200, 16);
  check_sql("a model of pixels in the same database", db,
    "SELECT ae_train('img', 4, '{\"epochs\": 2, \"seed\": 1}');"
    "SELECT name, features IS NULL, dtype, "
    "json_extract(options, '$.scale') FROM ae_models WHERE name = 'img_4'",
    "img_4|1|u8|none");
  check_sql("both score, each its own way", db,
    "SELECT (SELECT count(*) FROM ae_scores('img_4', 'img') WHERE error >= 0),"
    " (SELECT count(*) FROM ae_scores('abc_2', 'abc') WHERE error >= 0),"
    " ae_error('img_4', (SELECT pixels FROM img LIMIT 1)) >= 0, ae_error('abc_2', 1, 2, 3) >= 0",
    "200|200|1|1");
  check_sql_error("a model of pixels: the old messages", db,
    "SELECT ae_error('img_4', x'00ff')",
    "ae_error: model 'img_4' takes 16 u8 pixels (16 bytes), got a BLOB of 2 bytes");
  check_sql_error("a model of pixels given columns", db,
    "SELECT ae_error('img_4', 1, 2, 3)",
    "ae_error: model 'img_4' is a model of pixels: it takes one pixels BLOB after its "
    "name, ae_error(model, pixels); got 3 arguments after the name");
  check_sql_error("... and ae_explain explains columns only", db,
    "SELECT ae_explain('img_4', pixels) FROM img LIMIT 1",
    "ae_explain: model 'img_4' is a model of pixels; ae_explain explains models of "
    "numeric columns");
  check_sql_error("scale is refused for a source of pixels", db,
    "SELECT ae_train('img', 4, '{\"scale\": \"standard\"}')",
    "ae_train: option 'scale' is for sources of numeric columns, and source 'img' has "
    "a pixels column");
  check_sql("... but none is what pixels get", db,
    "SELECT ae_train('img', 4, '{\"epochs\": 1, \"seed\": 1, \"scale\": \"none\", "
    "\"name\": \"img_none\"}')", "img_none");
  check_sql_error("nulls mean is refused for a source of pixels", db,
    "SELECT ae_train('img', 4, '{\"nulls\": \"mean\"}')",
    "ae_train: option 'nulls' is for sources of numeric columns");
  check_sql_error("dtype is refused for a source of columns", db,
    "SELECT ae_train('abc', 2, '{\"dtype\": \"u8\"}')",
    "ae_train: option 'dtype' says how a pixels column is encoded, and source 'abc' has "
    "none: its 3 columns are read as numbers");
  check_sql_error("a model of columns scoring a source of pixels", db,
    "SELECT count(*) FROM ae_scores('abc_2', 'img')",
    "ae_scores: source 'img' has no column named 'a'");
  check_sql_error("a model of pixels scoring a source of columns", db,
    "SELECT count(*) FROM ae_scores('img_4', 'abc')",
    "ae_scores: source 'abc' has no pixels column");
  check_sql("vectors of ae_vector still train as f32 pixels", db,
    "SELECT ae_train('SELECT ae_vector(a, b, c) AS pixels FROM abc', 2, "
    "'{\"epochs\": 2, \"dtype\": \"f32\", \"seed\": 1, \"name\": \"vec\"}');"
    "SELECT name, features IS NULL, hex(substr(weights, 29, 4)) FROM ae_models WHERE name = 'vec'",
    "vec|1|00000000");
}

/* ---- calibration ---- */
static void check_calib(sqlite3 *db){
  make_abc(db, "cal", 600);
  check_sql("a model of columns with 100 held-out rows", db,
    "SELECT ae_train('SELECT a, b, c FROM cal WHERE rowid <= 500', 2, "
    "'{\"epochs\": 20, \"seed\": 3, \"name\": \"cm\"}');"
    "SELECT model, rows FROM ae_calibration WHERE model = 'cm'", "cm|100");
  check_sql("p-values in (0, 1]; flags are p <= rate; ae_error > threshold", db,
    "SELECT count(*), min(p) > 0, max(p) <= 1, sum(f = (p <= 0.05)), sum(f = (e > t)) FROM"
    " (SELECT ae_pvalue('cm', a, b, c) AS p, ae_is_anomaly('cm', a, b, c, 0.05) AS f,"
    "  ae_error('cm', a, b, c) AS e, ae_threshold('cm', 0.05) AS t FROM cal)",
    "600|1|1|600|600");
  check_sql("by vector, with a rate", db,
    "SELECT sum(ae_is_anomaly('cm', ae_vector(a, b, c), 0.2) = "
    "(ae_pvalue('cm', ae_vector(a, b, c)) <= 0.2)) FROM cal", "600");
  check_sql("ae_scores' pvalue and is_anomaly are the functions'", db,
    "SELECT count(*), sum(s.pvalue = ae_pvalue('cm', t.a, t.b, t.c)),"
    " sum(s.is_anomaly = ae_is_anomaly('cm', t.a, t.b, t.c))"
    " FROM ae_scores('cm', 'cal') s JOIN cal t ON t.rowid = s.key", "600|600|600");
  check_sql("... at a rate given", db,
    "SELECT count(*), sum(s.is_anomaly = ae_is_anomaly('cm', t.a, t.b, t.c, 0.3))"
    " FROM ae_scores('cm', 'cal', 0.3) s JOIN cal t ON t.rowid = s.key", "600|600");
  check_sql("ae_calibrate reads the columns by name", db,
    "SELECT ae_calibrate('cm', 'SELECT c, b, a, rowid FROM cal WHERE rowid > 500'),"
    " (SELECT rows || ' ' || source FROM ae_calibration WHERE model = 'cm')",
    "100|100 SELECT c, b, a, rowid FROM cal WHERE rowid > 500");
  check_sql_error("ae_calibrate names a bad cell", db,
    "SELECT ae_calibrate('cm', 'SELECT a, b, ''x'' AS c FROM cal')",
    "ae_calibrate: column 'c' of row 1 of the source is 'x', not a number");
}

/* ---- reconstructions and explanations ---- */
static void check_explain(sqlite3 *db){
  check_sql("ae_reconstruct: a JSON object, the features in order", db,
    "SELECT json_valid(r), (SELECT group_concat(key) FROM json_each(r)),"
    " json_type(r, '$.a') FROM (SELECT ae_reconstruct('abc_2', 5, 1100, 2) AS r)",
    "1|a,b,c|real");
  check_sql("... in the original units: a good model's is near its row", db,
    "SELECT max(abs(json_extract(r, '$.b') - b) / 150) < 0.5 FROM "
    "(SELECT b, ae_reconstruct('abc_2', a, b, c) AS r FROM abc)", "1");
  check_sql("ae_explain: one object per feature, shares summing to 1, largest first", db,
    "SELECT count(*), abs(sum(s) - 1) < 1e-12, min(s) >= 0, "
    " sum(s <= coalesce(prev, 1)) FROM (SELECT json_extract(value, '$.share') AS s,"
    " lag(json_extract(value, '$.share')) OVER (ORDER BY key) AS prev"
    " FROM json_each(ae_explain('abc_2', 5, 1300, -10)))", "3|1|1|3");
  check_sql("... with the values given and ae_reconstruct's", db,
    "SELECT json_extract(e, '$[0].value') IN (5, 1300, -10),"
    " json_extract(e, '$[0].reconstructed') = json_extract(r, '$.' || json_extract(e, '$[0].feature'))"
    " FROM (SELECT ae_explain('abc_2', 5, 1300, -10) AS e, ae_reconstruct('abc_2', 5, 1300, -10) AS r)",
    "1|1");
  check_sql("... the largest share is the largest squared error, in the scaled units", db,
    "SELECT json_extract(ae_explain('abc_2', 5, 1300, -10), '$[0].share') >= 1.0/3", "1");

  /* An exact reconstruction: a model made by hand, the identity on two
  ** non-negative features (relu of x, then x), no scaling. */
  {
    aesql_net net;
    aesql_xform xf;
    sqlite3_stmt *st = 0;
    void *blob;
    int nBlob;
    const int width[3] = { 2, 2, 2 }, act[2] = { AESQL_ACT_RELU, AESQL_ACT_LINEAR };
    aesql_net_init(&net, 2, width, act, 0);
    memset(net.param, 0, sizeof(float)*net.nParam);
    net.layer[0].w[0] = net.layer[0].w[3] = 1;
    net.layer[1].w[0] = net.layer[1].w[3] = 1;
    aesql_xform_init(&xf, 2, 0);
    blob = aesql_model_encode_xf(&net, AESQL_F32, &xf, &nBlob);
    sqlite3_prepare_v2(db, "INSERT INTO ae_models(name, n_input, n_hidden, dtype, source, "
                       "rows_train, rows_val, epochs, loss, val_loss, train_seconds, options, "
                       "created, weights, features) VALUES('ident', 2, 2, 'f32', 'test', 0, 0, "
                       "0, 0, NULL, 0, '{}', '2024-01-01 00:00:00', ?1, '[\"u\",\"v\"]')",
                       -1, &st, 0);
    sqlite3_bind_blob(st, 1, blob, nBlob, sqlite3_free);
    CHECK("a hand-made identity model stored", sqlite3_step(st)==SQLITE_DONE);
    sqlite3_finalize(st);
    aesql_xform_free(&xf);
    aesql_net_free(&net);
  }
  check_sql("an exact reconstruction: error 0, every share 0, in the features' order", db,
    "SELECT ae_error('ident', 3, 4), ae_explain('ident', 3, 4)",
    "0.0|[{\"feature\":\"u\",\"share\":0.0,\"value\":3.0,\"reconstructed\":3.0},"
    "{\"feature\":\"v\",\"share\":0.0,\"value\":4.0,\"reconstructed\":4.0}]");
  check_sql("a known error: shares of (0 - (-1))^2 and 0", db,
    "SELECT ae_explain('ident', -1, 4)",
    "[{\"feature\":\"u\",\"share\":1.0,\"value\":-1.0,\"reconstructed\":0.0},"
    "{\"feature\":\"v\",\"share\":0.0,\"value\":4.0,\"reconstructed\":4.0}]");

  /* Corrupt features: a database from someone else. */
  check_sql_error("features that are not a JSON array of one name per input", db,
    "UPDATE ae_models SET features = '[\"u\"]' WHERE name = 'ident';"
    "SELECT ae_error('ident', 1, 2)",
    "ae_error: model 'ident': corrupt model (its features are not a JSON array of 2 "
    "column names, one per input)");
  check_sql_error("... names that are not strings", db,
    "UPDATE ae_models SET features = '[\"u\", 2]' WHERE name = 'ident';"
    "SELECT ae_error('ident', 1, 2)", "corrupt model (its features are not");
  check_sql_error("... not JSON", db,
    "UPDATE ae_models SET features = 'u,v' WHERE name = 'ident';"
    "SELECT ae_error('ident', 1, 2)", "corrupt model (its features are not");
  check_sql_error("... on a model of u8 pixels", db,
    "UPDATE ae_models SET features = '[\"a\"]' WHERE name = 'img_4';"
    "SELECT ae_error('img_4', 1)", "corrupt model (a model of numeric columns must "
    "read f32 values)");
  sqlite3_exec(db, "UPDATE ae_models SET features = NULL WHERE name = 'img_4'", 0, 0, 0);
}

/* ---- the acceptance run ---- */

/* data/breast_cancer.csv into table cells, every cell TEXT, as the
** shell's .import --csv makes it. Returns the rows read, 0 if none. */
static int import_csv(sqlite3 *db, const char *zPath){
  FILE *f = fopen(zPath, "rb");
  char zLine[4096];
  sqlite3_stmt *st = 0;
  int nCol = 0, nRow = 0, i;
  if( !f ) return 0;
  if( fgets(zLine, sizeof(zLine), f) ){
    sqlite3_str *s = sqlite3_str_new(0), *q = sqlite3_str_new(0);
    char *z, *tok, *save = 0;
    zLine[strcspn(zLine, "\r\n")] = 0;
    sqlite3_str_appendall(s, "CREATE TABLE cells(");
    sqlite3_str_appendall(q, "INSERT INTO cells VALUES(");
    for(tok=strtok_r(zLine, ",", &save); tok; tok=strtok_r(0, ",", &save)){
      sqlite3_str_appendf(s, "%s\"%w\" TEXT", nCol ? ", " : "", tok);
      sqlite3_str_appendf(q, "%s?", nCol ? ", " : "");
      nCol++;
    }
    sqlite3_str_appendall(s, ")");
    sqlite3_str_appendall(q, ")");
    z = sqlite3_str_finish(s);
    sqlite3_exec(db, z, 0, 0, 0);
    sqlite3_free(z);
    z = sqlite3_str_finish(q);
    sqlite3_prepare_v2(db, z, -1, &st, 0);
    sqlite3_free(z);
  }
  sqlite3_exec(db, "BEGIN", 0, 0, 0);
  while( st && fgets(zLine, sizeof(zLine), f) ){
    char *tok, *save = 0;
    zLine[strcspn(zLine, "\r\n")] = 0;
    i = 0;
    for(tok=strtok_r(zLine, ",", &save); tok && i<nCol; tok=strtok_r(0, ",", &save)){
      sqlite3_bind_text(st, ++i, tok, -1, SQLITE_TRANSIENT);
    }
    if( i==nCol && sqlite3_step(st)==SQLITE_DONE ) nRow++;
    sqlite3_reset(st);
  }
  sqlite3_exec(db, "COMMIT", 0, 0, 0);
  sqlite3_finalize(st);
  fclose(f);
  return nRow;
}

static void check_acceptance(void){
  char zPath[512], zName[700], *zSql;
  const char *zCols =
    "radius_mean, texture_mean, perimeter_mean, area_mean, smoothness_mean, "
    "compactness_mean, concavity_mean, concave_points_mean, symmetry_mean, "
    "fractal_dimension_mean, radius_se, texture_se, perimeter_se, area_se, "
    "smoothness_se, compactness_se, concavity_se, concave_points_se, symmetry_se, "
    "fractal_dimension_se, radius_worst, texture_worst, perimeter_worst, area_worst, "
    "smoothness_worst, compactness_worst, concavity_worst, concave_points_worst, "
    "symmetry_worst, fractal_dimension_worst";
  sqlite3 *db = check_open(0);
  double sum = 0, t0;
  int seed, n;
  snprintf(zPath, sizeof(zPath), "%s/breast_cancer.csv", check_datadir());
  n = import_csv(db, zPath);
  snprintf(zName, sizeof(zName), "%s: 569 rows, 212 malignant, 357 benign (make data)", zPath);
  check_sql(zName, db, "SELECT count(*), sum(diagnosis = 'malignant'), "
            "sum(diagnosis = 'benign') FROM cells", n ? "569|212|357" : "");
  if( n!=569 ){ sqlite3_close(db); return; }
  /* The split: the first 80% of the benign rows, in file order, train
  ** (ae_train holds out the last 20% of those, which calibrate it); the
  ** remaining 72 benign rows and every malignant one test. */
  zSql = sqlite3_mprintf(
    "CREATE TABLE benign AS SELECT row_number() OVER (ORDER BY rowid) AS n, rowid AS id "
    "  FROM cells WHERE diagnosis = 'benign';"
    "CREATE VIEW normal AS SELECT %s FROM cells WHERE rowid IN "
    "  (SELECT id FROM benign WHERE n <= 285) ORDER BY rowid;"
    "CREATE VIEW test AS SELECT rowid AS key, * FROM cells WHERE diagnosis = 'malignant' "
    "  OR rowid IN (SELECT id FROM benign WHERE n > 285);"
    "SELECT count(*), (SELECT count(*) FROM test) FROM normal", zCols);
  check_sql("285 rows to train on, 284 to test", db, zSql, "285|284");
  sqlite3_free(zSql);
  t0 = check_now();
  for(seed=1; seed<=3; seed++){
    double auc;
    zSql = sqlite3_mprintf("SELECT ae_train('normal', 16, json_object('seed', %d, "
        "'batch_size', 32, 'epochs', 500, 'name', 'cells_%d'))", seed, seed);
    snprintf(zName, sizeof(zName), "seed %d: 30 -> 16 -> 30, batch 32, 500 epochs", seed);
    {
      char zWant[32];
      snprintf(zWant, sizeof(zWant), "cells_%d", seed);
      check_sql(zName, db, zSql, zWant);
    }
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT ae_auroc(s.error, t.diagnosis = 'malignant') FROM "
        "ae_scores('cells_%d', 'test') AS s JOIN test AS t ON t.key = s.key", seed);
    auc = check_sql_double(db, zSql);
    sqlite3_free(zSql);
    printf("# seed %d: AUROC %.4f, malignant against the 72 benign rows not trained on\n",
           seed, auc);
    sum += auc;
  }
  printf("# three trainings in %.1f s\n", check_now() - t0);
  snprintf(zName, sizeof(zName), "breast cancer: mean AUROC %.4f >= 0.93 over seeds 1 to 3 "
           "(PCA 0.92, the same model in PyTorch 0.94)", sum/3);
  check_report(sum/3>=0.93, zName, "mean %.4f", sum/3);
  check_sql("the malignant rows score worse than the benign ones, on average, by far", db,
    "SELECT avg(CASE WHEN t.diagnosis = 'malignant' THEN s.error END) > "
    "3*avg(CASE WHEN t.diagnosis = 'benign' THEN s.error END) "
    "FROM ae_scores('cells_1', 'test') s JOIN test t ON t.key = s.key", "1");
  sqlite3_close(db);
}

int main(void){
  sqlite3 *db = check_open(0);
  check_scaling(db);
  check_cells(db);
  check_arity(db);
  check_names(db);
  check_kinds(db);
  check_calib(db);
  check_explain(db);
  sqlite3_close(db);
  check_acceptance();
  return check_done();
}
