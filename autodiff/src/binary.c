/*
 * binary.c: broadcasting elementwise operations of two inputs, comparisons
 * and ad_where, with their backward rules.
 *
 * For y = f(a, b) the kernel adds g * df/da into a's gradient and g * df/db
 * into b's, each summed over the dimensions along which that input was
 * broadcast. A zero g always contributes zero (see ad_ops.h).
 */
#include <math.h>

#include "iter.h"

bool broadcast_shapes(ad_ctx *ctx, const char *op, int andim, const int64_t *ashape, int bndim,
                      const int64_t *bshape, int *out_ndim, int64_t *out_shape) {
  int n = andim > bndim ? andim : bndim;
  /* out_shape may be ashape or bshape (ad_where broadcasts three shapes in
     two steps), so the result is built apart and copied at the end. */
  int64_t shape[AD_MAX_DIMS];
  for (int d = 0; d < n; d++) {
    int i = d - (n - andim), j = d - (n - bndim);
    int64_t x = i >= 0 ? ashape[i] : 1, y = j >= 0 ? bshape[j] : 1;
    if (x != y && x != 1 && y != 1) {
      fail(ctx, AD_ERR_SHAPE,
           "%s: shapes %s and %s cannot be broadcast together: dimension %d from the end is %lld "
           "in one and %lld in the other, and broadcasting needs them equal or one of them 1",
           op, shape_str(andim, ashape).s, shape_str(bndim, bshape).s, n - d, (long long)x,
           (long long)y);
      return false;
    }
    shape[d] = x == 1 ? y : x;
  }
  memcpy(out_shape, shape, (size_t)n * sizeof(int64_t));
  *out_ndim = n;
  return true;
}

static bool same_shape(const ad_tensor *a, const ad_tensor *b) {
  return a->ndim == b->ndim && memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof(int64_t)) == 0;
}

/* ---- Elementwise values and derivatives ----------------------------- */

static inline double binary_value(op_kind op, double a, double b) {
  switch (op) {
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  case OP_POW: return pow(a, b);
  /* NaN propagates from either side, as in PyTorch (fmin would drop it). */
  case OP_MINIMUM: return (isnan(a) || isnan(b)) ? NAN : (a < b ? a : b);
  case OP_MAXIMUM: return (isnan(a) || isnan(b)) ? NAN : (a > b ? a : b);
  case OP_ATAN2: return atan2(a, b);
  case OP_HYPOT: return hypot(a, b);
  case OP_GMUL: return a == 0 ? 0.0 : a * b;
  default: return NAN;
  }
}

/* d y / d a (which == 0) or d y / d b (which == 1) at (a, b) with y = f(a, b). */
static inline double binary_deriv(op_kind op, int which, double a, double b, double y) {
  switch (op) {
  case OP_ADD: return 1;
  case OP_SUB: return which ? -1 : 1;
  case OP_MUL:
  case OP_GMUL: return which ? a : b;
  case OP_DIV: return which ? -y / b : 1 / b;
  case OP_POW:
    if (which == 0) return b == 0 ? 0 : b * pow(a, b - 1);
    return (a == 0 && b >= 0) ? 0 : y * log(a);
  case OP_MINIMUM:
  case OP_MAXIMUM: {
    double self = which ? b : a, other = which ? a : b;
    if (self == other) return 0.5;
    bool chosen = op == OP_MINIMUM ? self < other : self > other;
    return chosen ? 1 : 0;
  }
  case OP_ATAN2: {
    double h = a * a + b * b;
    return which ? -a / h : b / h;
  }
  case OP_HYPOT: return y == 0 ? 0 : (which ? b : a) / y;
  default: return NAN;
  }
}

/* g * d, except that a zero g gives zero whatever d is. */
static inline double gated(double g, double d) { return g == 0 ? 0.0 : g * d; }

/* ---- Forward -------------------------------------------------------- */

static void run_f32(op_kind op, const float *a, int64_t sa, const float *b, int64_t sb, float *y,
                    int64_t n) {
  switch (op) {
  case OP_ADD:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb];
    return;
  case OP_SUB:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb];
    return;
  case OP_MUL:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb];
    return;
  case OP_DIV:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb];
    return;
  default:
    for (int64_t i = 0; i < n; i++) y[i] = (float)binary_value(op, a[i * sa], b[i * sb]);
    return;
  }
}

