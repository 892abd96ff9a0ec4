/*
** The IDX file reader; see idx_file.h for the format and the interface.
**
** Memory: a plain file is read a window at a time (AESQL_IDX_WINDOW
** bytes) into the reader's buffer, never whole. A gzip file's header is
** read first, and its data then decompressed into a buffer that starts at
** 1 MiB (or less) and doubles only when data has filled it, up to the
** declared size plus one byte (the extra byte tells a too-long payload).
** So a small gzip file whose header claims gigabytes costs a megabyte and
** fails at its end, and nothing is ever allocated from an unchecked size.
** Sizes are 64-bit with checked multiplication, and at most
** AESQL_IDX_MAXDATA (16 GiB) of data is accepted.
**
** Error messages name the file and say what is wrong; they never quote
** the file's bytes (an HTML page saved under an IDX name should not end
** up in a terminal), only numbers read from its header.
*/
#include "idx_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_GZ_FIRST   ((size_t)1<<20)   /* first size of the gzip buffer */
#define IDX_GZ_CHUNK   ((unsigned)1<<30) /* most bytes per gzread() */

typedef unsigned long long u64;          /* for printf's %llu */

/* Sets p->zErr from a printf-style format; returns AESQL_IDX_ERROR, or
** AESQL_IDX_NOMEM when there is no memory for the message. */
static int idx_error(aesql_idx_file *p, const char *zFmt, ...){
  va_list ap;
  int n;
  free(p->zErr);
  p->zErr = 0;
  va_start(ap, zFmt);
  n = vsnprintf(0, 0, zFmt, ap);
  va_end(ap);
  if( n<0 || (p->zErr = malloc((size_t)n+1))==0 ) return AESQL_IDX_NOMEM;
  va_start(ap, zFmt);
  vsnprintf(p->zErr, (size_t)n+1, zFmt, ap);
  va_end(ap);
  return AESQL_IDX_ERROR;
}

/* "cannot open 'x': no such file or directory" from errno value e. */
static int idx_errno(aesql_idx_file *p, const char *zWhat, int e){
  char zMsg[128];
  snprintf(zMsg, sizeof(zMsg), "%s", strerror(e));
  if( zMsg[0]>='A' && zMsg[0]<='Z' && (zMsg[1]<'A' || zMsg[1]>'Z') ){
    zMsg[0] += 'a' - 'A';
  }
  return idx_error(p, "cannot %s '%s': %s", zWhat, p->zPath, zMsg);
}

/* The error zlib reports on p->gz, if any, as an AESQL_IDX_ code with a
** message; AESQL_IDX_OK if there is none. */
static int idx_gz_error(aesql_idx_file *p){
  int e = Z_OK;
  const char *zMsg = gzerror((gzFile)p->gz, &e);
  const char *z;
  switch( e ){
    case Z_OK:
    case Z_STREAM_END:
      return AESQL_IDX_OK;
    case Z_MEM_ERROR:
      return AESQL_IDX_NOMEM;
    case Z_ERRNO:
      return idx_errno(p, "read", errno);
  }
  /* zlib's message starts with its name for the file, "<fd:3>: ". */
  if( zMsg==0 ) zMsg = "";
  if( zMsg[0]=='<' && (z = strstr(zMsg, ": "))!=0 ) zMsg = z+2;
  if( e==Z_BUF_ERROR ){
    return idx_error(p, "'%s' is a truncated gzip file (%s)", p->zPath,
                     zMsg[0] ? zMsg : "unexpected end of file");
  }
  return idx_error(p, "'%s' is a corrupt gzip file (%s)", p->zPath,
                   zMsg[0] ? zMsg : "bad compressed data");
}

