/*
 * parser.c: recursive descent over C's expression grammar (C11 6.5), from
 * the conditional expression down to primary expressions.
 *
 *   conditional := binary [ '?' conditional ':' conditional ]
 *   binary      := unary { operator unary }, by precedence climbing over
 *                  || && (== !=) (< <= > >=) (+ -) (* /), all left-associative
 *   unary       := ('-' | '+' | '!') unary | '(' 'double' ')' unary | postfix
 *   postfix     := primary, which no '^', '[', '++' ... may follow
 *   primary     := number | name | name '(' arguments ')' | '(' conditional ')'
 *
 * Each function returns the index of the node it built, or -1 once the
 * parse has failed; the first failure is the one reported. The recursion
 * for parentheses, calls, unary operators and ?: counts its depth and
 * fails beyond AD_EXPR_MAX_DEPTH. Precedence climbing adds at most one
 * frame per precedence level, so the C stack stays bounded by the limit.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lexer.h"
#include "text.h"
#include "types.h"

typedef struct parser {
  ad_ctx *ctx;
  ad_expr *expr;
  const char *text;
  size_t length;
  token tok;  /* the current token */
  token prev; /* the token before it; TOK_END at the start */
  int depth;
  bool failed;
  ad_expr_error *error;
} parser;

static void advance(parser *p) {
  p->prev = p->tok;
  p->tok = lex_token(p->text, p->length, p->tok.offset + p->tok.length);
}

static token peek(const parser *p) {
  return lex_token(p->text, p->length, p->tok.offset + p->tok.length);
}

/* ---- Errors ----------------------------------------------------------- */

static void record_failure(parser *p, ad_status status, size_t offset, size_t length,
                           const char *reason) {
  ad_expr_error *e = p->error;
  e->status = status;
  e->offset = offset;
  e->length = length;
  expr_position(p->text, offset, &e->line, &e->column);
  snprintf(e->reason, sizeof e->reason, "%s", reason);
  if (status == AD_ERR_MEMORY) return; /* ad_malloc recorded it */
  char lines[400];
  expr_caret_lines(p->text, p->length, offset, length, lines, sizeof lines);
  if (e->line > 1)
    ad_set_error(p->ctx, status, "ad_expr_parse: line %d, column %d: %s\n%s", e->line, e->column,
                 reason, lines);
  else
    ad_set_error(p->ctx, status, "ad_expr_parse: column %d: %s\n%s", e->column, reason, lines);
}

/* Fails the parse at text[offset, offset + length) with a formatted reason.
   Returns -1 so that callers can return its result. */
