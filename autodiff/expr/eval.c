/*
 * eval.c: evaluating an expression with the engine's operations, so that
 * the tape records it, and its derivatives at a point.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "expr_internal.h"
#include "text.h"

/* ---- Checking the values ---------------------------------------------- */

static void format_shape(const ad_tensor *t, char *out, size_t capacity) {
  int ndim = ad_ndim(t);
  const int64_t *shape = ad_shape(t);
  size_t used = (size_t)snprintf(out, capacity, "[");
  for (int d = 0; d < ndim && used < capacity; d++)
    used += (size_t)snprintf(out + used, capacity - used, d ? ", %lld" : "%lld",
                             (long long)shape[d]);
  if (used < capacity) snprintf(out + used, capacity - used, "]");
}

/* True when the shapes of a and b broadcast together (NumPy's rule). */
static bool broadcastable(const ad_tensor *a, const ad_tensor *b) {
  int na = ad_ndim(a), nb = ad_ndim(b);
  const int64_t *sa = ad_shape(a), *sb = ad_shape(b);
  for (int i = 1; i <= na && i <= nb; i++) {
    int64_t x = sa[na - i], y = sb[nb - i];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

/* Checks that the values are tensors of ctx with one floating dtype and
   shapes that broadcast together, so that no operation fails on them, and
   stores that dtype. */
static bool check_values(ad_ctx *ctx, const ad_expr *e, ad_tensor *const *values,
                         ad_dtype *dtype) {
  *dtype = AD_F64;
  int first = -1;
  for (int i = 0; i < e->var_count; i++) {
    const char *name = ad_expr_var_name(e, i);
    ad_tensor *t = values[i];
    if (!t) {
      if (ad_errcode(ctx) == AD_OK)
        ad_set_error(ctx, AD_ERR_ARGUMENT, "ad_expr_eval: the value of variable %s is NULL", name);
      return false;
    }
    if (ad_tensor_ctx(t) != ctx) {
      ad_set_error(ctx, AD_ERR_CONTEXT,
                   "ad_expr_eval: the value of variable %s belongs to another context", name);
      return false;
    }
    ad_dtype d = ad_tensor_dtype(t);
    if (d == AD_I64) {
      ad_set_error(ctx, AD_ERR_DTYPE,
                   "ad_expr_eval: variable %s is int64; bind a float32 or float64 tensor "
                   "(convert with ad_cast)",
                   name);
      return false;
    }
    if (first < 0) {
      first = i;
      *dtype = d;
      continue;
    }
    if (d != *dtype) {
      ad_set_error(ctx, AD_ERR_DTYPE,
                   "ad_expr_eval: variable %s is %s and variable %s is %s; bind tensors of one "
                   "dtype (convert with ad_cast)",
                   ad_expr_var_name(e, first), ad_dtype_name(*dtype), name, ad_dtype_name(d));
      return false;
    }
  }
  for (int i = 0; i < e->var_count; i++) {
    for (int j = 0; j < i; j++) {
      if (broadcastable(values[i], values[j])) continue;
      char si[160], sj[160];
      format_shape(values[j], sj, sizeof sj);
      format_shape(values[i], si, sizeof si);
      ad_set_error(ctx, AD_ERR_SHAPE,
                   "ad_expr_eval: variable %s has shape %s and variable %s has shape %s, which "
                   "cannot be broadcast together",
                   ad_expr_var_name(e, j), sj, ad_expr_var_name(e, i), si);
      return false;
    }
  }
  return true;
}

/* ---- Evaluation ------------------------------------------------------- */

typedef struct evaluation {
  ad_ctx *ctx;
  ad_dtype dtype;
  ad_tensor *zero; /* created on first use */
} evaluation;

static ad_tensor *zero_of(evaluation *ev) {
  if (!ev->zero) ev->zero = ad_scalar(ev->ctx, ev->dtype, 0);
  return ev->zero;
}

/* fmin or fmax: a NaN operand selects the other one, as in C, and ad_where
   sends the gradient only to the operand selected. */
static ad_tensor *extremum(evaluation *ev, ad_tensor *a, ad_tensor *b, bool greater) {
  ad_ctx *ctx = ev->ctx;
  ad_tensor *both = greater ? ad_maximum(ctx, a, b) : ad_minimum(ctx, a, b);
  ad_tensor *a_nan = ad_ne(ctx, a, a), *b_nan = ad_ne(ctx, b, b);
  return ad_where(ctx, a_nan, b, ad_where(ctx, b_nan, a, both));
}

static ad_tensor *eval_node(evaluation *ev, const expr_node *n, ad_tensor *const *results,
                            ad_tensor *const *values) {
  ad_ctx *ctx = ev->ctx;
  if (n->is_const) return ad_scalar(ctx, ev->dtype, n->value);
  if (n->op == EXPR_VAR) return values[n->var];
  ad_tensor *a = n->arg[0] >= 0 ? results[n->arg[0]] : NULL;
  ad_tensor *b = n->arg[1] >= 0 ? results[n->arg[1]] : NULL;
  ad_tensor *c = n->arg[2] >= 0 ? results[n->arg[2]] : NULL;
  const expr_op_def *def = &expr_ops[n->op];
  switch ((expr_op)n->op) {
  case EXPR_NOT: return ad_eq(ctx, a, zero_of(ev));
  case EXPR_AND: return ad_mul(ctx, ad_ne(ctx, a, zero_of(ev)), ad_ne(ctx, b, zero_of(ev)));
  case EXPR_OR: return ad_maximum(ctx, ad_ne(ctx, a, zero_of(ev)), ad_ne(ctx, b, zero_of(ev)));
  /* ad_where selects where the mask is nonzero, NaN included, as C's ?: does. */
  case EXPR_COND: return ad_where(ctx, a, b, c);
  case EXPR_FMIN: return extremum(ev, a, b, false);
  case EXPR_FMAX: return extremum(ev, a, b, true);
  default: break;
  }
  if (def->tensor1) return def->tensor1(ctx, a);
  if (def->tensor2) return def->tensor2(ctx, a, b);
  ad_set_error(ctx, AD_ERR_NOT_IMPLEMENTED, "ad_expr_eval: no operation for node kind %d",
               (int)n->op);
  return NULL;
}

ad_tensor *ad_expr_eval(ad_ctx *ctx, const ad_expr *e, ad_tensor *const *values) {
  if (!ctx) return NULL;
  if (!e || (e->var_count > 0 && !values)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "ad_expr_eval: %s is NULL", e ? "values" : "the expression");
    return NULL;
  }
  evaluation ev = {ctx, AD_F64, NULL};
  if (!check_values(ctx, e, values, &ev.dtype)) return NULL;
  size_t size = (size_t)e->node_count * sizeof(ad_tensor *);
  ad_tensor **results = ad_malloc(ctx, size);
  if (!results) return NULL;
  memset(results, 0, size);
  ad_tensor *result = NULL;
  for (int32_t i = 0; i < e->node_count; i++) {
    if (!e->nodes[i].needed) continue;
    results[i] = eval_node(&ev, &e->nodes[i], results, values);
    if (!results[i]) goto done;
  }
  result = results[e->node_count - 1];
  /* The result is always a new tensor, even for the text "x". */
  if (e->nodes[e->node_count - 1].op == EXPR_VAR) result = ad_clone(ctx, result);
done:
  ad_free(ctx, results, size);
  return result;
}

/* ---- Named bindings --------------------------------------------------- */

/* Records "variable x has no value" with the text and a caret under its
   first use. */
static void fail_unbound(ad_ctx *ctx, const ad_expr *e, int var) {
  char lines[400];
  const expr_var *v = &e->vars[var];
  expr_caret_lines(e->text, e->text_length, (size_t)v->first_use, (size_t)v->length, lines,
                   sizeof lines);
  ad_set_error(ctx, AD_ERR_ARGUMENT, "ad_expr_eval_named: variable %s has no value\n%s",
               ad_expr_var_name(e, var), lines);
}

/* Finds the binding of every variable: bound[var] is its index in
   bindings. Fails on an unknown name, a variable bound twice or left
   unbound, and a NULL tensor. */
static bool match_bindings(ad_ctx *ctx, const ad_expr *e, int count,
                           const ad_expr_binding *bindings, int *bound) {
  const char *fn = "ad_expr_eval_named";
  for (int var = 0; var < e->var_count; var++) bound[var] = -1;
  for (int k = 0; k < count; k++) {
    const ad_expr_binding *b = &bindings[k];
    int var = b->name ? ad_expr_var_index(e, b->name) : -1;
    if (var < 0) {
      if (b->name)
        ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: '%s' is not a variable of the expression %s", fn,
                     b->name, e->text);
      else
        ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: binding %d has no name", fn, k);
      return false;
    }
    if (bound[var] >= 0) {
      ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: variable %s is bound twice", fn, b->name);
      return false;
    }
    if (!b->is_scalar && !b->tensor) {
      if (ad_errcode(ctx) == AD_OK)
        ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the tensor bound to %s is NULL", fn, b->name);
      return false;
    }
    bound[var] = k;
  }
  for (int var = 0; var < e->var_count; var++) {
    if (bound[var] < 0) {
      fail_unbound(ctx, e, var);
      return false;
    }
  }
  return true;
}

