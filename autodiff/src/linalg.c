/*
 * linalg.c: matrix products and the fused linear layer.
 *
 * The recorded matmul entry multiplies stacks of matrices, a [..., M, K] by
 * b [..., K, N], with broadcast batch dimensions. ad_matmul reduces NumPy's
 * 1-d cases to it with reshapes, which are recorded too, so their gradients
 * need no extra rule. Backward, for y = a b:
 *   da = g b^T  (summed over a's broadcast batch dimensions)
 *   db = a^T g
 */
#include "iter.h"

static const char *const matmul_name = "ad_matmul";

/* Offsets, in matrices, of a's and b's matrix for each output batch. */
typedef struct batch_plan {
  int64_t count;  /* output matrices */
  int64_t *a_off; /* count entries */
  int64_t *b_off;
  /* a's matrices do not map one to one onto the outputs: one serves several
     outputs, or the broadcast batch is empty and it serves none. */
  bool a_repeats;
  bool b_repeats;
} batch_plan;

static bool plan_batches(ad_ctx *ctx, const ad_tensor *a, const ad_tensor *b, const ad_tensor *y,
                         batch_plan *plan) {
  int bnd = y->ndim - 2;
  int and_ = a->ndim - 2, bnd_b = b->ndim - 2;
  int64_t count = 1;
  for (int d = 0; d < bnd; d++) count *= y->shape[d];
  plan->count = count;
  plan->a_off = arena_alloc(ctx, (size_t)(count ? count : 1) * sizeof(int64_t), 16, matmul_name);
  plan->b_off = arena_alloc(ctx, (size_t)(count ? count : 1) * sizeof(int64_t), 16, matmul_name);
  if (!plan->a_off || !plan->b_off) return false;
  int64_t a_count = 1, b_count = 1;
  for (int d = 0; d < and_; d++) a_count *= a->shape[d];
  for (int d = 0; d < bnd_b; d++) b_count *= b->shape[d];
  plan->a_repeats = a_count != count;
  plan->b_repeats = b_count != count;
  if (bnd == 0) {
    plan->a_off[0] = plan->b_off[0] = 0;
    return true;
  }
  const int ndims[2] = {and_, bnd_b};
  const int64_t *shapes[2] = {a->shape, b->shape};
  nd_iter it;
  iter_init(&it, bnd, y->shape, 2, ndims, shapes, NULL);
  int64_t k = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, k++) {
      plan->a_off[k] = it.offset[0] + i * it.inner_stride[0];
      plan->b_off[k] = it.offset[1] + i * it.inner_stride[1];
    }
    iter_next(&it);
  }
  return true;
}

static ad_tensor *matmul_core(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
  int64_t k2 = b->shape[b->ndim - 2], n = b->shape[b->ndim - 1];
  if (k != k2) {
    fail(ctx, AD_ERR_SHAPE,
         "%s: inner dimensions differ: a has shape %s (K = %lld) and b has shape %s (K = %lld); "
         "the last dimension of a must equal the second-to-last of b",
         matmul_name, tshape(a).s, (long long)k, tshape(b).s, (long long)k2);
    return NULL;
  }
  int ndim;
  int64_t shape[AD_MAX_DIMS];
  if (!broadcast_shapes(ctx, matmul_name, a->ndim - 2, a->shape, b->ndim - 2, b->shape, &ndim,
                        shape))
    return NULL;
  shape[ndim] = m;
  shape[ndim + 1] = n;
  ad_tensor *y = tensor_new(ctx, matmul_name, (ad_dtype)a->dtype, ndim + 2, shape);
  batch_plan plan;
  if (!y || !plan_batches(ctx, a, b, y, &plan)) return NULL;
  size_t es = ad_dtype_size((ad_dtype)a->dtype);
  for (int64_t i = 0; i < plan.count; i++)
    gemm(ctx, (ad_dtype)a->dtype, false, false, m, n, k, 1,
         (const char *)a->data + plan.a_off[i] * m * k * es, k,
         (const char *)b->data + plan.b_off[i] * k * n * es, n, 0,
         (char *)y->data + i * m * n * es, n);
  return maybe_record(ctx, y, OP_MATMUL, a, b, NULL);
}

