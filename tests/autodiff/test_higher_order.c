/*
 * Higher derivatives and the helpers built on them: Hessians of known
 * functions, Hessian-vector products against the full Hessian, Jacobians of
 * known maps, third derivatives through nested ad_gradients, and the
 * verdicts of ad_gradcheck itself.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

static ad_ctx *new_ctx(void) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  return ctx;
}

/* ---- Hessians --------------------------------------------------------- */

/* x^T A x for a 3 x 3 matrix A passed as user data. */
static ad_tensor *quadratic_form(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  ad_tensor *a = ad_from_f64(ctx, 2, (int64_t[]){3, 3}, user);
  return ad_dot(ctx, in[0], ad_matmul(ctx, a, in[0]));
}

START_TEST(test_hessian_quadratic_form) {
  ad_ctx *ctx = new_ctx();
  const double a[9] = {1, 2, -3, 0.5, 4, 7, -1, 0, 2};
  for (int trial = 0; trial < 3; trial++) {
    double point[3] = {0.3 * trial, -1.0 + trial, 2.0 - trial};
    ad_tensor *x = tensor_of(ctx, "3", point);
    ad_tensor *h = ad_hessian(ctx, quadratic_form, (void *)a, x);
    ck_assert_msg(h != NULL, "hessian failed: %s", ad_errmsg(ctx));
    assert_shape("hessian of x^T A x", h, "3,3");
    double expected[9];
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) expected[i * 3 + j] = a[i * 3 + j] + a[j * 3 + i];
    assert_values("hessian of x^T A x = A + A^T", h, expected, 9, 1e-13, 1e-13);
    ck_assert(!ad_requires_grad(x));
  }
  ad_ctx_free(ctx);
}
END_TEST

/* Rosenbrock's function (1 - x)^2 + 100 (y - x^2)^2 of x = in[0][0] and
   y = in[0][1], picked out with slices so that their adjoints are
   differentiated too. */
static ad_tensor *rosenbrock(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x = ad_slice(ctx, in[0], 0, 0, 1, 1);
  ad_tensor *y = ad_slice(ctx, in[0], 0, 1, 2, 1);
  ad_tensor *a = ad_pow_scalar(ctx, ad_add_scalar(ctx, ad_neg(ctx, x), 1), 2);
  ad_tensor *b = ad_pow_scalar(ctx, ad_sub(ctx, y, ad_mul(ctx, x, x)), 2);
  return ad_sum_all(ctx, ad_add(ctx, a, ad_mul_scalar(ctx, b, 100)));
}

START_TEST(test_hessian_rosenbrock) {
  ad_ctx *ctx = new_ctx();
  const double points[3][2] = {{1, 1}, {1.5, 0.5}, {-0.7, 2}};
  for (int k = 0; k < 3; k++) {
    double x = points[k][0], y = points[k][1];
    ad_tensor *h = ad_hessian(ctx, rosenbrock, NULL, tensor_of(ctx, "2", points[k]));
    const double expected[4] = {2 - 400 * (y - x * x) + 800 * x * x, -400 * x, -400 * x, 200};
    char label[64];
    snprintf(label, sizeof label, "Rosenbrock hessian at (%g, %g)", x, y);
    assert_values(label, h, expected, 4, 1e-10, 1e-13);
  }
  ad_ctx_free(ctx);
}
END_TEST

static ad_tensor *constant_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)in, (void)user;
  return ad_scalar(ctx, AD_F64, 3);
}

static ad_tensor *linear_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sum_all(ctx, ad_mul_scalar(ctx, in[0], 2));
}

START_TEST(test_hessian_without_curvature) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *x = tensor_of(ctx, "2", (const double[]){1, 2});
  const double zeros[4] = {0, 0, 0, 0};
  assert_values("hessian of a constant", ad_hessian(ctx, constant_function, NULL, x), zeros, 4,
                0, 0);
  assert_values("hessian of a linear function", ad_hessian(ctx, linear_function, NULL, x), zeros,
                4, 0, 0);
  ad_tensor *v = tensor_of(ctx, "2", (const double[]){3, 4});
  assert_values("hvp of a linear function", ad_hvp(ctx, linear_function, NULL, x, v), zeros, 2,
                0, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Hessian-vector products ---------------------------------------- */

/* log sum exp(W x) + ||x||^2 / 2 * sum(x^3) for a fixed 4 x 3 W. */
static ad_tensor *smooth_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  const double w[12] = {0.5, -1, 0.25, 2, 0.1, -0.3, -0.7, 0.8, 1.2, 0.05, -0.4, 0.6};
  ad_tensor *x = in[0];
  ad_tensor *lse = ad_logsumexp(ctx, ad_matmul(ctx, ad_from_f64(ctx, 2, (int64_t[]){4, 3}, w), x),
                                0, NULL, false);
  ad_tensor *sq = ad_mul_scalar(ctx, ad_sum_all(ctx, ad_mul(ctx, x, x)), 0.5);
  ad_tensor *cube = ad_sum_all(ctx, ad_pow_scalar(ctx, x, 3));
  return ad_add(ctx, lse, ad_mul(ctx, sq, cube));
}

