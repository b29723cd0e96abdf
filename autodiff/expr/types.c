/*
 * types.c: C's types for the nodes of an expression, and the folding of
 * subexpressions without variables.
 *
 * A constant subexpression is computed here exactly as C computes it: int,
 * long and long long arithmetic with the usual arithmetic conversions
 * (C11 6.3.1.8) on LP64, float arithmetic rounded to float, double in
 * double. A non-constant subexpression is computed later in the dtype of
 * the bound tensors, so this file rejects the non-constant operations whose
 * C result that computation would not reproduce.
 */
#include <math.h>
#include <stdio.h>

#include "types.h"


/* The largest integer below which every integer is exact in double, and in
   float. */
#define DOUBLE_EXACT 9007199254740992.0
#define FLOAT_EXACT 16777216.0

static int type_width(c_type t) { return t == CT_INT || t == CT_UINT ? 32 : 64; }
/* The integer conversion rank: int 1, long 2, long long 3. */
static int type_rank(c_type t) {
  if (t == CT_INT || t == CT_UINT) return 1;
  if (t == CT_LONG || t == CT_ULONG) return 2;
  return 3;
}

static c_type unsigned_of(c_type t) {
  switch (t) {
  case CT_INT: return CT_UINT;
  case CT_LONG: return CT_ULONG;
  case CT_LLONG: return CT_ULLONG;
  default: return t;
  }
}

c_type common_type(c_type a, c_type b) {
  if (a == CT_DOUBLE || b == CT_DOUBLE) return CT_DOUBLE;
  if (a == CT_FLOAT || b == CT_FLOAT) return CT_FLOAT;
  if (a == b) return a;
  bool ua = c_type_is_unsigned(a), ub = c_type_is_unsigned(b);
  if (ua == ub) return type_rank(a) >= type_rank(b) ? a : b;
  c_type u = ua ? a : b, s = ua ? b : a;
  if (type_rank(u) >= type_rank(s)) return u;
  if (type_width(s) > type_width(u)) return s;
  return unsigned_of(s);
}

/* The bits of an integer constant converted from its type to integer type
   to. Signed values are kept sign-extended to 64 bits, unsigned ones
   reduced modulo 2^width. The usual arithmetic conversions only convert to
   a signed type that can represent the value, so no other case arises. */
static uint64_t convert_bits(uint64_t bits, c_type to) {
  if (c_type_is_unsigned(to) && type_width(to) == 32) return bits & 0xFFFFFFFFu;
  return bits;
}

static double integer_value(uint64_t bits, c_type type) {
  return c_type_is_unsigned(type) ? (double)bits : (double)(int64_t)bits;
}

void set_integer_constant(expr_node *n, c_type type, uint64_t bits) {
  n->type = (uint8_t)type;
  n->is_const = true;
  n->bits = bits;
  n->value = integer_value(bits, type);
}

static void set_floating_constant(expr_node *n, c_type type, double value) {
  n->type = (uint8_t)type;
  n->is_const = true;
  n->bits = 0;
  n->value = type == CT_FLOAT ? (double)(float)value : value;
}

/* A constant operand's value converted to floating type to. */
static double constant_as(const expr_node *n, c_type to) {
  if (to == CT_FLOAT && c_type_is_integer((c_type)n->type))
    return c_type_is_unsigned((c_type)n->type) ? (double)(float)n->bits
                                               : (double)(float)(int64_t)n->bits;
  if (to == CT_FLOAT) return (double)(float)n->value;
  return n->value;
}

/* An upper bound on the magnitude of an integer operand's value, or
   infinity for a constant beyond 2^53, whose double value may be rounded
   below it. */
static double magnitude_bound(const expr_node *n) {
  if (!n->is_const) return n->bound;
  if (!c_type_is_integer((c_type)n->type)) return fabs(n->value);
  uint64_t magnitude = n->bits;
  if (!c_type_is_unsigned((c_type)n->type) && (int64_t)n->bits < 0) magnitude = 0 - n->bits;
  return magnitude <= (UINT64_C(1) << 53) ? (double)magnitude : INFINITY;
}

