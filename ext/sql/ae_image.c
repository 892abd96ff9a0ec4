/*
** ae_png() and ae_ascii(): look at an image stored in a BLOB.
**
**   .load ./libaesql
**   SELECT ae_ascii(pixels) FROM mnist_train WHERE rowid = 1;
**   SELECT writefile('digit.png', ae_png(pixels, 28, 28, 8))
**     FROM mnist_train WHERE rowid = 1;
**
** ae_png(PIXELS [, WIDTH, HEIGHT [, SCALE]]) -> BLOB, an 8-bit grayscale PNG
** ae_ascii(PIXELS [, WIDTH [, HEIGHT]])       -> TEXT, one line per pixel row
** ae_grid(PIXELS, COLUMNS [, WIDTH, HEIGHT [, SCALE]]) -> BLOB, an aggregate:
**           one PNG of every row's image, COLUMNS to a row (see ae_grid_step)
**
**   PIXELS  a BLOB, row-major, in one of two encodings:
**           u8       one byte per pixel, shown as stored: 0 black, 255 white
**                    (MNIST stores ink as 255 on a background of 0);
**           float32  four bytes per pixel, little-endian (what the model
**                    reads and writes), shown as round(clamp(v,0,1)*255),
**                    halves rounded up; NaN shows as 0.
**           NULL gives NULL. To stack images, join their BLOBs with
**           CAST(a || b AS BLOB): in SQLite a || b is TEXT, not accepted.
**   WIDTH, HEIGHT  integers 1..16384. Without them the BLOB must be a square
**           u8 image (784 bytes: 28x28). With both, a BLOB of WIDTH*HEIGHT
**           bytes is u8 and one of 4*WIDTH*HEIGHT bytes is float32.
**           ae_ascii(PIXELS, WIDTH) alone: WIDTH*WIDTH bytes is a square u8
**           image; otherwise a multiple of 4*WIDTH bytes is float32 and a
**           multiple of WIDTH bytes is u8 (pass HEIGHT to leave no doubt).
**   SCALE   integer 1..32, default 1: each pixel becomes SCALExSCALE
**           (nearest neighbour); the PNG may be at most 16384 a side.
**
** ae_ascii draws each pixel as one character of the ramp " .:-=+*#%@",
** by the u8 value v (float32 first converted as above): ramp[v*10/256].
** Every line, the last included, ends with '\n'.
**
** Both are pure functions of their arguments: DETERMINISTIC and INNOCUOUS,
** so they may be used in indexes, views and triggers.
*/
#include "aesql_int.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <zlib.h>

#define IMAGE_MAX_SIDE  16384   /* largest width or height, in or out */
#define IMAGE_MAX_SCALE 32

/* An image ready to draw: w*h bytes, row-major, u8. */
typedef struct AeImage AeImage;
struct AeImage {
  int w, h;
  const unsigned char *px;  /* the BLOB itself (u8) or aBuf (float32) */
  unsigned char *aBuf;      /* sqlite3_malloc64'd, or NULL */
};

/* A float32 pixel value as a byte: round(clamp(v,0,1)*255), NaN -> 0. */
static unsigned char image_f32_to_u8(const unsigned char *p){
  uint32_t u = (uint32_t)p[0] | (uint32_t)p[1]<<8
             | (uint32_t)p[2]<<16 | (uint32_t)p[3]<<24;
  float f;
  double v;
  memcpy(&f, &u, 4);
  v = f;
  if( !(v>0.0) ) return 0;        /* also NaN */
  if( v>=1.0 ) return 255;
  return (unsigned char)(v*255.0 + 0.5);
}

/* How a bad argument is quoted in messages: 'text' (at most 40 characters),
** '5', '2.5', NULL or "a blob of N bytes". sqlite3_free() the result. */
static char *image_quote(sqlite3_value *v){
  switch( sqlite3_value_type(v) ){
    case SQLITE_NULL:
      return sqlite3_mprintf("NULL");
    case SQLITE_BLOB:
      return sqlite3_mprintf("a blob of %d bytes", sqlite3_value_bytes(v));
    case SQLITE_TEXT: {
      const char *z = (const char*)sqlite3_value_text(v);
      int n = sqlite3_value_bytes(v);
      if( n>40 ){
        int k = 40;
        while( k>0 && (z[k]&0xc0)==0x80 ) k--;   /* whole UTF-8 characters */
        return sqlite3_mprintf("'%.*q...'", k, z);
      }
      return sqlite3_mprintf("%Q", z);
    }
    default:
      return sqlite3_mprintf("'%s'", (const char*)sqlite3_value_text(v));
  }
}

