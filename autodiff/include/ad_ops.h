/*
 * ad_ops.h: differentiable operations.
 *
 * Every operation takes the context first, returns a new arena tensor, and
 * returns NULL with the error recorded on failure (see ad_core.h). A NULL
 * input makes it return NULL and keeps the error that produced the NULL.
 *
 * Recording. When recording is enabled (ad_set_grad_enabled) and an input
 * requires a gradient, the result requires one too and the operation is
 * recorded on the context's tape with its inputs. Inputs must not change
 * afterwards while the tape is still needed (see ad_data_f32_mut).
 *
 * Dtypes. Floating-point inputs of one operation must have the same dtype;
 * convert with ad_cast. int64 tensors are accepted only where an index or a
 * class label is expected.
 *
 * Broadcasting. Elementwise operations broadcast with NumPy's rules: shapes
 * are aligned at their last dimension, and each pair of dimensions must be
 * equal or contain a 1. The gradient of a broadcast input is summed over the
 * broadcast dimensions.
 *
 * Axes. Negative axes count from the end: -1 is the last dimension.
 *
 * Derivatives at points where none exists follow PyTorch:
 *   relu'(0) = 0, abs'(0) = 0 (sign(0) = 0), leaky_relu'(0) = slope;
 *   clamp passes the gradient where low <= x <= high, bounds included;
 *   sqrt'(0) = +inf and cbrt'(0) = +inf;
 *   ad_minimum/ad_maximum give half the gradient to each input when they tie;
 *   max and min reductions share the gradient equally among tied maxima,
 *   and a NaN result shares it among the NaN elements;
 *   the gradient of ad_norm at 0 is 0, and so is that of ad_hypot at (0, 0);
 *   pow(x, p) with p == 0 has gradient 0 for x, and the gradient of pow(a, b)
 *   with respect to b is 0 where a == 0 and b >= 0.
 * In elementwise operations, reductions and losses, a zero upstream gradient
 * element yields a zero contribution even where the local derivative is inf
 * or NaN, so the branch that ad_where did not select never sends inf or NaN
 * into the gradient. Operations that mix elements (matrix products, softmax,
 * log_softmax) sum their products as usual, so there 0 times an infinite
 * entry of the other operand is NaN, as in the BLAS and in PyTorch.
 */
#ifndef AD_OPS_H
#define AD_OPS_H

#include "ad_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Arithmetic (broadcasting) ---------------------------------------- */