ad_tensor *ad_matmul(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  if (!ctx || !check_arg(ctx, matmul_name, "a", a, true) ||
      !check_arg(ctx, matmul_name, "b", b, true) || !check_same_dtype(ctx, matmul_name, a, b))
    return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    fail(ctx, AD_ERR_SHAPE,
         "%s: operands of shapes %s and %s include a 0-d tensor; multiply scalars with ad_mul",
         matmul_name, tshape(a).s, tshape(b).s);
    return NULL;
  }
  ad_tensor *a2 = a, *b2 = b;
  if (a->ndim == 1) a2 = ad_reshape(ctx, a, 2, (int64_t[]){1, a->shape[0]});
  if (b->ndim == 1) b2 = ad_reshape(ctx, b, 2, (int64_t[]){b->shape[0], 1});
  if (!a2 || !b2) return NULL;
  ad_tensor *y = matmul_core(ctx, a2, b2);
  if (!y || (a->ndim > 1 && b->ndim > 1)) return y;
  /* Drop the dimensions that the 1-d operands gained. */
  int64_t shape[AD_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < y->ndim; d++) {
    if (a->ndim == 1 && d == y->ndim - 2) continue;
    if (b->ndim == 1 && d == y->ndim - 1) continue;
    shape[n++] = y->shape[d];
  }
  return ad_reshape(ctx, y, n, shape);
}

ad_tensor *ad_dot(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  const char *name = "ad_dot";
  if (!ctx || !check_arg(ctx, name, "a", a, true) || !check_arg(ctx, name, "b", b, true)) return NULL;
  if (a->ndim != 1 || b->ndim != 1 || a->shape[0] != b->shape[0]) {
    fail(ctx, AD_ERR_SHAPE, "%s: needs two 1-d tensors of equal length, got shapes %s and %s",
         name, tshape(a).s, tshape(b).s);
    return NULL;
  }
  return ad_matmul(ctx, a, b);
}

ad_tensor *ad_outer(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  const char *name = "ad_outer";
  if (!ctx || !check_arg(ctx, name, "a", a, true) || !check_arg(ctx, name, "b", b, true)) return NULL;
  if (a->ndim != 1 || b->ndim != 1) {
    fail(ctx, AD_ERR_SHAPE, "%s: needs two 1-d tensors, got shapes %s and %s", name, tshape(a).s,
         tshape(b).s);
    return NULL;
  }
  return ad_matmul(ctx, ad_reshape(ctx, a, 2, (int64_t[]){a->shape[0], 1}),
                   ad_reshape(ctx, b, 2, (int64_t[]){1, b->shape[0]}));
}

/* da (+)= g b^T or db (+)= a^T g for every output matrix. */
ad_status matmul_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *a = y->in[0], *b = y->in[1];
  ad_dtype dtype = (ad_dtype)y->dtype;
  size_t es = ad_dtype_size(dtype);
  int64_t m = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1], n = b->shape[b->ndim - 1];
  batch_plan plan;
  if (!plan_batches(ctx, a, b, y, &plan)) return ctx->error;
  const char *g = args->gout;
  for (int which = 0; which < 2; which++) {
    char *dst = args->gin[which];
    if (!dst) continue;
    bool repeats = which == 0 ? plan.a_repeats : plan.b_repeats;
    const ad_tensor *x = which == 0 ? a : b;
    /* A matrix that serves several outputs sums their contributions, so it
       starts from zero rather than from the first contribution. One that
       serves none keeps that zero. */
    if (repeats && args->fresh[which]) memset(dst, 0, (size_t)x->numel * es);
    double beta = (repeats || !args->fresh[which]) ? 1 : 0;
    for (int64_t i = 0; i < plan.count; i++) {
      const char *gi = g + i * m * n * es;
      if (which == 0)
        gemm(ctx, dtype, false, true, m, k, n, 1, gi, n,
             (const char *)b->data + plan.b_off[i] * k * n * es, n, beta,
             dst + plan.a_off[i] * m * k * es, k);
      else
        gemm(ctx, dtype, true, false, k, n, m, 1,
             (const char *)a->data + plan.a_off[i] * m * k * es, k, gi, n, beta,
             dst + plan.b_off[i] * k * n * es, n);
    }
  }
  return AD_OK;
}

ad_status matmul_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                ad_tensor **gin) {
  ad_tensor *a = y->in[0], *b = y->in[1];
  if (need[0]) {
    ad_tensor *bt = ad_transpose(ctx, b, -1, -2);
    gin[0] = sum_to(ctx, bt ? matmul_core(ctx, g, bt) : NULL, a->ndim, a->shape);
    if (!gin[0]) return ctx->error;
  }
  if (need[1]) {
    ad_tensor *at = ad_transpose(ctx, a, -1, -2);
    gin[1] = sum_to(ctx, at ? matmul_core(ctx, at, g) : NULL, b->ndim, b->shape);
    if (!gin[1]) return ctx->error;
  }
  return AD_OK;
}

