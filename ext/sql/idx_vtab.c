/*
** idx: an IDX file (the format of MNIST) as a read-only SQL table.
**
**   .load ./libaesql
**   CREATE VIRTUAL TABLE mnist_train USING idx(
**     images='data/mnist/train-images-idx3-ubyte',
**     labels='data/mnist/train-labels-idx1-ubyte');
**   SELECT rowid, class, length(pixels) FROM mnist_train LIMIT 3;
**   CREATE TABLE train AS SELECT class, pixels FROM mnist_train;
**
** Arguments, key=value, the value bare or quoted ('...' with '' for a
** quote, or "..."):
**   images   IDX file of N items, N x F or N x R x C (required)
**   labels   IDX file of N labels, one dimension (optional)
** Each file may be plain or gzip-compressed, told apart by its content,
** never its name. Relative paths are relative to the process's current
** directory.
**
** Columns:
**   rowid    1..N, the item's position in the file
**   class    the label: INTEGER for an integer labels file, REAL for f32
**            or f64 labels; NULL when no labels file is given
**   pixels   BLOB, the item, encoded as below
**   height   HIDDEN: R for an N x R x C file, 1 for an N x F file
**   width    HIDDEN: C for an N x R x C file, F for an N x F file
**   dtype    HIDDEN: the images' element type in the file, one of
**            'u8' 'i8' 'i16' 'i32' 'f32' 'f64'
**
** The pixels encoding (a project decision): for type 0x08, unsigned
** bytes (MNIST), the file's bytes as they are, one byte per pixel,
** row-major. For every other type, little-endian IEEE float32, one per
** element, row-major, the value converted: exact for i8, i16 and integers
** up to 2^24 in magnitude, rounded to nearest for larger i32 and for f64
** (f64 beyond float's range becomes +-inf). Rows are converted one at a
** time as they are read, never the whole file up front.
**
** The files are read when the table is connected: by CREATE VIRTUAL TABLE
** (an invalid file fails it, and nothing is created) and again whenever a
** database holding the table is opened and the table first used. Plain
** files are read as they are scanned, a window of a few hundred kB per
** cursor (a lookup by rowid reads its one row); gzip files are
** decompressed into memory when the table is connected; see idx_file.h.
** A plain file that shrinks while the table is open makes its queries
** fail with an error, never crash. The table is read-only.
*/
#include "aesql_int.h"
#include "../io/idx_file.h"

#include <string.h>

/* The declared schema; the column numbers below follow it. */
#define IDX_SCHEMA "CREATE TABLE x(class %s, pixels BLOB, " \
  "height INTEGER HIDDEN, width INTEGER HIDDEN, dtype TEXT HIDDEN)"
#define IDX_COL_CLASS   0
#define IDX_COL_PIXELS  1
#define IDX_COL_HEIGHT  2
#define IDX_COL_WIDTH   3
#define IDX_COL_DTYPE   4

/* Bits of idxNum; see idxBestIndex(). */
#define IDX_EQ    0x01
#define IDX_GT    0x02
#define IDX_GE    0x04
#define IDX_LT    0x08
#define IDX_LE    0x10
#define IDX_DESC  0x20

typedef struct IdxTable IdxTable;
struct IdxTable {
  sqlite3_vtab base;
  aesql_idx_file img;     /* the images */
  aesql_idx_file lab;     /* the labels, if hasLabels */
  int hasLabels;
  int nPixelByte;         /* bytes of one pixels value */
  uint64_t nItemByte;     /* bytes of one item in the file */
  char *zBroken;          /* why the files could not be read on reconnect */
};

typedef struct IdxCursor IdxCursor;
struct IdxCursor {
  sqlite3_vtab_cursor base;
  sqlite3_int64 iRow;     /* current row, 0-based */
  sqlite3_int64 iFirst;   /* first row of the range, 0-based */
  sqlite3_int64 iLast;    /* last row of the range, inclusive */
  int isDesc;             /* scanning from iLast down to iFirst */
  aesql_idx_window wImg;  /* the images file's bytes being scanned */
  aesql_idx_window wLab;  /* the labels file's */
  unsigned char *aBuf;    /* a converted (float32) row, or NULL */
};

