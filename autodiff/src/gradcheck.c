/*
 * gradcheck.c: comparing reverse-mode derivatives with central differences.
 *
 * For every input element x_j that requires a gradient and every output
 * element y_o, the analytic value d y_o / d x_j comes from one reverse sweep
 * per output element, and the numeric value from
 *   (y_o(x_j + h) - y_o(x_j - h)) / ((x_j + h) - (x_j - h)),
 * where the denominator uses the perturbed values as stored, so rounding of
 * x_j + h in float32 does not bias the quotient.
 */
#include <float.h>
#include <math.h>

#include "internal.h"

typedef struct check_setup {
  double step, atol, rtol;
} check_setup;

static check_setup setup_for(ad_dtype dtype, const ad_gradcheck_options *o) {
  bool f64 = dtype == AD_F64;
  check_setup s = {f64 ? 1e-6 : 1e-3, f64 ? 1e-8 : 1e-3, f64 ? 1e-6 : 1e-2};
  if (o && o->step > 0) s.step = o->step;
  if (o && o->atol > 0) s.atol = o->atol;
  if (o && o->rtol > 0) s.rtol = o->rtol;
  return s;
}

static ad_tensor *evaluate(ad_ctx *ctx, ad_function f, void *user, ad_tensor *const *inputs) {
  ad_tensor *y = f(ctx, inputs, user);
  if (!y && ctx->error == AD_OK)
    fail(ctx, AD_ERR_ARGUMENT, "ad_gradcheck: the function returned NULL without an error");
  if (y && !check_arg(ctx, "ad_gradcheck", "function result", y, true)) return NULL;
  return y;
}

/* Analytic Jacobian blocks: jac[k] holds y.numel rows of inputs[k].numel. */
static ad_status analytic_jacobian(ad_ctx *ctx, ad_function f, void *user, int n,
                                   ad_tensor *const *inputs, const bool *active, double **jac,
                                   int64_t *out_numel) {
  ad_tensor *y = evaluate(ctx, f, user, inputs);
  if (!y) return ctx->error;
  *out_numel = y->numel;
  ad_tensor **targets = arena_alloc(ctx, (size_t)n * sizeof *targets, 16, "ad_gradcheck");
  ad_tensor **grads = arena_alloc(ctx, (size_t)n * sizeof *grads, 16, "ad_gradcheck");
  int *which = arena_alloc(ctx, (size_t)n * sizeof *which, 16, "ad_gradcheck");
  if (!targets || !grads || !which) return ctx->error;
  int m = 0;
  for (int k = 0; k < n; k++) {
    jac[k] = NULL;
    if (!active[k]) continue;
    jac[k] = arena_alloc(ctx, (size_t)(y->numel * inputs[k]->numel + 1) * sizeof(double), 64,
                         "ad_gradcheck");
    if (!jac[k]) return ctx->error;
    memset(jac[k], 0, (size_t)(y->numel * inputs[k]->numel) * sizeof(double));
    targets[m] = inputs[k];
    which[m++] = k;
  }
  if (m == 0 || !requires_grad(y)) return AD_OK;
  for (int64_t o = 0; o < y->numel; o++) {
    ad_tensor *seed = ad_zeros(ctx, (ad_dtype)y->dtype, y->ndim, y->shape);
    if (!seed) return ctx->error;
    store(seed, o, 1);
    ad_status st = ad_gradients(ctx, 1, &y, &seed, m, targets, grads, 0);
    if (st != AD_OK) return st;
    for (int i = 0; i < m; i++) {
      int k = which[i];
      for (int64_t j = 0; j < inputs[k]->numel; j++)
        jac[k][o * inputs[k]->numel + j] = load(grads[i], j);
    }
  }
  return AD_OK;
}

/* Evaluates f with element j of x set to value, without recording, and
   copies the output into out (numel doubles). */
