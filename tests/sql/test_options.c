/*
** ae_train's options table (ext/sql/ae_options.c), through SQL, before
** ae_train itself calls it: a test-only function reads the options as
** ae_train will and returns what ae_train will store.
**
**   make build/tests/test_options && build/tests/test_options
**     (from the repository root: the last check reads README.md)
**
**   ae_test_options([json])        aesql_options_json() of the options
**                                  read, or the error aesql_options_parse()
**                                  raises; threads is written as 3 when not
**                                  given (a training on 3 cores)
**   ae_test_options_call([json])   what is not stored: name, threads as
**                                  given, progress, replace, as JSON
**
** Checked: every default; every option's range just inside (accepted, and
** stored as given) and just outside (refused with its message, exactly);
** wrong types; the unknown-option message with the known list; an option
** given twice; JSON5, non-objects, non-text refused; \u0000 refused; long
** keys cut at 40 characters; NULL options; the stored JSON read back gives
** the same JSON; restore_best's default; the README's table of options
** names exactly the table's options; and out of memory at every
** allocation of a parse (once only, and from then on) gives the right
** answer or "out of memory", never another error (but SQLite's own "SQL
** logic error", see faults()), and leaks nothing.
*/
#include "check_sql.h"
#include "../../ext/sql/ae_options.h"

/* ---- an allocator that fails on request (as test_fault.c's) ---- */

static sqlite3_mem_methods fBase;
static struct {
  int armed, iFail, persist, nCall, nFail;
  long nLive;             /* blocks outstanding */
} ft;

static int fault_now(void){
  if( !ft.armed ) return 0;
  ft.nCall++;
  if( ft.nCall==ft.iFail || (ft.persist && ft.nCall>ft.iFail) ){ ft.nFail++; return 1; }
  return 0;
}
static void *f_malloc(int n){
  void *p;
  if( fault_now() ) return 0;
  p = fBase.xMalloc(n);
  if( p ) ft.nLive++;
  return p;
}
static void f_free(void *p){ if( p ) ft.nLive--; fBase.xFree(p); }
static void *f_realloc(void *p, int n){ return fault_now() ? 0 : fBase.xRealloc(p, n); }
static int f_size(void *p){ return fBase.xSize(p); }
static int f_roundup(int n){ return fBase.xRoundup(n); }
static int f_init(void *p){ return fBase.xInit(p); }
static void f_shutdown(void *p){ fBase.xShutdown(p); }

static void fault_install(void){
  static sqlite3_mem_methods m = {
    f_malloc, f_free, f_realloc, f_size, f_roundup, f_init, f_shutdown, 0
  };
  if( sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fBase)!=SQLITE_OK
   || sqlite3_config(SQLITE_CONFIG_MALLOC, &m)!=SQLITE_OK
   || sqlite3_initialize()!=SQLITE_OK ){
    fprintf(stderr, "cannot install the failing allocator\n");
    exit(2);
  }
}

/* ---- the test-only SQL functions ---- */

