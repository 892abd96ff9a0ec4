/*
** A counterfeit detector, the tutorial's motivating application, as a C
** program that links libaesql statically into an application that already
** uses SQLite.
**
**   detector DATABASE MODEL IMAGES [THRESHOLD]
**
** Scores every image of the IDX file IMAGES (plain or gzip) with MODEL, a
** model that ae_train() stored in DATABASE after learning what normal
** images look like, and flags the images whose reconstruction error is
** above THRESHOLD (default: the mean plus three standard deviations of
** the errors over IMAGES).
** Prints one line per flagged image and a summary; exits 0, or 1 on error.
**
** Build: cc detector.c $(pkg-config --cflags --libs aesql)
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include "aesql.h"

static int fail(sqlite3 *db, const char *zWhat){
  fprintf(stderr, "detector: %s: %s\n", zWhat, db ? sqlite3_errmsg(db) : "");
  sqlite3_close(db);
  return 1;
}

int main(int argc, char **argv){
  sqlite3 *db = 0;
  sqlite3_stmt *st = 0;
  char *zSql;
  double threshold, sum = 0, sum2 = 0;
  long n = 0, nFlag = 0;
  if( argc<4 || argc>5 ){
    fprintf(stderr, "usage: %s DATABASE MODEL IMAGES [THRESHOLD]\n", argv[0]);
    return 2;
  }
  /* Every connection opened from now on has libaesql. */
  sqlite3_auto_extension((void(*)(void))sqlite3_aesql_init);
  if( sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, 0)!=SQLITE_OK ){
    return fail(db, "cannot open the database");
  }
  zSql = sqlite3_mprintf("CREATE VIRTUAL TABLE temp.images USING idx(images=%Q)",
                         argv[3]);
  if( sqlite3_exec(db, zSql, 0, 0, 0)!=SQLITE_OK ){
    sqlite3_free(zSql);
    return fail(db, "cannot read the images");
  }
  sqlite3_free(zSql);
  if( argc==5 ){
    threshold = atof(argv[4]);
  }else{
    /* One batched pass for the statistics of the errors. */
    if( sqlite3_prepare_v2(db, "SELECT error FROM ae_scores(?1, 'images')",
                           -1, &st, 0)!=SQLITE_OK ){
      return fail(db, "cannot score");
    }
    sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
    while( sqlite3_step(st)==SQLITE_ROW ){
      double e = sqlite3_column_double(st, 0);
      sum += e; sum2 += e*e; n++;
    }
    if( sqlite3_finalize(st)!=SQLITE_OK ) return fail(db, "cannot score");
    if( n==0 ) return fail(db, "no images");
    threshold = sum/n + 3*sqrt(fmax(0, sum2/n - (sum/n)*(sum/n)));
    n = 0;
  }
  if( sqlite3_prepare_v2(db, "SELECT key, error FROM ae_scores(?1, 'images')",
                         -1, &st, 0)!=SQLITE_OK ){
    return fail(db, "cannot score");
  }
  sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
  while( sqlite3_step(st)==SQLITE_ROW ){
    double e = sqlite3_column_double(st, 1);
    n++;
    if( e>threshold ){
      nFlag++;
      printf("flagged image %lld: error %.4f\n", sqlite3_column_int64(st, 0), e);
    }
  }
  if( sqlite3_finalize(st)!=SQLITE_OK ) return fail(db, "cannot score");
  printf("%ld of %ld images flagged (threshold %.4f)\n", nFlag, n, threshold);
  sqlite3_close(db);
  return 0;
}