/* Reports "FUNC: PARAM must be an integer from LO to HI, got 'V'". */
static void image_range_error(sqlite3_context *ctx, const char *zFunc,
                              const char *zParam, int lo, int hi,
                              sqlite3_value *v){
  char *zV = image_quote(v);
  char *z = zV ? sqlite3_mprintf("%s: %s must be an integer from %d to %d, "
                                 "got %s", zFunc, zParam, lo, hi, zV) : 0;
  if( z ) sqlite3_result_error(ctx, z, -1);
  else sqlite3_result_error_nomem(ctx);
  sqlite3_free(zV);
  sqlite3_free(z);
}

/* Reads an integer argument in LO..HI into *pOut; an INTEGER, or a REAL
** with an integral value (sqrt(784) is 28.0). Returns 0, or 1 after
** reporting the error. */
static int image_int_arg(sqlite3_context *ctx, const char *zFunc,
                         const char *zParam, sqlite3_value *v,
                         int lo, int hi, int *pOut){
  sqlite3_int64 i;
  switch( sqlite3_value_type(v) ){
    case SQLITE_INTEGER:
      i = sqlite3_value_int64(v);
      break;
    case SQLITE_FLOAT: {
      double r = sqlite3_value_double(v);
      if( !(r>=lo && r<=hi) || r!=floor(r) ) i = (sqlite3_int64)lo - 1;
      else i = (sqlite3_int64)r;
      break;
    }
    default:
      i = (sqlite3_int64)lo - 1;
  }
  if( i<lo || i>hi ){
    image_range_error(ctx, zFunc, zParam, lo, hi, v);
    return 1;
  }
  *pOut = (int)i;
  return 0;
}

/* Reports a formatted error, "FUNC: ...". */
static void image_error(sqlite3_context *ctx, const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  if( z ) sqlite3_result_error(ctx, z, -1);
  else sqlite3_result_error_nomem(ctx);
  sqlite3_free(z);
}

/* The side of a square of n pixels, or 0 if n is not a perfect square. */
static sqlite3_int64 image_isqrt(sqlite3_int64 n){
  sqlite3_int64 s = (sqlite3_int64)sqrt((double)n);
  while( s>0 && s*s>n ) s--;
  while( (s+1)*(s+1)<=n ) s++;
  return s*s==n ? s : 0;
}

