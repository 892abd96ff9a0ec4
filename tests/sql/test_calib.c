/*
** Calibration, p-values, thresholds and flags (ae_calib.h): the stored
** held-out errors are ae_error's own; the p-value is the formula, by hand;
** ae_is_anomaly, ae_pvalue <= rate and ae_error > ae_threshold agree on
** every row at every rate, boundary rates included; the false-alarm rate
** holds on fresh normal rows; ae_calibrate; every bad input.
*/
#include "check_sql.h"

static double q1(sqlite3 *db, const char *zFmt, double x){
  char *z = sqlite3_mprintf(zFmt, x);
  double v = check_sql_double(db, z);
  sqlite3_free(z);
  return v;
}

int main(void){
  sqlite3 *db = check_open(0);
  double rates[] = { 0.003, 0.01, 0.05, 0.1, 0.5, 0.9, 0, 0, 0 };
  int i, nRate = 6, n;
  char zName[160];

  /* 4000 rows: train on the first 2000 (the last 400 of them held out),
  ** the other 2000 are fresh normal rows from the same generator. */
  check_make_table(db, "t", 4000, 32);
  check_sql("train on the first half", db,
    "CREATE VIEW first AS SELECT pixels FROM t WHERE rowid <= 2000;"
    "CREATE VIEW fresh AS SELECT rowid AS key, pixels FROM t WHERE rowid > 2000;"
    "SELECT ae_train('first', 4, '{\"epochs\": 10, \"seed\": 5, \"batch_size\": 64, "
    "\"name\": \"m\", \"false_alarm_rate\": 0.05}')", "m");
  check_sql("its calibration: the 400 held-out rows, at the model's rate", db,
    "SELECT rows, source, false_alarm_rate, length(errors), calibrated LIKE '20__-__-__ __:__:__' "
    "FROM ae_calibration WHERE model = 'm'", "400|validation_split|0.05|3200|1");
  check_sql("the options record the rate", db,
    "SELECT json_extract(options, '$.false_alarm_rate') FROM ae_models", "0.05");

  /* The stored errors are the held-out rows' ae_error, bit for bit. */
  sqlite3_exec(db, "CREATE TABLE held AS SELECT ae_error('m', pixels) AS e FROM t "
                   "WHERE rowid BETWEEN 1601 AND 2000", 0, 0, 0);
  {
    sqlite3_stmt *a = 0, *b = 0;
    int k = 0, same = 1, nb = 0;
    const double *p = 0;
    sqlite3_prepare_v2(db, "SELECT errors FROM ae_calibration WHERE model = 'm'", -1, &a, 0);
    if( sqlite3_step(a)==SQLITE_ROW ){
      p = sqlite3_column_blob(a, 0);
      nb = sqlite3_column_bytes(a, 0);
    }
    sqlite3_prepare_v2(db, "SELECT e FROM held ORDER BY e", -1, &b, 0);
    while( sqlite3_step(b)==SQLITE_ROW ){
      if( !p || k>=nb/8 || p[k]!=sqlite3_column_double(b, 0) ) same = 0;
      k++;
    }
    CHECK("the stored errors are ae_error of the held-out rows, ascending, bit for bit",
          same && k==400 && nb==3200);
    sqlite3_finalize(a);
    sqlite3_finalize(b);
  }
  /* The held-out rows are scored in blocks of 256 on the training's
  ** threads: 2000 rows (8 blocks) on one, two or three threads, the same
  ** errors (the serial ones being ae_error's, as m's above). */
  check_sql("a model of all 4000 rows, half held out, on 1, 2 and 3 threads", db,
    "SELECT ae_train('t', 4, '{\"epochs\": 2, \"seed\": 5, \"validation_split\": 0.5, "
    "\"name\": \"w1\", \"threads\": 1}'),"
    "ae_train('t', 4, '{\"epochs\": 2, \"seed\": 5, \"validation_split\": 0.5, "
    "\"name\": \"w2\", \"threads\": 2}'),"
    "ae_train('t', 4, '{\"epochs\": 2, \"seed\": 5, \"validation_split\": 0.5, "
    "\"name\": \"w3\", \"threads\": 3}')", "w1|w2|w3");
  check_sql("their calibrations are the same, bit for bit", db,
    "SELECT count(*) FROM ae_calibration a, ae_calibration b "
    "WHERE a.model = 'w1' AND b.model IN ('w2', 'w3') AND a.errors = b.errors "
    "AND a.rows = 2000 AND b.rows = 2000", "2");
  check_sql("a held-out row's p-value is the formula's", db,
    "SELECT count(*), sum(ae_pvalue('m', t.pixels) = "
    "  (1.0 + (SELECT count(*) FROM held h WHERE h.e >= ae_error('m', t.pixels))) / 401.0) "
    "FROM t WHERE rowid BETWEEN 1601 AND 2000", "400|400");
  check_sql("so is a fresh row's", db,
    "SELECT count(*), sum(ae_pvalue('m', pixels) = "
    "  (1.0 + (SELECT count(*) FROM held h WHERE h.e >= ae_error('m', f.pixels))) / 401.0) "
    "FROM fresh f", "2000|2000");
  check_sql("p-values are in (0, 1]", db,
    "SELECT min(p) > 0, max(p) <= 1, max(p) = 1 FROM (SELECT ae_pvalue('m', pixels) AS p FROM t)",
    "1|1|1");

  /* Boundary rates: exactly k/401. */
  rates[nRate++] = 1.0/401; rates[nRate++] = 20.0/401; rates[nRate++] = 0.9975;
  for(i=0; i<nRate; i++){
    char *z = sqlite3_mprintf(
      "SELECT count(*) FROM (SELECT ae_error('m', pixels) AS e, ae_pvalue('m', pixels) AS p,"
      " ae_is_anomaly('m', pixels, %!.17g) AS f FROM t) WHERE f <> (p <= %!.17g)"
      " OR f <> (e > ae_threshold('m', %!.17g))", rates[i], rates[i], rates[i]);
    n = (int)check_sql_double(db, z);
    sqlite3_free(z);
    snprintf(zName, sizeof(zName), "rate %.6g: ae_is_anomaly, ae_pvalue <= rate and "
             "ae_error > ae_threshold agree on all 4000 rows", rates[i]);
    check_report(n==0, zName, "%d rows disagree", n);
  }
  check_sql("the default rate is the model's", db,
    "SELECT sum(ae_is_anomaly('m', pixels) = ae_is_anomaly('m', pixels, 0.05)), "
    "ae_threshold('m') = ae_threshold('m', 0.05) FROM t", "4000|1");
  /* On fresh normal rows, the rate holds (deterministic data and seed). */
  for(i=0; i<3; i++){
    double r = i==0 ? 0.01 : i==1 ? 0.05 : 0.2;
    double f = q1(db, "SELECT avg(ae_is_anomaly('m', pixels, %!.17g)) FROM fresh", r);
    snprintf(zName, sizeof(zName), "rate %.2f: %.2f%% of 2000 fresh normal rows flagged "
             "(within 0.5x to 1.5x + 0.5%%)", r, 100*f);
    check_report(f>=r*0.5 && f<=r*1.5 + 0.005, zName, "%.4f", f);
  }

  /* ae_scores gives the same p-values and flags. */
  check_sql("ae_scores: pvalue and is_anomaly equal ae_pvalue's and ae_is_anomaly's", db,
    "SELECT count(*), sum(s.pvalue = ae_pvalue('m', t.pixels)), "
    "sum(s.is_anomaly = ae_is_anomaly('m', t.pixels)) "
    "FROM ae_scores('m', 't') s JOIN t ON t.rowid = s.key", "4000|4000|4000");
  check_sql("ae_scores: a rate as the third argument", db,
    "SELECT count(*), sum(s.is_anomaly = ae_is_anomaly('m', t.pixels, 0.2)) "
    "FROM ae_scores('m', 't', 0.2) s JOIN t ON t.rowid = s.key", "4000|4000");
  check_sql_error("ae_scores: a rate out of range", db,
    "SELECT count(*) FROM ae_scores('m', 't', 1.5)",
    "ae_scores: the false-alarm rate must be a number above 0 and below 1, got '1.5'");

  /* ae_calibrate: another set of normal rows. */
  check_sql("ae_calibrate on the fresh rows", db,
    "SELECT ae_calibrate('m', 'SELECT pixels FROM t WHERE rowid > 3000')", "1000");
  check_sql("... replaces the calibration, keeping the rate", db,
    "SELECT rows, source, false_alarm_rate FROM ae_calibration WHERE model = 'm'",
    "1000|SELECT pixels FROM t WHERE rowid > 3000|0.05");
  check_sql("... and the p-values follow it", db,
    "CREATE TABLE cal AS SELECT ae_error('m', pixels) AS e FROM t WHERE rowid > 3000;"
    "SELECT sum(ae_pvalue('m', pixels) = (1.0 + (SELECT count(*) FROM cal WHERE cal.e >= "
    "ae_error('m', t.pixels)))/1001.0) FROM t WHERE rowid <= 100", "100");

  /* A model without held-out rows. */
  check_sql("a model trained with validation_split 0", db,
    "SELECT ae_train('first', 4, '{\"epochs\": 1, \"validation_split\": 0, \"name\": \"nv\"}')",
    "nv");
  check_sql_error("... has no p-values, and says what to do", db,
    "SELECT ae_pvalue('nv', pixels) FROM t LIMIT 1",
    "ae_pvalue: model 'nv' has no calibration: it was trained with validation_split 0, "
    "so no rows were held out; calibrate it on rows known to be normal with "
    "ae_calibrate('nv', source)");
  check_sql_error("... nor thresholds", db, "SELECT ae_threshold('nv')", "has no calibration");
  check_sql_error("... nor flags", db, "SELECT ae_is_anomaly('nv', pixels) FROM t LIMIT 1",
                  "has no calibration");
  check_sql("... and in ae_scores they are NULL, the errors there", db,
            "SELECT count(error), count(pvalue), count(is_anomaly) FROM ae_scores('nv', 't')",
            "4000|0|0");
  check_sql("... until it is calibrated", db,
    "SELECT ae_calibrate('nv', 'fresh'), ae_threshold('nv') > 0", "2000|1");
  check_sql("... at the default rate", db,
    "SELECT false_alarm_rate FROM ae_calibration WHERE model = 'nv'", "0.01");
  check_sql("replacing a model replaces its calibration", db,
    "SELECT ae_train('first', 4, '{\"epochs\": 1, \"validation_split\": 0, \"name\": \"nv\", "
    "\"replace\": true}'); SELECT count(*) FROM ae_calibration WHERE model = 'nv'", "0");

  /* Bad input. */
  check_sql_error("a rate of 0", db, "SELECT ae_threshold('m', 0)",
    "ae_threshold: the false-alarm rate must be a number above 0 and below 1, got '0'");
  check_sql_error("a rate of 1", db, "SELECT ae_is_anomaly('m', pixels, 1) FROM t",
    "ae_is_anomaly: the false-alarm rate must be a number above 0 and below 1, got '1'");
  check_sql_error("a rate as text", db, "SELECT ae_threshold('m', 'low')",
    "got 'low'");
  check_sql_error("a rate no row can reach", db, "SELECT ae_threshold('m', 0.0005)",
    "ae_threshold: at rate 0.0005 no row is ever flagged: model 'm' is calibrated on 1000 "
    "rows, so the smallest rate is 1/1001");
  check_sql("... where ae_is_anomaly flags nothing", db,
    "SELECT sum(ae_is_anomaly('m', pixels, 0.0005)) FROM t", "0");
  check_sql_error("the option out of range", db,
    "SELECT ae_train('first', 4, '{\"false_alarm_rate\": 1.5}')",
    "ae_train: option 'false_alarm_rate' must be a number above 0 and below 1");
  check_sql_error("ae_calibrate of an unknown model", db,
    "SELECT ae_calibrate('nosuch', 'fresh')", "ae_calibrate: unknown model 'nosuch'");
  check_sql_error("ae_calibrate on rows of another width", db,
    "CREATE TABLE narrow(pixels BLOB); INSERT INTO narrow VALUES(zeroblob(16));"
    "SELECT ae_calibrate('m', 'narrow')",
    "ae_calibrate: row 1 of the source has a wrong number of pixels; model 'm' takes BLOBs of 32 bytes");
  check_sql_error("ae_calibrate on NULL pixels", db,
    "INSERT INTO narrow VALUES(NULL); SELECT ae_calibrate('m', 'SELECT pixels FROM narrow WHERE pixels IS NULL')",
    "row 1 of the source has NULL pixels");
  check_sql_error("ae_calibrate on no rows", db,
    "SELECT ae_calibrate('m', 'SELECT pixels FROM t WHERE 0')", "has no rows");
  check_sql("a failed ae_calibrate keeps the calibration", db,
    "SELECT rows FROM ae_calibration WHERE model = 'm'", "1000");
  check_sql_error("a corrupt calibration is refused", db,
    "UPDATE ae_calibration SET errors = x'00' WHERE model = 'm';"
    "SELECT ae_threshold('m')", "ae_threshold: model 'm': corrupt calibration");
  check_sql_error("... as are errors out of order", db,
    "UPDATE ae_calibration SET rows = 2, errors = CAST(ae_vector(1, 2) || x'' AS BLOB) "
    "  WHERE model = 'm';"
    "UPDATE ae_calibration SET errors = x'000000000000f03f0000000000000000' WHERE model = 'm';"
    "SELECT ae_pvalue('m', pixels) FROM t LIMIT 1", "corrupt calibration (errors not finite or not ascending)");
  CHECK("no transaction left open", sqlite3_get_autocommit(db));
  sqlite3_close(db);
  return check_done();
}
