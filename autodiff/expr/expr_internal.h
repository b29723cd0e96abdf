/*
 * expr_internal.h: the parsed form of an expression, shared by the parser,
 * the evaluators and the C emitter. Built only on the public API.
 *
 * An expression is an array of nodes in which every operand has a smaller
 * index than the node that uses it, and the root is the last node. Every
 * pass is therefore a loop over the array, forward for values and backward
 * for adjoints and liveness, and only the parser recurses.
 */
#ifndef AD_EXPR_INTERNAL_H
#define AD_EXPR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autodiff.h"

/* Internal to libautodiff: these symbols are not exported. */
#pragma GCC visibility push(hidden)

/* Node kinds. The functions keep the order of the table in optable.c. */
typedef enum expr_op {
  EXPR_CONST,
  EXPR_VAR,
  EXPR_NEG,
  EXPR_NOT,
  EXPR_ADD,
  EXPR_SUB,
  EXPR_MUL,
  EXPR_DIV,
  EXPR_LT,
  EXPR_LE,
  EXPR_GT,
  EXPR_GE,
  EXPR_EQ,
  EXPR_NE,
  EXPR_AND,
  EXPR_OR,
  EXPR_COND,
  EXPR_SIN,
  EXPR_COS,
  EXPR_TAN,
  EXPR_ASIN,
  EXPR_ACOS,
  EXPR_ATAN,
  EXPR_SINH,
  EXPR_COSH,
  EXPR_TANH,
  EXPR_EXP,
  EXPR_EXP2,
  EXPR_EXPM1,
  EXPR_LOG,
  EXPR_LOG2,
  EXPR_LOG10,
  EXPR_LOG1P,
  EXPR_SQRT,
  EXPR_CBRT,
  EXPR_FABS,
  EXPR_ERF,
  EXPR_ERFC,
  EXPR_ATAN2,
  EXPR_POW,
  EXPR_HYPOT,
  EXPR_FMIN,
  EXPR_FMAX,
  EXPR_OP_COUNT
} expr_op;

#define EXPR_FIRST_FUNCTION EXPR_SIN

/* C types of values, for the rules of C11 6.3.1.8 on LP64: int is 32 bits,
   long and long long 64. Long double is treated as double. */
typedef enum c_type {
  CT_INT,
  CT_UINT,
  CT_LONG,
  CT_ULONG,
  CT_LLONG,
  CT_ULLONG,
  CT_FLOAT,
  CT_DOUBLE
} c_type;

static inline bool c_type_is_integer(c_type t) { return t <= CT_ULLONG; }
static inline bool c_type_is_unsigned(c_type t) {
  return t == CT_UINT || t == CT_ULONG || t == CT_ULLONG;
}

typedef struct expr_node {
  uint8_t op;       /* expr_op */
  uint8_t type;     /* c_type of the value */
  bool is_const;    /* no variable below: value is the folded result */
  bool needed;      /* evaluated: the root, or an operand of a needed non-constant node */
  int32_t arg[3];   /* operands, each with a smaller index; -1 when absent */
  int32_t var;      /* EXPR_VAR: index into the variable table */
  int32_t start;    /* the node's text is [start, end) */
  int32_t end;
  double value;     /* is_const: the value converted to double */
  uint64_t bits;    /* is_const integers: the value in two's complement */
  double bound;     /* non-constant integers: an upper bound on |value| */
} expr_node;

typedef struct expr_var {
  int32_t name;      /* offset of the NUL-terminated name in ad_expr.names */
  int32_t first_use; /* offset of its first appearance in the text */
  int32_t length;    /* length of the name in bytes */
} expr_var;

struct ad_expr {
  ad_ctx *ctx;          /* whose allocator owns every buffer below */
  char *text;           /* a NUL-terminated copy of the text */
  size_t text_length;
  expr_node *nodes;
  int32_t node_count, node_capacity;
  expr_var *vars;
  int32_t var_count, var_capacity;
  char *names;          /* the variable names, each NUL-terminated */
  size_t names_used, names_capacity;
  int32_t *var_hash;    /* open addressing over vars: index + 1, or 0 when empty */
  int32_t var_hash_size; /* a power of two, at least twice var_count */
};

/* ---- The expression object (expr.c) ----------------------------------- */

/* The longest text accepted, so that offsets and node indices fit int32. */
#define EXPR_MAX_TEXT ((size_t)1 << 30)

/* A new, empty expression holding a copy of text, or NULL with
   AD_ERR_MEMORY recorded. */
ad_expr *expr_new(ad_ctx *ctx, const char *text, size_t length);

/* Appends a copy of node and returns its index, or -1 with AD_ERR_MEMORY
   recorded. Pointers into expr->nodes are invalid afterwards. */
int32_t expr_add_node(ad_expr *expr, const expr_node *node);

/* The index of the variable called name (length bytes), added at offset
   when it is new; -1 with AD_ERR_MEMORY recorded. */
int32_t expr_intern_var(ad_expr *expr, const char *name, size_t length, size_t offset);

/* Sets the needed flag of the root and, below every needed node that is
   not constant, of its operands. */
void expr_mark_needed(ad_expr *expr);

/* ---- The operation table (optable.c) ---------------------------------- */

typedef struct expr_op_def {
  const char *name;  /* the C operator or <math.h> function name */
  int arity;
  /* The engine operation for functions of one or two operands. */
  ad_tensor *(*tensor1)(ad_ctx *ctx, ad_tensor *a);
  ad_tensor *(*tensor2)(ad_ctx *ctx, ad_tensor *a, ad_tensor *b);
  /* The value as plain C, with %0, %1 and %2 for the operands. */
  const char *c_value;
  /* d value / d operand i as plain C, with %y for the value; NULL for the
     operations whose derivative is zero everywhere. These are the formulas
     of the engine's backward rules, so generated code agrees with it. */
  const char *c_deriv[2];
} expr_op_def;

extern const expr_op_def expr_ops[EXPR_OP_COUNT];

/* The function called name (length bytes), or -1. */
int expr_find_function(const char *name, size_t length);

/* True for C keywords and the <math.h> names that are not variables: its
   constants, its macros and the functions other than those of the table
   (parser.c). */
bool expr_is_reserved_name(const char *name, size_t length);

/* The value of op at operands a, b, c in double, as the engine computes it. */
double expr_scalar_value(expr_op op, double a, double b, double c);

/* d op / d operand which at (a, b) with value y, as the engine's backward
   rule computes it; 0 for the operations without a derivative. */
double expr_scalar_deriv(expr_op op, int which, double a, double b, double y);

/* ---- Evaluation helpers (eval.c) -------------------------------------- */

/* Computes every node's value in double at the variable values, each node
   from its operands (both branches of ?: included). values_out has
   node_count entries. */
void expr_scalar_forward(const ad_expr *expr, const double *vars, double *values_out);

#pragma GCC visibility pop

#endif /* AD_EXPR_INTERNAL_H */
