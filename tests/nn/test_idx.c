/* The IDX reader and image sets on small files that the tests write, plain
   and gzipped, including every broken-file case. */
#include <check.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nn.h"

static char dir[] = "/tmp/nn-idx-test-XXXXXX";

static void make_dir(void) {
  strcpy(dir, "/tmp/nn-idx-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void remove_dir(void) {
  char command[128];
  snprintf(command, sizeof command, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(command), 0);
}

/* Writes bytes to dir/name, gzipped when gzip is set; returns the path in a
   static buffer of its own for each of four rotating slots. */
static const char *write_file(const char *name, const void *bytes, size_t size, bool gzip) {
  static char paths[4][256];
  static int slot;
  char *path = paths[slot++ % 4];
  snprintf(path, 256, "%s/%s", dir, name);
  if (gzip) {
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    if (size) ck_assert_int_eq(gzwrite(gz, bytes, (unsigned)size), (int)size);
    ck_assert_int_eq(gzclose(gz), Z_OK);
  } else {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (size) ck_assert_uint_eq(fwrite(bytes, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
  }
  return path;
}

static size_t put_be32(unsigned char *out, uint32_t v) {
  out[0] = (unsigned char)(v >> 24);
  out[1] = (unsigned char)(v >> 16);
  out[2] = (unsigned char)(v >> 8);
  out[3] = (unsigned char)v;
  return 4;
}

/* An image file of count images of rows x cols, pixel i = (i * 7) % 256. */
static size_t image_file(unsigned char *out, uint32_t count, uint32_t rows, uint32_t cols) {
  size_t n = put_be32(out, 0x00000803);
  n += put_be32(out + n, count);
  n += put_be32(out + n, rows);
  n += put_be32(out + n, cols);
  for (uint32_t i = 0; i < count * rows * cols; i++) out[n++] = (unsigned char)(i * 7 % 256);
  return n;
}

static size_t label_file(unsigned char *out, uint32_t count) {
  size_t n = put_be32(out, 0x00000801);
  n += put_be32(out + n, count);
  for (uint32_t i = 0; i < count; i++) out[n++] = (unsigned char)(i % 3);
  return n;
}

START_TEST(test_idx_reads_plain_and_gzip) {
  make_dir();
  bool gzip = _i == 1;
  unsigned char buf[256];
  size_t n = image_file(buf, 3, 4, 5);
  const char *path = write_file("images", buf, n, gzip);
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_idx idx;
  ck_assert_msg(nn_idx_load(ctx, path, NN_IDX_MAGIC_IMAGES, &idx) == AD_OK, "%s", ad_errmsg(ctx));
  ck_assert_uint_eq(idx.magic, 0x803);
  ck_assert_int_eq(idx.ndim, 3);
  ck_assert_int_eq(idx.dims[0], 3);
  ck_assert_int_eq(idx.dims[1], 4);
  ck_assert_int_eq(idx.dims[2], 5);
  ck_assert_uint_eq(idx.size, 60);
  for (int i = 0; i < 60; i++) ck_assert_int_eq(idx.data[i], i * 7 % 256);
  nn_idx_release(&idx);
  ck_assert_ptr_null(idx.data);
  /* Any magic is accepted when none is expected. */
  ck_assert_int_eq(nn_idx_load(ctx, path, 0, &idx), AD_OK);
  nn_idx_release(&idx);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* A broken file and the words its error message must contain. */
typedef struct broken_case {
  const char *what;
  unsigned char bytes[96];
  size_t size;
  uint32_t expected_magic;
  ad_status status;
  const char *message;
} broken_case;

static broken_case broken_cases[16];
static int broken_count;

static void add_case(const char *what, const unsigned char *bytes, size_t size, uint32_t magic,
                     ad_status status, const char *message) {
  broken_case *c = &broken_cases[broken_count++];
  c->what = what;
  memcpy(c->bytes, bytes, size);
  c->size = size;
  c->expected_magic = magic;
  c->status = status;
  c->message = message;
}

static void build_broken_cases(void) {
  unsigned char good[96], bad[96];
  size_t n = image_file(good, 2, 2, 3); /* 16-byte header + 12 pixels */
  broken_count = 0;
  add_case("empty file", good, 0, 0, AD_ERR_FORMAT, "truncated");
  add_case("truncated magic", good, 3, 0, AD_ERR_FORMAT, "truncated");
  add_case("truncated dimensions", good, 10, 0, AD_ERR_FORMAT, "truncated");
  add_case("truncated data", good, n - 1, 0, AD_ERR_FORMAT, "truncated");
  memcpy(bad, good, n);
  bad[n] = 0;
  add_case("trailing data", bad, n + 1, 0, AD_ERR_FORMAT, "more data");
  add_case("wrong magic", good, n, NN_IDX_MAGIC_LABELS, AD_ERR_FORMAT, "magic number");
  memcpy(bad, good, n);
  bad[0] = 0x12;
  add_case("not IDX", bad, n, 0, AD_ERR_FORMAT, "not an IDX file");
  memcpy(bad, good, n);
  bad[3] = 0;
  add_case("zero dimensions", bad, n, 0, AD_ERR_FORMAT, "not an IDX file");
  memcpy(bad, good, n);
  bad[2] = 0x0D;
  add_case("float elements", bad, n, 0, AD_ERR_NOT_IMPLEMENTED, "element type 0x0d");
  memcpy(bad, good, n);
  put_be32(bad + 4, 3);
  add_case("count larger than data", bad, n, 0, AD_ERR_FORMAT, "truncated");
  /* 4 dimensions of 2^32 - 1 overflow 2^63. */
  size_t m = put_be32(bad, 0x00000804);
  for (int d = 0; d < 4; d++) m += put_be32(bad + m, 0xFFFFFFFFu);
  add_case("overflowing dimensions", bad, m, 0, AD_ERR_FORMAT, "overflow");
  /* 2^32 - 1 images of 2^16 pixels: no overflow, but far beyond the file. */
  m = put_be32(bad, 0x00000803);
  m += put_be32(bad + m, 0xFFFFFFFFu);
  m += put_be32(bad + m, 256);
  m += put_be32(bad + m, 256);
  add_case("huge dimensions", bad, m, 0, AD_ERR_FORMAT, "describe");
}

START_TEST(test_idx_rejects_broken_files) {
  make_dir();
  build_broken_cases();
  ad_ctx *ctx = ad_ctx_new(NULL);
  for (int gzip = 0; gzip < 2; gzip++) {
    for (int i = 0; i < broken_count; i++) {
      const broken_case *c = &broken_cases[i];
      const char *path = write_file(gzip ? "broken.gz" : "broken", c->bytes, c->size, gzip);
      nn_idx idx;
      ad_status status = nn_idx_load(ctx, path, c->expected_magic, &idx);
      ck_assert_msg(status == c->status, "%s (%s): status %s, message: %s", c->what,
                    gzip ? "gzip" : "plain", ad_status_name(status), ad_errmsg(ctx));
      ck_assert_msg(strstr(ad_errmsg(ctx), c->message) != NULL, "%s: message \"%s\" lacks \"%s\"",
                    c->what, ad_errmsg(ctx), c->message);
      ck_assert_msg(strstr(ad_errmsg(ctx), path) != NULL, "%s: message \"%s\" lacks the path",
                    c->what, ad_errmsg(ctx));
      ck_assert_ptr_null(idx.data);
      ad_clear_error(ctx);
    }
  }
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

START_TEST(test_idx_rejects_damaged_gzip) {
  make_dir();
  unsigned char buf[512];
  size_t n = image_file(buf, 4, 8, 8);
  const char *path = write_file("good.gz", buf, n, true);
  FILE *f = fopen(path, "rb");
  unsigned char gz[1024];
  size_t gz_size = fread(gz, 1, sizeof gz, f);
  fclose(f);
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_idx idx;
  /* Cut the compressed stream short, then damage its middle. */
  const char *cut = write_file("cut.gz", gz, gz_size / 2, false);
  ck_assert_int_eq(nn_idx_load(ctx, cut, 0, &idx), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "truncated"));
  ad_clear_error(ctx);
  for (size_t i = 12; i < gz_size - 8; i++) gz[i] ^= 0x5A;
  const char *damaged = write_file("damaged.gz", gz, gz_size, false);
  ck_assert_int_eq(nn_idx_load(ctx, damaged, 0, &idx), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), damaged));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "corrupt"));
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_idx_load(ctx, "/nonexistent/idx", 0, &idx), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "/nonexistent/idx"));
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_idx_load(ctx, dir, 0, &idx), AD_ERR_IO);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