/* Fills values[var] from the bindings. Scalar bindings become constants of
   the dtype of the tensor bindings, float64 when there are none. */
static bool bind_values(ad_ctx *ctx, const ad_expr *e, const ad_expr_binding *bindings,
                        const int *bound, ad_tensor **values) {
  ad_dtype dtype = AD_F64;
  for (int var = 0; var < e->var_count; var++) {
    const ad_expr_binding *b = &bindings[bound[var]];
    if (!b->is_scalar && ad_tensor_dtype(b->tensor) != AD_I64) dtype = ad_tensor_dtype(b->tensor);
  }
  for (int var = 0; var < e->var_count; var++) {
    const ad_expr_binding *b = &bindings[bound[var]];
    values[var] = b->is_scalar ? ad_scalar(ctx, dtype, b->scalar) : b->tensor;
    if (!values[var]) return false;
  }
  return true;
}

ad_tensor *ad_expr_eval_named(ad_ctx *ctx, const ad_expr *e, int count,
                              const ad_expr_binding *bindings) {
  if (!ctx) return NULL;
  if (!e || count < 0 || (count > 0 && !bindings)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT,
                 "ad_expr_eval_named: needs an expression and count >= 0 bindings");
    return NULL;
  }
  size_t n = (size_t)e->var_count + 1;
  size_t size = n * sizeof(ad_tensor *) + n * sizeof(int);
  ad_tensor **values = ad_malloc(ctx, size);
  if (!values) return NULL;
  int *bound = (int *)(values + n);
  ad_tensor *result = NULL;
  if (match_bindings(ctx, e, count, bindings, bound) &&
      bind_values(ctx, e, bindings, bound, values))
    result = ad_expr_eval(ctx, e, values);
  ad_free(ctx, values, size);
  return result;
}

