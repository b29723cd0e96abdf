/*
 * Forward values and gradients of every operation against PyTorch.
 *
 * reference/ops.txt holds the cases that reference/make_reference.py wrote
 * with PyTorch (its header describes the format). Each case names an
 * operation, its parameters and inputs, the output PyTorch computed, and the
 * gradient of sum(out * w) for w[i] = 0.5 + 0.25 * (i % 5). This suite
 * applies the same operation, compares the output, and computes the same
 * gradients with ad_gradients. The path of the file is the program's first
 * argument. One test case per operation; a failure names the case.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adtest.h"

#define MAX_PARAMS 12
#define MAX_INPUTS 4
#define MAX_CASES 512

typedef struct ref_tensor {
  ad_dtype dtype;
  bool requires_grad;
  int ndim;
  int64_t shape[AD_MAX_DIMS];
  int64_t numel;
  double *values;
} ref_tensor;

typedef struct ref_case {
  char name[64];
  char op[32];
  int line;
  int nparams;
  double params[MAX_PARAMS];
  int ninputs;
  ref_tensor in[MAX_INPUTS];
  ref_tensor out;
  int ngrads;
  int grad_input[MAX_INPUTS];
  ref_tensor grad[MAX_INPUTS];
} ref_case;

static ref_case cases[MAX_CASES];
static int case_count;
static const char *reference_path;
static char load_error[256];

/* ---- Parsing ----------------------------------------------------------- */

static bool parse_dtype(const char *word, ad_dtype *dtype) {
  if (strcmp(word, "f32") == 0) *dtype = AD_F32;
  else if (strcmp(word, "f64") == 0) *dtype = AD_F64;
  else if (strcmp(word, "i64") == 0) *dtype = AD_I64;
  else return false;
  return true;
}

/* Reads "NDIM D1 ... V1 ..." from the tokens after *cursor. */
static bool parse_tensor_body(char **cursor, ref_tensor *t) {
  char *tok = strtok_r(NULL, " ", cursor);
  if (!tok) return false;
  t->ndim = atoi(tok);
  if (t->ndim < 0 || t->ndim > AD_MAX_DIMS) return false;
  t->numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    tok = strtok_r(NULL, " ", cursor);
    if (!tok) return false;
    t->shape[d] = atoll(tok);
    t->numel *= t->shape[d];
  }
  t->values = calloc((size_t)(t->numel ? t->numel : 1), sizeof(double));
  if (!t->values) return false;
  for (int64_t i = 0; i < t->numel; i++) {
    tok = strtok_r(NULL, " ", cursor);
    if (!tok) return false;
    t->values[i] = strtod(tok, NULL);
  }
  return strtok_r(NULL, " ", cursor) == NULL;
}

static bool parse_line(char *line, int number, ref_case **current) {
  char *cursor;
  char *word = strtok_r(line, " ", &cursor);
  if (!word || word[0] == '#') return true;
  if (strcmp(word, "case") == 0) {
    if (case_count == MAX_CASES) return false;
    ref_case *c = &cases[case_count++];
    memset(c, 0, sizeof *c);
    c->line = number;
    char *name = strtok_r(NULL, " ", &cursor), *op = strtok_r(NULL, " ", &cursor);
    char *count = strtok_r(NULL, " ", &cursor);
    if (!name || !op || !count) return false;
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->op, sizeof c->op, "%s", op);
    c->nparams = atoi(count);
    if (c->nparams < 0 || c->nparams > MAX_PARAMS) return false;
    for (int i = 0; i < c->nparams; i++) {
      char *p = strtok_r(NULL, " ", &cursor);
      if (!p) return false;
      c->params[i] = strtod(p, NULL);
    }
    *current = c;
    return true;
  }
  ref_case *c = *current;
  if (!c) return false;
  if (strcmp(word, "in") == 0) {
    if (c->ninputs == MAX_INPUTS) return false;
    ref_tensor *t = &c->in[c->ninputs++];
    char *dtype = strtok_r(NULL, " ", &cursor), *grad = strtok_r(NULL, " ", &cursor);
    if (!dtype || !grad || !parse_dtype(dtype, &t->dtype)) return false;
    t->requires_grad = atoi(grad) != 0;
    return parse_tensor_body(&cursor, t);
  }
  if (strcmp(word, "out") == 0) {
    char *dtype = strtok_r(NULL, " ", &cursor);
    if (!dtype || !parse_dtype(dtype, &c->out.dtype)) return false;
    return parse_tensor_body(&cursor, &c->out);
  }
  if (strcmp(word, "grad") == 0) {
    if (c->ngrads == MAX_INPUTS) return false;
    char *index = strtok_r(NULL, " ", &cursor);
    if (!index) return false;
    c->grad_input[c->ngrads] = atoi(index);
    return parse_tensor_body(&cursor, &c->grad[c->ngrads++]);
  }
  if (strcmp(word, "end") == 0) {
    *current = NULL;
    return true;
  }
  return false;
}

