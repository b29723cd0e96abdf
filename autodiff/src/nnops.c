/*
 * nnops.c: softmax, log-softmax and the losses, which are operations of
 * their own because their stable formulas and fused gradients matter.
 *
 * Backward rules, with g the upstream gradient and s = softmax(x):
 *   softmax:        dx = s * (g - sum(g * s))
 *   log_softmax:    dx = g - s * sum(g)
 *   cross-entropy:  dx = g * (s - onehot(target)), over the batch for mean
 *   BCE with logits: dx = g * (sigmoid(x) - t), dt = -g * x
 *   MSE:            dp = 2 g (p - t), dt = -dp
 * each scaled by 1 / count for AD_REDUCE_MEAN.
 */
#include <math.h>

#include "internal.h"

/* The extent of axis and the products of the dimensions before and after it. */
static void split_axis(const ad_tensor *t, int axis, int64_t *outer, int64_t *len,
                       int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int d = 0; d < axis; d++) *outer *= t->shape[d];
  for (int d = axis + 1; d < t->ndim; d++) *inner *= t->shape[d];
  *len = t->shape[axis];
}

/* The log-sum-exp of the len values x[0], x[stride], ..., shifted by their
   maximum so that it neither overflows nor underflows. */
static double lse_line(const ad_tensor *t, int64_t base, int64_t len, int64_t stride) {
  double m = -INFINITY;
  for (int64_t k = 0; k < len; k++) {
    double v = load(t, base + k * stride);
    if (v > m || isnan(v)) m = v;
  }
  if (isnan(m)) return m;
  if (isinf(m)) return m; /* all -inf gives -inf; any +inf gives +inf */
  double s = 0;
  for (int64_t k = 0; k < len; k++) s += exp(load(t, base + k * stride) - m);
  return m + log(s);
}

static ad_tensor *softmax_like(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a, int axis) {
  if (!ctx || !check_arg(ctx, name, "a", a, true)) return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  ad_tensor *y = tensor_like(ctx, name, a);
  if (!y) return NULL;
  int64_t outer, len, inner;
  split_axis(a, ax, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * len * inner + i;
      double lse = lse_line(a, base, len, inner);
      for (int64_t k = 0; k < len; k++) {
        double v = load(a, base + k * inner) - lse;
        store(y, base + k * inner, op == OP_SOFTMAX ? exp(v) : v);
      }
    }
  }
  y->p.loss.axis = ax;
  return maybe_record(ctx, y, op, a, NULL, NULL);
}

ad_tensor *ad_softmax(ad_ctx *ctx, ad_tensor *a, int axis) {
  return softmax_like(ctx, "ad_softmax", OP_SOFTMAX, a, axis);
}

ad_tensor *ad_log_softmax(ad_ctx *ctx, ad_tensor *a, int axis) {
  return softmax_like(ctx, "ad_log_softmax", OP_LOG_SOFTMAX, a, axis);
}

static bool check_reduction(ad_ctx *ctx, const char *name, ad_reduction r) {
  if (r == AD_REDUCE_MEAN || r == AD_REDUCE_SUM || r == AD_REDUCE_NONE) return true;
  fail(ctx, AD_ERR_ARGUMENT,
       "%s: reduction %d is not AD_REDUCE_MEAN, AD_REDUCE_SUM or AD_REDUCE_NONE", name, (int)r);
  return false;
}

/* Reduces the per-element losses (double, count of them, shape of the
   unreduced loss) into a new tensor. */
static ad_tensor *finish_loss(ad_ctx *ctx, const char *name, ad_dtype dtype, const double *loss,
                              int ndim, const int64_t *shape, int64_t count, ad_reduction r) {
  if (r == AD_REDUCE_NONE) {
    ad_tensor *y = tensor_new(ctx, name, dtype, ndim, shape);
    if (y)
      for (int64_t i = 0; i < count; i++) store(y, i, loss[i]);
    return y;
  }
  double s = 0;
  for (int64_t i = 0; i < count; i++) s += loss[i];
  if (r == AD_REDUCE_MEAN) s /= (double)count;
  ad_tensor *y = tensor_new(ctx, name, dtype, 0, NULL);
  if (y) store(y, 0, s);
  return y;
}