ad_tensor *ad_expr_eval_text(ad_ctx *ctx, const char *text, int count,
                             const ad_expr_binding *bindings) {
  ad_expr *e = ad_expr_parse(ctx, text, NULL);
  if (!e) return NULL;
  ad_tensor *result = ad_expr_eval_named(ctx, e, count, bindings);
  ad_expr_free(e);
  return result;
}

/* ---- Derivatives at a point ------------------------------------------- */

static ad_status item_or_fail(ad_ctx *ctx, ad_tensor *t, double *out) {
  if (!t) return ad_errcode(ctx) != AD_OK ? ad_errcode(ctx) : AD_ERR_MEMORY;
  return ad_item(t, out);
}

/* Row i of the Hessian: the gradient of first-derivative tensor g. */
static ad_status hessian_row(ad_ctx *ctx, int n, ad_tensor *g, ad_tensor *const *leaves,
                             ad_tensor **row, double *out) {
  if (!g || !ad_requires_grad(g)) {
    for (int j = 0; j < n; j++) out[j] = 0;
    return AD_OK;
  }
  ad_status st = ad_gradients(ctx, 1, &g, NULL, n, leaves, row, 0);
  for (int j = 0; st == AD_OK && j < n; j++) st = item_or_fail(ctx, row[j], &out[j]);
  return st;
}

