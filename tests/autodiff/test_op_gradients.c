/*
 * Gradients of every operation: first and second order against central
 * differences, the fused and graph backward paths against each other, and
 * float32 against float64.
 *
 * Each row of the case table is one operation with a list of variants
 * (input shapes, broadcast patterns, axes). For every variant the suite
 *   1. runs ad_gradcheck and ad_gradgradcheck in float64;
 *   2. compares the gradient of <f(x), u> from the fused kernels (no flags)
 *      with the one from the graph rules (AD_CREATE_GRAPH);
 *   3. recomputes output and gradient in float32 and compares them with the
 *      float64 ones.
 * For the first variant it also checks the first and second derivatives of
 * the vector-Jacobian product (x, v) -> d<f(x), v>/dx, which run the fused
 * kernels and graph rules of the adjoint operations that first-order
 * gradients record.
 *
 * Inputs are drawn away from the points where an operation has no derivative
 * (test_conventions.c covers those points). The coverage test runs the whole
 * table in one context and fails when an operation kind's fused or graph
 * backward rule was never run.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

#define MAX_INPUTS 4
#define MAX_VARIANTS 16

/* How an input's values are drawn. */
typedef enum domain {
  ANY,      /* uniform in (-2, 2) */
  POSITIVE, /* uniform in (0.3, 2) */
  UNIT,     /* uniform in (-0.8, 0.8) */
  AWAY,     /* magnitude in (0.3, 2) and either sign: away from kinks at 0 */
  MASK,     /* constant 1, 0, 1, 1, 0, ... (element i is 0 when i % 3 == 1); no gradient */
  PROB      /* uniform in (0.05, 0.95), for targets of binary cross-entropy */
} domain;

/* Shape families that expand to a generated list of variants. */
typedef enum family {
  CUSTOM,  /* the variants listed in the case */
  UNARY,   /* one input in assorted shapes, random ones included */
  BINARY   /* two inputs in broadcast patterns, random ones included */
} family;

typedef struct variant {
  const char *shapes[MAX_INPUTS]; /* one per input, "" for 0-d; NULL ends */
  int p[8];                       /* operation parameters (axes, ...) */
} variant;

typedef ad_tensor *(*unary_fn)(ad_ctx *, ad_tensor *);
typedef ad_tensor *(*binary_fn)(ad_ctx *, ad_tensor *, ad_tensor *);

typedef struct op_case {
  const char *name;
  ad_function f;
  family family;
  domain domains[MAX_INPUTS];
  unary_fn unary;  /* for f_unary */
  binary_fn binary; /* for f_binary */
  double k[2];     /* constants (slope, bounds, exponent) */
  unsigned flags;
  variant variants[MAX_VARIANTS];
} op_case;

/* op_case.flags */
enum {
  INPUTS_F32 = 1u << 0, /* inputs are float32 (cast); no float32 comparison */
};

/* What the case functions receive as user data. */
typedef struct call_env {
  const op_case *c;
  const variant *v;
} call_env;

static const call_env *env_of(void *user) { return user; }

/* ---- Case functions ----------------------------------------------- */

static ad_tensor *f_unary(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return env_of(user)->c->unary(ctx, in[0]);
}

static ad_tensor *f_binary(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return env_of(user)->c->binary(ctx, in[0], in[1]);
}

static ad_tensor *f_add_scalar(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_add_scalar(ctx, in[0], env_of(user)->c->k[0]);
}

static ad_tensor *f_mul_scalar(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_mul_scalar(ctx, in[0], env_of(user)->c->k[0]);
}

static ad_tensor *f_pow_scalar(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_pow_scalar(ctx, in[0], env_of(user)->c->k[0]);
}

static ad_tensor *f_leaky_relu(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_leaky_relu(ctx, in[0], env_of(user)->c->k[0]);
}

static ad_tensor *f_elu(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_elu(ctx, in[0], env_of(user)->c->k[0]);
}

static ad_tensor *f_clamp(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const op_case *c = env_of(user)->c;
  return ad_clamp(ctx, in[0], c->k[0], c->k[1]);
}

static ad_tensor *f_where(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_where(ctx, in[0], in[1], in[2]);
}

/* Reductions: p = {keepdim, naxes, axis...}. */
typedef ad_tensor *(*reduce_fn)(ad_ctx *, ad_tensor *, int, const int *, bool);

static ad_tensor *reduce_with(ad_ctx *ctx, ad_tensor *a, const variant *v, reduce_fn fn) {
  return fn(ctx, a, v->p[1], v->p + 2, v->p[0] != 0);
}

static ad_tensor *f_sum(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_sum);
}
static ad_tensor *f_mean(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_mean);
}
static ad_tensor *f_max(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_max);
}
static ad_tensor *f_min(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_min);
}
static ad_tensor *f_logsumexp(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_logsumexp);
}
static ad_tensor *f_norm(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return reduce_with(ctx, in[0], env_of(user)->v, ad_norm);
}

/* var: p as for reductions; the correction is k[0]. */
static ad_tensor *f_var(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const call_env *e = env_of(user);
  return ad_var(ctx, in[0], e->v->p[1], e->v->p + 2, (int)e->c->k[0], e->v->p[0] != 0);
}