/* The gradient factor of loss element i: g, or g[i] for AD_REDUCE_NONE,
   times 1 / count for AD_REDUCE_MEAN. */
static double loss_grad(const ad_tensor *y, const void *g, int64_t i, int64_t count) {
  ad_reduction r = (ad_reduction)y->p.loss.reduction;
  int64_t at = r == AD_REDUCE_NONE ? i : 0;
  double v = y->dtype == AD_F32 ? ((const float *)g)[at] : ((const double *)g)[at];
  return r == AD_REDUCE_MEAN ? v / (double)count : v;
}

/* ---- cross-entropy -------------------------------------------------- */

ad_tensor *ad_cross_entropy(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                            ad_reduction reduction) {
  const char *name = "ad_cross_entropy";
  if (!ctx || !check_arg(ctx, name, "logits", logits, true) ||
      !check_arg(ctx, name, "target", target, false) || !check_reduction(ctx, name, reduction))
    return NULL;
  if (target->dtype != AD_I64) {
    fail(ctx, AD_ERR_DTYPE, "%s: target has dtype %s; class indices must be int64 (for class "
         "probabilities use ad_log_softmax and a product)", name,
         ad_dtype_name((ad_dtype)target->dtype));
    return NULL;
  }
  int ax = logits->ndim >= 2 ? 1 : 0;
  bool ok = logits->ndim >= 1 && target->ndim == logits->ndim - 1;
  for (int d = 0, j = 0; ok && d < logits->ndim; d++) {
    if (d == ax) continue;
    if (target->shape[j++] != logits->shape[d]) ok = false;
  }
  if (!ok) {
    fail(ctx, AD_ERR_SHAPE, "%s: logits of shape %s need a target of shape %s without the class "
         "dimension, got %s", name, tshape(logits).s,
         logits->ndim >= 2 ? "[N, d1, ...]" : "[]", tshape(target).s);
    return NULL;
  }
  int64_t outer, classes, inner;
  split_axis(logits, ax, &outer, &classes, &inner);
  int64_t count = outer * inner;
  const int64_t *t = target->data;
  for (int64_t i = 0; i < count; i++) {
    if (t[i] < 0 || t[i] >= classes) {
      fail(ctx, AD_ERR_INDEX, "%s: target %lld at position %lld is not a class index in [0, %lld)",
           name, (long long)t[i], (long long)i, (long long)classes);
      return NULL;
    }
  }
  double *lse = arena_alloc(ctx, (size_t)(count ? count : 1) * sizeof(double), 64, name);
  double *loss = arena_alloc(ctx, (size_t)(count ? count : 1) * sizeof(double), 64, name);
  if (!lse || !loss) return NULL;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t s = o * inner + i, base = o * classes * inner + i;
      lse[s] = lse_line(logits, base, classes, inner);
      loss[s] = lse[s] - load(logits, base + t[s] * inner);
    }
  }
  ad_tensor *y = finish_loss(ctx, name, (ad_dtype)logits->dtype, loss, target->ndim,
                             target->shape, count, reduction);
  if (!y) return NULL;
  y->p.loss.lse = lse;
  y->p.loss.axis = ax;
  y->p.loss.reduction = (uint8_t)reduction;
  if (should_record(ctx, logits, NULL, NULL)) record(ctx, y, OP_CROSS_ENTROPY, logits, target, NULL);
  return y;
}

/* ---- binary cross-entropy and MSE ----------------------------------- */

static bool check_pair(ad_ctx *ctx, const char *name, const ad_tensor *a, const char *aname,
                       const ad_tensor *b, const char *bname) {
  if (!check_arg(ctx, name, aname, a, true) || !check_arg(ctx, name, bname, b, true) ||
      !check_same_dtype(ctx, name, a, b))
    return false;
  if (a->ndim != b->ndim || memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int64_t)) != 0) {
    fail(ctx, AD_ERR_SHAPE, "%s: %s has shape %s and %s has shape %s; they must be equal", name,
         aname, tshape(a).s, bname, tshape(b).s);
    return false;
  }
  return true;
}

