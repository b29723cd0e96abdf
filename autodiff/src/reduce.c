/*
 * reduce.c: reductions over chosen axes, arg-reductions, and summing a
 * broadcast gradient back to an input's shape.
 *
 * A reduction works on the keepdim layout: the output has the input's shape
 * with each reduced dimension set to 1, which is also the memory layout of
 * the result without keepdim. Accumulation is in double, in row-major order
 * of the input, so the result does not depend on the thread count.
 */
#include <math.h>

#include "iter.h"

typedef enum pass_kind {
  PASS_SUM,        /* acc += x */
  PASS_MAX,        /* acc = max(acc, x), NaN wins */
  PASS_MIN,
  PASS_SUM_EXP,    /* acc += exp(x - center) */
  PASS_SUM_SQ_DEV, /* acc += (x - center)^2 */
  PASS_SUM_SQ      /* acc += x^2 */
} pass_kind;

/* Strides, over the input's shape, of the keepdim layout of a reduction:
   0 along reduced dimensions. */
static void keep_strides(int ndim, const int64_t *shape, uint32_t mask, int64_t *strides) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    if (mask & (1u << d)) {
      strides[d] = 0;
    } else {
      strides[d] = s;
      s *= shape[d];
    }
  }
}

static inline double load_raw(ad_dtype dtype, const void *p, int64_t i) {
  return dtype == AD_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

/* One pass over the elements of (dtype, data, shape), combining each into
   acc at its keepdim position. center is read at the same position. */
static void reduce_pass(ad_dtype dtype, const void *data, int ndim, const int64_t *shape,
                        uint32_t mask, pass_kind kind, const double *center, double *acc) {
  int64_t own[AD_MAX_DIMS], keep[AD_MAX_DIMS];
  contiguous_strides(ndim, shape, own);
  keep_strides(ndim, shape, mask, keep);
  const int64_t *strides[2] = {own, keep};
  nd_iter it;
  iter_init(&it, ndim, shape, 2, NULL, NULL, strides);
  for (int64_t r = 0; r < it.outer; r++) {
    int64_t xi = it.offset[0], oi = it.offset[1];
    int64_t sx = it.inner_stride[0], so = it.inner_stride[1];
    for (int64_t i = 0; i < it.inner; i++) {
      double x = load_raw(dtype, data, xi + i * sx);
      double *a = &acc[oi + i * so];
      switch (kind) {
      case PASS_SUM: *a += x; break;
      case PASS_MAX:
        if (x > *a || isnan(x)) *a = isnan(*a) ? *a : x;
        break;
      case PASS_MIN:
        if (x < *a || isnan(x)) *a = isnan(*a) ? *a : x;
        break;
      case PASS_SUM_EXP: *a += exp(x - center[oi + i * so]); break;
      case PASS_SUM_SQ_DEV: {
        double dev = x - center[oi + i * so];
        *a += dev * dev;
        break;
      }
      case PASS_SUM_SQ: *a += x * x; break;
      }
    }
    iter_next(&it);
  }
}

static void fill_doubles(double *p, int64_t n, double v) {
  for (int64_t i = 0; i < n; i++) p[i] = v;
}

/* dst (+)= scale * acc over n elements of dtype. */
static void write_acc(ad_dtype dtype, void *dst, const double *acc, int64_t n, double scale,
                      bool fresh) {
  if (dtype == AD_F32) {
    float *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = (float)((fresh ? 0.0 : d[i]) + acc[i] * scale);
  } else {
    double *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = (fresh ? 0.0 : d[i]) + acc[i] * scale;
  }
}

ad_status sum_to_acc(ad_ctx *ctx, ad_dtype dtype, const void *g, int gndim, const int64_t *gshape,
                     void *dst, int dndim, const int64_t *dshape, bool fresh) {
  uint32_t mask = 0;
  int64_t count = 1;
  int lead = gndim - dndim;
  for (int d = 0; d < gndim; d++) {
    int j = d - lead;
    if (j < 0 || (dshape[j] == 1 && gshape[d] != 1)) mask |= 1u << d;
    else count *= gshape[d];
  }
  double *acc = arena_alloc(ctx, (size_t)count * sizeof(double), 64, "backward");
  if (!acc) return ctx->error;
  fill_doubles(acc, count, 0);
  reduce_pass(dtype, g, gndim, gshape, mask, PASS_SUM, NULL, acc);
  write_acc(dtype, dst, acc, count, 1, fresh);
  return AD_OK;
}

/* ---- Forward -------------------------------------------------------- */

/* Converts (naxes, axes) to a mask of dimensions of a tensor of ndim
   dimensions; 0 axes means all. Returns false after recording an error. */
static bool axes_to_mask(ad_ctx *ctx, const char *name, int naxes, const int *axes, int ndim,
                         uint32_t *mask) {
  if (naxes < 0 || naxes > AD_MAX_DIMS || (naxes > 0 && !axes)) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: %d axes given with %s list; pass 0 to %d axes", name, naxes,
         axes ? "a" : "a NULL", AD_MAX_DIMS);
    return false;
  }
  if (naxes == 0) {
    *mask = ndim ? (uint32_t)((1u << ndim) - 1) : 0;
    return true;
  }
  uint32_t m = 0;
  for (int i = 0; i < naxes; i++) {
    int a = normalize_axis(ctx, name, axes[i], ndim);
    if (a < 0) return false;
    if (m & (1u << a)) {
      fail(ctx, AD_ERR_AXIS, "%s: axis %d is listed twice; list each axis once", name, axes[i]);
      return false;
    }
    m |= 1u << a;
  }
  *mask = m;
  return true;
}

