/*
** Tests of ae_png() and ae_ascii() (ext/sql/ae_image.c).
**
** The PNGs are decoded here, independently of the encoder: signature,
** every chunk's CRC, the IHDR fields, IDAT inflated with zlib's
** uncompress(), the filter byte of each scanline; then the pixels are
** compared exactly with what they should be.
*/
#include "check_sql.h"
#include <stdint.h>
#include <zlib.h>

/* ---- a small, strict PNG reader for 8-bit grayscale ---- */

static uint32_t get32(const unsigned char *p){
  return (uint32_t)p[0]<<24 | (uint32_t)p[1]<<16 | (uint32_t)p[2]<<8 | p[3];
}

/* Decodes a PNG written by ae_png(). Returns NULL and sets *pW, *pH and
** *ppPx (malloc'd, w*h bytes) on success, or a static message. */
static const char *png_decode(const unsigned char *a, size_t n,
                              int *pW, int *pH, unsigned char **ppPx){
  static const unsigned char sig[8] = {0x89,'P','N','G','\r','\n',0x1a,'\n'};
  static char zErr[200];
  size_t off = 8, nZip = 0;
  unsigned char *aZip = 0, *aRaw = 0, *aPx = 0;
  uint32_t w = 0, h = 0;
  int seenIHDR = 0, seenIEND = 0, nChunk = 0;
  uLongf nRaw;
  uint32_t y;

  *ppPx = 0;
  if( n<8 || memcmp(a, sig, 8)!=0 ) return "bad signature";
  while( off<n ){
    uint32_t len, crc;
    const unsigned char *t;
    if( seenIEND ) return "data after IEND";
    if( n-off<12 ) return "truncated chunk header";
    len = get32(a+off);
    if( len>n-off-12 ) return "chunk longer than the file";
    t = a+off+4;
    crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), t, 4+len);
    if( crc!=get32(t+4+len) ){
      snprintf(zErr, sizeof zErr, "bad CRC in chunk %.4s", (const char*)t);
      free(aZip);
      return zErr;
    }
    if( nChunk==0 && memcmp(t, "IHDR", 4)!=0 ){ free(aZip); return "IHDR not first"; }
    if( memcmp(t, "IHDR", 4)==0 ){
      const unsigned char *d = t+4;
      if( seenIHDR++ ){ free(aZip); return "two IHDR"; }
      if( len!=13 ){ free(aZip); return "IHDR length is not 13"; }
      w = get32(d); h = get32(d+4);
      if( w==0 || h==0 ) return "zero width or height";
      if( d[8]!=8 ) return "bit depth is not 8";
      if( d[9]!=0 ) return "colour type is not 0 (grayscale)";
      if( d[10]!=0 || d[11]!=0 || d[12]!=0 ){
        return "compression, filter or interlace method is not 0";
      }
    }else if( memcmp(t, "IDAT", 4)==0 ){
      unsigned char *aNew = realloc(aZip, nZip+len+1);
      if( !aNew ){ free(aZip); return "out of memory"; }
      aZip = aNew;
      memcpy(aZip+nZip, t+4, len);
      nZip += len;
    }else if( memcmp(t, "IEND", 4)==0 ){
      if( len!=0 ){ free(aZip); return "IEND not empty"; }
      seenIEND = 1;
    }else{
      free(aZip);
      return "unexpected chunk";
    }
    nChunk++;
    off += 12+len;
  }
  if( !seenIEND ){ free(aZip); return "no IEND"; }
  if( nZip==0 ){ free(aZip); return "no IDAT"; }
  nRaw = (uLongf)(w+1)*h;
  aRaw = malloc(nRaw+1);
  aPx = malloc((size_t)w*h);
  if( !aRaw || !aPx ){ free(aZip); free(aRaw); free(aPx); return "out of memory"; }
  {
    uLongf nGot = nRaw+1;   /* one more: a longer stream must show */
    int rc = uncompress(aRaw, &nGot, aZip, (uLong)nZip);
    free(aZip);
    if( rc!=Z_OK ){ free(aRaw); free(aPx); return "IDAT does not inflate"; }
    if( nGot!=nRaw ){
      free(aRaw); free(aPx);
      return "IDAT inflates to the wrong size";
    }
  }
  for(y=0; y<h; y++){
    const unsigned char *row = aRaw + (size_t)y*(w+1);
    if( row[0]!=0 ){ free(aRaw); free(aPx); return "filter type is not 0"; }
    memcpy(aPx + (size_t)y*w, row+1, w);
  }
  free(aRaw);
  *pW = (int)w; *pH = (int)h; *ppPx = aPx;
  return 0;
}

/* ---- running ae_png() ---- */

