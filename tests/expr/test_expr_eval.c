/* Evaluating and differentiating expressions: every function against libm
   and its hand-written derivative, piecewise functions, second
   derivatives, tensors, bindings, domain problems and allocation
   failures. */
#include <stdio.h>

#include "expr_test_util.h"

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* ---- The worked example ------------------------------------------------ */

static ad_tensor *worked_example(ad_ctx *ctx, ad_tensor *const *inputs, void *user) {
  ad_expr_binding binding = ad_expr_tensor("x", inputs[0]);
  return ad_expr_eval_named(ctx, user, 1, &binding);
}

/* d/dx pow(x*x + 1, 3) = 6x(x^2 + 1)^2 is 300 at x = 2, and the second
   derivative 6(x^2 + 1)^2 + 24x^2(x^2 + 1) is 6*25 + 24*4*5 = 630. */
START_TEST(test_worked_example) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "pow(x*x + 1, 3)", NULL);
  ck_assert_ptr_nonnull(e);
  double x = 2, value, gradient, hessian;
  ck_assert_int_eq(ad_expr_derivatives(ctx, e, &x, &value, &gradient, &hessian), AD_OK);
  ck_assert_double_eq(value, 125);
  ck_assert_double_eq(gradient, 300);
  ck_assert_double_eq(hessian, 630);

  ad_tensor *leaf = ad_scalar(ctx, AD_F64, 2);
  ad_tensor *h = ad_hessian(ctx, worked_example, e, leaf);
  ck_assert_ptr_nonnull(h);
  ck_assert_int_eq(ad_item(h, &hessian), AD_OK);
  ck_assert_double_eq(hessian, 630);

  ck_assert_int_eq(ad_set_requires_grad(leaf, true), AD_OK);
  ad_tensor *y = ad_expr_eval(ctx, e, &leaf);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  ck_assert_int_eq(ad_item(ad_grad(leaf), &gradient), AD_OK);
  ck_assert_double_eq(gradient, 300);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* The example at the top of ad_expr.h, as written there. */
START_TEST(test_header_example) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 1), *y = ad_scalar(ctx, AD_F64, 2);
  ad_set_requires_grad(x, true);
  ad_set_requires_grad(y, true);

  ad_expr *e = ad_expr_parse(ctx, "x*y + sin(x)", NULL);
  if (!e) fprintf(stderr, "%s\n", ad_errmsg(ctx));
  ad_tensor *values[2] = {x, y};  // in the order of ad_expr_var_name
  ad_tensor *f = ad_expr_eval(ctx, e, values);
  ad_backward(ctx, f, NULL);      // x and y require a gradient
  ad_expr_free(e);

  double dx, dy;
  ck_assert_int_eq(ad_item(ad_grad(x), &dx), AD_OK);
  ck_assert_int_eq(ad_item(ad_grad(y), &dy), AD_OK);
  ck_assert_double_eq(dx, 2 + cos(1.0));
  ck_assert_double_eq(dy, 1);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Functions of one variable ----------------------------------------- */

static double sign_of(double x) {
  if (x > 0) return 1;
  if (x < 0) return -1;
  return 0;
}

/* Hand-written derivatives. */
static double d_sin(double x) { return cos(x); }
static double d_cos(double x) { return -sin(x); }
static double d_tan(double x) { return 1 / (cos(x) * cos(x)); }
static double d_asin(double x) { return 1 / sqrt(1 - x * x); }
static double d_acos(double x) { return -1 / sqrt(1 - x * x); }
static double d_atan(double x) { return 1 / (1 + x * x); }
static double d_sinh(double x) { return cosh(x); }
static double d_cosh(double x) { return sinh(x); }
static double d_tanh(double x) { return 1 / (cosh(x) * cosh(x)); }
static double d_exp(double x) { return exp(x); }
static double d_exp2(double x) { return exp2(x) * M_LN2; }
static double d_expm1(double x) { return exp(x); }
static double d_log(double x) { return 1 / x; }
static double d_log2(double x) { return 1 / (x * M_LN2); }
static double d_log10(double x) { return 1 / (x * M_LN10); }
static double d_log1p(double x) { return 1 / (1 + x); }
static double d_sqrt(double x) { return 0.5 / sqrt(x); }
static double d_cbrt(double x) { return 1 / (3 * cbrt(x) * cbrt(x)); }
static double d_fabs(double x) { return sign_of(x); }
static double d_erf(double x) { return M_2_SQRTPI * exp(-x * x); }
static double d_erfc(double x) { return -M_2_SQRTPI * exp(-x * x); }