/* The result shape of a reduction and the number of reduced elements. */
static int reduced_shape(const ad_tensor *a, uint32_t mask, bool keepdim, int64_t *shape,
                         int64_t *count) {
  int n = 0;
  *count = 1;
  for (int d = 0; d < a->ndim; d++) {
    if (mask & (1u << d)) {
      *count *= a->shape[d];
      if (keepdim) shape[n++] = 1;
    } else {
      shape[n++] = a->shape[d];
    }
  }
  return n;
}

static void keepdim_shape(const ad_tensor *a, uint32_t mask, int64_t *shape) {
  for (int d = 0; d < a->ndim; d++) shape[d] = (mask & (1u << d)) ? 1 : a->shape[d];
}

/* The divisor n - correction of the variance, clamped at 0 as PyTorch
   does, so that a correction above n gives inf (or NaN), not a negative
   variance. */
static double var_divisor(int64_t count, int correction) {
  return count > correction ? (double)(count - correction) : 0.0;
}

/* Runs the forward computation of reduction op into y's data. */
static ad_status reduce_compute(ad_ctx *ctx, op_kind op, const ad_tensor *a, uint32_t mask,
                                int64_t count, int correction, ad_tensor *y) {
  ad_dtype dtype = (ad_dtype)a->dtype;
  int64_t n = y->numel;
  double *acc = arena_alloc(ctx, (size_t)(n ? n : 1) * sizeof(double), 64, "reduction");
  double *center = arena_alloc(ctx, (size_t)(n ? n : 1) * sizeof(double), 64, "reduction");
  if (!acc || !center) return ctx->error;
  switch (op) {
  case OP_SUM:
  case OP_MEAN:
    fill_doubles(acc, n, 0);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM, NULL, acc);
    write_acc(dtype, y->data, acc, n, op == OP_MEAN ? 1.0 / (double)count : 1, true);
    break;
  case OP_MAX:
  case OP_MIN:
    fill_doubles(acc, n, op == OP_MAX ? -INFINITY : INFINITY);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, op == OP_MAX ? PASS_MAX : PASS_MIN, NULL,
                acc);
    write_acc(dtype, y->data, acc, n, 1, true);
    break;
  case OP_LOGSUMEXP:
    fill_doubles(center, n, -INFINITY);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_MAX, NULL, center);
    /* An infinite maximum would give inf - inf; shift by 0 instead. */
    for (int64_t i = 0; i < n; i++)
      if (isinf(center[i])) center[i] = 0;
    fill_doubles(acc, n, 0);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM_EXP, center, acc);
    for (int64_t i = 0; i < n; i++) acc[i] = center[i] + log(acc[i]);
    write_acc(dtype, y->data, acc, n, 1, true);
    break;
  case OP_VAR:
    fill_doubles(center, n, 0);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM, NULL, center);
    for (int64_t i = 0; i < n; i++) center[i] /= (double)count;
    fill_doubles(acc, n, 0);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM_SQ_DEV, center, acc);
    write_acc(dtype, y->data, acc, n, 1.0 / var_divisor(count, correction), true);
    break;
  case OP_NORM:
    fill_doubles(acc, n, 0);
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM_SQ, NULL, acc);
    for (int64_t i = 0; i < n; i++) acc[i] = sqrt(acc[i]);
    write_acc(dtype, y->data, acc, n, 1, true);
    break;
  default: return fail(ctx, AD_ERR_NOT_IMPLEMENTED, "reduction: unknown kind %d", (int)op);
  }
  return AD_OK;
}

