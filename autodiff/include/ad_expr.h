/*
 * ad_expr.h: C expressions given as text, evaluated and differentiated by the
 * engine.
 *
 *     ad_expr *e = ad_expr_parse(ctx, "x*y + sin(x)", NULL);
 *     if (!e) fprintf(stderr, "%s\n", ad_errmsg(ctx));
 *     ad_tensor *values[2] = {x, y};  // in the order of ad_expr_var_name
 *     ad_tensor *f = ad_expr_eval(ctx, e, values);
 *     ad_backward(ctx, f, NULL);      // x and y require a gradient
 *     ad_expr_free(e);
 *
 * ad_expr_parse() compiles the text once. ad_expr_eval() records the
 * expression on the context's tape with the operations of ad_ops.h, as
 * if the caller had written those calls, so ad_backward, ad_gradients and
 * ad_hessian differentiate it, to any order.
 *
 * The language is the part of C's expression syntax that has derivatives:
 *
 *   - C's numeric constants: 2, 0x1F, 017 (octal), 2u, 10L, 0.5, .5, 1.,
 *     1e-3, 1.5f, 0x1.8p1 (hexadecimal floating), with C's suffixes.
 *   - Identifiers: a name followed by '(' is a function call, any other
 *     name is a variable. The constants M_PI, M_E, M_LN2, M_LN10, M_LOG2E,
 *     M_LOG10E, M_PI_2, M_PI_4, M_1_PI, M_2_PI, M_2_SQRTPI, M_SQRT2,
 *     M_SQRT1_2, INFINITY, NAN and HUGE_VAL have their <math.h> values.
 *   - Operators, with C's precedence and associativity, from the lowest:
 *     ?: (right-associative), ||, &&, == !=, < <= > >=, + -, * /, and the
 *     unary - + ! and the casts (double) and (long double). Comparisons,
 *     !, && and || give 0 or 1 and have zero derivative. c ? a : b is
 *     piecewise: its value and derivative are those of the branch that c
 *     selects, as in C, and the other branch contributes nothing, not even
 *     NaN. && and || are supported and evaluate as in C, where a NaN
 *     operand counts as true.
 *   - The <math.h> functions sin, cos, tan, asin, acos, atan, atan2, sinh,
 *     cosh, tanh, exp, exp2, expm1, log, log2, log10, log1p, sqrt, cbrt, pow,
 *     hypot, fabs, fmin, fmax, erf and erfc. fmin and fmax ignore a NaN
 *     operand as C's do. Derivatives where none exists follow ad_ops.h:
 *     fabs'(0) = 0, and fmin and fmax give half the gradient to each
 *     operand when they tie.
 *   - Comments, spaces, tabs and newlines between tokens.
 *
 * Types follow C11 on an LP64 system, so that the text means what it means
 * in a C program. Variables are double. A subexpression without variables
 * is computed when the text is parsed, with C's rules: 1/2 is the int 0,
 * 1.0/2 is 0.5, -1 < 0u is 0, 0.1f is the float nearest 0.1, and a signed
 * integer overflow or an integer division by zero there is an error,
 * because C leaves it undefined. Where a subexpression with variables has
 * an integer type (x > 0, a ? 1 : 2), it is computed in floating point,
 * which gives C's value. Integer division, unsigned arithmetic, float
 * arithmetic and integers beyond 2^53 on such a subexpression would not,
 * and are rejected. Long double constants are rounded to double. Values are
 * computed in the dtype of the bound tensors.
 *
 * Rejected with a message: every other operator (x^2 is XOR in C, not a
 * power, so the message suggests pow(x, 2); %, &, |, ~, <<, >>, =, ++, the
 * comma operator), other casts, strings and character constants, other
 * <math.h> names (functions without a derivative here, macros, glibc's
 * M_PIl), C keywords, a call with the wrong number of arguments, and
 * nesting deeper than AD_EXPR_MAX_DEPTH.
 *
 * Every function that can fail returns NULL, -1 or a status other than
 * AD_OK and records the error on the context (see ad_core.h). A syntax
 * error's message shows the line of the text with a caret under the token:
 *
 *     ad_expr_parse: column 5: expected an operand after '+', found '*'
 *       x + * 2
 *           ^
 */