/* Loads the reference file into cases; on failure leaves a message in
   load_error and returns false. */
static bool load_reference(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(load_error, sizeof load_error, "cannot open %s", path);
    return false;
  }
  size_t capacity = 1 << 16;
  char *line = malloc(capacity);
  ref_case *current = NULL;
  int number = 0;
  bool ok = line != NULL;
  while (ok) {
    /* Lines can be long; read one whole line, growing the buffer. */
    size_t len = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF && ch != '\n') {
      if (len + 1 == capacity) {
        char *grown = realloc(line, capacity * 2);
        if (!grown) {
          ok = false;
          break;
        }
        line = grown;
        capacity *= 2;
      }
      line[len++] = (char)ch;
    }
    if (!ok || (ch == EOF && len == 0)) break;
    line[len] = '\0';
    number++;
    if (!parse_line(line, number, &current)) {
      snprintf(load_error, sizeof load_error, "%s:%d: malformed line", path, number);
      ok = false;
    }
  }
  free(line);
  fclose(f);
  if (ok && case_count == 0) {
    snprintf(load_error, sizeof load_error, "%s holds no cases", path);
    ok = false;
  }
  return ok;
}

/* ---- Applying an operation ------------------------------------------- */

typedef ad_tensor *(*unary_fn)(ad_ctx *, ad_tensor *);
typedef ad_tensor *(*binary_fn)(ad_ctx *, ad_tensor *, ad_tensor *);

static const struct {
  const char *name;
  unary_fn fn;
} unary_ops[] = {
    {"neg", ad_neg},         {"abs", ad_abs},       {"sign", ad_sign},
    {"sqrt", ad_sqrt},       {"cbrt", ad_cbrt},     {"exp", ad_exp},
    {"exp2", ad_exp2},       {"expm1", ad_expm1},   {"log", ad_log},
    {"log2", ad_log2},       {"log10", ad_log10},   {"log1p", ad_log1p},
    {"sin", ad_sin},         {"cos", ad_cos},       {"tan", ad_tan},
    {"asin", ad_asin},       {"acos", ad_acos},     {"atan", ad_atan},
    {"sinh", ad_sinh},       {"cosh", ad_cosh},     {"tanh", ad_tanh},
    {"erf", ad_erf},         {"erfc", ad_erfc},     {"sigmoid", ad_sigmoid},
    {"relu", ad_relu},       {"gelu", ad_gelu},     {"softplus", ad_softplus},
    {"clone", ad_clone},     {"sum_all", ad_sum_all}, {"mean_all", ad_mean_all},
};

static const struct {
  const char *name;
  binary_fn fn;
} binary_ops[] = {
    {"add", ad_add},         {"sub", ad_sub},         {"mul", ad_mul},
    {"div", ad_div},         {"pow", ad_pow},         {"minimum", ad_minimum},
    {"maximum", ad_maximum}, {"atan2", ad_atan2},     {"hypot", ad_hypot},
    {"eq", ad_eq},           {"ne", ad_ne},           {"lt", ad_lt},
    {"le", ad_le},           {"gt", ad_gt},           {"ge", ad_ge},
    {"matmul", ad_matmul},   {"dot", ad_dot},         {"outer", ad_outer},
};

