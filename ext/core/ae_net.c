/*
** The model as a stack of dense layers (declared in ae_net.h): its shape,
** its parameters and their initialisation. The passes are in
** ae_net_pass.c (BLAS) and ae_net_ref.c (plain loops, the reference).
*/
#include "ae_net.h"

#include <math.h>
#include <string.h>

int aesql_net_mirror(int d, const int *enc, int k, int *width){
  int i;
  if( k<1 || 2*k>AESQL_NET_MAX_LAYERS ) return 0;
  width[0] = d;
  for(i=0; i<k; i++) width[1+i] = enc[i];
  for(i=0; i<k-1; i++) width[k+1+i] = enc[k-2-i];
  width[2*k] = d;
  return 2*k;
}

size_t aesql_net_nparam(int nLayer, const int *width){
  size_t n = 0;
  int l;
  if( nLayer<1 || nLayer>AESQL_NET_MAX_LAYERS ) return 0;
  for(l=0; l<=nLayer; l++) if( width[l]<1 ) return 0;
  for(l=0; l<nLayer; l++){
    size_t a = (size_t)width[l], b = (size_t)width[l+1];
    /* widths are ints: a*b + b fits in 64 bits; the sum may not */
    if( a*b + b > SIZE_MAX/sizeof(float) - n ) return 0;
    n += a*b + b;
  }
  return n;
}

static void net_point(aesql_net *net){
  int l;
  for(l=0; l<net->nLayer; l++){
    aesql_layer *L = &net->layer[l];
    L->w = net->param + L->off;
    L->b = L->w + (size_t)L->nIn*L->nOut;
  }
}

int aesql_net_init(aesql_net *net, int nLayer, const int *width,
                   const int *act, int iCode){
  size_t np = aesql_net_nparam(nLayer, width), off = 0;
  int l;
  memset(net, 0, sizeof(*net));
  if( np==0 || iCode<0 || iCode>=nLayer ) return 1;
  for(l=0; l<nLayer; l++){
    if( act[l]<0 || act[l]>=AESQL_ACT_COUNT ) return 1;
  }
  net->param = aesql_nn_calloc(np, sizeof(float));
  if( net->param==0 ) return 1;
  net->nLayer = nLayer;
  net->iCode = iCode;
  net->nParam = np;
  for(l=0; l<nLayer; l++){
    aesql_layer *L = &net->layer[l];
    L->nIn = width[l];
    L->nOut = width[l+1];
    L->act = act[l];
    L->off = off;
    off += (size_t)L->nIn*L->nOut + L->nOut;
  }
  net_point(net);
  return 0;
}

int aesql_net_init_dhd(aesql_net *net, int d, int h){
  const int width[3] = { d, h, d };
  const int act[2] = { AESQL_ACT_RELU, AESQL_ACT_LINEAR };
  return aesql_net_init(net, 2, width, act, 0);
}

void aesql_net_free(aesql_net *net){
  if( net==0 ) return;
  aesql_nn_mfree(net->param);
  memset(net, 0, sizeof(*net));
}

int aesql_net_width(const aesql_net *net){
  return net->nLayer>0 ? net->layer[0].nIn : 0;
}

int aesql_net_code_width(const aesql_net *net){
  return net->nLayer>0 ? net->layer[net->iCode].nOut : 0;
}

void aesql_net_glorot(aesql_net *net, aesql_rng *r){
  int l;
  for(l=0; l<net->nLayer; l++){
    aesql_layer *L = &net->layer[l];
    size_t i, nw = (size_t)L->nIn*L->nOut;
    double limit = sqrt(6.0/((double)L->nIn + L->nOut));
    for(i=0; i<nw; i++) L->w[i] = (float)((2.0*aesql_rng_uniform(r) - 1.0)*limit);
    memset(L->b, 0, sizeof(float)*(size_t)L->nOut);
  }
}

double aesql_net_l2(const aesql_net *net, double l2){
  double s = 0.0;
  int l;
  if( !(l2>0.0) ) return 0.0;
  for(l=0; l<net->nLayer; l++){
    const aesql_layer *L = &net->layer[l];
    size_t i, nw = (size_t)L->nIn*L->nOut;
    for(i=0; i<nw; i++) s += (double)L->w[i]*L->w[i];
  }
  return l2*s;
}