/* Reads up to n bytes at offset iOff of a plain file, or the next n bytes
** of a gzip stream, into a; returns the number read (less than n only at
** the end of the data), or -1 with an error set (*pRc). */
static long idx_read(aesql_idx_file *p, void *a, size_t n, off_t iOff,
                     int *pRc){
  size_t got = 0;
  while( got<n ){
    long r;
    if( p->gz ){
      r = gzread((gzFile)p->gz, (char*)a + got, (unsigned)(n - got));
      if( r<0 ){ *pRc = idx_gz_error(p); return -1; }
    }else{
      r = pread(p->fd, (char*)a + got, n - got, iOff + (off_t)got);
      if( r<0 ){
        if( errno==EINTR ) continue;
        *pRc = idx_errno(p, "read", errno);
        return -1;
      }
    }
    if( r==0 ) break;
    got += (size_t)r;
  }
  if( got<n && p->gz && (*pRc = idx_gz_error(p))!=AESQL_IDX_OK ) return -1;
  return (long)got;
}

int aesql_idx_open(aesql_idx_file *p, const char *zPath){
  unsigned char aHdr[4*AESQL_IDX_MAXDIM];
  struct stat st;
  long n;
  int i, rc = AESQL_IDX_OK;
  const char *zAfter;
  uint64_t nPer = 1, nByte;

  memset(p, 0, sizeof(*p));
  p->fd = -1;
  if( (p->zPath = strdup(zPath))==0 ) return AESQL_IDX_NOMEM;
  /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer, for
  ** ever; it is refused below, as anything but a regular file is. On a
  ** regular file the flag changes nothing. */
  do{
    p->fd = open(zPath, O_RDONLY|O_CLOEXEC|O_NONBLOCK);
  }while( p->fd<0 && errno==EINTR );
  if( p->fd<0 ) return idx_errno(p, "open", errno);
  if( fstat(p->fd, &st) ) return idx_errno(p, "stat", errno);
  if( S_ISDIR(st.st_mode) ){
    return idx_error(p, "'%s' is a directory, not an IDX file", zPath);
  }
  if( !S_ISREG(st.st_mode) ){
    return idx_error(p, "'%s' is not a regular file", zPath);
  }
  if( st.st_size==0 ) return idx_error(p, "'%s' is empty", zPath);

  /* gzip or plain, by the first two bytes. */
  n = idx_read(p, aHdr, 2, 0, &rc);
  if( n<0 ) return rc;
  if( n==2 && aHdr[0]==0x1f && aHdr[1]==0x8b ){
    gzFile gz = gzdopen(p->fd, "rb");
    if( gz==0 ) return AESQL_IDX_NOMEM;
    p->gz = gz;
    p->fd = -1;                 /* gzclose() closes it */
    p->isGzip = 1;
    gzbuffer(gz, 128*1024);
  }
  zAfter = p->isGzip ? " after decompression" : "";

  /* The magic number: 0, 0, type, ndims. */
  n = idx_read(p, aHdr, 4, 0, &rc);
  if( n<0 ) return rc;
  if( n==0 ) return idx_error(p, "'%s' is empty%s", zPath, zAfter);
  if( n<4 ){
    return idx_error(p, "'%s' is too short to be an IDX file "
                        "(%ld bytes%s; the header alone needs at least 4)",
                     zPath, n, zAfter);
  }
  if( aHdr[0]!=0 || aHdr[1]!=0 ){
    return idx_error(p, "'%s' is not an IDX file (bad magic number%s)",
                     zPath, zAfter);
  }
  p->eType = aHdr[2];
  switch( p->eType ){
    case AESQL_IDX_U8:  case AESQL_IDX_I8:  p->szElem = 1; break;
    case AESQL_IDX_I16:                     p->szElem = 2; break;
    case AESQL_IDX_I32: case AESQL_IDX_F32: p->szElem = 4; break;
    case AESQL_IDX_F64:                     p->szElem = 8; break;
    default:
      return idx_error(p, "'%s' has an unknown IDX element type (0x%02x; "
                          "known: 0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, "
                          "0x0d f32, 0x0e f64)", zPath, p->eType);
  }
  p->nDim = aHdr[3];
  if( p->nDim==0 ){
    return idx_error(p, "'%s' declares no dimensions "
                        "(an IDX file needs at least one)", zPath);
  }

  /* The dimensions, big-endian uint32. */
  p->nHdr = 4 + 4*(size_t)p->nDim;
  n = idx_read(p, aHdr, 4*(size_t)p->nDim, 4, &rc);
  if( n<0 ) return rc;
  if( n<4*p->nDim ){
    return idx_error(p, "'%s' is too short: its header declares %d "
                        "dimensions, which need %d bytes, but it has %ld%s",
                     zPath, p->nDim, (int)p->nHdr, 4+n, zAfter);
  }
  for(i=0; i<p->nDim; i++){
    const unsigned char *a = aHdr + 4*i;
    p->aDim[i] = (uint32_t)a[0]<<24 | (uint32_t)a[1]<<16
               | (uint32_t)a[2]<<8 | a[3];
  }
  if( p->aDim[0]==0 ){
    return idx_error(p, "'%s' holds no items (its first dimension is 0)",
                     zPath);
  }
  for(i=1; i<p->nDim; i++){
    if( p->aDim[i]==0 ){
      return idx_error(p, "'%s' has a dimension of size 0 "
                          "(dimension %d of %d)", zPath, i+1, p->nDim);
    }
    if( __builtin_mul_overflow(nPer, (uint64_t)p->aDim[i], &nPer) ) break;
  }
  if( i<p->nDim
   || __builtin_mul_overflow(nPer, (uint64_t)p->aDim[0], &nByte)
   || __builtin_mul_overflow(nByte, (uint64_t)p->szElem, &nByte) ){
    return idx_error(p, "'%s' declares a size too large to count in "
                        "64 bits (its dimensions multiply out of range)",
                     zPath);
  }
  if( nByte>AESQL_IDX_MAXDATA || nByte>(uint64_t)(SIZE_MAX/2) ){
    return idx_error(p, "'%s' declares %llu bytes of data, over the "
                        "limit of %llu (16 GiB)", zPath, (u64)nByte,
                     (u64)AESQL_IDX_MAXDATA);
  }
  p->nItem = p->aDim[0];
  p->nPerItem = nPer;
  p->nData = nByte;
  return AESQL_IDX_OK;
}