/* Fills *pImg from PIXELS and the optional WIDTH (pW) and HEIGHT (pH)
** arguments, NULL when not given. Returns 0 on success, 1 after reporting
** an error, 2 for NULL pixels (the result stays NULL). On success the
** caller frees pImg->aBuf. */
static int image_load(sqlite3_context *ctx, const char *zFunc,
                      sqlite3_value *pPix, sqlite3_value *pW,
                      sqlite3_value *pH, AeImage *pImg){
  const unsigned char *a;
  sqlite3_int64 n, w, h;
  int isF32 = 0, iW = 0, iH = 0;

  memset(pImg, 0, sizeof(*pImg));
  switch( sqlite3_value_type(pPix) ){
    case SQLITE_NULL: return 2;
    case SQLITE_BLOB: break;
    default: {
      /* a || b of two BLOBs is TEXT in SQLite: say how to join images */
      int isText = sqlite3_value_type(pPix)==SQLITE_TEXT;
      char *zV = image_quote(pPix);
      image_error(ctx, "%s: pixels must be a blob (u8 or float32), got %s %s%s",
                  zFunc, isText ? "text" : "number", zV ? zV : "",
                  isText ? "; a || b is text: join blobs with "
                           "CAST(a || b AS BLOB)" : "");
      sqlite3_free(zV);
      return 1;
    }
  }
  n = sqlite3_value_bytes(pPix);
  if( n==0 ){
    image_error(ctx, "%s: pixels is an empty blob; pass at least one pixel",
                zFunc);
    return 1;
  }

  if( pW && image_int_arg(ctx, zFunc, "width", pW, 1, IMAGE_MAX_SIDE, &iW) ){
    return 1;
  }
  if( pH && image_int_arg(ctx, zFunc, "height", pH, 1, IMAGE_MAX_SIDE, &iH) ){
    return 1;
  }
  if( pW==0 ){                          /* a square u8 image */
    w = h = image_isqrt(n);
    if( w==0 ){
      image_error(ctx, "%s: %lld bytes is not a square image; "
                  "pass width and height", zFunc, n);
      return 1;
    }
    if( w>IMAGE_MAX_SIDE ){
      image_error(ctx, "%s: a %lldx%lld image is larger than %dx%d",
                  zFunc, w, h, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
      return 1;
    }
  }else if( pH ){                       /* exact: u8 or float32 */
    w = iW; h = iH;
    if( n==w*h ){
      isF32 = 0;
    }else if( n==4*w*h ){
      isF32 = 1;
    }else{
      image_error(ctx, "%s: %lld bytes do not make a %lldx%lld image; "
                  "need %lld (u8) or %lld (float32)",
                  zFunc, n, w, h, w*h, 4*w*h);
      return 1;
    }
  }else{                                /* width alone: see the header */
    w = iW;
    if( n==w*w ){
      isF32 = 0; h = w;
    }else if( n%(4*w)==0 ){
      isF32 = 1; h = n/(4*w);
    }else if( n%w==0 ){
      isF32 = 0; h = n/w;
    }else{
      image_error(ctx, "%s: %lld bytes do not make rows of %lld pixels; "
                  "need a multiple of %lld (u8) or %lld (float32)",
                  zFunc, n, w, w, 4*w);
      return 1;
    }
    if( h>IMAGE_MAX_SIDE ){
      image_error(ctx, "%s: a %lldx%lld image is larger than %dx%d; "
                  "pass height to read it otherwise", zFunc, w, h,
                  IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
      return 1;
    }
  }

  /* Only now, the sizes being right, is a zeroblob() made real. */
  a = (const unsigned char*)sqlite3_value_blob(pPix);
  if( a==0 ){ sqlite3_result_error_nomem(ctx); return 1; }
  pImg->w = (int)w;
  pImg->h = (int)h;
  if( isF32 ){
    sqlite3_int64 i;
    pImg->aBuf = sqlite3_malloc64((sqlite3_uint64)(w*h));
    if( pImg->aBuf==0 ){ sqlite3_result_error_nomem(ctx); return 1; }
    for(i=0; i<w*h; i++) pImg->aBuf[i] = image_f32_to_u8(a + 4*i);
    pImg->px = pImg->aBuf;
  }else{
    pImg->px = a;
  }
  return 0;
}

/* Writes v as 4 big-endian bytes. */
static void png_put32(unsigned char *p, uint32_t v){
  p[0] = (unsigned char)(v>>24); p[1] = (unsigned char)(v>>16);
  p[2] = (unsigned char)(v>>8);  p[3] = (unsigned char)v;
}

/* Completes a chunk at p whose nData bytes of data are already at p+8:
** writes its length, TYPE and CRC. Returns the size of the whole chunk. */
static size_t png_chunk(unsigned char *p, const char *zType, size_t nData){
  uLong crc;
  png_put32(p, (uint32_t)nData);
  memcpy(p+4, zType, 4);
  crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, p+4, (uInt)(4+nData));
  png_put32(p+8+nData, (uint32_t)crc);
  return 12 + nData;
}

/* zlib's memory from SQLite's allocator, like the rest (compress2() would
** take its ~270 kB of deflate state from malloc, out of SQLite's sight). */
static voidpf png_zalloc(voidpf opaque, uInt nItem, uInt nSize){
  (void)opaque;
  return sqlite3_malloc64((sqlite3_uint64)nItem*nSize);
}
static void png_zfree(voidpf opaque, voidpf p){
  (void)opaque;
  sqlite3_free(p);
}

/* compress2() at the default level, with png_zalloc: the zlib stream of
** a[0..n) into out (*pnOut bytes, compressBound(n) at least), its size
** back in *pnOut. Returns a zlib code: Z_OK, or Z_MEM_ERROR. */
static int png_deflate(unsigned char *out, uLongf *pnOut,
                       const unsigned char *a, uLong n){
  z_stream z;
  int rc;
  memset(&z, 0, sizeof(z));
  z.zalloc = png_zalloc;
  z.zfree = png_zfree;
  rc = deflateInit(&z, Z_DEFAULT_COMPRESSION);
  if( rc!=Z_OK ) return rc;
  z.next_in = (Bytef*)a;
  z.next_out = out;
  /* at most 16384 x 16385 bytes in, well within uInt */
  z.avail_in = (uInt)n;
  z.avail_out = (uInt)*pnOut;
  rc = deflate(&z, Z_FINISH);
  *pnOut = z.total_out;
  deflateEnd(&z);
  return rc==Z_STREAM_END ? Z_OK : rc==Z_OK ? Z_BUF_ERROR : rc;
}

/* Sets the result of ctx to a grayscale PNG of the w x h image px, each
** pixel drawn scale x scale (the caller has checked the output's size). */
static void png_result(sqlite3_context *ctx, const char *zFunc,
                       const unsigned char *px, int w, int h, int scale){
  static const unsigned char aSig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
  sqlite3_int64 W = (sqlite3_int64)w*scale, H = (sqlite3_int64)h*scale;
  sqlite3_int64 nRow, nRaw;
  unsigned char *aRaw = 0, *aOut = 0, *p;
  uLong nBound;
  uLongf nZip;
  int x, y, rc;

  /* The scanlines, each a filter byte 0 (None) and W pixels. */
  nRow = 1 + W;
  nRaw = nRow*H;
  aRaw = sqlite3_malloc64((sqlite3_uint64)nRaw);
  if( aRaw==0 ){ sqlite3_result_error_nomem(ctx); goto done; }
  for(y=0; y<h; y++){
    const unsigned char *src = px + (size_t)y*w;
    unsigned char *row = aRaw + (size_t)(y*scale)*nRow;
    int k;
    row[0] = 0;
    p = row + 1;
    for(x=0; x<w; x++){
      memset(p, src[x], (size_t)scale);
      p += scale;
    }
    for(k=1; k<scale; k++) memcpy(row + (size_t)k*nRow, row, (size_t)nRow);
  }

  /* signature, IHDR (8+13+4), IDAT (8+data+4), IEND (12) */
  nBound = compressBound((uLong)nRaw);
  aOut = sqlite3_malloc64(8 + 25 + 12 + (sqlite3_uint64)nBound + 12);
  if( aOut==0 ){ sqlite3_result_error_nomem(ctx); goto done; }
  memcpy(aOut, aSig, 8);
  p = aOut + 8;
  png_put32(p+8, (uint32_t)W);
  png_put32(p+12, (uint32_t)H);
  p[16] = 8;      /* bit depth */
  p[17] = 0;      /* colour type: grayscale */
  p[18] = 0;      /* compression: deflate */
  p[19] = 0;      /* filter method 0 */
  p[20] = 0;      /* no interlace */
  p += png_chunk(p, "IHDR", 13);
  nZip = nBound;
  rc = png_deflate(p+8, &nZip, aRaw, (uLong)nRaw);
  if( rc==Z_MEM_ERROR ){ sqlite3_result_error_nomem(ctx); goto done; }
  if( rc!=Z_OK ){
    image_error(ctx, "%s: zlib cannot compress the image", zFunc);
    goto done;
  }
  p += png_chunk(p, "IDAT", nZip);
  p += png_chunk(p, "IEND", 0);
  sqlite3_result_blob64(ctx, aOut, (sqlite3_uint64)(p - aOut), sqlite3_free);
  aOut = 0;

done:
  sqlite3_free(aOut);
  sqlite3_free(aRaw);
}

/* ae_png(PIXELS [, WIDTH, HEIGHT [, SCALE]]): see the top of the file. */
static void ae_png_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  AeImage img;
  int scale = 1, rc;
  sqlite3_int64 W, H;

  rc = image_load(ctx, "ae_png", argv[0], argc>=3 ? argv[1] : 0,
                  argc>=3 ? argv[2] : 0, &img);
  if( rc ) return;
  if( argc>=4 && image_int_arg(ctx, "ae_png", "scale", argv[3],
                               1, IMAGE_MAX_SCALE, &scale) ){
    goto done;
  }
  W = (sqlite3_int64)img.w*scale;
  H = (sqlite3_int64)img.h*scale;
  if( W>IMAGE_MAX_SIDE || H>IMAGE_MAX_SIDE ){
    image_error(ctx, "ae_png: %dx%d at scale %d is %lldx%lld, more than %d "
                "a side; use a smaller scale", img.w, img.h, scale, W, H,
                IMAGE_MAX_SIDE);
    goto done;
  }
  png_result(ctx, "ae_png", img.px, img.w, img.h, scale);
done:
  sqlite3_free(img.aBuf);
}

