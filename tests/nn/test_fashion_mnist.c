/* The fashion-mnist program: exit statuses and messages ("cli"), and short
   runs on a slice of the real data set ("data"), which exits 77 (skipped)
   when Debian's dataset-fashion-mnist is not installed.
   Usage: test_fashion_mnist PROGRAM cli|data */
#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
  /* The help states the range of each numeric option. */
  const char *ranges[] = {"over the training set, 0 to 100000", "(1 to 100000)",
                          "per training step, 1 to 1048576", "learning rate, 0 to 1e6",
                          "rmsprop, 0 to 1", "penalty factor, 0 to 1e6",
                          "0 to\n                       4611686018427387903",
                          "0 to\n                       9223372036854775807",
                          "conversion, 1 to 1024", "samples only, 1 or more"};
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
    ck_assert_msg(strstr(r.out, ranges[i]) != NULL, "help lacks the range \"%s\"", ranges[i]);
}
END_TEST

typedef struct usage_case {
  const char *args[4];
  const char *message;
} usage_case;

static const usage_case usage_cases[] = {
    {{"--bogus", NULL}, "unknown option --bogus"},
    {{"--epochs", "abc", NULL}, "invalid value \"abc\" for --epochs"},
    {{"--epochs", "1e3", NULL}, "for --epochs; expected an integer from 0 to 100000"},
    {{"--lr", "1e308", NULL}, "for --lr; expected a number from 0 to 1e6"},
    {{"--threads", "100000", NULL}, "expected an integer from 1 to 1024"},
    {{"--schedule", "linear", NULL}, "expected constant, step or cosine"},
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

/* ---- Runs on a small data set ----------------------------------------- */

static size_t put_be32(unsigned char *out, uint32_t v) {
  for (int i = 0; i < 4; i++) out[i] = (unsigned char)(v >> (24 - 8 * i));
  return 4;
}

/* Writes the IDX files of split with count 28 x 28 images into dir. */
static void write_split(const char *split, uint32_t count) {
  static unsigned char images[16 + 32 * 784], labels[8 + 32];
  ck_assert_uint_le(count, 32);
  size_t n = put_be32(images, 0x00000803);
  n += put_be32(images + n, count);
  n += put_be32(images + n, 28);
  n += put_be32(images + n, 28);
  for (uint32_t i = 0; i < count * 784; i++) images[n + i] = (unsigned char)(i * 37 % 251);
  size_t m = put_be32(labels, 0x00000801);
  m += put_be32(labels + m, count);
  for (uint32_t i = 0; i < count; i++) labels[m + i] = (unsigned char)(i % 10);
  char name[64];
  snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
  write_file(name, images, n + count * 784);
  snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
  write_file(name, labels, m + count);
}

/* Makes the test folder with 32 training and 16 test images in it. */
static void make_small_data(void) {
  make_dir();
  write_split("train", 32);
  write_split("t10k", 16);
}

static const char *path_in_dir(const char *name) {
  static char paths[4][256];
  static int slot;
  char *p = paths[slot++ % 4];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

/* Runs on the small data set: args, then these options, then extra. */
static void run_small(const char *const *args, const char *const *extra, run_result *r) {
  const char *all[32];
  int n = 0;
  const char *fixed[] = {"--data", dir, "--batch-size", "4", "--threads", "1"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) all[n++] = fixed[i];
  while (*args) all[n++] = *args++;
  while (extra && *extra) all[n++] = *extra++;
  all[n] = NULL;
  run(all, r);
}

/* Each epoch's test line labels its two times. */
START_TEST(test_epoch_line_labels_times) {
  make_small_data();
  run_result r;
  run_small((const char *[]){"--epochs", "1", NULL}, NULL, &r);
  ck_assert_msg(r.status == 0, "exit status %d, stderr: %s", r.status, r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "epoch 1/1: test accuracy "));
  ck_assert_ptr_nonnull(strstr(r.out, " (training "));
  ck_assert_ptr_nonnull(strstr(r.out, " s, evaluation "));
  remove_dir();
}
END_TEST

/* Runs the program with standard output on a pipe whose reading end is
   closed, and SIGPIPE ignored, so that every write to it fails. */
static void run_to_closed_pipe(const char *const *args, run_result *r) {
  char err_path[] = "/tmp/nn-fashion-err-XXXXXX";
  int err = mkstemp(err_path);
  ck_assert_int_ge(err, 0);
  unlink(err_path);
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  const char *argv[32] = {program};
  int argc = 1;
  while (args[argc - 1] && argc < 31) {
    argv[argc] = args[argc - 1];
    argc++;
  }
  argv[argc] = NULL;
  close(fds[0]);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_IGN);
    dup2(fds[1], 1);
    dup2(err, 2);
    execv(program, (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r->out[0] = '\0';
  read_into(err, r->err, sizeof r->err);
}

/* Output that cannot be written is an error, not success. */
START_TEST(test_output_write_failure) {
  make_small_data();
  run_result r;
  run_to_closed_pipe((const char *[]){"--help", NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "fashion-mnist: writing the standard output failed"));
  run_to_closed_pipe((const char *[]){"--data", dir, "--epochs", "1", "--batch-size", "4",
                                      "--json", NULL}, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "writing the standard output failed"));
  /* The run itself worked: its reports went to standard error. */
  ck_assert_ptr_nonnull(strstr(r.err, "epoch 1/1: test accuracy"));
  remove_dir();
}
END_TEST

/* An unusable --checkpoint fails before the first epoch, and a FIFO or a
   symbolic link there stays as it was. */
START_TEST(test_checkpoint_path_checked_first) {
  make_small_data();
  const char *fifo = path_in_dir("fifo.safetensors");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  const char *target = path_in_dir("target");
  write_file("target", (const unsigned char *)"old", 3);
  const char *link = path_in_dir("link.safetensors");
  ck_assert_int_eq(symlink(target, link), 0);
  const struct {
    const char *path, *message;
  } cases[] = {
      {path_in_dir("missing/x.safetensors"), "create it first"},
      {"", "the path is empty"},
      {fifo, "is a FIFO, not a regular file"},
      {link, "is a symbolic link, not a regular file"},
  };
  for (int i = 0; i < 4; i++) {
    run_result r;
    run_small((const char *[]){"--epochs", "1", "--checkpoint", cases[i].path, NULL}, NULL, &r);
    ck_assert_msg(r.status == 1, "case %d: exit status %d", i, r.status);
    ck_assert_msg(strstr(r.err, "invalid --checkpoint") != NULL, "case %d: %s", i, r.err);
    ck_assert_msg(strstr(r.err, cases[i].message) != NULL, "case %d: %s", i, r.err);
    ck_assert_msg(strstr(r.out, "epoch") == NULL, "case %d trained: %s", i, r.out);
  }
  struct stat st;
  ck_assert_int_eq(lstat(fifo, &st), 0);
  ck_assert(S_ISFIFO(st.st_mode));
  ck_assert_int_eq(lstat(link, &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  remove_dir();
}
END_TEST

/* A FIFO in place of a data file or of the checkpoint to resume from fails
   at once instead of waiting for a writer. */
START_TEST(test_fifo_inputs_rejected) {
  make_small_data();
  ck_assert_int_eq(mkfifo(path_in_dir("train-labels-idx1-ubyte.gz"), 0600), 0);
  run_result r;
  run_small((const char *[]){"--epochs", "1", NULL}, NULL, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "train-labels-idx1-ubyte.gz\" is a FIFO"));
  ck_assert_int_eq(unlink(path_in_dir("train-labels-idx1-ubyte.gz")), 0);

  const char *fifo = path_in_dir("fifo.safetensors");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  run_small((const char *[]){"--epochs", "1", "--checkpoint", fifo, "--resume", NULL}, NULL, &r);
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "is a FIFO, not a regular file"));
  remove_dir();
}
END_TEST

