/*
** The input transform of a model of numeric columns: per feature an
** offset and a scale, x' = (x - offset) * scale, computed from the rows a
** model trains on and stored with it (ae_codec.h), so that a row is scored
** in the units the model was trained in; and optionally per feature a fill
** value, which stands for a missing (NULL) cell: the training mean.
**
**   standard  offset = mean, scale = 1/std, the population standard
**             deviation (ddof 0, as scikit-learn's StandardScaler)
**   minmax    offset = min, scale = 1/(max - min): [0, 1] on the rows fitted
**   none      offset 0, scale 1
**
** A constant feature never divides by zero: a std or a range of 0 gives
** scale 1 (the feature is then 0 after the offset, as scikit-learn does).
** The statistics are computed in double over the rows fitted, a missing
** cell (NaN here) left out of them, the standard deviation in two passes
** (the mean first, then the squared deviations from it). The numbers are
** kept as float64, so that the stored transform is the computed one, bit
** for bit, and a row scaled at scoring is the row scaled at training.
**
** Pixels have no transform (d == 0): bytes are read as b/255.0f and
** float32 as they are (ae_data.h).
*/
#ifndef AE_XFORM_H
#define AE_XFORM_H

#include <stddef.h>

/* How a transform is fitted (the option "scale"). */
enum { AESQL_SCALE_STANDARD = 0, AESQL_SCALE_MINMAX = 1, AESQL_SCALE_NONE = 2 };
/* What a missing cell becomes (the option "nulls"): an error, or the
** mean of the training rows, stored as the fill value. */
enum { AESQL_NULLS_ERROR = 0, AESQL_NULLS_MEAN = 1 };

/* "standard", "minmax", "none"; "error", "mean"; NULL past the last. */
const char *aesql_scale_name(int scale);
const char *aesql_nulls_name(int nulls);
/* The value named z (as the functions above spell it), or -1. */
int aesql_scale_parse(const char *z);
int aesql_nulls_parse(const char *z);

typedef struct aesql_xform {
  int d;            /* features; 0: no transform, x' = x */
  double *offset;   /* d: x' = (x - offset[i]) * scale[i] */
  double *scale;    /* d: each finite and non-zero */
  double *fill;     /* d, or NULL: a missing cell is an error */
} aesql_xform;

/* Allocates a transform of d features (1 .. 2^24), offsets 0, scales 1,
** and fill values 0 when withFill; one allocation (ae_mem.h). 0, or
** non-zero when out of memory or d is out of range (*t is then zeroed). */
int  aesql_xform_init(aesql_xform *t, int d, int withFill);
void aesql_xform_free(aesql_xform *t);   /* and zeroes *t */

/* Results of aesql_xform_fit and aesql_xform_apply; *piBad is the
** 0-based feature. */
#define AESQL_XFORM_OK      0
#define AESQL_XFORM_EMPTY   1   /* fit: a feature has no value in any row,
                                ** so no mean (only with missing cells) */
#define AESQL_XFORM_RANGE   2   /* fit: a statistic is not finite, or its
                                ** scale is not (values too large);
                                ** apply: beyond float32 once scaled */
#define AESQL_XFORM_MISSING 3   /* apply: a missing cell, and no fill */

/* Fits t (initialised for d features, with fill values or not) to rows
** 0..n-1 of x, n x d doubles row-major, NaN for a missing cell (no
** infinities), by `scale`; the fill values, when t has them, are the
** means. n >= 1. */
int aesql_xform_fit(aesql_xform *t, int scale, const double *x, size_t n,
                    int *piBad);

/* Row x (t->d doubles, NaN for missing) as the model reads it: d floats,
** each (x - offset) * scale computed in double and rounded once; a missing
** cell is the fill value, transformed likewise. With no transform (t->d
** 0) the d values are rounded as they are. */
int aesql_xform_apply(const aesql_xform *t, int d, const double *x,
                      float *out, int *piBad);
/* One value of feature i (NaN: missing), as aesql_xform_apply reads it:
** AESQL_XFORM_OK, _RANGE or _MISSING. */
int aesql_xform_one(const aesql_xform *t, int i, double x, float *pOut);

/* A value of feature i back in the original units: y / scale + offset. */
double aesql_xform_inverse(const aesql_xform *t, int i, double y);

#endif /* AE_XFORM_H */
