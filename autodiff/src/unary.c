/*
 * unary.c: elementwise functions of one input, with optional constants.
 *
 * Each function has a row in unary_table: its value f(x), its derivative
 * f'(x) for the fused kernel (given x and y = f(x)), and the same derivative
 * built from recorded operations for the graph rule. The fused kernel adds
 * g * f'(x) into the input's gradient; the graph rule returns g * f'(x) as a
 * recorded product, so second derivatives flow through f'(x) as well.
 * Float32 inputs are computed in double and rounded, except for the hot
 * activations, which have float loops.
 */
#include <math.h>

#include "internal.h"

#define LN2 0.69314718055994530942
#define LN10 2.30258509299404568402
#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define SQRT_HALF 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

typedef struct unary_def {
  const char *name; /* the public function, for messages */
  /* y = f(x); p contains the constants of the entry (see op_param.s) */
  double (*f)(double x, const double *p);
  /* dy/dx at x, given y = f(x) */
  double (*df)(double x, double y, const double *p);
  /* dy/dx as recorded operations on x and y (y's constants are y->p.s) */
  ad_tensor *(*dgraph)(ad_ctx *ctx, ad_tensor *x, ad_tensor *y);
} unary_def;

/* ---- Values --------------------------------------------------------- */

static double f_add_scalar(double x, const double *p) { return x + p[0]; }
static double f_mul_scalar(double x, const double *p) { return x * p[0]; }
static double f_pow_scalar(double x, const double *p) { return pow(x, p[0]); }
static double f_neg(double x, const double *p) { (void)p; return -x; }
static double f_abs(double x, const double *p) { (void)p; return fabs(x); }
static double f_sqrt(double x, const double *p) { (void)p; return sqrt(x); }
static double f_cbrt(double x, const double *p) { (void)p; return cbrt(x); }
static double f_exp(double x, const double *p) { (void)p; return exp(x); }
static double f_exp2(double x, const double *p) { (void)p; return exp2(x); }
static double f_expm1(double x, const double *p) { (void)p; return expm1(x); }
static double f_log(double x, const double *p) { (void)p; return log(x); }
static double f_log2(double x, const double *p) { (void)p; return log2(x); }
static double f_log10(double x, const double *p) { (void)p; return log10(x); }
static double f_log1p(double x, const double *p) { (void)p; return log1p(x); }
static double f_sin(double x, const double *p) { (void)p; return sin(x); }
static double f_cos(double x, const double *p) { (void)p; return cos(x); }
static double f_tan(double x, const double *p) { (void)p; return tan(x); }
static double f_asin(double x, const double *p) { (void)p; return asin(x); }
static double f_acos(double x, const double *p) { (void)p; return acos(x); }
static double f_atan(double x, const double *p) { (void)p; return atan(x); }
static double f_sinh(double x, const double *p) { (void)p; return sinh(x); }
static double f_cosh(double x, const double *p) { (void)p; return cosh(x); }
static double f_tanh(double x, const double *p) { (void)p; return tanh(x); }
static double f_erf(double x, const double *p) { (void)p; return erf(x); }
static double f_erfc(double x, const double *p) { (void)p; return erfc(x); }

static double f_sigmoid(double x, const double *p) {
  (void)p;
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}

/* NaN passes through, as in PyTorch. */
static double f_relu(double x, const double *p) { (void)p; return x > 0 || isnan(x) ? x : 0; }
static double f_leaky_relu(double x, const double *p) { return x > 0 ? x : p[0] * x; }
static double f_elu(double x, const double *p) { return x > 0 ? x : p[0] * expm1(x); }
/* x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2, accurate for negative x too. */
static double f_gelu(double x, const double *p) { (void)p; return 0.5 * x * erfc(-x * SQRT_HALF); }
static double f_softplus(double x, const double *p) {
  (void)p;
  return (x > 0 ? x : 0) + log1p(exp(-fabs(x)));
}
static double f_clamp(double x, const double *p) {
  if (isnan(x)) return x;
  if (x < p[0]) return p[0];
  if (x > p[1]) return p[1];
  return x;
}

/* ---- Derivatives ---------------------------------------------------- */