/*
** Arguments.
*/
static int idxIsSpace(char c){
  return c==' ' || c=='\t' || c=='\n' || c=='\r' || c=='\f' || c=='\v';
}

/* The value of one argument, z (after '=', trimmed, n bytes): dequoted
** into a new string. '...' with '' inside and "..." with "" inside are
** unquoted; anything else is taken as it is. NULL if out of memory;
** *pBad set if a quote is not closed at the end. */
static char *idxDequote(const char *z, int n, int *pBad){
  char *zOut = sqlite3_malloc64((sqlite3_uint64)n + 1);
  char q = n>0 ? z[0] : 0;
  int i, j = 0;
  *pBad = 0;
  if( zOut==0 ) return 0;
  if( q!='\'' && q!='"' ){
    memcpy(zOut, z, (size_t)n);
    zOut[n] = 0;
    return zOut;
  }
  for(i=1; i<n; i++){
    if( z[i]==q ){
      if( i+1<n && z[i+1]==q ){ zOut[j++] = q; i++; continue; }
      break;
    }
    zOut[j++] = z[i];
  }
  zOut[j] = 0;
  if( i!=n-1 ) *pBad = 1;   /* no closing quote, or text after it */
  return zOut;
}

/* Parses the module arguments into azVal[0] (images) and azVal[1]
** (labels), sqlite3_malloc'd. */
static int idxParseArgs(int nArg, const char *const *azArg, char **azVal,
                        char **pzErr){
  static const char *const azKey[] = { "images", "labels" };
  int i, k;
  for(i=0; i<nArg; i++){
    const char *z = azArg[i];
    const char *zEq = strchr(z, '=');
    int nKey, nVal, bad;
    while( idxIsSpace(*z) ) z++;
    if( zEq==0 ){
      *pzErr = sqlite3_mprintf("idx: argument '%s' is missing '=' "
                "(write key=value, e.g. images='train-images-idx3-ubyte')", z);
      return SQLITE_ERROR;
    }
    nKey = (int)(zEq - z);
    while( nKey>0 && idxIsSpace(z[nKey-1]) ) nKey--;
    for(k=0; k<2; k++){
      if( (int)strlen(azKey[k])==nKey
       && sqlite3_strnicmp(z, azKey[k], nKey)==0 ) break;
    }
    if( k==2 ){
      *pzErr = sqlite3_mprintf("idx: unknown argument '%.*s' "
                               "(known: images, labels)", nKey, z);
      return SQLITE_ERROR;
    }
    if( azVal[k] ){
      *pzErr = sqlite3_mprintf("idx: argument '%s' given twice", azKey[k]);
      return SQLITE_ERROR;
    }
    z = zEq + 1;
    while( idxIsSpace(*z) ) z++;
    nVal = (int)strlen(z);
    while( nVal>0 && idxIsSpace(z[nVal-1]) ) nVal--;
    azVal[k] = idxDequote(z, nVal, &bad);
    if( azVal[k]==0 ) return SQLITE_NOMEM;
    if( bad ){
      *pzErr = sqlite3_mprintf("idx: argument '%s' has a badly quoted "
                               "value (close the quote, double any quote "
                               "inside)", azKey[k]);
      return SQLITE_ERROR;
    }
    if( azVal[k][0]==0 ){
      *pzErr = sqlite3_mprintf("idx: argument '%s' is empty "
                               "(give the path of an IDX file)", azKey[k]);
      return SQLITE_ERROR;
    }
  }
  if( azVal[0]==0 ){
    *pzErr = sqlite3_mprintf("idx: missing argument 'images' "
                             "(the IDX file to read: images='path')");
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

/*
** Connecting: read the files.
*/

/* An error of the IDX reader as an SQLite error code and message. */
static int idxFileError(aesql_idx_file *f, int rc, const char *zPath,
                        char **pzErr){
  if( rc==AESQL_IDX_NOMEM ){
    *pzErr = sqlite3_mprintf("idx: out of memory reading '%s'", zPath);
    return SQLITE_NOMEM;
  }
  *pzErr = sqlite3_mprintf("idx: %s", f->zErr ? f->zErr : "cannot read file");
  return SQLITE_ERROR;
}

static int idxDisconnect(sqlite3_vtab *pVtab){
  IdxTable *pTab = (IdxTable*)pVtab;
  aesql_idx_close(&pTab->img);
  aesql_idx_close(&pTab->lab);
  sqlite3_free(pTab->zBroken);
  sqlite3_free(pTab);
  return SQLITE_OK;
}

/* Opens, checks and loads the files named in azVal into pTab. */
static int idxOpenFiles(sqlite3 *db, IdxTable *pTab, char **azVal,
                        char **pzErr){
  aesql_idx_file *pImg = &pTab->img, *pLab = &pTab->lab;
  sqlite3_int64 nMax = sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1);
  uint64_t nPixel;
  int rc;

  /* Headers first, so that a wrong shape fails before any data is read. */
  rc = aesql_idx_open(pImg, azVal[0]);
  if( rc ) return idxFileError(pImg, rc, azVal[0], pzErr);
  if( pImg->nDim!=2 && pImg->nDim!=3 ){
    *pzErr = sqlite3_mprintf("idx: images file '%s' has %d dimension%s; "
                  "it needs 2 (N x F) or 3 (N x R x C)", azVal[0],
                  pImg->nDim, pImg->nDim==1 ? "" : "s");
    return SQLITE_ERROR;
  }
  if( azVal[1] ){
    pTab->hasLabels = 1;
    rc = aesql_idx_open(pLab, azVal[1]);
    if( rc ) return idxFileError(pLab, rc, azVal[1], pzErr);
    if( pLab->nDim!=1 ){
      *pzErr = sqlite3_mprintf("idx: labels file '%s' has %d dimensions; "
                    "it needs exactly 1 (one label per image)", azVal[1],
                    pLab->nDim);
      return SQLITE_ERROR;
    }
    if( pLab->nItem!=pImg->nItem ){
      *pzErr = sqlite3_mprintf("idx: labels file '%s' holds %llu labels "
                    "but images file '%s' holds %llu images", azVal[1],
                    (unsigned long long)pLab->nItem, azVal[0],
                    (unsigned long long)pImg->nItem);
      return SQLITE_ERROR;
    }
  }
  pTab->nItemByte = pImg->nPerItem * (uint64_t)pImg->szElem;
  nPixel = pImg->eType==AESQL_IDX_U8 ? pImg->nPerItem : 4*pImg->nPerItem;
  if( nPixel>(uint64_t)nMax ){
    *pzErr = sqlite3_mprintf("idx: each row of '%s' would be a %llu-byte "
                  "BLOB, over SQLite's length limit of %lld", azVal[0],
                  (unsigned long long)nPixel, nMax);
    return SQLITE_ERROR;
  }
  pTab->nPixelByte = (int)nPixel;

  /* Then the data. */
  rc = aesql_idx_load(pImg);
  if( rc ) return idxFileError(pImg, rc, azVal[0], pzErr);
  if( pTab->hasLabels ){
    rc = aesql_idx_load(pLab);
    if( rc ) return idxFileError(pLab, rc, azVal[1], pzErr);
  }
  return SQLITE_OK;
}

/* xConnect, and xCreate too (isCreate): the table has no storage of its
** own. CREATE VIRTUAL TABLE fails on a bad file and creates nothing. When
** a database that holds the table is opened again and a file has since
** gone or gone bad, the connection succeeds in a broken state, in which
** every query of the table fails with the file's error: so that the
** table can still be dropped, which SQLite does through a connection. */
static int idxInit(sqlite3 *db, int isCreate, int argc,
                   const char *const *argv, sqlite3_vtab **ppVtab,
                   char **pzErr){
  char *azVal[2] = { 0, 0 };    /* images, labels */
  IdxTable *pTab = 0;
  int rc;

  *ppVtab = 0;
  rc = idxParseArgs(argc-3, argv+3, azVal, pzErr);
  if( rc==SQLITE_ERROR && *pzErr==0 ) rc = SQLITE_NOMEM;  /* no message */
  if( rc==SQLITE_OK ){
    pTab = sqlite3_malloc64(sizeof(*pTab));
    if( pTab==0 ){
      rc = SQLITE_NOMEM;
    }else{
      memset(pTab, 0, sizeof(*pTab));
      pTab->img.fd = pTab->lab.fd = -1;
      rc = idxOpenFiles(db, pTab, azVal, pzErr);
      /* An error without its message: out of memory for the message. It
      ** must not pass for a broken table without a reason (zBroken NULL
      ** would be a table that is simply empty). */
      if( rc==SQLITE_ERROR && *pzErr==0 ) rc = SQLITE_NOMEM;
      if( rc==SQLITE_ERROR && !isCreate ){
        aesql_idx_close(&pTab->img);
        aesql_idx_close(&pTab->lab);
        memset(&pTab->img, 0, sizeof(pTab->img));
        memset(&pTab->lab, 0, sizeof(pTab->lab));
        pTab->img.fd = pTab->lab.fd = -1;
        pTab->hasLabels = 0;
        pTab->zBroken = *pzErr;
        *pzErr = 0;
        rc = SQLITE_OK;
      }
    }
  }
  if( rc==SQLITE_OK ){
    const int isFloat = pTab->hasLabels && aesql_idx_is_float(pTab->lab.eType);
    char *zSchema = sqlite3_mprintf(IDX_SCHEMA, isFloat ? "REAL" : "INTEGER");
    rc = zSchema ? sqlite3_declare_vtab(db, zSchema) : SQLITE_NOMEM;
    sqlite3_free(zSchema);
  }
  if( rc==SQLITE_OK ){
    /* The table reads any file the process can read, named by whoever
    ** wrote the CREATE VIRTUAL TABLE. A database file from someone else
    ** could hold such a table, and a view or trigger using it would then
    ** read files (into tables the attacker later sees) as soon as the
    ** victim touches the view. DIRECTONLY allows the table in top-level
    ** SQL only, never from a view, trigger or schema expression. */
    rc = sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  }
  sqlite3_free(azVal[0]);
  sqlite3_free(azVal[1]);
  if( rc!=SQLITE_OK ){
    if( pTab ) idxDisconnect(&pTab->base);
    return rc;
  }
  *ppVtab = &pTab->base;
  return SQLITE_OK;
}

/* Separate functions (xCreate==xConnect would also make idx an eponymous
** table, "SELECT * FROM idx", which has no file to read). */
static int idxCreate(sqlite3 *db, void *pAux, int argc,
                     const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr){
  (void)pAux;
  return idxInit(db, 1, argc, argv, ppVtab, pzErr);
}
static int idxConnect(sqlite3 *db, void *pAux, int argc,
                      const char *const *argv, sqlite3_vtab **ppVtab,
                      char **pzErr){
  (void)pAux;
  return idxInit(db, 0, argc, argv, ppVtab, pzErr);
}

/*
** Planning.
**
** Only rowid constraints are used (pixels and class are not indexed):
**   IDX_EQ            rowid = ?; also rowid IN (...), for which SQLite
**                     calls xFilter once per value
**   IDX_GT or IDX_GE  a lower bound
**   IDX_LT or IDX_LE  an upper bound
**   IDX_DESC          rows in descending rowid order
** xFilter's argv holds the values in that order (those present). idxStr
** spells the plan for EXPLAIN QUERY PLAN, e.g. "rowid=?". Constraints are
** not omitted: SQLite checks them again, which costs little and leaves
** the comparison rules (affinity, text vs numbers) to SQLite.
** Rows come out in rowid order, so ORDER BY rowid [DESC] is consumed.
*/
static int idxBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo){
  IdxTable *pTab = (IdxTable*)pVtab;
  int iEq = -1, iLo = -1, iHi = -1;
  int i, n = 0, idxNum = 0;
  double nRow = (double)pTab->img.nItem;
  const char *zLo = "", *zHi = "";

  for(i=0; i<pInfo->nConstraint; i++){
    const struct sqlite3_index_constraint *pC = &pInfo->aConstraint[i];
    if( !pC->usable || pC->iColumn>=0 ) continue;
    switch( pC->op ){
      case SQLITE_INDEX_CONSTRAINT_EQ: if( iEq<0 ) iEq = i; break;
      case SQLITE_INDEX_CONSTRAINT_GT:
      case SQLITE_INDEX_CONSTRAINT_GE: if( iLo<0 ) iLo = i; break;
      case SQLITE_INDEX_CONSTRAINT_LT:
      case SQLITE_INDEX_CONSTRAINT_LE: if( iHi<0 ) iHi = i; break;
    }
  }
  if( iEq>=0 ){
    /* One row at most: the bounds would add nothing. */
    pInfo->aConstraintUsage[iEq].argvIndex = ++n;
    idxNum |= IDX_EQ;
    pInfo->estimatedCost = 1.0;
    pInfo->estimatedRows = 1;
    pInfo->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    pInfo->idxStr = "rowid=?";
  }else{
    if( iLo>=0 ){
      const int isGt = pInfo->aConstraint[iLo].op==SQLITE_INDEX_CONSTRAINT_GT;
      pInfo->aConstraintUsage[iLo].argvIndex = ++n;
      idxNum |= isGt ? IDX_GT : IDX_GE;
      zLo = isGt ? "rowid>?" : "rowid>=?";
      nRow /= 4;
    }
    if( iHi>=0 ){
      const int isLt = pInfo->aConstraint[iHi].op==SQLITE_INDEX_CONSTRAINT_LT;
      pInfo->aConstraintUsage[iHi].argvIndex = ++n;
      idxNum |= isLt ? IDX_LT : IDX_LE;
      zHi = isLt ? "rowid<?" : "rowid<=?";
      nRow /= 4;
    }
    if( pInfo->nOrderBy==1 && pInfo->aOrderBy[0].iColumn<0 ){
      pInfo->orderByConsumed = 1;
      if( pInfo->aOrderBy[0].desc ) idxNum |= IDX_DESC;
    }
    if( n || (idxNum & IDX_DESC) ){
      const char *zDesc = !(idxNum & IDX_DESC) ? "" : n ? " DESC" : "DESC";
      pInfo->idxStr = sqlite3_mprintf("%s%s%s%s", zLo, n==2 ? " AND " : "",
                                      zHi, zDesc);
      if( pInfo->idxStr==0 ) return SQLITE_NOMEM;
      pInfo->needToFreeIdxStr = 1;
    }
    if( nRow<1 ) nRow = 1;
    pInfo->estimatedCost = nRow;
    pInfo->estimatedRows = (sqlite3_int64)nRow;
  }
  pInfo->idxNum = idxNum;
  return SQLITE_OK;
}