/* Runs zSql (one value, ?1 bound to the blob a/n if a is not NULL) and
** returns the BLOB result, malloc'd, in *ppOut and *pnOut; or an error text. */
static char *run_blob(sqlite3 *db, const char *zSql, const void *a, int n,
                      unsigned char **ppOut, size_t *pnOut){
  sqlite3_stmt *st = 0;
  char *zErr = 0;
  *ppOut = 0; *pnOut = 0;
  if( sqlite3_prepare_v2(db, zSql, -1, &st, 0)!=SQLITE_OK ){
    return sqlite3_mprintf("prepare: %s", sqlite3_errmsg(db));
  }
  if( a ) sqlite3_bind_blob(st, 1, a, n, SQLITE_TRANSIENT);
  if( sqlite3_step(st)==SQLITE_ROW ){
    if( sqlite3_column_type(st, 0)!=SQLITE_BLOB ){
      zErr = sqlite3_mprintf("result is not a blob");
    }else{
      size_t nb = (size_t)sqlite3_column_bytes(st, 0);
      *ppOut = malloc(nb ? nb : 1);
      memcpy(*ppOut, sqlite3_column_blob(st, 0), nb);
      *pnOut = nb;
    }
  }else{
    zErr = sqlite3_mprintf("%s", sqlite3_errmsg(db));
  }
  sqlite3_finalize(st);
  return zErr;
}

/* ae_png via zSql gives a valid PNG of wWant x hWant equal to aWant. */
static void check_png(const char *name, sqlite3 *db, const char *zSql,
                      const void *aIn, int nIn,
                      int wWant, int hWant, const unsigned char *aWant){
  unsigned char *aPng = 0, *aPx = 0;
  size_t nPng = 0;
  int w = 0, h = 0;
  char *zErr = run_blob(db, zSql, aIn, nIn, &aPng, &nPng);
  const char *zBad = 0;
  if( zErr ){
    check_report(0, name, "sql [%s]: %s", zSql, zErr);
    sqlite3_free(zErr);
    return;
  }
  zBad = png_decode(aPng, nPng, &w, &h, &aPx);
  if( zBad ){
    check_report(0, name, "not a valid PNG: %s", zBad);
  }else if( w!=wWant || h!=hWant ){
    check_report(0, name, "size %dx%d, want %dx%d", w, h, wWant, hWant);
  }else{
    int i, nDiff = 0, iFirst = -1;
    for(i=0; i<w*h; i++){
      if( aPx[i]!=aWant[i] ){ if( nDiff++==0 ) iFirst = i; }
    }
    check_report(nDiff==0, name, "%d pixels differ; first at (%d,%d): "
                 "got %d, want %d", nDiff, iFirst%(w?w:1), iFirst/(w?w:1),
                 iFirst>=0 ? aPx[iFirst] : 0, iFirst>=0 ? aWant[iFirst] : 0);
  }
  free(aPx);
  free(aPng);
}

/* The float32 v as 4 little-endian bytes at p. */
static void put_f32(unsigned char *p, float v){
  uint32_t u;
  memcpy(&u, &v, 4);
  p[0] = (unsigned char)u; p[1] = (unsigned char)(u>>8);
  p[2] = (unsigned char)(u>>16); p[3] = (unsigned char)(u>>24);
}

/* An SQL blob literal x'..' of n bytes of a; sqlite3_free() it. */
static char *hex(const unsigned char *a, int n){
  sqlite3_str *s = sqlite3_str_new(0);
  int i;
  sqlite3_str_appendall(s, "x'");
  for(i=0; i<n; i++) sqlite3_str_appendf(s, "%02x", a[i]);
  sqlite3_str_appendall(s, "'");
  return sqlite3_str_finish(s);
}

static void test_decoder_self_check(sqlite3 *db){
  /* The reader must reject what it should, or the other checks mean little. */
  unsigned char px[4] = {0, 85, 170, 255};
  unsigned char *aPng = 0, *aPx = 0;
  size_t nPng = 0;
  int w, h;
  char *zErr = run_blob(db, "SELECT ae_png(?1)", px, 4, &aPng, &nPng);
  CHECK("png: produced for a 2x2 image", zErr==0 && aPng!=0);
  if( zErr || !aPng ){ sqlite3_free(zErr); free(aPng); return; }
  CHECK("png: decodes", png_decode(aPng, nPng, &w, &h, &aPx)==0);
  free(aPx); aPx = 0;
  /* sizes: 8 signature + 25 IHDR + 12+k IDAT + 12 IEND */
  CHECK("png: ends with the standard IEND chunk",
        nPng>=12 && memcmp(aPng+nPng-12,
          "\x00\x00\x00\x00" "IEND" "\xae\x42\x60\x82", 12)==0);
  CHECK("png: IHDR is the first chunk, 13 bytes",
        nPng>33 && memcmp(aPng+8, "\x00\x00\x00\x0d" "IHDR", 8)==0);
  aPng[20] ^= 1;   /* a bit of IHDR's width */
  CHECK("png reader: rejects a bad CRC",
        png_decode(aPng, nPng, &w, &h, &aPx)!=0);
  aPng[20] ^= 1;
  aPng[0] = 0;
  CHECK("png reader: rejects a bad signature",
        png_decode(aPng, nPng, &w, &h, &aPx)!=0);
  free(aPng);
}

