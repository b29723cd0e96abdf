/*
 * optable.c: the operations of the expression language: their engine
 * operations, their values and derivatives in double, and the same as C
 * text for ad_expr_emit_c.
 *
 * The derivative formulas repeat those of the engine's backward rules
 * (autodiff/src/unary.c and binary.c) operation for operation, constants
 * included, so that the three evaluators agree to the last bit where the
 * compiler keeps the order of operations. The tests compare them.
 */
#include <math.h>
#include <string.h>

#include "expr_internal.h"

/* The engine's constants, written as it writes them. */
#define LN2 0.69314718055994530942
#define LN10 2.30258509299404568402
#define TWO_OVER_SQRT_PI 1.12837916709551257390
#define TEXT(x) #x
#define EXPAND_TEXT(x) TEXT(x)

const expr_op_def expr_ops[EXPR_OP_COUNT] = {
    [EXPR_CONST] = {"constant", 0, NULL, NULL, NULL, {NULL, NULL}},
    [EXPR_VAR] = {"variable", 0, NULL, NULL, NULL, {NULL, NULL}},
    [EXPR_NEG] = {"-", 1, ad_neg, NULL, "-%0", {"-1", NULL}},
    [EXPR_NOT] = {"!", 1, NULL, NULL, "%0 == 0", {NULL, NULL}},
    [EXPR_ADD] = {"+", 2, NULL, ad_add, "%0 + %1", {"1", "1"}},
    [EXPR_SUB] = {"-", 2, NULL, ad_sub, "%0 - %1", {"1", "-1"}},
    [EXPR_MUL] = {"*", 2, NULL, ad_mul, "%0 * %1", {"%1", "%0"}},
    [EXPR_DIV] = {"/", 2, NULL, ad_div, "%0 / %1", {"1 / %1", "-%y / %1"}},
    [EXPR_LT] = {"<", 2, NULL, ad_lt, "%0 < %1", {NULL, NULL}},
    [EXPR_LE] = {"<=", 2, NULL, ad_le, "%0 <= %1", {NULL, NULL}},
    [EXPR_GT] = {">", 2, NULL, ad_gt, "%0 > %1", {NULL, NULL}},
    [EXPR_GE] = {">=", 2, NULL, ad_ge, "%0 >= %1", {NULL, NULL}},
    [EXPR_EQ] = {"==", 2, NULL, ad_eq, "%0 == %1", {NULL, NULL}},
    [EXPR_NE] = {"!=", 2, NULL, ad_ne, "%0 != %1", {NULL, NULL}},
    [EXPR_AND] = {"&&", 2, NULL, NULL, "%0 != 0 && %1 != 0", {NULL, NULL}},
    [EXPR_OR] = {"||", 2, NULL, NULL, "%0 != 0 || %1 != 0", {NULL, NULL}},
    [EXPR_COND] = {"?:", 3, NULL, NULL, "%0 != 0 ? %1 : %2", {NULL, NULL}},
    [EXPR_SIN] = {"sin", 1, ad_sin, NULL, "sin(%0)", {"cos(%0)", NULL}},
    [EXPR_COS] = {"cos", 1, ad_cos, NULL, "cos(%0)", {"-sin(%0)", NULL}},
    [EXPR_TAN] = {"tan", 1, ad_tan, NULL, "tan(%0)", {"1 + %y * %y", NULL}},
    [EXPR_ASIN] = {"asin", 1, ad_asin, NULL, "asin(%0)", {"1 / sqrt(1 - %0 * %0)", NULL}},
    [EXPR_ACOS] = {"acos", 1, ad_acos, NULL, "acos(%0)", {"-1 / sqrt(1 - %0 * %0)", NULL}},
    [EXPR_ATAN] = {"atan", 1, ad_atan, NULL, "atan(%0)", {"1 / (1 + %0 * %0)", NULL}},
    [EXPR_SINH] = {"sinh", 1, ad_sinh, NULL, "sinh(%0)", {"cosh(%0)", NULL}},
    [EXPR_COSH] = {"cosh", 1, ad_cosh, NULL, "cosh(%0)", {"sinh(%0)", NULL}},
    [EXPR_TANH] = {"tanh", 1, ad_tanh, NULL, "tanh(%0)", {"1 - %y * %y", NULL}},
    [EXPR_EXP] = {"exp", 1, ad_exp, NULL, "exp(%0)", {"%y", NULL}},
    [EXPR_EXP2] = {"exp2", 1, ad_exp2, NULL, "exp2(%0)", {"%y * " EXPAND_TEXT(LN2), NULL}},
    [EXPR_EXPM1] = {"expm1", 1, ad_expm1, NULL, "expm1(%0)", {"%y + 1", NULL}},
    [EXPR_LOG] = {"log", 1, ad_log, NULL, "log(%0)", {"1 / %0", NULL}},
    [EXPR_LOG2] = {"log2", 1, ad_log2, NULL, "log2(%0)",
                   {"1 / (%0 * " EXPAND_TEXT(LN2) ")", NULL}},
    [EXPR_LOG10] = {"log10", 1, ad_log10, NULL, "log10(%0)",
                    {"1 / (%0 * " EXPAND_TEXT(LN10) ")", NULL}},
    [EXPR_LOG1P] = {"log1p", 1, ad_log1p, NULL, "log1p(%0)", {"1 / (1 + %0)", NULL}},
    [EXPR_SQRT] = {"sqrt", 1, ad_sqrt, NULL, "sqrt(%0)", {"0.5 / %y", NULL}},
    [EXPR_CBRT] = {"cbrt", 1, ad_cbrt, NULL, "cbrt(%0)", {"1 / (3 * %y * %y)", NULL}},
    [EXPR_FABS] = {"fabs", 1, ad_abs, NULL, "fabs(%0)", {"%0 > 0 ? 1 : %0 < 0 ? -1 : 0", NULL}},
    [EXPR_ERF] = {"erf", 1, ad_erf, NULL, "erf(%0)",
                  {EXPAND_TEXT(TWO_OVER_SQRT_PI) " * exp(-%0 * %0)", NULL}},
    [EXPR_ERFC] = {"erfc", 1, ad_erfc, NULL, "erfc(%0)",
                   {"-" EXPAND_TEXT(TWO_OVER_SQRT_PI) " * exp(-%0 * %0)", NULL}},
    [EXPR_ATAN2] = {"atan2", 2, NULL, ad_atan2, "atan2(%0, %1)",
                    {"%1 / (%0 * %0 + %1 * %1)", "-%0 / (%0 * %0 + %1 * %1)"}},
    [EXPR_POW] = {"pow", 2, NULL, ad_pow, "pow(%0, %1)",
                  {"%1 == 0 ? 0 : %1 * pow(%0, %1 - 1)", "%0 == 0 && %1 >= 0 ? 0 : %y * log(%0)"}},
    [EXPR_HYPOT] = {"hypot", 2, NULL, ad_hypot, "hypot(%0, %1)",
                    {"%y == 0 ? 0 : %0 / %y", "%y == 0 ? 0 : %1 / %y"}},
    /* fmin and fmax route a NaN operand as the engine's ad_where does (see
       eval.c), then tie as ad_minimum and ad_maximum do. */
    [EXPR_FMIN] = {"fmin", 2, NULL, NULL, "%0 != %0 ? %1 : %1 != %1 ? %0 : %0 < %1 ? %0 : %1",
                   {"%0 != %0 ? 0 : %1 != %1 ? 1 : %0 == %1 ? 0.5 : %0 < %1 ? 1 : 0",
                    "%0 != %0 ? 1 : %1 != %1 ? 0 : %1 == %0 ? 0.5 : %1 < %0 ? 1 : 0"}},
    [EXPR_FMAX] = {"fmax", 2, NULL, NULL, "%0 != %0 ? %1 : %1 != %1 ? %0 : %0 > %1 ? %0 : %1",
                   {"%0 != %0 ? 0 : %1 != %1 ? 1 : %0 == %1 ? 0.5 : %0 > %1 ? 1 : 0",
                    "%0 != %0 ? 1 : %1 != %1 ? 0 : %1 == %0 ? 0.5 : %1 > %0 ? 1 : 0"}},
};