/*
** Scanning.
*/
static int idxOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur){
  IdxTable *pTab = (IdxTable*)pVtab;
  IdxCursor *pCur;
  if( pTab->zBroken ){
    sqlite3_free(pVtab->zErrMsg);
    pVtab->zErrMsg = sqlite3_mprintf("%s", pTab->zBroken);
    return pVtab->zErrMsg ? SQLITE_ERROR : SQLITE_NOMEM;
  }
  pCur = sqlite3_malloc64(sizeof(*pCur));
  if( pCur==0 ) return SQLITE_NOMEM;
  memset(pCur, 0, sizeof(*pCur));
  *ppCur = &pCur->base;
  return SQLITE_OK;
}

static int idxClose(sqlite3_vtab_cursor *cur){
  IdxCursor *pCur = (IdxCursor*)cur;
  aesql_idx_window_free(&pCur->wImg);
  aesql_idx_window_free(&pCur->wLab);
  sqlite3_free(pCur->aBuf);
  sqlite3_free(pCur);
  return SQLITE_OK;
}

/* Narrows the rowid range [*pLo, *pHi] (1-based; empty when *pLo>*pHi) by
** "rowid OP pVal", OP an IDX_ bit. The result may be wider than exact
** (SQLite checks the constraint again), never narrower. */
static void idxNarrow(sqlite3_value *pVal, int op,
                      sqlite3_int64 *pLo, sqlite3_int64 *pHi){
  const sqlite3_int64 BIG = (sqlite3_int64)1<<40;   /* > any row count */
  sqlite3_int64 lo, hi;   /* rowid >= lo and rowid <= hi */
  switch( sqlite3_value_numeric_type(pVal) ){
    case SQLITE_INTEGER: {
      sqlite3_int64 x = sqlite3_value_int64(pVal);
      if( x<-1 ) x = -1;
      if( x>BIG ) x = BIG;
      lo = op==IDX_GT ? x+1 : x;
      hi = op==IDX_LT ? x-1 : x;
      break;
    }
    case SQLITE_FLOAT: {
      double d = sqlite3_value_double(pVal);
      double fl, ce;
      if( d!=d ){ *pLo = 1; *pHi = 0; return; }
      if( d<-2.0 ) d = -2.0;
      if( d>(double)BIG ) d = (double)BIG;
      fl = (double)(sqlite3_int64)d;       /* truncation... */
      if( fl>d ) fl -= 1.0;                /* ...made floor() */
      ce = fl<d ? fl+1.0 : fl;             /* and ceil() */
      if( op==IDX_EQ && fl!=d ){ *pLo = 1; *pHi = 0; return; }
      lo = op==IDX_GT ? (sqlite3_int64)fl+1 : (sqlite3_int64)ce;
      hi = op==IDX_LT ? (sqlite3_int64)ce-1 : (sqlite3_int64)fl;
      break;
    }
    case SQLITE_NULL:       /* a comparison with NULL is never true */
      *pLo = 1; *pHi = 0;
      return;
    default:                /* TEXT or BLOB: greater than any number */
      if( op==IDX_EQ || op==IDX_GT || op==IDX_GE ){ *pLo = 1; *pHi = 0; }
      return;
  }
  if( (op==IDX_EQ || op==IDX_GT || op==IDX_GE) && lo>*pLo ) *pLo = lo;
  if( (op==IDX_EQ || op==IDX_LT || op==IDX_LE) && hi<*pHi ) *pHi = hi;
}