static ad_tensor *pointwise_loss(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a,
                                 ad_tensor *b, ad_reduction reduction) {
  int64_t n = a->numel;
  double *loss = arena_alloc(ctx, (size_t)(n ? n : 1) * sizeof(double), 64, name);
  if (!loss) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double x = load(a, i), t = load(b, i);
    if (op == OP_MSE) loss[i] = (x - t) * (x - t);
    else loss[i] = (x > 0 ? x : 0) - x * t + log1p(exp(-fabs(x)));
  }
  ad_tensor *y = finish_loss(ctx, name, (ad_dtype)a->dtype, loss, a->ndim, a->shape, n, reduction);
  if (!y) return NULL;
  y->p.loss.reduction = (uint8_t)reduction;
  return maybe_record(ctx, y, op, a, b, NULL);
}

ad_tensor *ad_bce_with_logits(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                              ad_reduction reduction) {
  const char *name = "ad_bce_with_logits";
  if (!ctx || !check_pair(ctx, name, logits, "logits", target, "target") ||
      !check_reduction(ctx, name, reduction))
    return NULL;
  return pointwise_loss(ctx, name, OP_BCE_LOGITS, logits, target, reduction);
}

ad_tensor *ad_mse(ad_ctx *ctx, ad_tensor *prediction, ad_tensor *target, ad_reduction reduction) {
  const char *name = "ad_mse";
  if (!ctx || !check_pair(ctx, name, prediction, "prediction", target, "target") ||
      !check_reduction(ctx, name, reduction))
    return NULL;
  return pointwise_loss(ctx, name, OP_MSE, prediction, target, reduction);
}

/* ---- Backward ------------------------------------------------------- */

static void put(void *dst, ad_dtype dtype, int64_t i, double v, bool fresh) {
  if (dtype == AD_F32) {
    float *d = (float *)dst + i;
    *d = (float)((fresh ? 0.0 : *d) + v);
  } else {
    double *d = (double *)dst + i;
    *d = (fresh ? 0.0 : *d) + v;
  }
}

static ad_status softmax_backward(const bw_args *args) {
  ad_tensor *y = args->out;
  ad_dtype dtype = (ad_dtype)y->dtype;
  int64_t outer, len, inner;
  split_axis(y, y->p.loss.axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t base = o * len * inner + i;
      double s = 0;
      for (int64_t k = 0; k < len; k++) {
        int64_t at = base + k * inner;
        double g = dtype == AD_F32 ? ((const float *)args->gout)[at] : ((const double *)args->gout)[at];
        s += y->op == OP_SOFTMAX ? g * load(y, at) : g;
      }
      for (int64_t k = 0; k < len; k++) {
        int64_t at = base + k * inner;
        double g = dtype == AD_F32 ? ((const float *)args->gout)[at] : ((const double *)args->gout)[at];
        double v = y->op == OP_SOFTMAX ? load(y, at) * (g - s) : g - exp(load(y, at)) * s;
        put(args->gin[0], dtype, at, v, args->fresh[0]);
      }
    }
  }
  return AD_OK;
}

static ad_status cross_entropy_backward(const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *x = y->in[0], *target = y->in[1];
  ad_dtype dtype = (ad_dtype)x->dtype;
  int64_t outer, classes, inner;
  split_axis(x, y->p.loss.axis, &outer, &classes, &inner);
  int64_t count = outer * inner;
  const int64_t *t = target->data;
  const double *lse = y->p.loss.lse;
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t s = o * inner + i, base = o * classes * inner + i;
      double g = loss_grad(y, args->gout, s, count);
      for (int64_t c = 0; c < classes; c++) {
        int64_t at = base + c * inner;
        double p = exp(load(x, at) - lse[s]) - (c == t[s] ? 1 : 0);
        put(args->gin[0], dtype, at, g == 0 ? 0 : g * p, args->fresh[0]);
      }
    }
  }
  return AD_OK;
}

static ad_status pointwise_loss_backward(const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *a = y->in[0], *b = y->in[1];
  ad_dtype dtype = (ad_dtype)a->dtype;
  int64_t n = a->numel;
  for (int64_t i = 0; i < n; i++) {
    double g = loss_grad(y, args->gout, i, n);
    double x = load(a, i), t = load(b, i);
    double da, db;
    if (y->op == OP_MSE) {
      da = 2 * (x - t);
      db = -da;
    } else {
      da = (x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))) - t;
      db = -x;
    }
    if (args->gin[0]) put(args->gin[0], dtype, i, g == 0 ? 0 : g * da, args->fresh[0]);
    if (args->gin[1]) put(args->gin[1], dtype, i, g == 0 ? 0 : g * db, args->fresh[1]);
  }
  return AD_OK;
}

