/* grad.c: Jacobians, Hessians, Hessian-vector products and gradient checks. */
#include <math.h>

#include "internal.h"

/* A leaf that shares x's values and requires a gradient, so that the helpers
   differentiate with respect to x without changing x's own flags. */
static ad_tensor *variable_copy(ad_ctx *ctx, const char *name, ad_tensor *x) {
  if (!check_arg(ctx, name, "x", x, true)) return NULL;
  ad_tensor *v = ad_detach(ctx, x);
  if (v && ad_set_requires_grad(v, true) != AD_OK) return NULL;
  return v;
}

static ad_tensor *call_function(ad_ctx *ctx, const char *name, ad_function f, void *user,
                                ad_tensor *const *inputs) {
  ad_tensor *y = f(ctx, inputs, user);
  if (!y) {
    if (ctx->error == AD_OK)
      fail(ctx, AD_ERR_ARGUMENT, "%s: the function returned NULL without recording an error",
           name);
    return NULL;
  }
  if (!check_arg(ctx, name, "function result", y, true)) return NULL;
  return y;
}

/* A tensor like t that is zero except for a 1 at flat index i. */
static ad_tensor *unit_seed(ad_ctx *ctx, const ad_tensor *t, int64_t i) {
  ad_tensor *e = ad_zeros(ctx, (ad_dtype)t->dtype, t->ndim, t->shape);
  if (e) store(e, i, 1);
  return e;
}

/* Stacks rows: out has shape lead + tail, filled from count tensors of
   shape tail. */
static ad_tensor *new_block(ad_ctx *ctx, const char *name, ad_dtype dtype, const ad_tensor *lead,
                            const ad_tensor *tail) {
  int ndim = lead->ndim + tail->ndim;
  if (ndim > AD_MAX_DIMS) {
    fail(ctx, AD_ERR_SHAPE, "%s: the result would have shape %s + %s, more than %d dimensions",
         name, tshape(lead).s, tshape(tail).s, AD_MAX_DIMS);
    return NULL;
  }
  int64_t shape[AD_MAX_DIMS];
  memcpy(shape, lead->shape, (size_t)lead->ndim * sizeof(int64_t));
  memcpy(shape + lead->ndim, tail->shape, (size_t)tail->ndim * sizeof(int64_t));
  return tensor_new(ctx, name, dtype, ndim, shape);
}

/* Fills row after row of out with the gradients of output (one seed per
   element of output) with respect to x. */
static ad_status fill_rows(ad_ctx *ctx, ad_tensor *output, ad_tensor *x, ad_tensor *out) {
  size_t row = (size_t)x->numel * ad_dtype_size((ad_dtype)x->dtype);
  for (int64_t i = 0; i < output->numel; i++) {
    char *dst = (char *)out->data + (size_t)i * row;
    if (!requires_grad(output)) {
      memset(dst, 0, row);
      continue;
    }
    ad_tensor *seed = unit_seed(ctx, output, i), *g = NULL;
    if (!seed) return ctx->error;
    ad_status st = ad_gradients(ctx, 1, &output, &seed, 1, &x, &g, 0);
    if (st != AD_OK) return st;
    memcpy(dst, g->data, row);
  }
  return AD_OK;
}

ad_tensor *ad_jacobian(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x) {
  const char *name = "ad_jacobian";
  if (!ctx) return NULL;
  if (!f) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: the function is NULL", name);
    return NULL;
  }
  ad_tensor *v = variable_copy(ctx, name, x);
  ad_tensor *y = v ? call_function(ctx, name, f, user, &v) : NULL;
  if (!y) return NULL;
  if (y->dtype != x->dtype) {
    fail(ctx, AD_ERR_DTYPE, "%s: the function returned %s for a %s input", name,
         ad_dtype_name((ad_dtype)y->dtype), ad_dtype_name((ad_dtype)x->dtype));
    return NULL;
  }
  ad_tensor *jac = new_block(ctx, name, (ad_dtype)x->dtype, y, x);
  if (!jac || fill_rows(ctx, y, v, jac) != AD_OK) return NULL;
  return jac;
}

/* The gradient of scalar f at the variable v, recorded for differentiation. */
static ad_tensor *recorded_gradient(ad_ctx *ctx, const char *name, ad_function f, void *user,
                                    ad_tensor *v) {
  ad_tensor *y = call_function(ctx, name, f, user, &v);
  if (!y) return NULL;
  if (y->numel != 1) {
    fail(ctx, AD_ERR_SHAPE, "%s: the function must return one element, got shape %s", name,
         tshape(y).s);
    return NULL;
  }
  if (!requires_grad(y)) return ad_zeros(ctx, (ad_dtype)v->dtype, v->ndim, v->shape);
  ad_tensor *g = NULL;
  if (ad_gradients(ctx, 1, &y, NULL, 1, &v, &g, AD_CREATE_GRAPH) != AD_OK) return NULL;
  return g;
}

ad_tensor *ad_hessian(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x) {
  const char *name = "ad_hessian";
  if (!ctx) return NULL;
  if (!f) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: the function is NULL", name);
    return NULL;
  }
  ad_tensor *v = variable_copy(ctx, name, x);
  ad_tensor *g = v ? recorded_gradient(ctx, name, f, user, v) : NULL;
  if (!g) return NULL;
  ad_tensor *hess = new_block(ctx, name, (ad_dtype)x->dtype, x, x);
  if (!hess || fill_rows(ctx, g, v, hess) != AD_OK) return NULL;
  return hess;
}

ad_tensor *ad_hvp(ad_ctx *ctx, ad_function f, void *user, ad_tensor *x, ad_tensor *vec) {
  const char *name = "ad_hvp";
  if (!ctx) return NULL;
  if (!f) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: the function is NULL", name);
    return NULL;
  }
  if (!check_arg(ctx, name, "x", x, true) || !check_arg(ctx, name, "v", vec, true)) return NULL;
  if (vec->dtype != x->dtype || vec->ndim != x->ndim ||
      memcmp(vec->shape, x->shape, (size_t)x->ndim * sizeof(int64_t)) != 0) {
    fail(ctx, AD_ERR_SHAPE, "%s: v has shape %s and dtype %s; it must match x (%s, %s)", name,
         tshape(vec).s, ad_dtype_name((ad_dtype)vec->dtype), tshape(x).s,
         ad_dtype_name((ad_dtype)x->dtype));
    return NULL;
  }
  ad_tensor *v = variable_copy(ctx, name, x);
  ad_tensor *g = v ? recorded_gradient(ctx, name, f, user, v) : NULL;
  if (!g) return NULL;
  if (!requires_grad(g)) return ad_zeros(ctx, (ad_dtype)x->dtype, x->ndim, x->shape);
  ad_tensor *hv = NULL;
  if (ad_gradients(ctx, 1, &g, &vec, 1, &v, &hv, 0) != AD_OK) return NULL;
  return hv;
}