/* linear with or without bias, by the variant's number of shapes. */
static ad_tensor *f_linear(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_linear(ctx, in[0], in[1], env_of(user)->v->shapes[2] ? in[2] : NULL);
}

/* reshape and expand: p = {ndim, dims...}. */
static ad_tensor *f_reshape(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  int64_t dims[AD_MAX_DIMS];
  for (int d = 0; d < v->p[0]; d++) dims[d] = v->p[1 + d];
  return ad_reshape(ctx, in[0], v->p[0], dims);
}

static ad_tensor *f_expand(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  int64_t dims[AD_MAX_DIMS];
  for (int d = 0; d < v->p[0]; d++) dims[d] = v->p[1 + d];
  return ad_expand(ctx, in[0], v->p[0], dims);
}

static ad_tensor *f_transpose(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  return ad_transpose(ctx, in[0], v->p[0], v->p[1]);
}

static ad_tensor *f_permute(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_permute(ctx, in[0], env_of(user)->v->p);
}

static ad_tensor *f_squeeze(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_squeeze(ctx, in[0], env_of(user)->v->p[0]);
}

static ad_tensor *f_unsqueeze(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_unsqueeze(ctx, in[0], env_of(user)->v->p[0]);
}

/* slice: p = {axis, start, stop, step}. */
static ad_tensor *f_slice(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const int *p = env_of(user)->v->p;
  return ad_slice(ctx, in[0], p[0], p[1], p[2], p[3]);
}

/* index_select along p[0] with indices {d - 1, 0, d - 1, -1} for a
   dimension of size d: repeated and negative indices. */
static ad_tensor *f_index_select(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  int axis = env_of(user)->v->p[0];
  int64_t d = ad_dim(in[0], axis);
  int64_t idx[4] = {d - 1, 0, d - 1, -1};
  int64_t n = 4;
  ad_tensor *indices = ad_from_i64(ctx, 1, &n, idx);
  return ad_index_select(ctx, in[0], axis, indices);
}

/* gather along p[0] with an index of shape p[1] x p[2] whose element k is
   (7 k + 1) mod the size of the axis, negative for odd k. */
static ad_tensor *f_gather(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const int *p = env_of(user)->v->p;
  int64_t d = ad_dim(in[0], p[0]);
  int64_t shape[2] = {p[1], p[2]};
  int64_t idx[16];
  for (int64_t k = 0; k < shape[0] * shape[1]; k++) {
    idx[k] = (7 * k + 1) % d;
    if (k % 2) idx[k] -= d;
  }
  ad_tensor *index = ad_from_i64(ctx, 2, shape, idx);
  return ad_gather(ctx, in[0], p[0], index);
}

static int input_count_of(const variant *v) {
  int n = 0;
  while (n < MAX_INPUTS && v->shapes[n]) n++;
  return n;
}

static ad_tensor *f_concat(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  return ad_concat(ctx, input_count_of(v), in, v->p[0]);
}

static ad_tensor *f_stack(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  return ad_stack(ctx, input_count_of(v), in, v->p[0]);
}

/* cast: float32 inputs, cast to float64, then a nonlinear function so that
   the second derivative is not zero. */
static ad_tensor *f_cast(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sin(ctx, ad_cast(ctx, in[0], AD_F64));
}

static ad_tensor *f_softmax(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_softmax(ctx, in[0], env_of(user)->v->p[0]);
}

static ad_tensor *f_log_softmax(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_log_softmax(ctx, in[0], env_of(user)->v->p[0]);
}

/* cross-entropy with reduction p[0]; target element i is (2 i + 1) mod C. */
static ad_tensor *f_cross_entropy(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const variant *v = env_of(user)->v;
  ad_tensor *logits = in[0];
  int class_axis = ad_ndim(logits) >= 2 ? 1 : 0;
  int64_t classes = ad_dim(logits, class_axis);
  int64_t shape[AD_MAX_DIMS], idx[64];
  int n = 0;
  for (int d = 0; d < ad_ndim(logits); d++)
    if (d != class_axis) shape[n++] = ad_shape(logits)[d];
  int64_t count = ad_numel(logits) / classes;
  for (int64_t i = 0; i < count; i++) idx[i] = (2 * i + 1) % classes;
  ad_tensor *target = ad_from_i64(ctx, n, shape, idx);
  return ad_cross_entropy(ctx, logits, target, (ad_reduction)v->p[0]);
}

static ad_tensor *f_bce(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_bce_with_logits(ctx, in[0], in[1], (ad_reduction)env_of(user)->v->p[0]);
}

static ad_tensor *f_mse(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  return ad_mse(ctx, in[0], in[1], (ad_reduction)env_of(user)->v->p[0]);
}

/* ---- The case table --------------------------------------------------- */

#define V1(s0, ...) {{s0, NULL}, {__VA_ARGS__}}
#define V2(s0, s1, ...) {{s0, s1, NULL}, {__VA_ARGS__}}
#define V3(s0, s1, s2, ...) {{s0, s1, s2, NULL}, {__VA_ARGS__}}

