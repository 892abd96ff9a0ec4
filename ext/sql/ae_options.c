/*
** ae_train's options (ae_options.h), described once, in aOpt[] below:
**
**   SELECT ae_train('mnist_train', 32, '{"epochs": 10, "activation": "elu",
**                                        "patience": 3, "seed": 1}');
**
** Each row of aOpt[] is one option: its name, its type (integer, number,
** boolean, string, or one of a list of names), its range, its default and
** the field of aesql_train_opts it sets. Everything else is made from the
** table: the parsing of the options JSON; the error of an option out of
** range or of the wrong type, whose wording ("must be an integer from 1 to
** 1000000") is generated from the type and the range, so that the message
** and the check cannot disagree; the "known: ..." list of the error for an
** unknown option; and the JSON of every option in effect that is stored
** with the model (ae_models.options). tests/sql/test_options.c checks that
** the README's table of options names exactly these. A new option is one
** row here and one row there.
**
** The options JSON is strict JSON (RFC 8259) on every SQLite version:
** JSON5 ('{epochs: 1}'), which SQLite 3.42+ would accept and 3.40 refuses,
** is refused everywhere, so that a script means the same on all of them.
*/
#include "ae_options.h"
#include "ae_model.h"
#include "ae_calib.h"
#include "ae_store.h"
#include "../core/ae_act.h"
#include "../core/ae_xform.h"
#include "../core/ae_adam.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- the table ---- */

/* An option's type, opt_def.eType. */
enum { OPT_INTEGER, OPT_NUMBER, OPT_BOOLEAN, OPT_STRING, OPT_ENUM };

/* opt_def.mFlag */
#define OPT_LO_OPEN  0x01   /* number: rLo itself is out of range */
#define OPT_HI_OPEN  0x02   /* number: rHi itself is out of range */
#define OPT_CALL     0x04   /* how to call, not what was trained: not stored */
#define OPT_NTHREAD  0x08   /* stored as the thread count the training used */

/* The names an OPT_ENUM option takes. The values are those of an enum of
** the core (an activation, an encoding), named and parsed by the core's
** own functions, so that the options and the rest of libaesql spell them
** alike. nChoice 0: every value that xName names, from 0 up (a new
** activation in ae_act.c is then a new choice here, with no edit). */
typedef struct opt_enum {
  int (*xParse)(const char*);  /* the value named z, or -1 */
  const char *(*xName)(int);   /* the name of a value, NULL past the last */
  int nChoice;                 /* aChoice[]'s size, or 0: every value */
  const int *aChoice;          /* the values allowed, in the message's order */
  const char *const *azNote;   /* NULL, or a note per choice for the message */
} opt_enum;

/* One option. Integers, booleans and enums set an int or a sqlite3_int64
** (nByte says which), numbers a double, strings a sqlite3_malloc'd char*. */
typedef struct opt_def {
  const char *zName;
  unsigned char eType;         /* OPT_INTEGER, ... */
  unsigned char mFlag;         /* OPT_LO_OPEN, ... */
  unsigned short iOff, nByte;  /* the field of aesql_train_opts it sets */
  sqlite3_int64 iLo, iHi;      /* integer: the range, bounds included */
  double rLo, rHi;             /* number: the range, bounds as mFlag says */
  sqlite3_int64 iDflt;         /* integer, boolean, enum: the default */
  double rDflt;                /* number: the default */
  const opt_enum *pEnum;       /* enum: its names */
} opt_def;