typedef struct unary_case {
  const char *text;
  double (*f)(double);
  double (*df)(double);
  double points[4];
} unary_case;

static const unary_case unary_cases[] = {
    {"sin(x)", sin, d_sin, {-2, -0.5, 1, 3}},
    {"cos(x)", cos, d_cos, {-2, -0.5, 1, 3}},
    {"tan(x)", tan, d_tan, {-1.2, -0.3, 0.5, 1.3}},
    {"asin(x)", asin, d_asin, {-0.9, -0.2, 0.3, 0.8}},
    {"acos(x)", acos, d_acos, {-0.9, -0.2, 0.3, 0.8}},
    {"atan(x)", atan, d_atan, {-3, -0.5, 0.7, 10}},
    {"sinh(x)", sinh, d_sinh, {-2, -0.5, 1, 3}},
    {"cosh(x)", cosh, d_cosh, {-2, -0.5, 1, 3}},
    {"tanh(x)", tanh, d_tanh, {-2, -0.5, 1, 3}},
    {"exp(x)", exp, d_exp, {-3, -0.5, 1, 5}},
    {"exp2(x)", exp2, d_exp2, {-3, -0.5, 1, 5}},
    {"expm1(x)", expm1, d_expm1, {-1, -1e-3, 0.5, 3}},
    {"log(x)", log, d_log, {0.1, 0.5, 2, 100}},
    {"log2(x)", log2, d_log2, {0.1, 0.5, 2, 100}},
    {"log10(x)", log10, d_log10, {0.1, 0.5, 2, 100}},
    {"log1p(x)", log1p, d_log1p, {-0.5, 1e-3, 2, 100}},
    {"sqrt(x)", sqrt, d_sqrt, {0.01, 0.5, 2, 100}},
    {"cbrt(x)", cbrt, d_cbrt, {-8, -0.5, 0.3, 27}},
    {"fabs(x)", fabs, d_fabs, {-2, -0.5, 0.5, 3}},
    {"erf(x)", erf, d_erf, {-2, -0.5, 0.3, 1.5}},
    {"erfc(x)", erfc, d_erfc, {-2, -0.5, 0.3, 1.5}},
};

