/*
** libFuzzer target: the IDX reader (ext/idx_file.h), plain and gzip.
**
**   make fuzz                            (builds build/fuzz/fuzz_idx, runs it)
**   build/fuzz/fuzz_idx tests/fuzz/corpus/fuzz_idx      (by hand)
**   build/fuzz/fuzz_idx crash-file                      (replays one input)
**
** The input is a file's content, written to a memfd and opened through
** /proc/self/fd as a path, as the idx table opens its files. Its first
** byte picks how: bit 0 clear, the rest of the input is the file as it is
** (a file starting 1f 8b is gzip: corrupt streams); set, the rest is
** gzip-compressed first, as one member or, with bit 1, two members cut in
** the middle, so that the fuzzer reaches the header and data checks
** behind the decompression without having to write deflate streams.
**
** A file that opens and loads is read as a scan does: every item (the
** first 4096 and the last), forwards with the window of a scan, then
** backwards, then a lookup of single items; each item converted as the
** table's pixels column does (aesql_idx_item_f32) and its first element
** as a label (aesql_idx_get_int, aesql_idx_get_double). What is read must
** match the input's bytes where the input can say (plain files).
*/
#define _GNU_SOURCE     /* memfd_create */
#include "../../ext/io/idx_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

/* The gzip form of a[0..n), one or two members, into a malloc'd buffer. */
static unsigned char *fz_gzip(const unsigned char *a, size_t n, int nMember,
                              size_t *pn){
  size_t nOut = 0, nCap = 2*(compressBound((uLong)n) + 64);
  unsigned char *out = malloc(nCap);
  int k;
  if( !out ) return 0;
  for(k=0; k<nMember; k++){
    size_t i0 = k==0 ? 0 : n/2, i1 = (k==nMember-1) ? n : n/2;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if( deflateInit2(&z, 6, Z_DEFLATED, 16+15, 8, Z_DEFAULT_STRATEGY)!=Z_OK ){
      free(out);
      return 0;
    }
    z.next_in = (Bytef*)(a + i0);
    z.avail_in = (uInt)(i1 - i0);
    z.next_out = out + nOut;
    z.avail_out = (uInt)(nCap - nOut);
    if( deflate(&z, Z_FINISH)!=Z_STREAM_END ){ deflateEnd(&z); free(out); return 0; }
    nOut = nCap - z.avail_out;
    deflateEnd(&z);
  }
  *pn = nOut;
  return out;
}

/* Reads item i (nByte bytes) of f through w and checks it against the
** plain file's bytes when there are any. */
static void fz_item(aesql_idx_file *f, aesql_idx_window *w, uint64_t i,
                    uint64_t nLeft, int bBack, const unsigned char *aFile,
                    unsigned char *aF32){
  const uint64_t nByte = f->nPerItem*(uint64_t)f->szElem;
  const unsigned char *a = 0;
  int rc = aesql_idx_read(f, w, i*nByte, (size_t)nByte, nLeft*nByte, bBack, &a);
  if( rc==AESQL_IDX_NOMEM ) return;
  if( rc!=AESQL_IDX_OK || a==0 ){
    /* a loaded file whose data is all there: every item can be read */
    fprintf(stderr, "read of item %llu failed: %s\n", (unsigned long long)i,
            f->zErr ? f->zErr : "?");
    abort();
  }
  if( aFile && memcmp(a, aFile + f->nHdr + i*nByte, (size_t)nByte)!=0 ){
    fprintf(stderr, "item %llu is not the file's bytes\n", (unsigned long long)i);
    abort();
  }
  if( aF32 ) aesql_idx_item_f32(f, a, aF32);
  (void)aesql_idx_get_int(f, a);
  (void)aesql_idx_get_double(f, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size){
  static char zPath[64];
  static int fd = -1;
  aesql_idx_file f;
  aesql_idx_window w;
  const unsigned char *aFile;
  unsigned char *aGz = 0, *aF32 = 0;
  size_t nFile;
  int rc;

  if( size<1 ) return 0;
  if( fd<0 ){
    fd = memfd_create("fuzz_idx", 0);
    if( fd<0 ){ perror("memfd_create"); abort(); }
    snprintf(zPath, sizeof(zPath), "/proc/self/fd/%d", fd);
  }
  aFile = data + 1;
  nFile = size - 1;
  if( data[0] & 1 ){
    aGz = fz_gzip(aFile, nFile, (data[0] & 2) ? 2 : 1, &nFile);
    if( !aGz ) return 0;
    aFile = aGz;
  }
  if( ftruncate(fd, 0) || pwrite(fd, aFile, nFile, 0)!=(ssize_t)nFile ){
    perror("memfd write");
    abort();
  }

  memset(&w, 0, sizeof(w));
  rc = aesql_idx_open(&f, zPath);
  if( rc==AESQL_IDX_OK ) rc = aesql_idx_load(&f);
  if( rc==AESQL_IDX_ERROR && (f.zErr==0 || f.zErr[0]==0) ){
    fprintf(stderr, "an error without a message\n");
    abort();
  }
  if( rc==AESQL_IDX_OK ){
    const int isGz = f.isGzip;
    const unsigned char *aPlain = isGz ? 0 : aFile;
    uint64_t i, n = f.nItem, nScan = n < 4096 ? n : 4096;
    if( !f.isLoaded || f.nData!=f.nItem*f.nPerItem*(uint64_t)f.szElem ){
      fprintf(stderr, "loaded with inconsistent sizes\n");
      abort();
    }
    if( !isGz && f.nHdr + f.nData!=nFile ){
      fprintf(stderr, "a plain file of %zu bytes loaded with %llu+%llu\n", nFile,
              (unsigned long long)f.nHdr, (unsigned long long)f.nData);
      abort();
    }
    if( f.nPerItem<=(1u<<20) ) aF32 = malloc(4*(size_t)f.nPerItem);
    for(i=0; i<nScan; i++) fz_item(&f, &w, i, n - i, 0, aPlain, aF32);
    fz_item(&f, &w, n-1, 1, 0, aPlain, aF32);
    for(i=nScan; i>0; i--) fz_item(&f, &w, i-1, i, 1, aPlain, aF32);
    for(i=0; i<nScan; i+=7) fz_item(&f, &w, (i*2654435761u) % n, 1, 0, aPlain, aF32);
    (void)aesql_idx_type_name(f.eType);
    (void)aesql_idx_is_float(f.eType);
  }
  aesql_idx_window_free(&w);
  aesql_idx_close(&f);
  free(aF32);
  free(aGz);
  return 0;
}