static int dtype_parse(const char *z){
  return strcmp(z, "u8")==0 ? AESQL_U8 : strcmp(z, "f32")==0 ? AESQL_F32 : -1;
}
static const int aDtype[] = { AESQL_U8, AESQL_F32 };
static const char *const azDtypeNote[] = {
  "bytes, scaled by 1/255", "little-endian float32, as is"
};
static const opt_enum eDtype = { dtype_parse, aesql_dtype_name, 2, aDtype, azDtypeNote };
/* The hidden layers take any activation; the output layer's must keep the
** reconstruction comparable with the pixels: as they are (linear), or in
** [0, 1] as u8 pixels scaled by 1/255 are (sigmoid). */
static const opt_enum eAct = { aesql_act_parse, aesql_act_name, 0, 0, 0 };
static const int aOutAct[] = { AESQL_ACT_LINEAR, AESQL_ACT_SIGMOID };
static const opt_enum eOutAct = { aesql_act_parse, aesql_act_name, 2, aOutAct, 0 };
/* Adam's epsilon as Keras places it (the tutorial's) or as torch.optim.Adam
** does; the notes say where, the one thing that differs. */
static const int aAdam[] = { AESQL_ADAM_KERAS, AESQL_ADAM_TORCH };
static const char *const azAdamNote[] = {
  "epsilon added to sqrt(v), as Keras",
  "epsilon added to sqrt(v_hat), as torch.optim.Adam"
};
static const opt_enum eAdam = { aesql_adam_mode_parse, aesql_adam_mode_name, 2, aAdam, azAdamNote };
/* A source of numeric columns (ae_columns.h): how the columns are scaled,
** and what a NULL becomes. */
static const opt_enum eScale = { aesql_scale_parse, aesql_scale_name, 0, 0, 0 };
static const opt_enum eNulls = { aesql_nulls_parse, aesql_nulls_name, 0, 0, 0 };

#define AT(f) (unsigned short)offsetof(aesql_train_opts, f), \
              (unsigned short)sizeof(((aesql_train_opts*)0)->f)

/* In this order the options are listed in the unknown-option error and
** stored. Those ae_train had before the layer stack come first, in the
** order it listed and stored them, so that the options of the models
** stored so far read as before; the new ones follow.
**
** Two defaults are not values: seed -1 is drawn from the system's entropy
** once the options are read, and restore_best -1 becomes "patience > 0";
** both are stored as the values used (opts_settle()).
**
** min_delta's upper bound is there only to keep it finite: JSON's 1e999
** reads as an infinity, which the stored options could not hold (JSON has
** no infinity). 1e300 is far above any loss (a mean of squared errors of
** float32 values), so every useful min_delta is in range. */
static const opt_def aOpt[] = {
  { "epochs",           OPT_INTEGER, 0, AT(epochs),
    .iLo = 1, .iHi = 1000000, .iDflt = 50 },
  { "batch_size",       OPT_INTEGER, 0, AT(batch_size),
    .iLo = 1, .iHi = 1<<20, .iDflt = 256 },
  { "validation_split", OPT_NUMBER, OPT_HI_OPEN, AT(validation_split),
    .rLo = 0, .rHi = 1, .rDflt = 0.2 },
  { "learning_rate",    OPT_NUMBER, OPT_LO_OPEN, AT(learning_rate),
    .rLo = 0, .rHi = 10, .rDflt = 0.001 },
  { "beta_1",           OPT_NUMBER, OPT_HI_OPEN, AT(beta_1),
    .rLo = 0, .rHi = 1, .rDflt = 0.9 },
  { "beta_2",           OPT_NUMBER, OPT_HI_OPEN, AT(beta_2),
    .rLo = 0, .rHi = 1, .rDflt = 0.999 },
  { "epsilon",          OPT_NUMBER, OPT_LO_OPEN, AT(epsilon),
    .rLo = 0, .rHi = 10, .rDflt = 1e-7 },
  { "seed",             OPT_INTEGER, 0, AT(seed),
    .iLo = 0, .iHi = 0x7fffffffffffffffLL, .iDflt = -1 },
  { "name",             OPT_STRING, OPT_CALL, AT(zName),
    .iDflt = 0 },   /* NULL: ae_train makes the name from the source's */
  { "threads",          OPT_INTEGER, OPT_NTHREAD, AT(threads),
    .iLo = 1, .iHi = 256, .iDflt = 0 },
  { "shuffle",          OPT_BOOLEAN, 0, AT(shuffle), .iDflt = 1 },
  { "dtype",            OPT_ENUM, 0, AT(dtype),
    .iDflt = AESQL_U8, .pEnum = &eDtype },
  { "progress",         OPT_BOOLEAN, OPT_CALL, AT(progress), .iDflt = -1 },
  { "replace",          OPT_BOOLEAN, OPT_CALL, AT(replace), .iDflt = 0 },
  { "false_alarm_rate", OPT_NUMBER, OPT_LO_OPEN|OPT_HI_OPEN, AT(false_alarm_rate),
    .rLo = 0, .rHi = 1, .rDflt = AESQL_DEFAULT_RATE },
  { "activation",       OPT_ENUM, 0, AT(activation),
    .iDflt = AESQL_ACT_RELU, .pEnum = &eAct },
  { "output_activation", OPT_ENUM, 0, AT(output_activation),
    .iDflt = AESQL_ACT_LINEAR, .pEnum = &eOutAct },
  { "l2",               OPT_NUMBER, 0, AT(l2),
    .rLo = 0, .rHi = 1, .rDflt = 0 },
  { "dropout",          OPT_NUMBER, OPT_HI_OPEN, AT(dropout),
    .rLo = 0, .rHi = 1, .rDflt = 0 },
  { "patience",         OPT_INTEGER, 0, AT(patience),
    .iLo = 0, .iHi = 1000000, .iDflt = 0 },
  { "min_delta",        OPT_NUMBER, 0, AT(min_delta),
    .rLo = 0, .rHi = 1e300, .rDflt = 0 },
  { "restore_best",     OPT_BOOLEAN, 0, AT(restore_best), .iDflt = -1 },
  { "adam",             OPT_ENUM, 0, AT(adam),
    .iDflt = AESQL_ADAM_KERAS, .pEnum = &eAdam },
  { "scale",            OPT_ENUM, 0, AT(scale),
    .iDflt = AESQL_SCALE_STANDARD, .pEnum = &eScale },
  { "nulls",            OPT_ENUM, 0, AT(nulls),
    .iDflt = AESQL_NULLS_ERROR, .pEnum = &eNulls },
};
#define N_OPT ((int)(sizeof(aOpt)/sizeof(aOpt[0])))

