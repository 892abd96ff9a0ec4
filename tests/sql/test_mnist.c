/*
** Acceptance on real MNIST with the tutorial's settings: 784-32-784, Adam,
** batch 256, 50 epochs, validation_split 0.2. Every class's average test
** reconstruction error must be within 5% of the tutorial's table, and the
** final losses near PyTorch's run of the same model on this machine; the
** stack 784-128-32-128-784 ('[128, 32]') reaches a lower mean test error.
** Skipped under the sanitizers (AESQL_SANITIZE=1): 660 GFLOP is too slow
** there; the sanitizer runs cover the same code on small data.
*/
#include "check_sql.h"

static const double tutorial[10] = {
  14.091963, 6.126858, 17.245944, 14.138960, 13.189842,
  15.170581, 14.570642, 11.778826, 16.120203, 11.645038
};

/* The README's table of the per-class test errors of the two models
** ("| class | 32 | [128, 32] |", ten classes then "all"): a[c][0..1].
** Returns the rows read. */
static int readme_table(double a[11][2]){
  FILE *f = fopen("README.md", "r");
  char zLine[256];
  int n = -1;
  if( !f ) return 0;
  while( fgets(zLine, sizeof(zLine), f) && n<11 ){
    if( n<0 ){
      if( strncmp(zLine, "| class | 32 | [128, 32] |", 26)==0 ) n = 0;
      continue;
    }
    if( strncmp(zLine, "|---", 4)==0 ) continue;
    if( sscanf(zLine, "| %*s | %lf | %lf |", &a[n][0], &a[n][1])!=2 ) break;
    n++;
  }
  fclose(f);
  return n<0 ? 0 : n;
}