static void run_f64(op_kind op, const double *a, int64_t sa, const double *b, int64_t sb,
                    double *y, int64_t n) {
  switch (op) {
  case OP_ADD:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] + b[i * sb];
    return;
  case OP_SUB:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] - b[i * sb];
    return;
  case OP_MUL:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] * b[i * sb];
    return;
  case OP_DIV:
    for (int64_t i = 0; i < n; i++) y[i] = a[i * sa] / b[i * sb];
    return;
  default:
    for (int64_t i = 0; i < n; i++) y[i] = binary_value(op, a[i * sa], b[i * sb]);
    return;
  }
}

/* One run of y = f(a, b): y[i] from a[i * sa] and b[i * sb], i in [lo, hi). */
typedef struct run_job {
  op_kind op;
  ad_dtype dtype;
  const void *a, *b;
  int64_t sa, sb;
  void *y;
} run_job;

static void run_range(void *arg, int64_t lo, int64_t hi) {
  const run_job *j = arg;
  if (j->dtype == AD_F32)
    run_f32(j->op, (const float *)j->a + lo * j->sa, j->sa, (const float *)j->b + lo * j->sb,
            j->sb, (float *)j->y + lo, hi - lo);
  else
    run_f64(j->op, (const double *)j->a + lo * j->sa, j->sa, (const double *)j->b + lo * j->sb,
            j->sb, (double *)j->y + lo, hi - lo);
}

static void binary_compute(ad_ctx *ctx, op_kind op, const ad_tensor *a, const ad_tensor *b,
                           ad_tensor *y) {
  const int ndims[2] = {a->ndim, b->ndim};
  const int64_t *shapes[2] = {a->shape, b->shape};
  nd_iter it;
  iter_init(&it, y->ndim, y->shape, 2, ndims, shapes, NULL);
  size_t es = dtype_bytes((ad_dtype)y->dtype);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++, pos += it.inner) {
    run_job job = {op,
                   (ad_dtype)y->dtype,
                   (const char *)a->data + it.offset[0] * (int64_t)es,
                   (const char *)b->data + it.offset[1] * (int64_t)es,
                   it.inner_stride[0],
                   it.inner_stride[1],
                   (char *)y->data + pos * (int64_t)es};
    /* Same-shape operands (or one scalar) merge into a single long run,
       which the threads share. */
    if (it.outer == 1) parallel_blocks(ctx, it.inner, run_range, &job);
    else run_range(&job, 0, it.inner);
    iter_next(&it);
  }
}

static ad_tensor *binary_op(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a,
                            ad_tensor *b) {
  if (!ctx || !check_arg(ctx, name, "a", a, true) || !check_arg(ctx, name, "b", b, true) ||
      !check_same_dtype(ctx, name, a, b))
    return NULL;
  ad_tensor *y;
  if (a->ndim == 0 && b->ndim == 0) {
    /* Scalar fast path: no broadcasting to work out. */
    y = tensor_new(ctx, name, (ad_dtype)a->dtype, 0, NULL);
    if (!y) return NULL;
    if (a->dtype == AD_F32) run_f32(op, a->data, 0, b->data, 0, y->data, 1);
    else run_f64(op, a->data, 0, b->data, 0, y->data, 1);
  } else {
    int ndim;
    int64_t shape[AD_MAX_DIMS];
    if (!broadcast_shapes(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape))
      return NULL;
    y = tensor_new(ctx, name, (ad_dtype)a->dtype, ndim, shape);
    if (!y) return NULL;
    binary_compute(ctx, op, a, b, y);
  }
  return maybe_record(ctx, y, op, a, b, NULL);
}

ad_tensor *ad_add(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_add", OP_ADD, a, b);
}
ad_tensor *ad_sub(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_sub", OP_SUB, a, b);
}
ad_tensor *ad_mul(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_mul", OP_MUL, a, b);
}
ad_tensor *ad_div(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_div", OP_DIV, a, b);
}
ad_tensor *ad_pow(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_pow", OP_POW, a, b);
}
ad_tensor *ad_minimum(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_minimum", OP_MINIMUM, a, b);
}
ad_tensor *ad_maximum(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_maximum", OP_MAXIMUM, a, b);
}
ad_tensor *ad_atan2(ad_ctx *ctx, ad_tensor *y, ad_tensor *x) {
  return binary_op(ctx, "ad_atan2", OP_ATAN2, y, x);
}
ad_tensor *ad_hypot(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return binary_op(ctx, "ad_hypot", OP_HYPOT, a, b);
}
ad_tensor *gmul(ad_ctx *ctx, ad_tensor *g, ad_tensor *d) {
  return binary_op(ctx, "gradient product", OP_GMUL, g, d);
}