/* The options seen so far are bits of a uint64_t (opt_apply()). */
_Static_assert(N_OPT<=64, "aOpt[] has more rows than a uint64_t has bits");

/* ---- the fields ---- */

static void opt_put_int(aesql_train_opts *o, const opt_def *d, sqlite3_int64 v){
  char *a = (char*)o + d->iOff;
  if( d->nByte==sizeof(sqlite3_int64) ){
    memcpy(a, &v, sizeof(v));
  }else{
    int x = (int)v;
    memcpy(a, &x, sizeof(x));
  }
}
static sqlite3_int64 opt_get_int(const aesql_train_opts *o, const opt_def *d){
  const char *a = (const char*)o + d->iOff;
  if( d->nByte==sizeof(sqlite3_int64) ){
    sqlite3_int64 v;
    memcpy(&v, a, sizeof(v));
    return v;
  }else{
    int x;
    memcpy(&x, a, sizeof(x));
    return x;
  }
}
static double *opt_double(aesql_train_opts *o, const opt_def *d){
  return (double*)((char*)o + d->iOff);
}
static char **opt_string(aesql_train_opts *o, const opt_def *d){
  return (char**)((char*)o + d->iOff);
}

static void opt_defaults(aesql_train_opts *o){
  int i;
  memset(o, 0, sizeof(*o));
  for(i=0; i<N_OPT; i++){
    const opt_def *d = &aOpt[i];
    if( d->eType==OPT_NUMBER ) *opt_double(o, d) = d->rDflt;
    else if( d->eType!=OPT_STRING ) opt_put_int(o, d, d->iDflt);
  }
}

/* The defaults that depend on the rest, as their values in effect. */
static void opts_settle(aesql_train_opts *o){
  if( o->restore_best<0 ) o->restore_best = o->patience>0;
}

/* ---- the errors ---- */

/* How many characters (not bytes) an option's name is quoted with in an
** error: a long one is cut there, at a character's boundary, and "..."
** added, so that a megabyte of key makes a short message of valid UTF-8. */
#define OPT_KEY_SHOWN 40

static void opt_append_key(sqlite3_str *p, const char *zKey){
  int nChar = 0;
  const unsigned char *z;
  for(z=(const unsigned char*)zKey; *z && nChar<=OPT_KEY_SHOWN; z++){
    if( (*z & 0xc0)!=0x80 ) nChar++;
  }
  /* SQLite's printf: with "!", the precision of %s counts characters. */
  sqlite3_str_appendf(p, "%!.*s%s", OPT_KEY_SHOWN, zKey,
                      nChar>OPT_KEY_SHOWN ? "..." : "");
}