static double d_one(double x, double y, const double *p) { (void)x, (void)y, (void)p; return 1; }
static double d_mul_scalar(double x, double y, const double *p) { (void)x, (void)y; return p[0]; }
static double d_pow_scalar(double x, double y, const double *p) {
  (void)y;
  return p[0] == 0 ? 0 : p[0] * pow(x, p[0] - 1);
}
static double d_neg(double x, double y, const double *p) { (void)x, (void)y, (void)p; return -1; }
static double d_abs(double x, double y, const double *p) {
  (void)y, (void)p;
  if (x > 0) return 1;
  if (x < 0) return -1;
  return 0;
}
static double d_sqrt(double x, double y, const double *p) { (void)x, (void)p; return 0.5 / y; }
static double d_cbrt(double x, double y, const double *p) { (void)x, (void)p; return 1 / (3 * y * y); }
static double d_exp(double x, double y, const double *p) { (void)x, (void)p; return y; }
static double d_exp2(double x, double y, const double *p) { (void)x, (void)p; return y * LN2; }
static double d_expm1(double x, double y, const double *p) { (void)x, (void)p; return y + 1; }
static double d_log(double x, double y, const double *p) { (void)y, (void)p; return 1 / x; }
static double d_log2(double x, double y, const double *p) { (void)y, (void)p; return 1 / (x * LN2); }
static double d_log10(double x, double y, const double *p) { (void)y, (void)p; return 1 / (x * LN10); }
static double d_log1p(double x, double y, const double *p) { (void)y, (void)p; return 1 / (1 + x); }
static double d_sin(double x, double y, const double *p) { (void)y, (void)p; return cos(x); }
static double d_cos(double x, double y, const double *p) { (void)y, (void)p; return -sin(x); }
static double d_tan(double x, double y, const double *p) { (void)x, (void)p; return 1 + y * y; }
static double d_asin(double x, double y, const double *p) { (void)y, (void)p; return 1 / sqrt(1 - x * x); }
static double d_acos(double x, double y, const double *p) { (void)y, (void)p; return -1 / sqrt(1 - x * x); }
static double d_atan(double x, double y, const double *p) { (void)y, (void)p; return 1 / (1 + x * x); }
static double d_sinh(double x, double y, const double *p) { (void)y, (void)p; return cosh(x); }
static double d_cosh(double x, double y, const double *p) { (void)y, (void)p; return sinh(x); }
static double d_tanh(double x, double y, const double *p) { (void)x, (void)p; return 1 - y * y; }
static double d_erf(double x, double y, const double *p) {
  (void)y, (void)p;
  return TWO_OVER_SQRT_PI * exp(-x * x);
}
static double d_erfc(double x, double y, const double *p) {
  (void)y, (void)p;
  return -TWO_OVER_SQRT_PI * exp(-x * x);
}
static double d_sigmoid(double x, double y, const double *p) { (void)x, (void)p; return y * (1 - y); }
static double d_relu(double x, double y, const double *p) { (void)y, (void)p; return x > 0 ? 1 : 0; }
static double d_leaky_relu(double x, double y, const double *p) { (void)y; return x > 0 ? 1 : p[0]; }
static double d_elu(double x, double y, const double *p) { return x > 0 ? 1 : y + p[0]; }
static double d_gelu(double x, double y, const double *p) {
  (void)y, (void)p;
  return 0.5 * erfc(-x * SQRT_HALF) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
}
static double d_softplus(double x, double y, const double *p) { (void)y; return f_sigmoid(x, p); }
static double d_clamp(double x, double y, const double *p) {
  (void)y;
  return x >= p[0] && x <= p[1] ? 1 : 0;
}

/* ---- Derivatives as recorded operations ------------------------------- */

static ad_tensor *one_minus(ad_ctx *ctx, ad_tensor *t) {
  return ad_add_scalar(ctx, ad_neg(ctx, t), 1);
}