static ad_tensor *softmax_loss(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *logits = ad_reshape(ctx, in[0], 2, (int64_t[]){2, 3});
  ad_tensor *target = ad_from_i64(ctx, 1, (int64_t[]){2}, (const int64_t[]){2, 0});
  return ad_cross_entropy(ctx, ad_tanh(ctx, logits), target, AD_REDUCE_MEAN);
}

START_TEST(test_hvp_equals_hessian_times_v) {
  ad_function functions[3] = {smooth_function, rosenbrock, softmax_loss};
  const char *names[3] = {"smooth", "rosenbrock", "softmax loss"};
  const int sizes[3] = {3, 2, 6};
  ad_ctx *ctx = new_ctx();
  ad_rng rng;
  ad_rng_seed(&rng, 11);
  for (int k = 0; k < 3; k++) {
    int64_t n = sizes[k];
    ad_tensor *x = ad_rand_uniform(ctx, &rng, AD_F64, 1, &n, -1, 1);
    ad_tensor *v = ad_rand_uniform(ctx, &rng, AD_F64, 1, &n, -1, 1);
    ad_tensor *h = ad_hessian(ctx, functions[k], NULL, x);
    ad_tensor *hv = ad_hvp(ctx, functions[k], NULL, x, v);
    ck_assert_msg(h && hv, "%s: %s", names[k], ad_errmsg(ctx));
    ad_tensor *expected = ad_matmul(ctx, h, v);
    char label[64];
    snprintf(label, sizeof label, "%s: hvp against H v", names[k]);
    assert_tensors_close(label, hv, expected, 1e-12, 1e-11);
    /* The Hessian of a smooth function is symmetric. */
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < i; j++)
        ck_assert_msg(fabs(flat_get(h, i * n + j) - flat_get(h, j * n + i)) < 1e-11,
                      "%s: H[%lld, %lld] differs from its transpose", names[k], (long long)i,
                      (long long)j);
  }
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Jacobians -------------------------------------------------------- */

static ad_tensor *matrix_map(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  const double a[6] = {1, -2, 0.5, 3, 0, 4};
  return ad_matmul(ctx, ad_from_f64(ctx, 2, (int64_t[]){2, 3}, a), in[0]);
}

static ad_tensor *square_map(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_mul(ctx, in[0], in[0]);
}

static ad_tensor *softmax_map(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_softmax(ctx, in[0], 0);
}

/* [2, 2] -> [2]: row sums of x^2. */
static ad_tensor *row_norms(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sum(ctx, ad_mul(ctx, in[0], in[0]), 1, (const int[]){1}, false);
}