/* What option d must be, made from its type and range. */
static void opt_append_must(sqlite3_str *p, const opt_def *d){
  switch( d->eType ){
    case OPT_INTEGER:
      sqlite3_str_appendf(p, "must be an integer from %lld to %lld", d->iLo, d->iHi);
      break;
    case OPT_NUMBER: {
      int loOpen = (d->mFlag & OPT_LO_OPEN)!=0, hiOpen = (d->mFlag & OPT_HI_OPEN)!=0;
      sqlite3_str_appendf(p,
          !loOpen && !hiOpen ? "must be a number from %.15g to %.15g" :
          !loOpen            ? "must be a number from %.15g up to (not including) %.15g" :
          !hiOpen            ? "must be a number above %.15g and at most %.15g" :
                               "must be a number above %.15g and below %.15g",
          d->rLo, d->rHi);
      break;
    }
    case OPT_BOOLEAN:
      sqlite3_str_appendall(p, "must be true or false");
      break;
    case OPT_STRING:
      sqlite3_str_appendall(p, "must be a non-empty string");
      break;
    case OPT_ENUM: {
      const opt_enum *e = d->pEnum;
      int i, n = e->nChoice;
      if( n==0 ) while( n<64 && e->xName(n) ) n++;
      sqlite3_str_appendall(p, "must be ");
      for(i=0; i<n; i++){
        int v = e->nChoice ? e->aChoice[i] : i;
        sqlite3_str_appendf(p, "%s'%s'", i==0 ? "" : i==n-1 ? " or " : ", ",
                            e->xName(v));
        if( e->azNote ) sqlite3_str_appendf(p, " (%s)", e->azNote[i]);
      }
      break;
    }
  }
}

/* Sets the error built in p on ctx (out of memory if p ran out). */
static int opt_result_error(sqlite3_context *ctx, sqlite3_str *p){
  char *z = sqlite3_str_finish(p);
  if( !z ){
    sqlite3_result_error_nomem(ctx);
  }else{
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
  }
  return 1;
}

/* "ae_train: option 'zKey' zWhat", or, zWhat NULL, what d must be. */
static int opt_error(sqlite3_context *ctx, const char *zKey, const opt_def *d,
                     const char *zWhat){
  sqlite3_str *p = sqlite3_str_new(0);
  sqlite3_str_appendall(p, "ae_train: option '");
  opt_append_key(p, zKey);
  sqlite3_str_appendall(p, "' ");
  if( zWhat ) sqlite3_str_appendall(p, zWhat);
  else opt_append_must(p, d);
  return opt_result_error(ctx, p);
}

static int opt_unknown(sqlite3_context *ctx, const char *zKey){
  sqlite3_str *p = sqlite3_str_new(0);
  sqlite3_str_appendall(p, "ae_train: unknown option '");
  opt_append_key(p, zKey);
  sqlite3_str_appendf(p, "' (known: %s)", aesql_options_known());
  return opt_result_error(ctx, p);
}

/* ---- reading ---- */

/* A seed for a training that was given none, from the system's entropy
** (two trainings in the same second differ); stored with the model's
** options so that it can be trained again bit for bit. */
static sqlite3_int64 random_seed(void){
  uint64_t v = 0;
  if( getrandom(&v, sizeof(v), GRND_NONBLOCK)!=(ssize_t)sizeof(v) ){
    /* No getrandom (old kernel, seccomp): /dev/urandom, else the clock. */
    int fd = open("/dev/urandom", O_RDONLY|O_CLOEXEC);
    if( fd<0 || read(fd, &v, sizeof(v))!=(ssize_t)sizeof(v) ){
      struct timespec t;
      clock_gettime(CLOCK_REALTIME, &t);
      v = (uint64_t)t.tv_sec*1000000007u ^ (uint64_t)t.tv_nsec ^ ((uint64_t)getpid()<<32)
        ^ (uint64_t)(uintptr_t)&t;
    }
    if( fd>=0 ) close(fd);
  }
  return (sqlite3_int64)(v & 0x7fffffffffffffffull);
}

