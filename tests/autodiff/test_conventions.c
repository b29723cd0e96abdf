/*
 * Derivatives at points where none exists, as ad_ops.h documents them, and
 * numerical stability at extreme values.
 *
 * Every row of the table is checked in float64 and float32, through
 * ad_backward, ad_gradients with the fused kernels and ad_gradients with
 * AD_CREATE_GRAPH; rows with second derivatives also check the gradient of
 * the sum of the first-order gradient.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

#define MAX_VALUES 6

typedef struct convention_row {
  const char *name;
  ad_function f;
  int ninputs;
  int n; /* elements of each 1-d input */
  double x[2][MAX_VALUES];
  double grad[2][MAX_VALUES];  /* expected d sum(f) / d x */
  bool has_second;
  double second[MAX_VALUES];   /* expected d sum(d sum(f)/dx) / dx, one input only */
} convention_row;

static ad_tensor *f_relu(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_relu(ctx, in[0]);
}
static ad_tensor *f_abs(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_abs(ctx, in[0]);
}
static ad_tensor *f_leaky_relu(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_leaky_relu(ctx, in[0], 0.1);
}
static ad_tensor *f_elu(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_elu(ctx, in[0], 0.7);
}
static ad_tensor *f_clamp(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_clamp(ctx, in[0], -1, 2);
}
static ad_tensor *f_clamp_upper(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_clamp(ctx, in[0], -INFINITY, 1);
}
static ad_tensor *f_sqrt(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sqrt(ctx, in[0]);
}
static ad_tensor *f_cbrt(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_cbrt(ctx, in[0]);
}
static ad_tensor *f_pow0(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_pow_scalar(ctx, in[0], 0);
}
static ad_tensor *f_pow_half(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_pow_scalar(ctx, in[0], 0.5);
}
static ad_tensor *f_pow2(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_pow_scalar(ctx, in[0], 2);
}
static ad_tensor *f_pow(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_pow(ctx, in[0], in[1]);
}
static ad_tensor *f_minimum(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_minimum(ctx, in[0], in[1]);
}
static ad_tensor *f_maximum(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_maximum(ctx, in[0], in[1]);
}
static ad_tensor *f_hypot(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_hypot(ctx, in[0], in[1]);
}
static ad_tensor *f_max_all(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_max(ctx, in[0], 0, NULL, false);
}
static ad_tensor *f_min_all(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_min(ctx, in[0], 0, NULL, false);
}
static ad_tensor *f_norm_all(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_norm(ctx, in[0], 0, NULL, false);
}

/* where(x > 0, sqrt(x), 0) */
static ad_tensor *f_where_sqrt(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x = in[0];
  ad_tensor *zero = ad_scalar(ctx, ad_tensor_dtype(x), 0);
  return ad_where(ctx, ad_gt(ctx, x, zero), ad_sqrt(ctx, x), zero);
}

/* where(x != 0, sin(x) / x, 1) */
static ad_tensor *f_where_sinc(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x = in[0];
  ad_tensor *zero = ad_scalar(ctx, ad_tensor_dtype(x), 0);
  ad_tensor *one = ad_scalar(ctx, ad_tensor_dtype(x), 1);
  return ad_where(ctx, ad_ne(ctx, x, zero), ad_div(ctx, ad_sin(ctx, x), x), one);
}

/* where(x <= 1, 0, log(x - 1)), whose unselected branch takes the log of 0
   and of negative numbers. */
static ad_tensor *f_where_log(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x = in[0];
  ad_tensor *one = ad_scalar(ctx, ad_tensor_dtype(x), 1);
  ad_tensor *zero = ad_scalar(ctx, ad_tensor_dtype(x), 0);
  return ad_where(ctx, ad_le(ctx, x, one), zero, ad_log(ctx, ad_sub(ctx, x, one)));
}

static const double SIN1 = 0.8414709848078965, COS1 = 0.5403023058681398;