/* ---- Linear --------------------------------------------------------- */

/* The number of rows M of x [..., in] viewed as a matrix [M, in]. */
static int64_t rows_of(const ad_tensor *x) {
  int64_t m = 1;
  for (int d = 0; d < x->ndim - 1; d++) m *= x->shape[d];
  return m;
}

ad_tensor *ad_linear(ad_ctx *ctx, ad_tensor *x, ad_tensor *w, ad_tensor *b) {
  const char *name = "ad_linear";
  if (!ctx || !check_arg(ctx, name, "x", x, true) || !check_arg(ctx, name, "w", w, true) ||
      !check_same_dtype(ctx, name, x, w))
    return NULL;
  if (b && (!check_arg(ctx, name, "b", b, true) || !check_same_dtype(ctx, name, x, b))) return NULL;
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1]) {
    fail(ctx, AD_ERR_SHAPE,
         "%s: x has shape %s and w has shape %s; w must be [out, in] with in equal to the last "
         "dimension of x",
         name, tshape(x).s, tshape(w).s);
    return NULL;
  }
  int64_t out = w->shape[0], in = w->shape[1];
  if (b && (b->ndim != 1 || b->shape[0] != out)) {
    fail(ctx, AD_ERR_SHAPE, "%s: bias has shape %s; it must be [%lld] to match w of shape %s",
         name, tshape(b).s, (long long)out, tshape(w).s);
    return NULL;
  }
  int64_t shape[AD_MAX_DIMS];
  memcpy(shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
  shape[x->ndim - 1] = out;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)x->dtype, x->ndim, shape);
  if (!y) return NULL;
  int64_t m = rows_of(x);
  size_t es = ad_dtype_size((ad_dtype)x->dtype);
  if (b) {
    for (int64_t i = 0; i < m; i++) memcpy((char *)y->data + i * out * es, b->data, (size_t)out * es);
  }
  gemm(ctx, (ad_dtype)x->dtype, false, true, m, out, in, 1, x->data, in, w->data, in, b ? 1 : 0,
       y->data, out);
  return maybe_record(ctx, y, OP_LINEAR, x, w, b);
}

/* dx = g w, dw = g^T x, db = column sums of g, with g viewed as [M, out]. */
ad_status linear_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  ad_tensor *x = y->in[0], *w = y->in[1];
  ad_dtype dtype = (ad_dtype)y->dtype;
  int64_t out = w->shape[0], in = w->shape[1];
  int64_t m = rows_of(x);
  if (args->gin[0])
    gemm(ctx, dtype, false, false, m, in, out, 1, args->gout, out, w->data, in,
         args->fresh[0] ? 0 : 1, args->gin[0], in);
  if (args->gin[1])
    gemm(ctx, dtype, true, false, out, in, m, 1, args->gout, out, x->data, in,
         args->fresh[1] ? 0 : 1, args->gin[1], in);
  /* gin and fresh have one entry per input, so a layer without bias has no
     third entry to read. */
  if (y->nin == 3 && args->gin[2])
    return sum_to_acc(ctx, dtype, args->gout, 2, (int64_t[]){m, out}, args->gin[2], 1, &out,
                      args->fresh[2]);
  return AD_OK;
}

ad_status linear_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                                ad_tensor **gin) {
  ad_tensor *x = y->in[0], *w = y->in[1];
  int64_t out = w->shape[0], in = w->shape[1];
  int64_t m = rows_of(x);
  if (need[0]) {
    gin[0] = ad_reshape(ctx, ad_matmul(ctx, ad_reshape(ctx, g, 2, (int64_t[]){m, out}), w),
                        x->ndim, x->shape);
    if (!gin[0]) return ctx->error;
  }
  if (need[1]) {
    ad_tensor *g2 = ad_reshape(ctx, g, 2, (int64_t[]){m, out});
    ad_tensor *x2 = ad_reshape(ctx, x, 2, (int64_t[]){m, in});
    gin[1] = ad_matmul(ctx, ad_transpose(ctx, g2, 0, 1), x2);
    if (!gin[1]) return ctx->error;
  }
  if (y->nin == 3 && need[2]) {
    gin[2] = sum_to(ctx, g, 1, &out);
    if (!gin[2]) return ctx->error;
  }
  return AD_OK;
}