static int32_t fail_at(parser *p, ad_status status, size_t offset, size_t length,
                       const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static int32_t fail_at(parser *p, ad_status status, size_t offset, size_t length,
                       const char *format, ...) {
  if (p->failed) return -1;
  p->failed = true;
  char reason[sizeof p->error->reason];
  va_list args;
  va_start(args, format);
  vsnprintf(reason, sizeof reason, format, args);
  va_end(args);
  record_failure(p, status, offset, length, reason);
  return -1;
}

/* The position to report for token t: the end of the text is shown just
   after the previous token, where the missing text belongs. */
static size_t report_offset(const parser *p, token t) {
  if (t.kind == TOK_END && p->prev.kind != TOK_END) return p->prev.offset + p->prev.length;
  return t.offset;
}

static int32_t fail_memory(parser *p) {
  if (p->failed) return -1;
  p->failed = true;
  record_failure(p, AD_ERR_MEMORY, p->tok.offset, p->tok.length, "out of memory");
  return -1;
}

/* A short description of token t for "found ..." in messages. */
static const char *describe(const parser *p, token t, char *out, size_t capacity) {
  char excerpt[40];
  expr_excerpt(p->text, t.offset, t.offset + t.length, excerpt, sizeof excerpt);
  switch (t.kind) {
  case TOK_END: snprintf(out, capacity, "the end of the expression"); break;
  case TOK_NUMBER: snprintf(out, capacity, "the number '%s'", excerpt); break;
  case TOK_NAME: snprintf(out, capacity, "the name '%s'", excerpt); break;
  case TOK_INVALID:
    if (t.length == 1 && ((unsigned char)p->text[t.offset] < 0x20 ||
                          (unsigned char)p->text[t.offset] >= 0x7F))
      snprintf(out, capacity, "the byte 0x%02X", (unsigned char)p->text[t.offset]);
    else
      snprintf(out, capacity, "'%s'", excerpt);
    break;
  default: snprintf(out, capacity, "'%s'", excerpt); break;
  }
  return out;
}

static int column_of(const parser *p, size_t offset) {
  int line, column;
  expr_position(p->text, offset, &line, &column);
  return column;
}

static bool token_is(const parser *p, token t, const char *text) {
  size_t n = strlen(text);
  return t.length == n && memcmp(p->text + t.offset, text, n) == 0;
}

/* Returns why a C punctuator, string or character constant is not
   supported. */
static const char *unsupported_reason(const parser *p, token t) {
  static const struct {
    const char *token;
    const char *reason;
  } reasons[] = {
      {"^", "'^' is bitwise exclusive or in C, not a power; write pow(x, y)"},
      {"%", "the remainder operator '%' is not supported"},
      {"&", "the bitwise operator '&' is not supported; for a logical and write '&&'"},
      {"|", "the bitwise operator '|' is not supported; for a logical or write '||'"},
      {"~", "the bitwise complement '~' is not supported"},
      {"<<", "the shift operator '<<' is not supported"},
      {">>", "the shift operator '>>' is not supported"},
      {"=", "assignment is not supported; for a comparison write '=='"},
      {"++", "'++' is not supported: an expression must not modify a variable"},
      {"--", "'--' is not supported: an expression must not modify a variable"},
      {"[", "subscripts are not supported"},
      {"]", "subscripts are not supported"},
      {".", "member access is not supported"},
      {"->", "member access is not supported"},
      {";", "';' ends a statement and is not part of an expression; remove it"},
      {"{", "braces are not part of an expression"},
      {"}", "braces are not part of an expression"},
      {"...", "'...' is not part of an expression"},
  };
  char c = p->text[t.offset];
  if (c == '"') return "string literals are not supported";
  if (c == '\'') return "character constants are not supported";
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (token_is(p, t, reasons[i].token)) return reasons[i].reason;
  if (t.length == 2 && p->text[t.offset + 1] == '=')
    return "assignment is not supported: an expression must not modify a variable";
  if (c == '#') return "preprocessor operators are not part of an expression";
  return "digraphs are not supported";
}

static int32_t fail_unsupported(parser *p, token t) {
  return fail_at(p, AD_ERR_NOT_IMPLEMENTED, t.offset, t.length, "%s", unsupported_reason(p, t));
}

static int32_t fail_invalid(parser *p, token t) {
  char found[64];
  if (t.problem && strcmp(t.problem, "invalid character") != 0)
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length, "%s", t.problem);
  return fail_at(p, AD_ERR_FORMAT, t.offset, t.length, "invalid character: %s",
                 describe(p, t, found, sizeof found));
}

/* ---- Nodes ------------------------------------------------------------ */

/* Appends a node over text[start, end) and gives it its type; a typing
   failure is reported at token at. */
static int32_t add_node(parser *p, expr_op op, int32_t a, int32_t b, int32_t c, size_t start,
                        size_t end, token at) {
  expr_node n;
  memset(&n, 0, sizeof n);
  n.op = (uint8_t)op;
  n.type = CT_DOUBLE;
  n.arg[0] = a;
  n.arg[1] = b;
  n.arg[2] = c;
  n.var = -1;
  n.start = (int32_t)start;
  n.end = (int32_t)end;
  int32_t index = expr_add_node(p->expr, &n);
  if (index < 0) return fail_memory(p);
  if (op == EXPR_CONST || op == EXPR_VAR) return index;
  char message[sizeof p->error->reason];
  ad_status st = type_node(p->expr->nodes, index, message, sizeof message);
  if (st != AD_OK) return fail_at(p, st, at.offset, at.length, "%s", message);
  return index;
}

static expr_node *node(parser *p, int32_t index) { return &p->expr->nodes[index]; }

/* ---- Grammar ---------------------------------------------------------- */

static int32_t parse_conditional(parser *p);
static int32_t parse_unary(parser *p);

static bool enter(parser *p) {
  if (++p->depth <= AD_EXPR_MAX_DEPTH) return true;
  fail_at(p, AD_ERR_FORMAT, p->tok.offset, p->tok.length,
          "the expression nests deeper than %d levels of parentheses, calls, unary operators "
          "and ?: branches",
          AD_EXPR_MAX_DEPTH);
  return false;
}

static void leave(parser *p) { p->depth--; }

static bool is_operator_token(tok_kind kind) { return kind >= TOK_PLUS && kind <= TOK_NOT; }