static ad_tensor *g_one(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return const_like(ctx, x, 1);
}
static ad_tensor *g_mul_scalar(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  return const_like(ctx, x, y->p.s[0]);
}
static ad_tensor *g_pow_scalar(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  double e = y->p.s[0];
  if (e == 0) return const_like(ctx, x, 0);
  return ad_mul_scalar(ctx, ad_pow_scalar(ctx, x, e - 1), e);
}
static ad_tensor *g_neg(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return const_like(ctx, x, -1);
}
static ad_tensor *g_abs(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) { (void)y; return ad_sign(ctx, x); }
static ad_tensor *g_sqrt(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  return ad_div(ctx, const_like(ctx, x, 0.5), y);
}
static ad_tensor *g_cbrt(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  return ad_div(ctx, const_like(ctx, x, 1.0 / 3), ad_mul(ctx, y, y));
}
static ad_tensor *g_exp(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) { (void)ctx, (void)x; return y; }
static ad_tensor *g_exp2(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)x;
  return ad_mul_scalar(ctx, y, LN2);
}
static ad_tensor *g_expm1(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)x;
  return ad_add_scalar(ctx, y, 1);
}
static ad_tensor *g_log(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_div(ctx, const_like(ctx, x, 1), x);
}
static ad_tensor *g_log2(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_div(ctx, const_like(ctx, x, 1 / LN2), x);
}
static ad_tensor *g_log10(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_div(ctx, const_like(ctx, x, 1 / LN10), x);
}
static ad_tensor *g_log1p(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_div(ctx, const_like(ctx, x, 1), ad_add_scalar(ctx, x, 1));
}
static ad_tensor *g_sin(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) { (void)y; return ad_cos(ctx, x); }
static ad_tensor *g_cos(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_neg(ctx, ad_sin(ctx, x));
}
static ad_tensor *g_tan(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)x;
  return ad_add_scalar(ctx, ad_mul(ctx, y, y), 1);
}
/* (1 - x^2)^(-1/2) */
static ad_tensor *inv_sqrt_one_minus_sq(ad_ctx *ctx, ad_tensor *x) {
  return ad_pow_scalar(ctx, one_minus(ctx, ad_mul(ctx, x, x)), -0.5);
}
static ad_tensor *g_asin(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return inv_sqrt_one_minus_sq(ctx, x);
}
static ad_tensor *g_acos(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_neg(ctx, inv_sqrt_one_minus_sq(ctx, x));
}
static ad_tensor *g_atan(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_div(ctx, const_like(ctx, x, 1), ad_add_scalar(ctx, ad_mul(ctx, x, x), 1));
}
static ad_tensor *g_sinh(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) { (void)y; return ad_cosh(ctx, x); }
static ad_tensor *g_cosh(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) { (void)y; return ad_sinh(ctx, x); }
static ad_tensor *g_tanh(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)x;
  return one_minus(ctx, ad_mul(ctx, y, y));
}
static ad_tensor *gaussian(ad_ctx *ctx, ad_tensor *x, double scale, double coefficient) {
  return ad_mul_scalar(ctx, ad_exp(ctx, ad_mul_scalar(ctx, ad_mul(ctx, x, x), -scale)),
                       coefficient);
}
static ad_tensor *g_erf(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return gaussian(ctx, x, 1, TWO_OVER_SQRT_PI);
}
static ad_tensor *g_erfc(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return gaussian(ctx, x, 1, -TWO_OVER_SQRT_PI);
}
static ad_tensor *g_sigmoid(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)x;
  return ad_mul(ctx, y, one_minus(ctx, y));
}
static ad_tensor *g_relu(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_gt(ctx, x, const_like(ctx, x, 0));
}
static ad_tensor *g_leaky_relu(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  double slope = y->p.s[0];
  return ad_add_scalar(ctx, ad_mul_scalar(ctx, g_relu(ctx, x, y), 1 - slope), slope);
}
static ad_tensor *g_elu(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  return ad_where(ctx, g_relu(ctx, x, y), const_like(ctx, x, 1), ad_add_scalar(ctx, y, y->p.s[0]));
}
static ad_tensor *g_gelu(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  ad_tensor *cdf = ad_mul_scalar(ctx, ad_erfc(ctx, ad_mul_scalar(ctx, x, -SQRT_HALF)), 0.5);
  return ad_add(ctx, cdf, ad_mul(ctx, x, gaussian(ctx, x, 0.5, INV_SQRT_2PI)));
}
static ad_tensor *g_softplus(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  (void)y;
  return ad_sigmoid(ctx, x);
}
static ad_tensor *g_clamp(ad_ctx *ctx, ad_tensor *x, ad_tensor *y) {
  return ad_mul(ctx, ad_ge(ctx, x, const_like(ctx, x, y->p.s[0])),
                ad_le(ctx, x, const_like(ctx, x, y->p.s[1])));
}