static const convention_row rows[] = {
    {"relu", f_relu, 1, 3, {{0, -1, 2}}, {{0, 0, 1}}, true, {0, 0, 0}},
    {"abs", f_abs, 1, 3, {{0, -3, 2}}, {{0, -1, 1}}, true, {0, 0, 0}},
    {"leaky_relu", f_leaky_relu, 1, 2, {{0, -2}}, {{0.1, 0.1}}, true, {0, 0}},
    {"elu", f_elu, 1, 1, {{0}}, {{0.7}}, true, {0.7}},
    {"clamp at bounds", f_clamp, 1, 5, {{-1, 2, -1.5, 2.5, 0}}, {{1, 1, 0, 0, 1}}, true,
     {0, 0, 0, 0, 0}},
    {"clamp upper only", f_clamp_upper, 1, 3, {{1, -1e30, 1.5}}, {{1, 1, 0}}, true, {0, 0, 0}},
    {"sqrt at zero", f_sqrt, 1, 2, {{0, 4}}, {{INFINITY, 0.25}}, false, {0}},
    {"cbrt at zero", f_cbrt, 1, 2, {{0, 8}}, {{INFINITY, 1.0 / 12}}, false, {0}},
    {"pow_scalar exponent 0", f_pow0, 1, 3, {{0, 3, -2}}, {{0, 0, 0}}, true, {0, 0, 0}},
    {"pow_scalar exponent 0.5", f_pow_half, 1, 2, {{0, 4}}, {{INFINITY, 0.25}}, false, {0}},
    {"pow_scalar exponent 2", f_pow2, 1, 2, {{0, -3}}, {{0, -6}}, true, {2, 2}},
    {"pow exponent 0", f_pow, 2, 3, {{0, 2, -1}, {0, 0, 0}}, {{0, 0, 0}, {0, 0.6931471805599453, NAN}},
     false, {0}},
    {"pow base 0", f_pow, 2, 3, {{0, 0, 0}, {1, 2.5, 2}}, {{1, 0, 0}, {0, 0, 0}}, false, {0}},
    {"minimum tie", f_minimum, 2, 3, {{1, 2, -1}, {1, 0, -1}}, {{0.5, 0, 0.5}, {0.5, 1, 0.5}},
     false, {0}},
    {"maximum tie", f_maximum, 2, 3, {{1, 2, -1}, {1, 0, -1}}, {{0.5, 1, 0.5}, {0.5, 0, 0.5}},
     false, {0}},
    {"hypot at origin", f_hypot, 2, 2, {{0, 3}, {0, 4}}, {{0, 0.6}, {0, 0.8}}, false, {0}},
    {"max reduction ties", f_max_all, 1, 4, {{1, 3, 3, -2}}, {{0, 0.5, 0.5, 0}}, true,
     {0, 0, 0, 0}},
    {"min reduction ties", f_min_all, 1, 4, {{2, 1, 1, 1}}, {{0, 1.0 / 3, 1.0 / 3, 1.0 / 3}}, true,
     {0, 0, 0, 0}},
    {"max reduction with NaN", f_max_all, 1, 3, {{1, NAN, 2}}, {{0, 1, 0}}, true, {0, 0, 0}},
    {"min reduction with NaNs", f_min_all, 1, 3, {{NAN, 0, NAN}}, {{0.5, 0, 0.5}}, true,
     {0, 0, 0}},
    {"norm at zero", f_norm_all, 1, 3, {{0, 0, 0}}, {{0, 0, 0}}, false, {0}},
    {"where around sqrt", f_where_sqrt, 1, 3, {{0, -1, 4}}, {{0, 0, 0.25}}, true,
     {0, 0, -1.0 / 32}},
    {"where around sinc", f_where_sinc, 1, 2, {{0, 1}}, {{0, COS1 - SIN1}}, true,
     /* d2/dx2 sin(x)/x at 1 = -sin 1 - 2 cos 1 + 2 sin 1 */
     {0, SIN1 - 2 * COS1}},
    {"where around log", f_where_log, 1, 3, {{0, 1, 3}}, {{0, 0, 0.5}}, true, {0, 0, -0.25}},
};

#define ROW_COUNT ((int)(sizeof rows / sizeof *rows))