/* "expected an operand ..., found X" at the current token. */
static int32_t fail_operand(parser *p) {
  token t = p->tok;
  if (t.kind == TOK_UNSUPPORTED) return fail_unsupported(p, t);
  if (t.kind == TOK_INVALID) return fail_invalid(p, t);
  char found[64], after[64];
  size_t at = report_offset(p, t);
  if (p->prev.kind == TOK_END && t.kind == TOK_END)
    return fail_at(p, AD_ERR_FORMAT, at, 0, "the expression is empty");
  if (is_operator_token(p->prev.kind) && p->prev.kind != TOK_LPAREN)
    return fail_at(p, AD_ERR_FORMAT, at, t.length, "expected an operand after %s, found %s",
                   describe(p, p->prev, after, sizeof after), describe(p, t, found, sizeof found));
  return fail_at(p, AD_ERR_FORMAT, at, t.length, "expected an operand, found %s",
                 describe(p, t, found, sizeof found));
}

static int32_t parse_number(parser *p) {
  token t = p->tok;
  number value;
  char message[sizeof p->error->reason];
  ad_status st = convert_number(p->ctx, p->text + t.offset, t.length, &value, message,
                                sizeof message);
  if (st == AD_ERR_MEMORY) return fail_memory(p);
  if (st != AD_OK) return fail_at(p, st, t.offset, t.length, "%s", message);
  int32_t index = add_node(p, EXPR_CONST, -1, -1, -1, t.offset, t.offset + t.length, t);
  if (index < 0) return -1;
  expr_node *n = node(p, index);
  if (c_type_is_integer(value.type)) {
    set_integer_constant(n, value.type, value.bits);
  } else {
    n->type = (uint8_t)value.type;
    n->is_const = true;
    n->value = value.value;
  }
  advance(p);
  return index;
}

/* name '(' arguments ')' for the function op; the current token is the name. */
static int32_t parse_call(parser *p, expr_op op) {
  token name = p->tok;
  advance(p);
  token open = p->tok;
  if (!enter(p)) return -1;
  advance(p);
  int32_t args[2] = {-1, -1};
  int count = 0;
  if (p->tok.kind != TOK_RPAREN) {
    for (;;) {
      int32_t a = parse_conditional(p);
      if (a < 0) return -1;
      if (count < 2) args[count] = a;
      count++;
      if (p->tok.kind != TOK_COMMA) break;
      advance(p);
    }
  }
  leave(p);

  const expr_op_def *def = &expr_ops[op];
  if (p->tok.kind != TOK_RPAREN) {
    char found[64];
    if (p->tok.kind == TOK_UNSUPPORTED || p->tok.kind == TOK_INVALID) return fail_operand(p);
    return fail_at(p, AD_ERR_FORMAT, report_offset(p, p->tok), p->tok.length,
                   "expected ',' or ')' in the call of %s opened at column %d, found %s",
                   def->name, column_of(p, open.offset), describe(p, p->tok, found, sizeof found));
  }
  token close = p->tok;
  if (count != def->arity)
    return fail_at(p, AD_ERR_FORMAT, name.offset, close.offset + 1 - name.offset,
                   "%s takes %d argument%s, found %d", def->name, def->arity,
                   def->arity == 1 ? "" : "s", count);
  advance(p);
  return add_node(p, op, args[0], args[1], -1, name.offset, close.offset + 1, name);
}

/* The words that make a C11 name a keyword. */
static bool is_keyword(const char *s, size_t n) {
  static const char *const keywords[] = {
      "auto",     "break",    "case",     "char",       "const",     "continue",   "default",
      "do",       "double",   "else",     "enum",       "extern",    "float",      "for",
      "goto",     "if",       "inline",   "int",        "long",      "register",   "restrict",
      "return",   "short",    "signed",   "sizeof",     "static",    "struct",     "switch",
      "typedef",  "union",    "unsigned", "void",       "volatile",  "while",      "_Alignas",
      "_Alignof", "_Atomic",  "_Bool",    "_Complex",   "_Generic",  "_Imaginary", "_Noreturn",
      "_Static_assert", "_Thread_local"};
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strlen(keywords[i]) == n && memcmp(keywords[i], s, n) == 0) return true;
  return false;
}

/* Keywords that can start a type name in a cast. */
static bool is_type_word(const parser *p, token t) {
  static const char *const words[] = {"void",   "char",     "short",   "int",      "long",
                                      "float",  "double",   "signed",  "unsigned", "_Bool",
                                      "_Complex", "const",  "volatile", "restrict", "_Atomic",
                                      "struct", "union",    "enum"};
  if (t.kind != TOK_NAME) return false;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (token_is(p, t, words[i])) return true;
  return false;
}

