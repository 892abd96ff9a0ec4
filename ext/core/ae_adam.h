/*
** Adam, as Keras (TF 2) computes it, on a buffer of parameters.
*/
#ifndef AE_ADAM_H
#define AE_ADAM_H

#include <stddef.h>

typedef struct aesql_adam {
  float lr, beta1, beta2, eps;
  long t;           /* steps taken */
  size_t n;         /* parameters */
  float *m, *v;     /* first and second moments, n each */
} aesql_adam;
int  aesql_adam_init(aesql_adam *a, size_t n, float lr, float beta1,
                     float beta2, float eps);
void aesql_adam_free(aesql_adam *a);
/* One step: t += 1; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t);
** m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; p -= lr_t*m/(sqrt(v)+eps). */
void aesql_adam_step(aesql_adam *a, float *p, const float *g);
/* The same step in pieces, for threads: aesql_adam_next() counts the step
** and returns its lr_t; aesql_adam_update() updates parameters [i0, i1)
** with the gradient g[0] + g[1] + ... + g[ng-1], added in that order.
** Elementwise, so any split of [0, n) gives the same result. */
float aesql_adam_next(aesql_adam *a);
void  aesql_adam_update(const aesql_adam *a, float lr_t, float *p,
                        const float *const *g, int ng, size_t i0, size_t i1);

#endif /* AE_ADAM_H */
