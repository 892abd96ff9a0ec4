/*
** The reference passes of the layer stack (declared in ae_net.h): plain
** loops, one row at a time, everything in double between the float
** inputs and the float outputs, activations by aesql_act_f/_df at the
** layers' inputs. The BLAS passes (ae_net_pass.c) are tested against
** these, and these against finite differences (tests/core).
*/
#include "ae_net.h"

#include <math.h>
#include <string.h>

/* Widest layer of the stack (input or output). */
static int ref_wmax(const aesql_net *net){
  int l, m = 0;
  for(l=0; l<net->nLayer; l++){
    if( net->layer[l].nIn>m ) m = net->layer[l].nIn;
    if( net->layer[l].nOut>m ) m = net->layer[l].nOut;
  }
  return m;
}

/* One row x through the stack: z[l] (pre-activations) and a[l] (outputs),
** each of the widest layer's width, for l = 0..nLayer-1. */
static void ref_row(const aesql_net *net, const float *x, double *z,
                    double *a, int wm){
  int l, i, k;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    const double *in = l ? a + (size_t)(l-1)*wm : 0;
    double *zl = z + (size_t)l*wm, *al = a + (size_t)l*wm;
    for(k=0; k<L->nOut; k++){
      double s = L->b[k];
      for(i=0; i<L->nIn; i++){
        s += (l ? in[i] : (double)x[i]) * L->w[(size_t)i*L->nOut + k];
      }
      zl[k] = s;
      al[k] = aesql_act_f(L->act, s);
    }
  }
}

double aesql_net_forward_naive(const aesql_net *net, const float *X, int n,
                               float *Y){
  const int d = aesql_net_width(net), wm = ref_wmax(net), nL = net->nLayer;
  double loss = 0.0, *z;
  int r, j;
  if( n<=0 ) return 0.0;
  z = aesql_nn_calloc(2*(size_t)nL*wm, sizeof(double));
  if( z==0 ) return NAN;
  for(r=0; r<n; r++){
    const float *x = X + (size_t)r*d;
    const double *y = z + (size_t)nL*wm + (size_t)(nL-1)*wm;
    ref_row(net, x, z, z + (size_t)nL*wm, wm);
    for(j=0; j<d; j++){
      double e = y[j] - x[j];
      loss += e*e;
      if( Y ) Y[(size_t)r*d + j] = (float)y[j];
    }
  }
  aesql_nn_mfree(z);
  return loss/((double)n*d);
}

double aesql_net_grad_naive(const aesql_net *net, const float *X, int n,
                            double l2, float *g){
  const int d = aesql_net_width(net), wm = ref_wmax(net), nL = net->nLayer;
  const size_t np = net->nParam;
  double loss = 0.0, *acc, *z, *a, *da, *dn;
  size_t p;
  int r, l, i, j, k;
  if( n<=0 ){
    /* no rows: the loss is the penalty alone, the gradient its own */
    memset(g, 0, np*sizeof(float));
    for(l=0; l<nL && l2>0.0; l++){
      const aesql_layer *L = &net->layer[l];
      size_t q, nw = (size_t)L->nIn*L->nOut;
      for(q=0; q<nw; q++) g[L->off + q] = (float)(2.0*l2*L->w[q]);
    }
    return aesql_net_l2(net, l2);
  }
  acc = aesql_nn_calloc(np + 2*(size_t)nL*wm + 2*(size_t)wm, sizeof(double));
  if( acc==0 ) return NAN;
  z = acc + np; a = z + (size_t)nL*wm; da = a + (size_t)nL*wm; dn = da + wm;
  for(r=0; r<n; r++){
    const float *x = X + (size_t)r*d;
    ref_row(net, x, z, a, wm);
    /* dL/da of the output, then down the stack as dL/dz */
    for(j=0; j<d; j++){
      double e = a[(size_t)(nL-1)*wm + j] - x[j];
      loss += e*e;
      da[j] = 2.0*e/((double)n*d);
    }
    for(l=nL-1; l>=0; l--){
      const aesql_layer *L = &net->layer[l];
      const double *zl = z + (size_t)l*wm, *in = l ? a + (size_t)(l-1)*wm : 0;
      double *gw = acc + L->off, *gb = gw + (size_t)L->nIn*L->nOut;
      for(k=0; k<L->nOut; k++){
        da[k] *= aesql_act_df(L->act, zl[k]);      /* now dL/dz */
        gb[k] += da[k];
      }
      for(i=0; i<L->nIn; i++){
        double xi = l ? in[i] : (double)x[i], s = 0.0;
        for(k=0; k<L->nOut; k++){
          gw[(size_t)i*L->nOut + k] += xi*da[k];
          s += da[k]*L->w[(size_t)i*L->nOut + k];
        }
        dn[i] = s;
      }
      memcpy(da, dn, sizeof(double)*(size_t)L->nIn);
    }
  }
  loss /= (double)n*d;
  if( l2>0.0 ){
    for(l=0; l<nL; l++){
      const aesql_layer *L = &net->layer[l];
      size_t q, nw = (size_t)L->nIn*L->nOut;
      for(q=0; q<nw; q++) acc[L->off + q] += 2.0*l2*L->w[q];
    }
    loss += aesql_net_l2(net, l2);
  }
  for(p=0; p<np; p++) g[p] = (float)acc[p];
  aesql_nn_mfree(acc);
  return loss;
}