typedef struct named_constant {
  const char *name;
  c_type type;
  double value;
} named_constant;

/* The <math.h> constants: POSIX's M_ values and C's INFINITY, NAN (float)
   and HUGE_VAL (double). */
static const named_constant constants[] = {
    {"M_E", CT_DOUBLE, 2.718281828459045235360287471352662498},
    {"M_LOG2E", CT_DOUBLE, 1.442695040888963407359924681001892137},
    {"M_LOG10E", CT_DOUBLE, 0.434294481903251827651128918916605082},
    {"M_LN2", CT_DOUBLE, 0.693147180559945309417232121458176568},
    {"M_LN10", CT_DOUBLE, 2.302585092994045684017991454684364208},
    {"M_PI", CT_DOUBLE, 3.141592653589793238462643383279502884},
    {"M_PI_2", CT_DOUBLE, 1.570796326794896619231321691639751442},
    {"M_PI_4", CT_DOUBLE, 0.785398163397448309615660845819875721},
    {"M_1_PI", CT_DOUBLE, 0.318309886183790671537767526745028724},
    {"M_2_PI", CT_DOUBLE, 0.636619772367581343075535053490057448},
    {"M_2_SQRTPI", CT_DOUBLE, 1.128379167095512573896158903121545172},
    {"M_SQRT2", CT_DOUBLE, 1.414213562373095048801688724209698079},
    {"M_SQRT1_2", CT_DOUBLE, 0.707106781186547524400844362104849039},
    {"INFINITY", CT_FLOAT, HUGE_VAL},
    {"NAN", CT_FLOAT, NAN},
    {"HUGE_VAL", CT_DOUBLE, HUGE_VAL},
};

/* glibc's float, long double and _FloatN forms of the M_ constants, such
   as M_PIl and M_Ef32. */
static bool is_constant_variant(const char *s, size_t n) {
  static const char *const suffixes[] = {"f", "l", "f32", "f64", "f128", "f32x", "f64x"};
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    size_t base = strlen(constants[i].name);
    if (base >= n || memcmp(constants[i].name, s, base) != 0 || s[0] != 'M') continue;
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++)
      if (strlen(suffixes[k]) == n - base && memcmp(suffixes[k], s + base, n - base) == 0)
        return true;
  }
  return false;
}

/* Other <math.h> names, which are no variables: functions without a
   derivative here and macros. */
static bool is_other_math_name(const char *s, size_t n) {
  static const char *const names[] = {
      "acosh",     "asinh",      "atanh",       "ceil",       "copysign",   "fdim",
      "floor",     "fma",        "fmod",        "frexp",      "ilogb",      "ldexp",
      "lgamma",    "llrint",     "llround",     "logb",       "lrint",      "lround",
      "modf",      "nan",        "nearbyint",   "nextafter",  "nexttoward", "remainder",
      "remquo",    "rint",       "round",       "scalbln",    "scalbn",     "tgamma",
      "trunc",     "isnan",      "isinf",       "isfinite",   "isnormal",   "signbit",
      "fpclassify", "isgreater", "isgreaterequal", "isless",  "islessequal", "islessgreater",
      "isunordered", "HUGE_VALF", "HUGE_VALL",  "FP_NAN",     "FP_INFINITE", "FP_ZERO",
      "FP_SUBNORMAL", "FP_NORMAL", "MATH_ERRNO", "MATH_ERREXCEPT", "math_errhandling",
      "FP_ILOGB0", "FP_ILOGBNAN", "FP_FAST_FMA", "FP_FAST_FMAF", "FP_FAST_FMAL", "MAXFLOAT",
      /* glibc's extensions (glibc 2.36 with _GNU_SOURCE) */
      "FP_INT_DOWNWARD", "FP_INT_TONEAREST", "FP_INT_TONEARESTFROMZERO", "FP_INT_TOWARDZERO",
      "FP_INT_UPWARD", "FP_LLOGB0", "FP_LLOGBNAN", "HUGE_VAL_F128", "HUGE_VAL_F32",
      "HUGE_VAL_F32X", "HUGE_VAL_F64", "HUGE_VAL_F64X", "SNAN", "SNANF", "SNANF128", "SNANF32",
      "SNANF32X", "SNANF64", "SNANF64X", "SNANL", "iscanonical", "iseqsig", "issignaling",
      "issubnormal", "iszero"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0) return true;
  return is_constant_variant(s, n);
}