START_TEST(test_image_set_load_and_batch) {
  make_dir();
  unsigned char images[256], labels[64];
  size_t ni = image_file(images, 5, 2, 3), nl = label_file(labels, 5);
  const char *ip = write_file("images.gz", images, ni, true);
  const char *lp = write_file("labels", labels, nl, false);
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_image_set set;
  ck_assert_msg(nn_image_set_load(ctx, ip, lp, &set) == AD_OK, "%s", ad_errmsg(ctx));
  ck_assert_int_eq(set.count, 5);
  ck_assert_int_eq(set.rows, 2);
  ck_assert_int_eq(set.cols, 3);
  ck_assert_int_eq(set.classes, 3);
  const int64_t idx[] = {4, 0};
  ad_tensor *x, *y;
  ck_assert_int_eq(nn_image_set_batch(ctx, &set, idx, 2, &x, &y), AD_OK);
  ck_assert_int_eq(ad_dim(x, 0), 2);
  ck_assert_int_eq(ad_dim(x, 1), 6);
  for (int j = 0; j < 6; j++) {
    ck_assert_float_eq_tol(ad_data_f32(x)[j], (float)((24 + j) * 7 % 256) / 255.0f, 1e-6);
    ck_assert_float_eq_tol(ad_data_f32(x)[6 + j], (float)(j * 7 % 256) / 255.0f, 1e-6);
  }
  ck_assert_int_eq(ad_data_i64(y)[0], 1);
  ck_assert_int_eq(ad_data_i64(y)[1], 0);

  /* Normalised with the set's own statistics: mean 0, standard deviation 1. */
  double mean, std;
  nn_image_set_stats(&set, &mean, &std);
  set.mean = (float)mean;
  set.std = (float)std;
  const int64_t all[] = {0, 1, 2, 3, 4};
  ck_assert_int_eq(nn_image_set_batch(ctx, &set, all, 5, &x, &y), AD_OK);
  double sum = 0, sum_sq = 0;
  for (int j = 0; j < 30; j++) {
    sum += ad_data_f32(x)[j];
    sum_sq += ad_data_f32(x)[j] * ad_data_f32(x)[j];
  }
  ck_assert_double_eq_tol(sum / 30, 0, 1e-5);
  ck_assert_double_eq_tol(sum_sq / 30, 1, 1e-5);

  const int64_t outside[] = {5};
  ck_assert_int_eq(nn_image_set_batch(ctx, &set, outside, 1, &x, &y), AD_ERR_INDEX);
  ad_clear_error(ctx);
  nn_image_set_limit(&set, 2);
  ck_assert_int_eq(set.count, 2);
  ck_assert_int_eq(nn_image_set_batch(ctx, &set, idx, 1, &x, &y), AD_ERR_INDEX);
  nn_image_set_release(&set);
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

START_TEST(test_image_set_count_mismatch) {
  make_dir();
  unsigned char images[256], labels[64];
  size_t ni = image_file(images, 5, 2, 3), nl = label_file(labels, 4);
  const char *ip = write_file("images", images, ni, false);
  const char *lp = write_file("labels", labels, nl, false);
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_image_set set;
  ck_assert_int_eq(nn_image_set_load(ctx, ip, lp, &set), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "5 images"));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "4 labels"));
  ad_clear_error(ctx);
  /* The files swapped: the image file has the label magic. */
  ck_assert_int_eq(nn_image_set_load(ctx, lp, ip, &set), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "magic number"));
  ck_assert_ptr_null(set.images);
  ad_clear_error(ctx);
  /* No images at all. */
  ni = image_file(images, 0, 2, 3);
  nl = label_file(labels, 0);
  ip = write_file("empty-images", images, ni, false);
  lp = write_file("empty-labels", labels, nl, false);
  ck_assert_int_eq(nn_image_set_load(ctx, ip, lp, &set), AD_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "no pixels"));
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