/* One row per op kind from OP_FIRST_UNARY to OP_LAST_UNARY. */
static const unary_def unary_table[OP_LAST_UNARY - OP_FIRST_UNARY + 1] = {
    [OP_ADD_SCALAR - OP_FIRST_UNARY] = {"ad_add_scalar", f_add_scalar, d_one, g_one},
    [OP_MUL_SCALAR - OP_FIRST_UNARY] = {"ad_mul_scalar", f_mul_scalar, d_mul_scalar, g_mul_scalar},
    [OP_POW_SCALAR - OP_FIRST_UNARY] = {"ad_pow_scalar", f_pow_scalar, d_pow_scalar, g_pow_scalar},
    [OP_NEG - OP_FIRST_UNARY] = {"ad_neg", f_neg, d_neg, g_neg},
    [OP_ABS - OP_FIRST_UNARY] = {"ad_abs", f_abs, d_abs, g_abs},
    [OP_SQRT - OP_FIRST_UNARY] = {"ad_sqrt", f_sqrt, d_sqrt, g_sqrt},
    [OP_CBRT - OP_FIRST_UNARY] = {"ad_cbrt", f_cbrt, d_cbrt, g_cbrt},
    [OP_EXP - OP_FIRST_UNARY] = {"ad_exp", f_exp, d_exp, g_exp},
    [OP_EXP2 - OP_FIRST_UNARY] = {"ad_exp2", f_exp2, d_exp2, g_exp2},
    [OP_EXPM1 - OP_FIRST_UNARY] = {"ad_expm1", f_expm1, d_expm1, g_expm1},
    [OP_LOG - OP_FIRST_UNARY] = {"ad_log", f_log, d_log, g_log},
    [OP_LOG2 - OP_FIRST_UNARY] = {"ad_log2", f_log2, d_log2, g_log2},
    [OP_LOG10 - OP_FIRST_UNARY] = {"ad_log10", f_log10, d_log10, g_log10},
    [OP_LOG1P - OP_FIRST_UNARY] = {"ad_log1p", f_log1p, d_log1p, g_log1p},
    [OP_SIN - OP_FIRST_UNARY] = {"ad_sin", f_sin, d_sin, g_sin},
    [OP_COS - OP_FIRST_UNARY] = {"ad_cos", f_cos, d_cos, g_cos},
    [OP_TAN - OP_FIRST_UNARY] = {"ad_tan", f_tan, d_tan, g_tan},
    [OP_ASIN - OP_FIRST_UNARY] = {"ad_asin", f_asin, d_asin, g_asin},
    [OP_ACOS - OP_FIRST_UNARY] = {"ad_acos", f_acos, d_acos, g_acos},
    [OP_ATAN - OP_FIRST_UNARY] = {"ad_atan", f_atan, d_atan, g_atan},
    [OP_SINH - OP_FIRST_UNARY] = {"ad_sinh", f_sinh, d_sinh, g_sinh},
    [OP_COSH - OP_FIRST_UNARY] = {"ad_cosh", f_cosh, d_cosh, g_cosh},
    [OP_TANH - OP_FIRST_UNARY] = {"ad_tanh", f_tanh, d_tanh, g_tanh},
    [OP_ERF - OP_FIRST_UNARY] = {"ad_erf", f_erf, d_erf, g_erf},
    [OP_ERFC - OP_FIRST_UNARY] = {"ad_erfc", f_erfc, d_erfc, g_erfc},
    [OP_SIGMOID - OP_FIRST_UNARY] = {"ad_sigmoid", f_sigmoid, d_sigmoid, g_sigmoid},
    [OP_RELU - OP_FIRST_UNARY] = {"ad_relu", f_relu, d_relu, g_relu},
    [OP_LEAKY_RELU - OP_FIRST_UNARY] = {"ad_leaky_relu", f_leaky_relu, d_leaky_relu, g_leaky_relu},
    [OP_ELU - OP_FIRST_UNARY] = {"ad_elu", f_elu, d_elu, g_elu},
    [OP_GELU - OP_FIRST_UNARY] = {"ad_gelu", f_gelu, d_gelu, g_gelu},
    [OP_SOFTPLUS - OP_FIRST_UNARY] = {"ad_softplus", f_softplus, d_softplus, g_softplus},
    [OP_CLAMP - OP_FIRST_UNARY] = {"ad_clamp", f_clamp, d_clamp, g_clamp},
};

