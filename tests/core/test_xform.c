/*
** Tests of ext/core/ae_xform.c, the input transform of a model of numeric
** columns, linked with no SQLite:
**
**   fitting     standard (population std), minmax and none against values
**               worked out by hand, exactly; the rows fitted only; missing
**               cells (NaN) left out of every statistic, the fill values
**               their means; a constant feature gets scale 1 (no division
**               by zero); a feature missing everywhere, and statistics
**               beyond double's range, refused, naming the feature
**   applying    (x - offset) * scale rounded once to float; a missing cell
**               is the fill value, or refused without one; beyond float32
**               refused; no transform rounds the values as they are; the
**               inverse gives the original units back
**   names       scale and nulls parse what they name, and nothing else
**
**   make build/tests/test_xform && build/tests/test_xform
*/
#include "../check.h"
#include "../../ext/core/ae_xform.h"

#include <float.h>

static void check_fit(void){
  /* 4 rows x 3 features; feature 2 is constant. */
  static const double x[12] = {
    1, 10, 7,
    2, 20, 7,
    3, 30, 7,
    6, 60, 7,
  };
  aesql_xform t;
  int bad = -1, rc;
  float out[3];

  aesql_xform_init(&t, 3, 1);
  rc = aesql_xform_fit(&t, AESQL_SCALE_STANDARD, x, 4, &bad);
  CHECK("standard: fits", rc==AESQL_XFORM_OK);
  /* mean 3, deviations -2 -1 0 3: variance 14/4, std sqrt(3.5) */
  CHECK("standard: offset is the mean, exactly", t.offset[0]==3.0 && t.offset[1]==30.0);
  CHECK("standard: scale is 1/std, the population's (ddof 0)",
        t.scale[0]==1.0/sqrt(3.5) && t.scale[1]==1.0/sqrt(350.0));
  CHECK("standard: a constant feature gets scale 1, offset its value",
        t.scale[2]==1.0 && t.offset[2]==7.0);
  CHECK("standard: the fill values are the means", t.fill[0]==3 && t.fill[1]==30 && t.fill[2]==7);
  rc = aesql_xform_apply(&t, 3, x + 9, out, &bad);
  CHECK("standard: applied, (x - mean) / std rounded once",
        rc==AESQL_XFORM_OK && out[0]==(float)(3.0/sqrt(3.5)) && out[1]==(float)(30.0/sqrt(350.0))
        && out[2]==0.0f);

  rc = aesql_xform_fit(&t, AESQL_SCALE_STANDARD, x, 2, &bad);
  CHECK("standard: only the rows fitted (the first 2)",
        rc==AESQL_XFORM_OK && t.offset[0]==1.5 && t.scale[0]==1.0/0.5 && t.fill[1]==15);

  rc = aesql_xform_fit(&t, AESQL_SCALE_MINMAX, x, 4, &bad);
  CHECK("minmax: offset the min, scale 1/(max - min)",
        rc==AESQL_XFORM_OK && t.offset[0]==1 && t.scale[0]==1.0/5 && t.offset[1]==10
        && t.scale[1]==1.0/50);
  CHECK("minmax: a constant feature gets scale 1", t.scale[2]==1.0 && t.offset[2]==7);
  rc = aesql_xform_apply(&t, 3, x + 9, out, &bad);
  CHECK("minmax: the largest row is 1, a constant 0",
        rc==AESQL_XFORM_OK && out[0]==1.0f && out[1]==1.0f && out[2]==0.0f);

  rc = aesql_xform_fit(&t, AESQL_SCALE_NONE, x, 4, &bad);
  CHECK("none: offset 0, scale 1, the means kept as fill values",
        rc==AESQL_XFORM_OK && t.offset[0]==0 && t.scale[1]==1 && t.fill[0]==3);
  aesql_xform_free(&t);
  CHECK("free zeroes", t.d==0 && t.offset==0 && t.fill==0);
}

static void check_missing(void){
  const double N = NAN;
  const double x[8] = {
    1, N,
    N, N,
    3, 4,
    5, N,
  };
  aesql_xform t;
  int bad = -1, rc;
  float out[2];
  double row[2];

  aesql_xform_init(&t, 2, 1);
  rc = aesql_xform_fit(&t, AESQL_SCALE_STANDARD, x, 4, &bad);
  CHECK("missing cells left out: mean 3 of 1, 3, 5; std sqrt(8/3)",
        rc==AESQL_XFORM_OK && t.offset[0]==3 && t.scale[0]==1.0/sqrt(8.0/3) && t.fill[0]==3);
  CHECK("one value: std 0, scale 1; its mean the fill", t.offset[1]==4 && t.scale[1]==1
        && t.fill[1]==4);
  row[0] = N; row[1] = N;
  rc = aesql_xform_apply(&t, 2, row, out, &bad);
  CHECK("a missing cell is the fill value, transformed: 0 for the mean",
        rc==AESQL_XFORM_OK && out[0]==0.0f && out[1]==0.0f);
  rc = aesql_xform_fit(&t, AESQL_SCALE_MINMAX, x, 2, &bad);
  CHECK("a feature missing in every row fitted: refused, named", rc==AESQL_XFORM_EMPTY && bad==1);
  aesql_xform_free(&t);

  aesql_xform_init(&t, 2, 0);
  rc = aesql_xform_fit(&t, AESQL_SCALE_STANDARD, x + 4, 2, &bad);
  CHECK("without fill values: fits the rows", rc==AESQL_XFORM_OK && t.fill==0);
  row[0] = 1; row[1] = N;
  rc = aesql_xform_apply(&t, 2, row, out, &bad);
  CHECK("without fill values a missing cell is refused, named", rc==AESQL_XFORM_MISSING && bad==1);
  aesql_xform_free(&t);
}