static void test_options(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  aesql_train_opts o;
  char *z;
  if( aesql_options_parse(ctx, sqlite3_context_db_handle(ctx), argc ? argv[0] : 0, &o) ){
    aesql_options_free(&o);   /* harmless after an error */
    return;
  }
  z = aesql_options_json(&o, o.threads ? o.threads : 3);
  aesql_options_free(&o);
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

static void test_options_call(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  aesql_train_opts o;
  char *z;
  if( aesql_options_parse(ctx, sqlite3_context_db_handle(ctx), argc ? argv[0] : 0, &o) ){
    return;
  }
  z = o.zName ? sqlite3_mprintf("{\"name\":\"%s\",\"threads\":%d,\"progress\":%d,\"replace\":%d}",
                                o.zName, o.threads, o.progress, o.replace)
              : sqlite3_mprintf("{\"name\":null,\"threads\":%d,\"progress\":%d,\"replace\":%d}",
                                o.threads, o.progress, o.replace);
  aesql_options_free(&o);
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

static int register_test_options(sqlite3 *db, char **pzErr, const sqlite3_api_routines *p){
  int rc;
  (void)pzErr; (void)p;
  rc = sqlite3_create_function(db, "ae_test_options", -1, SQLITE_UTF8, 0,
                               test_options, 0, 0);
  if( rc==SQLITE_OK ){
    rc = sqlite3_create_function(db, "ae_test_options_call", -1, SQLITE_UTF8, 0,
                                 test_options_call, 0, 0);
  }
  return rc;
}

/* ---- helpers ---- */

/* The options in effect, as stored, when none are given but the seed. */
static const char *zDefaults =
  "{\"epochs\":50,\"batch_size\":256,\"validation_split\":0.2,"
  "\"learning_rate\":0.001,\"beta_1\":0.9,\"beta_2\":0.999,\"epsilon\":1.0e-07,"
  "\"seed\":7,\"threads\":3,\"shuffle\":true,\"dtype\":\"u8\","
  "\"false_alarm_rate\":0.01,\"activation\":\"relu\",\"output_activation\":\"linear\","
  "\"l2\":0.0,\"dropout\":0.0,\"patience\":0,\"min_delta\":0.0,\"restore_best\":false,"
  "\"adam\":\"keras\",\"scale\":\"standard\",\"nulls\":\"error\"}";

static const char *zKnown =
  "epochs, batch_size, validation_split, learning_rate, beta_1, beta_2, "
  "epsilon, seed, name, threads, shuffle, dtype, progress, replace, "
  "false_alarm_rate, activation, output_activation, l2, dropout, patience, "
  "min_delta, restore_best, adam, scale, nulls";

/* Options not stored: read back through ae_test_options_call. */
static int is_call_option(const char *zKey){
  return strcmp(zKey, "name")==0 || strcmp(zKey, "progress")==0
      || strcmp(zKey, "replace")==0;
}

/* SQL that reads {"zKey": zVal} (and a seed, so that the answer is known,
** unless zKey is the seed), through ae_test_options or _call. */
static char *opt_sql(const char *zKey, const char *zVal){
  char *zJson = strcmp(zKey, "seed")==0
      ? sqlite3_mprintf("{\"%s\": %s}", zKey, zVal)
      : sqlite3_mprintf("{\"%s\": %s, \"seed\": 1}", zKey, zVal);
  char *zSql = sqlite3_mprintf("SELECT ae_test_options%s(%Q)",
                               is_call_option(zKey) ? "_call" : "", zJson);
  sqlite3_free(zJson);
  return zSql;
}

/* The text of zKey's value in the JSON object zJson, as written (no
** nesting in these objects); sqlite3_free() it. NULL if absent. */
static char *json_field(const char *zJson, const char *zKey){
  char *zPat = sqlite3_mprintf("\"%s\":", zKey);
  const char *a = zJson ? strstr(zJson, zPat) : 0;
  const char *b;
  size_t n = strlen(zPat);
  sqlite3_free(zPat);
  if( !a ) return 0;
  a += n;
  for(b=a; *b && *b!=',' && *b!='}'; b++){}
  return sqlite3_mprintf("%.*s", (int)(b-a), a);
}

/* {"zKey": zVal} is accepted, and zKey is then written as zWant. */
static void opt_ok(sqlite3 *db, const char *zKey, const char *zVal, const char *zWant){
  char *zSql = opt_sql(zKey, zVal);
  char *z = check_query(db, zSql);
  char *zGot = json_field(z, zKey);
  char *zName = sqlite3_mprintf("%s %s accepted, stored as %s", zKey, zVal, zWant);
  check_report(zGot && strcmp(zGot, zWant)==0, zName, "sql [%s]\n  got  [%s]", zSql, z);
  sqlite3_free(zName);
  sqlite3_free(zGot);
  sqlite3_free(z);
  sqlite3_free(zSql);
}

/* {"zKey": zVal} is refused with "ae_train: option 'zKey' zMust", exactly. */
static void opt_bad(sqlite3 *db, const char *zKey, const char *zVal, const char *zMust){
  char *zSql = opt_sql(zKey, zVal);
  char *zWant = sqlite3_mprintf("ERROR: ae_train: option '%s' %s", zKey, zMust);
  char *zName = sqlite3_mprintf("%s %s refused", zKey, zVal);
  check_sql(zName, db, zSql, zWant);
  sqlite3_free(zName);
  sqlite3_free(zWant);
  sqlite3_free(zSql);
}

/* ae_test_options(zArg) (SQL) is refused as an unknown option, quoted
** in the message as zShown, with the known ones listed. */
static void unknown_is(sqlite3 *db, const char *zName, const char *zArg,
                       const char *zShown){
  char *zSql = sqlite3_mprintf("SELECT ae_test_options(%s)", zArg);
  char *zWant = sqlite3_mprintf("ERROR: ae_train: unknown option '%s' (known: %s)",
                                zShown, zKnown);
  check_sql(zName, db, zSql, zWant);
  sqlite3_free(zWant);
  sqlite3_free(zSql);
}

/* ---- 1. defaults ---- */
static void defaults(sqlite3 *db){
  check_sql("the defaults, stored (given only the seed)", db,
            "SELECT ae_test_options('{\"seed\": 7}')", zDefaults);
  check_sql("NULL options are the defaults", db,
            "SELECT json_remove(ae_test_options(NULL), '$.seed') = "
            "       json_remove(ae_test_options('{\"seed\": 7}'), '$.seed')", "1");
  check_sql("no options are the defaults", db,
            "SELECT json_remove(ae_test_options(), '$.seed') = "
            "       json_remove(ae_test_options('{}'), '$.seed'),"
            "       json_remove(ae_test_options('{}'), '$.seed') = "
            "       json_remove(ae_test_options('{\"seed\": 7}'), '$.seed')", "1|1");
  check_sql("what is not stored: name, threads, progress, replace", db,
            "SELECT ae_test_options_call(NULL)",
            "{\"name\":null,\"threads\":0,\"progress\":-1,\"replace\":0}");
  check_sql("no seed: one drawn, in range, a different one each time", db,
            "SELECT typeof(s1), s1 >= 0, s2 >= 0, s1 <> s2 FROM ("
            "  SELECT json_extract(ae_test_options('{}'), '$.seed') AS s1,"
            "         json_extract(ae_test_options(NULL), '$.seed') AS s2)",
            "integer|1|1|1");
  CHECK("aesql_options_known() lists the table in order",
        strcmp(aesql_options_known(), zKnown)==0);
}

/* ---- 2. every option's range edges and types ---- */
static void ranges(sqlite3 *db){
  static const char *zInt = "must be an integer from 1 to 1000000";
  static const char *zSplit = "must be a number from 0 up to (not including) 1";
  static const char *zRate = "must be a number above 0 and at most 10";
  static const char *zBool = "must be true or false";
  static const char *zDtype = "must be 'u8' (bytes, scaled by 1/255) or "
                              "'f32' (little-endian float32, as is)";
  static const char *zAct = "must be 'linear', 'relu', 'leaky_relu', 'elu', "
                            "'selu', 'tanh' or 'sigmoid'";
  static const char *zOut = "must be 'linear' or 'sigmoid'";
  static const char *zAdam = "must be 'keras' (epsilon added to sqrt(v), as Keras) or "
                             "'torch' (epsilon added to sqrt(v_hat), as torch.optim.Adam)";
  static const char *zSeed = "must be an integer from 0 to 9223372036854775807";
  static const char *azAct[] = { "linear", "relu", "leaky_relu", "elu", "selu",
                                 "tanh", "sigmoid" };
  static const char *azBoolOpt[] = { "shuffle", "restore_best", "progress", "replace" };
  char zVal[64];
  int i;

  /* A value of the wrong type gets the same message as one out of range. */
  opt_ok(db, "epochs", "1", "1");
  opt_ok(db, "epochs", "1000000", "1000000");
  opt_bad(db, "epochs", "0", zInt);
  opt_bad(db, "epochs", "1000001", zInt);
  opt_bad(db, "epochs", "-1", zInt);
  opt_bad(db, "epochs", "2.5", zInt);
  opt_bad(db, "epochs", "2.0", zInt);          /* a real, if a whole one */
  opt_bad(db, "epochs", "1e3", zInt);
  opt_bad(db, "epochs", "\"10\"", zInt);
  opt_bad(db, "epochs", "true", zInt);
  opt_bad(db, "epochs", "null", zInt);
  opt_bad(db, "epochs", "[1]", zInt);
  opt_bad(db, "epochs", "{\"a\": 1}", zInt);

  opt_ok(db, "batch_size", "1", "1");
  opt_ok(db, "batch_size", "1048576", "1048576");
  opt_bad(db, "batch_size", "0", "must be an integer from 1 to 1048576");
  opt_bad(db, "batch_size", "1048577", "must be an integer from 1 to 1048576");

  opt_ok(db, "validation_split", "0", "0.0");
  opt_ok(db, "validation_split", "0.5", "0.5");
  /* The largest double below 1: 15 digits would print 1.0, refused when
  ** read back; 17 keep it. */
  opt_ok(db, "validation_split", "0.9999999999999999", "0.99999999999999989");
  opt_bad(db, "validation_split", "1", zSplit);
  opt_bad(db, "validation_split", "1.0", zSplit);
  opt_bad(db, "validation_split", "-5e-324", zSplit);
  opt_bad(db, "validation_split", "\"0.5\"", zSplit);

  opt_ok(db, "learning_rate", "5e-324", "4.94065645841247e-324");
  opt_ok(db, "learning_rate", "10", "10.0");
  opt_ok(db, "learning_rate", "0.1", "0.1");
  opt_bad(db, "learning_rate", "0", zRate);
  opt_bad(db, "learning_rate", "-0.001", zRate);
  opt_bad(db, "learning_rate", "10.000000000000002", zRate);
  opt_bad(db, "learning_rate", "1e999", zRate);   /* an infinity */
  opt_ok(db, "epsilon", "1e-10", "1.0e-10");
  opt_ok(db, "epsilon", "10", "10.0");
  opt_bad(db, "epsilon", "0", zRate);
  opt_bad(db, "epsilon", "10.000000000000002", zRate);

  opt_ok(db, "beta_1", "0", "0.0");
  opt_ok(db, "beta_1", "0.9999999999999999", "0.99999999999999989");
  opt_bad(db, "beta_1", "1", zSplit);
  opt_bad(db, "beta_1", "-0.1", zSplit);
  opt_ok(db, "beta_2", "0", "0.0");
  opt_ok(db, "beta_2", "0.99999", "0.99999");
  opt_bad(db, "beta_2", "1", zSplit);
  opt_bad(db, "beta_2", "-1e-300", zSplit);

  opt_ok(db, "seed", "0", "0");
  opt_ok(db, "seed", "9223372036854775807", "9223372036854775807");
  opt_bad(db, "seed", "-1", zSeed);
  /* Beyond 64 bits SQLite reads an integer as a real; not clamped. */
  opt_bad(db, "seed", "9223372036854775808", zSeed);
  opt_bad(db, "seed", "99999999999999999999", zSeed);
  opt_bad(db, "seed", "1.5", zSeed);
  opt_bad(db, "seed", "\"1\"", zSeed);

  opt_ok(db, "threads", "1", "1");
  opt_ok(db, "threads", "256", "256");
  opt_bad(db, "threads", "0", "must be an integer from 1 to 256");
  opt_bad(db, "threads", "257", "must be an integer from 1 to 256");
  check_sql("threads as given, before the training says how many it used", db,
            "SELECT ae_test_options_call('{\"threads\": 5}')",
            "{\"name\":null,\"threads\":5,\"progress\":-1,\"replace\":0}");

  for(i=0; i<(int)(sizeof(azBoolOpt)/sizeof(azBoolOpt[0])); i++){
    opt_ok(db, azBoolOpt[i], "true", is_call_option(azBoolOpt[i]) ? "1" : "true");
    opt_ok(db, azBoolOpt[i], "false", is_call_option(azBoolOpt[i]) ? "0" : "false");
    opt_bad(db, azBoolOpt[i], "1", zBool);
    opt_bad(db, azBoolOpt[i], "0", zBool);
    opt_bad(db, azBoolOpt[i], "\"true\"", zBool);
    opt_bad(db, azBoolOpt[i], "null", zBool);
  }

  opt_ok(db, "dtype", "\"u8\"", "\"u8\"");
  opt_ok(db, "dtype", "\"f32\"", "\"f32\"");
  opt_bad(db, "dtype", "\"U8\"", zDtype);
  opt_bad(db, "dtype", "\"f64\"", zDtype);
  opt_bad(db, "dtype", "\"\"", zDtype);
  opt_bad(db, "dtype", "0", zDtype);

  opt_ok(db, "false_alarm_rate", "5e-324", "4.94065645841247e-324");
  opt_ok(db, "false_alarm_rate", "0.9999999999999999", "0.99999999999999989");
  opt_ok(db, "false_alarm_rate", "0.05", "0.05");
  opt_bad(db, "false_alarm_rate", "0", "must be a number above 0 and below 1");
  opt_bad(db, "false_alarm_rate", "1", "must be a number above 0 and below 1");

  for(i=0; i<(int)(sizeof(azAct)/sizeof(azAct[0])); i++){
    snprintf(zVal, sizeof(zVal), "\"%s\"", azAct[i]);
    opt_ok(db, "activation", zVal, zVal);
  }
  opt_bad(db, "activation", "\"ReLU\"", zAct);
  opt_bad(db, "activation", "\"softmax\"", zAct);
  opt_bad(db, "activation", "\"relu \"", zAct);
  opt_bad(db, "activation", "\"\"", zAct);
  opt_bad(db, "activation", "1", zAct);
  opt_bad(db, "activation", "null", zAct);

  opt_ok(db, "output_activation", "\"linear\"", "\"linear\"");
  opt_ok(db, "output_activation", "\"sigmoid\"", "\"sigmoid\"");
  for(i=0; i<(int)(sizeof(azAct)/sizeof(azAct[0])); i++){
    if( strcmp(azAct[i], "linear")==0 || strcmp(azAct[i], "sigmoid")==0 ) continue;
    snprintf(zVal, sizeof(zVal), "\"%s\"", azAct[i]);
    opt_bad(db, "output_activation", zVal, zOut);
  }
  check_sql("output_activation elu: refused, the message names linear and sigmoid", db,
            "SELECT ae_test_options('{\"output_activation\": \"elu\"}')",
            "ERROR: ae_train: option 'output_activation' must be 'linear' or 'sigmoid'");

  /* A source of numeric columns' options (ae_train refuses them, given,
  ** for a source of pixels: tests/sql/test_columns.c). */
  opt_ok(db, "scale", "\"standard\"", "\"standard\"");
  opt_ok(db, "scale", "\"minmax\"", "\"minmax\"");
  opt_ok(db, "scale", "\"none\"", "\"none\"");
  opt_bad(db, "scale", "\"zscore\"", "must be 'standard', 'minmax' or 'none'");
  opt_bad(db, "scale", "\"Standard\"", "must be 'standard', 'minmax' or 'none'");
  opt_bad(db, "scale", "1", "must be 'standard', 'minmax' or 'none'");
  opt_ok(db, "nulls", "\"error\"", "\"error\"");
  opt_ok(db, "nulls", "\"mean\"", "\"mean\"");
  opt_bad(db, "nulls", "\"median\"", "must be 'error' or 'mean'");
  opt_bad(db, "nulls", "null", "must be 'error' or 'mean'");

  opt_ok(db, "l2", "0", "0.0");
  opt_ok(db, "l2", "1", "1.0");
  opt_ok(db, "l2", "0.0001", "0.0001");
  opt_bad(db, "l2", "-5e-324", "must be a number from 0 to 1");
  opt_bad(db, "l2", "1.0000000000000002", "must be a number from 0 to 1");
  opt_bad(db, "l2", "\"0.1\"", "must be a number from 0 to 1");

  opt_ok(db, "dropout", "0", "0.0");
  opt_ok(db, "dropout", "0.5", "0.5");
  opt_ok(db, "dropout", "0.9999999999999999", "0.99999999999999989");
  opt_bad(db, "dropout", "1", zSplit);
  opt_bad(db, "dropout", "-0.01", zSplit);
  opt_bad(db, "dropout", "true", zSplit);

  opt_ok(db, "patience", "0", "0");
  opt_ok(db, "patience", "1000000", "1000000");
  opt_bad(db, "patience", "-1", "must be an integer from 0 to 1000000");
  opt_bad(db, "patience", "1000001", "must be an integer from 0 to 1000000");
  opt_bad(db, "patience", "3.5", "must be an integer from 0 to 1000000");

  opt_ok(db, "min_delta", "0", "0.0");
  opt_ok(db, "min_delta", "0.001", "0.001");
  opt_ok(db, "min_delta", "1e300", "1.0e+300");
  opt_bad(db, "min_delta", "1.000000000000001e300", "must be a number from 0 to 1e+300");
  opt_bad(db, "min_delta", "1e999", "must be a number from 0 to 1e+300");
  opt_bad(db, "min_delta", "-5e-324", "must be a number from 0 to 1e+300");

  opt_ok(db, "adam", "\"keras\"", "\"keras\"");
  opt_ok(db, "adam", "\"torch\"", "\"torch\"");
  opt_bad(db, "adam", "\"Keras\"", zAdam);
  opt_bad(db, "adam", "\"pytorch\"", zAdam);
  opt_bad(db, "adam", "\"\"", zAdam);
  opt_bad(db, "adam", "1", zAdam);
  opt_bad(db, "adam", "null", zAdam);

  opt_ok(db, "name", "\"m\"", "\"m\"");
  opt_bad(db, "name", "\"\"", "must be a non-empty string");
  opt_bad(db, "name", "1", "must be a non-empty string");
  opt_bad(db, "name", "null", "must be a non-empty string");
  opt_bad(db, "name", "[\"m\"]", "must be a non-empty string");
}

/* ---- 3. the object itself ---- */
static void objects(sqlite3 *db){
  static const char *zObj = "ERROR: ae_train: options must be a JSON object, "
    "e.g. '{\"epochs\": 10, \"seed\": 1}' (strict JSON: names in double quotes)";
  static const char *azJson5[] = {
    "{epochs: 1}", "{'epochs': 1}", "{\"epochs\": 1,}", "{\"epochs\": 0x10}",
    "{\"epochs\": +1}", "{\"epochs\": .5}", "/* c */ {}", "{\"l2\": Infinity}",
    "{\"l2\": NaN}", "{\"name\": 'm'}", "{\"epochs\": 1} // c",
  };
  static const char *azNotObject[] = {
    "[1]", "1", "\"x\"", "null", "true", "epochs=3", "", " ", "{", "{}}",
  };
  char *zSql, *zName;
  int i;
  for(i=0; i<(int)(sizeof(azJson5)/sizeof(azJson5[0])); i++){
    zSql = sqlite3_mprintf("SELECT ae_test_options(%Q)", azJson5[i]);
    zName = sqlite3_mprintf("JSON5 refused on every SQLite version: %s", azJson5[i]);
    check_sql(zName, db, zSql, zObj);
    sqlite3_free(zName); sqlite3_free(zSql);
  }
  for(i=0; i<(int)(sizeof(azNotObject)/sizeof(azNotObject[0])); i++){
    zSql = sqlite3_mprintf("SELECT ae_test_options(%Q)", azNotObject[i]);
    zName = sqlite3_mprintf("not an object: '%s'", azNotObject[i]);
    check_sql(zName, db, zSql, zObj);
    sqlite3_free(zName); sqlite3_free(zSql);
  }
  check_sql("options as a number: not JSON text", db, "SELECT ae_test_options(5)",
            "ERROR: ae_train: options must be JSON text, e.g. '{\"epochs\": 10}'");
  check_sql("options as a blob, even of JSON: not JSON text", db,
            "SELECT ae_test_options(CAST('{}' AS BLOB))",
            "ERROR: ae_train: options must be JSON text, e.g. '{\"epochs\": 10}'");
  check_sql("white space around the object is JSON", db,
            "SELECT json_extract(ae_test_options(' {\"epochs\": 3}\n'), '$.epochs')", "3");

  check_sql("\\u0000 in a value: refused", db,
            "SELECT ae_test_options('{\"name\": \"a\\u0000b\"}')",
            "ERROR: ae_train: options must not contain a NUL character (\\u0000)");
  check_sql("\\u0000 in a key: refused", db,
            "SELECT ae_test_options('{\"epochs\\u0000x\": 1}')",
            "ERROR: ae_train: options must not contain a NUL character (\\u0000)");
  check_sql("a NUL from json_object: refused", db,
            "SELECT ae_test_options(json_object('name', 'a' || char(0) || 'b'))",
            "ERROR: ae_train: options must not contain a NUL character (\\u0000)");
  check_sql("... while an escaped backslash before u0000 is plain text", db,
            "SELECT ae_test_options_call(json_object('name', 'a\\u0000b'))",
            "{\"name\":\"a\\u0000b\",\"threads\":0,\"progress\":-1,\"replace\":0}");
  check_sql("an escaped name is read unescaped", db,
            "SELECT json_extract(ae_test_options('{\"\\u0065pochs\": 4}'), '$.epochs')", "4");

  check_sql("an unknown option: the message lists the known ones", db,
            "SELECT ae_test_options('{\"epoch\": 3}')",
            "ERROR: ae_train: unknown option 'epoch' (known: epochs, batch_size, "
            "validation_split, learning_rate, beta_1, beta_2, epsilon, seed, name, "
            "threads, shuffle, dtype, progress, replace, false_alarm_rate, activation, "
            "output_activation, l2, dropout, patience, min_delta, restore_best, adam, "
            "scale, nulls)");
  unknown_is(db, "names are case-sensitive", "'{\"Epochs\": 3}'", "Epochs");
  unknown_is(db, "an empty name is unknown", "'{\"\": 3}'", "");

  check_sql("an option given twice", db,
            "SELECT ae_test_options('{\"epochs\": 1, \"epochs\": 1}')",
            "ERROR: ae_train: option 'epochs' is given twice");
  check_sql("given twice beats a bad second value", db,
            "SELECT ae_test_options('{\"epochs\": 1, \"epochs\": \"x\"}')",
            "ERROR: ae_train: option 'epochs' is given twice");
  check_sql("an option given twice after all the others", db,
            "SELECT ae_test_options('{\"epochs\": 1, \"batch_size\": 2, "
            "\"validation_split\": 0, \"learning_rate\": 0.1, \"beta_1\": 0, "
            "\"beta_2\": 0, \"epsilon\": 1, \"seed\": 1, \"name\": \"m\", \"threads\": 1, "
            "\"shuffle\": true, \"dtype\": \"u8\", \"progress\": false, \"replace\": false, "
            "\"false_alarm_rate\": 0.5, \"activation\": \"elu\", "
            "\"output_activation\": \"sigmoid\", \"l2\": 0, \"dropout\": 0, "
            "\"patience\": 1, \"min_delta\": 0, \"restore_best\": true, "
            "\"adam\": \"torch\", \"adam\": \"keras\"}')",
            "ERROR: ae_train: option 'adam' is given twice");
  check_sql("the first bad option is the one named", db,
            "SELECT ae_test_options('{\"epochs\": 0, \"nosuch\": 1}')",
            "ERROR: ae_train: option 'epochs' must be an integer from 1 to 1000000");
}

/* ---- 4. long keys ---- */
static void long_keys(sqlite3 *db){
  char *z;
  unknown_is(db, "a key of 40 characters is quoted whole",
             "json_object(printf('%.40c', 'k'), 1)",
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk");
  unknown_is(db, "a key of 41 is cut at 40, with ...",
             "json_object(printf('%.41c', 'k'), 1)",
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...");
  z = check_query(db, "SELECT ae_test_options(json_object(printf('%.100000c', 'k'), 1))");
  check_report(z && strstr(z, "unknown option 'kkkk") && strstr(z, "k...' (known: ")
               && strlen(z) < 400, "a key of 100000 characters: a short message",
               "%.300s", z);
  sqlite3_free(z);
  /* 41 two-byte characters: cut at 40 characters (80 bytes), not 40
  ** bytes, and never inside a character. */
  unknown_is(db, "a key of 41 two-byte characters is cut at 40 characters",
             "json_object(replace(printf('%.41c', 'x'), 'x', 'é'), 1)",
             "éééééééééééééééééééééééééééééééééééééééé...");
  unknown_is(db, "a key of 40 two-byte characters is whole",
             "json_object(replace(printf('%.40c', 'x'), 'x', 'é'), 1)",
             "éééééééééééééééééééééééééééééééééééééééé");
}

/* ---- 5. restore_best, and the stored JSON read back ---- */
static void stored(sqlite3 *db){
  static const char *azIn[] = {
    "{\"seed\": 1}",
    "{\"seed\": 0, \"patience\": 3}",
    "{\"epochs\": 7, \"batch_size\": 3, \"validation_split\": 0.30000000000000004, "
    "\"learning_rate\": 0.123456789012345678, \"beta_1\": 0.9999999999999999, "
    "\"beta_2\": 0, \"epsilon\": 5e-324, \"seed\": 9223372036854775807, "
    "\"threads\": 7, \"shuffle\": false, \"dtype\": \"f32\", "
    "\"false_alarm_rate\": 0.1, \"activation\": \"selu\", "
    "\"output_activation\": \"sigmoid\", \"l2\": 1, \"dropout\": 0.9999999999999999, "
    "\"patience\": 1000000, \"min_delta\": 1e300, \"restore_best\": false, "
    "\"adam\": \"torch\", \"name\": \"m\", \"progress\": true, \"replace\": true}",
    "{\"l2\": 1e-5, \"dropout\": 0.2, \"min_delta\": 1e-4, \"activation\": \"leaky_relu\", "
    "\"seed\": 42, \"validation_split\": 0, \"learning_rate\": 1.5e-3}",
  };
  char *zSql, *zName;
  int i;
  check_sql("restore_best: false without patience", db,
            "SELECT json_extract(ae_test_options('{\"seed\": 1}'), '$.restore_best')", "0");
  check_sql("restore_best: true with patience", db,
            "SELECT json_extract(ae_test_options('{\"seed\": 1, \"patience\": 2}'), "
            "'$.restore_best')", "1");
  check_sql("restore_best false with patience: as given", db,
            "SELECT json_extract(ae_test_options('{\"patience\": 2, \"restore_best\": false}'), "
            "'$.restore_best')", "0");
  check_sql("restore_best true without patience: as given", db,
            "SELECT json_extract(ae_test_options('{\"restore_best\": true}'), "
            "'$.restore_best')", "1");
  check_sql("restore_best before patience in the object: the same", db,
            "SELECT json_extract(ae_test_options('{\"restore_best\": false, \"patience\": 2}'), "
            "'$.restore_best'), json_extract(ae_test_options('{\"patience\": 0}'), "
            "'$.restore_best')", "0|0");
  check_sql("restore_best's default and patience 0 stored as false", db,
            "SELECT instr(ae_test_options('{\"patience\": 0}'), '\"restore_best\":false') > 0",
            "1");
  for(i=0; i<(int)(sizeof(azIn)/sizeof(azIn[0])); i++){
    zSql = sqlite3_mprintf("SELECT ae_test_options(ae_test_options(%Q)) = ae_test_options(%Q), "
                           "json_valid(ae_test_options(%Q))", azIn[i], azIn[i], azIn[i]);
    zName = sqlite3_mprintf("stored JSON %d read back gives the same JSON", i+1);
    check_sql(zName, db, zSql, "1|1");
    sqlite3_free(zName); sqlite3_free(zSql);
  }
  /* (Not json_object(): SQLite 3.40 writes its reals with 15 digits.) */
  check_sql("... and the same numbers, to the bit", db,
            "SELECT json_extract(j, '$.beta_1') = 0.9999999999999999,"
            "       json_extract(j, '$.dropout') = 0.9999999999999999,"
            "       json_extract(j, '$.dropout') < 1,"
            "       json_extract(j, '$.epsilon') = 5e-324,"
            "       json_extract(j, '$.seed') = 9223372036854775807,"
            "       json_extract(j, '$.validation_split') = 0.30000000000000004,"
            "       json_extract(j, '$.learning_rate') = 0.123456789012345678,"
            "       json_extract(j, '$.threads')"
            "  FROM (SELECT ae_test_options(ae_test_options('{"
            "    \"beta_1\": 0.9999999999999999, \"dropout\": 0.9999999999999999,"
            "    \"epsilon\": 5e-324, \"seed\": 9223372036854775807,"
            "    \"validation_split\": 0.30000000000000004, "
            "    \"learning_rate\": 0.123456789012345678, \"threads\": 7}')) AS j)",
            "1|1|1|1|1|1|1|7");
  zSql = sqlite3_mprintf("SELECT ae_test_options('{\"name\": \"m\", \"progress\": true, "
                         "\"replace\": true, \"seed\": 7}') = %Q", zDefaults);
  check_sql("name, progress, replace are not stored: the defaults' JSON", db, zSql, "1");
  sqlite3_free(zSql);
  /* Models stored before the option existed have no "adam": they were
  ** trained with Keras' Adam, which is what their options read as. */
  check_sql("stored options without adam (older models) read as keras", db,
            "SELECT json_extract(ae_test_options(json_remove(ae_test_options("
            "'{\"seed\": 7}'), '$.adam')), '$.adam')", "keras");
}

/* ---- 6. the README's table of options ---- */

/* Appends the `backticked` names of cell z (n bytes) to the list in p,
** each followed by a comma (",name,name,"). */
static void cell_names(const char *z, int n, sqlite3_str *p){
  int i = 0;
  while( i<n ){
    int j;
    if( z[i]!='`' ){ i++; continue; }
    for(j=i+1; j<n && z[j]!='`'; j++){}
    if( j>=n ) break;
    sqlite3_str_appendf(p, "%.*s,", j-i-1, z+i+1);
    i = j+1;
  }
}

/* Is name z (n bytes) in the list zList (",a,b,")? */
static int in_list(const char *zList, const char *z, int n){
  char *zPat = sqlite3_mprintf(",%.*s,", n, z);
  int r = strstr(zList, zPat)!=0;
  sqlite3_free(zPat);
  return r;
}

static void readme(void){
  FILE *f = fopen("README.md", "rb");
  char zLine[4096];
  sqlite3_str *pRows, *pMiss, *pExtra, *pKnown;
  char *zReadme, *zKnownList, *zMiss, *zExtra;
  const char *a, *b;
  int inTable = 0, found = 0, nRow = 0;
  if( !f ){
    CHECK("README.md opens (run from the repository root)", f!=0);
    return;
  }
  pRows = sqlite3_str_new(0);
  /* The table is the run of lines starting with '|' that holds the row
  ** of epochs; its rows after the header and the |---| line. */
  while( fgets(zLine, sizeof(zLine), f) ){
    if( zLine[0]!='|' ){
      if( found ) break;
      inTable = 0;
      continue;
    }
    if( !inTable ){
      inTable = 1;
      sqlite3_str_reset(pRows);
      sqlite3_str_appendall(pRows, ",");
      nRow = 0;
      continue;               /* the header */
    }
    if( zLine[1]=='-' || zLine[1]==':' ) continue;
    if( strncmp(zLine, "| `epochs` |", 12)==0 ) found = 1;
    a = zLine+1;
    b = strchr(a, '|');
    if( !b ) continue;
    cell_names(a, (int)(b-a), pRows);
    nRow++;
  }
  fclose(f);
  zReadme = sqlite3_str_finish(pRows);
  CHECK("README.md has the table of ae_train's options", found && nRow>10);
  if( !found || !zReadme ){ sqlite3_free(zReadme); return; }
  pMiss = sqlite3_str_new(0);
  pExtra = sqlite3_str_new(0);
  /* Both ways round: the table's names not in the README, and back.
  ** Both lists as ",a,b,", so that in_list() finds whole names. */
  pKnown = sqlite3_str_new(0);
  for(a=aesql_options_known(); *a; a=b){
    for(b=a; *b && *b!=','; b++){}
    sqlite3_str_appendf(pKnown, ",%.*s", (int)(b-a), a);
    if( !in_list(zReadme, a, (int)(b-a)) ) sqlite3_str_appendf(pMiss, " %.*s", (int)(b-a), a);
    while( *b==',' || *b==' ' ) b++;
  }
  sqlite3_str_appendall(pKnown, ",");
  zKnownList = sqlite3_str_finish(pKnown);
  for(a=zReadme+1; *a; a=b+1){
    for(b=a; *b && *b!=','; b++){}
    if( !*b ) break;
    if( !in_list(zKnownList, a, (int)(b-a)) ){
      sqlite3_str_appendf(pExtra, " %.*s", (int)(b-a), a);
    }
  }
  zMiss = sqlite3_str_finish(pMiss);
  zExtra = sqlite3_str_finish(pExtra);
  check_report(zMiss==0, "the README's table has every option",
               "missing from README.md:%s", zMiss ? zMiss : "");
  check_report(zExtra==0, "the README's table has no option the table lacks",
               "in README.md only:%s", zExtra ? zExtra : "");
  sqlite3_free(zMiss);
  sqlite3_free(zExtra);
  sqlite3_free(zKnownList);
  sqlite3_free(zReadme);
}

/* ---- 7. out of memory at every allocation ---- */

/* Runs zSql (one value) with the iFail-th allocation failing (and every
** later one if persist); returns malloc'd text: the value, or "ERROR: "
** and the message. *pnFail: allocations that failed; *pRc: the step's
** result code. */
static char *fault_run(sqlite3 *db, const char *zSql, int iFail, int persist,
                       int *pnFail, int *pRc){
  sqlite3_stmt *st = 0;
  char *z = 0;
  int rc;
  ft.iFail = iFail; ft.persist = persist; ft.nCall = 0; ft.nFail = 0; ft.armed = 1;
  rc = sqlite3_prepare_v2(db, zSql, -1, &st, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_step(st);
  if( rc==SQLITE_ROW ){
    const char *v = (const char*)sqlite3_column_text(st, 0);
    z = v ? strdup(v) : 0;
    if( !z ){ ft.armed = 0; z = strdup("ERROR: (no text)"); }
  }else{
    const char *e = sqlite3_errmsg(db);
    z = malloc(strlen(e)+8);
    if( z ) sprintf(z, "ERROR: %s", e);
  }
  sqlite3_finalize(st);
  ft.armed = 0;
  *pnFail = ft.nFail;
  *pRc = rc;
  return z;
}

static void faults(void){
  static const char *azSql[] = {
    "SELECT ae_test_options('{\"epochs\": 3, \"name\": \"m\", \"l2\": 0.5, "
    "\"activation\": \"tanh\", \"patience\": 2, \"seed\": 1}')",
    "SELECT ae_test_options('{\"epochs\": 3, \"nosuch\": 1}')",
    "SELECT ae_test_options('{\"epochs\": 3, \"dropout\": 1}')",
    "SELECT ae_test_options('{epochs: 3}')",
  };
  int q, persist;
  for(q=0; q<(int)(sizeof(azSql)/sizeof(azSql[0])); q++){
    int nFail, rc, rcWant;
    sqlite3 *db = check_open(0);
    char *zWant = fault_run(db, azSql[q], 0, 0, &nFail, &rcWant);
    sqlite3_close(db);
    for(persist=0; persist<2; persist++){
      int i, nRun = 0, nBad = 0;
      char zWhy[600] = "";
      for(i=1; i<10000; i++){
        /* A fresh connection each time, and the blocks counted from before
        ** it opens to after it closes: what the connection keeps (its
        ** error message, json_each's table) is not taken for a leak. */
        long nLive0 = ft.nLive;
        char *z;
        int ok;
        db = check_open(0);
        sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, 0, 0, 0);  /* every allocation seen */
        z = fault_run(db, azSql[q], i, persist, &nFail, &rc);
        sqlite3_close(db);
        ok = z && (strcmp(z, zWant)==0 || strcmp(z, "ERROR: out of memory")==0);
        /* SQLite's own: at the end of a statement that failed, it copies
        ** the message into the connection (sqlite3VdbeTransferError)
        ** with the allocations marked benign; when one fails, the error
        ** keeps its code and loses its text: "SQL logic error". */
        if( !ok && z && rcWant==SQLITE_ERROR && rc==SQLITE_ERROR
         && strcmp(z, "ERROR: SQL logic error")==0 ){
          ok = 1;
        }
        if( ft.nLive!=nLive0 ){
          ok = 0;
          if( !zWhy[0] ) snprintf(zWhy, sizeof(zWhy), "allocation %d: %ld blocks leaked",
                                  i, ft.nLive-nLive0);
        }
        if( !ok && !zWhy[0] ){
          snprintf(zWhy, sizeof(zWhy), "allocation %d: [%.400s]", i, z ? z : "(null)");
        }
        nBad += !ok;
        nRun++;
        free(z);
        if( nFail==0 ) break;   /* no allocation left to fail */
      }
      {
        char zName[200];
        snprintf(zName, sizeof(zName), "out of memory at each of %d allocations (%s): %.60s",
                 nRun, persist ? "persistent" : "transient", azSql[q]+7);
        check_report(nBad==0 && nRun>1, zName, "%d bad runs; first: %s", nBad, zWhy);
      }
    }
    free(zWant);
  }
}

int main(void){
  sqlite3 *db;
  fault_install();
  sqlite3_auto_extension((void(*)(void))register_test_options);
  db = check_open(0);
  defaults(db);
  ranges(db);
  objects(db);
  long_keys(db);
  stored(db);
  sqlite3_close(db);
  readme();
  faults();
  return check_done();
}