static ad_tensor *make_input(ad_ctx *ctx, const convention_row *row, int k, ad_dtype dtype) {
  int64_t n = row->n;
  ad_tensor *t = ad_zeros(ctx, dtype, 1, &n);
  ck_assert_ptr_nonnull(t);
  for (int64_t i = 0; i < n; i++) ck_assert_int_eq(ad_set(t, &i, row->x[k][i]), AD_OK);
  return variable(t);
}

static void check_values(const char *label, const ad_tensor *t, const double *expected, int n,
                         ad_dtype dtype) {
  double tol = dtype == AD_F32 ? 1e-6 : 1e-14;
  assert_values(label, t, expected, n, tol, tol);
}

static void check_row(const convention_row *row, ad_dtype dtype) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  ad_tensor *x[2];
  for (int k = 0; k < row->ninputs; k++) x[k] = make_input(ctx, row, k, dtype);
  ad_tensor *y = row->f(ctx, x, NULL);
  ck_assert_msg(y != NULL, "%s: forward failed: %s", row->name, ad_errmsg(ctx));
  ad_tensor *seed = ad_ones(ctx, dtype, ad_ndim(y), ad_shape(y));
  char label[160];

  /* The three first-order paths. */
  ad_tensor *fused[2], *graph[2];
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, &seed, row->ninputs, x, fused, 0), AD_OK);
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, &seed, row->ninputs, x, graph, AD_CREATE_GRAPH),
                   AD_OK);
  ck_assert_int_eq(ad_backward(ctx, y, seed), AD_OK);
  for (int k = 0; k < row->ninputs; k++) {
    snprintf(label, sizeof label, "%s (%s) fused gradient of input %d", row->name,
             ad_dtype_name(dtype), k);
    check_values(label, fused[k], row->grad[k], row->n, dtype);
    snprintf(label, sizeof label, "%s (%s) graph gradient of input %d", row->name,
             ad_dtype_name(dtype), k);
    check_values(label, graph[k], row->grad[k], row->n, dtype);
    snprintf(label, sizeof label, "%s (%s) ad_backward gradient of input %d", row->name,
             ad_dtype_name(dtype), k);
    check_values(label, ad_grad(x[k]), row->grad[k], row->n, dtype);
  }
  if (!row->has_second) {
    ad_ctx_free(ctx);
    return;
  }

  /* Second order: d sum(g) / dx, zero when g does not depend on x. */
  ad_tensor *total = ad_sum_all(ctx, graph[0]), *second = NULL;
  ck_assert_ptr_nonnull(total);
  if (ad_requires_grad(total)) {
    ck_assert_int_eq(ad_gradients(ctx, 1, &total, NULL, 1, x, &second, 0), AD_OK);
  } else {
    second = ad_zeros(ctx, dtype, 1, (int64_t[]){row->n});
  }
  snprintf(label, sizeof label, "%s (%s) second derivative", row->name, ad_dtype_name(dtype));
  check_values(label, second, row->second, row->n, dtype);
  ad_ctx_free(ctx);
}

START_TEST(test_convention_float64) { check_row(&rows[_i], AD_F64); }
END_TEST

START_TEST(test_convention_float32) { check_row(&rows[_i], AD_F32); }
END_TEST

/* A zero upstream element gives a zero contribution even where the local
   derivative is infinite or NaN. */
START_TEST(test_zero_upstream_gates_inf) {
  ad_dtype dtype = _i ? AD_F32 : AD_F64;
  ad_ctx *ctx = ad_ctx_new(NULL);
  int64_t n = 3;
  ad_tensor *x = variable(ad_zeros(ctx, dtype, 1, &n));
  ck_assert_int_eq(ad_set(x, (int64_t[]){2}, -1), AD_OK);
  /* sqrt'(0) = inf, log'(0) = inf, and log(-1) is NaN. */
  ad_tensor *y = ad_add(ctx, ad_sqrt(ctx, x), ad_log(ctx, x));
  ad_tensor *seed = ad_zeros(ctx, dtype, 1, &n);
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 1, &y, &seed, 1, &x, &g, flags), AD_OK);
    for (int64_t i = 0; i < n; i++)
      ck_assert_msg(flat_get(g, i) == 0, "%s flags %u: element %lld is %g, expected 0",
                    ad_dtype_name(dtype), flags, (long long)i, flat_get(g, i));
  }
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Stability at large values ------------------------------------- */