static const unary_def *unary_row(int op) { return &unary_table[op - OP_FIRST_UNARY]; }

/* ---- Forward -------------------------------------------------------- */

/* Float loops for the functions that dominate training; false when op has
   none and the generic loop must run. */
static bool forward_f32(op_kind op, const float *x, float *y, int64_t n, const double *p) {
  switch (op) {
  case OP_ADD_SCALAR: {
    float c = (float)p[0];
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + c;
    return true;
  }
  case OP_MUL_SCALAR: {
    float c = (float)p[0];
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * c;
    return true;
  }
  case OP_NEG:
    for (int64_t i = 0; i < n; i++) y[i] = -x[i];
    return true;
  case OP_RELU:
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] > 0 || x[i] != x[i]) ? x[i] : 0.0f;
    return true;
  case OP_EXP:
    for (int64_t i = 0; i < n; i++) y[i] = expf(x[i]);
    return true;
  case OP_TANH:
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
    return true;
  default: return false;
  }
}

/* The arguments of one elementwise pass of a unary operation. */
typedef struct unary_job {
  op_kind op;
  const ad_tensor *x, *y; /* input and result */
  const void *g;          /* backward: d loss / d y */
  void *d;                /* backward: the input's gradient accumulator */
  bool fresh;             /* backward: overwrite d instead of adding */
} unary_job;

/* y = f(x) over elements [lo, hi). */
static void unary_forward_range(void *arg, int64_t lo, int64_t hi) {
  const unary_job *job = arg;
  op_kind op = job->op;
  const double *p = job->y->p.s;
  int64_t n = hi - lo;
  if (job->x->dtype == AD_F32) {
    const float *xs = (const float *)job->x->data + lo;
    float *ys = (float *)job->y->data + lo;
    if (forward_f32(op, xs, ys, n, p)) return;
    double (*f)(double, const double *) = unary_row(op)->f;
    for (int64_t i = 0; i < n; i++) ys[i] = (float)f(xs[i], p);
    return;
  }
  const double *xs = (const double *)job->x->data + lo;
  double *ys = (double *)job->y->data + lo;
  switch (op) {
  case OP_ADD_SCALAR:
    for (int64_t i = 0; i < n; i++) ys[i] = xs[i] + p[0];
    return;
  case OP_MUL_SCALAR:
    for (int64_t i = 0; i < n; i++) ys[i] = xs[i] * p[0];
    return;
  default: break;
  }
  double (*f)(double, const double *) = unary_row(op)->f;
  for (int64_t i = 0; i < n; i++) ys[i] = f(xs[i], p);
}

static void unary_compute(ad_ctx *ctx, op_kind op, const ad_tensor *x, ad_tensor *y) {
  unary_job job = {.op = op, .x = x, .y = y};
  parallel_blocks(ctx, x->numel, unary_forward_range, &job);
}

static ad_tensor *unary_op(ad_ctx *ctx, op_kind op, ad_tensor *x, double p0, double p1) {
  const char *name = unary_row(op)->name;
  if (!ctx || !check_arg(ctx, name, "a", x, true)) return NULL;
  ad_tensor *y = tensor_like(ctx, name, x);
  if (!y) return NULL;
  y->p.s[0] = p0;
  y->p.s[1] = p1;
  unary_compute(ctx, op, x, y);
  return maybe_record(ctx, y, op, x, NULL, NULL);
}

