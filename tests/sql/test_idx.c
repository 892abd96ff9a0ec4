/*
** Tests of the idx virtual table and the IDX reader (ext/idx_vtab.c,
** ext/idx_file.c): every element type with exact values, plain and gzip
** files, every kind of bad input, the arguments, rowid lookups, security,
** and the real MNIST and Fashion-MNIST files under data/.
*/
#include "check_sql.h"
#include "../../ext/io/idx_file.h"

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* A path in the test's temporary directory; sqlite3_free() it. */
static char *tmp(const char *zName){
  return sqlite3_mprintf("%s/%s", check_tmpdir(), zName);
}

/* An IDX file's bytes: the header for eType and aDim[nDim], then nData
** bytes of pData (already big-endian). *pn gets the size; free() it. */
static unsigned char *idx_bytes(int eType, int nDim, const uint32_t *aDim,
                                const void *pData, size_t nData, size_t *pn){
  size_t nHdr = 4 + 4*(size_t)nDim;
  unsigned char *a = malloc(nHdr + nData + 1);
  int i;
  a[0] = 0; a[1] = 0; a[2] = (unsigned char)eType; a[3] = (unsigned char)nDim;
  for(i=0; i<nDim; i++){
    a[4+4*i]   = (unsigned char)(aDim[i]>>24);
    a[4+4*i+1] = (unsigned char)(aDim[i]>>16);
    a[4+4*i+2] = (unsigned char)(aDim[i]>>8);
    a[4+4*i+3] = (unsigned char)aDim[i];
  }
  if( nData ) memcpy(a + nHdr, pData, nData);
  *pn = nHdr + nData;
  return a;
}

/* Writes n bytes of p to zPath gzip-compressed, as nMember gzip members
** (cut at arbitrary places, as cat a.gz b.gz would make). */
static int write_gz(const char *zPath, const void *p, size_t n, int nMember){
  size_t iOff = 0;
  int k;
  for(k=0; k<nMember; k++){
    size_t nPart = k==nMember-1 ? n - iOff : n/(size_t)nMember;
    gzFile gz = gzopen(zPath, k==0 ? "wb" : "ab");
    if( gz==0 ) return 1;
    if( nPart
     && gzwrite(gz, (const char*)p + iOff, (unsigned)nPart)!=(int)nPart ){
      gzclose(gz);
      return 1;
    }
    if( gzclose(gz)!=Z_OK ) return 1;
    iOff += nPart;
  }
  return 0;
}

/* Writes an IDX file at tmp(zName), plain or gzip; returns its path. */
static char *make_idx(const char *zName, int isGzip, int eType, int nDim,
                      const uint32_t *aDim, const void *pData, size_t nData){
  char *zPath = tmp(zName);
  size_t n;
  unsigned char *a = idx_bytes(eType, nDim, aDim, pData, nData, &n);
  int rc = isGzip ? write_gz(zPath, a, n, 1) : check_write_file(zPath, a, n);
  free(a);
  if( rc ){ fprintf(stderr, "cannot write %s\n", zPath); exit(2); }
  return zPath;
}

/* The whole content of a file; free() it. */
static unsigned char *read_all(const char *zPath, size_t *pn){
  FILE *f = fopen(zPath, "rb");
  unsigned char *a;
  long n;
  if( !f ) return 0;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  a = malloc((size_t)n + 1);
  if( fread(a, 1, (size_t)n, f)!=(size_t)n ){ free(a); a = 0; }
  fclose(f);
  *pn = (size_t)n;
  return a;
}

/* Runs zFmt (a printf format with %q for the paths) and frees nothing. */
static char *sqlf(const char *zFmt, ...){
  va_list ap;
  char *z;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  return z;
}

/* CREATE VIRTUAL TABLE zTab USING idx(images=..., labels=...) as SQL. */
static char *create_sql(const char *zTab, const char *zImg, const char *zLab){
  if( zLab ){
    return sqlf("CREATE VIRTUAL TABLE %s USING idx(images='%q', labels='%q')",
                zTab, zImg, zLab);
  }
  return sqlf("CREATE VIRTUAL TABLE %s USING idx(images='%q')", zTab, zImg);
}

/* Expects CREATE VIRTUAL TABLE to fail with a message containing zWant,
** and the table not to exist afterwards. */
static void check_create_error(const char *zName, sqlite3 *db,
                               const char *zImg, const char *zLab,
                               const char *zWant){
  char *zSql = create_sql("bad", zImg, zLab);
  char *zGot = check_query(db, zSql);
  char *zAfter = check_query(db, "SELECT count(*) FROM bad");
  int ok = zGot && strncmp(zGot, "ERROR: idx: ", 12)==0 && strstr(zGot, zWant)
        && zAfter && strstr(zAfter, "no such table");
  check_report(ok, zName, "sql [%s]\n  got  [%s]\n  want an error "
               "containing [%s], and no table (got [%s])", zSql,
               zGot ? zGot : "(null)", zWant, zAfter ? zAfter : "(null)");
  sqlite3_free(zSql);
  sqlite3_free(zGot);
  sqlite3_free(zAfter);
}

/* Creates table zTab, dropping any table of that name first; exits if
** that fails, since later checks need it. */
static void create_ok(sqlite3 *db, const char *zTab, const char *zImg,
                      const char *zLab){
  char *zSql = create_sql(zTab, zImg, zLab);
  char *zDrop = sqlf("DROP TABLE IF EXISTS %s", zTab);
  char *zErr = 0;
  sqlite3_exec(db, zDrop, 0, 0, 0);
  if( sqlite3_exec(db, zSql, 0, 0, &zErr)!=SQLITE_OK ){
    printf("not ok - create %s: %s\n", zTab, zErr ? zErr : "?");
    check_nfail++;
  }
  sqlite3_free(zErr);
  sqlite3_free(zSql);
  sqlite3_free(zDrop);
}

/* The process's resident memory, kB, from /proc/self/status; -1 if
** unknown. */
static long rss_kb(void){
  char zLine[256];
  long n = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if( !f ) return -1;
  while( fgets(zLine, sizeof(zLine), f) ){
    if( strncmp(zLine, "VmRSS:", 6)==0 ){ n = atol(zLine+6); break; }
  }
  fclose(f);
  return n;
}

static double now_ms(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec*1e3 + t.tv_nsec/1e6;
}