static void test_png_u8(sqlite3 *db){
  unsigned char a[16], b[6];
  int i;
  for(i=0; i<16; i++) a[i] = (unsigned char)(i*17);   /* 0, 17, .., 255 */
  check_png("png u8: 4x4 square, sizes implied", db,
            "SELECT ae_png(?1)", a, 16, 4, 4, a);
  check_png("png u8: 4x4 with width and height", db,
            "SELECT ae_png(?1, 4, 4)", a, 16, 4, 4, a);
  check_png("png u8: 8x2, not square", db,
            "SELECT ae_png(?1, 8, 2)", a, 16, 8, 2, a);
  check_png("png u8: 1x16 column", db,
            "SELECT ae_png(?1, 1, 16)", a, 16, 1, 16, a);
  for(i=0; i<6; i++) b[i] = (unsigned char)(250 - i*50);
  check_png("png u8: 3x2 with sizes as integral reals", db,
            "SELECT ae_png(?1, sqrt(9), 4/2.0)", b, 6, 3, 2, b);
  check_png("png u8: 1x1", db, "SELECT ae_png(?1)", b, 1, 1, 1, b);
  /* a blob literal too, not only a bound parameter */
  check_png("png u8: from a blob literal", db,
            "SELECT ae_png(x'00ff80ff')", 0, 0, 2, 2,
            (const unsigned char*)"\x00\xff\x80\xff");
  /* a 28x28 MNIST-like image: ink 255 on 0, shown as stored */
  {
    unsigned char d[784];
    for(i=0; i<784; i++) d[i] = (i/28>=4 && i/28<24 && i%28>=12 && i%28<16) ? 255 : 0;
    check_png("png u8: 28x28 digit, as stored", db,
              "SELECT ae_png(?1)", d, 784, 28, 28, d);
  }
}

static void test_png_f32(sqlite3 *db){
  /* 4x3, with clamping, NaN, infinities and rounding of halves up */
  static const float v[12] = {
    -1.0f, 0.0f, 0.5f, 1.0f,
     2.0f, NAN, 0.25f, 1.0f/255,
     INFINITY, -INFINITY, 0.999f, 0.002f,
  };
  static const unsigned char want[12] = {
      0,   0, 128, 255,     /* 0.5*255 = 127.5 -> 128 */
    255,   0,  64,   1,     /* 0.25*255 = 63.75 -> 64 */
    255,   0, 255,   1,     /* 254.745 -> 255; 0.51 -> 1 */
  };
  unsigned char a[48], g[4*784], gw[784];
  int i;
  for(i=0; i<12; i++) put_f32(a + 4*i, v[i]);
  check_png("png f32: 4x3 clamped and rounded", db,
            "SELECT ae_png(?1, 4, 3)", a, 48, 4, 3, want);
  check_png("png f32: 3x4 is the same pixels in other rows", db,
            "SELECT ae_png(?1, 3, 4)", a, 48, 3, 4, want);
  /* every byte value survives v/255 -> float32 -> ae_png */
  for(i=0; i<784; i++){
    gw[i] = (unsigned char)(i%256);
    put_f32(g + 4*i, (float)(gw[i]/255.0));
  }
  check_png("png f32: 28x28 of v/255 gives back every byte v", db,
            "SELECT ae_png(?1, 28, 28)", g, 4*784, 28, 28, gw);
  /* 3136 bytes without sizes is a square 56x56 u8 image, not float32 */
  check_png("png f32: without sizes, 3136 bytes are 56x56 u8", db,
            "SELECT ae_png(?1)", g, 4*784, 56, 56, g);
}

static void test_png_scale(sqlite3 *db){
  unsigned char a[6] = {10, 20, 30, 40, 50, 60};    /* 3x2 */
  unsigned char want[9*6], f[24];
  unsigned char *big;
  int x, y, i;
  check_png("png scale: 1 is the image itself", db,
            "SELECT ae_png(?1, 3, 2, 1)", a, 6, 3, 2, a);
  check_png("png scale: 2x1 at 2", db, "SELECT ae_png(?1, 2, 1, 2)", a, 2,
            4, 2, (const unsigned char*)"\x0a\x0a\x14\x14\x0a\x0a\x14\x14");
  for(y=0; y<6; y++) for(x=0; x<9; x++) want[y*9+x] = a[(y/3)*3 + x/3];
  check_png("png scale: 3x2 at 3 is 9x6, nearest neighbour", db,
            "SELECT ae_png(?1, 3, 2, 3)", a, 6, 9, 6, want);
  for(i=0; i<6; i++) put_f32(f + 4*i, a[i]/255.0f);
  check_png("png scale: float32 3x2 at 3", db,
            "SELECT ae_png(?1, 3, 2, 3.0)", f, 24, 9, 6, want);
  /* the largest scale, and the largest output */
  big = malloc(32*32*28*28);
  {
    unsigned char d[784];
    for(i=0; i<784; i++) d[i] = (unsigned char)((i*7)%256);
    for(y=0; y<28*32; y++) for(x=0; x<28*32; x++){
      big[y*28*32 + x] = d[(y/32)*28 + x/32];
    }
    check_png("png scale: 28x28 at 32 is 896x896", db,
              "SELECT ae_png(?1, 28, 28, 32)", d, 784, 896, 896, big);
  }
  free(big);
  {
    unsigned char row[16384];
    for(i=0; i<16384; i++) row[i] = (unsigned char)(i%251);
    check_png("png scale: 16384x1 is the largest width", db,
              "SELECT ae_png(?1, 16384, 1)", row, 16384, 16384, 1, row);
    big = malloc(2*16384);
    for(i=0; i<8192; i++){ big[2*i] = big[2*i+1] = row[i]; }
    memcpy(big+16384, big, 16384);
    check_png("png scale: 8192x1 at 2 is 16384x2", db,
              "SELECT ae_png(?1, 8192, 1, 2)", row, 8192, 16384, 2, big);
    free(big);
  }
}