START_TEST(test_unary_function) {
  const unary_case *c = &unary_cases[_i];
  const char *names[] = {"x"};
  ad_ctx *ctx = ad_ctx_new(NULL);
  for (int k = 0; k < 4; k++) {
    double x = c->points[k], gradient;
    double value = eval_at(ctx, c->text, 1, names, &x, &gradient);
    ck_assert_msg(close_to(value, c->f(x), 1e-12), "%s at %g: value %.17g, libm %.17g", c->text,
                  x, value, c->f(x));
    ck_assert_msg(close_to(gradient, c->df(x), 1e-12), "%s at %g: derivative %.17g, expected %.17g",
                  c->text, x, gradient, c->df(x));
  }
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Functions of two variables ---------------------------------------- */

static double atan2_da(double a, double b) { return b / (a * a + b * b); }
static double atan2_db(double a, double b) { return -a / (a * a + b * b); }
static double pow_da(double a, double b) { return b * pow(a, b - 1); }
static double pow_db(double a, double b) { return pow(a, b) * log(a); }
static double hypot_da(double a, double b) { return a / hypot(a, b); }
static double hypot_db(double a, double b) { return b / hypot(a, b); }
static double fmin_da(double a, double b) { return a < b ? 1 : 0; }
static double fmin_db(double a, double b) { return b < a ? 1 : 0; }
static double fmax_da(double a, double b) { return a > b ? 1 : 0; }
static double fmax_db(double a, double b) { return b > a ? 1 : 0; }

typedef struct binary_case {
  const char *text;
  double (*f)(double, double);
  double (*da)(double, double);
  double (*db)(double, double);
  double points[4][2];
} binary_case;

static const binary_case binary_cases[] = {
    {"atan2(a, b)", atan2, atan2_da, atan2_db, {{1, 2}, {-1, 0.5}, {2, -3}, {-0.5, -0.5}}},
    {"pow(a, b)", pow, pow_da, pow_db, {{2, 3}, {0.5, -1.5}, {3, 0.5}, {1.5, 2.2}}},
    {"hypot(a, b)", hypot, hypot_da, hypot_db, {{3, 4}, {-1, 2}, {0.5, -0.5}, {1e-3, 2}}},
    {"fmin(a, b)", fmin, fmin_da, fmin_db, {{1, 2}, {3, -1}, {-2, -1}, {0.5, 0.25}}},
    {"fmax(a, b)", fmax, fmax_da, fmax_db, {{1, 2}, {3, -1}, {-2, -1}, {0.5, 0.25}}},
};

START_TEST(test_binary_function) {
  const binary_case *c = &binary_cases[_i];
  const char *names[] = {"a", "b"};
  ad_ctx *ctx = ad_ctx_new(NULL);
  for (int k = 0; k < 4; k++) {
    const double *p = c->points[k];
    double gradient[2];
    double value = eval_at(ctx, c->text, 2, names, p, gradient);
    ck_assert_msg(close_to(value, c->f(p[0], p[1]), 1e-12), "%s at (%g, %g): value %.17g",
                  c->text, p[0], p[1], value);
    ck_assert_msg(close_to(gradient[0], c->da(p[0], p[1]), 1e-12), "%s at (%g, %g): d/da %.17g",
                  c->text, p[0], p[1], gradient[0]);
    ck_assert_msg(close_to(gradient[1], c->db(p[0], p[1]), 1e-12), "%s at (%g, %g): d/db %.17g",
                  c->text, p[0], p[1], gradient[1]);
  }
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Kinks, NaN and piecewise functions -------------------------------- */

typedef struct point_case {
  const char *text;
  double x, y;
  double value, dx, dy;
} point_case;

static const point_case piecewise_cases[] = {
    {"fabs(x)", 0, 0, 0, 0, 0},
    {"fmin(x, y)", 1, 1, 1, 0.5, 0.5},
    {"fmax(x, y)", -2, -2, -2, 0.5, 0.5},
    {"fmin(x, y)", NAN, 1, 1, 0, 1},
    {"fmin(x, y)", 1, NAN, 1, 1, 0},
    {"fmax(x, y)", NAN, -1, -1, 0, 1},
    {"fmax(x, y)", 2, NAN, 2, 1, 0},
    {"sqrt(x)", 0, 0, 0, INFINITY, 0},
    {"x > 0 ? x*x : -x", 2, 0, 4, 4, 0},
    {"x > 0 ? x*x : -x", -3, 0, 3, -1, 0},
    {"x > 0 ? x*x : -x", 0, 0, 0, -1, 0},
    /* The branch not taken contributes nothing, not even its NaN. */
    {"x == 0 ? 1 : sin(x)/x", 0, 0, 1, 0, 0},
    {"x > 0 ? log(x) : y", -1, 5, 5, 0, 1},
    {"y ? x : 2*x", 3, 0, 6, 2, 0},
    /* C's ?: selects the first branch for a NaN condition, as it is nonzero. */
    {"y ? x : 2*x", 3, NAN, 3, 1, 0},
    {"x > 0 && y > 0", 1, 2, 1, 0, 0},
    {"x > 0 && y > 0", 1, -2, 0, 0, 0},
    {"x > 0 || y > 0", -1, 2, 1, 0, 0},
    {"!x + y", 0, 2, 3, 0, 1},
    {"x < y", 1, 2, 1, 0, 0},
    {"(x > 0) * y", 1, 2, 2, 0, 1},
};

START_TEST(test_piecewise) {
  const point_case *c = &piecewise_cases[_i];
  const char *names[] = {"x", "y"};
  const double values[] = {c->x, c->y};
  double gradient[2];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double value = eval_at(ctx, c->text, 2, names, values, gradient);
  ck_assert_msg(close_to(value, c->value, 0), "%s: value %.17g", c->text, value);
  ck_assert_msg(close_to(gradient[0], c->dx, 0), "%s: d/dx %.17g", c->text, gradient[0]);
  ck_assert_msg(close_to(gradient[1], c->dy, 0), "%s: d/dy %.17g", c->text, gradient[1]);
  ad_ctx_free(ctx);
}
END_TEST

/* Nested ?: sends the gradient to the selected branch only. */
START_TEST(test_nested_conditional_gradient) {
  const char *names[] = {"p", "q", "a", "b", "c"};
  const double values[] = {0, 1, 10, 20, 30};
  double gradient[5];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double value = eval_at(ctx, "p ? a*a : q ? b*b : c*c", 5, names, values, gradient);
  ck_assert_double_eq(value, 400);
  ck_assert_double_eq(gradient[0], 0);
  ck_assert_double_eq(gradient[1], 0);
  ck_assert_double_eq(gradient[2], 0);
  ck_assert_double_eq(gradient[3], 40);
  ck_assert_double_eq(gradient[4], 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Second derivatives ------------------------------------------------ */

typedef struct hessian_case {
  const char *text;
  double point[2];
  double hessian[4];
} hessian_case;

static const hessian_case hessian_cases[] = {
    {"x*y + sin(x)", {1, 2}, {-0.8414709848078965, 1, 1, 0}},
    {"x*x*y", {3, 2}, {4, 6, 6, 0}},
    {"exp(x) * log(y)", {0, M_E}, {1, 1 / M_E, 1 / M_E, -1 / (M_E * M_E)}},
    {"x > 0 ? x*x*x : y*y", {2, 5}, {12, 0, 0, 0}},
    {"x > 0 ? x*x*x : y*y", {-2, 5}, {0, 0, 0, 2}},
    {"x + y", {1, 2}, {0, 0, 0, 0}},
    {"3", {1, 2}, {0, 0, 0, 0}},
};

START_TEST(test_hessian) {
  const hessian_case *c = &hessian_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, c->text, NULL);
  ck_assert_ptr_nonnull(e);
  int n = ad_expr_var_count(e);
  double value, gradient[2], hessian[4];
  ck_assert_int_eq(ad_expr_derivatives(ctx, e, c->point, &value, gradient, hessian), AD_OK);
  for (int i = 0; i < n * n; i++) {
    int row = i / n, column = i % n;
    double expected = c->hessian[row * 2 + column];
    ck_assert_msg(close_to(hessian[i], expected, 1e-12), "%s: H[%d][%d] = %.17g, expected %.17g",
                  c->text, row, column, hessian[i], expected);
  }
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* pow(x, y) against its hand-written second derivatives. */
START_TEST(test_pow_hessian) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "pow(x, y)", NULL);
  const double x = 1.7, y = 2.3, point[2] = {x, y};
  double value, gradient[2], h[4];
  ck_assert_int_eq(ad_expr_derivatives(ctx, e, point, &value, gradient, h), AD_OK);
  double lx = log(x);
  ck_assert(close_to(h[0], y * (y - 1) * pow(x, y - 2), 1e-12));
  ck_assert(close_to(h[1], pow(x, y - 1) * (1 + y * lx), 1e-12));
  ck_assert(close_to(h[2], pow(x, y - 1) * (1 + y * lx), 1e-12));
  ck_assert(close_to(h[3], pow(x, y) * lx * lx, 1e-12));
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Tensors ----------------------------------------------------------- */

/* Variables broadcast, and the gradient of a broadcast variable is summed. */
START_TEST(test_tensor_broadcast) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const double xs[] = {0.5, 1, 2};
  ad_tensor *x = ad_from_f64(ctx, 1, (int64_t[]){3}, xs);
  ad_tensor *y = ad_scalar(ctx, AD_F64, 3);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ck_assert_int_eq(ad_set_requires_grad(y, true), AD_OK);
  ad_expr_binding b[] = {ad_expr_tensor("x", x), ad_expr_tensor("y", y)};
  ad_tensor *f = ad_expr_eval_text(ctx, "x*y + sin(x)", 2, b);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(ad_ndim(f), 1);
  ck_assert_int_eq(ad_shape(f)[0], 3);
  ck_assert_int_eq(ad_backward(ctx, ad_sum_all(ctx, f), NULL), AD_OK);
  const double *dx = ad_data_f64(ad_grad(x));
  for (int i = 0; i < 3; i++) {
    ck_assert(close_to(ad_data_f64(f)[i], xs[i] * 3 + sin(xs[i]), 1e-15));
    ck_assert(close_to(dx[i], 3 + cos(xs[i]), 1e-15));
  }
  double dy;
  ck_assert_int_eq(ad_item(ad_grad(y), &dy), AD_OK);
  ck_assert_double_eq(dy, 3.5);
  ad_ctx_free(ctx);
}
END_TEST

/* Float32 values give a float32 result, constants included. */
START_TEST(test_tensor_float32) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float xs[] = {1, 2};
  ad_tensor *x = ad_from_f32(ctx, 1, (int64_t[]){2}, xs);
  ad_expr_binding b[] = {ad_expr_tensor("x", x), ad_expr_scalar("k", 0.1)};
  ad_tensor *f = ad_expr_eval_text(ctx, "x * k + 0.1", 2, b);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(ad_tensor_dtype(f), AD_F32);
  ck_assert_float_eq(ad_data_f32(f)[1], 2 * 0.1f + 0.1f);
  ad_ctx_free(ctx);
}
END_TEST

/* The result is a new tensor even when the text is one variable, and a
   constant text gives a float64 scalar. */
START_TEST(test_result_is_new_tensor) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 4);
  ad_expr_binding b = ad_expr_tensor("x", x);
  ad_tensor *f = ad_expr_eval_text(ctx, "(x)", 1, &b);
  ck_assert_ptr_nonnull(f);
  ck_assert_ptr_ne(f, x);
  ad_tensor *c = ad_expr_eval_text(ctx, "1 + 2", 0, NULL);
  double v;
  ck_assert_int_eq(ad_item(c, &v), AD_OK);
  ck_assert_double_eq(v, 3);
  ck_assert_int_eq(ad_tensor_dtype(c), AD_F64);
  ck_assert_int_eq(ad_ndim(c), 0);
  ad_ctx_free(ctx);
}
END_TEST

