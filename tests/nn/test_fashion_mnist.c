/* The fashion-mnist program: exit statuses and messages ("cli"), and short
   runs on a slice of the real data set ("data"), which exits 77 (skipped)
   when Debian's dataset-fashion-mnist is not installed.
   Usage: test_fashion_mnist PROGRAM cli|data */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_DIR "/usr/share/datasets/fashion-mnist"

static const char *program;
static char dir[64];

static void make_dir(void) {
  strcpy(dir, "/tmp/nn-fashion-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
}

/* The output of one run. */
typedef struct run_result {
  int status; /* exit status, or -1 when the program did not exit normally */
  char out[8192];
  char err[8192];
} run_result;

static void read_into(int fd, char *buf, size_t size) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

/* Runs the program with args (NULL-terminated, without argv[0]). */
static void run(const char *const *args, run_result *r) {
  char out_path[] = "/tmp/nn-fashion-out-XXXXXX", err_path[] = "/tmp/nn-fashion-err-XXXXXX";
  int out = mkstemp(out_path), err = mkstemp(err_path);
  ck_assert_int_ge(out, 0);
  ck_assert_int_ge(err, 0);
  unlink(out_path);
  unlink(err_path);
  const char *argv[32] = {program};
  int argc = 1;
  while (args[argc - 1] && argc < 31) {
    argv[argc] = args[argc - 1];
    argc++;
  }
  argv[argc] = NULL;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    execv(program, (char *const *)argv);
    _exit(127);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  read_into(out, r->out, sizeof r->out);
  read_into(err, r->err, sizeof r->err);
}

/* The number after "key": in a one-line JSON object, or NAN. */
static double json_number(const char *json, const char *key) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *at = strstr(json, pattern);
  if (!at) return NAN;
  char *end;
  double v = strtod(at + strlen(pattern), &end);
  return end == at + strlen(pattern) ? NAN : v;
}

/* ---- Command line ---------------------------------------------------- */

START_TEST(test_help_exits_zero) {
  run_result r;
  run((const char *[]){"--help", NULL}, &r);
  ck_assert_int_eq(r.status, 0);
  const char *options[] = {"--data DIR", "--epochs N", "--batch-size N", "--lr X", "--optimizer",
                           "--seed N", "--threads N", "--checkpoint PATH", "--resume",
                           "--train-limit N", "--test-limit N", "--json", "default"};
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    ck_assert_msg(strstr(r.out, options[i]) != NULL, "help lacks %s", options[i]);
}
END_TEST

typedef struct usage_case {
  const char *args[4];
  const char *message;
} usage_case;

static const usage_case usage_cases[] = {
    {{"--bogus", NULL}, "unknown option --bogus"},
    {{"--epochs", "abc", NULL}, "invalid value \"abc\" for --epochs"},
    {{"--epochs", "-1", NULL}, "invalid value \"-1\" for --epochs"},
    {{"--batch-size", "0", NULL}, "invalid value \"0\" for --batch-size"},
    {{"--lr", "nan", NULL}, "invalid value \"nan\" for --lr"},
    {{"--optimizer", "lbfgs", NULL}, "invalid value \"lbfgs\" for --optimizer"},
    {{"--threads", "0", NULL}, "invalid value \"0\" for --threads"},
    {{"--seed", NULL}, "option --seed needs a value"},
    {{"--resume", NULL}, "--resume needs --checkpoint PATH"},
    {{"extra", NULL}, "unexpected argument \"extra\""},
};

START_TEST(test_usage_errors_exit_two) {
  const usage_case *c = &usage_cases[_i];
  run_result r;
  run(c->args, &r);
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, c->message) != NULL, "stderr \"%s\" lacks \"%s\"", r.err,
                c->message);
  ck_assert_str_eq(r.out, "");
}
END_TEST

START_TEST(test_missing_data_exits_one) {
  run_result r;
  run((const char *[]){"--data", "/nonexistent-dir", NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent-dir/train-images-idx3-ubyte"));
  ck_assert_ptr_nonnull(strstr(r.err, "dataset-fashion-mnist"));
}
END_TEST

static void write_file(const char *name, const unsigned char *bytes, size_t size) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(bytes, 1, size, f), size);
  fclose(f);
}

