/*
** The evaluation aggregates ae_auroc, ae_average_precision, ae_roc_curve:
** against references computed another way (the Mann-Whitney U statistic
** by pairs, in SQL; average precision by its per-threshold sum, in SQL),
** on crafted data with ties, exactly; as GROUP BY aggregates and window
** functions; NULLs and bad input.
*/
#include "check_sql.h"

/* References on table e(s, y), computed another way. AUROC: over every
** (positive, negative) pair, 1 when the positive scores higher, 1/2 on a
** tie; divided by n+ n-. */
static const char *zRefAuroc =
  "SELECT (SELECT sum(CASE WHEN p.s > n.s THEN 1.0 WHEN p.s = n.s THEN 0.5 ELSE 0 END) "
  "        FROM e p, e n WHERE p.y = 1 AND n.y = 0) "
  "     / ((SELECT count(*) FROM e WHERE y = 1) * (SELECT count(*) FROM e WHERE y = 0))";

/* AP: for each distinct score t, (positives at t / n+) times the
** precision of flagging score >= t. */
static const char *zRefAp =
  "SELECT sum(npos_at * 1.0 / (SELECT count(*) FROM e WHERE y=1) * tp * 1.0 / flagged) FROM ("
  "  SELECT t.s AS s, sum(t.y) AS npos_at,"
  "    (SELECT sum(y) FROM e u WHERE u.s >= t.s) AS tp,"
  "    (SELECT count(*) FROM e u WHERE u.s >= t.s) AS flagged"
  "  FROM e t GROUP BY t.s)";

/* The recall at a false-alarm rate of at most 10%, by thresholds. */
static const char *zRefRecall =
  "SELECT max(tp * 1.0 / (SELECT count(*) FROM e WHERE y=1)) FROM ("
  "  SELECT (SELECT sum(y) FROM e u WHERE u.s >= t.s) AS tp,"
  "         (SELECT count(*) - sum(y) FROM e u WHERE u.s >= t.s) AS fp"
  "  FROM e t GROUP BY t.s) WHERE fp * 1.0 / (SELECT count(*) FROM e WHERE y=0) <= 0.1";