/* The first run of the resume tests, which stops after one of two epochs. */
static const char *const first_run[] = {"--epochs", "2", "--stop-after", "1", NULL};

typedef struct changed_option {
  const char *args[3];
  const char *message;
} changed_option;

static const changed_option changed_options[] = {
    {{"--lr", "0.01"}, "  --lr: 0.01 in this run, 0.001 in the checkpoint\n"},
    {{"--batch-size", "8"}, "  --batch-size: 8 in this run, 4 in the checkpoint\n"},
    {{"--epochs", "3"}, "  --epochs: 3 in this run, 2 in the checkpoint\n"},
    {{"--train-limit", "16"}, "  --train-limit (training samples used): 16 in this run, 32 in"},
    {{"--no-normalize"}, "  --no-normalize (normalization): off in this run, on in the"},
    {{"--schedule", "constant"}, "  --schedule: constant in this run, cosine in the checkpoint"},
    {{"--weight-decay", "0.1"}, "  --weight-decay: 0.1 in this run, 0 in the checkpoint\n"},
    {{"--optimizer", "adamw"}, "  --optimizer: adamw in this run, adam in the checkpoint\n"},
    {{"--seed", "2"}, "  --seed: 2 in this run, 1 in the checkpoint\n"},
    {{"--warmup-steps", "5"}, "  --warmup-steps: 5 in this run, 0 in the checkpoint\n"},
    {{"--momentum", "0.5"}, "  --momentum: 0.5 in this run, 0 in the checkpoint\n"},
};

