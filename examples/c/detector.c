/*
** A counterfeit detector, the tutorial's motivating application, as a C
** program that links libaesql statically into an application that already
** uses SQLite.
**
**   detector DATABASE MODEL IMAGES [RATE]
**
** Scores every image of the IDX file IMAGES (plain or gzip) with MODEL, a
** model that ae_train() stored in DATABASE after learning what normal
** images look like, and flags the images it finds anomalous at the
** false-alarm rate RATE (default: the model's own, 1% unless trained
** otherwise). The threshold comes from the model's calibration: the
** errors of normal rows it did not fit (its held-out rows, or those given
** to ae_calibrate), never from the images being judged.
** Prints one line per flagged image and a summary; exits 0, or 1 on error.
**
** Build: cc detector.c $(pkg-config --cflags --libs aesql)
*/
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
  const char *zRate = argc==5 ? argv[4] : 0;
  double threshold;
  long n = 0, nFlag = 0;
  if( argc<4 || argc>5 ){
    fprintf(stderr, "usage: %s DATABASE MODEL IMAGES [RATE]\n", argv[0]);
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
  /* The calibrated threshold, at the model's rate or the one given. */
  if( sqlite3_prepare_v2(db, zRate ? "SELECT ae_threshold(?1, ?2)"
                                   : "SELECT ae_threshold(?1)", -1, &st, 0)!=SQLITE_OK ){
    return fail(db, "cannot read the threshold");
  }
  sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
  if( zRate ) sqlite3_bind_double(st, 2, atof(zRate));
  if( sqlite3_step(st)!=SQLITE_ROW ){
    sqlite3_finalize(st);
    return fail(db, "cannot read the threshold");
  }
  threshold = sqlite3_column_double(st, 0);
  sqlite3_finalize(st);
  /* One batched pass: is_anomaly is ae_error > that threshold. */
  if( sqlite3_prepare_v2(db, zRate
        ? "SELECT key, error, is_anomaly FROM ae_scores(?1, 'images', ?2)"
        : "SELECT key, error, is_anomaly FROM ae_scores(?1, 'images')",
        -1, &st, 0)!=SQLITE_OK ){
    return fail(db, "cannot score");
  }
  sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_STATIC);
  if( zRate ) sqlite3_bind_double(st, 2, atof(zRate));
  while( sqlite3_step(st)==SQLITE_ROW ){
    n++;
    if( sqlite3_column_int(st, 2) ){
      nFlag++;
      printf("flagged image %lld: error %.4f\n", sqlite3_column_int64(st, 0),
             sqlite3_column_double(st, 1));
    }
  }
  if( sqlite3_finalize(st)!=SQLITE_OK ) return fail(db, "cannot score");
  printf("%ld of %ld images flagged (threshold %.4f)\n", nFlag, n, threshold);
  sqlite3_close(db);
  return 0;
}