/* With recording off nothing is recorded and the result needs no gradient. */
START_TEST(test_recording_off) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 4);
  ad_set_requires_grad(x, true);
  ad_set_grad_enabled(ctx, false);
  ad_expr_binding b = ad_expr_tensor("x", x);
  ad_tensor *f = ad_expr_eval_text(ctx, "x * x", 1, &b);
  ck_assert_ptr_nonnull(f);
  ck_assert(!ad_requires_grad(f));
  ad_ctx_free(ctx);
}
END_TEST

/* One parsed expression evaluated on many values. */
START_TEST(test_evaluate_many_times) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "x*x - 2*x", NULL);
  for (int i = 0; i < 100; i++) {
    ad_ctx_reset(ctx);
    ad_tensor *x = ad_scalar(ctx, AD_F64, i);
    ad_tensor *f = ad_expr_eval(ctx, e, &x);
    double v;
    ck_assert_int_eq(ad_item(f, &v), AD_OK);
    ck_assert_double_eq(v, (double)i * i - 2.0 * i);
  }
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Binding errors ---------------------------------------------------- */

START_TEST(test_binding_errors) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_ctx *other = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "x + y", NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 1);

  ad_expr_binding unknown[] = {ad_expr_tensor("x", x), ad_expr_scalar("y", 2),
                               ad_expr_scalar("z", 3)};
  ck_assert_ptr_null(ad_expr_eval_named(ctx, e, 3, unknown));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "'z' is not a variable of the expression x + y"));
  ad_clear_error(ctx);

  ad_expr_binding missing[] = {ad_expr_tensor("x", x)};
  ck_assert_ptr_null(ad_expr_eval_named(ctx, e, 1, missing));
  ck_assert_str_eq(ad_errmsg(ctx), "ad_expr_eval_named: variable y has no value\n"
                                   "  x + y\n"
                                   "      ^");
  ad_clear_error(ctx);

  ad_expr_binding twice[] = {ad_expr_tensor("x", x), ad_expr_scalar("x", 2)};
  ck_assert_ptr_null(ad_expr_eval_named(ctx, e, 2, twice));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "variable x is bound twice"));
  ad_clear_error(ctx);

  ad_expr_binding null_tensor[] = {ad_expr_tensor("x", NULL), ad_expr_scalar("y", 2)};
  ck_assert_ptr_null(ad_expr_eval_named(ctx, e, 2, null_tensor));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "the tensor bound to x is NULL"));
  ad_clear_error(ctx);

  ad_tensor *labels = ad_from_i64(ctx, 1, (int64_t[]){2}, (int64_t[]){1, 2});
  ad_tensor *values[2] = {x, labels};
  ck_assert_ptr_null(ad_expr_eval(ctx, e, values));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "variable y is int64"));
  ad_clear_error(ctx);

  values[1] = ad_scalar(ctx, AD_F32, 1);
  ck_assert_ptr_null(ad_expr_eval(ctx, e, values));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "variable x is float64 and variable y is float32"));
  ad_clear_error(ctx);

  values[0] = ad_zeros(ctx, AD_F64, 1, (int64_t[]){2});
  values[1] = ad_zeros(ctx, AD_F64, 1, (int64_t[]){3});
  ck_assert_ptr_null(ad_expr_eval(ctx, e, values));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "variable x has shape [2] and variable y has shape [3]"));
  ad_clear_error(ctx);

  values[1] = ad_scalar(other, AD_F64, 1);
  ck_assert_ptr_null(ad_expr_eval(ctx, e, values));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_CONTEXT);
  ad_clear_error(ctx);

  ck_assert_ptr_null(ad_expr_eval(ctx, e, NULL));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);

  ck_assert_ptr_null(ad_expr_eval_text(ctx, "x +", 0, NULL));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_FORMAT);
  ad_expr_free(e);
  ad_ctx_free(other);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Domain problems --------------------------------------------------- */

