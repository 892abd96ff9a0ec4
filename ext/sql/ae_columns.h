/*
** Models of numeric columns: what they read and how a row of SQL values
** becomes the floats a model scores.
**
**   SELECT ae_train('SELECT radius_mean, texture_mean FROM cells', 8);
**   SELECT ae_error('cells_8', radius_mean, texture_mean) FROM cells;
**
** A source without a pixels column is read as columns (ae_source.h): each
** column a feature, in order, whose name is stored with the model
** (ae_models.features, a JSON array). Every cell must hold a number: an
** INTEGER, a REAL, or TEXT that reads wholly as a decimal number (what
** the shell's CSV import makes: white space around it allowed, as SQLite's
** numeric affinity allows it; no hexadecimal, no "inf" or "nan"; converted
** by SQLite, so the C locale's decimal point or another never matters). A
** NULL is an error, or, when the model was trained with "nulls": "mean",
** the training mean. Anything else is an error that names the column and
** the row (or the argument), and says what to do.
**
** The input transform (ae_xform.h) stored in the weights BLOB takes each
** value to the units the model was trained in; the scoring kernels then
** read the row as an f32 model's pixels.
*/
#ifndef AE_COLUMNS_H
#define AE_COLUMNS_H

#include "ae_model.h"

/* What a cell holds (aesql_cell_*). */
enum {
  AESQL_CELL_NUMBER = 0,   /* a finite number                         */
  AESQL_CELL_NULL,         /* NULL (the double is then NaN)           */
  AESQL_CELL_TEXT,         /* TEXT that is not a number               */
  AESQL_CELL_BLOB,         /* a BLOB                                  */
  AESQL_CELL_INFINITE      /* a number beyond double's range (1e999)  */
};

/* Is z (n bytes) a decimal number as SQLite's numeric affinity reads it:
** white space, a sign, digits with an optional point (".5" and "5." too),
** an optional exponent, white space? Nothing else (no NUL inside). */
int aesql_text_is_number(const unsigned char *z, int n);

/* The number in column i of st's row, or in v: AESQL_CELL_*, *pv set for
** NUMBER (and NaN for NULL). */
int aesql_cell_column(sqlite3_stmt *st, int i, double *pv);
int aesql_cell_value(sqlite3_value *v, double *pv);

/* The message for a cell that is not a number (kind from above, not
** NUMBER): "zFunc: zWhere is 'abc', not a number; ..." where zWhere says
** which cell ("column 'x' of row 3 of the source", "argument 2 (x)");
** zText the TEXT (for AESQL_CELL_TEXT); zNull what to say of a NULL.
** sqlite3_malloc'd (NULL: out of memory). */
char *aesql_cell_error(const char *zFunc, const char *zWhere, int kind,
                       const char *zText, const char *zNull);

/* The names as a JSON array of strings, sqlite3_malloc'd (NULL: out of
** memory): what ae_models.features holds. */
char *aesql_json_names(char *const *az, int n);
/* s += z as a JSON string; v as a JSON number (%!.15g, SQLite's JSON
** precision), or null when it is not finite. */
void aesql_json_string(sqlite3_str *s, const char *z);
void aesql_json_number(sqlite3_str *s, double v);

/* s += the model's feature names, comma-separated, the first 32 (then
** "... and N more"). */
void aesql_cols_append_names(sqlite3_str *s, const aesql_model *m);

/* Does model m read its input through a transform or by column, rather
** than as pixels as they are? */
int aesql_cols_model(const aesql_model *m);

/* A row of model m from SQL, into x (m->nn.d floats, transformed), and
** raw (NULL, or m->nn.d doubles: the values as given, NaN for a NULL):
**   _stmt    columns iFirst.. of the row st is on; iRow names the row
**            (1-based) in messages: "column 'x' of row iRow of the source"
**   _args    the values argv[0..d): "argument k (x)", k counted from the
**            function's first argument, so argv[-1] is the model's name
**   _vector  a BLOB of d little-endian float32 raw values: "value k (x)
**            of the vector" (NaN and infinities refused)
** 0, or non-zero with *pzErr set ("zFunc: ..."; NULL: out of memory). */
int aesql_cols_stmt(const aesql_model *m, sqlite3_stmt *st, int iFirst,
                    sqlite3_int64 iRow, const char *zFunc, float *x,
                    char **pzErr);
int aesql_cols_args(const aesql_model *m, sqlite3_value **argv,
                    const char *zFunc, float *x, double *raw, char **pzErr);
int aesql_cols_vector(const aesql_model *m, const void *pBlob,
                      const char *zFunc, float *x, double *raw, char **pzErr);

#endif /* AE_COLUMNS_H */