static bool is_constant_name(const char *s, size_t n) {
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
    if (strlen(constants[i].name) == n && memcmp(constants[i].name, s, n) == 0) return true;
  return false;
}

bool expr_is_reserved_name(const char *name, size_t length) {
  return is_keyword(name, length) || is_other_math_name(name, length) ||
         is_constant_name(name, length);
}

static const char supported_list[] =
    "sin, cos, tan, asin, acos, atan, atan2, sinh, cosh, tanh, exp, exp2, expm1, log, log2, "
    "log10, log1p, sqrt, cbrt, pow, hypot, fabs, fmin, fmax, erf, erfc";

/* The edit distance between two short names, capped at 3. */
static int edit_distance(const char *a, size_t n, const char *b, size_t m) {
  if (n > 15 || m > 15) return 3;
  int row[16];
  for (size_t j = 0; j <= m; j++) row[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int diagonal = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int above = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = diagonal + cost;
      if (above + 1 < best) best = above + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diagonal = above;
    }
  }
  return row[m] < 3 ? row[m] : 3;
}

static int32_t fail_unknown_function(parser *p, token t) {
  const char *s = p->text + t.offset;
  size_t n = t.length;
  char name[40];
  expr_excerpt(p->text, t.offset, t.offset + t.length, name, sizeof name);
  bool variant = n > 1 && (s[n - 1] == 'f' || s[n - 1] == 'l') && expr_find_function(s, n - 1) >= 0;
  if (variant)
    return fail_at(p, AD_ERR_NOT_IMPLEMENTED, t.offset, t.length,
                   "%s is not supported; call %.*s, which computes in double", name, (int)(n - 1),
                   s);
  if (is_other_math_name(s, n))
    return fail_at(p, AD_ERR_NOT_IMPLEMENTED, t.offset, t.length,
                   "%s is not supported; the functions with derivatives are %s", name,
                   supported_list);
  int best = -1, best_distance = 3;
  for (int op = EXPR_FIRST_FUNCTION; op < EXPR_OP_COUNT; op++) {
    const char *candidate = expr_ops[op].name;
    int d = edit_distance(s, n, candidate, strlen(candidate));
    if (d < best_distance) best = op, best_distance = d;
  }
  if (best >= 0 && best_distance <= (n > 3 ? 2 : 1))
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length, "unknown function %s; did you mean %s?",
                   name, expr_ops[best].name);
  return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                 "unknown function %s; the supported functions are %s", name, supported_list);
}

/* A name: a call, a constant or a variable. */
static int32_t parse_name(parser *p) {
  token t = p->tok;
  const char *s = p->text + t.offset;
  size_t n = t.length;
  char name[40];
  expr_excerpt(p->text, t.offset, t.offset + t.length, name, sizeof name);
  if (is_keyword(s, n)) {
    if (is_type_word(p, t))
      return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                     "'%s' is a type name, not a variable; a cast is written (double)x", name);
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                   "'%s' is a C keyword, not a variable", name);
  }

  int function = expr_find_function(s, n);
  if (peek(p).kind == TOK_LPAREN) {
    if (function < 0) return fail_unknown_function(p, t);
    return parse_call(p, (expr_op)function);
  }
  if (function >= 0)
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                   "%s is a function, not a variable; call it as %s(%s)", name, name,
                   expr_ops[function].arity == 2 ? "x, y" : "x");

  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
    if (!token_is(p, t, constants[i].name)) continue;
    int32_t index = add_node(p, EXPR_CONST, -1, -1, -1, t.offset, t.offset + n, t);
    if (index < 0) return -1;
    node(p, index)->type = (uint8_t)constants[i].type;
    node(p, index)->is_const = true;
    node(p, index)->value = constants[i].value;
    advance(p);
    return index;
  }
  if (is_other_math_name(s, n))
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                   "%s is a <math.h> name, not a variable", name);

  int32_t var = expr_intern_var(p->expr, s, n, t.offset);
  if (var < 0) return fail_memory(p);
  int32_t index = add_node(p, EXPR_VAR, -1, -1, -1, t.offset, t.offset + n, t);
  if (index < 0) return -1;
  node(p, index)->var = var;
  advance(p);
  return index;
}