ad_tensor *reduce_mask(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a, uint32_t mask,
                       bool keepdim, int correction) {
  int64_t shape[AD_MAX_DIMS], count;
  int ndim = reduced_shape(a, mask, keepdim, shape, &count);
  if (count == 0 && (op == OP_MAX || op == OP_MIN)) {
    fail(ctx, AD_ERR_SHAPE,
         "%s: cannot take the maximum or minimum over zero elements (input shape %s); reduce "
         "over non-empty dimensions",
         name, tshape(a).s);
    return NULL;
  }
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, ndim, shape);
  if (!y) return NULL;
  y->p.r.axes_mask = mask;
  y->p.r.keepdim = keepdim;
  y->p.r.correction = correction;
  if (reduce_compute(ctx, op, a, mask, count, correction, y) != AD_OK) return NULL;
  return maybe_record(ctx, y, op, a, NULL, NULL);
}

static ad_tensor *reduce_op(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a, int naxes,
                            const int *axes, bool keepdim, int correction) {
  if (!ctx || !check_arg(ctx, name, "a", a, true)) return NULL;
  uint32_t mask;
  if (!axes_to_mask(ctx, name, naxes, axes, a->ndim, &mask)) return NULL;
  return reduce_mask(ctx, name, op, a, mask, keepdim, correction);
}