START_TEST(test_log_softmax_large_logits) {
  ad_dtype dtype = _i ? AD_F32 : AD_F64;
  ad_ctx *ctx = ad_ctx_new(NULL);
  int64_t shape[2] = {2, 3};
  const double values[6] = {1e4, 0, -1e4, -1e4, 1e4, 1e4};
  ad_tensor *x = variable(ad_zeros(ctx, dtype, 2, shape));
  for (int64_t i = 0; i < 6; i++)
    ck_assert_int_eq(ad_set(x, (int64_t[]){i / 3, i % 3}, values[i]), AD_OK);
  ad_tensor *y = ad_log_softmax(ctx, x, 1);
  const double expected[6] = {0, -1e4, -2e4, -2e4 - log(2), -log(2), -log(2)};
  assert_values("log_softmax of 1e4", y, expected, 6, 1e-6, 1e-7);

  /* With a one-hot seed the gradient is onehot - softmax. */
  ad_tensor *seed = ad_zeros(ctx, dtype, 2, shape);
  ck_assert_int_eq(ad_set(seed, (int64_t[]){0, 0}, 1), AD_OK);
  ck_assert_int_eq(ad_set(seed, (int64_t[]){1, 0}, 1), AD_OK);
  const double grad[6] = {0, 0, 0, 1, -0.5, -0.5};
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 1, &y, &seed, 1, &x, &g, flags), AD_OK);
    assert_values(flags ? "log_softmax gradient (graph)" : "log_softmax gradient (fused)", g,
                  grad, 6, 1e-7, 1e-7);
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_cross_entropy_large_logits) {
  ad_dtype dtype = _i ? AD_F32 : AD_F64;
  ad_ctx *ctx = ad_ctx_new(NULL);
  int64_t shape[2] = {2, 3};
  const double values[6] = {1e4, 0, -1e4, -1e4, 1e4, 1e4};
  ad_tensor *x = variable(ad_zeros(ctx, dtype, 2, shape));
  for (int64_t i = 0; i < 6; i++)
    ck_assert_int_eq(ad_set(x, (int64_t[]){i / 3, i % 3}, values[i]), AD_OK);
  ad_tensor *target = ad_from_i64(ctx, 1, (int64_t[]){2}, (int64_t[]){1, 1});
  ad_tensor *loss = ad_cross_entropy(ctx, x, target, AD_REDUCE_SUM);
  double value;
  ck_assert_int_eq(ad_item(loss, &value), AD_OK);
  /* The loss of sample 0 is 1e4 - 0 and that of sample 1 is log 2. */
  ck_assert_msg(values_close(value, 1e4 + log(2), 1e-3, 1e-7), "loss %.17g", value);
  const double grad[6] = {1, -1, 0, 0, -0.5, 0.5};
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 1, &loss, NULL, 1, &x, &g, flags), AD_OK);
    assert_values(flags ? "cross-entropy gradient (graph)" : "cross-entropy gradient (fused)", g,
                  grad, 6, 1e-7, 1e-7);
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_logsumexp_large_values) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "3", (const double[]){1e4, 1e4, -1e4}));
  ad_tensor *y = ad_logsumexp(ctx, x, 0, NULL, false);
  const double expected = 1e4 + log(2);
  assert_values("logsumexp of 1e4", y, &expected, 1, 1e-9, 1e-15);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  const double grad[3] = {0.5, 0.5, 0};
  assert_values("logsumexp gradient", ad_grad(x), grad, 3, 1e-12, 0);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_sigmoid_softplus_extremes) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "4", (const double[]){-800, -40, 40, 800}));
  ad_tensor *s = ad_sigmoid(ctx, x);
  const double sig[4] = {0, exp(-40) / (1 + exp(-40)), 1 / (1 + exp(-40)), 1};
  assert_values("sigmoid at extremes", s, sig, 4, 0, 1e-15);
  ad_tensor *p = ad_softplus(ctx, x);
  const double soft[4] = {0, log1p(exp(-40)), 40 + log1p(exp(-40)), 800};
  assert_values("softplus at extremes", p, soft, 4, 0, 1e-15);
  ck_assert_int_eq(ad_backward(ctx, ad_sum_all(ctx, p), NULL), AD_OK);
  assert_values("softplus gradient at extremes", ad_grad(x), sig, 4, 0, 1e-15);
  ad_ctx_free(ctx);
}
END_TEST

