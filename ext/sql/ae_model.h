/*
** A trained model as stored in the database: the tables ae_models,
** ae_history and ae_calibration, and a model read back from them, ready
** to score with. The weights BLOB's format is ext/core/ae_codec.h's.
*/
#ifndef AE_MODEL_H
#define AE_MODEL_H

#include "aesql_int.h"
#include "../core/ae_net.h"
#include "../core/ae_codec.h"

/* The per-row kernels' view of a model (ae_score.c): its first layer,
** d -> h with activation act1, and its last, h -> d with actOut. For two
** layers that is the whole model; a deeper one (nMid > 0) runs its
** middle layers between the two (h is then both the first layer's output
** and the last layer's input, as in every mirrored stack). */
typedef struct aesql_kview {
  int d, h;
  const float *w1, *b1;   /* d x h, h */
  const float *w2, *b2;   /* h x d, d */
  int act1, actOut;
  int nMid;               /* layers between the first and the last */
  int wMid;               /* the widest of them (0 when none) */
} aesql_kview;

/* A decoded model, ready to score with. */
typedef struct aesql_model {
  char *zName;       /* sqlite3_malloc'd */
  int dtype;         /* AESQL_U8 or AESQL_F32 */
  aesql_net net;     /* the layers */
  aesql_kview nn;    /* the kernels' view of them */
  /* A model of numeric columns (ae_columns.h): the names of its nFeature
  ** (= nn.d) columns, from ae_models.features, and the input transform of
  ** its weights BLOB (xf.d 0: none). A model of pixels has neither. */
  int nFeature;      /* 0 for a model of pixels */
  char **azFeature;  /* nFeature names, each sqlite3_malloc'd */
  aesql_xform xf;
  /* Derived when decoded, for the kernels of ae_score.c. The arrays are
  ** set only for u8 models within the AESQL_SPARSE_MAX_* limits whose last
  ** layer is linear (else NULL); hp is h rounded up to a multiple of 16,
  ** with zero padding. Bytes are read as b/255.0f (ae_data.h). */
  int sparse;        /* ae_error uses the sparse expansion (u8, 2h < d) */
  int hp;            /* h rounded up to a multiple of 16               */
  float *w12;        /* d x 2hp: row i = [row i of w1 | column i of w2] */
  float *gram;       /* hp x hp: w2 w2', summed in double              */
  double *c;         /* hp: w2 b2                                      */
  double *b1p;       /* hp: b1                                         */
  double b2sq;       /* b2 . b2                                        */
  void *pDerived;    /* the one allocation behind w12, gram, c, b1p    */
} aesql_model;

/* The sparse kernels are derived for code layers of at most this many
** units, and when d*h*h (twice the multiplications the derivation costs,
** once per statement) is at most AESQL_SPARSE_MAX_WORK. */
#define AESQL_SPARSE_MAX_HIDDEN 256
#define AESQL_SPARSE_MAX_WORK   ((double)(1<<28))

/* Bytes per pixel of an encoding (1 or 4) and its SQL name ('u8', 'f32'). */
int aesql_dtype_size(int dtype);
const char *aesql_dtype_name(int dtype);

/* Serialises net into a new sqlite3_malloc'd BLOB (ae_codec.h, version 2);
** NULL on out of memory. With _xf, and its input transform (NULL: none). */
void *aesql_model_encode(const aesql_net *net, int dtype, int *pnByte);
void *aesql_model_encode_xf(const aesql_net *net, int dtype,
                            const aesql_xform *xf, int *pnByte);

/* Decodes a weights BLOB of either version, its input transform too,
** into *pm (zeroed by the caller). Returns SQLITE_OK, or an error code with
** *pzErr set to a sqlite3_malloc'd message. Free the parts with
** aesql_model_clear(). */
int aesql_model_decode(const void *pBlob, int nBlob, aesql_model *pm,
                       char **pzErr);

/* Reads model zName from table ae_models and decodes it, with its
** features (checked: a JSON array of one name per input, an f32 model).
** On error returns non-OK with *pzErr set ("unknown model 'x'...",
** "corrupt model"...). */
int aesql_model_load(sqlite3 *db, const char *zName, aesql_model **ppModel,
                     char **pzErr);
void aesql_model_free(aesql_model *pm);   /* aesql_model_load's */
void aesql_model_clear(aesql_model *pm);  /* what decode allocated */

/* Adds to main.ae_models and main.ae_history the columns that tables made
** by an earlier release lack (layers, activations, best_epoch, features;
** best), and fills layers and activations for its models (all d -> h relu
** -> d linear; features stays NULL: they are all models of pixels). Called by ae_train inside its write transaction: a database
** is migrated when it is next written to, and read as it is until then.
** SQLITE_OK, or an SQLite error. */
int aesql_model_migrate(sqlite3 *db, char **pzErr);

/* The CREATE TABLE statements of the model tables, in schema main. */
extern const char aesql_model_schema[];

#endif /* AE_MODEL_H */