typedef struct domain_case {
  const char *text;
  double x;
  int count;
  ad_expr_issue_kind kind; /* of the first issue */
  size_t offset, length;
  const char *message;
} domain_case;

static const domain_case domain_cases[] = {
    {"log(x)", 0, 1, AD_EXPR_DIVIDE_BY_ZERO, 0, 6, "log(x) is -inf: log(0) is a pole"},
    {"1 + 1/x", 0, 1, AD_EXPR_DIVIDE_BY_ZERO, 4, 3, "1/x is inf: division by zero"},
    {"sqrt(x)", -1, 1, AD_EXPR_INVALID, 0, 7, "sqrt(x) is NaN: sqrt(-1) is undefined"},
    {"2 * exp(x)", 1000, 1, AD_EXPR_OVERFLOW, 4, 6, "exp(x) is inf: exp(1000) overflows double"},
    {"x - x", INFINITY, 1, AD_EXPR_INVALID, 0, 5, "x - x is NaN: inf - inf is undefined"},
    {"(x/x)", 0, 1, AD_EXPR_INVALID, 0, 5, "(x/x) is NaN: 0 / 0 is undefined"},
    {"log(x) + log(x)", 0, 2, AD_EXPR_DIVIDE_BY_ZERO, 0, 6, "log(x) is -inf: log(0) is a pole"},
    {"pow(x, -1)", 0, 1, AD_EXPR_DIVIDE_BY_ZERO, 0, 10, "pow(x, -1) is inf: pow(0, -1) is a pole"},
    {"log(0.0) + x", 1, 1, AD_EXPR_DIVIDE_BY_ZERO, 0, 8, "log(0.0) is -inf: log(0) is a pole"},
    {"sqrt(x)", 0, 1, AD_EXPR_DERIVATIVE, 0, 7,
     "the derivative of sqrt(x) with respect to x is inf at sqrt(0)"},
    {"asin(x)", 1, 1, AD_EXPR_DERIVATIVE, 0, 7,
     "the derivative of asin(x) with respect to x is inf at asin(1)"},
    /* Branches that C does not evaluate, and derivatives the gradient
       does not reach, are not reported. */
    {"x > 0 ? log(x) : 0", -1, 0, AD_EXPR_INVALID, 0, 0, NULL},
    {"x > 0 && log(x) > 0", -1, 0, AD_EXPR_INVALID, 0, 0, NULL},
    {"x < 0 || log(x) > 0", -1, 0, AD_EXPR_INVALID, 0, 0, NULL},
    {"sqrt(x) > 0", 0, 0, AD_EXPR_INVALID, 0, 0, NULL},
    {"x * 2", NAN, 0, AD_EXPR_INVALID, 0, 0, NULL},
    {"sin(x)", 1, 0, AD_EXPR_INVALID, 0, 0, NULL},
};

