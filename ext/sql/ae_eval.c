/*
** Evaluating a detector in SQL: aggregates over (score, is_positive) pairs,
** usable with GROUP BY and as window functions.
**
**   .load ./libaesql
**   SELECT class, ae_auroc(error, class <> 1) FROM scored GROUP BY class;
**   SELECT ae_average_precision(error, is_fake) FROM notes;
**   SELECT value FROM json_each((SELECT ae_roc_curve(error, is_fake) FROM notes));
**
**   ae_auroc(score, is_positive)             -> REAL in [0, 1]
**       the area under the ROC curve: the probability that a positive row
**       scores above a negative one, ties counted one half (the
**       Mann-Whitney U statistic over n+ n-), computed exactly from the
**       ranks (averaged over ties);
**   ae_average_precision(score, is_positive) -> REAL in [0, 1]
**       the sum over distinct scores t, from the highest, of
**       (recall(t) - recall(previous t)) * precision(t), where a row is
**       flagged when its score >= t (scikit-learn's average_precision_score);
**   ae_roc_curve(score, is_positive)         -> JSON array
**       one object per distinct score t, from the highest: {"threshold": t,
**       "tp", "fp" (rows flagged at score >= t), "tpr" (recall), "fpr",
**       "precision"}; to choose a threshold by false-alarm rate or recall.
**
** Higher scores mean more anomalous (ae_error's sense). is_positive is 1
** (true, an anomaly) or 0; a row whose score or is_positive is NULL is
** skipped, as SQL's aggregates skip NULLs; any other is_positive, or a
** score that is not a finite number, is an error. With no positive or no
** negative row the measures are undefined: NULL (ae_roc_curve: []).
**
** As window functions they recompute from the frame's rows only when the
** frame has changed (a frame over the whole partition is sorted once).
*/
#include "aesql_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_pair { double score; int pos; } eval_pair;

typedef struct eval_state {
  eval_pair *a;         /* the frame's rows, oldest first, from a[i0] */
  sqlite3_int64 i0, n, nAlloc;
  eval_pair *sorted;    /* a copy, by score descending, when !dirty   */
  sqlite3_int64 nSorted;
  int dirty;
} eval_state;

static int pair_desc(const void *x, const void *y){
  double a = ((const eval_pair*)x)->score, b = ((const eval_pair*)y)->score;
  return a<b ? 1 : a>b ? -1 : 0;
}

/* "name: what", the name being the function's user data. */
static void eval_error(sqlite3_context *ctx, const char *zWhat){
  char *z = sqlite3_mprintf("%s: %s", (const char*)sqlite3_user_data(ctx), zWhat);
  if( !z ){ sqlite3_result_error_nomem(ctx); return; }
  sqlite3_result_error(ctx, z, -1);
  sqlite3_free(z);
}

static void eval_step(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  eval_state *s;
  double score;
  int pos;
  (void)argc;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL
   || sqlite3_value_type(argv[1])==SQLITE_NULL ) return;
  if( (sqlite3_value_numeric_type(argv[0])!=SQLITE_INTEGER
    && sqlite3_value_numeric_type(argv[0])!=SQLITE_FLOAT)
   || !isfinite(score = sqlite3_value_double(argv[0])) ){
    eval_error(ctx, "the score must be a finite number");
    return;
  }
  if( sqlite3_value_numeric_type(argv[1])!=SQLITE_INTEGER
   || (sqlite3_value_int64(argv[1])!=0 && sqlite3_value_int64(argv[1])!=1) ){
    eval_error(ctx, "is_positive must be 1 (an anomaly) or 0 (a normal row)");
    return;
  }
  pos = sqlite3_value_int(argv[1]);
  s = sqlite3_aggregate_context(ctx, sizeof(*s));
  if( !s ){ sqlite3_result_error_nomem(ctx); return; }
  if( s->i0 + s->n==s->nAlloc ){
    if( s->i0>0 ){                 /* slide the window's rows down */
      memmove(s->a, s->a + s->i0, sizeof(eval_pair)*(size_t)s->n);
      s->i0 = 0;
    }
    if( s->n==s->nAlloc ){
      sqlite3_int64 nNew = s->nAlloc ? 2*s->nAlloc : 256;
      eval_pair *p = sqlite3_realloc64(s->a, sizeof(eval_pair)*(size_t)nNew);
      if( !p ){ sqlite3_result_error_nomem(ctx); return; }
      s->a = p;
      s->nAlloc = nNew;
    }
  }
  s->a[s->i0 + s->n].score = score;
  s->a[s->i0 + s->n].pos = pos;
  s->n++;
  s->dirty = 1;
}

/* Rows leave a window's frame in the order they entered it. */
static void eval_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv){
  eval_state *s = sqlite3_aggregate_context(ctx, 0);
  (void)argc;
  if( !s || s->n==0 ) return;
  if( sqlite3_value_type(argv[0])==SQLITE_NULL
   || sqlite3_value_type(argv[1])==SQLITE_NULL ) return;   /* never stepped */
  s->i0++;
  s->n--;
  s->dirty = 1;
}

/* The frame's rows by score, highest first; NULL when out of memory. */
static const eval_pair *eval_sorted(sqlite3_context *ctx, eval_state *s){
  if( s->dirty || !s->sorted ){
    sqlite3_free(s->sorted);
    s->sorted = sqlite3_malloc64(sizeof(eval_pair)*(size_t)(s->n ? s->n : 1));
    if( !s->sorted ){ sqlite3_result_error_nomem(ctx); return 0; }
    memcpy(s->sorted, s->a + s->i0, sizeof(eval_pair)*(size_t)s->n);
    qsort(s->sorted, (size_t)s->n, sizeof(eval_pair), pair_desc);
    s->nSorted = s->n;
    s->dirty = 0;
  }
  return s->sorted;
}

