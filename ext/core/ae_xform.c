/*
** The input transform of a model of numeric columns (ae_xform.h): fitted
** to the training rows, applied to every row scored, and undone for the
** reconstructions shown in the original units.
*/
#include "ae_xform.h"
#include "ae_mem.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const char *const azScale[] = { "standard", "minmax", "none", 0 };
static const char *const azNulls[] = { "error", "mean", 0 };

const char *aesql_scale_name(int scale){
  return scale>=0 && scale<3 ? azScale[scale] : 0;
}
const char *aesql_nulls_name(int nulls){
  return nulls>=0 && nulls<2 ? azNulls[nulls] : 0;
}
static int name_parse(const char *const *az, const char *z){
  int i;
  for(i=0; z && az[i]; i++) if( strcmp(az[i], z)==0 ) return i;
  return -1;
}
int aesql_scale_parse(const char *z){ return name_parse(azScale, z); }
int aesql_nulls_parse(const char *z){ return name_parse(azNulls, z); }

/* As the codec's widths: an input is at most 2^24 wide. */
#define XFORM_MAX_D (1<<24)

int aesql_xform_init(aesql_xform *t, int d, int withFill){
  size_t n, i;
  memset(t, 0, sizeof(*t));
  if( d<1 || d>XFORM_MAX_D ) return 1;
  n = (size_t)d*(withFill ? 3 : 2);
  t->offset = aesql_nn_malloc(sizeof(double)*n);
  if( !t->offset ) return 1;
  t->d = d;
  t->scale = t->offset + d;
  t->fill = withFill ? t->scale + d : 0;
  for(i=0; i<(size_t)d; i++){
    t->offset[i] = 0;
    t->scale[i] = 1;
    if( t->fill ) t->fill[i] = 0;
  }
  return 0;
}

void aesql_xform_free(aesql_xform *t){
  aesql_nn_mfree(t->offset);
  memset(t, 0, sizeof(*t));
}

int aesql_xform_fit(aesql_xform *t, int scale, const double *x, size_t n,
                    int *piBad){
  const int d = t->d;
  int i;
  for(i=0; i<d; i++){
    double sum = 0, lo = INFINITY, hi = -INFINITY, mean, s;
    size_t r, k = 0;
    *piBad = i;
    for(r=0; r<n; r++){
      double v = x[r*(size_t)d + i];
      if( isnan(v) ) continue;
      sum += v;
      if( v<lo ) lo = v;
      if( v>hi ) hi = v;
      k++;
    }
    if( k==0 ){
      /* Every cell missing: nothing to fill with, nothing to scale by. */
      return AESQL_XFORM_EMPTY;
    }
    mean = sum/(double)k;
    if( !isfinite(mean) ) return AESQL_XFORM_RANGE;
    if( t->fill ) t->fill[i] = mean;
    switch( scale ){
      case AESQL_SCALE_STANDARD: {
        double ss = 0;
        for(r=0; r<n; r++){
          double v = x[r*(size_t)d + i];
          if( !isnan(v) ) ss += (v - mean)*(v - mean);
        }
        s = sqrt(ss/(double)k);
        if( !isfinite(s) ) return AESQL_XFORM_RANGE;
        t->offset[i] = mean;
        t->scale[i] = s==0 ? 1.0 : 1.0/s;
        break;
      }
      case AESQL_SCALE_MINMAX:
        s = hi - lo;
        if( !isfinite(s) ) return AESQL_XFORM_RANGE;
        t->offset[i] = lo;
        t->scale[i] = s==0 ? 1.0 : 1.0/s;
        break;
      default:
        t->offset[i] = 0;
        t->scale[i] = 1;
        break;
    }
    /* A spread so small that its reciprocal overflows (a subnormal). */
    if( !isfinite(t->scale[i]) || t->scale[i]==0 ) return AESQL_XFORM_RANGE;
  }
  *piBad = 0;
  return AESQL_XFORM_OK;
}

int aesql_xform_one(const aesql_xform *t, int i, double x, float *pOut){
  double v;
  if( isnan(x) ){
    if( !t->fill ) return AESQL_XFORM_MISSING;
    x = t->fill[i];
  }
  v = t->d ? (x - t->offset[i])*t->scale[i] : x;
  if( !(fabs(v)<=FLT_MAX) ) return AESQL_XFORM_RANGE;   /* NaN too */
  *pOut = (float)v;
  return AESQL_XFORM_OK;
}

int aesql_xform_apply(const aesql_xform *t, int d, const double *x,
                      float *out, int *piBad){
  int i, rc;
  for(i=0; i<d; i++){
    rc = aesql_xform_one(t, i, x[i], &out[i]);
    if( rc!=AESQL_XFORM_OK ){ *piBad = i; return rc; }
  }
  return AESQL_XFORM_OK;
}

double aesql_xform_inverse(const aesql_xform *t, int i, double y){
  return t->d ? y/t->scale[i] + t->offset[i] : y;
}