/* ---- ae_grid: a gallery, as an aggregate ----
** ae_grid(PIXELS, COLUMNS [, WIDTH, HEIGHT [, SCALE]]) -> BLOB, one PNG of
** the images of its rows, in the order they come, COLUMNS (1..1024) to a
** row, left to right then top to bottom, on a gray (128) background with a
** gap of GRID_GAP pixels around each tile. Each image is read as ae_png
** reads it; all must have the size of the first; NULL pixels are skipped;
** no image gives NULL. COLUMNS, WIDTH, HEIGHT and SCALE are taken from the
** first row. The picture may be at most 16384 pixels a side. */
#define GRID_GAP   2
#define GRID_GRAY  128
#define GRID_MAX_COLUMNS 1024

typedef struct grid_state {
  int w, h, cols, scale;
  sqlite3_int64 n, nAlloc;   /* images, and room for them */
  unsigned char *aTile;      /* n x w x h bytes */
} grid_state;

/* The side of a picture of k tiles of `side` pixels at scale s. */
static sqlite3_int64 grid_side(sqlite3_int64 k, int side, int s){
  return k*side*(sqlite3_int64)s + (k+1)*GRID_GAP;
}

static void ae_grid_step(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  grid_state *g;
  AeImage img;
  int rc;
  rc = image_load(ctx, "ae_grid", argv[0], argc>=4 ? argv[2] : 0,
                  argc>=4 ? argv[3] : 0, &img);
  if( rc ) return;
  g = sqlite3_aggregate_context(ctx, sizeof(*g));
  if( !g ){ sqlite3_result_error_nomem(ctx); goto done; }
  if( g->n==0 ){
    if( image_int_arg(ctx, "ae_grid", "columns", argv[1], 1, GRID_MAX_COLUMNS,
                      &g->cols) ) goto done;
    g->scale = 1;
    if( argc>=5 && image_int_arg(ctx, "ae_grid", "scale", argv[4], 1,
                                 IMAGE_MAX_SCALE, &g->scale) ) goto done;
    g->w = img.w;
    g->h = img.h;
  }else if( img.w!=g->w || img.h!=g->h ){
    image_error(ctx, "ae_grid: image %lld is %dx%d, the first %dx%d; every "
                "image of a grid must have the same size", g->n+1, img.w,
                img.h, g->w, g->h);
    goto done;
  }
  {
    sqlite3_int64 k = g->n + 1;
    sqlite3_int64 nc = k<g->cols ? k : g->cols, nr = (k + g->cols - 1)/g->cols;
    if( grid_side(nc, g->w, g->scale)>IMAGE_MAX_SIDE
     || grid_side(nr, g->h, g->scale)>IMAGE_MAX_SIDE ){
      image_error(ctx, "ae_grid: %lld images of %dx%d at scale %d in %d "
                  "columns make a picture more than %d pixels a side; use "
                  "fewer images, another number of columns or a smaller scale",
                  k, g->w, g->h, g->scale, g->cols, IMAGE_MAX_SIDE);
      goto done;
    }
  }
  if( g->n==g->nAlloc ){
    sqlite3_int64 nNew = g->nAlloc ? 2*g->nAlloc : 16;
    unsigned char *p = sqlite3_realloc64(g->aTile,
                           (sqlite3_uint64)nNew*g->w*g->h);
    if( !p ){ sqlite3_result_error_nomem(ctx); goto done; }
    g->aTile = p;
    g->nAlloc = nNew;
  }
  memcpy(g->aTile + (size_t)g->n*g->w*g->h, img.px, (size_t)g->w*g->h);
  g->n++;
done:
  sqlite3_free(img.aBuf);
}