/* Checks the length of a plain file whose header was read. The data is
** read later, a window at a time (aesql_idx_read). */
static int idx_load_plain(aesql_idx_file *p){
  struct stat st;
  uint64_t nHave;
  if( fstat(p->fd, &st) ) return idx_errno(p, "stat", errno);
  nHave = (uint64_t)st.st_size > p->nHdr ? (uint64_t)st.st_size - p->nHdr : 0;
  if( nHave<p->nData ){
    return idx_error(p, "'%s' is truncated: its header declares %llu bytes "
                        "of data but the file holds %llu",
                     p->zPath, (u64)p->nData, (u64)nHave);
  }
  if( nHave>p->nData ){
    return idx_error(p, "'%s' is longer than its header declares: %llu "
                        "bytes of data where %llu are expected",
                     p->zPath, (u64)nHave, (u64)p->nData);
  }
  p->isLoaded = 1;
  return AESQL_IDX_OK;
}

/* Decompresses the rest of a gzip file, its data, into p->aHeap. */
static int idx_load_gzip(aesql_idx_file *p){
  const size_t nCap = (size_t)p->nData + 1;   /* +1: sees a long payload */
  size_t nGot = 0;
  int rc;
  p->nAlloc = nCap<IDX_GZ_FIRST ? nCap : IDX_GZ_FIRST;
  if( (p->aHeap = malloc(p->nAlloc))==0 ) return AESQL_IDX_NOMEM;
  for(;;){
    size_t nWant;
    int r;
    if( nGot==p->nAlloc ){
      /* Full: grow only because data has arrived, by doubling. */
      size_t nNew = p->nAlloc < nCap/2 ? p->nAlloc*2 : nCap;
      unsigned char *aNew;
      if( p->nAlloc==nCap ) break;
      if( (aNew = realloc(p->aHeap, nNew))==0 ) return AESQL_IDX_NOMEM;
      p->aHeap = aNew;
      p->nAlloc = nNew;
    }
    nWant = p->nAlloc - nGot;
    if( nWant>IDX_GZ_CHUNK ) nWant = IDX_GZ_CHUNK;
    r = gzread((gzFile)p->gz, p->aHeap + nGot, (unsigned)nWant);
    if( r<0 ) return idx_gz_error(p);
    if( r==0 ) break;
    nGot += (size_t)r;
  }
  if( nGot>p->nData ){
    return idx_error(p, "'%s' is longer than its header declares: more "
                        "than the %llu bytes of data expected",
                     p->zPath, (u64)p->nData);
  }
  if( (rc = idx_gz_error(p))!=AESQL_IDX_OK ) return rc;
  if( nGot<p->nData ){
    return idx_error(p, "'%s' is truncated: its header declares %llu bytes "
                        "of data but it holds %llu after decompression",
                     p->zPath, (u64)p->nData, (u64)nGot);
  }
  gzclose_r((gzFile)p->gz);
  p->gz = 0;
  p->aData = p->aHeap;
  p->isLoaded = 1;
  return AESQL_IDX_OK;
}