static int32_t parse_parenthesized(parser *p) {
  token open = p->tok;
  if (!enter(p)) return -1;
  advance(p);
  int32_t inner = parse_conditional(p);
  leave(p);
  if (inner < 0) return -1;
  if (p->tok.kind != TOK_RPAREN) {
    char found[64];
    if (p->tok.kind == TOK_COMMA)
      return fail_at(p, AD_ERR_NOT_IMPLEMENTED, p->tok.offset, 1,
                     "the comma operator is not supported");
    if (p->tok.kind == TOK_UNSUPPORTED || p->tok.kind == TOK_INVALID) return fail_operand(p);
    return fail_at(p, AD_ERR_FORMAT, report_offset(p, p->tok), p->tok.length,
                   "expected ')' to close the '(' at column %d, found %s",
                   column_of(p, open.offset), describe(p, p->tok, found, sizeof found));
  }
  /* The node's text includes the parentheses, so that messages show it as
     written. */
  node(p, inner)->start = (int32_t)open.offset;
  node(p, inner)->end = (int32_t)(p->tok.offset + 1);
  advance(p);
  return inner;
}

static int32_t parse_primary(parser *p) {
  switch (p->tok.kind) {
  case TOK_NUMBER: return parse_number(p);
  case TOK_NAME: return parse_name(p);
  case TOK_LPAREN: return parse_parenthesized(p);
  default: return fail_operand(p);
  }
}

/* The text of the operand that starts at pos, found by scanning tokens: an
   optional sign, then a number, a name with an optional call, or a
   parenthesized group. Returns its end, or pos when there is none. */
static size_t operand_end(const parser *p, size_t pos) {
  token t = lex_token(p->text, p->length, pos);
  if (t.kind == TOK_MINUS || t.kind == TOK_PLUS) t = lex_token(p->text, p->length, t.offset + t.length);
  if (t.kind == TOK_NUMBER) return t.offset + t.length;
  if (t.kind == TOK_NAME) {
    token next = lex_token(p->text, p->length, t.offset + t.length);
    if (next.kind != TOK_LPAREN) return t.offset + t.length;
    t = next;
  }
  if (t.kind != TOK_LPAREN) return pos;
  int level = 0;
  for (;; t = lex_token(p->text, p->length, t.offset + t.length)) {
    if (t.kind == TOK_END || t.kind == TOK_INVALID) return pos;
    if (t.kind == TOK_LPAREN) level++;
    if (t.kind == TOK_RPAREN && --level == 0) return t.offset + t.length;
  }
}

/* Appends the operand text[start, end) to out, without one pair of
   enclosing parentheses. */
static void append_operand(const parser *p, size_t start, size_t end, char *out, size_t capacity) {
  token first = lex_token(p->text, p->length, start);
  if (first.kind == TOK_LPAREN && operand_end(p, start) == end && p->text[end - 1] == ')') {
    start = first.offset + 1;
    end--;
  }
  while (start < end && (p->text[start] == ' ' || p->text[start] == '\t')) start++;
  while (end > start && (p->text[end - 1] == ' ' || p->text[end - 1] == '\t')) end--;
  size_t used = strlen(out);
  expr_excerpt(p->text, start, end, out + used, capacity - used);
}

/* x ^ y after the operand text[start, end): suggest pow(x, y). */
static int32_t fail_caret_power(parser *p, size_t start, size_t end) {
  token caret = p->tok;
  size_t right_end = operand_end(p, caret.offset + 1);
  char suggestion[96] = "pow(";
  append_operand(p, start, end, suggestion, sizeof suggestion - 8);
  strcat(suggestion, ", ");
  if (right_end > caret.offset + 1) append_operand(p, caret.offset + 1, right_end, suggestion, sizeof suggestion - 2);
  else strcat(suggestion, "y");
  strcat(suggestion, ")");
  return fail_at(p, AD_ERR_NOT_IMPLEMENTED, caret.offset, caret.length,
                 "'^' is bitwise exclusive or in C, not a power; write %s", suggestion);
}

static int32_t parse_postfix(parser *p) {
  size_t start = p->tok.offset;
  int32_t a = parse_primary(p);
  if (a < 0) return -1;
  token t = p->tok;
  char found[64];
  switch (t.kind) {
  case TOK_UNSUPPORTED:
    if (token_is(p, t, "^")) return fail_caret_power(p, start, p->prev.offset + p->prev.length);
    return fail_unsupported(p, t);
  case TOK_INVALID: return fail_invalid(p, t);
  case TOK_LPAREN:
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                   "expected an operator before '('; for a product write '*'");
  case TOK_NAME:
  case TOK_NUMBER:
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                   "expected an operator before %s; for a product write '*'",
                   describe(p, t, found, sizeof found));
  default: return a;
  }
}