ad_tensor *const_like(ad_ctx *ctx, const ad_tensor *t, double value) {
  return t ? ad_scalar(ctx, (ad_dtype)t->dtype, value) : NULL;
}

/* ---- Fused backward ------------------------------------------------- */

void acc_copy(ad_dtype dtype, void *dst, const void *src, int64_t n, bool fresh) {
  if (fresh) {
    memcpy(dst, src, (size_t)n * dtype_bytes(dtype));
  } else if (dtype == AD_F32) {
    float *d = dst;
    const float *s = src;
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
  } else {
    double *d = dst;
    const double *s = src;
    for (int64_t i = 0; i < n; i++) d[i] += s[i];
  }
}

/* dst (+)= -src. */
static inline void negate_into(const double *restrict s, double *restrict d, int64_t n,
                               bool fresh) {
  for (int64_t i = 0; i < n; i++) d[i] = (fresh ? 0.0 : d[i]) - s[i];
}
static inline void negate_into_f32(const float *restrict s, float *restrict d, int64_t n,
                                   bool fresh) {
  for (int64_t i = 0; i < n; i++) d[i] = (fresh ? 0.0f : d[i]) - s[i];
}
static void acc_negate(ad_dtype dtype, void *dst, const void *src, int64_t n, bool fresh) {
  if (dtype == AD_F32) {
    if (fresh) negate_into_f32(src, dst, n, true);
    else negate_into_f32(src, dst, n, false);
  } else {
    if (fresh) negate_into(src, dst, n, true);
    else negate_into(src, dst, n, false);
  }
}

/* Writes g * dy/d(input which) for every element of y into dst (y's shape). */
static void binary_contrib(op_kind op, int which, const ad_tensor *a, const ad_tensor *b,
                           const ad_tensor *y, const void *g, void *dst, bool fresh) {
  const int ndims[2] = {a->ndim, b->ndim};
  const int64_t *shapes[2] = {a->shape, b->shape};
  nd_iter it;
  iter_init(&it, y->ndim, y->shape, 2, ndims, shapes, NULL);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, pos++) {
      double av = load(a, it.offset[0] + i * it.inner_stride[0]);
      double bv = load(b, it.offset[1] + i * it.inner_stride[1]);
      double d = binary_deriv(op, which, av, bv, load(y, pos));
      if (y->dtype == AD_F32) {
        float *p = (float *)dst + pos;
        *p = (float)((fresh ? 0.0 : *p) + gated(((const float *)g)[pos], d));
      } else {
        double *p = (double *)dst + pos;
        *p = (fresh ? 0.0 : *p) + gated(((const double *)g)[pos], d);
      }
    }
    iter_next(&it);
  }
}

/* The product g * other for a multiplication whose inputs have y's shape. */
static inline void gated_product_f32(const float *restrict g, const float *restrict o,
                                     float *restrict d, int64_t n, bool fresh) {
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i], v = gi == 0 ? 0.0f : gi * o[i];
    d[i] = fresh ? v : d[i] + v;
  }
}
static inline void gated_product_f64(const double *restrict g, const double *restrict o,
                                     double *restrict d, int64_t n, bool fresh) {
  for (int64_t i = 0; i < n; i++) {
    double gi = g[i], v = gi == 0 ? 0.0 : gi * o[i];
    d[i] = fresh ? v : d[i] + v;
  }
}
/* dst (+)= g * other over elements [lo, hi) of same-shaped buffers. */
typedef struct product_job {
  ad_dtype dtype;
  const void *g, *other;
  void *dst;
  bool fresh;
} product_job;

static void product_range(void *arg, int64_t lo, int64_t hi) {
  const product_job *j = arg;
  int64_t n = hi - lo;
  if (j->dtype == AD_F32) {
    const float *g = (const float *)j->g + lo, *o = (const float *)j->other + lo;
    float *d = (float *)j->dst + lo;
    if (j->fresh) gated_product_f32(g, o, d, n, true);
    else gated_product_f32(g, o, d, n, false);
  } else {
    const double *g = (const double *)j->g + lo, *o = (const double *)j->other + lo;
    double *d = (double *)j->dst + lo;
    if (j->fresh) gated_product_f64(g, o, d, n, true);
    else gated_product_f64(g, o, d, n, false);
  }
}