int aesql_idx_load(aesql_idx_file *p){
  if( p->isLoaded ) return AESQL_IDX_OK;
  return p->gz ? idx_load_gzip(p) : idx_load_plain(p);
}

void aesql_idx_window_free(aesql_idx_window *w){
  free(w->a);
  memset(w, 0, sizeof(*w));
}

int aesql_idx_read(aesql_idx_file *p, aesql_idx_window *w, uint64_t iOff,
                   size_t n, uint64_t nAhead, int bBack,
                   const unsigned char **pa){
  uint64_t iFrom, m;
  long got;
  int rc = AESQL_IDX_OK;
  *pa = 0;
  if( !p->isLoaded || iOff>p->nData || n>p->nData-iOff ){
    return idx_error(p, "'%s': read of bytes %llu..%llu outside its data",
                     p->zPath, (u64)iOff, (u64)(iOff+n));
  }
  if( p->aData ){                         /* gzip: all in memory */
    *pa = p->aData + iOff;
    return AESQL_IDX_OK;
  }
  if( w->a && iOff>=w->iOff && iOff+n<=w->iOff+w->n ){
    *pa = w->a + (iOff - w->iOff);
    return AESQL_IDX_OK;
  }
  /* m bytes from iFrom: n at least, nAhead up to the window's size, within
  ** the data. */
  m = nAhead<AESQL_IDX_WINDOW ? nAhead : AESQL_IDX_WINDOW;
  if( m<n ) m = n;
  if( bBack ){
    iFrom = iOff+n>m ? iOff+n-m : 0;
  }else{
    iFrom = iOff;
    if( m>p->nData-iOff ) m = p->nData-iOff;
  }
  if( m>w->nAlloc ){
    unsigned char *a = malloc((size_t)m);
    if( a==0 ) return AESQL_IDX_NOMEM;
    free(w->a);
    w->a = a;
    w->nAlloc = (size_t)m;
  }
  w->n = 0;
  got = idx_read(p, w->a, (size_t)m, (off_t)(p->nHdr + iFrom), &rc);
  if( got<0 ) return rc;
  if( (uint64_t)got<m ){
    return idx_error(p, "'%s' has changed since the table was opened: it "
                        "is now shorter than its header declares (recreate "
                        "the table once the file is whole)", p->zPath);
  }
  w->iOff = iFrom;
  w->n = (size_t)m;
  *pa = w->a + (iOff - iFrom);
  return AESQL_IDX_OK;
}

void aesql_idx_close(aesql_idx_file *p){
  if( p->gz ) gzclose_r((gzFile)p->gz);
  if( p->fd>=0 ) close(p->fd);
  free(p->aHeap);
  free(p->zPath);
  free(p->zErr);
  memset(p, 0, sizeof(*p));
  p->fd = -1;
}