typedef ad_tensor *(*reduce_fn)(ad_ctx *, ad_tensor *, int, const int *, bool);

static const struct {
  const char *name;
  reduce_fn fn;
} reduce_ops[] = {
    {"sum", ad_sum}, {"mean", ad_mean},           {"max", ad_max},
    {"min", ad_min}, {"logsumexp", ad_logsumexp}, {"norm", ad_norm},
};

/* Integer parameters from p[from] on. */
static int int_params(const ref_case *c, int from, int *out) {
  int n = 0;
  for (int i = from; i < c->nparams; i++) out[n++] = (int)c->params[i];
  return n;
}

static int64_t shape_params(const ref_case *c, int64_t *out) {
  for (int i = 0; i < c->nparams; i++) out[i] = (int64_t)c->params[i];
  return c->nparams;
}

/*
 * Parameter encodings, as make_reference.py writes them:
 *   add_scalar, mul_scalar, pow_scalar: value; leaky_relu: slope; elu: alpha;
 *   clamp: low, high;
 *   sum, mean, max, min, logsumexp, norm: keepdim, axes...;
 *   var: correction, keepdim, axes...; argmax, argmin: axis, keepdim;
 *   reshape, expand: shape...; transpose: axis0, axis1; permute: perm...;
 *   squeeze, unsqueeze, index_select, gather, concat, stack, softmax,
 *   log_softmax: axis; slice: axis, start, stop, step; one_hot: classes;
 *   cast: dtype code; cross_entropy, bce_with_logits, mse: reduction code.
 */