/* Does JSON text z hold an escaped NUL, \u0000, in a string? */
static int json_has_nul(const char *z){
  int inStr = 0;
  for(; z && *z; z++){
    if( *z=='"' ) inStr = !inStr;
    else if( inStr && *z=='\\' ){
      if( z[1]=='u' && strncmp(z+2, "0000", 4)==0 ) return 1;
      if( z[1] ) z++;   /* the escaped character */
    }
  }
  return 0;
}

static int opt_enum_allows(const opt_enum *e, int v){
  int i;
  if( e->nChoice==0 ) return v>=0 && e->xName(v)!=0;
  for(i=0; i<e->nChoice && e->aChoice[i]!=v; i++){}
  return i<e->nChoice;
}

static int opt_in_range(const opt_def *d, double v){
  int loOk = (d->mFlag & OPT_LO_OPEN) ? v>d->rLo : v>=d->rLo;
  int hiOk = (d->mFlag & OPT_HI_OPEN) ? v<d->rHi : v<=d->rHi;
  return loOk && hiOk;   /* NaN: neither */
}

/* Applies the row of json_each that st is on (key, type, atom, the atom's
** length in bytes) to *o. *pmSeen has a bit for each option seen so far.
** Returns non-zero after setting an error on ctx. */
static int opt_apply(sqlite3_context *ctx, sqlite3_stmt *st,
                     aesql_train_opts *o, uint64_t *pmSeen){
  const char *k = (const char*)sqlite3_column_text(st, 0);
  const char *t = (const char*)sqlite3_column_text(st, 1);
  const opt_def *d;
  int i;
  if( !k ) k = "";
  if( !t ) t = "";
  for(i=0; i<N_OPT && strcmp(aOpt[i].zName, k)!=0; i++){}
  if( i==N_OPT ) return opt_unknown(ctx, k);
  d = &aOpt[i];
  /* JSON allows a key twice; an option given twice is a mistake. */
  if( *pmSeen & ((uint64_t)1<<i) ) return opt_error(ctx, k, 0, "is given twice");
  *pmSeen |= (uint64_t)1<<i;
  switch( d->eType ){
    case OPT_INTEGER: {
      sqlite3_int64 v = sqlite3_column_int64(st, 2);
      /* An integer beyond 64 bits, which JSON allows, is a real in SQLite
      ** (99999999999999999999 is 1e20), and column_int64 would clamp it
      ** into range: refused instead. */
      if( strcmp(t, "integer")!=0 || sqlite3_column_type(st, 2)!=SQLITE_INTEGER
       || v<d->iLo || v>d->iHi ){
        return opt_error(ctx, k, d, 0);
      }
      opt_put_int(o, d, v);
      break;
    }
    case OPT_NUMBER: {
      double v = sqlite3_column_double(st, 2);
      if( (strcmp(t, "integer")!=0 && strcmp(t, "real")!=0) || !opt_in_range(d, v) ){
        return opt_error(ctx, k, d, 0);
      }
      *opt_double(o, d) = v;
      break;
    }
    case OPT_BOOLEAN: {
      if( strcmp(t, "true")!=0 && strcmp(t, "false")!=0 ) return opt_error(ctx, k, d, 0);
      opt_put_int(o, d, t[0]=='t');
      break;
    }
    case OPT_ENUM: {
      const char *v = (const char*)sqlite3_column_text(st, 2);
      int e = strcmp(t, "text")==0 && v ? d->pEnum->xParse(v) : -1;
      if( !opt_enum_allows(d->pEnum, e) ) return opt_error(ctx, k, d, 0);
      opt_put_int(o, d, e);
      break;
    }
    case OPT_STRING: {
      const char *v = (const char*)sqlite3_column_text(st, 2);
      char **pz = opt_string(o, d);
      if( strcmp(t, "text")!=0 || !v || !v[0] ) return opt_error(ctx, k, d, 0);
      if( (int)strlen(v)!=sqlite3_column_int(st, 3) ){
        return opt_error(ctx, k, d, "must not contain a NUL character");
      }
      sqlite3_free(*pz);
      *pz = sqlite3_mprintf("%s", v);
      if( !*pz ){ sqlite3_result_error_nomem(ctx); return 1; }
      break;
    }
  }
  return 0;
}