int main(void){
  sqlite3 *db = check_open(0);
  char zName[256];
  int g;
  double got, want;

  /* Four groups of crafted scores with many ties (on a coarse grid), the
  ** positives higher on the whole; a few NULLs, which are skipped. */
  sqlite3_exec(db,
    "CREATE TABLE d(g INTEGER, s REAL, y INTEGER);"
    "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n<400),"
    "  l(n, y) AS (SELECT n, ((n*104729) % 11) < 3 + (n % 4) FROM i)"
    "INSERT INTO d SELECT n % 4, ((n*7919) % 13) / 4.0 + y * ((n*31) % 5) / 2.0, y FROM l;"
    "INSERT INTO d VALUES(0, NULL, 1), (1, 2.0, NULL), (2, NULL, NULL);", 0, 0, 0);
  for(g=0; g<4; g++){
    snprintf(zName, sizeof(zName), "DROP TABLE IF EXISTS e; CREATE TABLE e AS SELECT s, y "
             "FROM d WHERE g = %d AND s IS NOT NULL AND y IS NOT NULL", g);
    sqlite3_exec(db, zName, 0, 0, 0);
    want = check_sql_double(db, zRefAuroc);
    snprintf(zName, sizeof(zName), "SELECT ae_auroc(s, y) FROM d WHERE g = %d", g);
    got = check_sql_double(db, zName);
    snprintf(zName, sizeof(zName), "group %d: ae_auroc equals the Mann-Whitney U by pairs, exactly", g);
    check_report(got==want && want>0.55 && want<1, zName, "got %.17g, want %.17g", got, want);
    want = check_sql_double(db, zRefAp);
    snprintf(zName, sizeof(zName), "SELECT ae_average_precision(s, y) FROM d WHERE g = %d", g);
    got = check_sql_double(db, zName);
    snprintf(zName, sizeof(zName), "group %d: ae_average_precision equals the sum by thresholds", g);
    check_report(fabs(got-want)<=1e-15 && want>0, zName, "got %.17g, want %.17g", got, want);
    want = check_sql_double(db, zRefRecall);
    snprintf(zName, sizeof(zName), "SELECT max(json_extract(value, '$.tpr')) FROM json_each("
             "(SELECT ae_roc_curve(s, y) FROM d WHERE g = %d)) "
             "WHERE json_extract(value, '$.fpr') <= 0.1", g);
    got = check_sql_double(db, zName);
    snprintf(zName, sizeof(zName), "group %d: the curve gives the recall at 10%% false alarms", g);
    check_report(fabs(got-want)<=1e-14 && want>0, zName, "got %.17g, want %.17g", got, want);
  }
  check_sql("GROUP BY gives each group's value", db,
    "SELECT count(*), sum(a = (SELECT ae_auroc(s, y) FROM d e WHERE e.g = x.g)) FROM "
    "(SELECT g, ae_auroc(s, y) AS a FROM d GROUP BY g) x", "4|4");
  check_sql("as a window over each partition", db,
    "SELECT count(DISTINCT g), sum(w = (SELECT ae_auroc(s, y) FROM d e WHERE e.g = x.g)) / count(*) "
    "FROM (SELECT g, ae_auroc(s, y) OVER (PARTITION BY g) AS w FROM d) x", "4|1");
  check_sql("as a sliding window: each frame's own value", db,
    "CREATE TABLE w0 AS SELECT row_number() OVER (ORDER BY rowid) AS r, s, y FROM d "
    "  WHERE g < 2 AND s IS NOT NULL AND y IS NOT NULL;"
    "CREATE TABLE w AS SELECT r, ae_auroc(s, y) OVER "
    "  (ORDER BY r ROWS BETWEEN 29 PRECEDING AND CURRENT ROW) AS a FROM w0;"
    "SELECT count(*) = (SELECT count(*) - 29 FROM w0), "
    "  sum(a IS (SELECT ae_auroc(s, y) FROM w0 WHERE w0.r BETWEEN w.r - 29 AND w.r)) = count(*)"
    "  FROM w WHERE r >= 30", "1|1");
  /* Crafted by hand. */
  check_sql("a perfect detector", db,
    "SELECT ae_auroc(column1, column2), ae_average_precision(column1, column2) FROM "
    "(VALUES (1, 0), (2, 0), (3, 1), (4, 1))", "1.0|1.0");
  check_sql("all tied", db,
    "SELECT ae_auroc(s, y), ae_average_precision(s, y) FROM "
    "(SELECT 5 AS s, column1 AS y FROM (VALUES (0), (1), (1), (0), (0)))", "0.5|0.4");
  check_sql("the worst detector", db,
    "SELECT ae_auroc(s, y) FROM (SELECT column1 AS s, column2 AS y FROM (VALUES (1, 1), (2, 0)))",
    "0.0");
  check_sql("booleans from a comparison", db,
    "SELECT ae_auroc(s, s > 2) FROM (SELECT column1 AS s FROM (VALUES (1), (2), (3), (4)))",
    "1.0");
  check_sql("no positive or no negative: NULL", db,
    "SELECT ae_auroc(s, 0), ae_average_precision(s, 0), ae_auroc(s, 1), ae_roc_curve(s, 1) "
    "FROM (SELECT 1 AS s UNION ALL SELECT 2)", "NULL|NULL|NULL|[]");
  check_sql("no rows: NULL", db, "SELECT ae_auroc(s, y) FROM d WHERE 0", "NULL");
  check_sql("the curve, one point per distinct score", db,
    "SELECT ae_roc_curve(s, y) FROM (SELECT column1 AS s, column2 AS y FROM "
    "(VALUES (3, 1), (3, 0), (2, 1), (1, 0)))",
    "[{\"threshold\":3.0,\"tp\":1,\"fp\":1,\"tpr\":0.5,\"fpr\":0.5,\"precision\":0.5},"
    "{\"threshold\":2.0,\"tp\":2,\"fp\":1,\"tpr\":1.0,\"fpr\":0.5,\"precision\":0.666666666666667},"
    "{\"threshold\":1.0,\"tp\":2,\"fp\":2,\"tpr\":1.0,\"fpr\":1.0,\"precision\":0.5}]");
  check_sql_error("is_positive other than 0 or 1", db,
    "SELECT ae_auroc(1.0, 2)", "ae_auroc: is_positive must be 1 (an anomaly) or 0 (a normal row)");
  check_sql_error("a text score", db,
    "SELECT ae_average_precision('high', 1)", "ae_average_precision: the score must be a finite number");
  check_sql_error("an infinite score", db,
    "SELECT ae_roc_curve(1e999, 1)", "ae_roc_curve: the score must be a finite number");
  sqlite3_close(db);
  return check_done();
}