/* Reduction variants, p = {keepdim, naxes, axis...}. */
#define REDUCE_VARIANTS                                                                         \
  V1("2,3,4", 0, 1, 1), V1("2,3,4", 0, 0), V1("2,3,4", 1, 1, 1), V1("2,3,4", 0, 2, 0, -1),     \
      V1("", 0, 0), V1("3,1", 0, 1, 1), V1("1,2,1,3", 1, 2, 0, 2), V1("4", 0, 1, 0)

#define REDUCE_VARIANTS_EMPTY REDUCE_VARIANTS, V1("0,3", 0, 1, 0), V1("2,0", 1, 1, 0)

/* The unbiased variance of one element is 0 / 0, so these reduce over at
   least two elements. */
#define VAR_VARIANTS                                                                            \
  V1("2,3,4", 0, 1, 1), V1("2,3,4", 0, 0), V1("2,3,4", 1, 1, 1), V1("2,3,4", 0, 2, 0, -1),     \
      V1("1,2,1,3", 1, 2, 1, 3), V1("4", 0, 1, 0)

static const op_case cases[] = {
    /* elementwise functions of one input */
    {"neg", f_unary, UNARY, {ANY}, .unary = ad_neg},
    {"abs", f_unary, UNARY, {AWAY}, .unary = ad_abs},
    {"sqrt", f_unary, UNARY, {POSITIVE}, .unary = ad_sqrt},
    {"cbrt", f_unary, UNARY, {AWAY}, .unary = ad_cbrt},
    {"exp", f_unary, UNARY, {ANY}, .unary = ad_exp},
    {"exp2", f_unary, UNARY, {ANY}, .unary = ad_exp2},
    {"expm1", f_unary, UNARY, {ANY}, .unary = ad_expm1},
    {"log", f_unary, UNARY, {POSITIVE}, .unary = ad_log},
    {"log2", f_unary, UNARY, {POSITIVE}, .unary = ad_log2},
    {"log10", f_unary, UNARY, {POSITIVE}, .unary = ad_log10},
    {"log1p", f_unary, UNARY, {POSITIVE}, .unary = ad_log1p},
    {"sin", f_unary, UNARY, {ANY}, .unary = ad_sin},
    {"cos", f_unary, UNARY, {ANY}, .unary = ad_cos},
    {"tan", f_unary, UNARY, {UNIT}, .unary = ad_tan},
    {"asin", f_unary, UNARY, {UNIT}, .unary = ad_asin},
    {"acos", f_unary, UNARY, {UNIT}, .unary = ad_acos},
    {"atan", f_unary, UNARY, {ANY}, .unary = ad_atan},
    {"sinh", f_unary, UNARY, {ANY}, .unary = ad_sinh},
    {"cosh", f_unary, UNARY, {ANY}, .unary = ad_cosh},
    {"tanh", f_unary, UNARY, {ANY}, .unary = ad_tanh},
    {"erf", f_unary, UNARY, {ANY}, .unary = ad_erf},
    {"erfc", f_unary, UNARY, {ANY}, .unary = ad_erfc},
    {"sigmoid", f_unary, UNARY, {ANY}, .unary = ad_sigmoid},
    {"relu", f_unary, UNARY, {AWAY}, .unary = ad_relu},
    {"gelu", f_unary, UNARY, {ANY}, .unary = ad_gelu},
    {"softplus", f_unary, UNARY, {ANY}, .unary = ad_softplus},
    {"clone", f_unary, UNARY, {ANY}, .unary = ad_clone},
    {"leaky_relu", f_leaky_relu, UNARY, {AWAY}, .k = {0.1}},
    {"elu", f_elu, UNARY, {AWAY}, .k = {1.3}},
    {"clamp", f_clamp, UNARY, {ANY}, .k = {-0.5, 0.7}},
    {"clamp_low_only", f_clamp, UNARY, {ANY}, .k = {-0.5, INFINITY}},
    {"add_scalar", f_add_scalar, UNARY, {ANY}, .k = {1.5}},
    {"mul_scalar", f_mul_scalar, UNARY, {ANY}, .k = {-2.5}},
    {"pow_scalar", f_pow_scalar, UNARY, {POSITIVE}, .k = {2.5}},
    {"pow_scalar_integer", f_pow_scalar, UNARY, {ANY}, .k = {3}},
    {"pow_scalar_negative", f_pow_scalar, UNARY, {POSITIVE}, .k = {-1.5}},

    /* elementwise functions of two inputs, broadcasting */
    {"add", f_binary, BINARY, {ANY, ANY}, .binary = ad_add},
    {"sub", f_binary, BINARY, {ANY, ANY}, .binary = ad_sub},
    {"mul", f_binary, BINARY, {ANY, ANY}, .binary = ad_mul},
    {"div", f_binary, BINARY, {ANY, AWAY}, .binary = ad_div},
    {"pow", f_binary, BINARY, {POSITIVE, ANY}, .binary = ad_pow},
    {"minimum", f_binary, BINARY, {ANY, ANY}, .binary = ad_minimum},
    {"maximum", f_binary, BINARY, {ANY, ANY}, .binary = ad_maximum},
    {"atan2", f_binary, BINARY, {AWAY, AWAY}, .binary = ad_atan2},
    {"hypot", f_binary, BINARY, {AWAY, AWAY}, .binary = ad_hypot},
    {"where",
     f_where,
     CUSTOM,
     {MASK, ANY, ANY},
     .variants = {V3("2,3", "2,3", "2,3"), V3("2,1", "3", ""), V3("", "2,2", "2,2"),
                  V3("3", "2,1", "1,3"), V3("0,2", "2", "")}},

    /* reductions */
    {"sum", f_sum, CUSTOM, {ANY}, .variants = {REDUCE_VARIANTS_EMPTY}},
    {"mean", f_mean, CUSTOM, {ANY}, .variants = {REDUCE_VARIANTS, V1("2,0", 1, 1, 0)}},
    {"max", f_max, CUSTOM, {ANY}, .variants = {REDUCE_VARIANTS}},
    {"min", f_min, CUSTOM, {ANY}, .variants = {REDUCE_VARIANTS}},
    {"logsumexp", f_logsumexp, CUSTOM, {ANY}, .variants = {REDUCE_VARIANTS_EMPTY}},
    {"var", f_var, CUSTOM, {ANY}, .k = {1}, .variants = {VAR_VARIANTS}},
    {"var_population", f_var, CUSTOM, {ANY}, .k = {0}, .variants = {REDUCE_VARIANTS}},
    {"norm", f_norm, CUSTOM, {AWAY}, .variants = {REDUCE_VARIANTS_EMPTY}},

    /* linear algebra */
    {"matmul",
     f_binary,
     CUSTOM,
     {ANY, ANY},
     .binary = ad_matmul,
     .variants = {V2("2,2,3", "2,3,4"), V2("3", "3"), V2("3", "3,4"), V2("2,3", "3"),
                  V2("2,3", "3,4"), V2("2,1,2,3", "3,3,2"), V2("3", "2,3,4"), V2("2,2,3", "3"),
                  V2("1,2,3", "2,3,2"), V2("2,0", "0,3"), V2("0,2", "2,3"),
                  V2("0,2,3", "3,4"), V2("2,3", "0,3,2")}},
    {"dot", f_binary, CUSTOM, {ANY, ANY}, .binary = ad_dot,
     .variants = {V2("4", "4"), V2("1", "1"), V2("0", "0")}},
    {"outer", f_binary, CUSTOM, {ANY, ANY}, .binary = ad_outer,
     .variants = {V2("3", "2"), V2("1", "4"), V2("0", "2")}},
    {"linear",
     f_linear,
     CUSTOM,
     {ANY, ANY, ANY},
     .variants = {V3("4,3", "2,3", "2"), V2("4,3", "2,3"), V3("3", "2,3", "2"),
                  V3("2,4,3", "5,3", "5"), V2("2,1,3", "2,3"), V3("0,3", "2,3", "2"),
                  V3("2,3", "0,3", "0"), V3("2,0", "3,0", "3")}},

    /* shape */
    {"reshape", f_reshape, CUSTOM, {ANY},
     .variants = {V1("2,3,2", 2, 3, -1), V1("", 2, 1, 1), V1("4", 2, 2, 2), V1("1", 0),
                  V1("0,3", 2, 3, 0)}},
    {"transpose", f_transpose, CUSTOM, {ANY},
     .variants = {V1("2,3,4", 0, -1), V1("3,2", 0, 1), V1("2,2", 1, 1)}},
    {"permute", f_permute, CUSTOM, {ANY},
     .variants = {V1("2,3,4", 2, 0, 1), V1("2,3", 1, 0), V1("", 0), V1("0,2,3", 1, 2, 0)}},
    {"expand", f_expand, CUSTOM, {ANY},
     .variants = {V1("3,1", 3, 2, 3, 4), V1("", 2, 2, 2), V1("2,1", 2, 2, 3), V1("1", 1, 0),
                  V1("3", 1, 3)}},
    {"squeeze", f_squeeze, CUSTOM, {ANY}, .variants = {V1("2,1,3", 1), V1("1", 0), V1("3,1", -1)}},
    {"unsqueeze", f_unsqueeze, CUSTOM, {ANY},
     .variants = {V1("2,3", -1), V1("", 0), V1("2,3", 1), V1("2,3", -3)}},
    {"slice", f_slice, CUSTOM, {ANY},
     .variants = {V1("2,6", 1, 1, 5, 2), V1("5,2", 0, -3, -1, 1), V1("5", 0, -10, 10, 3),
                  V1("4", 0, 3, 1, 1), V1("3,4,2", 1, 0, 4, 3)}},
    {"index_select", f_index_select, CUSTOM, {ANY},
     .variants = {V1("2,3", 1), V1("4,2", 0), V1("3", 0), V1("2,3,2", -2)}},
    {"gather", f_gather, CUSTOM, {ANY},
     .variants = {V1("3,3", 1, 3, 2), V1("3,4", 0, 2, 3), V1("4,2", 1, 1, 4)}},
    {"concat", f_concat, CUSTOM, {ANY, ANY, ANY},
     .variants = {V3("2,1", "2,3", "2,2", 1), V2("1,3", "2,3", 0), V2("0,2", "3,2", 0),
                  V3("2", "3", "1", -1), V2("2,2", "2,2", 0)}},
    {"stack", f_stack, CUSTOM, {ANY, ANY, ANY},
     .variants = {V2("2,3", "2,3", 1), V2("", "", 0), V3("2", "2", "2", -1)}},
    {"cast", f_cast, CUSTOM, {ANY}, .flags = INPUTS_F32,
     .variants = {V1("2,3", 0), V1("", 0), V1("0,2", 0)}},

    /* network functions */
    {"softmax", f_softmax, CUSTOM, {ANY},
     .variants = {V1("3,4", 0), V1("3,4", -1), V1("5", 0), V1("2,3,2", 1), V1("1", 0)}},
    {"log_softmax", f_log_softmax, CUSTOM, {ANY},
     .variants = {V1("3,4", -1), V1("3,4", 0), V1("5", 0), V1("2,3,2", 1), V1("1", 0)}},
    {"cross_entropy", f_cross_entropy, CUSTOM, {ANY},
     .variants = {V1("4,3", AD_REDUCE_MEAN), V1("4,3", AD_REDUCE_SUM), V1("4,3", AD_REDUCE_NONE),
                  V1("5", AD_REDUCE_MEAN), V1("5", AD_REDUCE_NONE), V1("2,3,2", AD_REDUCE_NONE),
                  V1("2,3,2", AD_REDUCE_MEAN), V1("2,3,1,2", AD_REDUCE_SUM)}},
    {"bce_with_logits", f_bce, CUSTOM, {ANY, PROB},
     .variants = {V2("2,3", "2,3", AD_REDUCE_MEAN), V2("2,3", "2,3", AD_REDUCE_SUM),
                  V2("2,3", "2,3", AD_REDUCE_NONE), V2("", "", AD_REDUCE_MEAN)}},
    {"mse", f_mse, CUSTOM, {ANY, ANY},
     .variants = {V2("2,3", "2,3", AD_REDUCE_MEAN), V2("2,3", "2,3", AD_REDUCE_SUM),
                  V2("2,3", "2,3", AD_REDUCE_NONE), V2("", "", AD_REDUCE_SUM),
                  V2("0,3", "0,3", AD_REDUCE_SUM), V2("4", "4", AD_REDUCE_MEAN)}},
};

