/* The expression language: constants, C's types, precedence, variables,
   and every error with its message and caret. */
#include <float.h>
#include <stdio.h>

#include "expr_test_util.h"

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))

/* ---- Numeric constants ------------------------------------------------- */

typedef struct constant_case {
  const char *text;
  double expected;
} constant_case;

static const constant_case constant_cases[] = {
    {"2", 2},
    {"0.5", 0.5},
    {"1e-3", 1e-3},
    {".5f", 0.5},
    {"1.f", 1},
    {"0x1.8p1", 3},
    {"0x.8p0", 0.5},
    {"0X1P-3", 0.125},
    {"017", 15},
    {"0", 0},
    {"0x1F", 31},
    {"10u", 10},
    {"10UL", 10},
    {"10llu", 10},
    {"10LLU", 10},
    {"7L", 7},
    {"1.5e+2", 150},
    {"1.5E2L", 150},
    {"0.1f", (double)0.1f},
    {"0.1", 0.1},
    {"1e999", INFINITY},
    {"4294967295", 4294967295.0},
    {"0xffffffffffffffff", 18446744073709551615.0},
    {"M_PI", M_PI},
    {"M_E", M_E},
    {"M_SQRT2", M_SQRT2},
    {"INFINITY", INFINITY},
    {"HUGE_VAL", HUGE_VAL},
};

START_TEST(test_numeric_constants) {
  const constant_case *c = &constant_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double v = eval_at(ctx, c->text, 0, NULL, NULL, NULL);
  ck_assert_msg(v == c->expected, "%s gave %.17g, expected %.17g", c->text, v, c->expected);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_nan_constant) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert(isnan(eval_at(ctx, "NAN", 0, NULL, NULL, NULL)));
  ad_ctx_free(ctx);
}
END_TEST

/* ---- C's types --------------------------------------------------------- */

static const constant_case type_cases[] = {
    {"1/2", 0},
    {"1.0/2", 0.5},
    {"1/2.0", 0.5},
    {"(double)1/2", 0.5},
    {"(long double)1/2", 0.5},
    {"7/2", 3},
    {"-7/2", -3},
    {"-1 < 0u", 0},
    {"-1L < 1u", 1},
    {"-1LL < 1ULL", 0},
    {"1u - 2 > 0", 1},
    {"4294967295u + 1", 0},
    {"0xffffffff + 1", 0},
    {"-2147483648", -2147483648.0},
    {"-2147483647 - 1", -2147483648.0},
    {"2147483647 + 1L", 2147483648.0},
    {".1f + .2f", (double)(.1f + .2f)},
    {".1f + .2", (double).1f + .2},
    {"16777217 * 1.f", 16777216},
    {"!0", 1},
    {"!2.5", 0},
    {"0 && 1", 0},
    {"2 || 0", 1},
    {"1 ? 2 : 3", 2},
    {"0 ? 2 : 3.5", 3.5},
    {"1 ? -1 : 1u", 4294967295.0},
    {"NAN && 1", 1},
    {"sin(1.0) > 0.5", 1},
    {"(sin(1.0) > 0.5) / 2", 0},
};

START_TEST(test_c_types) {
  const constant_case *c = &type_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double v = eval_at(ctx, c->text, 0, NULL, NULL, NULL);
  ck_assert_msg(v == c->expected, "%s gave %.17g, expected %.17g", c->text, v, c->expected);
  ad_ctx_free(ctx);
}
END_TEST

/* Integer-typed subexpressions with variables: computed in double where
   that gives C's value. */
static const constant_case integer_cases[] = {
    {"(x > 0) + (x > 1)", 2},
    {"(x > 0) * 3 - 1", 2},
    {"-(x > 2)", 0},
    {"x > 0 ? 1 : 2", 1},
    {"(double)(x > 0) / 2", 0.5},
    {"x > 0 ? 0.5f : 1.f", 0.5},
    {"1 / 2 * x", 0},
    {"1.0 / 2 * x", 0.75},
    {"x > 0 ? -1 : 1u", 4294967295.0},
};