/* '(' type-name ')' unary, of which only (double) and (long double) are
   supported. The current token is the '('. */
static int32_t parse_cast(parser *p) {
  token open = p->tok;
  advance(p);
  int doubles = 0, longs = 0, others = 0;
  while (is_type_word(p, p->tok)) {
    if (token_is(p, p->tok, "double")) doubles++;
    else if (token_is(p, p->tok, "long")) longs++;
    else if (!token_is(p, p->tok, "const") && !token_is(p, p->tok, "volatile")) others++;
    advance(p);
  }
  if (p->tok.kind != TOK_RPAREN) {
    char found[64];
    return fail_at(p, AD_ERR_FORMAT, report_offset(p, p->tok), p->tok.length,
                   "expected ')' after the type name of the cast at column %d, found %s",
                   column_of(p, open.offset), describe(p, p->tok, found, sizeof found));
  }
  if (doubles != 1 || longs > 1 || others != 0)
    return fail_at(p, AD_ERR_NOT_IMPLEMENTED, open.offset, p->tok.offset + 1 - open.offset,
                   "only the cast (double) is supported; write 2.0 for a double constant");
  advance(p);
  if (!enter(p)) return -1;
  int32_t a = parse_unary(p);
  leave(p);
  if (a < 0) return -1;
  /* Converting to double changes no value that the evaluation computes:
     every integer it keeps is below 2^53, and floats are exact. */
  node(p, a)->type = CT_DOUBLE;
  node(p, a)->start = (int32_t)open.offset;
  return a;
}

static int32_t parse_unary(parser *p) {
  token t = p->tok;
  switch (t.kind) {
  case TOK_MINUS:
  case TOK_PLUS:
  case TOK_NOT: {
    if (!enter(p)) return -1;
    advance(p);
    int32_t a = parse_unary(p);
    leave(p);
    if (a < 0) return -1;
    if (t.kind == TOK_PLUS) {
      node(p, a)->start = (int32_t)t.offset;
      return a;
    }
    expr_op op = t.kind == TOK_MINUS ? EXPR_NEG : EXPR_NOT;
    return add_node(p, op, a, -1, -1, t.offset, (size_t)node(p, a)->end, t);
  }
  case TOK_LPAREN:
    if (is_type_word(p, peek(p))) return parse_cast(p);
    return parse_postfix(p);
  case TOK_STAR:
    if (p->prev.kind == TOK_STAR && p->prev.offset + 1 == t.offset)
      return fail_at(p, AD_ERR_NOT_IMPLEMENTED, p->prev.offset, 2,
                     "'**' is not a power in C; write pow(x, y)");
    return fail_operand(p);
  case TOK_UNSUPPORTED:
    if (token_is(p, t, "&"))
      return fail_at(p, AD_ERR_NOT_IMPLEMENTED, t.offset, t.length,
                     "the unary '&' (address of) is not supported");
    return fail_unsupported(p, t);
  default: return parse_postfix(p);
  }
}

typedef struct binary_operator {
  tok_kind token;
  expr_op op;
  int precedence;
} binary_operator;

static const binary_operator binary_operators[] = {
    {TOK_OR, EXPR_OR, 1}, {TOK_AND, EXPR_AND, 2}, {TOK_EQ, EXPR_EQ, 3},  {TOK_NE, EXPR_NE, 3},
    {TOK_LT, EXPR_LT, 4}, {TOK_LE, EXPR_LE, 4},   {TOK_GT, EXPR_GT, 4},  {TOK_GE, EXPR_GE, 4},
    {TOK_PLUS, EXPR_ADD, 5}, {TOK_MINUS, EXPR_SUB, 5}, {TOK_STAR, EXPR_MUL, 6},
    {TOK_SLASH, EXPR_DIV, 6},
};

static const binary_operator *find_binary(tok_kind kind) {
  for (size_t i = 0; i < sizeof binary_operators / sizeof binary_operators[0]; i++)
    if (binary_operators[i].token == kind) return &binary_operators[i];
  return NULL;
}

/* Operands joined by binary operators of at least min_precedence, grouped
   to the left. */
static int32_t parse_binary(parser *p, int min_precedence) {
  int32_t left = parse_unary(p);
  while (left >= 0) {
    const binary_operator *op = find_binary(p->tok.kind);
    if (!op || op->precedence < min_precedence) break;
    token at = p->tok;
    advance(p);
    int32_t right = parse_binary(p, op->precedence + 1);
    if (right < 0) return -1;
    size_t start = (size_t)node(p, left)->start, end = (size_t)node(p, right)->end;
    left = add_node(p, op->op, left, right, -1, start, end, at);
  }
  return left;
}