static ad_tensor *apply_op(ad_ctx *ctx, const ref_case *c, ad_tensor **in) {
  const char *op = c->op;
  const double *p = c->params;
  int ints[MAX_PARAMS];
  int64_t dims[MAX_PARAMS];
  for (size_t i = 0; i < sizeof unary_ops / sizeof *unary_ops; i++)
    if (strcmp(op, unary_ops[i].name) == 0) return unary_ops[i].fn(ctx, in[0]);
  for (size_t i = 0; i < sizeof binary_ops / sizeof *binary_ops; i++)
    if (strcmp(op, binary_ops[i].name) == 0) return binary_ops[i].fn(ctx, in[0], in[1]);
  for (size_t i = 0; i < sizeof reduce_ops / sizeof *reduce_ops; i++) {
    if (strcmp(op, reduce_ops[i].name) == 0) {
      int n = int_params(c, 1, ints);
      return reduce_ops[i].fn(ctx, in[0], n, ints, p[0] != 0);
    }
  }
  if (strcmp(op, "add_scalar") == 0) return ad_add_scalar(ctx, in[0], p[0]);
  if (strcmp(op, "mul_scalar") == 0) return ad_mul_scalar(ctx, in[0], p[0]);
  if (strcmp(op, "pow_scalar") == 0) return ad_pow_scalar(ctx, in[0], p[0]);
  if (strcmp(op, "leaky_relu") == 0) return ad_leaky_relu(ctx, in[0], p[0]);
  if (strcmp(op, "elu") == 0) return ad_elu(ctx, in[0], p[0]);
  if (strcmp(op, "clamp") == 0) return ad_clamp(ctx, in[0], p[0], p[1]);
  if (strcmp(op, "where") == 0) return ad_where(ctx, in[0], in[1], in[2]);
  if (strcmp(op, "var") == 0) {
    int n = int_params(c, 2, ints);
    return ad_var(ctx, in[0], n, ints, (int)p[0], p[1] != 0);
  }
  if (strcmp(op, "argmax") == 0) return ad_argmax(ctx, in[0], (int)p[0], p[1] != 0);
  if (strcmp(op, "argmin") == 0) return ad_argmin(ctx, in[0], (int)p[0], p[1] != 0);
  if (strcmp(op, "linear") == 0) return ad_linear(ctx, in[0], in[1], c->ninputs > 2 ? in[2] : NULL);
  if (strcmp(op, "reshape") == 0) return ad_reshape(ctx, in[0], (int)shape_params(c, dims), dims);
  if (strcmp(op, "expand") == 0) return ad_expand(ctx, in[0], (int)shape_params(c, dims), dims);
  if (strcmp(op, "transpose") == 0) return ad_transpose(ctx, in[0], (int)p[0], (int)p[1]);
  if (strcmp(op, "permute") == 0) {
    int_params(c, 0, ints);
    return ad_permute(ctx, in[0], ints);
  }
  if (strcmp(op, "squeeze") == 0) return ad_squeeze(ctx, in[0], (int)p[0]);
  if (strcmp(op, "unsqueeze") == 0) return ad_unsqueeze(ctx, in[0], (int)p[0]);
  if (strcmp(op, "slice") == 0)
    return ad_slice(ctx, in[0], (int)p[0], (int64_t)p[1], (int64_t)p[2], (int64_t)p[3]);
  if (strcmp(op, "index_select") == 0) return ad_index_select(ctx, in[0], (int)p[0], in[1]);
  if (strcmp(op, "gather") == 0) return ad_gather(ctx, in[0], (int)p[0], in[1]);
  if (strcmp(op, "concat") == 0) return ad_concat(ctx, c->ninputs, in, (int)p[0]);
  if (strcmp(op, "stack") == 0) return ad_stack(ctx, c->ninputs, in, (int)p[0]);
  if (strcmp(op, "one_hot") == 0) return ad_one_hot(ctx, in[0], (int64_t)p[0], AD_F64);
  if (strcmp(op, "cast") == 0) return ad_cast(ctx, in[0], (ad_dtype)(int)p[0]);
  if (strcmp(op, "softmax") == 0) return ad_softmax(ctx, in[0], (int)p[0]);
  if (strcmp(op, "log_softmax") == 0) return ad_log_softmax(ctx, in[0], (int)p[0]);
  if (strcmp(op, "cross_entropy") == 0)
    return ad_cross_entropy(ctx, in[0], in[1], (ad_reduction)(int)p[0]);
  if (strcmp(op, "bce_with_logits") == 0)
    return ad_bce_with_logits(ctx, in[0], in[1], (ad_reduction)(int)p[0]);
  if (strcmp(op, "mse") == 0) return ad_mse(ctx, in[0], in[1], (ad_reduction)(int)p[0]);
  ck_abort_msg("case %s: the suite does not know operation '%s'", c->name, op);
  return NULL;
}

/* ---- Comparing --------------------------------------------------------- */

static ad_tensor *make_input(ad_ctx *ctx, const ref_tensor *r) {
  ad_tensor *t = ad_zeros(ctx, r->dtype, r->ndim, r->shape);
  ck_assert_ptr_nonnull(t);
  for (int64_t i = 0; i < r->numel; i++) {
    switch (r->dtype) {
    case AD_F32: ad_data_f32_mut(t)[i] = (float)r->values[i]; break;
    case AD_F64: ad_data_f64_mut(t)[i] = r->values[i]; break;
    default: ad_data_i64_mut(t)[i] = (int64_t)r->values[i]; break;
    }
  }
  if (r->requires_grad) ck_assert_int_eq(ad_set_requires_grad(t, true), AD_OK);
  return t;
}

static void assert_matches(const char *label, const ad_tensor *t, const ref_tensor *r,
                           ad_dtype dtype) {
  ck_assert_msg(t != NULL, "%s: NULL result", label);
  ck_assert_msg(ad_tensor_dtype(t) == dtype, "%s: dtype %s, expected %s", label,
                ad_dtype_name(ad_tensor_dtype(t)), ad_dtype_name(dtype));
  ck_assert_msg(ad_ndim(t) == r->ndim, "%s: %d dimensions, expected %d", label, ad_ndim(t),
                r->ndim);
  for (int d = 0; d < r->ndim; d++)
    ck_assert_msg(ad_shape(t)[d] == r->shape[d], "%s: dimension %d is %lld, expected %lld", label,
                  d, (long long)ad_shape(t)[d], (long long)r->shape[d]);
  /* PyTorch and the C library may differ in the last bits of a
     transcendental function; float32 kernels may also round differently. */
  double atol = dtype == AD_F32 ? 2e-6 : 1e-13;
  double rtol = dtype == AD_F32 ? 2e-5 : 1e-11;
  assert_values(label, t, r->values, r->numel, atol, rtol);
}

