/* Training log: the CSV rows, their copies, and the SVG plot of one or two logs. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect_test_util.h"
#include "nn_monitor.h"

/* Reads a whole small file into buffer; returns its length. */
static size_t read_file(const char *path, char *buffer, size_t capacity) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  size_t n = fread(buffer, 1, capacity - 1, f);
  buffer[n] = '\0';
  ck_assert_int_eq(fclose(f), 0);
  return n;
}

START_TEST(test_csv_rows) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char path[512], text[4096];
  ck_assert(temp_path(path, sizeof path, "log.csv"));
  nn_train_log *log = nn_train_log_open(ctx, path);
  ck_assert_ptr_nonnull(log);
  nn_train_record first = {1, 0, 2.5, 0.125, 0.1, 3.25};
  nn_train_record second = {2, 1, NAN, NAN, 0.05, INFINITY};
  ck_assert_int_eq(nn_train_log_append(log, &first), AD_OK);
  ck_assert_int_eq(nn_train_log_append(log, &second), AD_OK);
  /* Rows are flushed as they are appended. */
  read_file(path, text, sizeof text);
  ck_assert_str_eq(text, "step,epoch,loss,accuracy,learning_rate,grad_norm\n"
                         "1,0,2.5,0.125,0.1,3.25\n"
                         "2,1,nan,nan,0.05,inf\n");
  ck_assert_int_eq(nn_train_log_count(log), 2);
  const nn_train_record *records = nn_train_log_records(log);
  ck_assert_double_eq(records[0].loss, 2.5);
  ck_assert(isnan(records[1].loss));
  ck_assert_int_eq(nn_train_log_close(log), AD_OK);
  unlink(path);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_many_rows) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char path[512];
  ck_assert(temp_path(path, sizeof path, "many.csv"));
  nn_train_log *log = nn_train_log_open(ctx, path);
  ck_assert_ptr_nonnull(log);
  for (int i = 0; i < 1000; i++) {
    nn_train_record r = {i, i / 100, 1.0 / (i + 1), 0.5, 0.01, 1};
    ck_assert_int_eq(nn_train_log_append(log, &r), AD_OK);
  }
  ck_assert_int_eq(nn_train_log_count(log), 1000);
  ck_assert_double_eq(nn_train_log_records(log)[999].loss, 1.0 / 1000);
  ck_assert_int_eq(nn_train_log_close(log), AD_OK);
  unlink(path);
  ad_ctx_free(ctx);
}
END_TEST

/* Reads the integer attribute name="..." of the root <svg> element. */
static long root_attribute(const char *text, const char *name) {
  const char *root = strstr(text, "<svg ");
  ck_assert_ptr_nonnull(root);
  char needle[64];
  snprintf(needle, sizeof needle, " %s=\"", name);
  const char *attr = strstr(root, needle);
  ck_assert_ptr_nonnull(attr);
  ck_assert(attr < strchr(root, '>'));
  return strtol(attr + strlen(needle), NULL, 10);
}

