/* The autodiff program: its output for the documented examples, --json,
   --emit-c (compiled and run), and its exit status for every outcome.

   The program's path is the first argument, and the C compiler command the
   environment variable AD_TEST_CC; the build passes both. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "expr_test_util.h"
#include "json_reader.h"

#define COUNT(array) ((int)(sizeof(array) / sizeof((array)[0])))
#define MAX_ARGS 8

static const char *cli_path;

typedef struct run_result {
  int status; /* the exit status, or -1 when the program did not exit */
  char *out;  /* standard output */
  char *err;  /* standard error */
} run_result;

static char *read_all(FILE *f) {
  ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
  long size = ftell(f);
  ck_assert_int_ge(size, 0);
  rewind(f);
  char *text = malloc((size_t)size + 1);
  ck_assert_ptr_nonnull(text);
  ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
  text[size] = '\0';
  return text;
}

/* Runs the program with args (NULL-terminated) and captures its output. */
static run_result run_cli(const char *const *args) {
  const char *argv[MAX_ARGS + 2] = {cli_path};
  int n = 0;
  while (args[n]) {
    ck_assert_int_lt(n, MAX_ARGS);
    argv[n + 1] = args[n];
    n++;
  }
  argv[n + 1] = NULL;
  FILE *out = tmpfile(), *err = tmpfile();
  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(err);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fileno(out), STDOUT_FILENO);
    dup2(fileno(err), STDERR_FILENO);
    execv(cli_path, (char *const *)argv);
    _exit(127);
  }
  int wstatus;
  ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
  run_result r = {WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, read_all(out), read_all(err)};
  fclose(out);
  fclose(err);
  return r;
}

static void free_result(run_result *r) {
  free(r->out);
  free(r->err);
}

/* Line index (from 0) of text, copied into line, or false. */
static bool nth_line(const char *text, int index, char *line, size_t capacity) {
  for (int i = 0; i < index; i++) {
    text = strchr(text, '\n');
    if (!text) return false;
    text++;
  }
  const char *end = strchr(text, '\n');
  if (!end) return false;
  size_t n = (size_t)(end - text);
  if (n >= capacity) return false;
  memcpy(line, text, n);
  line[n] = '\0';
  return true;
}

/* The number after "label = " on line index. */
static double labelled_number(const char *text, int index, const char *label) {
  char line[256];
  ck_assert_msg(nth_line(text, index, line, sizeof line), "no line %d in:\n%s", index, text);
  size_t n = strlen(label);
  ck_assert_msg(strncmp(line, label, n) == 0 && strncmp(line + n, " = ", 3) == 0,
                "line %d is '%s', expected '%s = ...'", index, line, label);
  char *end;
  double v = strtod(line + n + 3, &end);
  ck_assert_msg(*end == '\0', "line %d is '%s'", index, line);
  return v;
}

/* ---- The examples ------------------------------------------------------ */