START_TEST(test_jacobian_known_maps) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *x = tensor_of(ctx, "3", (const double[]){0.5, -1, 2});

  ad_tensor *j = ad_jacobian(ctx, matrix_map, NULL, x);
  assert_shape("jacobian of A x", j, "2,3");
  assert_values("jacobian of A x = A", j, (const double[]){1, -2, 0.5, 3, 0, 4}, 6, 0, 0);

  j = ad_jacobian(ctx, square_map, NULL, x);
  assert_shape("jacobian of x^2", j, "3,3");
  assert_values("jacobian of x^2 = diag(2x)", j, (const double[]){1, 0, 0, 0, -2, 0, 0, 0, 4}, 9,
                0, 0);

  j = ad_jacobian(ctx, softmax_map, NULL, x);
  double s[3], z = exp(0.5) + exp(-1) + exp(2), expected[9];
  s[0] = exp(0.5) / z, s[1] = exp(-1) / z, s[2] = exp(2) / z;
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) expected[a * 3 + b] = (a == b ? s[a] : 0) - s[a] * s[b];
  assert_values("jacobian of softmax = diag(s) - s s^T", j, expected, 9, 1e-15, 1e-14);

  ad_tensor *m = tensor_of(ctx, "2,2", (const double[]){1, 2, 3, 4});
  j = ad_jacobian(ctx, row_norms, NULL, m);
  assert_shape("jacobian of [2, 2] -> [2]", j, "2,2,2");
  assert_values("jacobian of row sums of x^2", j, (const double[]){2, 4, 0, 0, 0, 0, 6, 8}, 8, 0,
                0);

  j = ad_jacobian(ctx, constant_function, NULL, x);
  assert_shape("jacobian of a constant", j, "3");
  assert_values("jacobian of a constant", j, (const double[]){0, 0, 0}, 3, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Third and fourth derivatives ------------------------------------- */

/* The n-th derivatives of f at x by nested ad_gradients with
   AD_CREATE_GRAPH; d[0] is f itself. */
static void derivatives(ad_ctx *ctx, ad_function f, double x0, int n, double *d) {
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, x0));
  ad_tensor *y = f(ctx, &x, NULL);
  ck_assert_int_eq(ad_item(y, &d[0]), AD_OK);
  for (int k = 1; k <= n; k++) {
    ad_tensor *g = NULL;
    if (!ad_requires_grad(y)) {
      d[k] = 0;
      continue;
    }
    ck_assert_msg(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, AD_CREATE_GRAPH) == AD_OK,
                  "order %d: %s", k, ad_errmsg(ctx));
    ck_assert_int_eq(ad_item(g, &d[k]), AD_OK);
    y = g;
  }
}

/* x exp(2x): the k-th derivative is exp(2x) 2^(k-1) (2x + k). */
static ad_tensor *x_exp_2x(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_mul(ctx, in[0], ad_exp(ctx, ad_mul_scalar(ctx, in[0], 2)));
}

static ad_tensor *fifth_power(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x2 = ad_mul(ctx, in[0], in[0]);
  return ad_mul(ctx, ad_mul(ctx, x2, x2), in[0]);
}

/* sin(x) / x with a slice and a concatenation on the way. */
static ad_tensor *sinc_through_shapes(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *v = ad_unsqueeze(ctx, in[0], 0);
  ad_tensor *pair = ad_concat(ctx, 2, (ad_tensor *[]){ad_sin(ctx, v), v}, 0);
  ad_tensor *num = ad_slice(ctx, pair, 0, 0, 1, 1);
  ad_tensor *den = ad_index_select(ctx, pair, 0, ad_from_i64(ctx, 1, (int64_t[]){1},
                                                             (const int64_t[]){-1}));
  return ad_sum_all(ctx, ad_div(ctx, num, den));
}

START_TEST(test_third_derivatives) {
  ad_ctx *ctx = new_ctx();
  double d[5];
  for (int trial = 0; trial < 3; trial++) {
    double x = -0.5 + 0.75 * trial;
    derivatives(ctx, x_exp_2x, x, 4, d);
    for (int k = 1; k <= 4; k++) {
      double expected = exp(2 * x) * pow(2, k - 1) * (2 * x + k);
      ck_assert_msg(fabs(d[k] - expected) <= 1e-12 * fabs(expected),
                    "x exp(2x) at %g, order %d: %.17g, expected %.17g", x, k, d[k], expected);
    }
    derivatives(ctx, fifth_power, x, 4, d);
    const double powers[5] = {pow(x, 5), 5 * pow(x, 4), 20 * pow(x, 3), 60 * x * x, 120 * x};
    for (int k = 0; k <= 4; k++)
      ck_assert_msg(fabs(d[k] - powers[k]) <= 1e-12 * fmax(1, fabs(powers[k])),
                    "x^5 at %g, order %d: %.17g, expected %.17g", x, k, d[k], powers[k]);
  }
  /* (sin x / x)''' = (-x^3 cos x + 3 x^2 sin x + 6 x cos x - 6 sin x) / x^4 */
  double x = 1.3;
  derivatives(ctx, sinc_through_shapes, x, 3, d);
  double expected = (-pow(x, 3) * cos(x) + 3 * x * x * sin(x) + 6 * x * cos(x) - 6 * sin(x)) /
                    pow(x, 4);
  ck_assert_msg(fabs(d[3] - expected) <= 1e-12, "sinc''' %.17g, expected %.17g", d[3], expected);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Verdicts of ad_gradcheck ------------------------------------------ */

/* x * c where c grows by one at every call: the analytic gradient (from
   the first call) cannot match the numeric one. */
static ad_tensor *drifting(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  int *calls = user;
  (*calls)++;
  return ad_mul_scalar(ctx, in[0], *calls);
}

static ad_tensor *log_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_log(ctx, in[0]);
}

