/* libFuzzer target for the expression parser: arbitrary bytes are parsed,
   and every successful parse is evaluated on scalars and tensors,
   differentiated to second order, checked for domain problems and emitted
   as C. Built with -Dfuzz=true and CC=clang; see tests/expr/meson.build.

   Besides the sanitizers' reports, it aborts when an invariant fails: a
   failed parse must report where and why within the text, and the scalar
   and tensor evaluations must agree. A sixteenth of the inputs, chosen by
   a hash of the bytes, run a second time with an allocator that fails
   from one allocation on, which must give AD_ERR_MEMORY and leak nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"

/* Values that reach poles, kinks, overflow and NaN. */
static const double interesting[] = {-2, -1, -0.5, 0, 0.5, 1, 2, 3, 1e300, -1e-300, NAN, INFINITY};
#define INTERESTING_COUNT (sizeof interesting / sizeof interesting[0])

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_expr: %s: %s\n", what, detail);
  abort();
}

/* Fails unless st is AD_OK or AD_ERR_MEMORY, the only failure that a valid
   expression and valid values allow. */
static void expect_ok(ad_ctx *ctx, ad_status st, const char *what) {
  if (st != AD_OK && st != AD_ERR_MEMORY) fail(what, ad_errmsg(ctx));
}

static void check_parse_error(ad_ctx *ctx, const ad_expr_error *error, size_t size) {
  if (error->status == AD_OK) fail("failed parse", "status AD_OK");
  if (error->status == AD_ERR_MEMORY) return;
  if (error->offset > size || error->length > size - error->offset)
    fail("failed parse", "the error position is outside the text");
  if (error->reason[0] == '\0') fail("failed parse", "no reason");
  if (ad_errcode(ctx) != error->status) fail("failed parse", "the context holds another status");
}

/* Compares the scalar derivatives with a tensor evaluation at the same point. */
static void check_scalars(ad_ctx *ctx, const ad_expr *e, const double *point) {
  int n = ad_expr_var_count(e);
  double value, gradient[8], hessian[16];
  bool with_hessian = n <= 4;
  ad_status st = ad_expr_derivatives(ctx, e, point, &value, gradient, with_hessian ? hessian : NULL);
  expect_ok(ctx, st, "ad_expr_derivatives");
  if (st != AD_OK) return;

  ad_expr_binding bindings[8];
  for (int i = 0; i < n; i++) bindings[i] = ad_expr_scalar(ad_expr_var_name(e, i), point[i]);
  ad_tensor *f = ad_expr_eval_named(ctx, e, n, bindings);
  if (!f) {
    expect_ok(ctx, ad_errcode(ctx), "ad_expr_eval_named");
    return;
  }
  double again;
  expect_ok(ctx, ad_item(f, &again), "ad_item");
  bool same = (isnan(value) && isnan(again)) || value == again;
  if (!same) fail("scalar evaluations differ", ad_expr_text(e));

  ad_expr_issue issues[4];
  if (ad_expr_check_domain(ctx, e, point, issues, 4) < 0)
    expect_ok(ctx, ad_errcode(ctx), "ad_expr_check_domain");
}

/* Evaluates on [3]-shaped float64 tensors and on float32, and runs backward. */
static void check_tensors(ad_ctx *ctx, const ad_expr *e, const uint8_t *data, size_t size) {
  int n = ad_expr_var_count(e);
  ad_tensor *values[8];
  for (int i = 0; i < n; i++) {
    double v[3];
    for (int k = 0; k < 3; k++)
      v[k] = interesting[(data[(size_t)(3 * i + k) % size] + (size_t)k) % INTERESTING_COUNT];
    values[i] = ad_from_f64(ctx, 1, (int64_t[]){3}, v);
    if (!values[i]) return;
    ad_set_requires_grad(values[i], true);
  }
  ad_tensor *f = ad_expr_eval(ctx, e, values);
  if (!f) {
    expect_ok(ctx, ad_errcode(ctx), "ad_expr_eval");
    return;
  }
  ad_tensor *total = ad_sum_all(ctx, f);
  if (total && ad_requires_grad(total)) expect_ok(ctx, ad_backward(ctx, total, NULL), "ad_backward");

  for (int i = 0; i < n; i++) {
    values[i] = ad_cast(ctx, values[i], AD_F32);
    if (!values[i]) return;
  }
  if (!ad_expr_eval(ctx, e, values)) expect_ok(ctx, ad_errcode(ctx), "ad_expr_eval float32");
}

/* An allocator that fails from allocation fail_at on. */
typedef struct failing_allocator {
  long count, fail_at;
} failing_allocator;

static void *failing_alloc(void *user, size_t size) {
  failing_allocator *a = user;
  if (a->count++ >= a->fail_at) return NULL;
  return malloc(size);
}

static void failing_free(void *user, void *ptr, size_t size) {
  (void)user, (void)size;
  free(ptr);
}

/* Parses and exercises one input on a context using allocator. */
static void run_input(const uint8_t *data, size_t size, const ad_allocator *allocator) {
  static FILE *sink;
  if (!sink) sink = fopen("/dev/null", "w");
  ad_ctx *ctx = ad_ctx_new(allocator);
  if (!ctx || !sink) {
    ad_ctx_free(ctx);
    return;
  }
  ad_expr_error error;
  ad_expr *e = ad_expr_parse_n(ctx, (const char *)data, size, &error);
  if (!e) {
    check_parse_error(ctx, &error, size);
    ad_ctx_free(ctx);
    return;
  }
  if (error.status != AD_OK) fail("successful parse", "status is not AD_OK");

  /* Variables beyond eight are parsed but not evaluated, to keep each run
     short. */
  int n = ad_expr_var_count(e);
  if (n <= 8 && size > 0) {
    double point[8];
    for (int i = 0; i < n; i++) point[i] = interesting[data[(size_t)i % size] % INTERESTING_COUNT];
    check_scalars(ctx, e, point);
    ad_ctx_reset(ctx);
    check_tensors(ctx, e, data, size);
    ad_ctx_reset(ctx);
  }
  expect_ok(ctx, ad_expr_emit_c(ctx, e, "f", sink), "ad_expr_emit_c");
  ad_expr_free(e);
  ad_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run_input(data, size, NULL);
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < size; i++) hash = (hash ^ data[i]) * 16777619u;
  if ((hash & 15) == 0) {
    failing_allocator state = {0, (long)((hash >> 4) % 48)};
    ad_allocator allocator = {failing_alloc, failing_free, &state};
    run_input(data, size, &allocator);
  }
  return 0;
}