static void test_png_compressed(sqlite3 *db){
  /* 896x896 of black is 803,712 bytes of scanlines; deflated, a few hundred */
  double n = check_sql_double(db, "SELECT length(ae_png(zeroblob(784), 28, 28, 32))");
  CHECK("png: IDAT is compressed", n>57 && n<2000);
}

static void test_png_errors(sqlite3 *db){
  check_sql("png: NULL pixels give NULL", db,
            "SELECT ae_png(NULL), ae_png(NULL, 2, 2), ae_png(NULL, 2, 2, 3)",
            "NULL|NULL|NULL");
  check_sql_error("png: text pixels", db, "SELECT ae_png('abc')",
                  "ae_png: pixels must be a blob (u8 or float32), got text 'abc'");
  check_sql_error("png: text pixels, with the hint for ||", db,
                  "SELECT ae_png(x'0000' || x'0000')",
                  "ae_png: pixels must be a blob (u8 or float32), got text ''; "
                  "a || b is text: join blobs with CAST(a || b AS BLOB)");
  check_png("png: two blobs joined with CAST(a || b AS BLOB)", db,
            "SELECT ae_png(CAST(x'00ff' || x'8000' AS BLOB), 2, 2)", 0, 0,
            2, 2, (const unsigned char*)"\x00\xff\x80\x00");
  check_sql_error("png: integer pixels", db, "SELECT ae_png(5)",
                  "ae_png: pixels must be a blob (u8 or float32), got number '5'");
  check_sql_error("png: long text is cut in the message", db,
                  "SELECT ae_png('it''s a very long text that goes on and on and on')",
                  "got text 'it''s a very long text that goes on and o...'");
  check_sql_error("png: empty pixels", db, "SELECT ae_png(x'')",
                  "ae_png: pixels is an empty blob; pass at least one pixel");
  check_sql_error("png: not square without sizes", db,
                  "SELECT ae_png(zeroblob(700))",
                  "ae_png: 700 bytes is not a square image; pass width and height");
  check_sql_error("png: length does not match the sizes", db,
                  "SELECT ae_png(zeroblob(700), 28, 28)",
                  "ae_png: 700 bytes do not make a 28x28 image; "
                  "need 784 (u8) or 3136 (float32)");
  check_sql_error("png: width 0", db, "SELECT ae_png(zeroblob(4), 0, 2)",
                  "ae_png: width must be an integer from 1 to 16384, got '0'");
  check_sql_error("png: width too big", db,
                  "SELECT ae_png(zeroblob(4), 16385, 2)",
                  "ae_png: width must be an integer from 1 to 16384, got '16385'");
  check_sql_error("png: width huge", db,
                  "SELECT ae_png(zeroblob(4), 9223372036854775807, 2)",
                  "ae_png: width must be an integer from 1 to 16384, "
                  "got '9223372036854775807'");
  check_sql_error("png: width not integral", db,
                  "SELECT ae_png(zeroblob(4), 2.5, 2)",
                  "ae_png: width must be an integer from 1 to 16384, got '2.5'");
  check_sql_error("png: width as text", db,
                  "SELECT ae_png(zeroblob(4), '2', 2)",
                  "ae_png: width must be an integer from 1 to 16384, got '2'");
  check_sql_error("png: width NULL", db,
                  "SELECT ae_png(zeroblob(4), NULL, 2)",
                  "ae_png: width must be an integer from 1 to 16384, got NULL");
  check_sql_error("png: width as a blob", db,
                  "SELECT ae_png(zeroblob(4), x'02', 2)",
                  "ae_png: width must be an integer from 1 to 16384, "
                  "got a blob of 1 bytes");
  check_sql_error("png: height negative", db,
                  "SELECT ae_png(zeroblob(4), 2, -2)",
                  "ae_png: height must be an integer from 1 to 16384, got '-2'");
  check_sql_error("png: height NaN-like real", db,
                  "SELECT ae_png(zeroblob(4), 2, 1e300*1e300)",
                  "ae_png: height must be an integer from 1 to 16384, got 'Inf'");
  check_sql_error("png: scale 0", db, "SELECT ae_png(zeroblob(4), 2, 2, 0)",
                  "ae_png: scale must be an integer from 1 to 32, got '0'");
  check_sql_error("png: scale 33", db, "SELECT ae_png(zeroblob(4), 2, 2, 33)",
                  "ae_png: scale must be an integer from 1 to 32, got '33'");
  check_sql_error("png: scale 1.5", db, "SELECT ae_png(zeroblob(4), 2, 2, 1.5)",
                  "ae_png: scale must be an integer from 1 to 32, got '1.5'");
  check_sql_error("png: output larger than 16384 a side", db,
                  "SELECT ae_png(zeroblob(8193), 8193, 1, 2)",
                  "ae_png: 8193x1 at scale 2 is 16386x2, more than 16384 a side; "
                  "use a smaller scale");
  check_sql_error("png: tall output too", db,
                  "SELECT ae_png(zeroblob(1000), 1, 1000, 17)",
                  "ae_png: 1x1000 at scale 17 is 17x17000, more than 16384 a side");
  check_sql_error("png: a square too big", db,
                  "SELECT ae_png(zeroblob(16385*16385))",
                  "ae_png: a 16385x16385 image is larger than 16384x16384");
  check_sql_error("png: two arguments", db, "SELECT ae_png(zeroblob(4), 2)",
                  "wrong number of arguments to function ae_png()");
  check_sql_error("png: five arguments", db,
                  "SELECT ae_png(zeroblob(4), 2, 2, 1, 1)",
                  "wrong number of arguments to function ae_png()");
}