static ad_tensor *sqrt_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sqrt(ctx, in[0]);
}

static ad_tensor *dot_product(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sum_all(ctx, ad_mul(ctx, in[0], in[1]));
}

START_TEST(test_gradcheck_verdicts) {
  ad_ctx *ctx = new_ctx();
  ad_gradcheck_result r;

  ad_tensor *x = variable(tensor_of(ctx, "3", (const double[]){1, 2, 3}));
  int calls = 0;
  ck_assert_int_eq(ad_gradcheck(ctx, drifting, &calls, 1, &x, NULL, &r), AD_OK);
  ck_assert_msg(!r.passed, "a wrong gradient passed");
  ck_assert_int_eq(r.input, 0);
  ck_assert_int_eq(r.evaluations, 7);
  ck_assert_double_eq(r.analytic, 1);
  ck_assert_int_eq(calls, 7);
  assert_values("inputs restored", x, (const double[]){1, 2, 3}, 3, 0, 0);

  /* log at 1e-6 with step 1e-6: the numeric value is inf (log 0 = -inf)
     while the analytic one is 1e6, which must fail even after a passing
     element. */
  ad_tensor *y = variable(tensor_of(ctx, "2", (const double[]){1, 1e-6}));
  ck_assert_int_eq(ad_gradcheck(ctx, log_function, NULL, 1, &y, NULL, &r), AD_OK);
  ck_assert_msg(!r.passed, "an infinite numeric derivative passed");
  ck_assert_int_eq(r.input_index, 1);
  ck_assert(isinf(r.numeric));

  /* sqrt of a negative number: NaN on both sides agrees. */
  ad_tensor *z = variable(tensor_of(ctx, "1", (const double[]){-1}));
  ck_assert_int_eq(ad_gradcheck(ctx, sqrt_function, NULL, 1, &z, NULL, &r), AD_OK);
  ck_assert_msg(r.passed, "NaN against NaN failed");

  /* Inputs without the flag are held fixed and not reported. */
  ad_tensor *a = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *b = tensor_of(ctx, "2", (const double[]){3, 4});
  ad_tensor *ab[2] = {a, b};
  ck_assert_int_eq(ad_gradcheck(ctx, dot_product, NULL, 2, ab, NULL, &r), AD_OK);
  ck_assert(r.passed);
  ck_assert_int_eq(r.input, 0);
  ck_assert_int_eq(r.evaluations, 5);
  ck_assert_int_eq(ad_gradgradcheck(ctx, dot_product, NULL, 2, ab, NULL, &r), AD_OK);
  ck_assert(r.passed);

  /* Tight options fail a float32 check that the defaults pass. */
  ad_tensor *f = variable(ad_from_f32(ctx, 1, (int64_t[]){2}, (const float[]){0.7f, 1.3f}));
  ck_assert_int_eq(ad_gradcheck(ctx, log_function, NULL, 1, &f, NULL, &r), AD_OK);
  ck_assert_msg(r.passed, "float32 log with default tolerances: error %g", r.max_abs_error);
  ad_gradcheck_options tight = {.step = 1e-3, .atol = 1e-12, .rtol = 1e-12};
  ck_assert_int_eq(ad_gradcheck(ctx, log_function, NULL, 1, &f, &tight, &r), AD_OK);
  ck_assert(!r.passed);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *higher_order_suite(void) {
  Suite *s = suite_create("higher_order");
  TCase *tc = tcase_create("hessian");
  tcase_add_test(tc, test_hessian_quadratic_form);
  tcase_add_test(tc, test_hessian_rosenbrock);
  tcase_add_test(tc, test_hessian_without_curvature);
  tcase_add_test(tc, test_hvp_equals_hessian_times_v);
  suite_add_tcase(s, tc);
  tc = tcase_create("jacobian");
  tcase_add_test(tc, test_jacobian_known_maps);
  suite_add_tcase(s, tc);
  tc = tcase_create("nested_gradients");
  tcase_add_test(tc, test_third_derivatives);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradcheck");
  tcase_add_test(tc, test_gradcheck_verdicts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(higher_order_suite()); }