/* c ? a : b, right-associative: the else branch is itself a conditional.
   C allows a comma expression between ? and :, which this language lacks. */
static int32_t parse_conditional(parser *p) {
  int32_t c = parse_binary(p, 1);
  if (c < 0 || p->tok.kind != TOK_QUESTION) return c;
  token question = p->tok;
  if (!enter(p)) return -1;
  advance(p);
  int32_t a = parse_conditional(p);
  if (a >= 0 && p->tok.kind != TOK_COLON) {
    char found[64];
    leave(p);
    if (p->tok.kind == TOK_COMMA)
      return fail_at(p, AD_ERR_NOT_IMPLEMENTED, p->tok.offset, 1,
                     "the comma operator is not supported");
    if (p->tok.kind == TOK_UNSUPPORTED || p->tok.kind == TOK_INVALID) return fail_operand(p);
    return fail_at(p, AD_ERR_FORMAT, report_offset(p, p->tok), p->tok.length,
                   "expected ':' for the '?' at column %d, found %s",
                   column_of(p, question.offset), describe(p, p->tok, found, sizeof found));
  }
  if (a < 0) return -1;
  advance(p);
  int32_t b = parse_conditional(p);
  leave(p);
  if (b < 0) return -1;
  size_t start = (size_t)node(p, c)->start, end = (size_t)node(p, b)->end;
  return add_node(p, EXPR_COND, c, a, b, start, end, question);
}

/* The whole text: one conditional expression and nothing after it. */
static int32_t parse_text(parser *p) {
  int32_t root = parse_conditional(p);
  if (root < 0 || p->tok.kind == TOK_END) return root;
  token t = p->tok;
  char found[64];
  if (t.kind == TOK_RPAREN)
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length, "unmatched ')'");
  if (t.kind == TOK_COMMA)
    return fail_at(p, AD_ERR_NOT_IMPLEMENTED, t.offset, t.length,
                   "the comma operator is not supported");
  if (t.kind == TOK_COLON)
    return fail_at(p, AD_ERR_FORMAT, t.offset, t.length, "':' without a matching '?'");
  return fail_at(p, AD_ERR_FORMAT, t.offset, t.length,
                 "expected an operator or the end of the expression, found %s",
                 describe(p, t, found, sizeof found));
}

static void clear_error(ad_expr_error *error) {
  memset(error, 0, sizeof *error);
  error->status = AD_OK;
}

ad_expr *ad_expr_parse_n(ad_ctx *ctx, const char *text, size_t length, ad_expr_error *error) {
  ad_expr_error local;
  if (!error) error = &local;
  clear_error(error);
  if (!ctx) {
    error->status = AD_ERR_ARGUMENT;
    snprintf(error->reason, sizeof error->reason, "the context is NULL");
    return NULL;
  }
  if ((!text && length > 0) || length >= EXPR_MAX_TEXT) {
    error->status = AD_ERR_ARGUMENT;
    snprintf(error->reason, sizeof error->reason,
             text ? "the text is longer than the limit of 2^30 bytes" : "the text is NULL");
    ad_set_error(ctx, AD_ERR_ARGUMENT, "ad_expr_parse: %s", error->reason);
    return NULL;
  }

  ad_expr *e = expr_new(ctx, text, length);
  if (!e) {
    error->status = AD_ERR_MEMORY;
    snprintf(error->reason, sizeof error->reason, "out of memory");
    return NULL;
  }

  parser p;
  memset(&p, 0, sizeof p);
  p.ctx = ctx;
  p.expr = e;
  p.text = e->text;
  p.length = length;
  p.error = error;
  p.prev.kind = TOK_END;
  p.tok = lex_token(p.text, p.length, 0);
  int32_t root = parse_text(&p);
  if (root >= 0 && !p.failed && root != e->node_count - 1)
    fail_at(&p, AD_ERR_ARGUMENT, 0, length, "internal error: the root is not the last node");
  if (root < 0 || p.failed) {
    ad_expr_free(e);
    return NULL;
  }
  expr_mark_needed(e);
  return e;
}

ad_expr *ad_expr_parse(ad_ctx *ctx, const char *text, ad_expr_error *error) {
  if (!text) return ad_expr_parse_n(ctx, NULL, 1, error);
  return ad_expr_parse_n(ctx, text, strlen(text), error);
}
