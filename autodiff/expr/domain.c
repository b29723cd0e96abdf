/*
 * domain.c: finding where a NaN or an infinity first appears.
 *
 * The expression is evaluated in double, every node from its operands.
 * A node is live when C would evaluate it: the root, and the operands of a
 * live node, except the branch of ?: that the condition does not select
 * and the right operand of && or || when the left one decides. A live node
 * is reported when it creates a non-finite value from operands that are
 * not (IEEE 754's invalid operation, division by zero and overflow), or
 * when its derivative with respect to a finite operand is not finite while
 * the gradient can flow through it.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "expr_internal.h"
#include "text.h"

/* Flags per node. */
enum { LIVE = 1, GRADIENT = 2 };

/* Sets LIVE on the nodes C evaluates, and GRADIENT on those the gradient
   reaches through operations with derivatives. */
static void mark_live(const ad_expr *e, const double *v, uint8_t *flags) {
  memset(flags, 0, (size_t)e->node_count);
  flags[e->node_count - 1] = LIVE | GRADIENT;
  for (int32_t i = e->node_count - 1; i >= 0; i--) {
    const expr_node *n = &e->nodes[i];
    if (!(flags[i] & LIVE) || n->op == EXPR_CONST || n->op == EXPR_VAR) continue;
    const int32_t *arg = n->arg;
    uint8_t gradient = (uint8_t)(flags[i] & GRADIENT);
    switch ((expr_op)n->op) {
    case EXPR_COND:
      flags[arg[0]] |= LIVE;
      flags[v[arg[0]] != 0 ? arg[1] : arg[2]] |= LIVE | gradient;
      break;
    case EXPR_AND:
    case EXPR_OR:
      flags[arg[0]] |= LIVE;
      if ((v[arg[0]] != 0) == (n->op == EXPR_AND)) flags[arg[1]] |= LIVE;
      break;
    default: {
      bool differentiable = expr_ops[n->op].c_deriv[0] != NULL;
      for (int k = 0; k < 3 && arg[k] >= 0; k++)
        flags[arg[k]] |= LIVE | (differentiable ? gradient : 0);
    }
    }
  }
}

/* "log(0)", "1 / 0" or "-5": the operation applied to the operand values. */
static void format_application(const expr_node *n, const double *v, char *out, size_t capacity) {
  const expr_op_def *def = &expr_ops[n->op];
  char a[32], b[32];
  expr_format_double(v[n->arg[0]], a, sizeof a);
  if (def->arity == 2) expr_format_double(v[n->arg[1]], b, sizeof b);
  if (n->op >= EXPR_FIRST_FUNCTION && def->arity == 1) snprintf(out, capacity, "%s(%s)", def->name, a);
  else if (n->op >= EXPR_FIRST_FUNCTION) snprintf(out, capacity, "%s(%s, %s)", def->name, a, b);
  else if (def->arity == 1) snprintf(out, capacity, "%s%s", def->name, a);
  else snprintf(out, capacity, "%s %s %s", a, def->name, b);
}

/* An infinity from finite operands at a pole of the function: division by
   zero in IEEE 754's terms. */
static bool is_pole(expr_op op, double a, double b) {
  switch (op) {
  case EXPR_DIV: return b == 0;
  case EXPR_LOG:
  case EXPR_LOG2:
  case EXPR_LOG10: return a == 0;
  case EXPR_LOG1P: return a == -1;
  case EXPR_POW: return a == 0 && b < 0;
  default: return false;
  }
}

/* The kind of value problem node i creates, or -1. */
static int value_issue(const ad_expr *e, int32_t i, const double *v) {
  const expr_node *n = &e->nodes[i];
  const expr_op_def *def = &expr_ops[n->op];
  if (n->op == EXPR_CONST || n->op == EXPR_VAR || !def->c_deriv[0]) return -1;
  double a = v[n->arg[0]], b = def->arity == 2 ? v[n->arg[1]] : 0, y = v[i];
  if (isnan(y) && !isnan(a) && !isnan(b)) return AD_EXPR_INVALID;
  if (isinf(y) && isfinite(a) && isfinite(b))
    return is_pole((expr_op)n->op, a, b) ? AD_EXPR_DIVIDE_BY_ZERO : AD_EXPR_OVERFLOW;
  return -1;
}