const char *aesql_idx_type_name(int eType){
  switch( eType ){
    case AESQL_IDX_U8:  return "u8";
    case AESQL_IDX_I8:  return "i8";
    case AESQL_IDX_I16: return "i16";
    case AESQL_IDX_I32: return "i32";
    case AESQL_IDX_F32: return "f32";
    case AESQL_IDX_F64: return "f64";
  }
  return "?";
}

int aesql_idx_is_float(int eType){
  return eType==AESQL_IDX_F32 || eType==AESQL_IDX_F64;
}

/* Big-endian loads. */
static uint32_t idx_be32(const unsigned char *a){
  return (uint32_t)a[0]<<24 | (uint32_t)a[1]<<16 | (uint32_t)a[2]<<8 | a[3];
}
static uint64_t idx_be64(const unsigned char *a){
  return (uint64_t)idx_be32(a)<<32 | idx_be32(a+4);
}
static float idx_f32(const unsigned char *a){
  uint32_t u = idx_be32(a);
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static double idx_f64(const unsigned char *a){
  uint64_t u = idx_be64(a);
  double d;
  memcpy(&d, &u, 8);
  return d;
}

int64_t aesql_idx_get_int(const aesql_idx_file *p, const unsigned char *a){
  double d;
  switch( p->eType ){
    case AESQL_IDX_U8:  return a[0];
    case AESQL_IDX_I8:  return (int8_t)a[0];
    case AESQL_IDX_I16: return (int16_t)(uint16_t)(a[0]<<8 | a[1]);
    case AESQL_IDX_I32: return (int32_t)idx_be32(a);
  }
  d = aesql_idx_get_double(p, a);       /* truncated, saturated, NaN 0 */
  if( !(d==d) ) return 0;
  if( d<=-9223372036854775808.0 ) return INT64_MIN;
  if( d>=9223372036854775808.0 ) return INT64_MAX;
  return (int64_t)d;
}

double aesql_idx_get_double(const aesql_idx_file *p, const unsigned char *a){
  switch( p->eType ){
    case AESQL_IDX_F32: return idx_f32(a);
    case AESQL_IDX_F64: return idx_f64(a);
  }
  return (double)aesql_idx_get_int(p, a);
}

/* Stores f at o as little-endian IEEE float32, on any host. */
static void idx_put_f32le(unsigned char *o, float f){
  uint32_t u;
  memcpy(&u, &f, 4);
  o[0] = (unsigned char)u;
  o[1] = (unsigned char)(u>>8);
  o[2] = (unsigned char)(u>>16);
  o[3] = (unsigned char)(u>>24);
}

void aesql_idx_item_f32(const aesql_idx_file *p, const unsigned char *a,
                        unsigned char *aOut){
  const uint64_t n = p->nPerItem;
  uint64_t i;
  switch( p->eType ){
    case AESQL_IDX_U8:
      for(i=0; i<n; i++) idx_put_f32le(aOut+4*i, (float)a[i]);
      break;
    case AESQL_IDX_I8:
      for(i=0; i<n; i++) idx_put_f32le(aOut+4*i, (float)(int8_t)a[i]);
      break;
    case AESQL_IDX_I16:
      for(i=0; i<n; i++){
        int16_t v = (int16_t)(uint16_t)(a[2*i]<<8 | a[2*i+1]);
        idx_put_f32le(aOut+4*i, (float)v);
      }
      break;
    case AESQL_IDX_I32:   /* int -> float rounds to nearest, ties even */
      for(i=0; i<n; i++){
        idx_put_f32le(aOut+4*i, (float)(int32_t)idx_be32(a+4*i));
      }
      break;
    case AESQL_IDX_F32:   /* the same bits, byte-swapped; NaNs kept */
      for(i=0; i<n; i++){
        aOut[4*i]   = a[4*i+3];
        aOut[4*i+1] = a[4*i+2];
        aOut[4*i+2] = a[4*i+1];
        aOut[4*i+3] = a[4*i];
      }
      break;
    case AESQL_IDX_F64:   /* rounded to nearest; beyond float's range: inf */
      for(i=0; i<n; i++) idx_put_f32le(aOut+4*i, (float)idx_f64(a+8*i));
      break;
  }
}