static int idxFilter(sqlite3_vtab_cursor *cur, int idxNum,
                     const char *idxStr, int argc, sqlite3_value **argv){
  IdxCursor *pCur = (IdxCursor*)cur;
  IdxTable *pTab = (IdxTable*)cur->pVtab;
  sqlite3_int64 lo = 1, hi = (sqlite3_int64)pTab->img.nItem;
  int i = 0;
  (void)idxStr;
  if( (idxNum & IDX_EQ) && i<argc ) idxNarrow(argv[i++], IDX_EQ, &lo, &hi);
  if( (idxNum & IDX_GT) && i<argc ) idxNarrow(argv[i++], IDX_GT, &lo, &hi);
  if( (idxNum & IDX_GE) && i<argc ) idxNarrow(argv[i++], IDX_GE, &lo, &hi);
  if( (idxNum & IDX_LT) && i<argc ) idxNarrow(argv[i++], IDX_LT, &lo, &hi);
  if( (idxNum & IDX_LE) && i<argc ) idxNarrow(argv[i++], IDX_LE, &lo, &hi);
  pCur->iFirst = lo - 1;
  pCur->iLast = hi - 1;
  pCur->isDesc = (idxNum & IDX_DESC)!=0;
  pCur->iRow = pCur->isDesc ? pCur->iLast : pCur->iFirst;
  return SQLITE_OK;
}

