/*
** The weights BLOB: a model as bytes, and back. All integers and floats
** little-endian.
**
** Version 2 (written by this release):
**   offset  0  8 bytes  magic "AESQLAE\0"
**           8  u32      format version (2)
**          12  u32      input encoding: 0 = u8 (bytes as b/255.0f, ae_data.h),
**                                       1 = f32 (float32, as is)
**          16  u32      nLayer, 1 .. AESQL_NET_MAX_LAYERS
**          20  u32      iCode, the layer whose output is the code: below
**                       nLayer-1 (the last layer's output is the
**                       reconstruction, never the code), or 0 when
**                       nLayer is 1 (no hidden layer: the code is the
**                       output)
**          24  u32      nParam, the float32 values that follow the table
**          28  u32      flags: 0 (no input transform: pixels, and every
**                       BLOB before the models of numeric columns), or
**                       AESQL_CODEC_XFORM, or AESQL_CODEC_XFORM |
**                       AESQL_CODEC_FILL (ae_xform.h)
**          32  nLayer records of 16 bytes: u32 nIn, u32 nOut, u32 act
**                       (aesql_act), u32 reserved 0
**   32 + 16 nLayer      float32[nParam]: per layer, W (nIn x nOut) then b
**   then, with AESQL_CODEC_XFORM, the input transform, d = layer 0's nIn:
**     d records of 16 bytes: f64 offset, f64 scale (x' = (x - offset) *
**                       scale, per input feature, in order)
**     with AESQL_CODEC_FILL also: f64 fill[d], the value a missing cell
**                       takes before the transform (the training mean)
**
** Version 1 (libaesql 0.x before the layer stack; read, never written):
**           8  u32      1
**          12  u32      d      16  u32  h      20  u32  encoding
**          24  u32      nParam = d*h + h + h*d + d     28  u32  0
**          32  float32[nParam]  w1, b1, w2, b2
**   which is the two-layer net d -> h relu -> d linear, iCode 0.
**
** Decoding is strict: every size is checked against the BLOB's length
** before anything is allocated (a hostile BLOB cannot ask for more memory
** than its own length accounts for); widths chain (layer l's nIn is layer
** l-1's nOut), the last layer's nOut is the first's nIn, the input width
** is at most AESQL_MAX_WIDTH and every other width at most
** AESQL_MAX_HIDDEN; iCode is as above; activations are below
** AESQL_ACT_COUNT; reserved fields are 0; nParam is what the widths need
** and the BLOB is exactly header, table, weights and transform long;
** every weight is finite; flags has no other bit, FILL only with XFORM,
** and XFORM only with the f32 encoding (bytes are scaled by 1/255, as they
** always were); every offset, scale and fill value is finite, and no
** scale is 0.
**
** A BLOB without a transform is byte for byte what this format was before
** the flags: today's models of pixels are unchanged, and a reader of the
** release before refuses a model with a transform as corrupt (it checks
** that the word is 0) rather than score it unscaled.
*/
#ifndef AE_CODEC_H
#define AE_CODEC_H

#include <stddef.h>
#include "ae_net.h"
#include "ae_xform.h"

#define AESQL_MODEL_MAGIC    "AESQLAE"   /* plus its terminating NUL: 8 bytes */
#define AESQL_MODEL_VERSION  2           /* what aesql_codec_encode writes */
#define AESQL_MODEL_HEADER   32
#define AESQL_MAX_WIDTH      (1<<24)     /* input width: pixels per row */
#define AESQL_MAX_HIDDEN     65536       /* any other layer's width     */

enum { AESQL_U8 = 0, AESQL_F32 = 1 };

/* The header's flags (offset 28). */
#define AESQL_CODEC_XFORM  0x1   /* an input transform follows the weights */
#define AESQL_CODEC_FILL   0x2   /* ... with a fill value per feature     */

/* Results of aesql_codec_decode. */
#define AESQL_CODEC_OK      0
#define AESQL_CODEC_CORRUPT 1   /* not a model, or an inconsistent one */
#define AESQL_CODEC_VERSION 2   /* a version this release does not read */
#define AESQL_CODEC_NOMEM   3

/* Bytes of net's BLOB (0 if over 2^31-1, which SQLite cannot hold). */
size_t aesql_codec_size(const aesql_net *net);
/* Writes net's version-2 BLOB, aesql_codec_size(net) bytes, to out. */
void aesql_codec_encode(const aesql_net *net, int dtype, void *out);
/* The same with an input transform xf (NULL, or xf->d 0: none, and the
** bytes are those above); xf->d must be net's input width, and dtype f32. */
size_t aesql_codec_size_xf(const aesql_net *net, const aesql_xform *xf);
void aesql_codec_encode_xf(const aesql_net *net, int dtype,
                           const aesql_xform *xf, void *out);

/* Decodes a BLOB of either version into *net (allocated here; free it
** with aesql_net_free) and *pDtype. On failure *net is zeroed (nothing
** is left allocated), *pDtype is untouched and zErr (nErr bytes, may be
** NULL; always terminated) says why in a phrase such as "corrupt model
** weights (inconsistent header or size)", "corrupt model weights
** (inconsistent header or size: layer 1 is 32 -> 700 wide)" or "model
** format version 7 is not supported (this libaesql reads versions 1 and
** 2)". A BLOB shorter than the header is "the weights are not a libaesql
** model (bad magic number)", as version 1's reader said. A BLOB with an
** input transform is checked in full, and the transform not kept: use
** aesql_codec_decode_xf to have it. */
int aesql_codec_decode(const void *pBlob, size_t nBlob, aesql_net *net,
                       int *pDtype, char *zErr, size_t nErr);
/* The same, and the input transform into *xf (zeroed when the BLOB has
** none, and on failure; free it with aesql_xform_free). Messages about
** the transform read "corrupt model weights (input transform: scale 3 is
** 0)" and the like. */
int aesql_codec_decode_xf(const void *pBlob, size_t nBlob, aesql_net *net,
                          int *pDtype, aesql_xform *xf, char *zErr, size_t nErr);

#endif /* AE_CODEC_H */