/* The operand (0 or 1) of node i with a non-finite derivative, or -1. */
static int derivative_issue(const ad_expr *e, int32_t i, const double *v) {
  const expr_node *n = &e->nodes[i];
  const expr_op_def *def = &expr_ops[n->op];
  if (n->is_const || n->op == EXPR_VAR || !def->c_deriv[0]) return -1;
  double a = v[n->arg[0]], b = def->arity == 2 ? v[n->arg[1]] : 0, y = v[i];
  if (!isfinite(y) || !isfinite(a) || !isfinite(b)) return -1;
  for (int k = 0; k < def->arity; k++) {
    if (e->nodes[n->arg[k]].is_const) continue;
    if (!isfinite(expr_scalar_deriv((expr_op)n->op, k, a, b, y))) return k;
  }
  return -1;
}

/* Writes the message of an issue, at most about 240 bytes, into out. */
static void describe_issue(const ad_expr *e, int32_t i, const double *v, int kind, int operand,
                           char *out, size_t capacity) {
  const expr_node *n = &e->nodes[i];
  char text[56], value[32], application[96];
  expr_excerpt(e->text, (size_t)n->start, (size_t)n->end, text, sizeof text);
  expr_format_double(v[i], value, sizeof value);
  format_application(n, v, application, sizeof application);
  switch (kind) {
  case AD_EXPR_INVALID:
    snprintf(out, capacity, "%s is NaN: %s is undefined", text, application);
    break;
  case AD_EXPR_DIVIDE_BY_ZERO:
    if (n->op == EXPR_DIV) snprintf(out, capacity, "%s is %s: division by zero", text, value);
    else snprintf(out, capacity, "%s is %s: %s is a pole", text, value, application);
    break;
  case AD_EXPR_OVERFLOW:
    snprintf(out, capacity, "%s is %s: %s overflows %s", text, value, application,
             n->type == CT_FLOAT ? "float" : "double");
    break;
  default: {
    const expr_node *x = &e->nodes[n->arg[operand]];
    char wrt[40], d[32];
    expr_excerpt(e->text, (size_t)x->start, (size_t)x->end, wrt, sizeof wrt);
    expr_format_double(expr_scalar_deriv((expr_op)n->op, operand, v[n->arg[0]],
                                         expr_ops[n->op].arity == 2 ? v[n->arg[1]] : 0, v[i]),
                       d, sizeof d);
    snprintf(out, capacity, "the derivative of %s with respect to %s is %s at %s", text, wrt, d,
             application);
  }
  }
}

/* Copies text into out, ending it with "..." when it does not fit. */
static void copy_shortened(char *out, size_t capacity, const char *text) {
  size_t n = strlen(text);
  if (n < capacity) {
    memcpy(out, text, n + 1);
    return;
  }
  size_t keep = capacity - 4;
  while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80) keep--;
  memcpy(out, text, keep);
  memcpy(out + keep, "...", 4);
}

int ad_expr_check_domain(ad_ctx *ctx, const ad_expr *e, const double *values,
                         ad_expr_issue *issues, int capacity) {
  if (!ctx) return -1;
  if (!e || (e->var_count > 0 && !values) || capacity < 0 || (capacity > 0 && !issues)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT,
                 "ad_expr_check_domain: needs an expression, its values and room for issues");
    return -1;
  }
  size_t n = (size_t)e->node_count;
  size_t size = n * sizeof(double) + n;
  double *v = ad_malloc(ctx, size);
  if (!v) return -1;
  uint8_t *flags = (uint8_t *)(v + n);
  expr_scalar_forward(e, values, v);
  mark_live(e, v, flags);
  int count = 0;
  for (int32_t i = 0; i < e->node_count; i++) {
    if (!(flags[i] & LIVE)) continue;
    int kind = value_issue(e, i, v), operand = -1;
    if (kind < 0 && (flags[i] & GRADIENT)) {
      operand = derivative_issue(e, i, v);
      if (operand >= 0) kind = AD_EXPR_DERIVATIVE;
    }
    if (kind < 0) continue;
    if (count < capacity) {
      ad_expr_issue *issue = &issues[count];
      issue->kind = (ad_expr_issue_kind)kind;
      issue->offset = (size_t)e->nodes[i].start;
      issue->length = (size_t)(e->nodes[i].end - e->nodes[i].start);
      issue->value = v[i];
      char message[512];
      describe_issue(e, i, v, kind, operand, message, sizeof message);
      copy_shortened(issue->message, sizeof issue->message, message);
    }
    if (count < INT32_MAX) count++;
  }
  ad_free(ctx, v, size);
  return count;
}