START_TEST(test_example_worked) {
  run_result r = run_cli((const char *[]){"pow(x*x + 1, 3)", "x=2", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "f = 125\ndf/dx = 300\n");
  ck_assert_str_eq(r.err, "");
  free_result(&r);
}
END_TEST

START_TEST(test_example_hessian) {
  run_result r = run_cli((const char *[]){"x*y + sin(x)", "x=1", "y=2", "--hessian", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  ck_assert_double_eq(labelled_number(r.out, 0, "f"), 1.0 * 2.0 + sin(1.0));
  ck_assert_double_eq(labelled_number(r.out, 1, "df/dx"), 2.0 + cos(1.0));
  ck_assert_double_eq(labelled_number(r.out, 2, "df/dy"), 1);
  char line[256];
  ck_assert(nth_line(r.out, 3, line, sizeof line));
  ck_assert_str_eq(line, "hessian (rows and columns in the order x, y):");
  double h00, h01, h10, h11;
  ck_assert(nth_line(r.out, 4, line, sizeof line));
  ck_assert_int_eq(sscanf(line, "%lf %lf", &h00, &h01), 2);
  ck_assert(nth_line(r.out, 5, line, sizeof line));
  ck_assert_int_eq(sscanf(line, "%lf %lf", &h10, &h11), 2);
  ck_assert_double_eq(h00, -sin(1.0));
  ck_assert_double_eq(h01, 1);
  ck_assert_double_eq(h10, 1);
  ck_assert_double_eq(h11, 0);
  ck_assert(!nth_line(r.out, 6, line, sizeof line));
  free_result(&r);
}
END_TEST

/* log(0) is a pole: IEEE results, a warning that names log(x), and the
   domain exit status; the central difference meets log(-h), NaN. */
START_TEST(test_example_check_at_pole) {
  run_result r = run_cli((const char *[]){"log(x)", "x=0", "--check", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.err, "autodiff: warning: log(x) is -inf: log(0) is a pole\n");
  char line[256];
  ck_assert(nth_line(r.out, 0, line, sizeof line));
  ck_assert_str_eq(line, "f = -inf");
  ck_assert(nth_line(r.out, 1, line, sizeof line));
  ck_assert_str_eq(line, "df/dx = inf");
  ck_assert(nth_line(r.out, 2, line, sizeof line));
  ck_assert_ptr_nonnull(strstr(line, "check: largest difference from central differences inf, "
                                     "in df/dx (analytic inf, numeric NaN"));
  ck_assert_ptr_nonnull(strstr(line, "): failed"));
  free_result(&r);
}
END_TEST

START_TEST(test_check_passes) {
  run_result r = run_cli((const char *[]){"x*y + sin(x)", "x=1", "y=2", "--check", NULL});
  ck_assert_int_eq(r.status, 0);
  char line[256];
  ck_assert(nth_line(r.out, 3, line, sizeof line));
  ck_assert_ptr_nonnull(strstr(line, "check: largest difference from central differences "));
  ck_assert_ptr_nonnull(strstr(line, "): passed"));
  free_result(&r);
}
END_TEST

/* ---- JSON -------------------------------------------------------------- */

static double number_at(const json_value *v) {
  ck_assert_ptr_nonnull(v);
  ck_assert_int_eq(v->type, JSON_NUMBER);
  return v->number;
}

static const char *string_at(const json_value *v) {
  ck_assert_ptr_nonnull(v);
  ck_assert_int_eq(v->type, JSON_STRING);
  return v->string;
}

START_TEST(test_json_output) {
  run_result r = run_cli(
      (const char *[]){"x*y + sin(x)", "x=1", "y=2", "--hessian", "--check", "--json", NULL});
  ck_assert_int_eq(r.status, 0);
  json_value root;
  ck_assert_msg(json_parse(r.out, &root), "invalid JSON: %s", r.out);
  ck_assert_str_eq(string_at(json_get(&root, "expression")), "x*y + sin(x)");
  ck_assert_double_eq(number_at(json_get(json_get(&root, "variables"), "x")), 1);
  ck_assert_double_eq(number_at(json_get(json_get(&root, "variables"), "y")), 2);
  ck_assert_double_eq(number_at(json_get(&root, "value")), 2.0 + sin(1.0));
  ck_assert_double_eq(number_at(json_get(json_get(&root, "gradient"), "x")), 2.0 + cos(1.0));
  ck_assert_double_eq(number_at(json_get(json_get(&root, "gradient"), "y")), 1);
  const json_value *h = json_get(&root, "hessian");
  ck_assert_double_eq(number_at(json_at(json_at(h, 0), 0)), -sin(1.0));
  ck_assert_double_eq(number_at(json_at(json_at(h, 0), 1)), 1);
  ck_assert_double_eq(number_at(json_at(json_at(h, 1), 0)), 1);
  ck_assert_double_eq(number_at(json_at(json_at(h, 1), 1)), 0);
  const json_value *check = json_get(&root, "check");
  ck_assert_int_eq(json_get(check, "passed")->type, JSON_BOOL);
  ck_assert(json_get(check, "passed")->boolean);
  ck_assert_double_lt(number_at(json_get(check, "max_difference")), 1e-6);
  ck_assert(close_to(number_at(json_get(json_get(check, "numeric"), "x")), 2.0 + cos(1.0), 1e-8));
  const json_value *warnings = json_get(&root, "warnings");
  ck_assert_int_eq(warnings->type, JSON_ARRAY);
  ck_assert_int_eq(warnings->count, 0);
  json_free(&root);
  free_result(&r);
}
END_TEST

/* Infinities are strings, and warnings carry their position. */
START_TEST(test_json_domain_warning) {
  run_result r = run_cli((const char *[]){"--json", "1 + log(x)", "x=0", NULL});
  ck_assert_int_eq(r.status, 1);
  json_value root;
  ck_assert_msg(json_parse(r.out, &root), "invalid JSON: %s", r.out);
  ck_assert_str_eq(string_at(json_get(&root, "value")), "-Infinity");
  ck_assert_str_eq(string_at(json_get(json_get(&root, "gradient"), "x")), "Infinity");
  const json_value *warning = json_at(json_get(&root, "warnings"), 0);
  ck_assert_str_eq(string_at(json_get(warning, "kind")), "divide_by_zero");
  ck_assert_double_eq(number_at(json_get(warning, "offset")), 4);
  ck_assert_double_eq(number_at(json_get(warning, "length")), 6);
  ck_assert_str_eq(string_at(json_get(warning, "message")), "log(x) is -inf: log(0) is a pole");
  json_free(&root);
  free_result(&r);
}
END_TEST

START_TEST(test_json_syntax_error) {
  run_result r = run_cli((const char *[]){"--json", "x +", "x=1", NULL});
  ck_assert_int_eq(r.status, 2);
  json_value root;
  ck_assert_msg(json_parse(r.out, &root), "invalid JSON: %s", r.out);
  const json_value *error = json_get(&root, "error");
  ck_assert_str_eq(string_at(json_get(error, "status")), "AD_ERR_FORMAT");
  ck_assert_double_eq(number_at(json_get(error, "offset")), 3);
  ck_assert_double_eq(number_at(json_get(error, "column")), 4);
  ck_assert_str_eq(string_at(json_get(error, "message")),
                   "expected an operand after '+', found the end of the expression");
  ck_assert_ptr_nonnull(strstr(r.err, "  x +\n     ^\n"));
  json_free(&root);
  free_result(&r);
}
END_TEST

/* Control bytes and invalid UTF-8 in the expression still give valid JSON. */
START_TEST(test_json_escapes_text) {
  run_result r = run_cli((const char *[]){"--json", "x /* \"\x01\xff\" */ + 1", "x=1", NULL});
  ck_assert_int_eq(r.status, 0);
  json_value root;
  ck_assert_msg(json_parse(r.out, &root), "invalid JSON: %s", r.out);
  ck_assert_str_eq(string_at(json_get(&root, "expression")), "x /* \"\x01\xef\xbf\xbd\" */ + 1");
  json_free(&root);
  free_result(&r);
}
END_TEST

/* ---- Exit status ------------------------------------------------------- */

typedef struct status_case {
  const char *args[MAX_ARGS];
  int status;
  const char *out; /* a part of standard output, or NULL */
  const char *err; /* a part of standard error, or NULL for none at all */
} status_case;

static const status_case status_cases[] = {
    {{"x", "x=1"}, 0, "f = 1\ndf/dx = 1\n", NULL},
    {{"--", "-x*x", "x=3"}, 0, "f = -9\n", NULL},
    {{"x*x", "x=3", "--json"}, 0, "{\"expression\": ", NULL},
    {{"--help"}, 0, "Exit status:", NULL},
    {{"--version"}, 0, "autodiff ", NULL},
    {{"2 + 3"}, 0, "f = 5\n", NULL},
    {{"sqrt(x)", "x=-1"}, 1, "f = NaN", "autodiff: warning: sqrt(x) is NaN: sqrt(-1) is undefined"},
    {{"sqrt(x)", "x=0"}, 1, "df/dx = inf",
     "warning: the derivative of sqrt(x) with respect to x is inf at sqrt(0)"},
    {{"x * 2", "x=nan"}, 1, "f = NaN", "autodiff: warning: the value is NaN"},
    {{"exp(x)", "x=1000"}, 1, "f = inf", "exp(x) is inf: exp(1000) overflows double"},
    {{"x > 0 ? log(x) : 0", "x=-1"}, 0, "f = 0\n", NULL},
    {{"x +", "x=1"}, 2, NULL, "autodiff: column 4: expected an operand after '+'"},
    {{"x^2", "x=3"}, 2, NULL, "write pow(x, 2)"},
    {{"foo(x)", "x=3"}, 2, NULL, "unknown function foo"},
    {{"x + y", "x=1"}, 2, NULL, "variable y has no value; add the argument y=VALUE"},
    {{"x", "x=1", "z=2"}, 2, NULL, "'z=2': the expression has no such variable"},
    {{"x", "x=1", "x=2"}, 2, NULL, "'x=2': the variable is assigned twice"},
    {{"x", "x=abc"}, 2, NULL, "'x=abc': the value is not a number"},
    {{"x", "x=1e999"}, 2, NULL, "the value is outside the range of double"},
    {{"x", "1x=2"}, 2, NULL, "'1x=2' is not an assignment NAME=VALUE"},
    {{"--frobnicate", "x"}, 2, NULL, "unknown option '--frobnicate'"},
    {{"-x", "x=1"}, 2, NULL, "put -- before an expression that starts with '-'"},
    {{NULL}, 2, NULL, "missing EXPRESSION"},
    {{"--emit-c"}, 2, NULL, "--emit-c needs a function name"},
    {{"x", "--emit-c", "f", "--json"}, 2, NULL, "cannot be combined"},
    {{"x", "--emit-c", "double"}, 2, NULL, "cannot name a C function"},
    {{"x > 0 ? x : 2*x", "x=0", "--check"}, 3, "): failed", NULL},
};

START_TEST(test_exit_status) {
  const status_case *c = &status_cases[_i];
  run_result r = run_cli(c->args);
  ck_assert_msg(r.status == c->status, "%s: exit status %d, expected %d; stderr: %s",
                c->args[0] ? c->args[0] : "(none)", r.status, c->status, r.err);
  if (c->out) ck_assert_msg(strstr(r.out, c->out) != NULL, "stdout '%s' lacks '%s'", r.out, c->out);
  if (c->err) ck_assert_msg(strstr(r.err, c->err) != NULL, "stderr '%s' lacks '%s'", r.err, c->err);
  else ck_assert_str_eq(r.err, "");
  free_result(&r);
}
END_TEST

/* A variable of any name length can be bound: names of 256 bytes and more
   were once truncated and reported as unknown. */
START_TEST(test_long_variable_name) {
  const size_t lengths[] = {255, 256, 1000};
  for (int i = 0; i < 3; i++) {
    size_t n = lengths[i];
    char *name = malloc(n + 1), *expression = malloc(n + 8), *binding = malloc(n + 8);
    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_nonnull(expression);
    ck_assert_ptr_nonnull(binding);
    memset(name, 'v', n);
    name[n] = '\0';
    snprintf(expression, n + 8, "2*%s", name);
    snprintf(binding, n + 8, "%s=1.5", name);
    run_result r = run_cli((const char *[]){expression, binding, NULL});
    ck_assert_msg(r.status == 0, "name of %zu bytes: exit status %d, stderr: %s", n, r.status,
                  r.err);
    ck_assert_msg(strncmp(r.out, "f = 3\n", 6) == 0, "name of %zu bytes: stdout %s", n, r.out);
    ck_assert_str_eq(r.err, "");
    free_result(&r);
    free(name);
    free(expression);
    free(binding);
  }
}
END_TEST

/* ---- --emit-c ---------------------------------------------------------- */

/* The printed function, compiled and run, agrees with --json. */
START_TEST(test_emit_c_compiles_and_agrees) {
  const char *cc = getenv("AD_TEST_CC");
  ck_assert_msg(cc != NULL && *cc, "set AD_TEST_CC to the C compiler command");
  const char *text = "x*y + sin(x) + (y > 1 ? log(y) : fmin(x, y))";
  run_result emitted = run_cli((const char *[]){text, "--emit-c", "grad_f", NULL});
  ck_assert_int_eq(emitted.status, 0);
  ck_assert_str_eq(emitted.err, "");

  char dir[] = "/tmp/ad_expr_cli_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char source[64], program[64], command[512];
  snprintf(source, sizeof source, "%s/main.c", dir);
  snprintf(program, sizeof program, "%s/main", dir);
  FILE *f = fopen(source, "w");
  ck_assert_ptr_nonnull(f);
  fputs(emitted.out, f);
  fputs("#include <stdio.h>\nint main(void) {\n  double g[2];\n"
        "  double v = grad_f(0.75, 2.5, g);\n"
        "  printf(\"%a %a %a\\n\", v, g[0], g[1]);\n  return 0;\n}\n",
        f);
  ck_assert_int_eq(fclose(f), 0);
  snprintf(command, sizeof command, "%s -std=c11 -Wall -Wextra -Werror -o %s %s -lm", cc, program,
           source);
  ck_assert_int_eq(system(command), 0);
  snprintf(command, sizeof command, "%s", program);
  FILE *p = popen(command, "r");
  ck_assert_ptr_nonnull(p);
  double v, gx, gy;
  ck_assert_int_eq(fscanf(p, "%la %la %la", &v, &gx, &gy), 3);
  ck_assert_int_eq(pclose(p), 0);

  run_result json = run_cli((const char *[]){text, "x=0.75", "y=2.5", "--json", NULL});
  ck_assert_int_eq(json.status, 0);
  json_value root;
  ck_assert(json_parse(json.out, &root));
  ck_assert(close_to(v, number_at(json_get(&root, "value")), 1e-14));
  ck_assert(close_to(gx, number_at(json_get(json_get(&root, "gradient"), "x")), 1e-14));
  ck_assert(close_to(gy, number_at(json_get(json_get(&root, "gradient"), "y")), 1e-14));
  json_free(&root);
  free_result(&json);
  free_result(&emitted);
  remove(source);
  remove(program);
  rmdir(dir);
}
END_TEST

static Suite *cli_suite(void) {
  Suite *s = suite_create("expr_cli");
  TCase *tc = tcase_create("examples");
  tcase_add_test(tc, test_example_worked);
  tcase_add_test(tc, test_example_hessian);
  tcase_add_test(tc, test_example_check_at_pole);
  tcase_add_test(tc, test_check_passes);
  suite_add_tcase(s, tc);

  tc = tcase_create("json");
  tcase_add_test(tc, test_json_output);
  tcase_add_test(tc, test_json_domain_warning);
  tcase_add_test(tc, test_json_syntax_error);
  tcase_add_test(tc, test_json_escapes_text);
  suite_add_tcase(s, tc);

  tc = tcase_create("exit_status");
  tcase_add_loop_test(tc, test_exit_status, 0, COUNT(status_cases));
  tcase_add_test(tc, test_long_variable_name);
  suite_add_tcase(s, tc);

  tc = tcase_create("emit_c");
  tcase_add_test(tc, test_emit_c_compiles_and_agrees);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PATH_OF_AUTODIFF\n", argv[0]);
    return EXIT_FAILURE;
  }
  cli_path = argv[1];
  return run_suite(cli_suite());
}