/* The seed w[i] = 0.5 + 0.25 * (i % 5) in out's shape and dtype. */
static ad_tensor *gradient_seed(ad_ctx *ctx, const ad_tensor *out) {
  ad_tensor *w = ad_zeros(ctx, ad_tensor_dtype(out), ad_ndim(out), ad_shape(out));
  ck_assert_ptr_nonnull(w);
  for (int64_t i = 0; i < ad_numel(w); i++) {
    int64_t index[AD_MAX_DIMS], rest = i;
    for (int d = ad_ndim(w) - 1; d >= 0; d--) {
      index[d] = rest % ad_shape(w)[d];
      rest /= ad_shape(w)[d];
    }
    ck_assert_int_eq(ad_set(w, index, 0.5 + 0.25 * (double)(i % 5)), AD_OK);
  }
  return w;
}

static void check_case(const ref_case *c) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  ad_tensor *in[MAX_INPUTS];
  for (int i = 0; i < c->ninputs; i++) in[i] = make_input(ctx, &c->in[i]);
  ad_tensor *out = apply_op(ctx, c, in);
  ck_assert_msg(out != NULL, "case %s (line %d): %s failed: %s", c->name, c->line, c->op,
                ad_errmsg(ctx));
  char label[160];
  snprintf(label, sizeof label, "case %s (line %d) output", c->name, c->line);
  assert_matches(label, out, &c->out, c->out.dtype);
  if (c->ngrads == 0) {
    ad_ctx_free(ctx);
    return;
  }

  ad_tensor *targets[MAX_INPUTS], *grads[MAX_INPUTS];
  for (int k = 0; k < c->ngrads; k++) targets[k] = in[c->grad_input[k]];
  ad_tensor *seed = gradient_seed(ctx, out);
  ck_assert_msg(ad_gradients(ctx, 1, &out, &seed, c->ngrads, targets, grads, 0) == AD_OK,
                "case %s: ad_gradients failed: %s", c->name, ad_errmsg(ctx));
  for (int k = 0; k < c->ngrads; k++) {
    snprintf(label, sizeof label, "case %s (line %d) gradient of input %d", c->name, c->line,
             c->grad_input[k]);
    assert_matches(label, grads[k], &c->grad[k], c->in[c->grad_input[k]].dtype);
  }
  ad_ctx_free(ctx);
}

/* ---- Tests --------------------------------------------------------- */

START_TEST(test_reference_loaded) {
  ck_assert_msg(load_error[0] == '\0', "%s", load_error);
  ck_assert_int_gt(case_count, 200);
}
END_TEST

/* Runs every case of the operation named by the test case's first case. */
START_TEST(test_operation) {
  const ref_case *first = &cases[_i];
  for (int i = _i; i < case_count; i++)
    if (strcmp(cases[i].op, first->op) == 0) check_case(&cases[i]);
}
END_TEST

static Suite *reference_suite(void) {
  Suite *s = suite_create("op_reference");
  TCase *tc = tcase_create("reference_file");
  tcase_add_test(tc, test_reference_loaded);
  suite_add_tcase(s, tc);
  /* One test case per operation, created at its first case. */
  for (int i = 0; i < case_count; i++) {
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) seen = strcmp(cases[j].op, cases[i].op) == 0;
    if (seen) continue;
    tc = tcase_create(cases[i].op);
    tcase_add_loop_test(tc, test_operation, i, i + 1);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(int argc, char **argv) {
  reference_path = argc > 1 ? argv[1] : "reference/ops.txt";
  load_reference(reference_path);
  return run_suite(reference_suite());
}
