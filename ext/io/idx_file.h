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
** gzip magic 1f 8b), never the name. gzip files are decompressed, whole
** (every member), into a heap buffer that grows as data arrives, never
** beyond what the header declares plus one byte. Plain files are not
** mapped (a mapped file that another process truncates kills the reader
** with SIGBUS, and a failing disk does the same): they are read with
** pread() into a window that the caller owns, a few hundred kB that move
** along a scan, so a failed or short read is an error and not a crash.
**
** Use: aesql_idx_open() reads and checks the header; the caller may check
** the shape it needs; aesql_idx_load() then decompresses the data or
** checks the file's length. aesql_idx_read() gives bytes of the data.
** aesql_idx_close() frees everything, after success or failure. On
** failure p->zErr says what is wrong, naming the file:
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
#define AESQL_IDX_WINDOW  ((size_t)256<<10)  /* see aesql_idx_read() */

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
  int isLoaded;           /* the data is there and has the right length */
  const unsigned char *aData;  /* gzip: the nData decompressed bytes;
                               ** plain files: NULL (aesql_idx_read) */
  size_t nAlloc;          /* bytes allocated for gzip data */
  /* The last error, malloc'd, or NULL: */
  char *zErr;
  /* Private: */
  char *zPath;            /* copy of the path, for messages */
  int fd;                 /* open file, or -1 */
  void *gz;               /* gzFile reading fd after the header, or NULL */
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

/* A window on the data of a plain file, owned by one reader (an SQL
** cursor, say): zero it before first use, free it with
** aesql_idx_window_free(). */
typedef struct aesql_idx_window aesql_idx_window;
struct aesql_idx_window {
  unsigned char *a;       /* malloc'd, nAlloc bytes */
  size_t nAlloc;
  uint64_t iOff;          /* data offset of a[0] */
  size_t n;               /* bytes of a that hold data */
};
void aesql_idx_window_free(aesql_idx_window *w);

/* Points *pa at bytes [iOff, iOff+n) of the data of a loaded file
** (iOff+n <= nData), valid until the next call with w or until
** aesql_idx_close(). For gzip data, a pointer into the decompressed
** buffer. For a plain file, the bytes are read into w, which then holds
** the min(nAhead, AESQL_IDX_WINDOW) bytes (n at least) that start at iOff,
** or with bBack, that end at iOff+n: a scan passes its direction and the
** bytes its range still holds, a lookup nAhead = n. A read that fails, or
** that finds the file shorter than when it was loaded, is an error. */
int aesql_idx_read(aesql_idx_file *p, aesql_idx_window *w, uint64_t iOff,
                   size_t n, uint64_t nAhead, int bBack,
                   const unsigned char **pa);

/* The element of type p->eType at a (big-endian, as in the file) as a
** number. */
int64_t aesql_idx_get_int(const aesql_idx_file *p, const unsigned char *a);
double aesql_idx_get_double(const aesql_idx_file *p, const unsigned char *a);

/* Writes the item at a (p->nPerItem elements, as in the file) to aOut as
** p->nPerItem little-endian IEEE float32 values (4*nPerItem bytes): exact
** for u8, i8, i16 and integers up to 2^24 in magnitude, rounded to
** nearest for larger i32 and for f64. */
void aesql_idx_item_f32(const aesql_idx_file *p, const unsigned char *a,
                        unsigned char *aOut);

#endif /* AESQL_IDX_FILE_H */
