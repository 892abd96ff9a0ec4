/*
** A trained model as stored in the database: the weights BLOB format and
** the tables ae_models and ae_history.
**
** Weights BLOB, version 1 (all integers and floats little-endian):
**   offset  0  8 bytes  magic "AESQLAE\0"
**           8  u32      format version (1)
**          12  u32      d, input width (pixels per image)
**          16  u32      h, hidden units
**          20  u32      input encoding: 0 = u8 (bytes scaled by 1/255),
**                                       1 = f32 (little-endian float32, as is)
**          24  u32      nparam = d*h + h + h*d + d
**          28  u32      reserved, 0
**          32  float32[nparam]  w1 (d x h), b1 (h), w2 (h x d), b2 (d)
*/
#ifndef AE_MODEL_H
#define AE_MODEL_H

#include "aesql_int.h"
#include "../core/ae_nn.h"

#define AESQL_MODEL_MAGIC    "AESQLAE"   /* plus its terminating NUL: 8 bytes */
#define AESQL_MODEL_VERSION  1
#define AESQL_MODEL_HEADER   32
#define AESQL_MAX_WIDTH      (1<<24)     /* d: pixels per image  */
#define AESQL_MAX_HIDDEN     65536       /* h: hidden units      */

enum { AESQL_U8 = 0, AESQL_F32 = 1 };

/* A decoded model, ready to score with. */
typedef struct aesql_model {
  char *zName;       /* sqlite3_malloc'd */
  int dtype;         /* AESQL_U8 or AESQL_F32 */
  aesql_nn nn;
  /* Derived when decoded, for the kernels of ae_score.c. The arrays are
  ** set only for u8 models within the AESQL_SPARSE_MAX_* limits (else
  ** NULL); hp is h rounded up to a multiple of 16, with zero padding. */
  float scale;       /* 1/255 for u8, 1 for f32                        */
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

/* Serialises nn into a new sqlite3_malloc'd BLOB; NULL on out of memory. */
void *aesql_model_encode(const aesql_nn *nn, int dtype, int *pnByte);

/* Decodes a weights BLOB into *pm (zeroed by the caller). Returns SQLITE_OK,
** or an error code with *pzErr set to a sqlite3_malloc'd message. */
int aesql_model_decode(const void *pBlob, int nBlob, aesql_model *pm,
                       char **pzErr);

/* Reads model zName from table ae_models and decodes it. On error returns
** non-OK with *pzErr set ("unknown model 'x'...", "corrupt model"...). */
int aesql_model_load(sqlite3 *db, const char *zName, aesql_model **ppModel,
                     char **pzErr);
void aesql_model_free(aesql_model *pm);

/* The CREATE TABLE statements of the model tables, in schema main. */
extern const char aesql_model_schema[];

#endif /* AE_MODEL_H */