int main(void){
  sqlite3 *db;
  sqlite3_stmt *st;
  char *zSql;
  const char *d = check_datadir();
  int n = 0;
  if( getenv("AESQL_SANITIZE") ){
    printf("# skipped under sanitizers: 50 epochs on MNIST\n");
    return check_done();
  }
  db = check_open(0);
  zSql = sqlite3_mprintf(
    "CREATE VIRTUAL TABLE mnist_train USING idx(images='%s/mnist/train-images-idx3-ubyte',"
    " labels='%s/mnist/train-labels-idx1-ubyte');"
    "CREATE VIRTUAL TABLE mnist_test USING idx(images='%s/mnist/t10k-images-idx3-ubyte',"
    " labels='%s/mnist/t10k-labels-idx1-ubyte');", d, d, d, d);
  check_sql("import MNIST", db, zSql, "");
  sqlite3_free(zSql);
  check_sql("train with the tutorial's settings", db,
            "SELECT ae_train('mnist_train', 32, '{\"seed\": 42}')", "mnist_train_32");
  check_sql("48000 rows trained, 12000 held out, 50 epochs", db,
            "SELECT rows_train, rows_val, epochs, (SELECT count(*) FROM ae_history) FROM ae_models",
            "48000|12000|50|50");
  /* PyTorch on this machine: loss 0.01737, val_loss 0.01739 after 50 epochs. */
  CHECK_NEAR("final loss near PyTorch's 0.01737 (5%)",
             check_sql_double(db, "SELECT loss FROM ae_models"), 0.01737, 0.01737*0.05);
  CHECK_NEAR("final val_loss near PyTorch's 0.01739 (5%)",
             check_sql_double(db, "SELECT val_loss FROM ae_models"), 0.01739, 0.01739*0.05);
  sqlite3_prepare_v2(db, "SELECT class, avg(ae_error('mnist_train_32', pixels)) "
                     "FROM mnist_test GROUP BY class ORDER BY class", -1, &st, 0);
  while( sqlite3_step(st)==SQLITE_ROW ){
    int c = sqlite3_column_int(st, 0);
    double e = sqlite3_column_double(st, 1);
    char zName[96];
    if( c<0 || c>9 ) continue;
    sqlite3_snprintf(sizeof(zName), zName,
                     "class %d average test error %.2f within 5%% of the tutorial's %.2f",
                     c, e, tutorial[c]);
    CHECK_NEAR(zName, e, tutorial[c], tutorial[c]*0.05);
    n++;
  }
  sqlite3_finalize(st);
  CHECK("ten classes scored", n==10);
  CHECK_NEAR("ae_scores agrees with ae_error on the test set",
             check_sql_double(db, "SELECT (SELECT avg(error) FROM ae_scores('mnist_train_32', 'mnist_test'))"
                              " - (SELECT avg(ae_error('mnist_train_32', pixels)) FROM mnist_test)"),
             0.0, 1e-9);

  /* Calibration holds: the held-out rows of MNIST train calibrate a
  ** threshold whose false-alarm rate on the test images (normal rows the
  ** model never saw) is near the one asked for. */
  {
    double f01 = check_sql_double(db, "SELECT avg(ae_is_anomaly('mnist_train_32', pixels)) FROM mnist_test");
    double f05 = check_sql_double(db, "SELECT avg(ae_is_anomaly('mnist_train_32', pixels, 0.05)) FROM mnist_test");
    char zName[128];
    sqlite3_snprintf(sizeof(zName), zName, "at rate 0.01, %.2f%% of the test images "
                     "are flagged (0.5%% to 1.5%%)", 100*f01);
    check_report(f01>=0.005 && f01<=0.015, zName, "%.4f", f01);
    sqlite3_snprintf(sizeof(zName), zName, "at rate 0.05, %.2f%% of the test images "
                     "are flagged (3%% to 7%%)", 100*f05);
    check_report(f05>=0.03 && f05<=0.07, zName, "%.4f", f05);
  }

  /* MNIST in, Fashion-MNIST out: the model tells them apart. */
  zSql = sqlite3_mprintf(
    "CREATE VIRTUAL TABLE fashion USING idx(images='%s/fashion/t10k-images-idx3-ubyte.gz');", d);
  check_sql("import Fashion-MNIST's test images", db, zSql, "");
  sqlite3_free(zSql);
  {
    double auc = check_sql_double(db,
      "SELECT ae_auroc(error, y) FROM (SELECT error, 0 AS y FROM ae_scores('mnist_train_32', 'mnist_test')"
      " UNION ALL SELECT error, 1 FROM ae_scores('mnist_train_32', 'fashion'))");
    double det = check_sql_double(db,
      "SELECT avg(ae_is_anomaly('mnist_train_32', pixels)) FROM fashion");
    char zName[128];
    sqlite3_snprintf(sizeof(zName), zName, "MNIST against Fashion-MNIST: AUROC %.4f >= 0.955", auc);
    check_report(auc>=0.955, zName, "%.4f", auc);
    printf("# Fashion-MNIST detected at 1%% false alarms: %.1f%%\n", 100*det);
  }

  /* The layer stack: the tutorial's other settings with the encoder
  ** 784-128-32 (784-128-32-128-784) reconstruct the test set better, on
  ** average and class by class as the README's table shows. */
  check_sql("train '[128, 32]' with the tutorial's other settings", db,
            "SELECT ae_train('mnist_train', '[128, 32]', '{\"seed\": 42}')",
            "mnist_train_128_32");
  check_sql("... a mirrored stack of four layers, 50 epochs", db,
            "SELECT layers, activations, n_hidden, epochs FROM ae_models "
            "WHERE name='mnist_train_128_32'",
            "[784,128,32,128,784]|[\"relu\",\"relu\",\"relu\",\"linear\"]|32|50");
  {
    double e32 = check_sql_double(db, "SELECT avg(ae_error('mnist_train_32', pixels)) FROM mnist_test");
    double e128 = check_sql_double(db, "SELECT avg(ae_error('mnist_train_128_32', pixels)) FROM mnist_test");
    char zName[160];
    sqlite3_snprintf(sizeof(zName), zName, "'[128, 32]' reaches a lower mean test "
                     "error than 32: %.3f against %.3f (%.3fx)", e128, e32, e128/e32);
    check_report(e128<e32, zName, "%.4f >= %.4f", e128, e32);
    /* The tolerances: 2% for the tutorial's model; for the stack 15% a
    ** class and 10% in all, as the rounding of another CPU's kernels
    ** sends its 50 epochs elsewhere: with OpenBLAS's Sandybridge sgemm
    ** instead of its Haswell one (both on the same AMD Zen 3) the
    ** tutorial's per-class table is the same to two decimals, the stack's
    ** moves by up to 4.4% a class and 3.7% in all; from an AMD Zen 3
    ** (AVX2) to a Zen 5 (AVX-512, libaesql's own kernels at the wider
    ** registers) the same code moved it by up to 8.7% a class and 6.5% in
    ** all (measured 2026-12-02), about what another seed does. */
    static const double aTol[2] = {0.02, 0.15}, allTol[2] = {0.02, 0.10};
    double aWant[11][2];
    int nRow = readme_table(aWant);
    check_report(nRow==11, "the README has the table of the two models' errors",
                 "%d rows read", nRow);
    sqlite3_prepare_v2(db, "SELECT class, avg(ae_error('mnist_train_32', pixels)), "
                       "avg(ae_error('mnist_train_128_32', pixels)) FROM mnist_test "
                       "GROUP BY class ORDER BY class", -1, &st, 0);
    printf("# class | 32 | [128, 32]\n");
    while( sqlite3_step(st)==SQLITE_ROW ){
      int c = sqlite3_column_int(st, 0), j;
      printf("# %d | %.2f | %.2f\n", c, sqlite3_column_double(st, 1),
             sqlite3_column_double(st, 2));
      for(j=0; j<2 && nRow==11 && c>=0 && c<=9; j++){
        double e = sqlite3_column_double(st, 1+j);
        sqlite3_snprintf(sizeof(zName), zName, "README's table, class %d, %s: "
                         "%.2f within %.0f%% of %.2f", c, j ? "[128, 32]" : "32",
                         e, 100*aTol[j], aWant[c][j]);
        CHECK_NEAR(zName, e, aWant[c][j], aTol[j]*aWant[c][j]);
      }
    }
    sqlite3_finalize(st);
    if( nRow==11 ){
      CHECK_NEAR("README's table, all classes, 32 (2%)", e32, aWant[10][0],
                 allTol[0]*aWant[10][0]);
      CHECK_NEAR("README's table, all classes, [128, 32] (10%)", e128, aWant[10][1],
                 allTol[1]*aWant[10][1]);
    }
    CHECK_NEAR("ae_scores agrees with ae_error for the deep model too",
               check_sql_double(db, "SELECT (SELECT avg(error) FROM ae_scores('mnist_train_128_32', 'mnist_test'))"
                                " - (SELECT avg(ae_error('mnist_train_128_32', pixels)) FROM mnist_test)"),
               0.0, 1e-9);
  }

  /* One-class MNIST (Ruff et al. 2018's protocol): a model of one digit's
  ** training images, the tutorial's settings, 30 epochs; the other nine
  ** digits of the test set are the anomalies. */
  check_sql("ten one-class models", db,
    "SELECT count(ae_train('SELECT pixels FROM mnist_train WHERE class = ' || value, 32, "
    "json_object('name', 'digit_' || value, 'epochs', 30, 'seed', 1))) "
    "FROM json_each('[0,1,2,3,4,5,6,7,8,9]')", "10");
  {
    sqlite3_stmt *q = 0;
    double sum = 0;
    int k = 0;
    sqlite3_prepare_v2(db, "SELECT d.value, (SELECT ae_auroc(s.error, t.class <> d.value) "
      "FROM ae_scores('digit_' || d.value, 'mnist_test') s JOIN mnist_test t ON t.rowid = s.key) "
      "FROM json_each('[0,1,2,3,4,5,6,7,8,9]') d", -1, &q, 0);
    while( sqlite3_step(q)==SQLITE_ROW ){
      printf("# one-class digit %d: AUROC %.4f\n", sqlite3_column_int(q, 0),
             sqlite3_column_double(q, 1));
      sum += sqlite3_column_double(q, 1);
      k++;
    }
    sqlite3_finalize(q);
    {
      char zName[96];
      sqlite3_snprintf(sizeof(zName), zName, "one-class MNIST: mean AUROC %.4f >= 0.955 "
                       "over the ten digits", k ? sum/k : 0);
      check_report(k==10 && sum/k>=0.955, zName, "%d digits, mean %.4f", k, k ? sum/k : 0);
    }
  }
  sqlite3_close(db);
  return check_done();
}
