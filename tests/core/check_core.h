/*
** The helpers the tests/core/ programs share, on top of tests/check.h
** (no SQLite here either): an allocator for the core that counts its
** blocks and fails the call asked for (aesql_nn_config_mem(fm_malloc,
** fm_free)), made-up data, and comparisons.
*/
#ifndef AESQL_CHECK_CORE_H
#define AESQL_CHECK_CORE_H

#include "../check.h"
#include "../../ext/core/ae_rng.h"
#include "../../ext/core/ae_data.h"

/* The core's allocator, counted, and failing on request: the call
** numbered fm.nFail fails. */
static struct {
  long nCall;          /* calls so far */
  long nFail;          /* the call that fails, or -1 */
  long nLive;          /* blocks not yet freed */
} fm = { 0, -1, 0 };

static __attribute__((unused)) void *fm_malloc(unsigned long long n){
  void *p;
  if( fm.nCall++==fm.nFail ) return 0;
  p = malloc((size_t)n);
  if( p ) fm.nLive++;
  return p;
}
static __attribute__((unused)) void fm_free(void *p){
  if( p ){ fm.nLive--; free(p); }
}
/* The k-th allocation from now fails (k = 0: the next one). */
static __attribute__((unused)) void fm_fail_in(long k){ fm.nFail = fm.nCall + k; }
static __attribute__((unused)) void fm_never(void){ fm.nFail = -1; }

static __attribute__((unused)) void fill_uniform(aesql_rng *r, float *a, size_t n, double lo, double hi){
  size_t i;
  for(i=0; i<n; i++) a[i] = (float)(lo + (hi-lo)*aesql_rng_uniform(r));
}

/* n rows of d bytes, a fraction `density` of them non-zero (1..255); row
** 0 all zero, so that empty rows are covered. */
static __attribute__((unused)) unsigned char *make_bytes(aesql_rng *r, int n, int d, double density){
  unsigned char *p = malloc((size_t)n*d);
  size_t i;
  if( !p ) return 0;
  for(i=0; i<(size_t)n*d; i++){
    p[i] = i<(size_t)d || aesql_rng_uniform(r)>=density
           ? 0 : (unsigned char)(1 + aesql_rng_below(r, 255));
  }
  return p;
}

/* Rows idx[0..n) of x as a dense float matrix, the reference's input:
** bytes by the rule (float)(b/255.0), which test_bytes shows is
** aesql_u8_float[b]. */
static __attribute__((unused)) void rows_dense(const aesql_nn_data *x, const uint32_t *idx, int n, float *X){
  int r, i;
  for(r=0; r<n; r++){
    for(i=0; i<x->d; i++){
      size_t o = (size_t)idx[r]*x->d + i;
      X[(size_t)r*x->d + i] = x->u8 ? (float)(x->u8[o]/255.0) : x->f32[o];
    }
  }
}

/* max |a-b|; NaN anywhere makes it infinite, so that checks fail. */
static __attribute__((unused)) double max_diff(const float *a, const float *b, size_t n){
  double m = 0.0;
  size_t i;
  for(i=0; i<n; i++){
    double e = fabs((double)a[i] - b[i]);
    if( !(e<=m) ) m = isnan(e) ? INFINITY : e;
  }
  return m;
}

#endif /* AESQL_CHECK_CORE_H */
