/* ad_expr_emit_c: the generated C compiles with the system compiler
   (warnings as errors) and computes what ad_expr_derivatives computes, at
   ordinary points, kinks, poles and NaN inputs.

   The compiler command comes from the environment variable AD_TEST_CC,
   which the build sets; the suite fails without it. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "expr_test_util.h"

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))
#define MAX_VARS 5
#define MAX_POINTS 4

typedef struct emit_case {
  const char *text;
  int points;
  double at[MAX_POINTS][MAX_VARS]; /* values in the order of ad_expr_var_name */
} emit_case;

static const emit_case emit_cases[] = {
    {"pow(x*x + 1, 3)", 3, {{2}, {-1.5}, {0}}},
    {"x*y + sin(x)", 2, {{1, 2}, {-0.3, 4}}},
    {"sin(x) + cos(x) + tan(x)", 2, {{0.5}, {-2}}},
    {"asin(x) + acos(x) + atan(x)", 3, {{0.5}, {-0.9}, {1}}},
    {"sinh(x) + cosh(x) + tanh(x)", 2, {{0.5}, {-2}}},
    {"exp(x) + exp2(x) + expm1(x)", 2, {{0.5}, {-2}}},
    {"log(x) + log2(x) + log10(x) + log1p(x)", 4, {{0.5}, {3}, {0}, {-0.5}}},
    {"sqrt(x) + cbrt(x)", 3, {{2}, {0}, {-8}}},
    {"fabs(x) + erf(x) + erfc(x)", 3, {{0.5}, {0}, {-1.5}}},
    {"atan2(y, x)", 3, {{1, 2}, {-1, -0.5}, {0, 0}}},
    {"pow(x, y)", 4, {{2, 3}, {0, 2}, {-2, 3}, {1.5, 0}}},
    {"hypot(x, y)", 2, {{3, 4}, {0, 0}}},
    {"fmin(x, y) + 2 * fmax(x, y)", 4, {{1, 2}, {1, 1}, {NAN, 2}, {2, NAN}}},
    {"x > 0 ? x*x : -x", 3, {{2}, {-3}, {0}}},
    {"x == 0 ? 1 : sin(x)/x", 2, {{0}, {0.5}}},
    {"p ? a : q ? b*b : c", 3, {{0, 2, 1, 3, 4}, {1, 2, 0, 3, 4}, {0, 2, 0, 3, 4}}},
    {"x ? y : 2*y", 2, {{NAN, 3}, {0, 3}}},
    {"(x > 0 && y < 1) * x + !y - (x || y)", 2, {{1, 0.5}, {-1, 0}}},
    {"1/2*x + 3/2.0*x + (double)1/4 + M_PI*x + 0x1p-3 + x * 0.1f", 1, {{2}}},
    {"x / -2 + pow(x, -0.5) - -x", 1, {{4}}},
    {"(x + y) * (x - y) / (x*y)", 2, {{3, 2}, {-1, 0.5}}},
    {"grad*t1 + d2 - ad_grad", 1, {{2, 3, 4, 5}}},
    {"linux * unix + v0", 1, {{2, 3, 5}}},
    {"x", 2, {{2}, {NAN}}},
    {"2 + 3", 1, {{0}}},
    {"x > 0", 1, {{1}}},
    {"x > 0 ? 1 : 2", 1, {{1}}},
    {"1/x + log(x)", 2, {{0}, {-1}}},
    {"exp(x)", 1, {{1000}}},
};

/* Writes every case's function f<i> and a main that reads "i x0 x1 ..."
   lines and prints the value, the gradient and the value computed without
   a gradient array, in hexadecimal. */
static void write_program(ad_ctx *ctx, const char *path) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < COUNT(emit_cases); i++) {
    ad_expr *e = ad_expr_parse(ctx, emit_cases[i].text, NULL);
    ck_assert_msg(e != NULL, "%s: %s", emit_cases[i].text, ad_errmsg(ctx));
    char name[16];
    snprintf(name, sizeof name, "f%d", i);
    ck_assert_int_eq(ad_expr_emit_c(ctx, e, name, f), AD_OK);
    fputs("\n", f);
    ad_expr_free(e);
  }
  fputs("#include <stdio.h>\n\nint main(void) {\n  int i, n;\n"
        "  while (scanf(\"%d %d\", &i, &n) == 2) {\n"
        "    double a[8] = {0}, g[8] = {0}, v = 0, w = 0;\n"
        "    for (int k = 0; k < n; k++) if (scanf(\"%la\", &a[k]) != 1) return 1;\n"
        "    switch (i) {\n",
        f);
  for (int i = 0; i < COUNT(emit_cases); i++) {
    ad_expr *e = ad_expr_parse(ctx, emit_cases[i].text, NULL);
    int n = ad_expr_var_count(e);
    char args[64] = "";
    for (int k = 0; k < n; k++) snprintf(args + strlen(args), sizeof args - strlen(args), "a[%d], ", k);
    fprintf(f, "    case %d: v = f%d(%sg); w = f%d(%s(double *)0); break;\n", i, i, args, i, args);
    ad_expr_free(e);
  }
  fputs("    default: return 1;\n    }\n"
        "    printf(\"%a %a\", v, w);\n"
        "    for (int k = 0; k < n; k++) printf(\" %a\", g[k]);\n"
        "    printf(\"\\n\");\n  }\n  return 0;\n}\n",
        f);
  ck_assert_int_eq(fclose(f), 0);
}