ad_tensor *ad_add_scalar(ad_ctx *ctx, ad_tensor *a, double v) { return unary_op(ctx, OP_ADD_SCALAR, a, v, 0); }
ad_tensor *ad_mul_scalar(ad_ctx *ctx, ad_tensor *a, double v) { return unary_op(ctx, OP_MUL_SCALAR, a, v, 0); }
ad_tensor *ad_pow_scalar(ad_ctx *ctx, ad_tensor *a, double e) { return unary_op(ctx, OP_POW_SCALAR, a, e, 0); }
ad_tensor *ad_neg(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_NEG, a, 0, 0); }
ad_tensor *ad_abs(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ABS, a, 0, 0); }
ad_tensor *ad_sqrt(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_SQRT, a, 0, 0); }
ad_tensor *ad_cbrt(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_CBRT, a, 0, 0); }
ad_tensor *ad_exp(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_EXP, a, 0, 0); }
ad_tensor *ad_exp2(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_EXP2, a, 0, 0); }
ad_tensor *ad_expm1(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_EXPM1, a, 0, 0); }
ad_tensor *ad_log(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_LOG, a, 0, 0); }
ad_tensor *ad_log2(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_LOG2, a, 0, 0); }
ad_tensor *ad_log10(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_LOG10, a, 0, 0); }
ad_tensor *ad_log1p(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_LOG1P, a, 0, 0); }
ad_tensor *ad_sin(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_SIN, a, 0, 0); }
ad_tensor *ad_cos(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_COS, a, 0, 0); }
ad_tensor *ad_tan(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_TAN, a, 0, 0); }
ad_tensor *ad_asin(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ASIN, a, 0, 0); }
ad_tensor *ad_acos(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ACOS, a, 0, 0); }
ad_tensor *ad_atan(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ATAN, a, 0, 0); }
ad_tensor *ad_sinh(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_SINH, a, 0, 0); }
ad_tensor *ad_cosh(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_COSH, a, 0, 0); }
ad_tensor *ad_tanh(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_TANH, a, 0, 0); }
ad_tensor *ad_erf(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ERF, a, 0, 0); }
ad_tensor *ad_erfc(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_ERFC, a, 0, 0); }
ad_tensor *ad_sigmoid(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_SIGMOID, a, 0, 0); }
ad_tensor *ad_relu(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_RELU, a, 0, 0); }
ad_tensor *ad_leaky_relu(ad_ctx *ctx, ad_tensor *a, double slope) {
  return unary_op(ctx, OP_LEAKY_RELU, a, slope, 0);
}
ad_tensor *ad_elu(ad_ctx *ctx, ad_tensor *a, double alpha) {
  return unary_op(ctx, OP_ELU, a, alpha, 0);
}
ad_tensor *ad_gelu(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_GELU, a, 0, 0); }
ad_tensor *ad_softplus(ad_ctx *ctx, ad_tensor *a) { return unary_op(ctx, OP_SOFTPLUS, a, 0, 0); }

ad_tensor *ad_clamp(ad_ctx *ctx, ad_tensor *a, double low, double high) {
  if (!ctx) return NULL;
  if (isnan(low) || isnan(high) || low > high) {
    fail(ctx, AD_ERR_ARGUMENT,
         "ad_clamp: bounds [%g, %g] are invalid; low must be <= high and neither NaN (use "
         "-INFINITY or INFINITY for a one-sided clamp)",
         low, high);
    return NULL;
  }
  return unary_op(ctx, OP_CLAMP, a, low, high);
}

/* sign is piecewise constant: its result never requires a gradient. */
ad_tensor *ad_sign(ad_ctx *ctx, ad_tensor *a) {
  if (!ctx || !check_arg(ctx, "ad_sign", "a", a, true)) return NULL;
  ad_tensor *y = tensor_like(ctx, "ad_sign", a);
  if (!y) return NULL;
  for (int64_t i = 0; i < a->numel; i++) {
    double v = load(a, i);
    double sign = v; /* 0, -0 and NaN stay as they are */
    if (v > 0) sign = 1;
    if (v < 0) sign = -1;
    store(y, i, sign);
  }
  return y;
}

/* ---- Backward ------------------------------------------------------- */

/* d (+)= g * f'(x) for the hot activations in float. Each loop is written
   once and instantiated for a constant fresh (see backward_f32), so both
   copies read their operands unconditionally and vectorize. */
static inline void relu_backward_f32(const float *restrict x, const float *restrict g,
                                     float *restrict d, int64_t n, bool fresh) {
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    float v = x[i] > 0 ? gi : 0.0f;
    d[i] = fresh ? v : d[i] + v;
  }
}

