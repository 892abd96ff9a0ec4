/*
** The IDX file reader: the format of LeCun's MNIST files.
**
**   magic   4 bytes: 0, 0, type code, number of dimensions (ndims)
**   dims    ndims big-endian uint32: N, then the shape of one item
**   data    N x dim1 x ... big-endian elements of the type, row-major
**
**   type 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
**
** A file may be plain or gzip-compressed; the content tells which (the
** gzip magic 1f 8b), never the name. Plain files are mapped read-only with
** mmap(); gzip files are decompressed, whole (every member), into a heap
** buffer that grows as data arrives, never beyond what the header declares
** plus one byte.
**
** Use: aesql_idx_open() reads and checks the header; the caller may check
** the shape it needs; aesql_idx_load() then maps or decompresses the data
** and checks its length. aesql_idx_close() frees everything, after success
** or failure. On failure p->zErr says what is wrong, naming the file:
** "'data/x' is not an IDX file (bad magic number)".
**
** This file knows nothing of SQLite: plain C, POSIX and zlib, and memory
** from malloc() (SQLite's allocator refuses blocks over 2 GiB, and a
** decompressed file may be larger).
*/
#ifndef AESQL_IDX_FILE_H
#define AESQL_IDX_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Element type codes, the third byte of the magic number. */
#define AESQL_IDX_U8   0x08
#define AESQL_IDX_I8   0x09
#define AESQL_IDX_I16  0x0B
#define AESQL_IDX_I32  0x0C
#define AESQL_IDX_F32  0x0D
#define AESQL_IDX_F64  0x0E

/* Return codes. */
#define AESQL_IDX_OK     0
#define AESQL_IDX_ERROR  1   /* the file is missing, unreadable or invalid */
#define AESQL_IDX_NOMEM  2   /* out of memory */

#define AESQL_IDX_MAXDIM   255                 /* ndims is one byte */
#define AESQL_IDX_MAXDATA  ((uint64_t)16<<30)  /* 16 GiB of data at most */
#define AESQL_IDX_DROP_STEP ((uint64_t)8<<20)  /* see aesql_idx_drop() */

typedef struct aesql_idx_file aesql_idx_file;
struct aesql_idx_file {
  /* Set by aesql_idx_open(): */
  int eType;              /* AESQL_IDX_U8 ... AESQL_IDX_F64 */
  int szElem;             /* bytes per element: 1, 2, 4 or 8 */
  int isGzip;             /* 1 if the file is gzip-compressed */
  int nDim;               /* number of dimensions, 1..255 */
  uint32_t aDim[AESQL_IDX_MAXDIM];  /* aDim[0] is the number of items */
  uint64_t nItem;         /* aDim[0], at least 1 */
  uint64_t nPerItem;      /* elements per item: aDim[1]*..., 1 if nDim==1 */
  uint64_t nData;         /* bytes of data: nItem*nPerItem*szElem */
  /* Set by aesql_idx_load(): */
  const unsigned char *aData;  /* nData bytes, big-endian as in the file */
  size_t nAlloc;          /* bytes allocated for gzip data, 0 if mapped */
  /* The last error, malloc'd, or NULL: */
  char *zErr;
  /* Private: */
  char *zPath;            /* copy of the path, for messages */
  int fd;                 /* open file, or -1 */
  void *gz;               /* gzFile reading fd after the header, or NULL */
  void *pMap;             /* mmap of the whole plain file, or NULL */
  size_t nMap;            /* bytes mapped */
  size_t nHdr;            /* header bytes before the data */
  unsigned char *aHeap;   /* decompressed data, or NULL */
};

int aesql_idx_open(aesql_idx_file *p, const char *zPath);
int aesql_idx_load(aesql_idx_file *p);
void aesql_idx_close(aesql_idx_file *p);

/* "u8", "i8", "i16", "i32", "f32" or "f64"; "?" for anything else. */
const char *aesql_idx_type_name(int eType);

/* 1 for the float types f32 and f64, 0 for the integer ones. */
int aesql_idx_is_float(int eType);

/* Element iElem (counted from the start of the data) as a number. */
int64_t aesql_idx_get_int(const aesql_idx_file *p, uint64_t iElem);
double aesql_idx_get_double(const aesql_idx_file *p, uint64_t iElem);

/* Writes item iItem to aOut as p->nPerItem little-endian IEEE float32
** values (4*nPerItem bytes): exact for u8, i8, i16 and integers up to
** 2^24 in magnitude, rounded to nearest for larger i32 and for f64. */
void aesql_idx_item_f32(const aesql_idx_file *p, uint64_t iItem,
                        unsigned char *aOut);

/* Tells the kernel that bytes [iFrom, iTo) of the data (a mapped file)
** are no longer needed, so the pages a scan has passed leave the
** process's resident set. The mapping stays valid: a later read of those
** bytes faults the pages in again from the file. Whole pages only; no-op
** for gzip data. Callers do it every AESQL_IDX_DROP_STEP bytes or so. */
void aesql_idx_drop(aesql_idx_file *p, uint64_t iFrom, uint64_t iTo);

#endif /* AESQL_IDX_FILE_H */