ad_tensor *ad_sum(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_sum", OP_SUM, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_mean(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_mean", OP_MEAN, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_max(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_max", OP_MAX, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_min(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_min", OP_MIN, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_logsumexp(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_logsumexp", OP_LOGSUMEXP, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_norm(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, bool keepdim) {
  return reduce_op(ctx, "ad_norm", OP_NORM, a, naxes, axes, keepdim, 0);
}
ad_tensor *ad_var(ad_ctx *ctx, ad_tensor *a, int naxes, const int *axes, int correction,
                  bool keepdim) {
  if (ctx && correction < 0) {
    fail(ctx, AD_ERR_ARGUMENT, "ad_var: correction %d is negative; pass 0 or 1", correction);
    return NULL;
  }
  return reduce_op(ctx, "ad_var", OP_VAR, a, naxes, axes, keepdim, correction);
}
ad_tensor *ad_sum_all(ad_ctx *ctx, ad_tensor *a) { return ad_sum(ctx, a, 0, NULL, false); }
ad_tensor *ad_mean_all(ad_ctx *ctx, ad_tensor *a) { return ad_mean(ctx, a, 0, NULL, false); }

/* ---- argmax and argmin ------------------------------------------------ */

static ad_tensor *arg_reduce(ad_ctx *ctx, const char *name, ad_tensor *a, int axis, bool keepdim,
                             bool is_max) {
  if (!ctx || !check_arg(ctx, name, "a", a, true)) return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  if (a->shape[ax] == 0) {
    fail(ctx, AD_ERR_SHAPE, "%s: axis %d of shape %s is empty, so it has no %s", name, axis,
         tshape(a).s, is_max ? "maximum" : "minimum");
    return NULL;
  }
  int64_t shape[AD_MAX_DIMS], count;
  int ndim = reduced_shape(a, 1u << ax, keepdim, shape, &count);
  ad_tensor *y = tensor_new(ctx, name, AD_I64, ndim, shape);
  if (!y) return NULL;
  int64_t outer = 1, inner = 1, len = a->shape[ax];
  for (int d = 0; d < ax; d++) outer *= a->shape[d];
  for (int d = ax + 1; d < a->ndim; d++) inner *= a->shape[d];
  int64_t *out = y->data;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * len * inner + i, best = 0;
      double bv = load(a, base);
      for (int64_t k = 1; k < len && !isnan(bv); k++) {
        double v = load(a, base + k * inner);
        if (isnan(v) || (is_max ? v > bv : v < bv)) {
          bv = v;
          best = k;
        }
      }
      out[o * inner + i] = best;
    }
  }
  return y;
}

ad_tensor *ad_argmax(ad_ctx *ctx, ad_tensor *a, int axis, bool keepdim) {
  return arg_reduce(ctx, "ad_argmax", a, axis, keepdim, true);
}
ad_tensor *ad_argmin(ad_ctx *ctx, ad_tensor *a, int axis, bool keepdim) {
  return arg_reduce(ctx, "ad_argmin", a, axis, keepdim, false);
}

/* ---- Backward ------------------------------------------------------- */

/* Number of reduced elements of entry y. */
static int64_t reduced_count(const ad_tensor *y) {
  const ad_tensor *a = y->in[0];
  int64_t count = 1;
  for (int d = 0; d < a->ndim; d++)
    if (y->p.r.axes_mask & (1u << d)) count *= a->shape[d];
  return count;
}

ad_status reduce_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *a = y->in[0];
  op_kind op = (op_kind)y->op;
  uint32_t mask = y->p.r.axes_mask;
  ad_dtype dtype = (ad_dtype)a->dtype;
  int64_t count = reduced_count(y);
  bool fresh = args->fresh[0];

  /* Per output position: the mean (var), or the number of tied extrema. */
  double *aux = NULL;
  if (op == OP_VAR || op == OP_MAX || op == OP_MIN) {
    aux = arena_alloc(ctx, (size_t)(y->numel ? y->numel : 1) * sizeof(double), 64, "backward");
    if (!aux) return ctx->error;
    fill_doubles(aux, y->numel, 0);
  }
  int64_t own[AD_MAX_DIMS], keep[AD_MAX_DIMS];
  contiguous_strides(a->ndim, a->shape, own);
  keep_strides(a->ndim, a->shape, mask, keep);
  const int64_t *strides[2] = {own, keep};
  if (op == OP_VAR) {
    reduce_pass(dtype, a->data, a->ndim, a->shape, mask, PASS_SUM, NULL, aux);
    for (int64_t i = 0; i < y->numel; i++) aux[i] /= (double)count;
  }
  if (op == OP_MAX || op == OP_MIN) {
    nd_iter it;
    iter_init(&it, a->ndim, a->shape, 2, NULL, NULL, strides);
    for (int64_t r = 0; r < it.outer; r++) {
      for (int64_t i = 0; i < it.inner; i++) {
        int64_t o = it.offset[1] + i * it.inner_stride[1];
        double x = load(a, it.offset[0] + i * it.inner_stride[0]), m = load(y, o);
        if (x == m || (isnan(x) && isnan(m))) aux[o] += 1;
      }
      iter_next(&it);
    }
  }
  nd_iter it;
  iter_init(&it, a->ndim, a->shape, 2, NULL, NULL, strides);
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++) {
      int64_t xi = it.offset[0] + i * it.inner_stride[0];
      int64_t o = it.offset[1] + i * it.inner_stride[1];
      double g = load_raw(dtype, args->gout, o);
      double x = load(a, xi), yv = load(y, o), d;
      switch (op) {
      case OP_SUM: d = 1; break;
      case OP_MEAN: d = 1.0 / (double)count; break;
      case OP_MAX:
      case OP_MIN: d = (x == yv || (isnan(x) && isnan(yv))) ? 1 / aux[o] : 0; break;
      case OP_LOGSUMEXP: d = exp(x - yv); break;
      case OP_VAR: d = 2 * (x - aux[o]) / var_divisor(count, y->p.r.correction); break;
      case OP_NORM: d = yv == 0 ? 0 : x / yv; break;
      default: d = NAN; break;
      }
      double v = g == 0 ? 0 : g * d;
      if (dtype == AD_F32) {
        float *p = (float *)args->gin[0] + xi;
        *p = (float)((fresh ? 0.0 : *p) + v);
      } else {
        double *p = (double *)args->gin[0] + xi;
        *p = (fresh ? 0.0 : *p) + v;
      }
    }
    iter_next(&it);
  }
  return AD_OK;
}