START_TEST(test_plot_file) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char csv_a[512], csv_b[512], svg[512];
  ck_assert(temp_path(csv_a, sizeof csv_a, "a.csv"));
  ck_assert(temp_path(csv_b, sizeof csv_b, "b.csv"));
  ck_assert(temp_path(svg, sizeof svg, "curves.svg"));
  nn_train_log *a = nn_train_log_open(ctx, csv_a);
  nn_train_log *b = nn_train_log_open(ctx, csv_b);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  for (int i = 0; i < 50; i++) {
    nn_train_record ra = {i, 0, exp(-i / 10.0), i / 50.0, 0.1, 1.0 / (i + 1)};
    nn_train_record rb = {i, 0, i < 30 ? 1.0 : NAN, NAN, 0.1, i < 30 ? pow(10, i / 3.0) : INFINITY};
    ck_assert_int_eq(nn_train_log_append(a, &ra), AD_OK);
    ck_assert_int_eq(nn_train_log_append(b, &rb), AD_OK);
  }
  const nn_train_log *logs[2] = {a, b};
  const char *names[2] = {"clipped", "diverged"};
  ck_assert_int_eq(nn_train_log_plot(ctx, logs, names, 2, "two runs", svg), AD_OK);

  static char text[1 << 20];
  size_t n = read_file(svg, text, sizeof text);
  ck_assert_uint_gt(n, 1000);
  ck_assert_int_eq(root_attribute(text, "width"), 2 * 560);
  ck_assert_int_eq(root_attribute(text, "height"), 2 * 340);
  ck_assert_ptr_nonnull(strstr(text, ">two runs: loss (log scale)</text>"));
  ck_assert_ptr_nonnull(strstr(text, ">two runs: global gradient norm (log scale)</text>"));
  ck_assert_ptr_nonnull(strstr(text, ">diverged (20 not drawn)</text>"));
  ck_assert_ptr_nonnull(strstr(text, ">diverged (50 not drawn)</text>"));
  ck_assert_ptr_nonnull(strstr(text, "</svg>\n"));
  if (have_program("xmllint")) {
    char command[700];
    snprintf(command, sizeof command, "xmllint --noout '%s' 2>/dev/null", svg);
    ck_assert_int_eq(system(command), 0);
  }
  ck_assert_int_eq(nn_train_log_close(a), AD_OK);
  ck_assert_int_eq(nn_train_log_close(b), AD_OK);
  unlink(csv_a);
  unlink(csv_b);
  unlink(svg);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_plot_smooths_long_logs) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  char csv[512], svg[512];
  ck_assert(temp_path(csv, sizeof csv, "long.csv"));
  ck_assert(temp_path(svg, sizeof svg, "long.svg"));
  nn_train_log *log = nn_train_log_open(ctx, csv);
  ck_assert_ptr_nonnull(log);
  for (int i = 0; i < 200; i++) {
    nn_train_record r = {i, 0, 1 + (i % 2), 0.5, 0.1, 1};
    ck_assert_int_eq(nn_train_log_append(log, &r), AD_OK);
  }
  const nn_train_log *logs[1] = {log};
  const char *names[1] = {"run"};
  ck_assert_int_eq(nn_train_log_plot(ctx, logs, names, 1, NULL, svg), AD_OK);
  static char text[1 << 20];
  read_file(svg, text, sizeof text);
  /* Each panel has a faint raw line and a named smoothed line. */
  ck_assert_int_eq(count_occurrences(text, "stroke-opacity=\"0.25\""), 4);
  ck_assert_int_eq(count_occurrences(text, "stroke-opacity=\"1.00\""), 4);
  ck_assert_int_eq(count_occurrences(text, ">run</text>"), 4);
  ck_assert_ptr_nonnull(strstr(text, ">loss (log scale)</text>"));
  ck_assert_int_eq(nn_train_log_close(log), AD_OK);
  unlink(csv);
  unlink(svg);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_open_failure) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_null(nn_train_log_open(ctx, "/nonexistent-folder/log.csv"));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "/nonexistent-folder/log.csv"));
  ad_clear_error(ctx);
  ck_assert_ptr_null(nn_train_log_open(ctx, NULL));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_int_eq(nn_train_log_close(NULL), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_write_failure) {
  if (!have_full_device()) return;
  ad_ctx *ctx = ad_ctx_new(NULL);
  /* The header fits in the stream's buffer, so the flush after it fails. */
  ck_assert_ptr_null(nn_train_log_open(ctx, "/dev/full"));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_IO);
  ad_ctx_free(ctx);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"csv_rows", test_csv_rows},
    {"many_rows", test_many_rows},
    {"plot_file", test_plot_file},
    {"plot_smooths_long_logs", test_plot_smooths_long_logs},
    {"open_failure", test_open_failure},
    {"write_failure", test_write_failure},
  };
  return run_test_table("train_log", cases, sizeof cases / sizeof cases[0]);
}