/* The work of ad_expr_derivatives once its buffers exist: leaves[n], then
   grads[n] and row[n] in one array of 3n tensors. */
static ad_status derivatives(ad_ctx *ctx, const ad_expr *e, const double *point, double *value,
                             double *gradient, double *hessian, ad_tensor **buffers) {
  int n = e->var_count;
  ad_tensor **leaves = buffers, **grads = buffers + n, **row = buffers + 2 * n;
  for (int i = 0; i < n; i++) {
    leaves[i] = ad_scalar(ctx, AD_F64, point[i]);
    if (!leaves[i]) return ad_errcode(ctx);
    ad_set_requires_grad(leaves[i], true);
  }
  ad_tensor *y = ad_expr_eval(ctx, e, leaves);
  ad_status st = item_or_fail(ctx, y, value);
  if (st != AD_OK || (!gradient && !hessian) || n == 0) return st;
  if (!ad_requires_grad(y)) {
    if (gradient) memset(gradient, 0, (size_t)n * sizeof *gradient);
    if (hessian) memset(hessian, 0, (size_t)n * (size_t)n * sizeof *hessian);
    return AD_OK;
  }
  st = ad_gradients(ctx, 1, &y, NULL, n, leaves, grads, hessian ? AD_CREATE_GRAPH : 0);
  for (int i = 0; st == AD_OK && gradient && i < n; i++)
    st = item_or_fail(ctx, grads[i], &gradient[i]);
  for (int i = 0; st == AD_OK && hessian && i < n; i++)
    st = hessian_row(ctx, n, grads[i], leaves, row, hessian + (size_t)i * (size_t)n);
  return st;
}

ad_status ad_expr_derivatives(ad_ctx *ctx, const ad_expr *e, const double *point, double *value,
                              double *gradient, double *hessian) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!e || !value || (e->var_count > 0 && !point))
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "ad_expr_derivatives: the expression, the point or value is NULL");
  size_t size = (size_t)(3 * e->var_count + 1) * sizeof(ad_tensor *);
  ad_tensor **buffers = ad_malloc(ctx, size);
  if (!buffers) return AD_ERR_MEMORY;
  bool was_enabled = ad_set_grad_enabled(ctx, true);
  ad_status st = derivatives(ctx, e, point, value, gradient, hessian, buffers);
  ad_set_grad_enabled(ctx, was_enabled);
  ad_free(ctx, buffers, size);
  return st;
}

/* ---- Plain double evaluation ------------------------------------------ */

void expr_scalar_forward(const ad_expr *e, const double *vars, double *out) {
  for (int32_t i = 0; i < e->node_count; i++) {
    const expr_node *n = &e->nodes[i];
    if (n->is_const) {
      out[i] = n->value;
    } else if (n->op == EXPR_VAR) {
      out[i] = vars[n->var];
    } else {
      double a = n->arg[0] >= 0 ? out[n->arg[0]] : 0;
      double b = n->arg[1] >= 0 ? out[n->arg[1]] : 0;
      double c = n->arg[2] >= 0 ? out[n->arg[2]] : 0;
      out[i] = expr_scalar_value((expr_op)n->op, a, b, c);
    }
  }
}