static void eval_counts(const eval_state *s, sqlite3_int64 *pPos,
                        sqlite3_int64 *pNeg){
  sqlite3_int64 i, p = 0;
  for(i=0; i<s->n; i++) p += s->a[s->i0 + i].pos;
  *pPos = p;
  *pNeg = s->n - p;
}

/* AUROC from the rank sum of the positives, ranks averaged over ties
** (ranks counted from the lowest score): every rank sum is a multiple of
** 1/2, exact in a double up to 2^52 rows; one division rounds. */
static void auroc_value(sqlite3_context *ctx){
  eval_state *s = sqlite3_aggregate_context(ctx, 0);
  const eval_pair *p;
  sqlite3_int64 nPos, nNeg, i, j;
  double rankSum = 0;
  if( !s || s->n==0 ) return;
  eval_counts(s, &nPos, &nNeg);
  if( nPos==0 || nNeg==0 ) return;
  if( !(p = eval_sorted(ctx, s)) ) return;
  for(i=0; i<s->nSorted; i=j){
    sqlite3_int64 nTiePos = 0;
    double rank;
    for(j=i; j<s->nSorted && p[j].score==p[i].score; j++) nTiePos += p[j].pos;
    /* Descending positions i..j-1 are ascending ranks n-j+1 .. n-i. */
    rank = ((double)(s->nSorted - j + 1) + (double)(s->nSorted - i))/2;
    rankSum += rank*(double)nTiePos;
  }
  sqlite3_result_double(ctx, (rankSum - (double)nPos*((double)nPos + 1)/2)
                             / ((double)nPos*(double)nNeg));
}

static void ap_value(sqlite3_context *ctx){
  eval_state *s = sqlite3_aggregate_context(ctx, 0);
  const eval_pair *p;
  sqlite3_int64 nPos, nNeg, i, j, tp = 0;
  double ap = 0, prevRecall = 0;
  if( !s || s->n==0 ) return;
  eval_counts(s, &nPos, &nNeg);
  if( nPos==0 || nNeg==0 ) return;
  if( !(p = eval_sorted(ctx, s)) ) return;
  for(i=0; i<s->nSorted; i=j){
    double recall;
    for(j=i; j<s->nSorted && p[j].score==p[i].score; j++) tp += p[j].pos;
    recall = (double)tp/(double)nPos;
    ap += (recall - prevRecall)*((double)tp/(double)j);
    prevRecall = recall;
  }
  sqlite3_result_double(ctx, ap);
}

static void curve_value(sqlite3_context *ctx){
  eval_state *s = sqlite3_aggregate_context(ctx, 0);
  const eval_pair *p;
  sqlite3_int64 nPos = 0, nNeg = 0, i, j, tp = 0;
  sqlite3_str *out;
  if( s && s->n>0 ) eval_counts(s, &nPos, &nNeg);
  if( nPos==0 || nNeg==0 ){
    sqlite3_result_text(ctx, "[]", 2, SQLITE_STATIC);
    sqlite3_result_subtype(ctx, 'J');
    return;
  }
  if( !(p = eval_sorted(ctx, s)) ) return;
  out = sqlite3_str_new(0);
  sqlite3_str_appendchar(out, 1, '[');
  for(i=0; i<s->nSorted; i=j){
    for(j=i; j<s->nSorted && p[j].score==p[i].score; j++) tp += p[j].pos;
    sqlite3_str_appendf(out, "%s{\"threshold\":%!.17g,\"tp\":%lld,\"fp\":%lld,"
        "\"tpr\":%!.15g,\"fpr\":%!.15g,\"precision\":%!.15g}", i ? "," : "",
        p[i].score, tp, j - tp, (double)tp/(double)nPos,
        (double)(j - tp)/(double)nNeg, (double)tp/(double)j);
  }
  sqlite3_str_appendchar(out, 1, ']');
  if( sqlite3_str_errcode(out) ){
    sqlite3_free(sqlite3_str_finish(out));
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, sqlite3_str_finish(out), -1, sqlite3_free);
  sqlite3_result_subtype(ctx, 'J');
}

static void eval_free(sqlite3_context *ctx){
  eval_state *s = sqlite3_aggregate_context(ctx, 0);
  if( !s ) return;
  sqlite3_free(s->a);
  sqlite3_free(s->sorted);
}
static void auroc_final(sqlite3_context *ctx){ auroc_value(ctx); eval_free(ctx); }
static void ap_final(sqlite3_context *ctx){ ap_value(ctx); eval_free(ctx); }
static void curve_final(sqlite3_context *ctx){ curve_value(ctx); eval_free(ctx); }

#ifndef SQLITE_RESULT_SUBTYPE
# define SQLITE_RESULT_SUBTYPE 0x001000000
#endif

int aesql_eval_register(sqlite3 *db){
  /* Pure functions of their rows: DETERMINISTIC and INNOCUOUS. */
  const int f = SQLITE_UTF8|SQLITE_DETERMINISTIC|SQLITE_INNOCUOUS;
  int rc = sqlite3_create_window_function(db, "ae_auroc", 2, f,
               (void*)"ae_auroc", eval_step, auroc_final, auroc_value,
               eval_inverse, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_window_function(db,
               "ae_average_precision", 2, f, (void*)"ae_average_precision",
               eval_step, ap_final, ap_value, eval_inverse, 0);
  if( rc==SQLITE_OK ) rc = sqlite3_create_window_function(db, "ae_roc_curve",
               2, f|SQLITE_RESULT_SUBTYPE, (void*)"ae_roc_curve", eval_step,
               curve_final, curve_value, eval_inverse, 0);
  return rc;
}
