/*
 * autodiff: evaluates a C expression and its derivatives from the command
 * line, in float64.
 *
 *   autodiff 'pow(x*x + 1, 3)' x=2
 *   autodiff 'x*y + sin(x)' x=1 y=2 --hessian
 *   autodiff 'log(x)' x=0 --check
 *   autodiff 'x*y + sin(x)' --emit-c f
 *
 * See usage() for the options and the exit status.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"

#ifndef AUTODIFF_VERSION
#define AUTODIFF_VERSION "unknown"
#endif

enum exit_status {
  STATUS_OK = 0,
  STATUS_DOMAIN = 1, /* results printed, but a NaN or infinity appeared */
  STATUS_USAGE = 2,  /* bad options or assignments, or an invalid expression */
  STATUS_CHECK = 3,  /* --check: the gradient disagrees with central differences */
  STATUS_ERROR = 4   /* out of memory, or the output could not be written */
};

static void usage(FILE *out) {
  fputs(
      "Usage: autodiff [OPTION]... EXPRESSION [NAME=VALUE]...\n"
      "Evaluate a C expression in double precision and print its value and its\n"
      "gradient with respect to every variable, by reverse-mode differentiation.\n"
      "\n"
      "EXPRESSION is C: numeric constants, variables, + - * / and unary - + !,\n"
      "comparisons, && ||, c ? a : b, (double) casts, the <math.h> functions sin cos\n"
      "tan asin acos atan atan2 sinh cosh tanh exp exp2 expm1 log log2 log10 log1p\n"
      "sqrt cbrt pow hypot fabs fmin fmax erf erfc, and M_PI, M_E and the other\n"
      "M_ constants. Every variable needs a NAME=VALUE; VALUE is read by strtod\n"
      "(1.5, -2e-3, 0x1p-4, inf, nan).\n"
      "\n"
      "Options:\n"
      "  --hessian      also print the Hessian matrix of second derivatives\n"
      "  --check        compare the gradient with central differences in float64\n"
      "                 (step cbrt(DBL_EPSILON) * max(1, |x|)) and print the largest\n"
      "                 difference\n"
      "  --json         print one JSON object instead of text; NaN and infinities\n"
      "                 are the strings \"NaN\", \"Infinity\" and \"-Infinity\"\n"
      "  --emit-c NAME  print a self-contained C function NAME that returns the\n"
      "                 value and stores the gradient, needing only <math.h>;\n"
      "                 no VALUE is needed\n"
      "  -h, --help     print this help and exit\n"
      "  --version      print the version and exit\n"
      "  --             end the options (for an expression that starts with '-')\n"
      "\n"
      "Warnings go to standard error: a subexpression that creates a NaN or an\n"
      "infinity (log(0), 1/0, sqrt(-1), overflow), and one whose derivative is not\n"
      "finite when the gradient is not.\n"
      "\n"
      "Exit status:\n"
      "  0  success\n"
      "  1  domain warning: the results are printed, but a NaN or infinity appeared\n"
      "  2  usage error or invalid expression; nothing is computed\n"
      "  3  --check: a derivative differs from its central difference by more than\n"
      "     the tolerance 1e-6 * max(1, |difference quotient|) plus rounding\n"
      "  4  out of memory, or the output could not be written\n",
      out);
}

/* ---- Arguments -------------------------------------------------------- */

typedef struct assignment {
  const char *arg;   /* the whole NAME=VALUE argument */
  size_t name_length;
  double value;
} assignment;

typedef struct options {
  const char *expression;
  bool hessian, check, json;
  const char *emit_name;
  assignment *assignments;
  int assignment_count;
} options;

static int usage_error(const char *format, const char *detail) {
  fputs("autodiff: ", stderr);
  fprintf(stderr, format, detail);
  fputs("\nTry 'autodiff --help' for more information.\n", stderr);
  return STATUS_USAGE;
}