static void test_ascii(sqlite3 *db){
  unsigned char f[24];
  static const float v[6] = {0.0f, 0.1f, 0.5f, 1.0f, -3.0f, 7.0f};
  char *zHex, *zSql;
  int i;
  /* the ramp's steps: v*10/256 */
  check_sql("ascii: 5x2 u8, every step boundary", db,
            "SELECT ae_ascii(x'00191a333480999ae6ff', 5)",
            /* 0 25 | 26 51 | 52 ; 128 153 | 154 230 255 */
            "  ..:\n++*%@\n");
  check_sql("ascii: the whole ramp", db,
            "SELECT ae_ascii(x'001a34506a839db7d1ff', 10, 1)",
            " .:-=+*#%@\n");
  check_sql("ascii: 3x3 square, sizes implied", db,
            "SELECT ae_ascii(x'00ff00ff00ff00ff00')",
            " @ \n@ @\n @ \n");
  check_sql("ascii: 1x1", db, "SELECT ae_ascii(x'ff')", "@\n");
  check_sql("ascii: u8 with width and height", db,
            "SELECT ae_ascii(x'00ff00ff00ff', 2, 3)", " @\n @\n @\n");
  check_sql("ascii: u8 with width alone, 1 row", db,
            "SELECT ae_ascii(x'00ff00', 3)", " @ \n");
  /* float32: converted as ae_png converts, then the ramp */
  for(i=0; i<6; i++) put_f32(f + 4*i, v[i]);
  zHex = hex(f, 24);
  zSql = sqlite3_mprintf("SELECT ae_ascii(%s, 3)", zHex);
  /* 0 -> 0 ' ', 0.1 -> 26 '.', 0.5 -> 128 '+', 1 -> '@', -3 -> ' ', 7 -> '@' */
  check_sql("ascii: float32 3x2 with width alone", db, zSql, " .+\n@ @\n");
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("SELECT ae_ascii(%s, 2, 3)", zHex);
  check_sql("ascii: float32 2x3 with width and height", db, zSql,
            " .\n+@\n @\n");
  sqlite3_free(zSql);
  zSql = sqlite3_mprintf("SELECT ae_ascii(%s, 24, 1)", zHex);
  check_sql("ascii: the same 24 bytes as u8 with width and height", db, zSql,
            /* bytes of 0, 0.1f=cdcccc3d, 0.5f=0000003f, 1f=0000803f,
               -3f=000040c0, 7f=0000e040 */
            "    %##:   :  +:  :#  %:\n");
  sqlite3_free(zSql);
  sqlite3_free(zHex);
  /* MNIST shapes: 784 u8 and 3136 float32, both 28 wide */
  check_sql("ascii: 784 bytes with width 28 are a square u8 image", db,
            "SELECT length(ae_ascii(zeroblob(784), 28)),"
            " ae_ascii(zeroblob(784), 28)=ae_ascii(zeroblob(784))",
            "812|1");
  check_sql("ascii: 3136 bytes with width 28 are float32 28x28", db,
            "SELECT length(ae_ascii(zeroblob(3136), 28))", "812");
  check_sql("ascii: and as PNG the same 3136 bytes are 28x28", db,
            "SELECT ae_png(zeroblob(3136), 28, 28)=ae_png(zeroblob(784))", "1");
  check_sql("ascii: NULL pixels give NULL", db,
            "SELECT ae_ascii(NULL), ae_ascii(NULL, 2), ae_ascii(NULL, 2, 2)",
            "NULL|NULL|NULL");
  check_sql_error("ascii: text pixels", db, "SELECT ae_ascii('@@@@')",
                  "ae_ascii: pixels must be a blob (u8 or float32), got text '@@@@'");
  check_sql_error("ascii: real pixels", db, "SELECT ae_ascii(0.5)",
                  "ae_ascii: pixels must be a blob (u8 or float32), got number '0.5'");
  check_sql_error("ascii: empty pixels", db, "SELECT ae_ascii(x'', 3)",
                  "ae_ascii: pixels is an empty blob; pass at least one pixel");
  check_sql_error("ascii: not square without width", db,
                  "SELECT ae_ascii(zeroblob(700))",
                  "ae_ascii: 700 bytes is not a square image; pass width and height");
  check_sql_error("ascii: not whole rows", db,
                  "SELECT ae_ascii(zeroblob(700), 27)",
                  "ae_ascii: 700 bytes do not make rows of 27 pixels; "
                  "need a multiple of 27 (u8) or 108 (float32)");
  check_sql_error("ascii: length does not match the sizes", db,
                  "SELECT ae_ascii(zeroblob(700), 28, 28)",
                  "ae_ascii: 700 bytes do not make a 28x28 image; "
                  "need 784 (u8) or 3136 (float32)");
  check_sql_error("ascii: width 0", db, "SELECT ae_ascii(zeroblob(4), 0)",
                  "ae_ascii: width must be an integer from 1 to 16384, got '0'");
  check_sql_error("ascii: width as text", db, "SELECT ae_ascii(zeroblob(4), 'two')",
                  "ae_ascii: width must be an integer from 1 to 16384, got 'two'");
  check_sql_error("ascii: height too big", db,
                  "SELECT ae_ascii(zeroblob(4), 1, 99999)",
                  "ae_ascii: height must be an integer from 1 to 16384, got '99999'");
  check_sql_error("ascii: width alone giving too many rows", db,
                  "SELECT ae_ascii(zeroblob(16385), 1)",
                  "ae_ascii: a 1x16385 image is larger than 16384x16384; "
                  "pass height to read it otherwise");
  check_sql_error("ascii: four arguments", db,
                  "SELECT ae_ascii(zeroblob(4), 2, 2, 1)",
                  "wrong number of arguments to function ae_ascii()");
}