#define CASE_COUNT ((int)(sizeof cases / sizeof *cases))

/* ---- Variants of the shape families ---------------------------------- */

static const char *const unary_shapes[] = {"2,3", "", "1", "4", "2,1,3", "0,3", "1,1,1,1,1,1,1,2"};

static const char *const binary_shapes[][2] = {
    {"2,1", "1,3"}, {"", ""},       {"3", ""},     {"", "2,3"},  {"2,3", "3"},
    {"4,1,3", "2,1"}, {"2,3", "2,3"}, {"1", "2,2"}, {"0,3", "3"}, {"2,0", "1"},
};

#define RANDOM_VARIANTS 3

/* Text storage for generated shapes. */
typedef struct shape_buffer {
  char text[MAX_INPUTS][40];
} shape_buffer;

static void write_shape(char *text, size_t size, int ndim, const int64_t *shape) {
  size_t n = 0;
  text[0] = '\0';
  for (int d = 0; d < ndim; d++)
    n += (size_t)snprintf(text + n, size - n, d ? ",%lld" : "%lld", (long long)shape[d]);
}

/* A random broadcast pair: an output shape of 1 to 4 dimensions of sizes 1
   to 3, from which each input drops some leading dimensions and sets some
   others to 1. */
static void random_pair(ad_rng *rng, shape_buffer *buffer) {
  int ndim = 1 + (int)ad_rng_below(rng, 4);
  int64_t out[4];
  for (int d = 0; d < ndim; d++) out[d] = 1 + (int64_t)ad_rng_below(rng, 3);
  for (int k = 0; k < 2; k++) {
    int drop = (int)ad_rng_below(rng, (uint64_t)ndim + 1);
    int64_t shape[4];
    int n = 0;
    for (int d = drop; d < ndim; d++) shape[n++] = ad_rng_below(rng, 3) == 0 ? 1 : out[d];
    write_shape(buffer->text[k], sizeof buffer->text[k], n, shape);
  }
}