static void mul_same_shape(ad_ctx *ctx, ad_dtype dtype, const void *g, const void *other,
                           void *dst, int64_t n, bool fresh) {
  product_job job = {dtype, g, other, dst, fresh};
  parallel_blocks(ctx, n, product_range, &job);
}

static ad_status where_backward(ad_ctx *ctx, const bw_args *args);

ad_status binary_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  if (y->op == OP_WHERE) return where_backward(ctx, args);
  op_kind op = (op_kind)y->op;
  ad_dtype dtype = (ad_dtype)y->dtype;
  if (y->ndim == 0) {
    /* 0-d operands (a broadcast result is 0-d only when both are): one
       element, so no shapes to compare or sum over. */
    double a = load(y->in[0], 0), b = load(y->in[1], 0), yv = load(y, 0);
    double g = dtype == AD_F32 ? *(const float *)args->gout : *(const double *)args->gout;
    for (int which = 0; which < 2; which++) {
      if (!args->gin[which]) continue;
      double v = gated(g, binary_deriv(op, which, a, b, yv));
      if (dtype == AD_F32) {
        float *p = args->gin[which];
        *p = (float)((args->fresh[which] ? 0.0 : *p) + v);
      } else {
        double *p = args->gin[which];
        *p = (args->fresh[which] ? 0.0 : *p) + v;
      }
    }
    return AD_OK;
  }
  for (int which = 0; which < 2; which++) {
    if (!args->gin[which]) continue;
    ad_tensor *x = y->in[which];
    bool full = same_shape(x, y);
    bool fresh = args->fresh[which];
    if (full && (op == OP_ADD || (op == OP_SUB && which == 0))) {
      acc_copy(dtype, args->gin[which], args->gout, y->numel, fresh);
      continue;
    }
    if (full && op == OP_SUB) {
      acc_negate(dtype, args->gin[which], args->gout, y->numel, fresh);
      continue;
    }
    ad_tensor *other = y->in[1 - which];
    if (full && same_shape(other, y) && (op == OP_MUL || op == OP_GMUL)) {
      mul_same_shape(ctx, dtype, args->gout, other->data, args->gin[which], y->numel, fresh);
      continue;
    }
    if (full) {
      binary_contrib(op, which, y->in[0], y->in[1], y, args->gout, args->gin[which], fresh);
      continue;
    }
    /* A broadcast input: contributions in y's shape first, then summed. */
    ad_tensor *tmp = tensor_like(ctx, "backward", y);
    if (!tmp) return ctx->error;
    binary_contrib(op, which, y->in[0], y->in[1], y, args->gout, tmp->data, true);
    ad_status st = sum_to_acc(ctx, dtype, tmp->data, y->ndim, y->shape, args->gin[which],
                              x->ndim, x->shape, fresh);
    if (st != AD_OK) return st;
  }
  return AD_OK;
}

/* ---- Graph backward ------------------------------------------------- */

ad_tensor *sum_to(ad_ctx *ctx, ad_tensor *g, int ndim, const int64_t *shape) {
  if (!g) return NULL;
  if (g->ndim == ndim && memcmp(g->shape, shape, (size_t)ndim * sizeof(int64_t)) == 0) return g;
  uint32_t mask = 0;
  int lead = g->ndim - ndim;
  for (int d = 0; d < g->ndim; d++) {
    int j = d - lead;
    if (j < 0 || (shape[j] == 1 && g->shape[d] != 1)) mask |= 1u << d;
  }
  ad_tensor *s = mask ? reduce_mask(ctx, "backward", OP_SUM, g, mask, true, 0) : g;
  return ad_reshape(ctx, s, ndim, shape);
}

static ad_tensor *mask_and(ad_ctx *ctx, ad_tensor *m1, ad_tensor *m2) {
  return ad_mul(ctx, m1, m2);
}

/* The local derivative dy/d(input which) as a tensor built from recorded
   operations, so that it can be differentiated again. */