START_TEST(test_integer_values_with_variables) {
  const char *names[] = {"x"};
  const double x = 1.5;
  const constant_case *c = &integer_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double v = eval_at(ctx, c->text, 1, names, &x, NULL);
  ck_assert_msg(v == c->expected, "%s gave %.17g, expected %.17g", c->text, v, c->expected);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Precedence and associativity -------------------------------------- */

/* Variable values for the precedence cases. They are macros, so the
   compiler computes each expected value from the same text. Their names are
   upper case to keep them apart from the code. */
#define A 7.0
#define B 3.0
#define C 2.0
#define X 1.5
#define P 1.0
#define Q 0.0
#define R 1.0
#define U 4.0
#define V 5.0
#define CASE(e) {#e, (double)(e)}
/* The cases mix operators on purpose, without the parentheses the
   compiler suggests. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wparentheses"
static const constant_case precedence_cases[] = {
    CASE(A - B - C),
    CASE(A / B / C),
    CASE(A / B * C),
    CASE(A - B + C),
    CASE(-X * X),
    CASE(2 * -X),
    CASE(-A - -B),
    CASE(A + B * C),
    CASE((A + B) * C),
    CASE(A + B < C * U),
    CASE(A < B == C < U),
    CASE(A - B < C == Q),
    CASE(!A + B),
    CASE(!Q * A),
    CASE(P ? Q : R ? U : V),
    CASE(Q ? A : R ? U : V),
    CASE(P ? Q ? A : B : C),
    CASE(A > B ? A - B : B - A),
    CASE(Q && A || P),
    CASE(Q || P && A),
    CASE(A == B || C < U && P),
    CASE(-+-X),
    CASE(A * B / C - U * V),
    CASE(A >= 7 == 1),
};
#pragma GCC diagnostic pop
#undef CASE

START_TEST(test_precedence) {
  const char *names[] = {"A", "B", "C", "X", "P", "Q", "R", "U", "V"};
  const double values[] = {A, B, C, X, P, Q, R, U, V};
  const constant_case *k = &precedence_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  double got = eval_at(ctx, k->text, 9, names, values, NULL);
  ck_assert_msg(got == k->expected, "%s gave %.17g, expected %.17g", k->text, got, k->expected);
  ad_ctx_free(ctx);
}
END_TEST
#undef A
#undef B
#undef C
#undef X
#undef P
#undef Q
#undef R
#undef U
#undef V

/* The else branch of ?: is itself a conditional, and ?: binds loosest. */
START_TEST(test_conditional_grouping) {
  const char *names[] = {"x", "y", "z", "u", "v"};
  const double values[] = {1, 0, 0, 4, 5};
  ad_ctx *ctx = ad_ctx_new(NULL);
  /* x ? y : (z ? u : v) is 0; (x ? y : z) ? u : v would be 5. */
  ck_assert_double_eq(eval_at(ctx, "x ? y : z ? u : v", 5, names, values, NULL), 0);
  ck_assert_double_eq(eval_at(ctx, "(x ? y : z) ? u : v", 5, names, values, NULL), 5);
  /* x + 1 ? u : v is (x + 1) ? u : v. */
  ck_assert_double_eq(eval_at(ctx, "y + 1 ? u : v", 5, names, values, NULL), 4);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_spaces_and_comments) {
  const char *names[] = {"x"};
  const double x = 2;
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_double_eq(eval_at(ctx, " \t x /* half */ * 3 // end\n + 1\n", 1, names, &x, NULL),
                      7);
  ck_assert_double_eq(eval_at(ctx, "x/ /*y*/2", 1, names, &x, NULL), 1);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Variables --------------------------------------------------------- */

START_TEST(test_variable_list) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "x*y + sin(x) + z*x + M_PI*r", NULL);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(ad_expr_var_count(e), 4);
  ck_assert_str_eq(ad_expr_var_name(e, 0), "x");
  ck_assert_str_eq(ad_expr_var_name(e, 1), "y");
  ck_assert_str_eq(ad_expr_var_name(e, 2), "z");
  ck_assert_str_eq(ad_expr_var_name(e, 3), "r");
  ck_assert_ptr_null(ad_expr_var_name(e, 4));
  ck_assert_ptr_null(ad_expr_var_name(e, -1));
  ck_assert_int_eq(ad_expr_var_index(e, "z"), 2);
  ck_assert_int_eq(ad_expr_var_index(e, "M_PI"), -1);
  ck_assert_int_eq(ad_expr_var_index(e, "sin"), -1);
  ck_assert_int_eq(ad_expr_var_index(e, "w"), -1);
  ck_assert_str_eq(ad_expr_text(e), "x*y + sin(x) + z*x + M_PI*r");
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* Many distinct variables go through the hash table's growth. */
START_TEST(test_many_variables) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char text[20000];
  size_t used = 0;
  for (int i = 0; i < 1000; i++)
    used += (size_t)snprintf(text + used, sizeof text - used, "%sv%d", i ? " + " : "", i);
  ad_expr *e = ad_expr_parse(ctx, text, NULL);
  ck_assert_ptr_nonnull(e);
  ck_assert_int_eq(ad_expr_var_count(e), 1000);
  ck_assert_str_eq(ad_expr_var_name(e, 999), "v999");
  ck_assert_int_eq(ad_expr_var_index(e, "v500"), 500);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Errors ------------------------------------------------------------ */

typedef struct error_case {
  const char *text;
  ad_status status;
  size_t offset, length;
  const char *reason; /* a part of the reason */
} error_case;

static const error_case error_cases[] = {
    {"x^2", AD_ERR_NOT_IMPLEMENTED, 1, 1, "not a power; write pow(x, 2)"},
    {"(x + 1)^2", AD_ERR_NOT_IMPLEMENTED, 7, 1, "write pow(x + 1, 2)"},
    {"-x^-0.5", AD_ERR_NOT_IMPLEMENTED, 2, 1, "write pow(x, -0.5)"},
    {"sin(x)^y", AD_ERR_NOT_IMPLEMENTED, 6, 1, "write pow(sin(x), y)"},
    {"x**2", AD_ERR_NOT_IMPLEMENTED, 1, 2, "'**' is not a power in C; write pow(x, y)"},
    {"x + * 2", AD_ERR_FORMAT, 4, 1, "expected an operand after '+', found '*'"},
    {"x +", AD_ERR_FORMAT, 3, 0, "expected an operand after '+', found the end of the expression"},
    {"", AD_ERR_FORMAT, 0, 0, "the expression is empty"},
    {"   ", AD_ERR_FORMAT, 3, 0, "the expression is empty"},
    {"sin(x", AD_ERR_FORMAT, 5, 0, "expected ',' or ')' in the call of sin opened at column 4"},
    {"(x + 1", AD_ERR_FORMAT, 6, 0, "expected ')' to close the '(' at column 1"},
    {"x + 1)", AD_ERR_FORMAT, 5, 1, "unmatched ')'"},
    {"()", AD_ERR_FORMAT, 1, 1, "expected an operand, found ')'"},
    {"foo(x)", AD_ERR_FORMAT, 0, 3, "unknown function foo; the supported functions are sin,"},
    {"sine(x)", AD_ERR_FORMAT, 0, 4, "unknown function sine; did you mean sin?"},
    {"exq(x)", AD_ERR_FORMAT, 0, 3, "did you mean exp?"},
    {"floor(x)", AD_ERR_NOT_IMPLEMENTED, 0, 5, "floor is not supported"},
    {"sinf(x)", AD_ERR_NOT_IMPLEMENTED, 0, 4, "call sin, which computes in double"},
    {"sin(x, y)", AD_ERR_FORMAT, 0, 9, "sin takes 1 argument, found 2"},
    {"pow(x)", AD_ERR_FORMAT, 0, 6, "pow takes 2 arguments, found 1"},
    {"atan2()", AD_ERR_FORMAT, 0, 7, "atan2 takes 2 arguments, found 0"},
    {"hypot(1, 2, 3)", AD_ERR_FORMAT, 0, 14, "hypot takes 2 arguments, found 3"},
    {"sin + 1", AD_ERR_FORMAT, 0, 3, "sin is a function, not a variable; call it as sin(x)"},
    {"pow * 2", AD_ERR_FORMAT, 0, 3, "pow is a function, not a variable; call it as pow(x, y)"},
    {"isnan + 1", AD_ERR_FORMAT, 0, 5, "isnan is a <math.h> name, not a variable"},
    {"M_PIl * 2", AD_ERR_FORMAT, 0, 5, "M_PIl is a <math.h> name, not a variable"},
    {"x + M_SQRT1_2f64x", AD_ERR_FORMAT, 4, 13, "M_SQRT1_2f64x is a <math.h> name"},
    {"SNAN", AD_ERR_FORMAT, 0, 4, "SNAN is a <math.h> name"},
    {"M_PI(2)", AD_ERR_FORMAT, 0, 4, "unknown function M_PI"},
    {"x = 2", AD_ERR_NOT_IMPLEMENTED, 2, 1, "assignment is not supported; for a comparison write '=='"},
    {"x += 2", AD_ERR_NOT_IMPLEMENTED, 2, 2, "assignment is not supported"},
    {"x % 2", AD_ERR_NOT_IMPLEMENTED, 2, 1, "the remainder operator '%' is not supported"},
    {"x & y", AD_ERR_NOT_IMPLEMENTED, 2, 1, "for a logical and write '&&'"},
    {"x | y", AD_ERR_NOT_IMPLEMENTED, 2, 1, "for a logical or write '||'"},
    {"x << 1", AD_ERR_NOT_IMPLEMENTED, 2, 2, "the shift operator '<<' is not supported"},
    {"~x", AD_ERR_NOT_IMPLEMENTED, 0, 1, "the bitwise complement '~' is not supported"},
    {"&x", AD_ERR_NOT_IMPLEMENTED, 0, 1, "the unary '&' (address of) is not supported"},
    {"x++", AD_ERR_NOT_IMPLEMENTED, 1, 2, "'++' is not supported"},
    {"--x", AD_ERR_NOT_IMPLEMENTED, 0, 2, "'--' is not supported"},
    {"a[1]", AD_ERR_NOT_IMPLEMENTED, 1, 1, "subscripts are not supported"},
    {"a.b", AD_ERR_NOT_IMPLEMENTED, 1, 1, "member access is not supported"},
    {"x;", AD_ERR_NOT_IMPLEMENTED, 1, 1, "';' ends a statement"},
    {"a, b", AD_ERR_NOT_IMPLEMENTED, 1, 1, "the comma operator is not supported"},
    {"(a, b)", AD_ERR_NOT_IMPLEMENTED, 2, 1, "the comma operator is not supported"},
    {"'a'", AD_ERR_NOT_IMPLEMENTED, 0, 3, "character constants are not supported"},
    {"\"s\" + 1", AD_ERR_NOT_IMPLEMENTED, 0, 3, "string literals are not supported"},
    {"\"s", AD_ERR_FORMAT, 0, 1, "unterminated string literal"},
    {"2x", AD_ERR_FORMAT, 0, 2, "invalid suffix 'x' on integer constant '2'; for a product write 2*x"},
    {"1f", AD_ERR_FORMAT, 0, 2, "write 1.0f for a float constant"},
    {"0b101", AD_ERR_FORMAT, 0, 5, "binary constant '0b101' is not C11"},
    {"1.2.3", AD_ERR_FORMAT, 0, 5, "invalid suffix '.3' on floating constant '1.2.3'"},
    {"1e", AD_ERR_FORMAT, 0, 2, "exponent of '1e' has no digits"},
    {"1e+x", AD_ERR_FORMAT, 0, 4, "exponent of '1e+x' has no digits"},
    {"0x1.8", AD_ERR_FORMAT, 0, 5, "needs an exponent, such as p0"},
    {"0x", AD_ERR_FORMAT, 0, 2, "hexadecimal constant '0x' has no digits"},
    {"09", AD_ERR_FORMAT, 0, 2, "invalid digit '9' in octal constant '09'"},
    {"1uu", AD_ERR_FORMAT, 0, 3, "invalid suffix 'uu'"},
    {"1lL", AD_ERR_FORMAT, 0, 3, "invalid suffix 'lL'"},
    {"1.5u", AD_ERR_FORMAT, 0, 4, "invalid suffix 'u' on floating constant"},
    {"99999999999999999999", AD_ERR_FORMAT, 0, 20, "is too large for its type"},
    {"9223372036854775808", AD_ERR_FORMAT, 0, 19, "is too large for its type"},
    {"x @ y", AD_ERR_FORMAT, 2, 1, "invalid character: '@'"},
    {"x $ y", AD_ERR_FORMAT, 2, 1, "invalid character: '$'"},
    {"x \x01 y", AD_ERR_FORMAT, 2, 1, "invalid character: the byte 0x01"},
    {"x \xff y", AD_ERR_FORMAT, 2, 1, "invalid character: the byte 0xFF"},
    {"x \xc3\x97 y", AD_ERR_FORMAT, 2, 2, "invalid character: '\xc3\x97'"},
    {"x /* y", AD_ERR_FORMAT, 2, 2, "unterminated comment"},
    {"int + 1", AD_ERR_FORMAT, 0, 3, "'int' is a type name, not a variable"},
    {"sizeof(x)", AD_ERR_FORMAT, 0, 6, "'sizeof' is a C keyword, not a variable"},
    {"(int)x", AD_ERR_NOT_IMPLEMENTED, 0, 5, "only the cast (double) is supported"},
    {"(float)x", AD_ERR_NOT_IMPLEMENTED, 0, 7, "only the cast (double) is supported"},
    {"(double x", AD_ERR_FORMAT, 8, 1, "expected ')' after the type name of the cast at column 1"},
    {"x ? y", AD_ERR_FORMAT, 5, 0, "expected ':' for the '?' at column 3"},
    {"x ? y : z ? u", AD_ERR_FORMAT, 13, 0, "expected ':' for the '?' at column 11"},
    {"x : y", AD_ERR_FORMAT, 2, 1, "':' without a matching '?'"},
    {"x y", AD_ERR_FORMAT, 2, 1, "expected an operator before the name 'y'; for a product write '*'"},
    {"2 3", AD_ERR_FORMAT, 2, 1, "expected an operator before the number '3'"},
    {"(x)(y)", AD_ERR_FORMAT, 3, 1, "expected an operator before '('"},
    {"2147483647 + 1", AD_ERR_FORMAT, 11, 1, "signed integer overflow in a constant expression"},
    {"-9223372036854775807 - 2", AD_ERR_FORMAT, 21, 1, "signed integer overflow"},
    {"9223372036854775807 + 1", AD_ERR_FORMAT, 20, 1,
     "write one operand as a floating constant (add .0, as in 3.0)"},
    {"65536 * 65536", AD_ERR_FORMAT, 6, 1, "signed integer overflow"},
    {"-(-2147483647 - 1)", AD_ERR_FORMAT, 0, 1, "signed integer overflow"},
    {"1 / 0", AD_ERR_FORMAT, 2, 1, "integer division by zero"},
    {"(x > 0) / 2", AD_ERR_NOT_IMPLEMENTED, 8, 1, "integer division truncates in C"},
    {"(x > 0) - 1u", AD_ERR_NOT_IMPLEMENTED, 8, 1, "unsigned arithmetic on a value that depends"},
    {"-(x > 0 ? 1u : 2u)", AD_ERR_NOT_IMPLEMENTED, 0, 1, "unsigned arithmetic"},
    {"(x > 0 ? .5f : 1.f) * 3.f", AD_ERR_NOT_IMPLEMENTED, 20, 1, "float arithmetic on a value"},
    {"(x > 0) * 9007199254740993LL", AD_ERR_NOT_IMPLEMENTED, 8, 1, "may exceed 2^53"},
    {"(x > 0 ? .5f : 1.f) < 16777217", AD_ERR_NOT_IMPLEMENTED, 20, 1, "above 2^24"},
    {"x +\n  * 2", AD_ERR_FORMAT, 6, 1, "expected an operand after '+', found '*'"},
};

START_TEST(test_error) {
  const error_case *c = &error_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr_error error;
  ad_expr *e = ad_expr_parse(ctx, c->text, &error);
  ck_assert_msg(e == NULL, "'%s' parsed", c->text);
  ck_assert_int_eq(error.status, c->status);
  ck_assert_int_eq(ad_errcode(ctx), c->status);
  ck_assert_uint_eq(error.offset, c->offset);
  ck_assert_uint_eq(error.length, c->length);
  ck_assert_msg(strstr(error.reason, c->reason) != NULL, "'%s': reason '%s' lacks '%s'", c->text,
                error.reason, c->reason);
  ck_assert_msg(strstr(ad_errmsg(ctx), error.reason) != NULL, "'%s': message '%s'", c->text,
                ad_errmsg(ctx));
  ad_ctx_free(ctx);
}
END_TEST

/* The character of the echoed line that the caret points at, from a
   message "...\n  <line>\n  <spaces>^~~". Returns '\0' when the caret is
   past the end of the line. */
static char caret_target(const char *message) {
  const char *line = strchr(message, '\n');
  ck_assert_ptr_nonnull(line);
  line++;
  const char *caret_line = strchr(line, '\n');
  ck_assert_ptr_nonnull(caret_line);
  caret_line++;
  const char *caret = strchr(caret_line, '^');
  ck_assert_ptr_nonnull(caret);
  size_t column = (size_t)(caret - caret_line);
  /* Columns count characters; UTF-8 continuation bytes take none. */
  for (const char *c = line; *c != '\n'; c++) {
    if (((unsigned char)*c & 0xC0) == 0x80) continue;
    if (column-- == 0) return *c;
  }
  return '\0';
}

START_TEST(test_caret_lines) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr_error error;
  ck_assert_ptr_null(ad_expr_parse(ctx, "x + * 2", &error));
  ck_assert_str_eq(ad_errmsg(ctx),
                   "ad_expr_parse: column 5: expected an operand after '+', found '*'\n"
                   "  x + * 2\n"
                   "      ^");
  ck_assert_int_eq(error.line, 1);
  ck_assert_int_eq(error.column, 5);
  ad_clear_error(ctx);

  ck_assert_ptr_null(ad_expr_parse(ctx, "pow(x, 2) + foo(y)", &error));
  ck_assert_str_eq(ad_errmsg(ctx),
                   "ad_expr_parse: column 13: unknown function foo; the supported functions are "
                   "sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh, exp, exp2, expm1, "
                   "log, log2, log10, log1p, sqrt, cbrt, pow, hypot, fabs, fmin, fmax, erf, erfc\n"
                   "  pow(x, 2) + foo(y)\n"
                   "              ^~~");
  ad_clear_error(ctx);

  ck_assert_ptr_null(ad_expr_parse(ctx, "x +\n  * 2", &error));
  ck_assert_int_eq(error.line, 2);
  ck_assert_int_eq(error.column, 3);
  ck_assert_str_eq(ad_errmsg(ctx),
                   "ad_expr_parse: line 2, column 3: expected an operand after '+', found '*'\n"
                   "    * 2\n"
                   "    ^");
  ad_clear_error(ctx);

  /* Columns count characters: the caret stays under the '#' after the
     two-byte character in the comment. */
  ck_assert_ptr_null(ad_expr_parse(ctx, "/* \xc3\x97 */ x # y", &error));
  ck_assert_int_eq(error.column, 11);
  ck_assert_int_eq(caret_target(ad_errmsg(ctx)), '#');
  ad_ctx_free(ctx);
}
END_TEST