static void random_single(ad_rng *rng, shape_buffer *buffer) {
  int ndim = 1 + (int)ad_rng_below(rng, 3);
  int64_t shape[3];
  for (int d = 0; d < ndim; d++) shape[d] = 1 + (int64_t)ad_rng_below(rng, 3);
  write_shape(buffer->text[0], sizeof buffer->text[0], ndim, shape);
}

/* Fills out with the variants of c and returns their number. Generated
   shape texts live in buffers. */
static int expand_variants(const op_case *c, int case_index, variant *out, shape_buffer *buffers) {
  int n = 0;
  ad_rng rng;
  ad_rng_seed(&rng, 1000 + (uint64_t)case_index);
  switch (c->family) {
  case CUSTOM:
    while (n < MAX_VARIANTS && c->variants[n].shapes[0]) {
      out[n] = c->variants[n];
      n++;
    }
    return n;
  case UNARY:
    for (size_t i = 0; i < sizeof unary_shapes / sizeof *unary_shapes; i++) {
      memset(&out[n], 0, sizeof out[n]);
      out[n++].shapes[0] = unary_shapes[i];
    }
    for (int r = 0; r < RANDOM_VARIANTS; r++) {
      random_single(&rng, &buffers[r]);
      memset(&out[n], 0, sizeof out[n]);
      out[n++].shapes[0] = buffers[r].text[0];
    }
    return n;
  case BINARY:
    for (size_t i = 0; i < sizeof binary_shapes / sizeof *binary_shapes; i++) {
      memset(&out[n], 0, sizeof out[n]);
      out[n].shapes[0] = binary_shapes[i][0];
      out[n++].shapes[1] = binary_shapes[i][1];
    }
    for (int r = 0; r < RANDOM_VARIANTS; r++) {
      random_pair(&rng, &buffers[r]);
      memset(&out[n], 0, sizeof out[n]);
      out[n].shapes[0] = buffers[r].text[0];
      out[n++].shapes[1] = buffers[r].text[1];
    }
    return n;
  }
  return n;
}