/* --resume with an option that changes the training names the option and
   both values, and stops before it loads the checkpoint or trains. */
START_TEST(test_resume_rejects_changed_option) {
  const changed_option *c = &changed_options[_i];
  make_small_data();
  const char *checkpoint = path_in_dir("run.safetensors");
  run_result r;
  run_small((const char *[]){"--checkpoint", checkpoint, NULL}, first_run, &r);
  ck_assert_msg(r.status == 0, "first run: exit status %d, stderr: %s", r.status, r.err);
  const char *args[16] = {"--epochs", "2", "--checkpoint", checkpoint, "--resume"};
  int n = 5;
  for (int i = 0; i < 3 && c->args[i]; i++) args[n++] = c->args[i];
  args[n] = NULL;
  run_small(args, NULL, &r);
  ck_assert_msg(r.status == 1, "%s: exit status %d", c->args[0], r.status);
  ck_assert_msg(strstr(r.err, "--resume: the options differ") != NULL, "stderr: %s", r.err);
  ck_assert_msg(strstr(r.err, c->message) != NULL, "stderr \"%s\" lacks \"%s\"", r.err,
                c->message);
  ck_assert_str_eq(r.out, "");
  remove_dir();
}
END_TEST

/* Resuming with the same options continues, and a resume after the last
   epoch prints that nothing was left to train. */
START_TEST(test_resume_same_options) {
  make_small_data();
  const char *checkpoint = path_in_dir("run.safetensors");
  run_result r;
  run_small((const char *[]){"--checkpoint", checkpoint, NULL}, first_run, &r);
  ck_assert_msg(r.status == 0, "first run: exit status %d, stderr: %s", r.status, r.err);
  const char *resume[] = {"--epochs", "2", "--checkpoint", checkpoint, "--resume", NULL};
  run_small(resume, NULL, &r);
  ck_assert_msg(r.status == 0, "resume: exit status %d, stderr: %s", r.status, r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "epoch 2/2: test accuracy"));
  ck_assert_ptr_null(strstr(r.out, "epoch 1/2"));
  run_small(resume, NULL, &r);
  ck_assert_msg(r.status == 0, "second resume: exit status %d, stderr: %s", r.status, r.err);
  ck_assert_ptr_nonnull(strstr(r.out, "The checkpoint has all 2 epochs done; evaluating only."));
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
  const char *args[] = {"--train-limit", "3000", "--test-limit", "1000", "--epochs", "2",
                        "--optimizer", "adam", "--checkpoint", checkpoint, "--resume", NULL};
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
  tc = tcase_create("small_data");
  tcase_add_test(tc, test_epoch_line_labels_times);
  tcase_add_test(tc, test_output_write_failure);
  tcase_add_test(tc, test_checkpoint_path_checked_first);
  tcase_add_test(tc, test_fifo_inputs_rejected);
  tcase_add_loop_test(tc, test_resume_rejects_changed_option, 0,
                      (int)(sizeof changed_options / sizeof changed_options[0]));
  tcase_add_test(tc, test_resume_same_options);
  tcase_set_timeout(tc, 60);
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