/* ---- Integer folding -------------------------------------------------- */

/* a op b in a signed type of width bits. Returns false on overflow or
   division by zero, which C leaves undefined. */
static bool signed_fold(expr_op op, int64_t a, int64_t b, int width, int64_t *out) {
  int64_t min = width == 32 ? INT32_MIN : INT64_MIN, max = width == 32 ? INT32_MAX : INT64_MAX;
  switch (op) {
  case EXPR_ADD:
    if ((b > 0 && a > max - b) || (b < 0 && a < min - b)) return false;
    *out = a + b;
    return true;
  case EXPR_SUB:
    if ((b < 0 && a > max + b) || (b > 0 && a < min + b)) return false;
    *out = a - b;
    return true;
  case EXPR_MUL:
    if (a != 0 && b != 0) {
      bool overflow = a > 0 ? (b > 0 ? a > max / b : b < min / a)
                            : (b > 0 ? a < min / b : a < max / b);
      if (overflow) return false;
    }
    *out = a * b;
    return true;
  case EXPR_DIV:
    if (b == 0 || (a == min && b == -1)) return false;
    *out = a / b;
    return true;
  case EXPR_NEG:
    if (a == min) return false;
    *out = -a;
    return true;
  default: return false;
  }
}

static bool unsigned_fold(expr_op op, uint64_t a, uint64_t b, int width, uint64_t *out) {
  uint64_t mask = width == 32 ? 0xFFFFFFFFu : UINT64_MAX;
  switch (op) {
  case EXPR_ADD: *out = (a + b) & mask; return true;
  case EXPR_SUB: *out = (a - b) & mask; return true;
  case EXPR_MUL: *out = (a * b) & mask; return true;
  case EXPR_NEG: *out = (0 - a) & mask; return true;
  case EXPR_DIV:
    if (b == 0) return false;
    *out = a / b;
    return true;
  default: return false;
  }
}

/* a op b in integer type t, operands already converted to t. */
static bool integer_fold(expr_op op, uint64_t a, uint64_t b, c_type t, uint64_t *out) {
  if (c_type_is_unsigned(t)) return unsigned_fold(op, a, b, type_width(t), out);
  int64_t result;
  if (!signed_fold(op, (int64_t)a, (int64_t)b, type_width(t), &result)) return false;
  *out = (uint64_t)result;
  return true;
}

static bool integer_compare(expr_op op, uint64_t a, uint64_t b, bool is_unsigned) {
  int order = is_unsigned ? (a > b) - (a < b) : ((int64_t)a > (int64_t)b) - ((int64_t)a < (int64_t)b);
  switch (op) {
  case EXPR_LT: return order < 0;
  case EXPR_LE: return order <= 0;
  case EXPR_GT: return order > 0;
  case EXPR_GE: return order >= 0;
  case EXPR_EQ: return order == 0;
  default: return order != 0;
  }
}

static ad_status integer_fault(expr_op op, char *message, size_t capacity) {
  if (op == EXPR_DIV)
    snprintf(message, capacity,
             "integer division by zero or overflow in a constant expression, which C leaves "
             "undefined; write a floating constant, such as 1.0, to divide in double");
  else
    snprintf(message, capacity,
             "signed integer overflow in a constant expression, which C leaves undefined; write "
             "one operand as a floating constant (add .0, as in 3.0) to compute in double");
  return AD_ERR_FORMAT;
}

/* ---- Node typing ------------------------------------------------------ */

static ad_status reject(char *message, size_t capacity, const char *what) {
  snprintf(message, capacity, "%s", what);
  return AD_ERR_NOT_IMPLEMENTED;
}