/* A long line is cut around the error, and the caret still points at it. */
START_TEST(test_caret_in_long_line) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char text[1200];
  size_t used = 0;
  for (int i = 0; i < 100; i++) used += (size_t)snprintf(text + used, sizeof text - used, "x%d + ", i);
  snprintf(text + used, sizeof text - used, "@ + y");
  ad_expr_error error;
  ck_assert_ptr_null(ad_expr_parse(ctx, text, &error));
  ck_assert_uint_eq(error.offset, used);
  const char *message = ad_errmsg(ctx);
  ck_assert_ptr_nonnull(strstr(message, "\n  ..."));
  ck_assert_int_eq(caret_target(message), '@');
  ck_assert_uint_lt(strlen(message), 400);
  ad_ctx_free(ctx);
}
END_TEST

/* A NUL byte inside the text is an invalid character, not its end. */
START_TEST(test_nul_inside_text) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr_error error;
  ck_assert_ptr_null(ad_expr_parse_n(ctx, "x\0y", 3, &error));
  ck_assert_int_eq(error.status, AD_ERR_FORMAT);
  ck_assert_uint_eq(error.offset, 1);
  ck_assert_str_eq(error.reason, "invalid character: the byte 0x00");
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_null_arguments) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr_error error;
  ck_assert_ptr_null(ad_expr_parse(ctx, NULL, &error));
  ck_assert_int_eq(error.status, AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_null(ad_expr_parse(NULL, "x", &error));
  ck_assert_int_eq(error.status, AD_ERR_ARGUMENT);
  ad_expr_free(NULL);
  ck_assert_int_eq(ad_expr_var_count(NULL), 0);
  ck_assert_ptr_null(ad_expr_var_name(NULL, 0));
  ck_assert_int_eq(ad_expr_var_index(NULL, "x"), -1);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Depth ------------------------------------------------------------- */

/* text made of count copies of open, then middle, then count copies of close. */
static char *nested(const char *open, const char *middle, const char *close, int count) {
  size_t size = (strlen(open) + strlen(close)) * (size_t)count + strlen(middle) + 1;
  char *text = malloc(size);
  ck_assert_ptr_nonnull(text);
  char *end = text;
  for (int i = 0; i < count; i++) end = stpcpy(end, open);
  end = stpcpy(end, middle);
  for (int i = 0; i < count; i++) end = stpcpy(end, close);
  return text;
}

typedef struct depth_case {
  const char *open, *close;
} depth_case;

/* Every recursive construct is allowed AD_EXPR_MAX_DEPTH levels and fails
   cleanly beyond, far beyond included. */
static const depth_case depth_cases[] = {
    {"(", ")"},      {"- ", ""},      {"!", ""},        {"+ ", ""},         {"sin(", ")"},
    {"pow(x, ", ")"}, {"(double)", ""}, {"x ? x : ", ""}, {"x ? ", " : x"},
};

START_TEST(test_depth_limit) {
  const depth_case *c = &depth_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr_error error;

  char *ok = nested(c->open, "x", c->close, AD_EXPR_MAX_DEPTH);
  ad_expr *e = ad_expr_parse(ctx, ok, &error);
  ck_assert_msg(e != NULL, "%s...: %s", c->open, ad_errmsg(ctx));
  ad_expr_free(e);
  free(ok);

  int counts[] = {AD_EXPR_MAX_DEPTH + 1, 100000};
  for (int k = 0; k < 2; k++) {
    char *deep = nested(c->open, "x", c->close, counts[k]);
    ck_assert_ptr_null(ad_expr_parse(ctx, deep, &error));
    ck_assert_int_eq(error.status, AD_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(error.reason, "nests deeper than 200 levels"));
    ad_clear_error(ctx);
    free(deep);
  }
  ad_ctx_free(ctx);
}
END_TEST

/* Long chains of left-associative operators need no recursion. */
START_TEST(test_long_flat_chain) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  size_t count = 200000;
  char *text = malloc(4 * count + 2);
  ck_assert_ptr_nonnull(text);
  size_t used = 0;
  for (size_t i = 0; i < count; i++) {
    memcpy(text + used, i ? " + x" : "x", i ? 4 : 1);
    used += i ? 4 : 1;
  }
  text[used] = '\0';
  const char *names[] = {"x"};
  const double x = 0.5;
  double gradient;
  ck_assert_double_eq(eval_at(ctx, text, 1, names, &x, &gradient), 0.5 * (double)count);
  ck_assert_double_eq(gradient, (double)count);
  free(text);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *parse_suite(void) {
  Suite *s = suite_create("expr_parse");
  TCase *tc;

  tc = tcase_create("constants");
  tcase_add_loop_test(tc, test_numeric_constants, 0, COUNT(constant_cases));
  tcase_add_test(tc, test_nan_constant);
  suite_add_tcase(s, tc);

  tc = tcase_create("c_types");
  tcase_add_loop_test(tc, test_c_types, 0, COUNT(type_cases));
  tcase_add_loop_test(tc, test_integer_values_with_variables, 0, COUNT(integer_cases));
  suite_add_tcase(s, tc);

  tc = tcase_create("precedence");
  tcase_add_loop_test(tc, test_precedence, 0, COUNT(precedence_cases));
  tcase_add_test(tc, test_conditional_grouping);
  tcase_add_test(tc, test_spaces_and_comments);
  suite_add_tcase(s, tc);

  tc = tcase_create("variables");
  tcase_add_test(tc, test_variable_list);
  tcase_add_test(tc, test_many_variables);
  suite_add_tcase(s, tc);

  tc = tcase_create("errors");
  tcase_add_loop_test(tc, test_error, 0, COUNT(error_cases));
  tcase_add_test(tc, test_caret_lines);
  tcase_add_test(tc, test_caret_in_long_line);
  tcase_add_test(tc, test_nul_inside_text);
  tcase_add_test(tc, test_null_arguments);
  suite_add_tcase(s, tc);

  tc = tcase_create("depth");
  tcase_add_loop_test(tc, test_depth_limit, 0, COUNT(depth_cases));
  tcase_add_test(tc, test_long_flat_chain);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(parse_suite()); }