/*
** Element types, shapes, plain and gzip.
*/
static void test_types(sqlite3 *db){
  static const unsigned char aU8[12] = {0,1,2,3,4,5,6,7,8,9,10,11};
  static const unsigned char aLabU8[2] = {7, 255};
  static const unsigned char aI8[4] = {0x80, 0xff, 0x00, 0x7f};
  static const unsigned char aI16[8] = {0x80,0x00, 0x7f,0xff, 0x04,0xd2,
                                        0xff,0xf9};
  static const unsigned char aI32[20] = {
    0x01,0x00,0x00,0x00,  0xfe,0xff,0xff,0xff,  0x7f,0xff,0xff,0xff,
    0x80,0x00,0x00,0x00,  0x01,0x00,0x00,0x03 };
  static const unsigned char aF32[20] = {
    0x3f,0xc0,0x00,0x00,  0x80,0x00,0x00,0x00,  0x7f,0x7f,0xff,0xff,
    0x7f,0x80,0x00,0x00,  0x7f,0xc0,0x00,0x01 };
  static const unsigned char aF64[40] = {
    0x3f,0xb9,0x99,0x99,0x99,0x99,0x99,0x9a,   /* 0.1 */
    0x3f,0xf0,0x00,0x00,0x00,0x40,0x00,0x00,   /* 1 + 2^-30 */
    0xc0,0x04,0x00,0x00,0x00,0x00,0x00,0x00,   /* -2.5 */
    0x35,0x8d,0xee,0x7a,0x4a,0xd4,0xb8,0x1f,   /* 1e-50 */
    0x7e,0x37,0xe4,0x3c,0x88,0x00,0x75,0x9c }; /* 1e300 */
  static const unsigned char aLabI16[2] = {0xff,0xfb};    /* -5 */
  static const unsigned char aLabI32[4] = {0x00,0x01,0x86,0xa0}; /* 100000 */
  static const unsigned char aLabI8[1] = {0xfd};                 /* -3 */
  static const unsigned char aLabF32[4] = {0x40,0x20,0x00,0x00}; /* 2.5 */
  static const unsigned char aLabF64[8] = {0x3f,0xb9,0x99,0x99,
                                           0x99,0x99,0x99,0x9a};  /* 0.1 */
  uint32_t d3[3] = {2, 2, 3}, d1[1] = {2}, d1one[1] = {1};
  uint32_t d2i8[2] = {1, 4}, d2i16[2] = {1, 4}, d3i32[3] = {1, 1, 5};
  uint32_t d2f[2] = {1, 5}, d2f64[2] = {1, 5};
  char *zImg, *zLab;

  zImg = make_idx("u8.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  zLab = make_idx("u8-labels.idx", 0, AESQL_IDX_U8, 1, d1, aLabU8, 2);
  create_ok(db, "t_u8", zImg, zLab);
  check_sql("u8 3-D: bytes as they are, labels, hidden columns", db,
            "SELECT rowid, class, typeof(class), hex(pixels), height, width,"
            " dtype FROM t_u8",
            "1|7|integer|000102030405|2|3|u8\n"
            "2|255|integer|060708090A0B|2|3|u8");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = make_idx("i8.idx", 0, AESQL_IDX_I8, 2, d2i8, aI8, 4);
  zLab = make_idx("i8-labels.idx", 0, AESQL_IDX_I8, 1, d1one, aLabI8, 1);
  create_ok(db, "t_i8", zImg, zLab);
  check_sql("i8 2-D: -128 -1 0 127 as float32, height 1, width F", db,
            "SELECT class, typeof(class), hex(pixels), height, width, dtype"
            " FROM t_i8",
            "-3|integer|000000C3000080BF000000000000FE42|1|4|i8");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = make_idx("i16.idx", 0, AESQL_IDX_I16, 2, d2i16, aI16, 8);
  zLab = make_idx("i16-labels.idx", 0, AESQL_IDX_I16, 1, d1one, aLabI16, 2);
  create_ok(db, "t_i16", zImg, zLab);
  check_sql("i16: -32768 32767 1234 -7 as float32, labels -5", db,
            "SELECT class, typeof(class), hex(pixels), dtype FROM t_i16",
            "-5|integer|000000C700FEFF4600409A440000E0C0|i16");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = make_idx("i32.idx", 0, AESQL_IDX_I32, 3, d3i32, aI32, 20);
  zLab = make_idx("i32-labels.idx", 0, AESQL_IDX_I32, 1, d1one, aLabI32, 4);
  create_ok(db, "t_i32", zImg, zLab);
  check_sql("i32: 2^24 exact; -2^24-1, 2^31-1, 2^24+3 rounded to nearest even",
            db, "SELECT class, hex(pixels), height, width, dtype FROM t_i32",
            "100000|0000804B000080CB0000004F000000CF0200804B|1|5|i32");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = make_idx("f32.idx", 0, AESQL_IDX_F32, 2, d2f, aF32, 20);
  zLab = make_idx("f32-labels.idx", 0, AESQL_IDX_F32, 1, d1one, aLabF32, 4);
  create_ok(db, "t_f32", zImg, zLab);
  check_sql("f32: 1.5 -0 FLT_MAX inf NaN-payload byte-swapped; REAL labels",
            db, "SELECT class, typeof(class), hex(pixels), dtype FROM t_f32",
            "2.5|real|0000C03F00000080FFFF7F7F0000807F0100C07F|f32");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = make_idx("f64.idx", 0, AESQL_IDX_F64, 2, d2f64, aF64, 40);
  zLab = make_idx("f64-labels.idx", 0, AESQL_IDX_F64, 1, d1one, aLabF64, 8);
  create_ok(db, "t_f64", zImg, zLab);
  check_sql("f64: 0.1 1+2^-30 -2.5 1e-50 1e300 rounded to float32; labels "
            "kept as double", db,
            "SELECT class=0.1, typeof(class), hex(pixels), dtype FROM t_f64",
            "1|real|CDCCCC3D0000803F000020C0000000000000807F|f64");
  CHECK("f64 labels: the double itself, 0.1 exactly",
        check_sql_double(db, "SELECT class FROM t_f64")==0.1);
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = tmp("u8.idx");
  create_ok(db, "t_nolab", zImg, 0);
  check_sql("no labels file: class is NULL", db,
            "SELECT count(*), count(class), typeof(class) FROM t_nolab",
            "2|0|null");
  sqlite3_free(zImg);

  check_sql("declared types: class INTEGER, or REAL for float labels; "
            "pixels BLOB; hidden columns not in SELECT *", db,
            "SELECT group_concat(name||':'||type||':'||hidden, ' ') FROM"
            " (SELECT * FROM pragma_table_xinfo('t_u8') UNION ALL"
            "  SELECT * FROM pragma_table_xinfo('t_f32') WHERE name='class')",
            "class:INTEGER:0 pixels:BLOB:0 height:INTEGER:1 width:INTEGER:1 "
            "dtype:TEXT:1 class:REAL:0");
  {
    sqlite3_stmt *st = 0;
    int n = -1;
    if( sqlite3_prepare_v2(db, "SELECT * FROM t_u8", -1, &st, 0)==SQLITE_OK ){
      n = sqlite3_column_count(st);
    }
    sqlite3_finalize(st);
    CHECK("SELECT * gives class and pixels only", n==2);
  }
}

static void test_gzip(sqlite3 *db){
  static const unsigned char aU8[12] = {0,1,2,3,4,5,6,7,8,9,10,11};
  static const unsigned char aLab[2] = {7, 255};
  uint32_t d3[3] = {2, 2, 3}, d1[1] = {2};
  static const char *zWant = "1|7|000102030405|2|3|u8\n"
                             "2|255|060708090A0B|2|3|u8";
  char *zImg, *zLab;
  size_t n;
  unsigned char *a;

  zImg = make_idx("gz-images.idx.gz", 1, AESQL_IDX_U8, 3, d3, aU8, 12);
  zLab = make_idx("gz-labels.idx.gz", 1, AESQL_IDX_U8, 1, d1, aLab, 2);
  create_ok(db, "t_gz", zImg, zLab);
  check_sql("gzip images and labels read as the plain ones", db,
            "SELECT rowid, class, hex(pixels), height, width, dtype FROM t_gz",
            zWant);
  sqlite3_free(zImg); sqlite3_free(zLab);

  /* Three members, the header cut in the middle of the first cut. */
  zImg = tmp("multi.gz");
  a = idx_bytes(AESQL_IDX_U8, 3, d3, aU8, 12, &n);
  write_gz(zImg, a, n, 3);
  free(a);
  zLab = tmp("gz-labels.idx.gz");
  create_ok(db, "t_multi", zImg, zLab);
  check_sql("multi-member gzip is read whole", db,
            "SELECT rowid, class, hex(pixels), height, width, dtype"
            " FROM t_multi", zWant);
  sqlite3_free(zImg); sqlite3_free(zLab);

  /* Names that say the opposite of the content. */
  zImg = make_idx("looks-plain.idx", 1, AESQL_IDX_U8, 3, d3, aU8, 12);
  zLab = make_idx("looks-gzipped.idx.gz", 0, AESQL_IDX_U8, 1, d1, aLab, 2);
  create_ok(db, "t_names", zImg, zLab);
  check_sql("gzip or plain told by content, not by name", db,
            "SELECT rowid, class, hex(pixels), height, width, dtype"
            " FROM t_names", zWant);
  sqlite3_free(zImg); sqlite3_free(zLab);
}

/*
** Bad files: one check each, on the message.
*/
static void test_bad_files(sqlite3 *db){
  static const unsigned char aU8[12] = {0,1,2,3,4,5,6,7,8,9,10,11};
  static const char zHtml[] =
    "<!DOCTYPE html><html><body>SECRET-PAGE 404 not found</body></html>\n";
  uint32_t d3[3] = {2, 2, 3}, d1[1] = {2}, d1x3[1] = {3};
  uint32_t dBad[3];
  char *zGood = make_idx("good.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  char *zGoodLab = make_idx("good-labels.idx", 0, AESQL_IDX_U8, 1, d1, aU8, 2);
  char *z, *zMsg;
  unsigned char *a;
  size_t n;

  z = tmp("does-not-exist.idx");
  zMsg = sqlite3_mprintf("idx: cannot open '%s': no such file or directory",
                         z);
  check_create_error("missing file", db, z, 0, zMsg);
  sqlite3_free(zMsg);
  check_create_error("missing labels file", db, zGood, z,
                     "does-not-exist.idx': no such file or directory");
  sqlite3_free(z);

  check_create_error("a directory", db, check_tmpdir(), 0,
                     "is a directory, not an IDX file");
  /* A FIFO would block open() for ever, waiting for a writer. */
  z = tmp("fifo.idx");
  if( mkfifo(z, 0600)==0 ){
    double t0 = now_ms();
    alarm(20);                  /* a regression kills the test, not CI */
    check_create_error("a FIFO: refused at once, no wait for a writer", db,
                       z, 0, "fifo.idx' is not a regular file");
    alarm(0);
    CHECK("a FIFO: within a second", now_ms()-t0 < 1000);
  }else{
    CHECK("mkfifo for the FIFO test", 0);
  }
  sqlite3_free(z);
  check_create_error("a device", db, "/dev/zero", 0,
                     "'/dev/zero' is not a regular file");

  z = tmp("empty.idx");
  check_write_file(z, "", 0);
  check_create_error("empty file", db, z, 0, "empty.idx' is empty");
  sqlite3_free(z);

  z = tmp("short.idx");
  check_write_file(z, "\0\0\x08", 3);
  check_create_error("header shorter than the magic number", db, z, 0,
                     "short.idx' is too short to be an IDX file (3 bytes");
  sqlite3_free(z);

  z = tmp("short-dims.idx");
  check_write_file(z, "\0\0\x08\x03\0\0\0\x02\0\0\0", 11);
  check_create_error("header cut inside the dimensions", db, z, 0,
                     "short-dims.idx' is too short: its header declares 3 "
                     "dimensions, which need 16 bytes, but it has 11");
  sqlite3_free(z);

  z = tmp("page.html");
  check_write_file(z, zHtml, sizeof(zHtml)-1);
  check_create_error("HTML read raw: bad magic", db, z, 0,
                     "page.html' is not an IDX file (bad magic number)");
  {
    char *zSql = create_sql("bad", z, 0);
    char *zGot = check_query(db, zSql);
    CHECK("the message never echoes the file's bytes",
          zGot && strstr(zGot, "ERROR")==zGot && !strstr(zGot, "SECRET")
          && !strstr(zGot, "html>"));
    sqlite3_free(zGot);
    sqlite3_free(zSql);
  }
  sqlite3_free(z);

  z = tmp("page.idx.gz");
  write_gz(z, zHtml, sizeof(zHtml)-1, 1);
  check_create_error("gzip of HTML: bad magic after decompression", db, z, 0,
                     "page.idx.gz' is not an IDX file (bad magic number "
                     "after decompression)");
  sqlite3_free(z);

  z = tmp("type0a.idx");
  check_write_file(z, "\0\0\x0a\x01\0\0\0\x01\x05", 9);
  check_create_error("unknown type code", db, z, 0,
                     "type0a.idx' has an unknown IDX element type (0x0a");
  sqlite3_free(z);

  z = tmp("ndims0.idx");
  check_write_file(z, "\0\0\x08\0\x05", 5);
  check_create_error("zero dimensions", db, z, 0,
                     "ndims0.idx' declares no dimensions");
  sqlite3_free(z);

  dBad[0] = 0; dBad[1] = 28; dBad[2] = 28;
  z = make_idx("n0.idx", 0, AESQL_IDX_U8, 3, dBad, 0, 0);
  check_create_error("N = 0: no images", db, z, 0,
                     "n0.idx' holds no items (its first dimension is 0)");
  sqlite3_free(z);

  dBad[0] = 2; dBad[1] = 28; dBad[2] = 0;
  z = make_idx("c0.idx", 0, AESQL_IDX_U8, 3, dBad, 0, 0);
  check_create_error("a dimension of 0", db, z, 0,
                     "c0.idx' has a dimension of size 0 (dimension 3 of 3)");
  sqlite3_free(z);

  dBad[0] = 0xffffffff; dBad[1] = 0xffffffff; dBad[2] = 0xffffffff;
  z = make_idx("overflow.idx", 0, AESQL_IDX_F64, 3, dBad, 0, 0);
  check_create_error("dimension product overflows 64 bits", db, z, 0,
                     "overflow.idx' declares a size too large to count in "
                     "64 bits");
  sqlite3_free(z);

  dBad[0] = 5; dBad[1] = 65536; dBad[2] = 65536;
  z = make_idx("huge.idx", 0, AESQL_IDX_U8, 3, dBad, aU8, 12);
  check_create_error("more than 16 GiB declared", db, z, 0,
                     "huge.idx' declares 21474836480 bytes of data, over the "
                     "limit of 17179869184 (16 GiB)");
  sqlite3_free(z);

  z = make_idx("trunc.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 11);
  check_create_error("plain payload shorter than declared", db, z, 0,
                     "trunc.idx' is truncated: its header declares 12 bytes "
                     "of data but the file holds 11");
  sqlite3_free(z);

  {
    unsigned char aLong[13];
    memcpy(aLong, aU8, 12);
    aLong[12] = 99;
    z = make_idx("long.idx", 0, AESQL_IDX_U8, 3, d3, aLong, 13);
    check_create_error("plain payload longer than declared", db, z, 0,
                       "long.idx' is longer than its header declares: 13 "
                       "bytes of data where 12 are expected");
    sqlite3_free(z);
    z = make_idx("long.gz", 1, AESQL_IDX_U8, 3, d3, aLong, 13);
    check_create_error("gzip payload longer than declared", db, z, 0,
                       "long.gz' is longer than its header declares: more "
                       "than the 12 bytes of data expected");
    sqlite3_free(z);
  }

  z = make_idx("trunc.gz", 1, AESQL_IDX_U8, 3, d3, aU8, 7);
  check_create_error("gzip payload shorter than declared", db, z, 0,
                     "trunc.gz' is truncated: its header declares 12 bytes "
                     "of data but it holds 7 after decompression");
  sqlite3_free(z);

  /* A gzip stream cut short, one with a wrong CRC, one with bad deflate
  ** data (a reserved block type). */
  z = make_idx("cut.gz", 1, AESQL_IDX_U8, 3, d3, aU8, 12);
  a = read_all(z, &n);
  check_write_file(z, a, n-6);
  check_create_error("truncated gzip", db, z, 0,
                     "cut.gz' is a truncated gzip file (unexpected end of "
                     "file)");
  a[n-8] ^= 0x55;
  sqlite3_free(z);
  z = tmp("crc.gz");
  check_write_file(z, a, n);
  check_create_error("gzip with a bad CRC", db, z, 0,
                     "crc.gz' is a corrupt gzip file (incorrect data check)");
  a[n-8] ^= 0x55;
  a[10] = 0x07;
  sqlite3_free(z);
  z = tmp("deflate.gz");
  check_write_file(z, a, n);
  check_create_error("gzip with bad deflate data", db, z, 0,
                     "deflate.gz' is a corrupt gzip file (invalid block "
                     "type)");
  free(a);
  sqlite3_free(z);

  z = make_idx("labels3.idx", 0, AESQL_IDX_U8, 1, d1x3, aU8, 3);
  check_create_error("labels count differs from images", db, zGood, z,
                     "labels3.idx' holds 3 labels but images file '");
  sqlite3_free(z);

  z = make_idx("labels2d.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  zMsg = sqlite3_mprintf("idx: labels file '%s' has 3 dimensions; it needs "
                         "exactly 1 (one label per image)", z);
  check_create_error("labels not one-dimensional", db, zGood, z, zMsg);
  sqlite3_free(zMsg);
  sqlite3_free(z);

  zMsg = sqlite3_mprintf("idx: images file '%s' has 1 dimension; it needs "
                         "2 (N x F) or 3 (N x R x C)", zGoodLab);
  check_create_error("images with 1 dimension", db, zGoodLab, 0, zMsg);
  sqlite3_free(zMsg);
  {
    uint32_t d4[4] = {1, 2, 2, 3};
    z = make_idx("four.idx", 0, AESQL_IDX_U8, 4, d4, aU8, 12);
    check_create_error("images with 4 dimensions", db, z, 0,
                       "four.idx' has 4 dimensions; it needs 2 (N x F) or 3");
    sqlite3_free(z);
  }

  /* A gzip file of some 50 bytes whose header claims 3.1 GB: fails at
  ** once, having allocated a megabyte at most. */
  {
    uint32_t dBig[3] = {4000000, 28, 28};
    aesql_idx_file f;
    double t0 = now_ms();
    int rc;
    z = make_idx("liar.gz", 1, AESQL_IDX_U8, 3, dBig, aU8, 12);
    check_create_error("gzip header claiming gigabytes: truncated", db, z, 0,
                       "liar.gz' is truncated: its header declares "
                       "3136000000 bytes of data but it holds 12");
    rc = aesql_idx_open(&f, z);
    if( rc==AESQL_IDX_OK ) rc = aesql_idx_load(&f);
    CHECK("gzip header claiming gigabytes: reader allocates <= 1 MiB and "
          "fails fast", rc==AESQL_IDX_ERROR && f.nAlloc<=((size_t)1<<20)
          && now_ms()-t0<2000);
    aesql_idx_close(&f);
    sqlite3_free(z);
  }
  sqlite3_free(zGood);
  sqlite3_free(zGoodLab);
}

/*
** Arguments.
*/
static void test_args(sqlite3 *db){
  static const unsigned char aU8[12] = {0,1,2,3,4,5,6,7,8,9,10,11};
  uint32_t d3[3] = {2, 2, 3};
  char *zGood = make_idx("args.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  char *zQuote = make_idx("it's.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  char *zSql;
  char zCwd[4096];

  zSql = sqlf("CREATE VIRTUAL TABLE bad USING idx(images='%q', foo='x')",
              zGood);
  check_sql_error("unknown argument", db, zSql, "idx: unknown argument 'foo'");
  sqlite3_free(zSql);

  zSql = sqlf("CREATE VIRTUAL TABLE bad USING idx(images='%q', images='%q')",
              zGood, zGood);
  check_sql_error("argument given twice", db, zSql,
                  "idx: argument 'images' given twice");
  sqlite3_free(zSql);

  zSql = sqlf("CREATE VIRTUAL TABLE bad USING idx(labels='%q')", zGood);
  check_sql_error("images missing", db, zSql,
                  "idx: missing argument 'images'");
  sqlite3_free(zSql);

  check_sql_error("no arguments at all", db,
                  "CREATE VIRTUAL TABLE bad USING idx",
                  "idx: missing argument 'images'");

  check_sql_error("argument without '='", db,
                  "CREATE VIRTUAL TABLE bad USING idx(images)",
                  "idx: argument 'images' is missing '='");

  check_sql_error("empty value", db,
                  "CREATE VIRTUAL TABLE bad USING idx(images='')",
                  "idx: argument 'images' is empty");

  check_sql_error("text after the closing quote", db,
                  "CREATE VIRTUAL TABLE bad USING idx(images='a'b)",
                  "idx: argument 'images' has a badly quoted value");

  /* The bare value is a relative path: relative to the current directory. */
  if( getcwd(zCwd, sizeof(zCwd))==0 || chdir(check_tmpdir())!=0 ){
    perror("chdir");
    exit(2);
  }
  zSql = sqlf("CREATE VIRTUAL TABLE a1 USING idx(images=\"%w\");"
              "CREATE VIRTUAL TABLE a2 USING idx( IMAGES = args.idx );"
              "CREATE VIRTUAL TABLE a3 USING idx(images='%q');"
              "SELECT (SELECT count(*) FROM a1), (SELECT count(*) FROM a2),"
              " (SELECT hex(pixels) FROM a3 WHERE rowid=2)",
              zGood, zQuote);
  check_sql("\"double\" quotes, bare relative path, any case, '' escapes",
            db, zSql, "2|2|060708090A0B");
  sqlite3_free(zSql);
  if( chdir(zCwd)!=0 ){ perror("chdir"); exit(2); }

  check_sql_error("no eponymous table: idx needs CREATE VIRTUAL TABLE", db,
                  "SELECT * FROM idx", "no such table: idx");
  sqlite3_free(zGood);
  sqlite3_free(zQuote);
}

/*
** Real data: MNIST (plain) and Fashion-MNIST (gzip).
*/
static void test_mnist(sqlite3 *db){
  const char *zDir = check_datadir();
  char *zImg = sqlf("%s/mnist/train-images-idx3-ubyte", zDir);
  char *zLab = sqlf("%s/mnist/train-labels-idx1-ubyte", zDir);
  char *zTImg = sqlf("%s/mnist/t10k-images-idx3-ubyte", zDir);
  char *zTLab = sqlf("%s/mnist/t10k-labels-idx1-ubyte", zDir);
  char *zPlan;
  size_t nFile = 0;
  unsigned char *aFile = read_all(zImg, &nFile);

  if( aFile==0 || nFile!=47040016 ){
    printf("not ok - MNIST files in %s/mnist (run make data)\n", zDir);
    check_nfail++;
    free(aFile);
    return;
  }
  create_ok(db, "mnist_train", zImg, zLab);
  create_ok(db, "mnist_t10k", zTImg, zTLab);

  check_sql("MNIST train: 60000 rows", db,
            "SELECT count(*) FROM mnist_train", "60000");
  check_sql("MNIST train: 5421 of class 5", db,
            "SELECT count(*) FROM mnist_train WHERE class=5", "5421");
  check_sql("MNIST train: first rows are 5 0 4, 784 bytes each", db,
            "SELECT rowid, class, length(pixels) FROM mnist_train LIMIT 3",
            "1|5|784\n2|0|784\n3|4|784");
  check_sql("MNIST hidden columns", db,
            "SELECT height, width, dtype FROM mnist_train WHERE rowid=1",
            "28|28|u8");
  check_sql("MNIST t10k: 10000 rows", db,
            "SELECT count(*) FROM mnist_t10k", "10000");
  {
    sqlite3_stmt *st = 0;
    int ok = sqlite3_prepare_v2(db, "SELECT pixels FROM mnist_train"
                                " WHERE rowid IN (1, 60000) ORDER BY rowid",
                                -1, &st, 0)==SQLITE_OK;
    ok = ok && sqlite3_step(st)==SQLITE_ROW
            && sqlite3_column_bytes(st, 0)==784
            && memcmp(sqlite3_column_blob(st, 0), aFile+16, 784)==0;
    ok = ok && sqlite3_step(st)==SQLITE_ROW
            && sqlite3_column_bytes(st, 0)==784
            && memcmp(sqlite3_column_blob(st, 0), aFile+16+59999*784, 784)==0;
    ok = ok && sqlite3_step(st)==SQLITE_DONE;
    sqlite3_finalize(st);
    CHECK("MNIST pixels of rows 1 and 60000 are the file's bytes", ok);
  }

  /* rowid lookups and ranges. */
  check_sql("rowid = ? finds the row", db,
            "SELECT rowid, class FROM mnist_train WHERE rowid=60000",
            "60000|8");
  check_sql("rowid IN (...)", db,
            "SELECT group_concat(class) FROM mnist_train"
            " WHERE rowid IN (3, 1, 2, 99999)", "5,0,4");
  check_sql("rowid out of range, NULL, non-integer: no rows", db,
            "SELECT (SELECT count(*) FROM mnist_train WHERE rowid=0),"
            " (SELECT count(*) FROM mnist_train WHERE rowid=-1),"
            " (SELECT count(*) FROM mnist_train WHERE rowid=60001),"
            " (SELECT count(*) FROM mnist_train WHERE rowid=NULL),"
            " (SELECT count(*) FROM mnist_train WHERE rowid=2.5),"
            " (SELECT count(*) FROM mnist_train WHERE rowid=x'01')",
            "0|0|0|0|0|0");
  check_sql("rowid = 2.0 and = '3' match as SQLite compares", db,
            "SELECT (SELECT class FROM mnist_train WHERE rowid=2.0),"
            " (SELECT class FROM mnist_train WHERE rowid='3')", "0|4");
  check_sql("rowid ranges", db,
            "SELECT (SELECT count(*)||','||min(rowid)||','||max(rowid)"
            "   FROM mnist_train WHERE rowid>59990 AND rowid<=59995),"
            " (SELECT count(*) FROM mnist_train WHERE rowid BETWEEN 10 AND 12),"
            " (SELECT group_concat(rowid) FROM mnist_train"
            "   WHERE rowid>=2.5 AND rowid<5.5),"
            " (SELECT count(*) FROM mnist_train WHERE rowid<'abc'),"
            " (SELECT count(*) FROM mnist_train WHERE rowid>=-5 AND rowid<3),"
            " (SELECT count(*) FROM mnist_train WHERE rowid>9e18)",
            "5,59991,59995|3|3,4,5|60000|2|0");
  check_sql("ORDER BY rowid DESC", db,
            "SELECT group_concat(rowid) FROM (SELECT rowid FROM mnist_train"
            " WHERE rowid>59997 ORDER BY rowid DESC)", "60000,59999,59998");
  zPlan = check_query(db, "EXPLAIN QUERY PLAN SELECT class FROM mnist_train"
                          " WHERE rowid=?");
  CHECK("EXPLAIN QUERY PLAN shows the rowid lookup",
        zPlan && strstr(zPlan, "VIRTUAL TABLE INDEX 1:rowid=?"));
  sqlite3_free(zPlan);
  zPlan = check_query(db, "EXPLAIN QUERY PLAN SELECT rowid FROM mnist_train"
                          " ORDER BY rowid DESC");
  CHECK("ORDER BY rowid needs no sort",
        zPlan && strstr(zPlan, "VIRTUAL TABLE") && !strstr(zPlan, "B-TREE"));
  sqlite3_free(zPlan);
  {
    sqlite3_stmt *st = 0;
    int i, ok = sqlite3_prepare_v2(db, "SELECT class FROM mnist_train"
                                   " WHERE rowid=?", -1, &st, 0)==SQLITE_OK;
    double t0 = now_ms();
    long nSum = 0;
    for(i=0; ok && i<60000; i++){
      sqlite3_bind_int(st, 1, 60000 - i);
      ok = sqlite3_step(st)==SQLITE_ROW;
      nSum += sqlite3_column_int(st, 0);
      sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    /* The sum of the labels, from the file: */
    {
      char *zL = sqlf("%s/mnist/train-labels-idx1-ubyte", zDir);
      size_t nL, j;
      unsigned char *aL = read_all(zL, &nL);
      long nWant = 0;
      for(j=8; aL && j<nL; j++) nWant += aL[j];
      ok = ok && aL && nSum==nWant;
      free(aL);
      sqlite3_free(zL);
    }
    printf("# 60000 rowid lookups: %.0f ms\n", now_ms()-t0);
    CHECK("60000 rowid lookups, one per row, see every label", ok);
  }

  /* A full scan at memory speed, its resident pages bounded. */
  {
    sqlite3_stmt *st = 0;
    long nBase = rss_kb(), nMax = nBase, nRow = 0;
    uint64_t nSum = 0, nWant = 0;
    size_t j;
    double t0 = now_ms();
    int ok = sqlite3_prepare_v2(db, "SELECT pixels FROM mnist_train", -1,
                                &st, 0)==SQLITE_OK;
    while( ok && sqlite3_step(st)==SQLITE_ROW ){
      const unsigned char *p = sqlite3_column_blob(st, 0);
      int k, nb = sqlite3_column_bytes(st, 0);
      for(k=0; k<nb; k++) nSum += p[k];
      if( (++nRow % 1000)==0 ){
        long r = rss_kb();
        if( r>nMax ) nMax = r;
      }
    }
    sqlite3_finalize(st);
    printf("# full scan of 60000 images: %.0f ms, resident memory "
           "grew by %ld kB at most\n", now_ms()-t0, nMax-nBase);
    for(j=16; j<nFile; j++) nWant += aFile[j];
    CHECK("full scan: 60000 rows, pixel sum equals the file's",
          ok && nRow==60000 && nSum==nWant);
    CHECK("full scan: resident memory grows by under 4 MB (47 MB file, "
          "read a window at a time)", nBase>=0 && nMax-nBase < 4*1024);
  }

  check_sql("CREATE TABLE AS SELECT copies classes and pixels", db,
            "CREATE TABLE train AS SELECT class, pixels FROM mnist_train;"
            "SELECT count(*), sum(length(pixels)),"
            " (SELECT typeof(class) FROM train LIMIT 1),"
            " (SELECT count(*) FROM train t JOIN mnist_train m"
            "   ON m.rowid=t.rowid"
            "   WHERE m.pixels<>t.pixels OR m.class<>t.class)"
            " FROM train", "60000|47040000|integer|0");
  sqlite3_exec(db, "DROP TABLE train", 0, 0, 0);

  check_sql("a self-join scans the file twice at once", db,
            "SELECT count(*) FROM mnist_t10k a JOIN mnist_t10k b"
            " ON a.rowid=b.rowid+1 WHERE a.class=b.class", "845");
  free(aFile);
  sqlite3_free(zImg); sqlite3_free(zLab);
  sqlite3_free(zTImg); sqlite3_free(zTLab);
}

static void test_fashion(sqlite3 *db){
  const char *zDir = check_datadir();
  char *zImg = sqlf("%s/fashion/t10k-images-idx3-ubyte.gz", zDir);
  char *zLab = sqlf("%s/fashion/t10k-labels-idx1-ubyte.gz", zDir);
  create_ok(db, "fashion_test", zImg, zLab);
  check_sql("Fashion-MNIST test (gzip): 1000 of each of 10 classes", db,
            "SELECT class, count(*) FROM fashion_test GROUP BY class",
            "0|1000\n1|1000\n2|1000\n3|1000\n4|1000\n"
            "5|1000\n6|1000\n7|1000\n8|1000\n9|1000");
  check_sql("Fashion-MNIST: 784 bytes of u8 per image, 28 x 28", db,
            "SELECT count(*), min(length(pixels)), max(length(pixels)),"
            " height, width, dtype FROM fashion_test",
            "10000|784|784|28|28|u8");
  sqlite3_free(zImg); sqlite3_free(zLab);

  zImg = sqlf("%s/fashion/train-images-idx3-ubyte.gz", zDir);
  zLab = sqlf("%s/fashion/train-labels-idx1-ubyte.gz", zDir);
  create_ok(db, "fashion_train", zImg, zLab);
  check_sql("Fashion-MNIST train (47 MB from 26 MB of gzip): 6000 of each "
            "class", db,
            "SELECT group_concat(n) FROM (SELECT count(*) AS n, "
            "sum(length(pixels)) AS b FROM fashion_train GROUP BY class"
            " HAVING b=6000*784)",
            "6000,6000,6000,6000,6000,6000,6000,6000,6000,6000");
  sqlite3_free(zImg); sqlite3_free(zLab);
}

/*
** Security, read-only, reopening a database.
*/
static void test_schema(sqlite3 *db){
  static const unsigned char aU8[12] = {0,1,2,3,4,5,6,7,8,9,10,11};
  static const unsigned char aLab[2] = {3, 4};
  uint32_t d3[3] = {2, 2, 3}, d1[1] = {2};
  char *zImg = make_idx("s.idx", 0, AESQL_IDX_U8, 3, d3, aU8, 12);
  char *zLab = make_idx("s-labels.idx", 0, AESQL_IDX_U8, 1, d1, aLab, 2);
  char *zDb = tmp("reopen.db");
  sqlite3 *db2;

  create_ok(db, "mnist_t", zImg, zLab);
  check_sql_error("DIRECTONLY: not from a view", db,
                  "CREATE VIEW v AS SELECT * FROM mnist_t;"
                  "SELECT * FROM v",
                  "unsafe use of virtual table \"mnist_t\"");
  check_sql_error("DIRECTONLY: not from a trigger", db,
                  "CREATE TABLE log(x);"
                  "CREATE TRIGGER tr AFTER INSERT ON log"
                  " BEGIN INSERT INTO log SELECT class FROM mnist_t; END;"
                  "INSERT INTO log VALUES(1)",
                  "unsafe use of virtual table \"mnist_t\"");
  check_sql_error("read-only", db,
                  "INSERT INTO mnist_t(class, pixels) VALUES(1, x'00')",
                  "table mnist_t may not be modified");

  unlink(zDb);
  db2 = check_open(zDb);
  create_ok(db2, "t", zImg, zLab);
  sqlite3_close(db2);
  db2 = check_open(zDb);
  check_sql("reopened database: the table connects and reads the files",
            db2, "SELECT group_concat(class) FROM t", "3,4");
  check_sql("DROP TABLE", db2,
            "DROP TABLE t; SELECT count(*) FROM sqlite_schema", "0");
  sqlite3_close(db2);

  /* A file gone since the table was made: queries fail with the file's
  ** error, and the table can still be dropped. */
  unlink(zDb);
  db2 = check_open(zDb);
  create_ok(db2, "t", zImg, zLab);
  sqlite3_close(db2);
  { char *zMoved = tmp("moved-labels"); rename(zLab, zMoved);
  db2 = check_open(zDb);
  check_sql_error("file gone: a query names it", db2,
                  "SELECT count(*) FROM t", "idx: cannot open");
  check_sql_error("file gone: still an error the second time", db2,
                  "SELECT class FROM t WHERE rowid = 1", "s-labels.idx");
  check_sql("file gone: the table can be dropped", db2,
            "DROP TABLE t; SELECT count(*) FROM sqlite_schema", "0");
  sqlite3_close(db2);
  rename(zMoved, zLab); sqlite3_free(zMoved); }
  unlink(zDb);
  sqlite3_free(zDb);
  sqlite3_free(zImg);
  sqlite3_free(zLab);
}

/*
** Files read a window at a time: scans in both directions and ranges
** that cross windows see every byte, and a file that shrinks under an
** open table gives an error, not a crash.
*/
#define WIN_ROWS 3000   /* 3000 x 784 bytes: about 9 windows */

static unsigned char win_pixel(int iRow, int j){
  return (unsigned char)((iRow*7 + j*13 + iRow/256) % 251);
}

/* Steps zSql, whose rows are (rowid, pixels), and checks that it gives
** rowids iFirst, iFirst+iStep, ... (n of them), each with its pixels. */
static void check_window_scan(const char *zName, sqlite3 *db,
                              const char *zSql, int iFirst, int iStep, int n){
  sqlite3_stmt *st = 0;
  int nRow = 0, ok = sqlite3_prepare_v2(db, zSql, -1, &st, 0)==SQLITE_OK;
  int rc = SQLITE_DONE;
  while( ok && (rc = sqlite3_step(st))==SQLITE_ROW ){
    int r = sqlite3_column_int(st, 0), j;
    const unsigned char *p = sqlite3_column_blob(st, 1);
    ok = r==iFirst + nRow*iStep && sqlite3_column_bytes(st, 1)==784;
    for(j=0; ok && j<784; j++) ok = p[j]==win_pixel(r-1, j);
    nRow++;
  }
  sqlite3_finalize(st);
  CHECK(zName, ok && rc==SQLITE_DONE && nRow==n);
}

static void test_window(sqlite3 *db){
  uint32_t aDim[3] = {WIN_ROWS, 28, 28};
  unsigned char *a = malloc((size_t)WIN_ROWS*784);
  char *z;
  sqlite3_stmt *st = 0;
  int i, j, rc, nRow = 0;
  if( a==0 ){ fprintf(stderr, "out of memory\n"); exit(2); }
  for(i=0; i<WIN_ROWS; i++){
    for(j=0; j<784; j++) a[(size_t)i*784 + j] = win_pixel(i, j);
  }
  z = make_idx("window.idx", 0, AESQL_IDX_U8, 3, aDim, a, (size_t)WIN_ROWS*784);
  create_ok(db, "win", z, 0);

  check_window_scan("window: full forward scan, every byte", db,
                    "SELECT rowid, pixels FROM win", 1, 1, WIN_ROWS);
  check_window_scan("window: full backward scan, every byte", db,
                    "SELECT rowid, pixels FROM win ORDER BY rowid DESC",
                    WIN_ROWS, -1, WIN_ROWS);
  check_window_scan("window: a range across windows", db,
                    "SELECT rowid, pixels FROM win WHERE rowid BETWEEN 300"
                    " AND 2700", 300, 1, 2401);
  check_window_scan("window: a range across windows, backward", db,
                    "SELECT rowid, pixels FROM win WHERE rowid>=300 AND"
                    " rowid<2700 ORDER BY rowid DESC", 2699, -1, 2400);
  check_window_scan("window: lookups, in no order", db,
                    "SELECT rowid, pixels FROM win WHERE rowid=2999 UNION ALL"
                    " SELECT rowid, pixels FROM win WHERE rowid=2", 2999,
                    -2997, 2);
  check_sql("window: a self-join reads two windows at once", db,
            "SELECT count(*) FROM win a JOIN win b ON b.rowid = 3001 - a.rowid"
            " WHERE substr(a.pixels, 1, 1) = substr(b.pixels, 1, 1)",
            "10");

  /* Shrink the file under a scan in progress, then under new queries. */
  rc = sqlite3_prepare_v2(db, "SELECT rowid, pixels FROM win", -1, &st, 0);
  while( rc==SQLITE_OK && (rc = sqlite3_step(st))==SQLITE_ROW ){
    if( ++nRow==10 && truncate(z, 16 + (off_t)WIN_ROWS*784/2) ){
      fprintf(stderr, "cannot truncate %s\n", z); exit(2);
    }
    rc = SQLITE_OK;
  }
  CHECK("file shrunk during a scan: the rows before it, then an error",
        rc==SQLITE_ERROR && nRow>=10 && nRow<WIN_ROWS/2
        && strstr(sqlite3_errmsg(db), "has changed since the table was"
                                      " opened")!=0);
  sqlite3_finalize(st);
  check_sql_error("file shrunk: a lookup past its end is an error", db,
                  "SELECT pixels FROM win WHERE rowid = 2999",
                  "window.idx' has changed since the table was opened");
  check_sql("file shrunk: rows still in the file read as before", db,
            "SELECT length(pixels), hex(substr(pixels, 1, 2))"
            " FROM win WHERE rowid = 1", "784|000D");
  /* Whole again (rewritten in place): the same open table reads it all. */
  sqlite3_free(z);
  z = make_idx("window.idx", 0, AESQL_IDX_U8, 3, aDim, a, (size_t)WIN_ROWS*784);
  check_window_scan("file whole again: the open table reads every byte", db,
                    "SELECT rowid, pixels FROM win", 1, 1, WIN_ROWS);
  sqlite3_exec(db, "DROP TABLE win", 0, 0, 0);
  free(a);
  sqlite3_free(z);
}

/*
** Mutated files: a valid plain and a valid gzip file of each element type,
** with random bytes changed, cut or appended (a fixed seed, so a failure
** can be replayed). Every CREATE either works, and a full scan then reads
** the declared rows, or fails with an "idx: " error; nothing crashes (the
** sanitizer build runs this too) and a failed CREATE leaves no table.
*/
static uint64_t mut_state = 0x9e3779b97f4a7c15ull;
static uint32_t mut_rand(void){        /* xorshift64* */
  mut_state ^= mut_state>>12; mut_state ^= mut_state<<25;
  mut_state ^= mut_state>>27;
  return (uint32_t)((mut_state*0x2545f4914f6cdd1dull)>>32);
}

static void test_mutations(sqlite3 *db){
  static const int aType[] = { AESQL_IDX_U8, AESQL_IDX_I8, AESQL_IDX_I16,
                               AESQL_IDX_I32, AESQL_IDX_F32, AESQL_IDX_F64 };
  static const int aSz[] = { 1, 1, 2, 4, 4, 8 };
  const int nCase = 400;   /* per type and compression */
  int nOk = 0, nErr = 0, nBad = 0, it, iz, k;
  char *z = tmp("mutant.idx");
  char *zGz = tmp("mutant-src.gz");
  for(it=0; it<6; it++){
    for(iz=0; iz<2; iz++){
      uint32_t aDim[3] = {5, 3, 4};
      unsigned char aData[5*3*4*8];
      unsigned char *aSrc, *aMut;
      size_t nSrc, nMut, j;
      for(j=0; j<sizeof(aData); j++) aData[j] = (unsigned char)(j*37 + it);
      aSrc = idx_bytes(aType[it], 3, aDim, aData, 60*(size_t)aSz[it], &nSrc);
      if( iz ){                          /* the compressed bytes */
        unsigned char *aZ;
        if( write_gz(zGz, aSrc, nSrc, 1) ){ fprintf(stderr, "gz\n"); exit(2); }
        aZ = read_all(zGz, &nSrc);
        free(aSrc);
        aSrc = aZ;
      }
      aMut = malloc(nSrc + 64);
      for(k=0; k<nCase; k++){
        int nEdit = 1 + (int)(mut_rand()%4), e;
        char *zSql;
        int rc;
        memcpy(aMut, aSrc, nSrc);
        nMut = nSrc;
        for(e=0; e<nEdit; e++){
          uint32_t r = mut_rand();
          switch( r%8 ){
            case 0:  nMut = mut_rand()%(nMut+1); break;        /* cut */
            case 1:                                            /* append */
              if( nMut<nSrc+48 ){
                int m = 1 + (int)(mut_rand()%16);
                while( m-- ) aMut[nMut++] = (unsigned char)mut_rand();
              }
              break;
            case 2:                     /* a header byte to an extreme */
              if( nMut ) aMut[mut_rand()%(nMut<16 ? nMut : 16)] =
                           (mut_rand()&1) ? 0xff : 0x00;
              break;
            default:                    /* any byte to anything */
              if( nMut ) aMut[mut_rand()%nMut] = (unsigned char)mut_rand();
          }
        }
        if( check_write_file(z, aMut, nMut) ){ fprintf(stderr, "w\n"); exit(2); }
        sqlite3_exec(db, "DROP TABLE IF EXISTS mutant", 0, 0, 0);
        zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE mutant USING idx(images=%Q)", z);
        rc = sqlite3_exec(db, zSql, 0, 0, 0);
        sqlite3_free(zSql);
        if( rc==SQLITE_OK ){
          sqlite3_stmt *st = 0;
          sqlite3_int64 nRow = -1, nDecl = -1;
          if( sqlite3_prepare_v2(db, "SELECT count(*), sum(length(pixels)),"
                " max(rowid), min(height*width) FROM mutant", -1, &st, 0)==SQLITE_OK
           && sqlite3_step(st)==SQLITE_ROW ){
            nRow = sqlite3_column_int64(st, 0);
            nDecl = sqlite3_column_int64(st, 2);
          }
          sqlite3_finalize(st);
          if( nRow>0 && nRow==nDecl ) nOk++;
          else{ nBad++; printf("# mutant %d/%d/%d: created, scan gave %lld rows\n", it, iz, k, (long long)nRow); }
        }else if( strncmp(sqlite3_errmsg(db), "idx: ", 5)==0 ){
          nErr++;
        }else{
          nBad++;
          printf("# mutant %d/%d/%d: %s\n", it, iz, k, sqlite3_errmsg(db));
        }
      }
      free(aMut);
      free(aSrc);
    }
  }
  sqlite3_exec(db, "DROP TABLE IF EXISTS mutant", 0, 0, 0);
  printf("# %d mutated files: %d read whole, %d refused with an idx error\n",
         nOk + nErr + nBad, nOk, nErr);
  CHECK("mutated files: each is read whole or refused with an idx error",
        nBad==0 && nOk + nErr==6*2*nCase);
  CHECK("mutated files: some are refused, some still valid", nOk>0 && nErr>0);
  check_sql("mutated files: no table left behind", db,
            "SELECT count(*) FROM sqlite_schema WHERE name='mutant'", "0");
  sqlite3_free(z);
  sqlite3_free(zGz);
}

/* Removes the files the tests made, then the directory. */
static void cleanup(void){
  static const char *azFile[] = {
    "u8.idx", "u8-labels.idx", "i8.idx", "i8-labels.idx", "i16.idx",
    "i16-labels.idx", "i32.idx", "i32-labels.idx", "f32.idx",
    "f32-labels.idx", "f64.idx", "f64-labels.idx", "gz-images.idx.gz",
    "gz-labels.idx.gz", "multi.gz", "looks-plain.idx", "looks-gzipped.idx.gz",
    "good.idx", "good-labels.idx", "empty.idx", "short.idx", "short-dims.idx",
    "page.html", "page.idx.gz", "type0a.idx", "ndims0.idx", "n0.idx",
    "c0.idx", "overflow.idx", "huge.idx", "trunc.idx", "long.idx", "long.gz",
    "trunc.gz", "cut.gz", "crc.gz", "deflate.gz", "labels3.idx",
    "labels2d.idx", "four.idx", "liar.gz", "args.idx", "it's.idx", "s.idx",
    "s-labels.idx", "window.idx", "mutant.idx", "mutant-src.gz", "fifo.idx", 0 };
  int i;
  for(i=0; azFile[i]; i++){
    char *z = tmp(azFile[i]);
    unlink(z);
    sqlite3_free(z);
  }
  rmdir(check_tmpdir());
}

int main(void){
  sqlite3 *db = check_open(0);
  test_types(db);
  test_gzip(db);
  test_bad_files(db);
  test_args(db);
  test_schema(db);
  test_window(db);
  test_mutations(db);
  test_mnist(db);
  test_fashion(db);
  sqlite3_close(db);
  cleanup();
  return check_done();
}