static const char unsigned_text[] =
    "unsigned arithmetic on a value that depends on a variable wraps around in C, and this "
    "expression language does not model it; use signed or floating constants";
static const char float_text[] =
    "float arithmetic on a value that depends on a variable rounds to float in C, and this "
    "expression language computes in double; write double constants (0.5, not 0.5f)";
static const char large_text[] =
    "integer arithmetic on a value that depends on a variable may exceed 2^53, where double "
    "would round it and C would not; use floating constants";

/* - a. Integer promotion does not change our types, all at least int. */
static ad_status type_negation(expr_node *n, const expr_node *a, char *message, size_t capacity) {
  c_type t = (c_type)a->type;
  n->type = (uint8_t)t;
  if (a->is_const) {
    if (!c_type_is_integer(t)) {
      set_floating_constant(n, t, -a->value);
      return AD_OK;
    }
    uint64_t bits;
    if (!integer_fold(EXPR_NEG, a->bits, 0, t, &bits))
      return integer_fault(EXPR_NEG, message, capacity);
    set_integer_constant(n, t, bits);
    return AD_OK;
  }
  if (c_type_is_unsigned(t)) return reject(message, capacity, unsigned_text);
  n->bound = a->bound;
  return AD_OK;
}

static ad_status type_arithmetic(expr_node *n, const expr_node *a, const expr_node *b,
                                 char *message, size_t capacity) {
  expr_op op = (expr_op)n->op;
  c_type t = common_type((c_type)a->type, (c_type)b->type);
  n->type = (uint8_t)t;
  if (a->is_const && b->is_const) {
    if (!c_type_is_integer(t)) {
      double v = expr_scalar_value(op, constant_as(a, t), constant_as(b, t), 0);
      set_floating_constant(n, t, v);
      return AD_OK;
    }
    uint64_t bits;
    if (!integer_fold(op, convert_bits(a->bits, t), convert_bits(b->bits, t), t, &bits))
      return integer_fault(op, message, capacity);
    set_integer_constant(n, t, bits);
    return AD_OK;
  }
  if (t == CT_DOUBLE) return AD_OK;
  if (t == CT_FLOAT) return reject(message, capacity, float_text);
  if (c_type_is_unsigned(t)) return reject(message, capacity, unsigned_text);
  if (op == EXPR_DIV)
    return reject(message, capacity,
                  "integer division truncates in C, and this expression language cannot "
                  "truncate a value that depends on a variable; write a floating constant, "
                  "such as 2.0, to divide in double");
  double ba = magnitude_bound(a), bb = magnitude_bound(b);
  n->bound = op == EXPR_MUL ? ba * bb : ba + bb;
  /* A true bound above 2^53 rounds to at least 2^53, so this rejects it. */
  if (!(n->bound < DOUBLE_EXACT)) return reject(message, capacity, large_text);
  return AD_OK;
}

static ad_status type_comparison(expr_node *n, const expr_node *a, const expr_node *b,
                                 char *message, size_t capacity) {
  expr_op op = (expr_op)n->op;
  c_type t = common_type((c_type)a->type, (c_type)b->type);
  n->type = CT_INT;
  n->bound = 1;
  if (a->is_const && b->is_const) {
    bool v;
    if (c_type_is_integer(t))
      v = integer_compare(op, convert_bits(a->bits, t), convert_bits(b->bits, t),
                          c_type_is_unsigned(t));
    else
      v = expr_scalar_value(op, constant_as(a, t), constant_as(b, t), 0) != 0;
    set_integer_constant(n, CT_INT, v);
    return AD_OK;
  }
  if (c_type_is_unsigned(t)) return reject(message, capacity, unsigned_text);
  if (t == CT_FLOAT) {
    bool a_int = c_type_is_integer((c_type)a->type), b_int = c_type_is_integer((c_type)b->type);
    if ((a_int && magnitude_bound(a) > FLOAT_EXACT) || (b_int && magnitude_bound(b) > FLOAT_EXACT))
      return reject(message, capacity,
                    "comparing a float with an integer above 2^24 rounds the integer in C, and "
                    "this expression language compares in double; write double constants");
  }
  return AD_OK;
}

