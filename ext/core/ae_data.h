/*
** A data set as the core trains on it: n rows of d pixels, borrowed from
** the caller, and an optional index of each row's non-zero pixels.
**
** One rule turns bytes into floats everywhere in libaesql, training and
** scoring alike: the float b/255.0f (correctly rounded), which is
** (float)(b/255.0) and NumPy's float32 X / 255; aesql_u8_float holds
** the 256 values.
*/
#ifndef AE_DATA_H
#define AE_DATA_H

#include <stddef.h>
#include <stdint.h>

/* The float of byte b: b/255.0f. */
extern const float aesql_u8_float[256];

/* n rows of d pixels, borrowed from the caller: bytes, read as the float
** byte/255.0f (equal, for every byte, to (float)(byte/255.0) and to
** NumPy's float32 X / 255), or floats, read as they are. Optionally an
** index of each row's non-zero pixels (aesql_nn_data_index). */
typedef struct aesql_nn_data {
  int d;
  size_t n;
  const unsigned char *u8;  /* n x d bytes, or NULL */
  const float *f32;         /* n x d floats, when u8 is NULL */
  size_t *nzStart;          /* n+1 or NULL: row r's non-zero pixels are */
  uint16_t *nz;             /*   nz[nzStart[r] .. nzStart[r+1]), ascending */
  float lut[256];           /* lut[b] = b/255.0f */
} aesql_nn_data;

void aesql_nn_data_init(aesql_nn_data *x, int d, size_t n,
                        const unsigned char *u8, const float *f32);
/* Indexes the non-zero pixels: AESQL_NN_SPARSE_AUTO does so when at most
** AESQL_NN_SPARSE_MAX of the pixels are non-zero and d <= 65536; _ALWAYS
** whenever d <= 65536; _NEVER not at all. Returns 0, or non-zero when out
** of memory. The index costs 2 bytes per non-zero pixel. Measured on the
** tutorial's training (784-32-784, batches of 256, passes of 32 rows):
** MNIST (19% non-zero) 3-9% faster with it; uniformly random pixels break
** even near 20% non-zero (25-35% with 128 units); Fashion-MNIST (50%)
** 20-50% slower. */
#define AESQL_NN_SPARSE_NEVER  0
#define AESQL_NN_SPARSE_AUTO   1
#define AESQL_NN_SPARSE_ALWAYS 2
#define AESQL_NN_SPARSE_MAX    0.25
int  aesql_nn_data_index(aesql_nn_data *x, int mode);
/* Frees the index (not the borrowed pixels). */
void aesql_nn_data_free(aesql_nn_data *x);

#endif /* AE_DATA_H */