static void ae_grid_final(sqlite3_context *ctx){
  grid_state *g = sqlite3_aggregate_context(ctx, 0);
  sqlite3_int64 nc, nr, W, H, i;
  unsigned char *canvas;
  if( !g || g->n==0 ){
    if( g ) sqlite3_free(g->aTile);
    return;                                   /* NULL */
  }
  nc = g->n<g->cols ? g->n : g->cols;
  nr = (g->n + g->cols - 1)/g->cols;
  W = grid_side(nc, g->w, g->scale);
  H = grid_side(nr, g->h, g->scale);
  canvas = sqlite3_malloc64((sqlite3_uint64)(W*H));
  if( !canvas ){ sqlite3_result_error_nomem(ctx); sqlite3_free(g->aTile); return; }
  memset(canvas, GRID_GRAY, (size_t)(W*H));
  for(i=0; i<g->n; i++){
    const unsigned char *t = g->aTile + (size_t)i*g->w*g->h;
    sqlite3_int64 x0 = GRID_GAP + (i % g->cols)*((sqlite3_int64)g->w*g->scale + GRID_GAP);
    sqlite3_int64 y0 = GRID_GAP + (i / g->cols)*((sqlite3_int64)g->h*g->scale + GRID_GAP);
    int y, x;
    for(y=0; y<g->h*g->scale; y++){
      unsigned char *dst = canvas + (size_t)((y0 + y)*W + x0);
      const unsigned char *src = t + (size_t)(y/g->scale)*g->w;
      for(x=0; x<g->w*g->scale; x++) dst[x] = src[x/g->scale];
    }
  }
  png_result(ctx, "ae_grid", canvas, (int)W, (int)H, 1);
  sqlite3_free(canvas);
  sqlite3_free(g->aTile);
}