/* !a, a && b, a || b: int 0 or 1. */
static void type_logical(expr_node *n, const expr_node *a, const expr_node *b) {
  n->type = CT_INT;
  n->bound = 1;
  bool constant = a->is_const && (!b || b->is_const);
  if (!constant) return;
  double v = expr_scalar_value((expr_op)n->op, a->value, b ? b->value : 0, 0);
  set_integer_constant(n, CT_INT, v != 0);
}

/* Converts constant branch n of a ?: to the result type t in place, as C
   converts the branch it selects. */
static void convert_constant(expr_node *n, c_type t) {
  if (c_type_is_integer(t) && c_type_is_integer((c_type)n->type))
    set_integer_constant(n, t, convert_bits(n->bits, t));
  else if (t == CT_FLOAT)
    set_floating_constant(n, CT_FLOAT, constant_as(n, CT_FLOAT));
}

static ad_status type_conditional(expr_node *n, const expr_node *c, expr_node *a, expr_node *b,
                                  char *message, size_t capacity) {
  c_type t = common_type((c_type)a->type, (c_type)b->type);
  n->type = (uint8_t)t;
  expr_node *branches[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    expr_node *x = branches[i];
    if (x->is_const) {
      if (c_type_is_integer(t) || t == CT_FLOAT) convert_constant(x, t);
      continue;
    }
    bool x_int = c_type_is_integer((c_type)x->type);
    if (c_type_is_unsigned(t) && !c_type_is_unsigned((c_type)x->type))
      return reject(message, capacity, unsigned_text);
    if (t == CT_FLOAT && x_int && x->bound > FLOAT_EXACT)
      return reject(message, capacity, float_text);
  }
  if (c->is_const && a->is_const && b->is_const) {
    const expr_node *chosen = c->value != 0 ? a : b;
    if (c_type_is_integer(t)) set_integer_constant(n, t, chosen->bits);
    else set_floating_constant(n, t, chosen->value);
    return AD_OK;
  }
  if (c_type_is_integer(t)) n->bound = fmax(magnitude_bound(a), magnitude_bound(b));
  return AD_OK;
}

ad_status type_node(expr_node *nodes, int32_t index, char *message, size_t capacity) {
  expr_node *n = &nodes[index];
  expr_node *a = n->arg[0] >= 0 ? &nodes[n->arg[0]] : NULL;
  expr_node *b = n->arg[1] >= 0 ? &nodes[n->arg[1]] : NULL;
  expr_node *c = n->arg[2] >= 0 ? &nodes[n->arg[2]] : NULL;
  n->is_const = false;
  n->bound = 0;

  switch ((expr_op)n->op) {
  case EXPR_NEG: return type_negation(n, a, message, capacity);
  case EXPR_ADD:
  case EXPR_SUB:
  case EXPR_MUL:
  case EXPR_DIV: return type_arithmetic(n, a, b, message, capacity);
  case EXPR_LT:
  case EXPR_LE:
  case EXPR_GT:
  case EXPR_GE:
  case EXPR_EQ:
  case EXPR_NE: return type_comparison(n, a, b, message, capacity);
  case EXPR_NOT:
  case EXPR_AND:
  case EXPR_OR: type_logical(n, a, b); return AD_OK;
  case EXPR_COND: return type_conditional(n, a, b, c, message, capacity);
  default: break;
  }

  /* A <math.h> function: double operands and result. */
  n->type = CT_DOUBLE;
  bool constant = a->is_const && (!b || b->is_const);
  if (constant)
    set_floating_constant(n, CT_DOUBLE,
                          expr_scalar_value((expr_op)n->op, a->value, b ? b->value : 0, 0));
  return AD_OK;
}
