/*
** Adam on a buffer of parameters, with epsilon where Keras (TF 2) adds it
** or where torch.optim.Adam does:
**
**   aesql_adam a;
**   aesql_adam_init(&a, n, 0.001f, 0.9f, 0.999f, 1e-7f);   (Keras' mode)
**   aesql_adam_set_mode(&a, AESQL_ADAM_TORCH);             (or torch's)
**   aesql_adam_step(&a, p, g);        one step: p[0..n) from g[0..n)
**   aesql_adam_free(&a);
**
** The two modes differ only in the epsilon of step t that is added to
** sqrt(v), v the uncorrected second moment:
**
**   AESQL_ADAM_KERAS  eps                  Keras/TF 2 (ResourceApplyAdam)
**   AESQL_ADAM_TORCH  eps sqrt(1 - b2^t)   torch.optim.Adam, which adds eps
**                                          to sqrt(v_hat) = sqrt(v/(1-b2^t))
**
** since lr_t m/(sqrt(v) + eps sqrt(1-b2^t)) = lr m_hat/(sqrt(v_hat) + eps).
** They part only where sqrt(v_hat) is not far above eps: parameters whose
** gradients stay tiny (weights of pixels that are rarely lit), most of all
** in the first steps, where Keras' eps is in effect eps/sqrt(1 - b2^t) on
** torch's scale (32 eps at t = 1; 1.5 eps at t = 570, the end of a
** one-class MNIST training of 30 epochs of 19 batches), so that its steps
** there are the smaller ones.
*/
#ifndef AE_ADAM_H
#define AE_ADAM_H

#include <stddef.h>

/* aesql_adam.mode: where epsilon goes. KERAS is 0, so that a zeroed
** configuration (aesql_loop_cfg) means Keras' Adam, as it always has. */
#define AESQL_ADAM_KERAS 0
#define AESQL_ADAM_TORCH 1
#define AESQL_ADAM_COUNT 2

typedef struct aesql_adam {
  float lr, beta1, beta2, eps;
  int mode;         /* AESQL_ADAM_KERAS or AESQL_ADAM_TORCH */
  long t;           /* steps taken */
  float eps_t;      /* step t's epsilon, added to sqrt(v): aesql_adam_next */
  size_t n;         /* parameters */
  float *m, *v;     /* first and second moments, n each */
} aesql_adam;
/* In mode AESQL_ADAM_KERAS. Non-zero: out of memory. */
int  aesql_adam_init(aesql_adam *a, size_t n, float lr, float beta1,
                     float beta2, float eps);
/* The mode of the steps from the next one on (a setter rather than an
** argument of init, so that the callers of init stay as they were).
** Non-zero, and the mode unchanged, when mode is not one of the above. */
int  aesql_adam_set_mode(aesql_adam *a, int mode);
void aesql_adam_free(aesql_adam *a);
/* One step: t += 1; lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t); eps_t as the
** mode has it; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
** p -= lr_t*m/(sqrt(v)+eps_t). */
void aesql_adam_step(aesql_adam *a, float *p, const float *g);
/* The same step in pieces, for threads: aesql_adam_next() counts the step,
** sets a->eps_t and returns its lr_t; aesql_adam_update() updates
** parameters [i0, i1) with the gradient g[0] + g[1] + ... + g[ng-1],
** added in that order, and the step's lr_t and a->eps_t. Elementwise, so
** any split of [0, n) gives the same result. */
float aesql_adam_next(aesql_adam *a);
void  aesql_adam_update(const aesql_adam *a, float lr_t, float *p,
                        const float *const *g, int ng, size_t i0, size_t i1);
/* The same with each g[j] holding the gradient of parameters [i0, i1)
** only: g[j][0] is parameter i0's. */
void  aesql_adam_update_at(const aesql_adam *a, float lr_t, float *p,
                           const float *const *g, int ng, size_t i0,
                           size_t i1);

/* The modes' names, "keras" and "torch" (NULL past the last), and back
** (-1: not a name), for ae_train's "adam" option. */
const char *aesql_adam_mode_name(int mode);
int aesql_adam_mode_parse(const char *z);

#endif /* AE_ADAM_H */