int expr_find_function(const char *name, size_t length) {
  for (int op = EXPR_FIRST_FUNCTION; op < EXPR_OP_COUNT; op++) {
    const char *candidate = expr_ops[op].name;
    if (strlen(candidate) == length && memcmp(candidate, name, length) == 0) return op;
  }
  return -1;
}

/* fmin (greater false) or fmax as the engine computes them: a NaN operand
   is ignored, and a tie returns the second operand. */
static double extremum(double a, double b, bool greater) {
  if (isnan(a)) return b;
  if (isnan(b)) return a;
  if (greater) return a > b ? a : b;
  return a < b ? a : b;
}

double expr_scalar_value(expr_op op, double a, double b, double c) {
  switch (op) {
  case EXPR_NEG: return -a;
  case EXPR_NOT: return a == 0;
  case EXPR_ADD: return a + b;
  case EXPR_SUB: return a - b;
  case EXPR_MUL: return a * b;
  case EXPR_DIV: return a / b;
  case EXPR_LT: return a < b;
  case EXPR_LE: return a <= b;
  case EXPR_GT: return a > b;
  case EXPR_GE: return a >= b;
  case EXPR_EQ: return a == b;
  case EXPR_NE: return a != b;
  case EXPR_AND: return a != 0 && b != 0;
  case EXPR_OR: return a != 0 || b != 0;
  case EXPR_COND: return a != 0 ? b : c;
  case EXPR_SIN: return sin(a);
  case EXPR_COS: return cos(a);
  case EXPR_TAN: return tan(a);
  case EXPR_ASIN: return asin(a);
  case EXPR_ACOS: return acos(a);
  case EXPR_ATAN: return atan(a);
  case EXPR_SINH: return sinh(a);
  case EXPR_COSH: return cosh(a);
  case EXPR_TANH: return tanh(a);
  case EXPR_EXP: return exp(a);
  case EXPR_EXP2: return exp2(a);
  case EXPR_EXPM1: return expm1(a);
  case EXPR_LOG: return log(a);
  case EXPR_LOG2: return log2(a);
  case EXPR_LOG10: return log10(a);
  case EXPR_LOG1P: return log1p(a);
  case EXPR_SQRT: return sqrt(a);
  case EXPR_CBRT: return cbrt(a);
  case EXPR_FABS: return fabs(a);
  case EXPR_ERF: return erf(a);
  case EXPR_ERFC: return erfc(a);
  case EXPR_ATAN2: return atan2(a, b);
  case EXPR_POW: return pow(a, b);
  case EXPR_HYPOT: return hypot(a, b);
  case EXPR_FMIN: return extremum(a, b, false);
  case EXPR_FMAX: return extremum(a, b, true);
  default: return NAN;
  }
}