START_TEST(test_domain) {
  const domain_case *c = &domain_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, c->text, NULL);
  ck_assert_ptr_nonnull(e);
  ad_expr_issue issues[4];
  int count = ad_expr_check_domain(ctx, e, &c->x, issues, 4);
  ck_assert_int_eq(count, c->count);
  if (count > 0) {
    ck_assert_int_eq(issues[0].kind, c->kind);
    ck_assert_uint_eq(issues[0].offset, c->offset);
    ck_assert_uint_eq(issues[0].length, c->length);
    ck_assert_str_eq(issues[0].message, c->message);
  }
  ck_assert_int_eq(ad_expr_check_domain(ctx, e, &c->x, NULL, 0), c->count);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* Values and derivatives at domain problems are IEEE's, never an error. */
START_TEST(test_domain_values_are_ieee) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "log(x) + 1/y", NULL);
  const double point[2] = {0, 0};
  double value, gradient[2];
  ck_assert_int_eq(ad_expr_derivatives(ctx, e, point, &value, gradient, NULL), AD_OK);
  ck_assert(isnan(value));
  ck_assert_double_eq(gradient[0], INFINITY);
  ck_assert_double_eq(gradient[1], -INFINITY);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Allocation failures ----------------------------------------------- */

/* An allocator that counts live blocks and fails from the fail_at-th
   allocation on, once armed. */