static bool is_identifier(const char *s, size_t n) {
  if (n == 0) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

/* Parses NAME=VALUE into a. Returns 0 or an exit status. */
static int parse_assignment(const char *arg, assignment *a) {
  const char *eq = strchr(arg, '=');
  if (!eq || !is_identifier(arg, (size_t)(eq - arg)))
    return usage_error("'%s' is not an assignment NAME=VALUE", arg);
  char *end;
  errno = 0;
  double v = strtod(eq + 1, &end);
  if (end == eq + 1 || *end != '\0')
    return usage_error("'%s': the value is not a number", arg);
  if (errno == ERANGE && isinf(v))
    return usage_error("'%s': the value is outside the range of double", arg);
  a->arg = arg;
  a->name_length = (size_t)(eq - arg);
  a->value = v;
  return 0;
}

/* Fills o from argv. Returns -1 to go on, or an exit status. */
static int parse_arguments(int argc, char **argv, options *o) {
  bool options_done = false;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!options_done && arg[0] == '-' && arg[1] != '\0' && !o->expression) {
      if (strcmp(arg, "--") == 0) options_done = true;
      else if (strcmp(arg, "--hessian") == 0) o->hessian = true;
      else if (strcmp(arg, "--check") == 0) o->check = true;
      else if (strcmp(arg, "--json") == 0) o->json = true;
      else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        usage(stdout);
        return STATUS_OK;
      } else if (strcmp(arg, "--version") == 0) {
        printf("autodiff %s\n", AUTODIFF_VERSION);
        return STATUS_OK;
      } else if (strcmp(arg, "--emit-c") == 0) {
        if (i + 1 >= argc) return usage_error("%s needs a function name", arg);
        o->emit_name = argv[++i];
      } else {
        return usage_error("unknown option '%s'; put -- before an expression that starts "
                           "with '-'",
                           arg);
      }
      continue;
    }
    if (!o->expression) {
      o->expression = arg;
      continue;
    }
    if (!options_done && strncmp(arg, "--", 2) == 0 && arg[2] != '\0') {
      /* Options may also follow the expression. */
      if (strcmp(arg, "--hessian") == 0) o->hessian = true;
      else if (strcmp(arg, "--check") == 0) o->check = true;
      else if (strcmp(arg, "--json") == 0) o->json = true;
      else if (strcmp(arg, "--emit-c") == 0 && i + 1 < argc) o->emit_name = argv[++i];
      else return usage_error("unknown option or missing argument '%s'", arg);
      continue;
    }
    int st = parse_assignment(arg, &o->assignments[o->assignment_count]);
    if (st != 0) return st;
    o->assignment_count++;
  }
  if (!o->expression) return usage_error("%s", "missing EXPRESSION");
  if (o->emit_name && (o->json || o->hessian || o->check))
    return usage_error("%s", "--emit-c cannot be combined with --json, --hessian or --check");
  return -1;
}

/* The index of the variable whose name is the first length bytes of name,
   or -1. Names of any length are compared in place, without a copy. */
static int find_variable(const ad_expr *e, const char *name, size_t length) {
  int n = ad_expr_var_count(e);
  for (int i = 0; i < n; i++) {
    const char *candidate = ad_expr_var_name(e, i);
    if (strlen(candidate) == length && memcmp(candidate, name, length) == 0) return i;
  }
  return -1;
}

/* Puts the assigned values in the expression's variable order. Returns 0
   or an exit status. */
static int bind_assignments(const options *o, const ad_expr *e, double *values) {
  int n = ad_expr_var_count(e);
  for (int i = 0; i < n; i++) values[i] = NAN;
  bool *seen = calloc((size_t)n + 1, 1);
  if (!seen) {
    fputs("autodiff: out of memory\n", stderr);
    return STATUS_ERROR;
  }
  int status = 0;
  for (int k = 0; k < o->assignment_count && status == 0; k++) {
    const assignment *a = &o->assignments[k];
    int var = find_variable(e, a->arg, a->name_length);
    if (var < 0) status = usage_error("'%s': the expression has no such variable", a->arg);
    else if (seen[var]) status = usage_error("'%s': the variable is assigned twice", a->arg);
    else seen[var] = true, values[var] = a->value;
  }
  for (int i = 0; i < n && status == 0; i++) {
    if (seen[i] || o->emit_name) continue;
    fprintf(stderr, "autodiff: variable %s has no value; add the argument %s=VALUE\n",
            ad_expr_var_name(e, i), ad_expr_var_name(e, i));
    status = STATUS_USAGE;
  }
  free(seen);
  return status;
}