#ifndef AD_EXPR_H
#define AD_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ad_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Types ------------------------------------------------------------ */

/* A parsed expression: its operations, constants and variable names. It
   refers to no tensors, so one expression can be evaluated many times, also on
   other contexts. */
typedef struct ad_expr ad_expr;

/* The maximum nesting of parentheses, calls, unary operators, casts and
   ?: operators. Deeper text is a syntax error, so that no input can exhaust
   the C stack of the recursive parser. */
#define AD_EXPR_MAX_DEPTH 200

/* Where and why parsing failed. */
typedef struct ad_expr_error {
  ad_status status;  /* AD_OK after a successful parse */
  size_t offset;     /* the first byte of the token at fault */
  size_t length;     /* its length in bytes; 0 at the end of the text */
  int line, column;  /* 1-based; column counts characters (UTF-8 code points) */
  char reason[256];  /* one line: what was wrong and what was expected */
} ad_expr_error;

/* A value for one variable: a tensor, or a scalar constant that does not
   require a gradient. Build it with ad_expr_tensor or ad_expr_scalar. */
typedef struct ad_expr_binding {
  const char *name;
  ad_tensor *tensor;  /* the value unless is_scalar; NULL makes evaluation fail */
  double scalar;      /* the value if is_scalar */
  bool is_scalar;
} ad_expr_binding;

static inline ad_expr_binding ad_expr_tensor(const char *name, ad_tensor *tensor) {
  ad_expr_binding b = {name, tensor, 0.0, false};
  return b;
}

static inline ad_expr_binding ad_expr_scalar(const char *name, double value) {
  ad_expr_binding b = {name, NULL, value, true};
  return b;
}

/* ---- Parse and free --------------------------------------------------- */

/* Parses the NUL-terminated text. Returns a new expression, which the
   caller frees with ad_expr_free() before freeing ctx. On failure returns
   NULL with AD_ERR_FORMAT (invalid C, an unknown function, a wrong argument
   count, too deep), AD_ERR_NOT_IMPLEMENTED (valid C outside the language
   above) or AD_ERR_MEMORY recorded on ctx. error, when not NULL, receives
   the position and reason in either case. */
ad_expr *ad_expr_parse(ad_ctx *ctx, const char *text, ad_expr_error *error);

/* As ad_expr_parse, for length bytes of text that need not end in a NUL.
   A NUL byte inside is an invalid character. */
ad_expr *ad_expr_parse_n(ad_ctx *ctx, const char *text, size_t length, ad_expr_error *error);

/* Frees an expression through the allocator of the context that parsed it.
   Accepts NULL. */
void ad_expr_free(ad_expr *expr);

/* ---- Queries ---------------------------------------------------------- */

/* The text as parsed, NUL-terminated. */
const char *ad_expr_text(const ad_expr *expr);

/* The number of distinct variables. */
int ad_expr_var_count(const ad_expr *expr);

/* The name of variable index, in the order of first appearance in the text,
   or NULL for an index outside [0, ad_expr_var_count). */
const char *ad_expr_var_name(const ad_expr *expr, int index);

/* The index of the variable called name, or -1 when the text has none. */
int ad_expr_var_index(const ad_expr *expr, const char *name);

/* ---- Evaluate --------------------------------------------------------- */

/* Evaluates expr with values[i] bound to variable i and returns a new arena
   tensor, recorded on the tape when recording is on and a value requires a
   gradient. The values must be tensors of ctx with one floating-point
   dtype and shapes that broadcast together. The result has their broadcast
   shape and that dtype, float64 when there are no variables, and constants
   take that dtype too. Returns NULL with the error recorded. */
ad_tensor *ad_expr_eval(ad_ctx *ctx, const ad_expr *expr, ad_tensor *const *values);