/* A correction of n or more clamps the divisor n - correction at 0, as
   PyTorch does: the variance is inf, or NaN when every element is equal. */
START_TEST(test_var_large_correction) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  for (int correction = 2; correction <= 3; correction++) {
    ad_tensor *v = ad_var(ctx, x, 0, NULL, correction, false);
    assert_values("variance with correction >= n", v, (const double[]){INFINITY}, 1, 0, 0);
    for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
      ad_tensor *g = NULL;
      ck_assert_int_eq(ad_gradients(ctx, 1, &v, NULL, 1, &x, &g, flags), AD_OK);
      assert_values("its gradient", g, (const double[]){-INFINITY, INFINITY}, 2, 0, 0);
    }
  }
  ad_tensor *same = tensor_of(ctx, "2", (const double[]){4, 4});
  ck_assert(isnan(flat_get(ad_var(ctx, same, 0, NULL, 2, false), 0)));
  ad_ctx_free(ctx);
}
END_TEST

/* relu's gradient is a select in both dtypes: a NaN upstream gradient
   reaches elements where x > 0 only, as in PyTorch's threshold_backward. */
START_TEST(test_relu_nan_upstream) {
  ad_dtype dtype = _i == 0 ? AD_F32 : AD_F64;
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_cast(ctx, tensor_of(ctx, "3", (const double[]){-1, 0, 2}), dtype));
  ad_tensor *seed = ad_cast(ctx, tensor_of(ctx, "3", (const double[]){NAN, NAN, NAN}), dtype);
  ad_tensor *g = NULL;
  ad_tensor *y = ad_relu(ctx, x);
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, &seed, 1, &x, &g, 0), AD_OK);
  ck_assert_msg(flat_get(g, 0) == 0, "%s: x = -1 got %g", ad_dtype_name(dtype), flat_get(g, 0));
  ck_assert_msg(flat_get(g, 1) == 0, "%s: x = 0 got %g", ad_dtype_name(dtype), flat_get(g, 1));
  ck_assert_msg(isnan(flat_get(g, 2)), "%s: x = 2 got %g", ad_dtype_name(dtype), flat_get(g, 2));
  ad_ctx_free(ctx);
}
END_TEST

/* A step larger than the axis keeps the first element: no overflow in the
   length computation. */
START_TEST(test_slice_huge_step) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *a = tensor_of(ctx, "4", (const double[]){5, 6, 7, 8});
  ad_tensor *s = ad_slice(ctx, a, 0, 1, 4, INT64_MAX);
  assert_shape("slice with step INT64_MAX", s, "1");
  assert_values("slice with step INT64_MAX", s, (const double[]){6}, 1, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *conventions_suite(void) {
  Suite *s = suite_create("conventions");
  TCase *tc = tcase_create("points_without_derivative");
  tcase_add_loop_test(tc, test_convention_float64, 0, ROW_COUNT);
  tcase_add_loop_test(tc, test_convention_float32, 0, ROW_COUNT);
  tcase_add_loop_test(tc, test_zero_upstream_gates_inf, 0, 2);
  tcase_add_loop_test(tc, test_relu_nan_upstream, 0, 2);
  tcase_add_test(tc, test_slice_huge_step);
  suite_add_tcase(s, tc);
  tc = tcase_create("stability");
  tcase_add_loop_test(tc, test_log_softmax_large_logits, 0, 2);
  tcase_add_loop_test(tc, test_cross_entropy_large_logits, 0, 2);
  tcase_add_test(tc, test_logsumexp_large_values);
  tcase_add_test(tc, test_sigmoid_softplus_extremes);
  tcase_add_test(tc, test_var_large_correction);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(conventions_suite()); }