ad_tensor *ad_add(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_sub(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_mul(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* a / b with IEEE results: x / 0 is inf or NaN. */
ad_tensor *ad_div(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* a ** b elementwise; d/da = b a^(b-1), d/db = a^b log(a). */
ad_tensor *ad_pow(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_minimum(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_maximum(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* atan2(y, x) as in <math.h>. */
ad_tensor *ad_atan2(ad_ctx *ctx, ad_tensor *y, ad_tensor *x);
/* sqrt(a^2 + b^2) without overflow, as in <math.h>. */
ad_tensor *ad_hypot(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);

/* Operations with a constant. */
ad_tensor *ad_add_scalar(ad_ctx *ctx, ad_tensor *a, double value);
ad_tensor *ad_mul_scalar(ad_ctx *ctx, ad_tensor *a, double value);
/* a ** exponent. */
ad_tensor *ad_pow_scalar(ad_ctx *ctx, ad_tensor *a, double exponent);

/* ---- Elementwise functions ------------------------------------------ */

ad_tensor *ad_neg(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_abs(ad_ctx *ctx, ad_tensor *a);
/* -1, 0 or 1; its gradient is 0 everywhere. */
ad_tensor *ad_sign(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_sqrt(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_cbrt(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_exp(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_exp2(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_expm1(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_log(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_log2(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_log10(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_log1p(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_sin(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_cos(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_tan(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_asin(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_acos(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_atan(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_sinh(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_cosh(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_tanh(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_erf(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_erfc(ad_ctx *ctx, ad_tensor *a);
/* 1 / (1 + exp(-a)), computed without overflow. */
ad_tensor *ad_sigmoid(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_relu(ad_ctx *ctx, ad_tensor *a);
/* a where a > 0, else slope * a. */
ad_tensor *ad_leaky_relu(ad_ctx *ctx, ad_tensor *a, double slope);
/* a where a > 0, else alpha * (exp(a) - 1). */
ad_tensor *ad_elu(ad_ctx *ctx, ad_tensor *a, double alpha);
/* a * Phi(a) with the exact normal CDF Phi (PyTorch's default GELU). */
ad_tensor *ad_gelu(ad_ctx *ctx, ad_tensor *a);
/* log(1 + exp(a)), computed without overflow; its derivative is sigmoid(a). */
ad_tensor *ad_softplus(ad_ctx *ctx, ad_tensor *a);
/* min(max(a, low), high); requires low <= high. Pass -INFINITY or INFINITY
   for a one-sided clamp. */
ad_tensor *ad_clamp(ad_ctx *ctx, ad_tensor *a, double low, double high);

/* ---- Masks and selection --------------------------------------------- */
/*
 * Comparisons broadcast and return a mask of 1 and 0 in the dtype of a.
 * Masks never require a gradient.
 */
ad_tensor *ad_eq(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_ne(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_lt(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_le(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_gt(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
ad_tensor *ad_ge(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);

/* a where mask is nonzero, else b; the three broadcast together. The
   gradient reaches only the selected input of each element. */
ad_tensor *ad_where(ad_ctx *ctx, ad_tensor *mask, ad_tensor *a, ad_tensor *b);

/* ---- Reductions ------------------------------------------------------ */
/*
 * Reductions take (naxes, axes): naxes == 0 reduces over every dimension.
 * Axes must be distinct. With keepdim the reduced dimensions stay with size
 * 1, otherwise they are removed. Sums of float32 tensors accumulate in double
 * in a fixed order, so results do not depend on the thread count.
 */

ad_tensor *ad_sum(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);
ad_tensor *ad_mean(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);
ad_tensor *ad_max(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);
ad_tensor *ad_min(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);
/* log(sum(exp(a))) computed as m + log(sum(exp(a - m))) with m the maximum,
   so it neither overflows nor underflows. */
ad_tensor *ad_logsumexp(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);
/* sum((a - mean)^2) / max(n - correction, 0); correction 1 gives the
   unbiased sample variance, 0 the population variance. A correction of n or
   more gives inf (NaN where all elements are equal), as in PyTorch. */
ad_tensor *ad_var(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, int correction,
                  bool keepdim);
/* The Euclidean norm sqrt(sum(a^2)). */
ad_tensor *ad_norm(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim);

/* Shorthands for the sum and mean of every element, as 0-d tensors. */
ad_tensor *ad_sum_all(ad_ctx *ctx, ad_tensor *a);
ad_tensor *ad_mean_all(ad_ctx *ctx, ad_tensor *a);

/* The int64 index of the first maximum (minimum) along axis. A NaN wins in
   both: the index of the first NaN is returned, as in NumPy. Not
   differentiable. */
ad_tensor *ad_argmax(ad_ctx *ctx, ad_tensor *a, int axis, bool keepdim);
ad_tensor *ad_argmin(ad_ctx *ctx, ad_tensor *a, int axis, bool keepdim);

/* ---- Linear algebra -------------------------------------------------- */

/* The matrix product with NumPy's rules: 1-d by 1-d is a dot product (0-d);
   a 1-d left operand is a row vector and a 1-d right operand a column vector,
   their added dimension removed from the result; operands of 3 or more
   dimensions are stacks of matrices whose batch dimensions broadcast. */
ad_tensor *ad_matmul(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* The dot product of two 1-d tensors of equal length, as a 0-d tensor. */
ad_tensor *ad_dot(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* The outer product of two 1-d tensors: [n] and [m] give [n, m]. */
ad_tensor *ad_outer(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
/* x w^T + b for x [..., in], w [out, in] and b [out] (b may be NULL): a
   fully connected layer, with the bias added inside the matrix product. */
ad_tensor *ad_linear(ad_ctx *ctx, ad_tensor *x, ad_tensor *w, ad_tensor *b);

/* ---- Shape ------------------------------------------------------------ */

/* The same elements in a new shape; one dimension may be -1 and is then
   inferred. The result shares storage with a. */
ad_tensor *ad_reshape(ad_ctx *ctx, ad_tensor *a, int ndim, const int64_t *shape);
/* Swaps two axes (copies). */
ad_tensor *ad_transpose(ad_ctx *ctx, ad_tensor *a, int axis0, int axis1);
/* Reorders the axes: dimension i of the result is dimension perm[i] of a. */
ad_tensor *ad_permute(ad_ctx *ctx, ad_tensor *a, const int *perm);
/* Broadcasts a to shape (NumPy's broadcast_to). */
ad_tensor *ad_expand(ad_ctx *ctx, ad_tensor *a, int ndim, const int64_t *shape);
/* Removes axis, which must have size 1. Shares storage with a. */
ad_tensor *ad_squeeze(ad_ctx *ctx, ad_tensor *a, int axis);
/* Inserts a dimension of size 1 before position axis, -ndim-1 <= axis <= ndim.
   Shares storage with a. */
ad_tensor *ad_unsqueeze(ad_ctx *ctx, ad_tensor *a, int axis);
/* Elements start, start + step, ... before stop along axis, with Python's
   rules: negative start and stop count from the end and are then clamped to
   [0, dim]. step must be positive. */
ad_tensor *ad_slice(ad_ctx *ctx, ad_tensor *a, int axis, int64_t start, int64_t stop,
                    int64_t step);
/* The entries of a at the int64 indices (1-d) along axis, in that order,
   repetitions allowed. Negative indices count from the end. */
ad_tensor *ad_index_select(ad_ctx *ctx, ad_tensor *a, int axis, ad_tensor *indices);
/* out[i][j][k] = a[index[i][j][k]][j][k] for axis 0, and likewise for other
   axes (PyTorch's gather): index is int64, has a's ndim, and each of its
   dimensions other than axis is at most a's. */
ad_tensor *ad_gather(ad_ctx *ctx, ad_tensor *a, int axis, ad_tensor *index);
/* Joins count tensors along an existing axis; the other dimensions must match. */
ad_tensor *ad_concat(ad_ctx *ctx, int count, ad_tensor *const *tensors, int axis);
/* Joins count tensors of one shape along a new axis. */
ad_tensor *ad_stack(ad_ctx *ctx, int count, ad_tensor *const *tensors, int axis);
/* The int64 indices as rows of a one-hot encoding: the result has shape
   indices.shape + [classes] and dtype dtype. Not differentiable. */
ad_tensor *ad_one_hot(ad_ctx *ctx, ad_tensor *indices, int64_t classes, ad_dtype dtype);

/* ---- Copies and conversions ----------------------------------------- */

/* A copy that stays on the tape (gradient passes through unchanged). */
ad_tensor *ad_clone(ad_ctx *ctx, ad_tensor *a);
/* The values of a as a leaf that does not require a gradient; shares storage. */
ad_tensor *ad_detach(ad_ctx *ctx, ad_tensor *a);
/* a converted to dtype. Between float32 and float64 the gradient is
   converted back; conversions to or from int64 are not recorded. Float to
   int64 truncates toward zero and rejects NaN, inf and out-of-range values. */
ad_tensor *ad_cast(ad_ctx *ctx, ad_tensor *a, ad_dtype dtype);

/* ---- Network functions ---------------------------------------------- */

typedef enum ad_reduction {
  AD_REDUCE_MEAN = 0, /* the mean over the elements (over the batch for cross-entropy) */
  AD_REDUCE_SUM = 1,
  AD_REDUCE_NONE = 2 /* one loss per element (per sample for cross-entropy) */
} ad_reduction;

/* exp(a - max) / sum(exp(a - max)) along axis. */
ad_tensor *ad_softmax(ad_ctx *ctx, ad_tensor *a, int axis);
/* a - logsumexp(a) along axis; finite for logits as large as 1e4. */
ad_tensor *ad_log_softmax(ad_ctx *ctx, ad_tensor *a, int axis);
/* Cross-entropy of logits [N, C] (or [C], or [N, C, d1, ...]) against int64
   class indices [N] (or [], or [N, d1, ...]): -log_softmax(logits)[target].
   Every target must be in [0, C). */
ad_tensor *ad_cross_entropy(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                            ad_reduction reduction);
/* Binary cross-entropy of logits x against targets t in [0, 1] of the same
   shape: max(x, 0) - x t + log(1 + exp(-|x|)). */
ad_tensor *ad_bce_with_logits(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                              ad_reduction reduction);
/* (prediction - target)^2; with AD_REDUCE_MEAN its gradient with respect to
   the prediction is 2 (prediction - target) / n. Shapes must be equal. */
ad_tensor *ad_mse(ad_ctx *ctx, ad_tensor *prediction, ad_tensor *target, ad_reduction reduction);

#ifdef __cplusplus
}
#endif

#endif /* AD_OPS_H */