/* ---- Numbers ---------------------------------------------------------- */

/* The shortest decimal that reads back to v, or "NaN", "inf", "-inf". */
static void format_number(double v, char *out, size_t capacity) {
  if (isnan(v)) {
    snprintf(out, capacity, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, capacity, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(out, capacity, "%.*g", precision, v);
    if (strtod(out, NULL) == v) return;
  }
}

static void json_number(FILE *out, double v) {
  if (isnan(v)) {
    fputs("\"NaN\"", out);
  } else if (isinf(v)) {
    fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
  } else {
    char text[40];
    format_number(v, text, sizeof text);
    fputs(text, out);
  }
}

/* The length of the UTF-8 sequence that starts at s, or 0 when the bytes
   there are not valid UTF-8 (RFC 3629). */
static size_t utf8_sequence_length(const unsigned char *s) {
  size_t len;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) len = 2;
  else if (s[0] >= 0xE0 && s[0] <= 0xEF) len = 3;
  else if (s[0] >= 0xF0 && s[0] <= 0xF4) len = 4;
  else return 0;
  for (size_t i = 1; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (s[0] == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
  if (s[0] == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
  if (s[0] == 0xF0 && s[1] < 0x90) return 0; /* overlong */
  if (s[0] == 0xF4 && s[1] >= 0x90) return 0; /* beyond U+10FFFF */
  return len;
}

/* Writes s as a JSON string: control bytes escaped, and bytes that are not
   valid UTF-8 replaced by U+FFFD. */
static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    size_t len = utf8_sequence_length(p);
    if (len == 0) {
      fputs("\\ufffd", out);
      p++;
    } else if (c == '"' || c == '\\') {
      fprintf(out, "\\%c", c);
      p++;
    } else if (c < 0x20) {
      fprintf(out, "\\u%04x", c);
      p++;
    } else {
      fwrite(p, 1, len, out);
      p += len;
    }
  }
  fputc('"', out);
}

/* ---- Computing -------------------------------------------------------- */

typedef struct check_result {
  bool ran, passed;
  int worst;          /* the variable with the largest difference, or -1 */
  double difference;  /* the largest |analytic - numeric| */
  double tolerance;   /* the tolerance of that variable */
  double *numeric;    /* one difference quotient per variable */
} check_result;

typedef struct results {
  double value;
  double *gradient, *hessian;
  check_result check;
  ad_expr_issue issues[16];
  int issue_count;
} results;

/* |analytic - numeric| with NaN and infinities compared as the engine's
   gradient check compares them. */
static double difference_of(double analytic, double numeric) {
  if (isnan(analytic) && isnan(numeric)) return 0;
  if (isinf(analytic) && analytic == numeric) return 0;
  if (isnan(analytic) || isnan(numeric) || isinf(analytic) || isinf(numeric)) return INFINITY;
  return fabs(analytic - numeric);
}

/* Central differences (f(x + h) - f(x - h)) / ((x + h) - (x - h)) with
   h = cbrt(DBL_EPSILON) max(1, |x|), which balances the truncation error
   (h^2) against rounding (DBL_EPSILON / h). */
static ad_status run_check(ad_ctx *ctx, const ad_expr *e, double *x, results *r) {
  int n = ad_expr_var_count(e);
  check_result *c = &r->check;
  c->ran = n > 0;
  c->passed = true;
  c->worst = -1;
  for (int i = 0; i < n; i++) {
    double saved = x[i];
    double h = cbrt(DBL_EPSILON) * fmax(1.0, fabs(saved));
    double plus, minus;
    double xp = saved + h, xm = saved - h;
    x[i] = xp;
    ad_status st = ad_expr_derivatives(ctx, e, x, &plus, NULL, NULL);
    x[i] = xm;
    if (st == AD_OK) st = ad_expr_derivatives(ctx, e, x, &minus, NULL, NULL);
    x[i] = saved;
    if (st != AD_OK) return st;
    c->numeric[i] = (plus - minus) / (xp - xm);
    double difference = difference_of(r->gradient[i], c->numeric[i]);
    double tolerance = 1e-6 * fmax(1.0, fabs(c->numeric[i])) +
                       8 * DBL_EPSILON * fmax(fabs(plus), fabs(minus)) / (xp - xm);
    if (!(difference <= tolerance)) c->passed = false;
    if (c->worst < 0 || difference > c->difference) {
      c->worst = i;
      c->difference = difference;
      c->tolerance = tolerance;
    }
  }
  return AD_OK;
}

static ad_status compute(ad_ctx *ctx, const options *o, const ad_expr *e, double *x, results *r) {
  ad_status st = ad_expr_derivatives(ctx, e, x, &r->value, r->gradient,
                                     o->hessian ? r->hessian : NULL);
  if (st == AD_OK && o->check) st = run_check(ctx, e, x, r);
  if (st != AD_OK) return st;
  int count = ad_expr_check_domain(ctx, e, x, r->issues, 16);
  if (count < 0) return ad_errcode(ctx);
  r->issue_count = count < 16 ? count : 16;
  return AD_OK;
}

/* ---- Warnings --------------------------------------------------------- */

static bool any_nonfinite(const double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return true;
  return false;
}

/* Prints the domain warnings and returns how many. Derivative warnings
   appear only when a printed derivative is not finite. */
static int print_warnings(const options *o, const ad_expr *e, const results *r) {
  size_t n = (size_t)ad_expr_var_count(e);
  bool derivatives_bad =
      any_nonfinite(r->gradient, n) || (o->hessian && any_nonfinite(r->hessian, n * n));
  int printed = 0;
  for (int i = 0; i < r->issue_count; i++) {
    if (r->issues[i].kind == AD_EXPR_DERIVATIVE && !derivatives_bad) continue;
    fprintf(stderr, "autodiff: warning: %s\n", r->issues[i].message);
    printed++;
  }
  if (printed == 0 && !isfinite(r->value)) {
    char v[40];
    format_number(r->value, v, sizeof v);
    fprintf(stderr, "autodiff: warning: the value is %s\n", v);
    printed++;
  }
  for (size_t i = 0; printed == 0 && i < n; i++) {
    if (isfinite(r->gradient[i])) continue;
    char v[40];
    format_number(r->gradient[i], v, sizeof v);
    fprintf(stderr, "autodiff: warning: df/d%s is %s\n", ad_expr_var_name(e, (int)i), v);
    printed++;
  }
  if (printed == 0 && derivatives_bad) {
    fputs("autodiff: warning: the Hessian has entries that are not finite\n", stderr);
    printed++;
  }
  return printed;
}

/* ---- Output ----------------------------------------------------------- */

/* Prints an n x n matrix with each column right-aligned. */
/* Prints the n x n matrix m with each column right-aligned. The column
   widths are measured once, so printing stays O(n^2). */
static void print_matrix(const double *m, int n) {
  int *width = calloc((size_t)n, sizeof *width);
  char v[40];
  for (int j = 0; width && j < n; j++) {
    width[j] = 1;
    for (int k = 0; k < n; k++) {
      format_number(m[(size_t)k * (size_t)n + (size_t)j], v, sizeof v);
      if ((int)strlen(v) > width[j]) width[j] = (int)strlen(v);
    }
  }
  for (int i = 0; i < n; i++) {
    printf(" ");
    for (int j = 0; j < n; j++) {
      format_number(m[(size_t)i * (size_t)n + (size_t)j], v, sizeof v);
      printf(" %*s", width ? width[j] : 1, v);
    }
    printf("\n");
  }
  free(width);
}

static void print_text(const options *o, const ad_expr *e, const results *r) {
  int n = ad_expr_var_count(e);
  char v[40];
  format_number(r->value, v, sizeof v);
  printf("f = %s\n", v);
  for (int i = 0; i < n; i++) {
    format_number(r->gradient[i], v, sizeof v);
    printf("df/d%s = %s\n", ad_expr_var_name(e, i), v);
  }
  if (o->hessian && n > 0) {
    printf("hessian (rows and columns in the order");
    for (int i = 0; i < n; i++) printf(i ? ", %s" : " %s", ad_expr_var_name(e, i));
    printf("):\n");
    print_matrix(r->hessian, n);
  }
  if (!o->check) return;
  const check_result *c = &r->check;
  if (!c->ran) {
    printf("check: the expression has no variables\n");
    return;
  }
  char d[40], a[40], num[40], t[40];
  format_number(c->difference, d, sizeof d);
  format_number(r->gradient[c->worst], a, sizeof a);
  format_number(c->numeric[c->worst], num, sizeof num);
  snprintf(t, sizeof t, "%.3g", c->tolerance);
  printf("check: largest difference from central differences %s, in df/d%s (analytic %s, "
         "numeric %s, tolerance %s): %s\n",
         d, ad_expr_var_name(e, c->worst), a, num, t, c->passed ? "passed" : "failed");
}

static void json_by_variable(const ad_expr *e, const double *values) {
  int n = ad_expr_var_count(e);
  printf("{");
  for (int i = 0; i < n; i++) {
    printf(i ? ", " : "");
    json_string(stdout, ad_expr_var_name(e, i));
    printf(": ");
    json_number(stdout, values[i]);
  }
  printf("}");
}

static const char *issue_kind_name(ad_expr_issue_kind kind) {
  switch (kind) {
  case AD_EXPR_INVALID: return "invalid";
  case AD_EXPR_DIVIDE_BY_ZERO: return "divide_by_zero";
  case AD_EXPR_OVERFLOW: return "overflow";
  default: return "derivative";
  }
}

static void print_json(const options *o, const ad_expr *e, const double *x, const results *r) {
  int n = ad_expr_var_count(e);
  printf("{\"expression\": ");
  json_string(stdout, ad_expr_text(e));
  printf(", \"variables\": ");
  json_by_variable(e, x);
  printf(", \"value\": ");
  json_number(stdout, r->value);
  printf(", \"gradient\": ");
  json_by_variable(e, r->gradient);

  if (o->hessian) {
    printf(", \"hessian\": [");
    for (int i = 0; i < n; i++) {
      printf(i ? ", [" : "[");
      for (int j = 0; j < n; j++) {
        printf(j ? ", " : "");
        json_number(stdout, r->hessian[(size_t)i * (size_t)n + (size_t)j]);
      }
      printf("]");
    }
    printf("]");
  }

  if (o->check) {
    const check_result *c = &r->check;
    printf(", \"check\": {\"numeric\": ");
    json_by_variable(e, c->numeric);
    printf(", \"max_difference\": ");
    json_number(stdout, c->ran ? c->difference : 0);
    printf(", \"variable\": ");
    if (c->ran) json_string(stdout, ad_expr_var_name(e, c->worst));
    else printf("null");
    printf(", \"passed\": %s}", c->passed || !c->ran ? "true" : "false");
  }

  printf(", \"warnings\": [");
  for (int i = 0; i < r->issue_count; i++) {
    const ad_expr_issue *issue = &r->issues[i];
    printf("%s{\"kind\": \"%s\", \"offset\": %zu, \"length\": %zu, \"message\": ", i ? ", " : "",
           issue_kind_name(issue->kind), issue->offset, issue->length);
    json_string(stdout, issue->message);
    printf("}");
  }
  printf("]}\n");
}

static void print_parse_error(const options *o, ad_ctx *ctx, const ad_expr_error *error) {
  const char *message = ad_errmsg(ctx);
  const char *prefix = "ad_expr_parse: ";
  if (strncmp(message, prefix, strlen(prefix)) == 0) message += strlen(prefix);
  fprintf(stderr, "autodiff: %s\n", message);
  if (!o->json) return;
  printf("{\"error\": {\"status\": \"%s\", \"offset\": %zu, \"length\": %zu, \"line\": %d, "
         "\"column\": %d, \"message\": ",
         ad_status_name(error->status), error->offset, error->length, error->line,
         error->column);
  json_string(stdout, error->reason);
  printf("}}\n");
}

/* ---- Main ------------------------------------------------------------- */

/* Computes at values, prints the warnings and the results, and returns the
   exit status. */
static int evaluate_and_print(const options *o, ad_ctx *ctx, const ad_expr *e, double *values) {
  size_t n = (size_t)ad_expr_var_count(e);
  double *buffer = calloc(2 * n + (o->hessian ? n * n : 0) + 1, sizeof(double));
  if (!buffer) {
    fputs("autodiff: out of memory\n", stderr);
    return STATUS_ERROR;
  }
  results r;
  memset(&r, 0, sizeof r);
  r.gradient = buffer;
  r.check.numeric = buffer + n;
  r.hessian = buffer + 2 * n;

  int status = STATUS_OK;
  if (compute(ctx, o, e, values, &r) != AD_OK) {
    fprintf(stderr, "autodiff: %s\n", ad_errmsg(ctx));
    status = STATUS_ERROR;
  } else {
    int warnings = print_warnings(o, e, &r);
    if (o->json) print_json(o, e, values, &r);
    else print_text(o, e, &r);
    if (warnings > 0) status = STATUS_DOMAIN;
    else if (o->check && !r.check.passed) status = STATUS_CHECK;
  }
  free(buffer);
  return status;
}

static int emit_c(const options *o, ad_ctx *ctx, const ad_expr *e) {
  if (ad_expr_emit_c(ctx, e, o->emit_name, stdout) == AD_OK) return STATUS_OK;
  fprintf(stderr, "autodiff: %s\n", ad_errmsg(ctx));
  return ad_errcode(ctx) == AD_ERR_ARGUMENT ? STATUS_USAGE : STATUS_ERROR;
}

/* Parses the expression, then emits it or computes and prints. Returns the
   exit status. */
static int run(const options *o, ad_ctx *ctx) {
  ad_expr_error error;
  ad_expr *e = ad_expr_parse(ctx, o->expression, &error);
  if (!e) {
    print_parse_error(o, ctx, &error);
    return error.status == AD_ERR_MEMORY ? STATUS_ERROR : STATUS_USAGE;
  }
  double *values = calloc((size_t)ad_expr_var_count(e) + 1, sizeof *values);
  int status = STATUS_ERROR;
  if (!values) fputs("autodiff: out of memory\n", stderr);
  else status = bind_assignments(o, e, values);
  if (status == STATUS_OK && o->emit_name) status = emit_c(o, ctx, e);
  else if (status == STATUS_OK) status = evaluate_and_print(o, ctx, e, values);
  free(values);
  ad_expr_free(e);
  return status;
}

int main(int argc, char **argv) {
  options o;
  memset(&o, 0, sizeof o);
  o.assignments = calloc((size_t)argc + 1, sizeof *o.assignments);
  if (!o.assignments) {
    fputs("autodiff: out of memory\n", stderr);
    return STATUS_ERROR;
  }
  int status = parse_arguments(argc, argv, &o);
  if (status < 0) {
    ad_ctx *ctx = ad_ctx_new(NULL);
    if (!ctx) {
      fputs("autodiff: out of memory\n", stderr);
      status = STATUS_ERROR;
    } else {
      status = run(&o, ctx);
      ad_ctx_free(ctx);
    }
  }
  free(o.assignments);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fputs("autodiff: writing the output failed\n", stderr);
    return STATUS_ERROR;
  }
  return status;
}