static void write_inputs(ad_ctx *ctx, const char *path) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < COUNT(emit_cases); i++) {
    ad_expr *e = ad_expr_parse(ctx, emit_cases[i].text, NULL);
    int n = ad_expr_var_count(e);
    for (int p = 0; p < emit_cases[i].points; p++) {
      fprintf(f, "%d %d", i, n);
      for (int k = 0; k < n; k++) fprintf(f, " %a", emit_cases[i].at[p][k]);
      fputs("\n", f);
    }
    ad_expr_free(e);
  }
  ck_assert_int_eq(fclose(f), 0);
}

/* Compares one output line with the library at the same point. */
static void compare_line(ad_ctx *ctx, int i, int p, const char *line) {
  const emit_case *c = &emit_cases[i];
  ad_expr *e = ad_expr_parse(ctx, c->text, NULL);
  int n = ad_expr_var_count(e);
  double value, gradient[MAX_VARS];
  ck_assert_int_eq(ad_expr_derivatives(ctx, e, c->at[p], &value, gradient, NULL), AD_OK);
  char *end;
  double got = strtod(line, &end);
  double without_gradient = strtod(end, &end);
  ck_assert_msg(close_to(got, value, 1e-14), "%s at point %d: C value %.17g, library %.17g",
                c->text, p, got, value);
  ck_assert_msg(close_to(without_gradient, value, 1e-14), "%s at point %d: C value without "
                "gradient %.17g, library %.17g", c->text, p, without_gradient, value);
  for (int k = 0; k < n; k++) {
    double g = strtod(end, &end);
    ck_assert_msg(close_to(g, gradient[k], 1e-14), "%s at point %d: C d/d%s %.17g, library %.17g",
                  c->text, p, ad_expr_var_name(e, k), g, gradient[k]);
  }
  ad_expr_free(e);
  ad_ctx_reset(ctx);
}

START_TEST(test_generated_c_agrees) {
  const char *cc = getenv("AD_TEST_CC");
  ck_assert_msg(cc != NULL && *cc, "set AD_TEST_CC to the C compiler command");
  char dir[] = "/tmp/ad_expr_emit_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char program[64], source[64], inputs[64], outputs[64], errors[64], command[512];
  snprintf(source, sizeof source, "%s/generated.c", dir);
  snprintf(program, sizeof program, "%s/generated", dir);
  snprintf(inputs, sizeof inputs, "%s/inputs.txt", dir);
  snprintf(outputs, sizeof outputs, "%s/outputs.txt", dir);
  snprintf(errors, sizeof errors, "%s/errors.txt", dir);

  ad_ctx *ctx = ad_ctx_new(NULL);
  write_program(ctx, source);
  write_inputs(ctx, inputs);
  /* GNU mode predefines macros such as linux, which ISO mode does not. */
  const char *const standards[] = {"-std=c11 -pedantic", "-std=gnu11"};
  for (int k = 0; k < 2; k++) {
    snprintf(command, sizeof command, "%s %s -Wall -Wextra -Werror -O2 -o %s %s -lm 2> %s", cc,
             standards[k], program, source, errors);
    ck_assert_msg(system(command) == 0, "compiling the generated C with %s failed: see %s",
                  standards[k], errors);
  }
  snprintf(command, sizeof command, "%s < %s > %s", program, inputs, outputs);
  ck_assert_int_eq(system(command), 0);

  FILE *out = fopen(outputs, "r");
  ck_assert_ptr_nonnull(out);
  char line[1024];
  int lines = 0;
  for (int i = 0; i < COUNT(emit_cases); i++) {
    for (int p = 0; p < emit_cases[i].points; p++) {
      ck_assert_ptr_nonnull(fgets(line, sizeof line, out));
      compare_line(ctx, i, p, line);
      lines++;
    }
  }
  ck_assert_ptr_null(fgets(line, sizeof line, out));
  ck_assert_int_gt(lines, 50);
  fclose(out);
  ad_ctx_free(ctx);

  remove(source);
  remove(program);
  remove(inputs);
  remove(outputs);
  remove(errors);
  rmdir(dir);
}
END_TEST

/* Generated names get a prefix when a variable would clash with them. */
START_TEST(test_generated_names_avoid_variables) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "grad * t1", NULL);
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  ck_assert_int_eq(ad_expr_emit_c(ctx, e, "f", f), AD_OK);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "double f(double grad, double t1, double *ad_grad) {"));
  ck_assert_ptr_nonnull(strstr(text, "const double ad_t2 = grad * t1;"));
  free(text);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

/* The expression in the header comment cannot end the comment. */
START_TEST(test_header_comment_is_safe) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "x /* c */ + 1", NULL);
  char *text = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&text, &size);
  ck_assert_int_eq(ad_expr_emit_c(ctx, e, "f", f), AD_OK);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "/* f = x /* c *| + 1\n"));
  free(text);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

static const char *const bad_names[] = {"", "1f", "f-g", "double", "sin", "floor", "M_PI", "NAN",
                                        "a b"};

START_TEST(test_bad_function_name) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_expr *e = ad_expr_parse(ctx, "x", NULL);
  FILE *f = fopen("/dev/null", "w");
  ck_assert_int_eq(ad_expr_emit_c(ctx, e, bad_names[_i], f), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "cannot name a C function"));
  fclose(f);
  ad_expr_free(e);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *emit_suite(void) {
  Suite *s = suite_create("expr_emit");
  TCase *tc = tcase_create("generated_c");
  tcase_add_test(tc, test_generated_c_agrees);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);

  tc = tcase_create("names");
  tcase_add_test(tc, test_generated_names_avoid_variables);
  tcase_add_test(tc, test_header_comment_is_safe);
  tcase_add_loop_test(tc, test_bad_function_name, 0, COUNT(bad_names));
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(emit_suite()); }
