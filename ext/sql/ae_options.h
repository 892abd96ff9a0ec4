/*
** ae_train's options, described once in a table (ae_options.c): name,
** type, range, default and the field each one sets. The table drives the
** parsing of the options JSON, the "known: ..." list of the error for an
** unknown option, and the JSON of every option in effect that is stored
** with the model (ae_models.options); tests/sql/test_options.c checks that
** the README's table of options names the same ones.
*/
#ifndef AE_OPTIONS_H
#define AE_OPTIONS_H

#include "aesql_int.h"

typedef struct aesql_train_opts {
  /* the fit, as Keras' fit() and compile() have them */
  int epochs;               /* 50 */
  int batch_size;           /* 256 */
  double validation_split;  /* 0.2: the last rows, in source order */
  int shuffle;              /* 1 */
  double learning_rate, beta_1, beta_2, epsilon;  /* Adam: 0.001 0.9 0.999 1e-7 */
  int adam;                 /* AESQL_ADAM_KERAS: where epsilon goes (ae_adam.h) */
  sqlite3_int64 seed;       /* -1 until parsed: then drawn when not given */
  /* the model */
  int activation;           /* hidden layers: AESQL_ACT_RELU */
  int output_activation;    /* AESQL_ACT_LINEAR or AESQL_ACT_SIGMOID */
  double l2;                /* 0: kernel_regularizer=l2(l2) on every layer */
  double dropout;           /* 0: inverted dropout on the hidden layers */
  /* early stopping, as EarlyStopping(monitor='val_loss') */
  int patience;             /* 0: off */
  double min_delta;         /* 0 */
  int restore_best;         /* -1 until parsed: then 1 when patience > 0 */
  /* the rest */
  int dtype;                /* AESQL_U8 (bytes) or AESQL_F32 */
  double false_alarm_rate;  /* AESQL_DEFAULT_RATE (ae_calib.h) */
  int threads;              /* 0: one per core (ae_fit.h) */
  int progress;             /* 1, 0, or -1: when stderr is a terminal */
  int replace;              /* 0 */
  char *zName;              /* sqlite3_malloc'd, or NULL for the default */
  /* a source of numeric columns (ae_columns.h) */
  int scale;                /* AESQL_SCALE_STANDARD (ae_xform.h) */
  int nulls;                /* AESQL_NULLS_ERROR */
  uint64_t mGiven;          /* the options given: aesql_options_given() */
} aesql_train_opts;

/* Fills *o with the defaults, then applies the JSON object pJson (NULL or
** SQL NULL: none): strict JSON on every SQLite version (JSON5 refused),
** no \u0000, no option twice, each in its range; seed drawn from the
** system's entropy when not given. Returns non-zero after setting an
** error on ctx, "ae_train: option 'x' must be ..." or "ae_train: unknown
** option 'x' (known: epochs, batch_size, ...)". After an error *o holds
** nothing to free (aesql_options_free on it is harmless); after success,
** aesql_options_free releases zName. Every value is then the one in
** effect: the seed drawn, restore_best resolved. */
int aesql_options_parse(sqlite3_context *ctx, sqlite3 *db, sqlite3_value *pJson,
                        aesql_train_opts *o);
void aesql_options_free(aesql_train_opts *o);

/* Was option zName given (rather than left to its default)? What suits
** one kind of source and not the other is refused only when given. */
int aesql_options_given(const aesql_train_opts *o, const char *zName);

/* Every option in effect as a JSON object, in the table's order, except
** name, progress and replace (how to call, not what was trained);
** threads is nThread, the count the training used. Numbers as %!.15g, or
** with 17 digits when 15 would not read back as the same double, so that
** the JSON parses again to the same options; booleans true/false; enums
** by name. sqlite3_malloc'd; NULL when out of memory. */
char *aesql_options_json(const aesql_train_opts *o, int nThread);

/* The option names, comma-separated, in the table's order. */
const char *aesql_options_known(void);

#endif /* AE_OPTIONS_H */