static ad_tensor *binary_deriv_graph(ad_ctx *ctx, ad_tensor *y, int which) {
  ad_tensor *a = y->in[0], *b = y->in[1];
  ad_tensor *zero = const_like(ctx, y, 0), *one = const_like(ctx, y, 1);
  switch ((op_kind)y->op) {
  case OP_MUL:
  case OP_GMUL: return which ? a : b;
  case OP_DIV: return which ? ad_neg(ctx, ad_div(ctx, y, b)) : ad_div(ctx, one, b);
  case OP_POW:
    if (which == 0)
      return ad_where(ctx, ad_eq(ctx, b, zero), zero,
                      ad_mul(ctx, b, ad_pow(ctx, a, ad_sub(ctx, b, one))));
    return ad_where(ctx, mask_and(ctx, ad_eq(ctx, a, zero), ad_ge(ctx, b, zero)), zero,
                    ad_mul(ctx, y, ad_log(ctx, a)));
  case OP_MINIMUM:
  case OP_MAXIMUM: {
    ad_tensor *self = which ? b : a, *other = which ? a : b;
    ad_tensor *win = y->op == OP_MINIMUM ? ad_lt(ctx, self, other) : ad_gt(ctx, self, other);
    return ad_add(ctx, win, ad_mul_scalar(ctx, ad_eq(ctx, self, other), 0.5));
  }
  case OP_ATAN2: {
    ad_tensor *h = ad_add(ctx, ad_mul(ctx, a, a), ad_mul(ctx, b, b));
    return which ? ad_neg(ctx, ad_div(ctx, a, h)) : ad_div(ctx, b, h);
  }
  case OP_HYPOT:
    return ad_where(ctx, ad_eq(ctx, y, zero), zero, ad_div(ctx, which ? b : a, y));
  default: return NULL;
  }
}

static ad_status where_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                      ad_tensor **gin);

ad_status binary_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                ad_tensor **gin) {
  if (y->op == OP_WHERE) return where_backward_graph(ctx, y, g, need, gin);
  for (int which = 0; which < 2; which++) {
    if (!need[which]) continue;
    ad_tensor *x = y->in[which];
    ad_tensor *c;
    if (y->op == OP_ADD) c = g;
    else if (y->op == OP_SUB) c = which ? ad_neg(ctx, g) : g;
    else c = gmul(ctx, g, binary_deriv_graph(ctx, y, which));
    gin[which] = sum_to(ctx, c, x->ndim, x->shape);
    if (!gin[which]) return ctx->error ? ctx->error : AD_ERR_MEMORY;
  }
  return AD_OK;
}

/* ---- Comparisons ---------------------------------------------------- */

typedef enum compare_kind { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } compare_kind;

static inline bool compare(compare_kind k, double a, double b) {
  switch (k) {
  case CMP_EQ: return a == b;
  case CMP_NE: return a != b;
  case CMP_LT: return a < b;
  case CMP_LE: return a <= b;
  case CMP_GT: return a > b;
  case CMP_GE: return a >= b;
  }
  return false;
}

static ad_tensor *compare_op(ad_ctx *ctx, const char *name, compare_kind k, ad_tensor *a,
                             ad_tensor *b) {
  if (!ctx || !check_arg(ctx, name, "a", a, false) || !check_arg(ctx, name, "b", b, false) ||
      !check_same_dtype(ctx, name, a, b))
    return NULL;
  int ndim;
  int64_t shape[AD_MAX_DIMS];
  if (!broadcast_shapes(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape))
    return NULL;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, ndim, shape);
  if (!y) return NULL;
  const int ndims[2] = {a->ndim, b->ndim};
  const int64_t *shapes[2] = {a->shape, b->shape};
  nd_iter it;
  iter_init(&it, ndim, shape, 2, ndims, shapes, NULL);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, pos++) {
      bool v;
      if (a->dtype == AD_I64) {
        int64_t x = ((const int64_t *)a->data)[it.offset[0] + i * it.inner_stride[0]];
        int64_t z = ((const int64_t *)b->data)[it.offset[1] + i * it.inner_stride[1]];
        v = compare(k, (double)(x > z) - (double)(x < z), 0);
      } else {
        v = compare(k, load(a, it.offset[0] + i * it.inner_stride[0]),
                    load(b, it.offset[1] + i * it.inner_stride[1]));
      }
      store(y, pos, v ? 1 : 0);
    }
    iter_next(&it);
  }
  return y;
}

