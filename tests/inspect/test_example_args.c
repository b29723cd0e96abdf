/* The inspect examples' handling of bad arguments and unusable inputs and
   outputs, run as programs: exit statuses, messages, and no crash.
   Usage: test_example_args GRAPH_EXPORT SALIENCY_MAPS VANISHING_GRADIENTS
   EXPLODING_GRADIENTS */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *graph_export;
static const char *training_examples[3]; /* saliency, vanishing, exploding */
static char dir[64];

static void make_dir(void) {
  strcpy(dir, "/tmp/inspect-args-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
}

static const char *path_in_dir(const char *name) {
  static char paths[4][256];
  static int slot;
  char *p = paths[slot++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

/* The outcome of one run. */
typedef struct run_result {
  int status; /* exit status, or -1 when the program did not exit normally */
  int signal; /* the signal that ended it, or 0 */
  char out[8192];
  char err[8192];
} run_result;

static void read_into(int fd, char *buf, size_t size) {
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(fd);
}

/* Runs program with args (NULL-terminated, without argv[0]) in the test's
   folder, so that a default output folder would land there too. */
static void run(const char *program, const char *const *args, run_result *r) {
  char out_path[] = "/tmp/inspect-args-out-XXXXXX", err_path[] = "/tmp/inspect-args-err-XXXXXX";
  int out = mkstemp(out_path), err = mkstemp(err_path);
  ck_assert_int_ge(out, 0);
  ck_assert_int_ge(err, 0);
  unlink(out_path);
  unlink(err_path);
  const char *argv[16] = {program};
  int argc = 1;
  while (args[argc - 1] && argc < 15) {
    argv[argc] = args[argc - 1];
    argc++;
  }
  argv[argc] = NULL;
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    if (chdir(dir) != 0) _exit(126);
    execv(program, (char *const *)argv);
    _exit(127);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  read_into(out, r->out, sizeof r->out);
  read_into(err, r->err, sizeof r->err);
}

static void write_whole(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, size, f), size);
  ck_assert_int_eq(fclose(f), 0);
}

static size_t put_be32(unsigned char *out, uint32_t v) {
  for (int i = 0; i < 4; i++) out[i] = (unsigned char)(v >> (24 - 8 * i));
  return 4;
}

/* Writes split-images-idx3-ubyte and split-labels-idx1-ubyte with count
   28 x 28 images, enough for the loader but less than one batch. */
static void write_split(const char *split, uint32_t count) {
  static unsigned char images[16 + 16 * 784], labels[8 + 16];
  ck_assert_uint_le(count, 16);
  size_t n = put_be32(images, 0x00000803);
  n += put_be32(images + n, count);
  n += put_be32(images + n, 28);
  n += put_be32(images + n, 28);
  for (uint32_t i = 0; i < count * 784; i++) images[n + i] = (unsigned char)(i * 13 % 256);
  size_t m = put_be32(labels, 0x00000801);
  m += put_be32(labels + m, count);
  for (uint32_t i = 0; i < count; i++) labels[m + i] = (unsigned char)(i % 10);
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  write_whole(path_in_dir(name), images, n + count * 784);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  write_whole(path_in_dir(name), labels, m + count);
}

/* ---- Training examples --------------------------------------------------- */

/* --samples below one batch used to divide by zero (SIGFPE). It is now a
   usage error before any data is read or folder made. */
START_TEST(test_samples_below_batch_rejected) {
  make_dir();
  const char *program = training_examples[_i];
  const char *out_dir = path_in_dir("out");
  const char *values[] = {"1", "10", "63"};
  for (int v = 0; v < 3; v++) {
    run_result r;
    run(program, (const char *[]){"--samples", values[v], "--out", out_dir, NULL}, &r);
    ck_assert_msg(r.signal == 0, "%s --samples %s: killed by signal %d", program, values[v],
                  r.signal);
    ck_assert_msg(r.status == 2, "%s --samples %s: exit status %d", program, values[v], r.status);
    char expected[128];
    snprintf(expected, sizeof expected, "--samples %s is less than one batch of 64 images",
             values[v]);
    ck_assert_msg(strstr(r.err, expected) != NULL, "stderr \"%s\" lacks \"%s\"", r.err, expected);
    ck_assert_ptr_nonnull(strstr(r.err, "pass --samples 64 or more"));
    ck_assert_int_ne(access(out_dir, F_OK), 0);
  }
  remove_dir();
}
END_TEST

/* A data set with fewer images than one batch is a runtime error, not a
   division by zero. */
START_TEST(test_small_data_set_rejected) {
  make_dir();
  write_split("train", 10);
  write_split("t10k", 10);
  run_result r;
  run(training_examples[_i],
      (const char *[]){"--data", dir, "--samples", "64", "--steps", "2", "--out",
                       path_in_dir("out"), NULL},
      &r);
  ck_assert_msg(r.signal == 0, "killed by signal %d, stderr: %s", r.signal, r.err);
  ck_assert_msg(r.status == 1, "exit status %d, stderr: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "the training set has 10 images, less than one batch of 64") != NULL,
                "stderr: %s", r.err);
  remove_dir();
}
END_TEST

/* ---- graph_export ---------------------------------------------------------- */

/* An --out that names a file is an error before anything is written, and
   the program lists no files and no output folder. */
START_TEST(test_out_is_a_file) {
  make_dir();
  const char *file = path_in_dir("afile");
  write_whole(file, "x", 1);
  run_result r;
  run(graph_export, (const char *[]){"--out", file, NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.out, "");
  ck_assert_ptr_nonnull(strstr(r.err, file));
  ck_assert_ptr_nonnull(strstr(r.err, "is not a folder"));
  struct stat st;
  ck_assert_int_eq(stat(file, &st), 0);
  ck_assert(S_ISREG(st.st_mode));
  remove_dir();
}
END_TEST

/* A graph that cannot be written stops the program with the error only. */
START_TEST(test_failed_export_lists_nothing) {
  make_dir();
  const char *out_dir = path_in_dir("out");
  ck_assert_int_eq(mkdir(out_dir, 0700), 0);
  ck_assert_int_eq(mkdir(path_in_dir("out/square_cubed.dot"), 0700), 0);
  run_result r;
  run(graph_export, (const char *[]){"--out", out_dir, NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_null(strstr(r.out, "Wrote:"));
  ck_assert_ptr_null(strstr(r.out, "Output folder"));
  ck_assert_ptr_nonnull(strstr(r.err, "square_cubed.dot"));
  remove_dir();
}
END_TEST

static Suite *example_args_suite(void) {
  Suite *s = suite_create("inspect_example_args");
  TCase *tc = tcase_create("training_examples");
  tcase_add_loop_test(tc, test_samples_below_batch_rejected, 0, 3);
  tcase_add_loop_test(tc, test_small_data_set_rejected, 0, 3);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tc = tcase_create("graph_export");
  tcase_add_test(tc, test_out_is_a_file);
  tcase_add_test(tc, test_failed_export_lists_nothing);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s GRAPH_EXPORT SALIENCY_MAPS VANISHING_GRADIENTS "
                    "EXPLODING_GRADIENTS\n", argv[0]);
    return EXIT_FAILURE;
  }
  /* The programs run in the test's folder, so their paths must be absolute. */
  const char **programs[4] = {&graph_export, &training_examples[0], &training_examples[1],
                              &training_examples[2]};
  for (int i = 0; i < 4; i++) {
    *programs[i] = realpath(argv[1 + i], NULL);
    if (!*programs[i]) {
      perror(argv[1 + i]);
      return EXIT_FAILURE;
    }
  }
  SRunner *runner = srunner_create(example_args_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