/* d fmin(a, b) / d a (which 0) or / d b (which 1); greater selects fmax. */
static double extremum_deriv(int which, double a, double b, bool greater) {
  double self = which ? b : a, other = which ? a : b;
  if (isnan(self)) return 0;
  if (isnan(other)) return 1;
  if (self == other) return 0.5;
  return (greater ? self > other : self < other) ? 1 : 0;
}

double expr_scalar_deriv(expr_op op, int which, double a, double b, double y) {
  switch (op) {
  case EXPR_NEG: return -1;
  case EXPR_ADD: return 1;
  case EXPR_SUB: return which ? -1 : 1;
  case EXPR_MUL: return which ? a : b;
  case EXPR_DIV: return which ? -y / b : 1 / b;
  case EXPR_SIN: return cos(a);
  case EXPR_COS: return -sin(a);
  case EXPR_TAN: return 1 + y * y;
  case EXPR_ASIN: return 1 / sqrt(1 - a * a);
  case EXPR_ACOS: return -1 / sqrt(1 - a * a);
  case EXPR_ATAN: return 1 / (1 + a * a);
  case EXPR_SINH: return cosh(a);
  case EXPR_COSH: return sinh(a);
  case EXPR_TANH: return 1 - y * y;
  case EXPR_EXP: return y;
  case EXPR_EXP2: return y * LN2;
  case EXPR_EXPM1: return y + 1;
  case EXPR_LOG: return 1 / a;
  case EXPR_LOG2: return 1 / (a * LN2);
  case EXPR_LOG10: return 1 / (a * LN10);
  case EXPR_LOG1P: return 1 / (1 + a);
  case EXPR_SQRT: return 0.5 / y;
  case EXPR_CBRT: return 1 / (3 * y * y);
  case EXPR_FABS:
    if (a > 0) return 1;
    return a < 0 ? -1 : 0;
  case EXPR_ERF: return TWO_OVER_SQRT_PI * exp(-a * a);
  case EXPR_ERFC: return -TWO_OVER_SQRT_PI * exp(-a * a);
  case EXPR_ATAN2: {
    double h = a * a + b * b;
    return which ? -a / h : b / h;
  }
  case EXPR_POW:
    if (which == 0) return b == 0 ? 0 : b * pow(a, b - 1);
    return (a == 0 && b >= 0) ? 0 : y * log(a);
  case EXPR_HYPOT: return y == 0 ? 0 : (which ? b : a) / y;
  case EXPR_FMIN: return extremum_deriv(which, a, b, false);
  case EXPR_FMAX: return extremum_deriv(which, a, b, true);
  default: return 0;
  }
}