/* ---- Inputs --------------------------------------------------------- */

static double draw(ad_rng *rng, domain d, int64_t i) {
  double u = ad_rng_uniform(rng);
  switch (d) {
  case ANY: return -2 + 4 * u;
  case POSITIVE: return 0.3 + 1.7 * u;
  case UNIT: return -0.8 + 1.6 * u;
  case AWAY: return (ad_rng_uniform(rng) < 0.5 ? -1 : 1) * (0.3 + 1.7 * u);
  case MASK: return i % 3 == 1 ? 0 : 1;
  case PROB: return 0.05 + 0.9 * u;
  }
  return 0;
}

/* Creates the inputs of a variant in dtype; every input except masks
   requires a gradient. */
static int make_inputs(ad_ctx *ctx, const op_case *c, const variant *v, uint64_t seed,
                       ad_dtype dtype, ad_tensor **in) {
  ad_rng rng;
  ad_rng_seed(&rng, seed);
  int n = input_count_of(v);
  for (int k = 0; k < n; k++) {
    int64_t shape[AD_MAX_DIMS];
    int ndim = parse_shape(v->shapes[k], shape);
    in[k] = ad_zeros(ctx, dtype, ndim, shape);
    ck_assert_ptr_nonnull(in[k]);
    for (int64_t i = 0; i < ad_numel(in[k]); i++) {
      double value = draw(&rng, c->domains[k], i);
      if (dtype == AD_F32) ad_data_f32_mut(in[k])[i] = (float)value;
      else ad_data_f64_mut(in[k])[i] = value;
    }
    if (c->domains[k] != MASK) ck_assert_int_eq(ad_set_requires_grad(in[k], true), AD_OK);
  }
  return n;
}

/* Leaves holding in's values converted to dtype, with the same flags. */
static void convert_inputs(ad_ctx *ctx, int n, ad_tensor *const *in, ad_dtype dtype,
                           ad_tensor **out) {
  bool was = ad_set_grad_enabled(ctx, false);
  for (int k = 0; k < n; k++) {
    out[k] = ad_cast(ctx, in[k], dtype);
    ck_assert_ptr_nonnull(out[k]);
    if (ad_requires_grad(in[k])) ck_assert_int_eq(ad_set_requires_grad(out[k], true), AD_OK);
  }
  ad_set_grad_enabled(ctx, was);
}

/* ---- Checks ---------------------------------------------------------- */

static void describe(char *label, size_t size, const op_case *c, const variant *v) {
  size_t n = (size_t)snprintf(label, size, "%s", c->name);
  for (int k = 0; k < MAX_INPUTS && v->shapes[k]; k++)
    n += (size_t)snprintf(label + n, size - n, " [%s]", v->shapes[k]);
  snprintf(label + n, size - n, " p={%d,%d,%d,%d}", v->p[0], v->p[1], v->p[2], v->p[3]);
}

static void assert_gradcheck(const char *label, const char *what, ad_ctx *ctx, ad_status st,
                             const ad_gradcheck_result *r) {
  ck_assert_msg(st == AD_OK, "%s: %s failed to run: %s", label, what, ad_errmsg(ctx));
  ck_assert_msg(r->passed,
                "%s: %s: input %d element %lld, output element %lld: analytic %.12g, numeric "
                "%.12g (abs error %.3g, rel error %.3g)",
                label, what, r->input, (long long)r->input_index, (long long)r->output_index,
                r->analytic, r->numeric, r->max_abs_error, r->max_rel_error);
}

/* The inputs that require a gradient. */
static int differentiable(int n, ad_tensor *const *in, ad_tensor **targets) {
  int m = 0;
  for (int k = 0; k < n; k++)
    if (ad_requires_grad(in[k])) targets[m++] = in[k];
  return m;
}

