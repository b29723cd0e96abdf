/*
 * ad_grad.h: gradients, higher derivatives and gradient checking.
 *
 * Leaves are tensors that no recorded operation produced: tensors from the
 * creation functions, persistent tensors, and results computed while
 * recording was off. A leaf takes part in differentiation when its
 * requires-gradient flag is set.
 *
 * Every sweep is iterative over the tape, newest entry first, so its depth is
 * limited by memory only, never by the C stack.
 */
#ifndef AD_GRAD_H
#define AD_GRAD_H

#include "ad_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Flags on leaves --------------------------------------------------- */

/* Sets whether a leaf requires a gradient. Fails with AD_ERR_GRAPH on a
   recorded tensor (its flag follows from its inputs) and with AD_ERR_DTYPE on
   an int64 tensor. */
ad_status ad_set_requires_grad(ad_tensor *t, bool requires_grad);
bool ad_requires_grad(const ad_tensor *t);
/* True for a tensor that no recorded operation produced. */
bool ad_is_leaf(const ad_tensor *t);

/* The gradient that ad_backward accumulated into leaf t, or NULL before the
   first backward pass that reached it. The gradient of a persistent leaf is
   persistent; that of an arena leaf lives in the arena. */
ad_tensor *ad_grad(ad_tensor *t);

/* Sets the accumulated gradient of t to zero. The gradient is only marked:
   ad_grad(t) returns it zeroed, and the next backward pass overwrites it
   instead of adding, so this costs no pass over the memory. A data pointer
   taken from the gradient before this call still shows the old values. */
ad_status ad_zero_grad(ad_tensor *t);

/* ---- Backward --------------------------------------------------------- */

/* Sweeps the tape from output back to the leaves and adds d(output)/d(leaf)
   into the gradient of every leaf that requires one (see ad_grad). seed is
   the upstream gradient, of output's shape and dtype. It may be NULL only
   when output has one element, and then means a seed of 1.
   The tape is kept: a second call on the same output adds the same gradients
   again, so each leaf's gradient doubles. ad_ctx_reset() releases the tape.
   On failure no leaf gradient is changed. */
ad_status ad_backward(ad_ctx *ctx, ad_tensor *output, ad_tensor *seed);

/* Options of ad_grad. */
enum {
  /* Record the gradient computation itself, so the returned gradients can be
     differentiated again (second and higher derivatives). */
  AD_CREATE_GRAPH = 1u << 0
};

/* Computes the gradients of sum_i <seeds[i], outputs[i]> with respect to each
   of inputs[0..ninputs) and stores them in grads[0..ninputs), without
   touching any accumulated leaf gradient. seeds may be NULL, or contain NULL
   entries, for outputs with one element. An input that the outputs do not
   depend on gets a zero gradient. Inputs may be leaves or recorded tensors,
   and each must require a gradient (AD_ERR_GRAPH otherwise): operations on a
   tensor without the flag are not recorded. With AD_CREATE_GRAPH the
   gradients are themselves recorded. On failure every grads[i] is NULL. */
ad_status ad_gradients(ad_ctx *ctx, int noutputs, ad_tensor *const *outputs,
                     ad_tensor *const *seeds, int ninputs, ad_tensor *const *inputs,
                     ad_tensor **grads, unsigned flags);

/* A function of tensors for the helpers below. It builds its result from
   inputs with the operations of ad_ops.h and returns it, or NULL after
   recording an error. user is passed through unchanged. */
typedef ad_tensor *(*ad_function)(ad_ctx *ctx, ad_tensor *const *inputs, void *user);

/* The Jacobian of f at x: a tensor of shape f(x).shape + x.shape with
   J[i..., j...] = d f(x)[i...] / d x[j...]. One reverse sweep per output
   element, so meant for small functions. */
ad_tensor *ad_jacobian(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x);

/* The Hessian of a scalar-valued f at x: shape x.shape + x.shape. */
ad_tensor *ad_hessian(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x);

/* The Hessian-vector product H(x) v of a scalar-valued f, in two sweeps and
   without forming H. v has x's shape. */
ad_tensor *ad_hvp(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x, ad_tensor *v);

/* ---- Gradient checking ------------------------------------------------ */

typedef struct ad_gradcheck_options {
  double step;      /* central-difference step h; 0 picks 1e-6 for float64, 1e-3 for float32 */
  double atol;      /* 0 picks 1e-8 for float64, 1e-3 for float32 */
  double rtol;      /* 0 picks 1e-6 for float64, 1e-2 for float32 */
  uint64_t seed;    /* seeds the random projection of the second-order check */
} ad_gradcheck_options;

typedef struct ad_gradcheck_result {
  bool passed;         /* every element within atol + rtol * |numeric| */
  double max_abs_error;
  double max_rel_error; /* |analytic - numeric| / max(|numeric|, tiny) at the worst element */
  int input;           /* the input holding the worst element, or -1 */
  int64_t input_index; /* its flat index in that input */
  int64_t output_index; /* the flat index of the output element */
  double analytic;     /* reverse-mode value at the worst element */
  double numeric;      /* central-difference value at the worst element */
  int64_t evaluations; /* calls to f */
} ad_gradcheck_result;

/* Compares the full Jacobian of f at inputs, from reverse mode, with central
   differences (f(x + h) - f(x - h)) / 2h in the inputs' dtype. Every output
   element is compared for every input element, and result reports the worst.
   Inputs that do not require a gradient are held fixed. Returns AD_OK when
   the check ran, whether or not it passed, and result->passed is the
   verdict. The inputs' values are restored before returning. options may be
   NULL. */
ad_status ad_gradcheck(ad_ctx *ctx, ad_function f, void *user, int ninputs,
                       ad_tensor *const *inputs, const ad_gradcheck_options *options,
                       ad_gradcheck_result *result);

/* Checks second derivatives: applies ad_gradcheck to the function
   x -> d<f(x), u>/dx, computed with AD_CREATE_GRAPH, for a fixed random
   projection u. The result's indices refer to that gradient function. */
ad_status ad_gradgradcheck(ad_ctx *ctx, ad_function f, void *user, int ninputs,
                           ad_tensor *const *inputs, const ad_gradcheck_options *options,
                           ad_gradcheck_result *result);

/* ---- The operation table --------------------------------------------- */

/* The number of operation kinds the tape can record. */
int ad_op_count(void);
/* The name of operation kind op in [0, ad_op_count()), such as "mul", or NULL. */
const char *ad_op_name(int op);
/* The operation kind that produced t, or -1 for a leaf. */
int ad_tensor_op(const ad_tensor *t);
/* How many times this context ran the backward rule of operation kind op:
   the fused kernel (graph false) or the rule built from recorded operations
   (graph true). The test suite uses it to prove every rule is checked. */
uint64_t ad_backward_count(const ad_ctx *ctx, int op, bool graph);

#ifdef __cplusplus
}
#endif

#endif /* AD_GRAD_H */