static ad_status evaluate_at(ad_ctx *ctx, ad_function f, void *user, ad_tensor *const *inputs,
                             ad_tensor *x, int64_t j, double value, double *stored, double *out,
                             int64_t numel) {
  store(x, j, value);
  *stored = load(x, j);
  ad_tensor *y = evaluate(ctx, f, user, inputs);
  if (!y) return ctx->error;
  if (y->numel != numel)
    return fail(ctx, AD_ERR_SHAPE,
                "ad_gradcheck: the function returned %lld elements after a perturbation and "
                "%lld before; it must not change its output shape",
                (long long)y->numel, (long long)numel);
  for (int64_t o = 0; o < numel; o++) out[o] = load(y, o);
  return AD_OK;
}

/* Compares one input element's column of the Jacobian. */
static void compare_column(const check_setup *s, const double *jac, int64_t in_numel, int k,
                           int64_t j, const double *plus, const double *minus, double dx,
                           int64_t numel, ad_gradcheck_result *r, double *worst_ratio) {
  for (int64_t o = 0; o < numel; o++) {
    double numeric = (plus[o] - minus[o]) / dx;
    double analytic = jac ? jac[o * in_numel + j] : 0;
    double err = fabs(analytic - numeric);
    if (isnan(analytic) != isnan(numeric) || (isinf(analytic) && analytic != numeric))
      err = INFINITY;
    else if (isnan(analytic) || (isinf(analytic) && analytic == numeric))
      err = 0;
    double rel = err / fmax(fabs(numeric), DBL_MIN);
    /* Dividing an infinite or zero error by a tolerance built from an
       infinite or NaN numeric value would give NaN, which no comparison
       catches: those errors fail or pass outright. */
    double ratio = 0;
    if (isinf(err)) ratio = INFINITY;
    else if (err > 0) ratio = err / (s->atol + s->rtol * fabs(numeric));
    if (err > r->max_abs_error) r->max_abs_error = err;
    if (ratio > *worst_ratio || r->input < 0) {
      *worst_ratio = ratio;
      r->max_rel_error = rel;
      r->input = k;
      r->input_index = j;
      r->output_index = o;
      r->analytic = analytic;
      r->numeric = numeric;
    }
  }
}

ad_status ad_gradcheck(ad_ctx *ctx, ad_function f, void *user, int ninputs,
                       ad_tensor *const *inputs, const ad_gradcheck_options *options,
                       ad_gradcheck_result *result) {
  const char *name = "ad_gradcheck";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!f || !result || ninputs < 1 || !inputs)
    return fail(ctx, AD_ERR_ARGUMENT, "%s: needs a function, a result and at least one input",
                name);
  memset(result, 0, sizeof *result);
  result->input = -1;
  bool *active = arena_alloc(ctx, (size_t)ninputs, 16, name);
  double **jac = arena_alloc(ctx, (size_t)ninputs * sizeof *jac, 16, name);
  if (!active || !jac) return ctx->error;
  for (int k = 0; k < ninputs; k++) {
    if (!check_arg(ctx, name, "input", inputs[k], false)) return ctx->error;
    active[k] = requires_grad(inputs[k]);
  }
  int64_t numel = 0;
  ad_status st = analytic_jacobian(ctx, f, user, ninputs, inputs, active, jac, &numel);
  if (st != AD_OK) return st;
  double *plus = arena_alloc(ctx, (size_t)(numel + 1) * sizeof(double), 64, name);
  double *minus = arena_alloc(ctx, (size_t)(numel + 1) * sizeof(double), 64, name);
  if (!plus || !minus) return ctx->error;
  bool was_enabled = ad_set_grad_enabled(ctx, false);
  double worst = 0;
  for (int k = 0; st == AD_OK && k < ninputs; k++) {
    if (!active[k]) continue;
    ad_tensor *x = inputs[k];
    check_setup s = setup_for((ad_dtype)x->dtype, options);
    for (int64_t j = 0; st == AD_OK && j < x->numel; j++) {
      double v = load(x, j), xp = 0, xm = 0;
      double h = s.step * fmax(1.0, fabs(v));
      st = evaluate_at(ctx, f, user, inputs, x, j, v + h, &xp, plus, numel);
      if (st == AD_OK) st = evaluate_at(ctx, f, user, inputs, x, j, v - h, &xm, minus, numel);
      store(x, j, v);
      if (st == AD_OK)
        compare_column(&s, jac[k], x->numel, k, j, plus, minus, xp - xm, numel, result, &worst);
      result->evaluations += 2;
    }
  }
  ad_set_grad_enabled(ctx, was_enabled);
  result->evaluations += 1;
  result->passed = st == AD_OK && worst <= 1;
  return st;
}