ad_status reduce_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                ad_tensor **gin) {
  if (!need[0]) return AD_OK;
  ad_tensor *a = y->in[0];
  uint32_t mask = y->p.r.axes_mask;
  int64_t keep[AD_MAX_DIMS];
  keepdim_shape(a, mask, keep);
  int64_t count = reduced_count(y);
  ad_tensor *gk = ad_reshape(ctx, g, a->ndim, keep);
  ad_tensor *yk = ad_reshape(ctx, y, a->ndim, keep);
  ad_tensor *zero = const_like(ctx, a, 0);
  ad_tensor *d = NULL;
  switch ((op_kind)y->op) {
  case OP_SUM: gin[0] = ad_expand(ctx, gk, a->ndim, a->shape); break;
  case OP_MEAN:
    gin[0] = ad_expand(ctx, ad_mul_scalar(ctx, gk, 1.0 / (double)count), a->ndim, a->shape);
    break;
  case OP_MAX:
  case OP_MIN: {
    /* Tied extrema share the gradient: d = tie mask / number of ties. A NaN
       extremum ties with the NaN elements, as in the fused kernel, although
       NaN == NaN is false. */
    ad_tensor *nan_ties = ad_mul(ctx, ad_ne(ctx, a, a), ad_ne(ctx, yk, yk));
    ad_tensor *ties = ad_add(ctx, ad_eq(ctx, a, yk), nan_ties);
    if (ties) d = ad_div(ctx, ties, reduce_mask(ctx, "backward", OP_SUM, ties, mask, true, 0));
    break;
  }
  case OP_LOGSUMEXP: d = ad_exp(ctx, ad_sub(ctx, a, yk)); break;
  case OP_VAR: {
    ad_tensor *mean = reduce_mask(ctx, "backward", OP_MEAN, a, mask, true, 0);
    d = ad_mul_scalar(ctx, ad_sub(ctx, a, mean), 2.0 / var_divisor(count, y->p.r.correction));
    break;
  }
  case OP_NORM: d = ad_where(ctx, ad_eq(ctx, yk, zero), zero, ad_div(ctx, a, yk)); break;
  default: return fail(ctx, AD_ERR_NOT_IMPLEMENTED, "reduction backward: unknown kind");
  }
  if (d) gin[0] = gmul(ctx, ad_expand(ctx, gk, a->ndim, a->shape), d);
  return gin[0] ? AD_OK : (ctx->error ? ctx->error : AD_ERR_MEMORY);
}