static int idxNext(sqlite3_vtab_cursor *cur){
  IdxCursor *pCur = (IdxCursor*)cur;
  if( pCur->isDesc ){
    pCur->iRow--;
  }else{
    pCur->iRow++;
  }
  return SQLITE_OK;
}

static int idxEof(sqlite3_vtab_cursor *cur){
  IdxCursor *pCur = (IdxCursor*)cur;
  return pCur->iRow<pCur->iFirst || pCur->iRow>pCur->iLast;
}

/* Points *pa at element or item iRow of f, nByte bytes, through the
** cursor's window w on that file; on failure sets the error of ctx. */
static int idxRead(IdxCursor *pCur, sqlite3_context *ctx, aesql_idx_file *f,
                   aesql_idx_window *w, uint64_t nByte,
                   const unsigned char **pa){
  const uint64_t iRow = (uint64_t)pCur->iRow;
  /* rows of the range still to come, this one included */
  const uint64_t nLeft = pCur->isDesc ? iRow - (uint64_t)pCur->iFirst + 1
                                      : (uint64_t)pCur->iLast - iRow + 1;
  int rc = aesql_idx_read(f, w, iRow*nByte, (size_t)nByte, nLeft*nByte,
                          pCur->isDesc, pa);
  if( rc==AESQL_IDX_NOMEM ){
    sqlite3_result_error_nomem(ctx);
    return SQLITE_NOMEM;
  }
  if( rc ){
    char *z = sqlite3_mprintf("idx: %s", f->zErr ? f->zErr : "read failed");
    if( z==0 ){
      sqlite3_result_error_nomem(ctx);
      return SQLITE_NOMEM;
    }
    sqlite3_result_error(ctx, z, -1);
    sqlite3_free(z);
    return SQLITE_ERROR;
  }
  return SQLITE_OK;
}