/* A FIFO has no writer, so a reader that opened it as a file would wait
   forever; the case's timeout turns such a wait into a failure. */
START_TEST(test_idx_rejects_fifo) {
  make_dir();
  char fifo[256];
  snprintf(fifo, sizeof fifo, "%s/labels-fifo", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_idx idx;
  ck_assert_int_eq(nn_idx_load(ctx, fifo, 0, &idx), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), fifo));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "is a FIFO, not a regular file"));
  ck_assert_ptr_null(idx.data);
  ad_clear_error(ctx);

  /* The same through an image set whose label file is the FIFO. */
  unsigned char buf[512];
  size_t n = image_file(buf, 2, 4, 4);
  const char *images = write_file("images", buf, n, false);
  nn_image_set set;
  ck_assert_int_eq(nn_image_set_load(ctx, images, fifo, &set), AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "not a regular file"));
  ad_ctx_free(ctx);
  remove_dir();
}
END_TEST

static Suite *idx_suite(void) {
  Suite *s = suite_create("nn_idx");
  TCase *tc = tcase_create("idx_reader");
  tcase_add_loop_test(tc, test_idx_reads_plain_and_gzip, 0, 2);
  tcase_add_test(tc, test_idx_rejects_broken_files);
  tcase_add_test(tc, test_idx_rejects_damaged_gzip);
  tcase_add_test(tc, test_idx_rejects_fifo);
  tcase_set_timeout(tc, 20);
  suite_add_tcase(s, tc);
  tc = tcase_create("image_set");
  tcase_add_test(tc, test_image_set_load_and_batch);
  tcase_add_test(tc, test_image_set_count_mismatch);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(idx_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