/* As ad_expr_eval, with each variable bound by name. Every variable needs
   exactly one binding, and every binding must name a variable. Scalar
   bindings become 0-d constants of the tensors' dtype. */
ad_tensor *ad_expr_eval_named(ad_ctx *ctx, const ad_expr *expr, int count,
                              const ad_expr_binding *bindings);

/* Parses text, evaluates it with the bindings and frees the expression:
   a one-call ad_expr_parse and ad_expr_eval_named. */
ad_tensor *ad_expr_eval_text(ad_ctx *ctx, const char *text, int count,
                             const ad_expr_binding *bindings);

/* Evaluates expr in float64 at the point given by values[i] for variable i.
   Stores the value in *value, the gradient in gradient[0..n) when gradient
   is not NULL, and the Hessian, row-major n x n with H[i*n + j] =
   d2f/dxi dxj, in hessian when it is not NULL (n = ad_expr_var_count). The
   tensors it creates stay in ctx's arena until ad_ctx_reset(). On failure
   returns the status and leaves the outputs unspecified. */
ad_status ad_expr_derivatives(ad_ctx *ctx, const ad_expr *expr, const double *values,
                              double *value, double *gradient, double *hessian);

/* ---- Domain problems -------------------------------------------------- */

typedef enum ad_expr_issue_kind {
  /* NaN from operands that are not NaN: log(-1), sqrt(-1), asin(2), 0/0,
     inf - inf (IEEE 754's invalid operation). */
  AD_EXPR_INVALID = 0,
  /* An exact infinity from finite operands: 1/0, log(0), pow(0, -1). */
  AD_EXPR_DIVIDE_BY_ZERO,
  /* A finite result too large for the type: exp(1000), 1e308 * 10. */
  AD_EXPR_OVERFLOW,
  /* A finite value whose derivative with respect to a finite operand is
     infinite or NaN: sqrt(0), asin(1), cbrt(0). The gradient stays finite
     when that derivative is multiplied by a zero adjoint. */
  AD_EXPR_DERIVATIVE
} ad_expr_issue_kind;

/* A subexpression where a non-finite value or derivative first appears. */
typedef struct ad_expr_issue {
  ad_expr_issue_kind kind;
  size_t offset, length; /* the subexpression's bytes in the text */
  double value;          /* its value */
  /* "log(x) is -inf: log(0) is a pole", the subexpression shortened to
     fit with "..." */
  char message[192];
} ad_expr_issue;

/* Evaluates expr in float64 at values (as in ad_expr_derivatives) and finds
   the subexpressions where a NaN or infinity first appears, in the order C
   evaluates them, on the branches of ?:, && and || that C evaluates. Stores
   the first capacity of them in issues (which may be NULL when capacity is
   0) and returns how many there are in all, or -1 with the error recorded.
   Records nothing on the tape. */
int ad_expr_check_domain(ad_ctx *ctx, const ad_expr *expr, const double *values,
                         ad_expr_issue *issues, int capacity);

/* ---- Source to source ------------------------------------------------- */

/* Writes to stream a self-contained C function called name that computes
   the value of expr and its gradient, as straight-line forward code and a
   reverse sweep, needing only <math.h>:

       double name(double x, double y, double *grad);

   with one double parameter per variable in the order of ad_expr_var_name.
   It returns the value and, when grad is not NULL, stores df/dvariable i in
   grad[i]. It uses the engine's derivative formulas, kinks included, so it
   agrees with ad_expr_derivatives up to rounding when compiled without
   -ffast-math. name must be a C identifier that is neither a keyword nor a
   <math.h> name. Returns AD_ERR_ARGUMENT for a bad name and AD_ERR_IO when
   writing fails. */
ad_status ad_expr_emit_c(ad_ctx *ctx, const ad_expr *expr, const char *name, FILE *stream);

#ifdef __cplusplus
}
#endif

#endif /* AD_EXPR_H */