/* A random seed of y's shape and dtype with values in (0.5, 1.5). */
static ad_tensor *random_seed(ad_ctx *ctx, const ad_tensor *y, uint64_t seed) {
  ad_rng rng;
  ad_rng_seed(&rng, seed);
  ad_tensor *u = ad_rand_uniform(ctx, &rng, AD_F64, ad_ndim(y), ad_shape(y), 0.5, 1.5);
  ck_assert_ptr_nonnull(u);
  if (ad_tensor_dtype(y) == AD_F64) return u;
  bool was = ad_set_grad_enabled(ctx, false);
  ad_tensor *cast = ad_cast(ctx, u, ad_tensor_dtype(y));
  ad_set_grad_enabled(ctx, was);
  return cast;
}

/* The largest magnitude among t's elements, at least 1. */
static double scale_of(const ad_tensor *t) {
  double m = 1;
  for (int64_t i = 0; i < ad_numel(t); i++)
    if (fabs(flat_get(t, i)) > m) m = fabs(flat_get(t, i));
  return m;
}

/* Gradients of <f(in), u> with flags 0 and with AD_CREATE_GRAPH; asserts
   they agree and stores the fused ones in grads. Returns the output. */
static ad_tensor *check_paths_agree(const char *label, ad_ctx *ctx, const op_case *c,
                                    call_env *env, int n, ad_tensor *const *in, ad_tensor **grads,
                                    int *ntargets) {
  ad_tensor *y = c->f(ctx, in, env);
  ck_assert_msg(y != NULL, "%s: forward failed: %s", label, ad_errmsg(ctx));
  ad_tensor *targets[MAX_INPUTS], *graph[MAX_INPUTS];
  int m = differentiable(n, in, targets);
  *ntargets = m;
  if (m == 0 || !ad_requires_grad(y)) {
    *ntargets = 0;
    return y;
  }
  ad_tensor *u = random_seed(ctx, y, 77);
  ck_assert_msg(ad_gradients(ctx, 1, &y, &u, m, targets, grads, 0) == AD_OK,
                "%s: fused gradients failed: %s", label, ad_errmsg(ctx));
  ck_assert_msg(ad_gradients(ctx, 1, &y, &u, m, targets, graph, AD_CREATE_GRAPH) == AD_OK,
                "%s: graph gradients failed: %s", label, ad_errmsg(ctx));
  bool f32 = ad_tensor_dtype(y) == AD_F32;
  for (int k = 0; k < m; k++) {
    /* An empty output sends no gradient, so every gradient is zero. */
    for (int64_t i = 0; ad_numel(y) == 0 && i < ad_numel(grads[k]); i++)
      ck_assert_msg(flat_get(grads[k], i) == 0 && flat_get(graph[k], i) == 0,
                    "%s: input %d of an empty output has gradient %g (fused) and %g (graph) at "
                    "element %lld; expected 0",
                    label, k, flat_get(grads[k], i), flat_get(graph[k], i), (long long)i);
    char what[256];
    snprintf(what, sizeof what, "%s (%s): fused and graph gradient of input %d", label,
             f32 ? "float32" : "float64", k);
    double tol = (f32 ? 1e-5 : 1e-12) * scale_of(grads[k]);
    assert_tensors_close(what, grads[k], graph[k], tol, f32 ? 1e-5 : 1e-10);
  }
  return y;
}

/* Recomputes output and gradients in float32 and compares them with the
   float64 values y64 and g64. */
static void check_float32(const char *label, ad_ctx *ctx, const op_case *c, call_env *env, int n,
                          ad_tensor *const *in64, const ad_tensor *y64, ad_tensor *const *g64,
                          int m64) {
  ad_tensor *in32[MAX_INPUTS], *g32[MAX_INPUTS];
  convert_inputs(ctx, n, in64, AD_F32, in32);
  int m32 = 0;
  ad_tensor *y32 = check_paths_agree(label, ctx, c, env, n, in32, g32, &m32);
  ck_assert_msg(ad_tensor_dtype(y32) == AD_F32, "%s: float32 inputs gave %s", label,
                ad_dtype_name(ad_tensor_dtype(y32)));
  char what[256];
  snprintf(what, sizeof what, "%s: float32 output against float64", label);
  assert_tensors_close(what, y32, y64, 1e-4 * scale_of(y64), 1e-4);
  ck_assert_int_eq(m32, m64);
  for (int k = 0; k < m64; k++) {
    snprintf(what, sizeof what, "%s: float32 gradient of input %d against float64", label, k);
    assert_tensors_close(what, g32[k], g64[k], 1e-4 * scale_of(g64[k]), 1e-4);
  }
}

/* ---- Vector-Jacobian product as a function --------------------------- */

typedef struct vjp_env {
  const op_case *c;
  call_env *inner;
  int nx; /* inputs of f; the next input is v */
} vjp_env;

/* (x, v) -> the gradients of <f(x), v> with respect to every x that requires
   one, flattened and joined, recorded so it can be differentiated. */