typedef struct failing_allocator {
  long live_blocks;
  size_t live_bytes;
  long allocations;
  long fail_at; /* -1: never */
} failing_allocator;

static void *failing_alloc(void *user, size_t size) {
  failing_allocator *a = user;
  if (a->fail_at >= 0 && a->allocations++ >= a->fail_at) return NULL;
  void *p = malloc(size);
  if (p) {
    a->live_blocks++;
    a->live_bytes += size;
  }
  return p;
}

static void failing_free(void *user, void *ptr, size_t size) {
  failing_allocator *a = user;
  if (!ptr) return;
  a->live_blocks--;
  a->live_bytes -= size;
  free(ptr);
}

/* Parses, differentiates, checks and emits, stopping at the first failure,
   which must be AD_ERR_MEMORY. Returns true when everything succeeded. */
static bool run_everything(ad_ctx *ctx, FILE *sink) {
  ad_expr_error error;
  ad_expr *e = ad_expr_parse(ctx, "x*y + sin(x) + (x > 0 ? log(y) : fmin(x, y)) + z", &error);
  if (!e) {
    ck_assert_int_eq(error.status, AD_ERR_MEMORY);
    return false;
  }
  bool ok = false;
  const double point[3] = {1, 2, 3};
  double value, gradient[3], hessian[9];
  ad_expr_issue issues[2];
  ad_expr_binding b[] = {ad_expr_scalar("x", 1), ad_expr_scalar("y", 2), ad_expr_scalar("z", 3)};
  ad_status st = ad_expr_derivatives(ctx, e, point, &value, gradient, hessian);
  if (st == AD_OK && ad_expr_check_domain(ctx, e, point, issues, 2) < 0) st = ad_errcode(ctx);
  if (st == AD_OK) st = ad_expr_emit_c(ctx, e, "f", sink);
  if (st == AD_OK && !ad_expr_eval_named(ctx, e, 3, b)) st = ad_errcode(ctx);
  if (st == AD_OK) ok = true;
  else ck_assert_int_eq(st, AD_ERR_MEMORY);
  ad_expr_free(e);
  return ok;
}