/* Is pJson, TEXT, a JSON object? Returns 0 when it is, else non-zero
** after setting an error on ctx. */
static int opt_check_object(sqlite3_context *ctx, sqlite3 *db, sqlite3_value *pJson){
  sqlite3_stmt *st = 0;
  int rc, bad = 0;
  rc = sqlite3_prepare_v2(db, "SELECT json_valid(?1) AND json_type(?1)='object'",
                          -1, &st, 0);
  if( rc==SQLITE_OK ){
    sqlite3_bind_value(st, 1, pJson);
    rc = sqlite3_step(st);
    if( rc==SQLITE_ROW ){
      bad = !sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  st = 0;
  if( bad && rc==SQLITE_OK ){
    /* json_valid() reads out of memory as invalid JSON: ask json_type(),
    ** which raises "malformed JSON" for bad text and SQLITE_NOMEM for
    ** the other; then json_valid() again, in case the first one ran
    ** out of memory only for a moment. */
    rc = sqlite3_prepare_v2(db, "SELECT json_type(?1), json_valid(?1) AND "
                            "json_type(?1)='object'", -1, &st, 0);
    if( rc==SQLITE_OK ){
      sqlite3_bind_value(st, 1, pJson);
      if( sqlite3_step(st)==SQLITE_ROW ) bad = !sqlite3_column_int(st, 1);
      rc = sqlite3_reset(st);
      if( rc!=SQLITE_NOMEM ) rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    st = 0;
  }
  if( rc!=SQLITE_OK && rc!=SQLITE_ERROR ){
    aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
    return 1;
  }
  if( bad || rc!=SQLITE_OK ){
    sqlite3_result_error(ctx, "ae_train: options must be a JSON object, "
                         "e.g. '{\"epochs\": 10, \"seed\": 1}' (strict JSON: "
                         "names in double quotes)", -1);
    return 1;
  }
  if( json_has_nul((const char*)sqlite3_value_text(pJson)) ){
    /* SQLite's JSON (3.40) cuts a string at \u0000: a name would be cut. */
    sqlite3_result_error(ctx, "ae_train: options must not contain a NUL "
                         "character (\\u0000)", -1);
    return 1;
  }
  return 0;
}

int aesql_options_parse(sqlite3_context *ctx, sqlite3 *db, sqlite3_value *pJson,
                        aesql_train_opts *o){
  opt_defaults(o);
  if( pJson && sqlite3_value_type(pJson)!=SQLITE_NULL ){
    sqlite3_stmt *st = 0;
    uint64_t mSeen = 0;
    int rc, bad = 0;
    if( sqlite3_value_type(pJson)!=SQLITE_TEXT ){
      sqlite3_result_error(ctx, "ae_train: options must be JSON text, e.g. "
                           "'{\"epochs\": 10}'", -1);
      return 1;
    }
    if( opt_check_object(ctx, db, pJson) ) return 1;
    rc = sqlite3_prepare_v2(db, "SELECT key, type, atom, length(CAST(atom AS BLOB)) "
                            "FROM json_each(?1)", -1, &st, 0);
    if( rc!=SQLITE_OK ){
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
      return 1;
    }
    sqlite3_bind_value(st, 1, pJson);
    while( (rc = sqlite3_step(st))==SQLITE_ROW ){
      if( opt_apply(ctx, st, o, &mSeen) ){ bad = 1; break; }
    }
    if( !bad && rc!=SQLITE_DONE ){
      rc = sqlite3_reset(st);
      aesql_result_sqlite_error(ctx, "ae_train", "cannot read the options", rc, db);
      bad = 1;
    }
    sqlite3_finalize(st);
    if( bad ){
      /* Nothing for the caller to free after an error. */
      aesql_options_free(o);
      return 1;
    }
    o->mGiven = mSeen;
  }
  if( o->seed<0 ) o->seed = random_seed();
  opts_settle(o);
  return 0;
}

void aesql_options_free(aesql_train_opts *o){
  int i;
  for(i=0; i<N_OPT; i++){
    if( aOpt[i].eType==OPT_STRING ){
      char **pz = opt_string(o, &aOpt[i]);
      sqlite3_free(*pz);
      *pz = 0;
    }
  }
}

int aesql_options_given(const aesql_train_opts *o, const char *zName){
  int i;
  for(i=0; i<N_OPT && strcmp(aOpt[i].zName, zName)!=0; i++){}
  return i<N_OPT && (o->mGiven & ((uint64_t)1<<i))!=0;
}

/* ---- writing ---- */

/* v as JSON: %!.15g, which gives back the number as written for up to 15
** significant digits (0.2, not 0.20000000000000001), unless that does
** not read back as v itself: then 17 digits, which always do. Without
** the second case 0.9999999999999999 (a dropout below 1) would be stored
** as 1.0, options that no longer parse. (strtod reads in the C locale's
** decimal point unless the application changed LC_NUMERIC; then this
** only takes 17 digits where 15 would have done.) */
static void json_number(sqlite3_str *p, double v){
  char z[48];
  sqlite3_snprintf(sizeof(z), z, "%!.15g", v);
  if( strtod(z, 0)!=v ) sqlite3_snprintf(sizeof(z), z, "%!.17g", v);
  sqlite3_str_appendall(p, z);
}

static void json_string(sqlite3_str *p, const char *z){
  sqlite3_str_appendchar(p, 1, '"');
  for(; *z; z++){
    unsigned char c = (unsigned char)*z;
    if( c=='"' || c=='\\' ) sqlite3_str_appendf(p, "\\%c", c);
    else if( c<0x20 ) sqlite3_str_appendf(p, "\\u%04x", c);
    else sqlite3_str_appendchar(p, 1, c);
  }
  sqlite3_str_appendchar(p, 1, '"');
}

char *aesql_options_json(const aesql_train_opts *oIn, int nThread){
  aesql_train_opts o = *oIn;   /* settled: the values in effect */
  sqlite3_str *p = sqlite3_str_new(0);
  int i, nOut = 0;
  opts_settle(&o);
  for(i=0; i<N_OPT; i++){
    const opt_def *d = &aOpt[i];
    if( d->mFlag & OPT_CALL ) continue;
    sqlite3_str_appendf(p, "%s\"%s\":", nOut++ ? "," : "{", d->zName);
    switch( d->eType ){
      case OPT_INTEGER:
        sqlite3_str_appendf(p, "%lld",
            (d->mFlag & OPT_NTHREAD) ? (sqlite3_int64)nThread : opt_get_int(&o, d));
        break;
      case OPT_NUMBER:
        json_number(p, *opt_double(&o, d));
        break;
      case OPT_BOOLEAN:
        sqlite3_str_appendall(p, opt_get_int(&o, d) ? "true" : "false");
        break;
      case OPT_ENUM: {
        const char *z = d->pEnum->xName((int)opt_get_int(&o, d));
        if( z ) json_string(p, z); else sqlite3_str_appendall(p, "null");
        break;
      }
      case OPT_STRING: {
        const char *z = *opt_string(&o, d);
        if( z ) json_string(p, z); else sqlite3_str_appendall(p, "null");
        break;
      }
    }
  }
  sqlite3_str_appendall(p, nOut ? "}" : "{}");
  if( sqlite3_str_errcode(p)!=SQLITE_OK ){
    sqlite3_free(sqlite3_str_finish(p));
    return 0;
  }
  return sqlite3_str_finish(p);
}

/* ---- the names ---- */

/* Built once from the table (pthread_once: ae_train may run on several
** connections in several threads at the same time). Room for names of up
** to 24 characters each, joined by ", ": the longest is 17. Should one
** ever not fit, the list ends before it, and test_options.c, which
** compares the list with the README's table, says so. */
static char zKnown[N_OPT*(24+2)];
static pthread_once_t knownOnce = PTHREAD_ONCE_INIT;

static void known_init(void){
  size_t n = 0;
  int i;
  for(i=0; i<N_OPT; i++){
    size_t k = strlen(aOpt[i].zName);
    if( n + 2 + k + 1 > sizeof(zKnown) ) break;
    if( i ){ memcpy(zKnown+n, ", ", 2); n += 2; }
    memcpy(zKnown+n, aOpt[i].zName, k);
    n += k;
  }
  zKnown[n] = 0;
}

const char *aesql_options_known(void){
  pthread_once(&knownOnce, known_init);
  return zKnown;
}
