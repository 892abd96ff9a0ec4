/*
** Activations as data: an enum, a name, and a forward and a backward pass
** over a block of floats, with Keras' definitions and constants:
**
**   linear      x
**   relu        max(x, 0)
**   leaky_relu  x > 0 ? x : 0.2 x      (keras.activations.leaky_relu and
**                                       tf.nn.leaky_relu: slope 0.2)
**   elu         x < 0 ? exp(x) - 1 : x (alpha 1)
**   selu        scale * (x < 0 ? alpha (exp(x) - 1) : x),
**               alpha = 1.6732632423543772848170429916717,
**               scale = 1.0507009873554804934193349852946
**   tanh        tanh(x)
**   sigmoid     1 / (1 + exp(-x))
**
** The backward pass takes the layer's outputs a = f(x), not its inputs:
** every derivative above is a function of the output (relu: a > 0 ? 1 :
** 0; leaky_relu: a > 0 ? 1 : 0.2; elu: a < 0 ? a + 1 : 1; selu: a < 0 ?
** a + scale alpha : scale; tanh: 1 - a^2; sigmoid: a (1 - a)), so a layer
** keeps one array per row, its output. At x = 0 the derivatives are
** those of TensorFlow's kernels (tensorflow/core/kernels/
** relu_op_functor.h, which Keras' TensorFlow backend runs): relu 0,
** leaky_relu 0.2, elu 1, selu scale (SeluGrad takes `scale` unless
** a < 0; scale alpha, the limit from the left, is what differentiating
** where(x > 0, x, alpha (exp(x) - 1)) would give instead).
**
** NaN propagates: a NaN in gives a NaN out, in the forward pass, in the
** backward pass (a NaN in A or in dA, relu included), and in the double
** reference. An act out of range makes the passes do nothing and the
** reference return NaN.
**
** The double versions are the reference the float passes are tested
** against, and what the plain-loop model (ae_net.h) uses.
*/
#ifndef AE_ACT_H
#define AE_ACT_H

#include <stddef.h>

typedef enum aesql_act {
  AESQL_ACT_LINEAR = 0,
  AESQL_ACT_RELU = 1,
  AESQL_ACT_LEAKY_RELU = 2,
  AESQL_ACT_ELU = 3,
  AESQL_ACT_SELU = 4,
  AESQL_ACT_TANH = 5,
  AESQL_ACT_SIGMOID = 6,
  AESQL_ACT_COUNT = 7
} aesql_act;

#define AESQL_LEAKY_SLOPE 0.2
#define AESQL_SELU_ALPHA  1.6732632423543772848170429916717
#define AESQL_SELU_SCALE  1.0507009873554804934193349852946

/* "relu", ...; NULL for a value out of range. */
const char *aesql_act_name(int act);
/* The activation named z (exactly as aesql_act_name spells it), or -1. */
int aesql_act_parse(const char *z);
/* "linear, relu, leaky_relu, elu, selu, tanh, sigmoid": for messages. */
const char *aesql_act_list(void);

/* a[0..n) = f(a[0..n)), in place. A NaN stays NaN. */
void aesql_act_forward(int act, float *a, size_t n);
/* Z (n x k, row-major) = f(Z + b), b (k) added to every row first: the
** bias and the activation of a dense layer in one sweep, the same bits
** as adding b and then calling aesql_act_forward(). b must not overlap
** Z. */
void aesql_act_bias_forward(int act, float *Z, const float *b, int n, int k);
/* dA (n x k) *= f'(x) where A = f(x) (same shape), in place; then gb (k)
** gets the column sums of the result, added to gb when `add`, else
** written. (The bias gradient of a dense layer.) gb may be NULL. The
** sums are in float, row after row, so rows split over calls (add = 1
** after the first) give the same bits as one call. dA, A and gb must not
** overlap. With n = 0, gb is zeroed (add = 0) or left as it is. */
void aesql_act_backward(int act, float *dA, const float *A, float *gb,
                        int n, int k, int add);

/* The reference, in double: f(x), and f'(x) at the input x (with the
** values above at x = 0). */
double aesql_act_f(int act, double x);
double aesql_act_df(int act, double x);

#endif /* AE_ACT_H */