ad_status nnops_backward(ad_ctx *ctx, const bw_args *args) {
  switch ((op_kind)args->out->op) {
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: return softmax_backward(args);
  case OP_CROSS_ENTROPY: return cross_entropy_backward(args);
  case OP_BCE_LOGITS:
  case OP_MSE: return pointwise_loss_backward(args);
  default: return fail(ctx, AD_ERR_NOT_IMPLEMENTED, "loss backward: unknown kind");
  }
}

/* g broadcast against the unreduced loss and scaled for the reduction. */
static ad_tensor *loss_factor(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, int64_t count) {
  if (y->p.loss.reduction == AD_REDUCE_MEAN) return ad_mul_scalar(ctx, g, 1.0 / (double)count);
  return g;
}

ad_status nnops_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                               ad_tensor **gin) {
  ad_tensor *a = y->in[0];
  switch ((op_kind)y->op) {
  case OP_SOFTMAX: {
    int ax = y->p.loss.axis;
    ad_tensor *s = ad_sum(ctx, ad_mul(ctx, g, y), 1, &ax, true);
    gin[0] = ad_mul(ctx, y, ad_sub(ctx, g, s));
    break;
  }
  case OP_LOG_SOFTMAX: {
    int ax = y->p.loss.axis;
    ad_tensor *s = ad_sum(ctx, g, 1, &ax, true);
    gin[0] = ad_sub(ctx, g, ad_mul(ctx, ad_exp(ctx, y), s));
    break;
  }
  case OP_CROSS_ENTROPY: {
    int ax = y->p.loss.axis;
    ad_tensor *target = y->in[1];
    int64_t classes = a->shape[ax];
    ad_tensor *onehot = ad_one_hot(ctx, target, classes, (ad_dtype)a->dtype);
    /* one_hot puts classes last; move them to the class axis. */
    if (onehot && a->ndim > 2) {
      int perm[AD_MAX_DIMS], n = 0;
      perm[n++] = 0;
      perm[n++] = a->ndim - 1;
      for (int d = 1; d < a->ndim - 1; d++) perm[n++] = d;
      onehot = ad_permute(ctx, onehot, perm);
    }
    ad_tensor *gy = loss_factor(ctx, y, g, target->numel);
    if (gy && y->p.loss.reduction == AD_REDUCE_NONE && a->ndim >= 2) gy = ad_unsqueeze(ctx, gy, ax);
    gin[0] = gmul(ctx, gy, ad_sub(ctx, ad_softmax(ctx, a, ax), onehot));
    break;
  }
  case OP_BCE_LOGITS:
  case OP_MSE: {
    ad_tensor *b = y->in[1];
    ad_tensor *gy = loss_factor(ctx, y, g, a->numel);
    ad_tensor *da = y->op == OP_MSE ? ad_mul_scalar(ctx, ad_sub(ctx, a, b), 2)
                                    : ad_sub(ctx, ad_sigmoid(ctx, a), b);
    if (need[0]) gin[0] = gmul(ctx, gy, da);
    if (need[1])
      gin[1] = y->op == OP_MSE ? gmul(ctx, gy, ad_neg(ctx, da)) : gmul(ctx, gy, ad_neg(ctx, a));
    /* A reduced loss has a 0-d g: spread it over the input's shape. */
    for (int i = 0; i < 2; i++)
      if (need[i] && gin[i] && gin[i]->ndim != a->ndim)
        gin[i] = ad_expand(ctx, gin[i], a->ndim, a->shape);
    if ((need[0] && !gin[0]) || (need[1] && !gin[1])) return ctx->error ? ctx->error : AD_ERR_MEMORY;
    return AD_OK;
  }
  default: return fail(ctx, AD_ERR_NOT_IMPLEMENTED, "loss backward: unknown kind");
  }
  if (need[0] && !gin[0]) return ctx->error ? ctx->error : AD_ERR_MEMORY;
  return AD_OK;
}