START_TEST(test_broken_data_exits_one) {
  make_dir();
  /* Two images of 28 x 28 and three labels. */
  unsigned char images[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
  unsigned char labels[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
  write_file("train-images-idx3-ubyte", images, sizeof images);
  write_file("train-labels-idx1-ubyte", labels, sizeof labels);
  run_result r;
  run((const char *[]){"--data", dir, NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "has 2 images"));
  ck_assert_ptr_nonnull(strstr(r.err, "has 3 labels"));
  remove_dir();
}
END_TEST

/* ---- Runs on the real data ------------------------------------------- */

static const char *const slice[] = {"--train-limit", "3000", "--test-limit", "1000",
                                    "--epochs",      "2",    "--json"};

/* Runs slice plus extra arguments and checks the exit status. */
static void run_slice(const char *const *extra, run_result *r) {
  const char *args[24];
  int n = 0;
  for (size_t i = 0; i < sizeof slice / sizeof slice[0]; i++) args[n++] = slice[i];
  while (*extra) args[n++] = *extra++;
  args[n] = NULL;
  run(args, r);
  ck_assert_msg(r->status == 0, "exit status %d, stderr: %s", r->status, r->err);
}

START_TEST(test_json_summary) {
  run_result r;
  run_slice((const char *[]){NULL}, &r);
  /* stdout is the summary alone, one line. */
  ck_assert_int_eq(r.out[0], '{');
  ck_assert_ptr_eq(strchr(r.out, '\n'), r.out + strlen(r.out) - 1);
  ck_assert_double_eq(json_number(r.out, "epochs"), 2);
  ck_assert_double_eq(json_number(r.out, "train_samples"), 3000);
  ck_assert_double_eq(json_number(r.out, "test_samples"), 1000);
  double accuracy = json_number(r.out, "test_accuracy");
  ck_assert_msg(accuracy >= 0.70 && accuracy <= 1, "test_accuracy %g", accuracy);
  double loss = json_number(r.out, "test_loss");
  ck_assert_msg(loss > 0 && loss < 1, "test_loss %g", loss);
  double seconds = json_number(r.out, "train_seconds");
  ck_assert_msg(seconds > 0, "train_seconds %g", seconds);
  double rate = json_number(r.out, "samples_per_second");
  ck_assert_msg(fabs(rate - 6000 / seconds) <= 0.01 * rate + 1, "samples_per_second %g for "
                "6000 samples in %g s", rate, seconds);
  /* The per-epoch reports went to stderr. */
  ck_assert_ptr_nonnull(strstr(r.err, "epoch 1/2: test accuracy "));
  ck_assert_ptr_nonnull(strstr(r.err, "epoch 2/2: test accuracy "));
}
END_TEST

START_TEST(test_same_seed_same_result) {
  run_result a, b, c;
  run_slice((const char *[]){"--seed", "7", NULL}, &a);
  run_slice((const char *[]){"--seed", "7", NULL}, &b);
  run_slice((const char *[]){"--seed", "8", NULL}, &c);
  ck_assert_double_eq(json_number(a.out, "test_accuracy"), json_number(b.out, "test_accuracy"));
  ck_assert_double_eq(json_number(a.out, "test_loss"), json_number(b.out, "test_loss"));
  ck_assert_double_ne(json_number(a.out, "test_loss"), json_number(c.out, "test_loss"));
}
END_TEST

START_TEST(test_resume_matches_straight_run) {
  make_dir();
  char checkpoint[128];
  snprintf(checkpoint, sizeof checkpoint, "%s/run.safetensors", dir);
  run_result straight, first, resumed;
  run_slice((const char *[]){"--optimizer", "adam", "--lr", "0.001", NULL}, &straight);
  run_slice((const char *[]){"--optimizer", "adam", "--lr", "0.001", "--checkpoint", checkpoint,
                             "--stop-after", "1", NULL}, &first);
  ck_assert_double_eq(json_number(first.out, "epochs"), 1);
  run_slice((const char *[]){"--optimizer", "adam", "--lr", "0.001", "--checkpoint", checkpoint,
                             "--resume", NULL}, &resumed);
  ck_assert_double_eq(json_number(resumed.out, "epochs"), 2);
  ck_assert_double_eq(json_number(resumed.out, "test_accuracy"),
                      json_number(straight.out, "test_accuracy"));
  ck_assert_double_eq(json_number(resumed.out, "test_loss"),
                      json_number(straight.out, "test_loss"));
  /* A damaged checkpoint stops the run with exit status 1. */
  FILE *f = fopen(checkpoint, "r+b");
  fseek(f, -3, SEEK_END);
  fputc('x', f);
  fclose(f);
  run_result broken;
  const char *args[] = {"--train-limit", "3000", "--test-limit", "1000", "--optimizer", "adam",
                        "--checkpoint", checkpoint, "--resume", NULL};
  run(args, &broken);
  ck_assert_int_eq(broken.status, 1);
  ck_assert_ptr_nonnull(strstr(broken.err, "corrupt"));
  remove_dir();
}
END_TEST

static Suite *cli_suite(void) {
  Suite *s = suite_create("fashion_mnist_cli");
  TCase *tc = tcase_create("exit_statuses");
  tcase_add_test(tc, test_help_exits_zero);
  tcase_add_loop_test(tc, test_usage_errors_exit_two, 0,
                      (int)(sizeof usage_cases / sizeof usage_cases[0]));
  tcase_add_test(tc, test_missing_data_exits_one);
  tcase_add_test(tc, test_broken_data_exits_one);
  suite_add_tcase(s, tc);
  return s;
}

static Suite *data_suite(void) {
  Suite *s = suite_create("fashion_mnist_data");
  TCase *tc = tcase_create("short_runs");
  tcase_add_test(tc, test_json_summary);
  tcase_add_test(tc, test_same_seed_same_result);
  tcase_add_test(tc, test_resume_matches_straight_run);
  tcase_set_timeout(tc, 240);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[2], "cli") != 0 && strcmp(argv[2], "data") != 0)) {
    fprintf(stderr, "usage: %s PROGRAM cli|data\n", argv[0]);
    return EXIT_FAILURE;
  }
  program = argv[1];
  bool data = strcmp(argv[2], "data") == 0;
  if (data && access(DATA_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
    printf("skipped: %s is not installed (Debian package dataset-fashion-mnist)\n", DATA_DIR);
    return 77;
  }
  SRunner *runner = srunner_create(data ? data_suite() : cli_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