/* DETERMINISTIC allows index expressions; INNOCUOUS allows the schema to
** use them with trusted_schema off. */
static void test_flags(sqlite3 *db){
  check_sql("flags: usable in an index, a view and a trigger, untrusted schema",
            db,
            "CREATE TABLE img(px BLOB);"
            "CREATE INDEX img_png ON img(ae_png(px));"
            "CREATE INDEX img_txt ON img(ae_ascii(px, 2, 2));"
            "CREATE VIEW img_v AS SELECT ae_ascii(px) AS a FROM img;"
            "CREATE TABLE log(a TEXT);"
            "CREATE TRIGGER img_t AFTER INSERT ON img BEGIN"
            "  INSERT INTO log VALUES(ae_ascii(new.px)); END;"
            "PRAGMA trusted_schema=OFF;"
            "INSERT INTO img VALUES(x'00ff00ff');"
            "SELECT (SELECT a FROM img_v) || (SELECT a FROM log)"
            " || (SELECT count(*) FROM img WHERE ae_png(px)=ae_png(x'00ff00ff'));",
            " @\n @\n @\n @\n1");
  check_sql("flags: deterministic and innocuous in pragma function_list", db,
            "SELECT group_concat(DISTINCT name || ':' || (flags & 0x200800)) FROM"
            " (SELECT * FROM pragma_function_list WHERE name IN ('ae_png','ae_ascii')"
            "  ORDER BY name)",
            "ae_ascii:2099200,ae_png:2099200");
}