static void check_ranges(void){
  const double big[4] = { 1e308, -1e308, 1.5e308, 1e308 };
  const double tiny[2] = { 0, 0x1p-1074 };
  aesql_xform t;
  int bad = -1, rc;
  float f;

  aesql_xform_init(&t, 1, 0);
  rc = aesql_xform_fit(&t, AESQL_SCALE_STANDARD, big, 4, &bad);
  CHECK("standard: a sum beyond double's range refused", rc==AESQL_XFORM_RANGE && bad==0);
  rc = aesql_xform_fit(&t, AESQL_SCALE_MINMAX, big, 2, &bad);
  CHECK("minmax: a range beyond double's refused", rc==AESQL_XFORM_RANGE);
  rc = aesql_xform_fit(&t, AESQL_SCALE_MINMAX, tiny, 2, &bad);
  CHECK("minmax: a range whose reciprocal overflows refused", rc==AESQL_XFORM_RANGE);
  rc = aesql_xform_fit(&t, AESQL_SCALE_NONE, big, 1, &bad);
  CHECK("none: any finite values fit", rc==AESQL_XFORM_OK);
  CHECK("none: beyond float32 refused when applied",
        aesql_xform_one(&t, 0, 1e39, &f)==AESQL_XFORM_RANGE);
  CHECK("none: FLT_MAX itself is kept", aesql_xform_one(&t, 0, FLT_MAX, &f)==AESQL_XFORM_OK
        && f==FLT_MAX);
  t.scale[0] = 1e30;
  CHECK("a value that the scale takes beyond float32 refused",
        aesql_xform_one(&t, 0, 1e10, &f)==AESQL_XFORM_RANGE);
  aesql_xform_free(&t);

  memset(&t, 0, sizeof(t));
  CHECK("no transform: the value rounded as it is",
        aesql_xform_one(&t, 0, 0.1, &f)==AESQL_XFORM_OK && f==0.1f);
  CHECK("no transform: a missing value refused", aesql_xform_one(&t, 0, NAN, &f)==AESQL_XFORM_MISSING);
  CHECK("no transform: the inverse is the value", aesql_xform_inverse(&t, 0, 2.5)==2.5);
  CHECK("init refuses d 0", aesql_xform_init(&t, 0, 0)!=0 && t.offset==0);
}

static void check_inverse(void){
  const double x[6] = { 17.99, 1001, 20.57, 1326, 19.69, 1203 };
  aesql_xform t;
  int bad, i, ok = 1;
  aesql_xform_init(&t, 2, 0);
  aesql_xform_fit(&t, AESQL_SCALE_STANDARD, x, 3, &bad);
  for(i=0; i<6; i++){
    float f;
    double back;
    aesql_xform_one(&t, i%2, x[i], &f);
    back = aesql_xform_inverse(&t, i%2, f);
    if( fabs(back - x[i]) > 1e-6*fabs(x[i]) ) ok = 0;
  }
  CHECK("the inverse of a scaled value is the value, to float32's precision", ok);
  aesql_xform_free(&t);
}

static void check_names(void){
  CHECK("scale names", !strcmp(aesql_scale_name(AESQL_SCALE_STANDARD), "standard")
        && !strcmp(aesql_scale_name(AESQL_SCALE_MINMAX), "minmax")
        && !strcmp(aesql_scale_name(AESQL_SCALE_NONE), "none") && aesql_scale_name(3)==0
        && aesql_scale_name(-1)==0);
  CHECK("scale parses its names only", aesql_scale_parse("minmax")==AESQL_SCALE_MINMAX
        && aesql_scale_parse("Standard")==-1 && aesql_scale_parse("")==-1
        && aesql_scale_parse(0)==-1);
  CHECK("nulls names", !strcmp(aesql_nulls_name(AESQL_NULLS_ERROR), "error")
        && !strcmp(aesql_nulls_name(AESQL_NULLS_MEAN), "mean") && aesql_nulls_name(2)==0);
  CHECK("nulls parses its names only", aesql_nulls_parse("mean")==AESQL_NULLS_MEAN
        && aesql_nulls_parse("median")==-1);
}

int main(void){
  check_fit();
  check_missing();
  check_ranges();
  check_inverse();
  check_names();
  return check_done();
}