/* ---- Second order --------------------------------------------------- */

typedef struct second_order {
  ad_function f;
  void *user;
  int n;
  uint64_t seed;
} second_order;

/* The gradients of <y, u> with respect to every input that requires one,
   flattened and joined into one 1-d tensor. u is random with a fixed seed,
   so every call uses the same u. */
static ad_tensor *gradient_of(ad_ctx *ctx, const second_order *so, ad_tensor *const *inputs,
                              ad_tensor *y) {
  ad_rng rng;
  ad_rng_seed(&rng, so->seed);
  ad_tensor *u = ad_rand_uniform(ctx, &rng, (ad_dtype)y->dtype, y->ndim, y->shape, 0.5, 1.5);
  ad_tensor **targets = arena_alloc(ctx, (size_t)so->n * sizeof *targets, 16, "ad_gradgradcheck");
  ad_tensor **grads = arena_alloc(ctx, (size_t)so->n * sizeof *grads, 16, "ad_gradgradcheck");
  if (!u || !targets || !grads) return NULL;
  int m = 0;
  int64_t total = 0;
  for (int k = 0; k < so->n; k++) {
    if (!requires_grad(inputs[k])) continue;
    targets[m++] = inputs[k];
    total += inputs[k]->numel;
  }
  if (m == 0 || !requires_grad(y)) return ad_zeros(ctx, (ad_dtype)y->dtype, 1, &total);
  if (ad_gradients(ctx, 1, &y, &u, m, targets, grads, AD_CREATE_GRAPH) != AD_OK) return NULL;
  /* Inputs of both float dtypes have gradients of both, and concat needs one
     dtype, so mixed gradients are joined in float64. */
  bool mixed = false;
  for (int i = 1; i < m; i++) mixed |= grads[i]->dtype != grads[0]->dtype;
  for (int i = 0; i < m; i++) {
    grads[i] = ad_reshape(ctx, grads[i], 1, (int64_t[]){-1});
    if (mixed) grads[i] = ad_cast(ctx, grads[i], AD_F64);
    if (!grads[i]) return NULL;
  }
  return ad_concat(ctx, m, grads, 0);
}

/* x -> gradient_of(f(x)): its Jacobian is the second derivative of f
   projected on u. */
static ad_tensor *gradient_function(ad_ctx *ctx, ad_tensor *const *inputs, void *user) {
  second_order *so = user;
  /* gradcheck records nothing while it perturbs inputs, but this gradient
     must be recorded to be differentiated, so recording is on throughout. */
  bool was = ad_set_grad_enabled(ctx, true);
  ad_tensor *y = so->f(ctx, inputs, so->user);
  ad_tensor *joined = y ? gradient_of(ctx, so, inputs, y) : NULL;
  ad_set_grad_enabled(ctx, was);
  return joined;
}

ad_status ad_gradgradcheck(ad_ctx *ctx, ad_function f, void *user, int ninputs,
                           ad_tensor *const *inputs, const ad_gradcheck_options *options,
                           ad_gradcheck_result *result) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!f) return fail(ctx, AD_ERR_ARGUMENT, "ad_gradgradcheck: the function is NULL");
  second_order so = {f, user, ninputs, options && options->seed ? options->seed : 0x5eedULL};
  return ad_gradcheck(ctx, gradient_function, &so, ninputs, inputs, options, result);
}
