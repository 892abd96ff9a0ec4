/*
** The test harness of every test program (tests/core/, tests/sql/). It
** knows nothing of SQLite: tests/core/ link no SQLite; tests/sql/check_sql.h adds the
** helpers of the programs that test through SQL).
**
** Each check prints one line, "ok - NAME" or "not ok - NAME: why", and
** check_done() prints "N passed, N failed" and returns the exit status.
** tests/run.sh adds up the lines of every program.
*/
#ifndef AESQL_CHECK_H
#define AESQL_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include <stdint.h>
#include <time.h>

static __attribute__((unused)) int check_npass, check_nfail;

static __attribute__((unused)) void check_report(int ok, const char *name, const char *fmt, ...){
  if( ok ){ check_npass++; printf("ok - %s\n", name); }
  else{
    va_list ap;
    check_nfail++;
    printf("not ok - %s: ", name);
    va_start(ap, fmt); vprintf(fmt, ap); va_end(ap);
    printf("\n");
  }
  fflush(stdout);
}

/* CHECK(name, condition): a plain assertion. */
#define CHECK(name, cond) check_report((cond), (name), "%s", #cond)

/* CHECK_NEAR(name, got, want, tol): |got-want| <= tol, NaN fails. */
#define CHECK_NEAR(name, got, want, tol) do{ \
  double g_ = (got), w_ = (want), t_ = (tol); \
  check_report(fabs(g_-w_)<=t_, (name), "got %.9g, want %.9g (tol %.3g)", g_, w_, t_); \
}while(0)

static __attribute__((unused)) int check_done(void){
  printf("%d passed, %d failed\n", check_npass, check_nfail);
  return check_nfail ? 1 : 0;
}

/* CLOCK_MONOTONIC, in seconds. */
static __attribute__((unused)) double check_now(void){
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec*1e-9;
}

#endif /* AESQL_CHECK_H */