ad_tensor *ad_eq(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_eq", CMP_EQ, a, b);
}
ad_tensor *ad_ne(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_ne", CMP_NE, a, b);
}
ad_tensor *ad_lt(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_lt", CMP_LT, a, b);
}
ad_tensor *ad_le(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_le", CMP_LE, a, b);
}
ad_tensor *ad_gt(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_gt", CMP_GT, a, b);
}
ad_tensor *ad_ge(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  return compare_op(ctx, "ad_ge", CMP_GE, a, b);
}

/* ---- where ---------------------------------------------------------- */

ad_tensor *ad_where(ad_ctx *ctx, ad_tensor *mask, ad_tensor *a, ad_tensor *b) {
  const char *name = "ad_where";
  if (!ctx || !check_arg(ctx, name, "mask", mask, false) || !check_arg(ctx, name, "a", a, true) ||
      !check_arg(ctx, name, "b", b, true) || !check_same_dtype(ctx, name, a, b))
    return NULL;
  int ndim;
  int64_t shape[AD_MAX_DIMS];
  if (!broadcast_shapes(ctx, name, a->ndim, a->shape, b->ndim, b->shape, &ndim, shape) ||
      !broadcast_shapes(ctx, name, mask->ndim, mask->shape, ndim, shape, &ndim, shape))
    return NULL;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, ndim, shape);
  if (!y) return NULL;
  const int ndims[3] = {mask->ndim, a->ndim, b->ndim};
  const int64_t *shapes[3] = {mask->shape, a->shape, b->shape};
  nd_iter it;
  iter_init(&it, ndim, shape, 3, ndims, shapes, NULL);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, pos++) {
      bool m = load(mask, it.offset[0] + i * it.inner_stride[0]) != 0;
      double v = m ? load(a, it.offset[1] + i * it.inner_stride[1])
                   : load(b, it.offset[2] + i * it.inner_stride[2]);
      store(y, pos, v);
    }
    iter_next(&it);
  }
  /* The mask is an input of the entry so that the backward rule can read
     it, but it never receives a gradient. */
  if (should_record(ctx, a, b, NULL)) record(ctx, y, OP_WHERE, a, b, mask);
  return y;
}

/* in[0] = a, in[1] = b, in[2] = mask. */
static ad_status where_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *mask = y->in[2];
  for (int which = 0; which < 2; which++) {
    if (!args->gin[which]) continue;
    ad_tensor *x = y->in[which];
    ad_tensor *tmp = tensor_like(ctx, "backward", y);
    if (!tmp) return ctx->error;
    const int ndims[1] = {mask->ndim};
    const int64_t *shapes[1] = {mask->shape};
    nd_iter it;
    iter_init(&it, y->ndim, y->shape, 1, ndims, shapes, NULL);
    int64_t pos = 0;
    for (int64_t r = 0; r < it.outer; r++) {
      for (int64_t i = 0; i < it.inner; i++, pos++) {
        bool m = load(mask, it.offset[0] + i * it.inner_stride[0]) != 0;
        bool pass = which == 0 ? m : !m;
        if (y->dtype == AD_F32)
          ((float *)tmp->data)[pos] = pass ? ((const float *)args->gout)[pos] : 0.0f;
        else
          ((double *)tmp->data)[pos] = pass ? ((const double *)args->gout)[pos] : 0.0;
      }
      iter_next(&it);
    }
    ad_status st = sum_to_acc(ctx, (ad_dtype)y->dtype, tmp->data, y->ndim, y->shape,
                              args->gin[which], x->ndim, x->shape, args->fresh[which]);
    if (st != AD_OK) return st;
  }
  return AD_OK;
}

static ad_status where_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                      ad_tensor **gin) {
  ad_tensor *mask = y->in[2];
  ad_tensor *zero = const_like(ctx, y, 0);
  for (int which = 0; which < 2; which++) {
    if (!need[which]) continue;
    ad_tensor *x = y->in[which];
    ad_tensor *c = which == 0 ? ad_where(ctx, mask, g, zero) : ad_where(ctx, mask, zero, g);
    gin[which] = sum_to(ctx, c, x->ndim, x->shape);
    if (!gin[which]) return ctx->error ? ctx->error : AD_ERR_MEMORY;
  }
  return AD_OK;
}