static ad_tensor *vjp_function(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  const vjp_env *e = user;
  bool was = ad_set_grad_enabled(ctx, true);
  ad_tensor *targets[MAX_INPUTS], *grads[MAX_INPUTS];
  int m = differentiable(e->nx, in, targets);
  ad_tensor *y = e->c->f(ctx, in, e->inner);
  ad_tensor *v = in[e->nx];
  ad_tensor *joined = NULL;
  if (y && ad_gradients(ctx, 1, &y, &v, m, targets, grads, AD_CREATE_GRAPH) == AD_OK) {
    for (int k = 0; k < m; k++) grads[k] = ad_reshape(ctx, grads[k], 1, (int64_t[]){-1});
    joined = ad_concat(ctx, m, grads, 0);
  }
  ad_set_grad_enabled(ctx, was);
  return joined;
}

static void check_vjp_second_order(const char *label, ad_ctx *ctx, const op_case *c,
                                   call_env *env, int n, ad_tensor **in, const ad_tensor *y) {
  ad_tensor *all[MAX_INPUTS + 1];
  for (int k = 0; k < n; k++) all[k] = in[k];
  all[n] = random_seed(ctx, y, 99);
  ck_assert_int_eq(ad_set_requires_grad(all[n], true), AD_OK);
  vjp_env e = {c, env, n};
  /* The float32 gradient of a float32 input rounds to about 1e-7, which a
     float64 step of 1e-6 would turn into a 10% error: use float32 steps. */
  ad_gradcheck_options f32_options = {.step = 1e-3, .atol = 1e-3, .rtol = 1e-2};
  bool f32 = (c->flags & INPUTS_F32) != 0;
  const ad_gradcheck_options *options = f32 ? &f32_options : NULL;
  ad_gradcheck_result r;
  ad_status st = ad_gradcheck(ctx, vjp_function, &e, n + 1, all, options, &r);
  assert_gradcheck(label, "derivatives of the vector-Jacobian product", ctx, st, &r);
  st = ad_gradgradcheck(ctx, vjp_function, &e, n + 1, all, options, &r);
  assert_gradcheck(label, "second derivatives of the vector-Jacobian product", ctx, st, &r);
}

/* ---- Driver ----------------------------------------------------------- */

/* Runs every check on one variant of case c in ctx. */
static void check_variant(ad_ctx *ctx, int case_index, int variant_index, const variant *v,
                          bool third_order) {
  const op_case *c = &cases[case_index];
  char label[200];
  describe(label, sizeof label, c, v);
  call_env env = {c, v};
  ad_dtype dtype = (c->flags & INPUTS_F32) ? AD_F32 : AD_F64;
  uint64_t seed = 7919 * (uint64_t)case_index + (uint64_t)variant_index;
  ad_tensor *in[MAX_INPUTS];
  int n = make_inputs(ctx, c, v, seed, dtype, in);

  ad_gradcheck_result r;
  ad_status st = ad_gradcheck(ctx, c->f, &env, n, in, NULL, &r);
  assert_gradcheck(label, "first order", ctx, st, &r);
  st = ad_gradgradcheck(ctx, c->f, &env, n, in, NULL, &r);
  assert_gradcheck(label, "second order", ctx, st, &r);

  ad_tensor *grads[MAX_INPUTS];
  int m = 0;
  ad_tensor *y = check_paths_agree(label, ctx, c, &env, n, in, grads, &m);
  if (!(c->flags & INPUTS_F32)) check_float32(label, ctx, c, &env, n, in, y, grads, m);
  if (third_order) check_vjp_second_order(label, ctx, c, &env, n, in, y);
  ck_assert_msg(ad_errcode(ctx) == AD_OK, "%s: an error was left recorded: %s", label,
                ad_errmsg(ctx));
}

/* Runs every variant of case case_index, resetting ctx between them. */
static void check_case(ad_ctx *ctx, int case_index) {
  variant variants[MAX_VARIANTS];
  shape_buffer buffers[RANDOM_VARIANTS];
  int count = expand_variants(&cases[case_index], case_index, variants, buffers);
  ck_assert_int_gt(count, 0);
  for (int i = 0; i < count; i++) {
    check_variant(ctx, case_index, i, &variants[i], i == 0);
    ad_ctx_reset(ctx);
  }
}

START_TEST(test_op_gradients) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  check_case(ctx, _i);
  ad_ctx_free(ctx);
}
END_TEST

/* Runs the whole table in one context and asserts that every operation
   kind's fused and graph backward rules ran. */
START_TEST(test_every_rule_checked) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  for (int i = 0; i < CASE_COUNT; i++) check_case(ctx, i);
  ck_assert_int_gt(ad_op_count(), 0);
  for (int op = 0; op < ad_op_count(); op++) {
    const char *name = ad_op_name(op);
    ck_assert_ptr_nonnull(name);
    ck_assert_msg(ad_backward_count(ctx, op, false) > 0,
                  "operation '%s' has no checked fused backward kernel", name);
    ck_assert_msg(ad_backward_count(ctx, op, true) > 0,
                  "operation '%s' has no checked graph backward rule", name);
  }
  ad_ctx_free(ctx);
}
END_TEST

static Suite *gradient_suite(void) {
  Suite *s = suite_create("op_gradients");
  for (int i = 0; i < CASE_COUNT; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_op_gradients, i, i + 1);
    suite_add_tcase(s, tc);
  }
  TCase *tc = tcase_create("coverage");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_every_rule_checked);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(gradient_suite()); }