/* The first MNIST training image, a five, as the tutorial shows it. Saved
** as a PNG in the test's temporary directory, and kept there for a person
** to look at when $AESQL_KEEP is set. */
static void test_real_digit(sqlite3 *db){
  char zPath[512], zLab[512];
  unsigned char hdr[16], px[784], lab[9], *aPng = 0;
  size_t nPng = 0;
  FILE *f;
  char *zErr;
  int ok;
  snprintf(zPath, sizeof zPath, "%s/mnist/train-images-idx3-ubyte",
           check_datadir());
  snprintf(zLab, sizeof zLab, "%s/mnist/train-labels-idx1-ubyte",
           check_datadir());
  f = fopen(zPath, "rb");
  if( !f ){
    printf("ok - real digit: skipped, no %s (make data) # SKIP\n", zPath);
    return;
  }
  ok = fread(hdr, 1, 16, f)==16 && fread(px, 1, 784, f)==784;
  fclose(f);
  f = fopen(zLab, "rb");
  ok = ok && f && fread(lab, 1, 9, f)==9;
  if( f ) fclose(f);
  CHECK("real digit: the files read", ok && get32(hdr)==0x803 && lab[8]==5);
  if( !ok ) return;
  check_png("real digit: 28x28 as stored", db, "SELECT ae_png(?1)",
            px, 784, 28, 28, px);
  zErr = run_blob(db, "SELECT ae_png(?1, 28, 28, 8)", px, 784, &aPng, &nPng);
  snprintf(zPath, sizeof zPath, "%s/mnist_train_0_label_5.png", check_tmpdir());
  CHECK("real digit: scaled PNG written for a look",
        zErr==0 && check_write_file(zPath, aPng, nPng)==0);
  if( getenv("AESQL_KEEP") ){
    printf("# %s\n", zPath);
  }else{
    unlink(zPath);
    rmdir(check_tmpdir());
  }
  sqlite3_free(zErr);
  free(aPng);
  {
    /* ink where a five has it: the top bar, not the middle of the left */
    sqlite3_stmt *st = 0;
    const char *z = 0;
    sqlite3_prepare_v2(db, "SELECT ae_ascii(?1)", -1, &st, 0);
    sqlite3_bind_blob(st, 1, px, 784, SQLITE_STATIC);
    if( sqlite3_step(st)==SQLITE_ROW ) z = (const char*)sqlite3_column_text(st, 0);
    CHECK("real digit: ascii is 28 lines of 28", z && strlen(z)==812
          && z[28]=='\n' && z[811]=='\n');
    while( z && *z ){     /* shown as TAP comments */
      const char *zEnd = strchr(z, '\n');
      printf("# %.*s\n", (int)(zEnd - z), z);
      z = zEnd + 1;
    }
    sqlite3_finalize(st);
  }
}

/* ---- out of memory: every allocation, in turn, fails once ---- */

static sqlite3_mem_methods oom_orig;
static int oom_countdown;       /* fail the allocation that takes it to 0 */
static int oom_failed;          /* how many allocations were failed */

static void *oom_malloc(int n){
  if( oom_countdown>0 && --oom_countdown==0 ){ oom_failed++; return 0; }
  return oom_orig.xMalloc(n);
}
static void *oom_realloc(void *p, int n){
  if( oom_countdown>0 && --oom_countdown==0 ){ oom_failed++; return 0; }
  return oom_orig.xRealloc(p, n);
}

/* Installs the failing allocator; before the first connection. */
static void oom_install(void){
  sqlite3_mem_methods m;
  sqlite3_config(SQLITE_CONFIG_GETMALLOC, &oom_orig);
  m = oom_orig;
  m.xMalloc = oom_malloc;
  m.xRealloc = oom_realloc;
  sqlite3_config(SQLITE_CONFIG_MALLOC, &m);
}

/* Steps zSql (?1 = a/n) with the 1st, 2nd, ... allocation failing, until
** a run sees no failure; each run must give a result that begins with the
** nWant bytes zWant, an out-of-memory error, or the error zWantErr.
** ASan, in the other build, watches for leaks and bad frees meanwhile. */
static void check_oom(const char *name, sqlite3 *db, const char *zSql,
                      const void *a, int n, const char *zWant, int nWant,
                      const char *zWantErr){
  int k, bad = 0, nNomem = 0;
  char zWhy[300] = "";
  for(k=1; k<1000; k++){
    sqlite3_stmt *st = 0;
    int rc, fails;
    if( sqlite3_prepare_v2(db, zSql, -1, &st, 0)!=SQLITE_OK ){
      snprintf(zWhy, sizeof zWhy, "prepare: %s", sqlite3_errmsg(db));
      bad++;
      break;
    }
    sqlite3_bind_blob(st, 1, a, n, SQLITE_STATIC);
    oom_failed = 0;
    oom_countdown = k;
    rc = sqlite3_step(st);
    fails = oom_failed;
    oom_countdown = 0;
    if( rc==SQLITE_ROW ){
      const void *p = sqlite3_column_blob(st, 0);
      if( zWantErr || !p || sqlite3_column_bytes(st, 0)<nWant
       || memcmp(p, zWant, (size_t)nWant)!=0 ){
        snprintf(zWhy, sizeof zWhy, "allocation %d failing: wrong result", k);
        bad++;
      }
    }else if( rc==SQLITE_NOMEM ){
      nNomem++;
    }else if( !zWantErr || (strstr(sqlite3_errmsg(db), zWantErr)==0
     /* sqlite3_result_error() copies the message; when that copy fails,
     ** SQLite reports its generic message */
     && strcmp(sqlite3_errmsg(db), "SQL logic error")!=0) ){
      snprintf(zWhy, sizeof zWhy, "allocation %d failing: rc %d, %s", k, rc,
               sqlite3_errmsg(db));
      bad++;
    }
    sqlite3_finalize(st);
    if( fails==0 ) break;
  }
  check_report(bad==0 && k<1000 && nNomem>0, name,
               "%s (%d runs, %d out of memory)", zWhy, k, nNomem);
}