START_TEST(test_allocation_failures) {
  FILE *sink = fopen("/dev/null", "w");
  ck_assert_ptr_nonnull(sink);
  bool succeeded = false;
  for (long k = 0; k < 10000 && !succeeded; k++) {
    failing_allocator state = {0, 0, 0, -1};
    ad_allocator allocator = {failing_alloc, failing_free, &state};
    ad_ctx *ctx = ad_ctx_new(&allocator);
    ck_assert_ptr_nonnull(ctx);
    state.fail_at = k;
    succeeded = run_everything(ctx, sink);
    ad_ctx_free(ctx);
    ck_assert_msg(state.live_blocks == 0, "failing at allocation %ld leaks %ld blocks", k,
                  state.live_blocks);
    ck_assert_uint_eq(state.live_bytes, 0);
  }
  ck_assert(succeeded);
  fclose(sink);
}
END_TEST

static Suite *eval_suite(void) {
  Suite *s = suite_create("expr_eval");
  TCase *tc;

  tc = tcase_create("worked_example");
  tcase_add_test(tc, test_worked_example);
  tcase_add_test(tc, test_header_example);
  suite_add_tcase(s, tc);

  tc = tcase_create("functions");
  tcase_add_loop_test(tc, test_unary_function, 0, COUNT(unary_cases));
  tcase_add_loop_test(tc, test_binary_function, 0, COUNT(binary_cases));
  suite_add_tcase(s, tc);

  tc = tcase_create("piecewise");
  tcase_add_loop_test(tc, test_piecewise, 0, COUNT(piecewise_cases));
  tcase_add_test(tc, test_nested_conditional_gradient);
  suite_add_tcase(s, tc);

  tc = tcase_create("hessian");
  tcase_add_loop_test(tc, test_hessian, 0, COUNT(hessian_cases));
  tcase_add_test(tc, test_pow_hessian);
  suite_add_tcase(s, tc);

  tc = tcase_create("tensors");
  tcase_add_test(tc, test_tensor_broadcast);
  tcase_add_test(tc, test_tensor_float32);
  tcase_add_test(tc, test_result_is_new_tensor);
  tcase_add_test(tc, test_recording_off);
  tcase_add_test(tc, test_evaluate_many_times);
  suite_add_tcase(s, tc);

  tc = tcase_create("bindings");
  tcase_add_test(tc, test_binding_errors);
  suite_add_tcase(s, tc);

  tc = tcase_create("domain");
  tcase_add_loop_test(tc, test_domain, 0, COUNT(domain_cases));
  tcase_add_test(tc, test_domain_values_are_ieee);
  suite_add_tcase(s, tc);

  tc = tcase_create("allocation_failures");
  tcase_add_test(tc, test_allocation_failures);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(eval_suite()); }
