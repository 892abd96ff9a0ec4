/*
** ae_vector(): numbers to float32 BLOBs, from arguments, a JSON array or a
** BLOB; every bad value named; and such vectors train and score as f32
** pixels do.
*/
#include "check_sql.h"

int main(void){
  sqlite3 *db = check_open(0);
  check_sql("from arguments: INTEGER, REAL, numeric TEXT", db,
    "SELECT hex(ae_vector(1, 2.5, '3', ' -4 '))", "0000803F0000204000004040000080C0");
  check_sql("from a JSON array, as sqlite-vec's vec_f32 takes", db,
    "SELECT hex(ae_vector(' [1, 2.5e0, 3, -4] '))", "0000803F0000204000004040000080C0");
  check_sql("a float32 BLOB is returned as it is", db,
    "SELECT hex(ae_vector(ae_vector(1, 2)))", "0000803F00000040");
  check_sql("rounded to the nearest float32", db,
    "SELECT hex(ae_vector(0.1)), hex(ae_vector('[0.1]'))", "CDCCCC3D|CDCCCC3D");
  check_sql("one value", db, "SELECT length(ae_vector(7))", "4");
  check_sql_error("a NULL argument", db, "SELECT ae_vector(1, NULL)",
    "ae_vector: argument 2 is NULL, not a number");
  check_sql_error("a text argument", db, "SELECT ae_vector(1, 'abc')",
    "ae_vector: argument 2 is 'abc', not a number");
  check_sql_error("a BLOB among numbers", db, "SELECT ae_vector(1, x'00')",
    "ae_vector: argument 2 is a BLOB, not a number");
  check_sql_error("beyond float32", db, "SELECT ae_vector(1e300)",
    "ae_vector: argument 1, 1e+300, is beyond float32's range");
  check_sql_error("an infinity", db, "SELECT ae_vector(1e999)",
    "beyond float32's range");
  check_sql_error("a JSON element that is not a number", db,
    "SELECT ae_vector('[1, \"2\"]')",
    "ae_vector: element 2 of the JSON array is not a number: '\"2\"]'");
  check_sql_error("JSON5 numbers are not JSON", db, "SELECT ae_vector('[.5]')",
    "element 1 of the JSON array is not a number");
  check_sql_error("an empty array", db, "SELECT ae_vector('[]')",
    "ae_vector: the JSON array is empty");
  check_sql_error("a malformed array", db, "SELECT ae_vector('[1 2]')",
    "ae_vector: the JSON array is malformed after element 1");
  check_sql_error("text after the array", db, "SELECT ae_vector('[1] x')",
    "ae_vector: text after the JSON array's ']'");
  check_sql_error("a BLOB of a wrong length", db, "SELECT ae_vector(x'000000')",
    "ae_vector: a BLOB of 3 bytes is not a whole number of float32 values");
  check_sql_error("a BLOB holding NaN", db, "SELECT ae_vector(x'0000803f0000c07f')",
    "ae_vector: value 2 of the BLOB is not a finite number");
  check_sql_error("no argument", db, "SELECT ae_vector()", "ae_vector: takes the values");

  /* Vectors train and score where f32 pixels do. */
  check_sql("a model of three columns, trained on ae_vector", db,
    "CREATE TABLE m(a REAL, b REAL, c REAL);"
    "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM i WHERE n<200)"
    "INSERT INTO m SELECT (n % 7)/7.0, (n % 5)/5.0, ((n % 7) + (n % 5))/12.0 FROM i;"
    "SELECT ae_train('SELECT ae_vector(a, b, c) AS pixels FROM m', 2, "
    "'{\"epochs\": 20, \"dtype\": \"f32\", \"seed\": 1, \"name\": \"cols\"}')",
    "cols");
  check_sql("... scores a row given as a vector", db,
    "SELECT count(*), sum(ae_error('cols', ae_vector(a, b, c)) >= 0) FROM m", "200|200");
  check_sql("... the same from a JSON array", db,
    "SELECT ae_error('cols', ae_vector(a, b, c)) = "
    "       ae_error('cols', ae_vector(json_array(a, b, c))) FROM m WHERE rowid = 3", "1");
  sqlite3_close(db);
  return check_done();
}