static void test_oom(sqlite3 *db){
  unsigned char a[6] = {10, 20, 30, 40, 50, 60}, f[24];
  int i;
  for(i=0; i<6; i++) put_f32(f + 4*i, a[i]/255.0f);
  check_oom("oom: ae_png u8 scaled", db, "SELECT ae_png(?1, 3, 2, 3)",
            a, 6, "\x89PNG", 4, 0);
  check_oom("oom: ae_png float32 scaled", db, "SELECT ae_png(?1, 3, 2, 3)",
            f, 24, "\x89PNG", 4, 0);
  check_oom("oom: ae_ascii float32", db, "SELECT ae_ascii(?1, 3)",
            f, 24, "  .\n..:\n", 8, 0);
  check_oom("oom: an error message", db, "SELECT ae_png(?1, 2.5, 2)",
            a, 6, 0, 0, "ae_png: width must be an integer from 1 to 16384, got '2.5'");
}

/* ae_grid: tiles laid out in order, on the gray background, with gaps. */
static void test_grid(sqlite3 *db){
  /* Five 2x3 u8 images, image k filled with 10k+pixel; in 2 columns. The
  ** picture: 3 rows of tiles; each tile 2x3 at scale 2 is 4x6; gaps of 2. */
  const int gap = 2, tw = 4, th = 6, W = 2*tw + 3*gap, H = 3*th + 4*gap;
  unsigned char want[(2*4 + 3*2)*(3*6 + 4*2)];
  int k, x, y;
  memset(want, 128, sizeof(want));
  for(k=0; k<5; k++){
    int x0 = gap + (k%2)*(tw + gap), y0 = gap + (k/2)*(th + gap);
    for(y=0; y<th; y++) for(x=0; x<tw; x++){
      want[(y0+y)*W + x0 + x] = (unsigned char)(10*(k+1) + (y/2)*2 + x/2);
    }
  }
  sqlite3_exec(db, "CREATE TABLE tiles(k INTEGER, px BLOB);"
    "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k+1 FROM i WHERE k<5)"
    "INSERT INTO tiles SELECT k, unhex(printf('%02x%02x%02x%02x%02x%02x', 10*k, 10*k+1,"
    " 10*k+2, 10*k+3, 10*k+4, 10*k+5)) FROM i;", 0, 0, 0);
  if( check_sql_double(db, "SELECT count(*) FROM tiles")!=5 ){
    /* unhex() is 3.41+: build the BLOBs another way. */
    sqlite3_exec(db, "DELETE FROM tiles;"
      "INSERT INTO tiles VALUES(1, x'0a0b0c0d0e0f'), (2, x'141516171819'),"
      "(3, x'1e1f20212223'), (4, x'28292a2b2c2d'), (5, x'323334353637');", 0, 0, 0);
  }
  sqlite3_exec(db, "INSERT INTO tiles VALUES(6, NULL)", 0, 0, 0);
  check_png("ae_grid: five images in two columns, in order, gaps gray", db,
            "SELECT ae_grid(px, 2, 2, 3, 2) FROM (SELECT px FROM tiles ORDER BY k)",
            0, 0, W, H, want);
  check_sql("ae_grid: no image gives NULL", db,
            "SELECT ae_grid(px, 4) FROM tiles WHERE px IS NULL", "NULL");
  check_sql("ae_grid: square u8 images need no size", db,
            "SELECT length(ae_grid(zeroblob(784), 3)) > 0 FROM tiles", "1");
  check_sql_error("ae_grid: images of another size", db,
            "SELECT ae_grid(px, 2) FROM (SELECT zeroblob(784) AS px UNION ALL "
            "SELECT zeroblob(4))",
            "ae_grid: image 2 is 2x2, the first 28x28; every image of a grid must "
            "have the same size");
  check_sql_error("ae_grid: columns out of range", db,
            "SELECT ae_grid(zeroblob(784), 0)",
            "ae_grid: columns must be an integer from 1 to 1024, got '0'");
  check_sql_error("ae_grid: a picture too large", db,
            "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k+1 FROM i WHERE k<300)"
            "SELECT ae_grid(zeroblob(784), 300, 28, 28, 2) FROM i",
            "more than 16384 pixels a side");
}

int main(void){
  sqlite3 *db;
  oom_install();
  db = check_open(0);
  test_decoder_self_check(db);
  test_png_u8(db);
  test_png_f32(db);
  test_png_scale(db);
  test_png_compressed(db);
  test_png_errors(db);
  test_ascii(db);
  test_flags(db);
  test_real_digit(db);
  test_grid(db);
  test_oom(db);
  sqlite3_close(db);
  return check_done();
}