static int idxColumn(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i){
  IdxCursor *pCur = (IdxCursor*)cur;
  IdxTable *pTab = (IdxTable*)cur->pVtab;
  aesql_idx_file *pImg = &pTab->img;
  const unsigned char *a;
  int rc;
  switch( i ){
    case IDX_COL_CLASS: {
      aesql_idx_file *pLab = &pTab->lab;
      if( !pTab->hasLabels ) break;       /* NULL */
      rc = idxRead(pCur, ctx, pLab, &pCur->wLab, (uint64_t)pLab->szElem, &a);
      if( rc ) return rc;
      if( aesql_idx_is_float(pLab->eType) ){
        sqlite3_result_double(ctx, aesql_idx_get_double(pLab, a));
      }else{
        sqlite3_result_int64(ctx, aesql_idx_get_int(pLab, a));
      }
      break;
    }
    case IDX_COL_PIXELS:
      rc = idxRead(pCur, ctx, pImg, &pCur->wImg, pTab->nItemByte, &a);
      if( rc ) return rc;
      if( pImg->eType==AESQL_IDX_U8 ){
        /* TRANSIENT: the window moves on as the scan goes (SQLite copies
        ** the bytes into the result register, reusing its memory). */
        sqlite3_result_blob(ctx, a, pTab->nPixelByte, SQLITE_TRANSIENT);
      }else{
        if( pCur->aBuf==0 ){
          pCur->aBuf = sqlite3_malloc64((sqlite3_uint64)pTab->nPixelByte);
          if( pCur->aBuf==0 ) return SQLITE_NOMEM;
        }
        aesql_idx_item_f32(pImg, a, pCur->aBuf);
        /* TRANSIENT: aBuf is rewritten at the next row. */
        sqlite3_result_blob(ctx, pCur->aBuf, pTab->nPixelByte,
                            SQLITE_TRANSIENT);
      }
      break;
    case IDX_COL_HEIGHT:
      sqlite3_result_int64(ctx, pImg->nDim==3 ? pImg->aDim[1] : 1);
      break;
    case IDX_COL_WIDTH:
      sqlite3_result_int64(ctx, pImg->aDim[pImg->nDim-1]);
      break;
    case IDX_COL_DTYPE:
      sqlite3_result_text(ctx, aesql_idx_type_name(pImg->eType), -1,
                          SQLITE_STATIC);
      break;
  }
  return SQLITE_OK;
}

static int idxRowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *pRowid){
  *pRowid = ((IdxCursor*)cur)->iRow + 1;
  return SQLITE_OK;
}

/* Designated initializers: the fields left out (xUpdate, transactions,
** xShadowName, and xIntegrity from SQLite 3.44 on) are zero, whichever
** sqlite3ext.h the file is built with. */
static sqlite3_module idxModule = {
  .iVersion    = 0,
  .xCreate     = idxCreate,
  .xConnect    = idxConnect,
  .xBestIndex  = idxBestIndex,
  .xDisconnect = idxDisconnect,
  .xDestroy    = idxDisconnect,  /* nothing to destroy but the connection */
  .xOpen       = idxOpen,
  .xClose      = idxClose,
  .xFilter     = idxFilter,
  .xNext       = idxNext,
  .xEof        = idxEof,
  .xColumn     = idxColumn,
  .xRowid      = idxRowid,
  /* read-only: no xUpdate */
};

int aesql_idx_register(sqlite3 *db){
  return sqlite3_create_module_v2(db, "idx", &idxModule, 0, 0);
}