/* ae_ascii(PIXELS [, WIDTH [, HEIGHT]]): see the top of the file. */
static void ae_ascii_func(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  static const char zRamp[] = " .:-=+*#%@";
  AeImage img;
  char *z, *p;
  int x, y;

  if( image_load(ctx, "ae_ascii", argv[0], argc>=2 ? argv[1] : 0,
                 argc>=3 ? argv[2] : 0, &img) ){
    return;
  }
  z = sqlite3_malloc64((sqlite3_uint64)(img.w+1)*img.h);
  if( z==0 ){
    sqlite3_result_error_nomem(ctx);
  }else{
    p = z;
    for(y=0; y<img.h; y++){
      const unsigned char *src = img.px + (size_t)y*img.w;
      for(x=0; x<img.w; x++) *p++ = zRamp[src[x]*10/256];
      *p++ = '\n';
    }
    sqlite3_result_text64(ctx, z, (sqlite3_uint64)(p - z), sqlite3_free,
                          SQLITE_UTF8);
  }
  sqlite3_free(img.aBuf);
}

int aesql_image_register(sqlite3 *db){
  static const struct {
    const char *zName;
    int nArg;
    void (*xFunc)(sqlite3_context*, int, sqlite3_value**);
  } aFunc[] = {
    { "ae_png",   1, ae_png_func },
    { "ae_png",   3, ae_png_func },
    { "ae_png",   4, ae_png_func },
    { "ae_ascii", 1, ae_ascii_func },
    { "ae_ascii", 2, ae_ascii_func },
    { "ae_ascii", 3, ae_ascii_func },
  };
  /* Pure functions of their arguments: safe anywhere in a schema. */
  const int flags = SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS;
  size_t i;
  int rc = SQLITE_OK;
  for(i=0; rc==SQLITE_OK && i<sizeof(aFunc)/sizeof(aFunc[0]); i++){
    rc = sqlite3_create_function(db, aFunc[i].zName, aFunc[i].nArg, flags,
                                 0, aFunc[i].xFunc, 0, 0);
  }
  for(i=2; rc==SQLITE_OK && i<=5; i++){
    if( i==3 ) continue;
    rc = sqlite3_create_function(db, "ae_grid", (int)i, flags, 0, 0,
                                 ae_grid_step, ae_grid_final);
  }
  return rc;
}