static inline void tanh_backward_f32(const float *restrict y, const float *restrict g,
                                     float *restrict d, int64_t n, bool fresh) {
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i], yi = y[i];
    float v = gi == 0 ? 0.0f : gi * (1 - yi * yi);
    d[i] = fresh ? v : d[i] + v;
  }
}

static inline void sigmoid_backward_f32(const float *restrict y, const float *restrict g,
                                        float *restrict d, int64_t n, bool fresh) {
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i], yi = y[i];
    float v = gi == 0 ? 0.0f : gi * yi * (1 - yi);
    d[i] = fresh ? v : d[i] + v;
  }
}

/* Float loops of g * f'(x) for the hot activations; false when none. */
static bool backward_f32(op_kind op, const float *x, const float *y, const float *g, float *d,
                         int64_t n, bool fresh) {
  switch (op) {
  case OP_RELU:
    if (fresh) relu_backward_f32(x, g, d, n, true);
    else relu_backward_f32(x, g, d, n, false);
    return true;
  case OP_TANH:
    if (fresh) tanh_backward_f32(y, g, d, n, true);
    else tanh_backward_f32(y, g, d, n, false);
    return true;
  case OP_SIGMOID:
    if (fresh) sigmoid_backward_f32(y, g, d, n, true);
    else sigmoid_backward_f32(y, g, d, n, false);
    return true;
  case OP_ADD_SCALAR:
    acc_copy(AD_F32, d, g, n, fresh);
    return true;
  default: return false;
  }
}

/* d (+)= g * f'(x) over elements [lo, hi). */
static void unary_backward_range(void *arg, int64_t lo, int64_t hi) {
  const unary_job *job = arg;
  op_kind op = job->op;
  const double *p = job->y->p.s;
  bool fresh = job->fresh;
  int64_t n = hi - lo;
  double (*df)(double, double, const double *) = unary_row(op)->df;
  if (job->y->dtype == AD_F32) {
    const float *xs = (const float *)job->x->data + lo, *ys = (const float *)job->y->data + lo;
    const float *g = (const float *)job->g + lo;
    float *d = (float *)job->d + lo;
    if (backward_f32(op, xs, ys, g, d, n, fresh)) return;
    for (int64_t i = 0; i < n; i++) {
      float v = g[i] == 0 ? 0.0f : (float)(g[i] * df(xs[i], ys[i], p));
      d[i] = fresh ? v : d[i] + v;
    }
    return;
  }
  const double *xs = (const double *)job->x->data + lo, *ys = (const double *)job->y->data + lo;
  const double *g = (const double *)job->g + lo;
  double *d = (double *)job->d + lo;
  if (op == OP_RELU) {
    /* A select, as the float loop does, so that a NaN upstream gradient
       stays out of elements where x <= 0 in both dtypes (as in PyTorch). */
    for (int64_t i = 0; i < n; i++) {
      double v = xs[i] > 0 ? g[i] : 0.0;
      d[i] = fresh ? v : d[i] + v;
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    double v = g[i] == 0 ? 0.0 : g[i] * df(xs[i], ys[i], p);
    d[i] = fresh ? v : d[i] + v;
  }
}

ad_status unary_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  unary_job job = {.op = (op_kind)y->op,
                   .x = y->in[0],
                   .y = y,
                   .g = args->gout,
                   .d = args->gin[0],
                   .fresh = args->fresh[0]};
  parallel_blocks(ctx, y->numel, unary_backward_range, &job);
  return AD_OK;
}

ad_status unary_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                               ad_tensor **gin) {
  if (!need[0]) return AD_OK;
  ad_tensor *x = y->in[0];
  switch ((op_kind)y->op) {
  case OP_ADD_SCALAR: gin[0] = g; break;
  case OP_NEG: gin[0] = ad_neg(ctx, g); break;
  case OP_MUL_SCALAR: gin[0] = ad_mul_scalar(ctx, g, y->p.s[0]); break;
  default: gin[0] = gmul(ctx, g, unary_row(y->op)->dgraph(ctx, x, y)); break;
  }
  return gin[0] ? AD_OK : (ctx->error ? ctx->error : AD_ERR_MEMORY);
}
