/* Saliency maps of a linear model and the PNG files that show them. */
#include <check.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect_test_util.h"
#include "nn.h"
#include "nn_image.h"

#define SIDE 28
#define PIXELS (SIDE * SIDE)
#define CLASSES 10

typedef struct linear_model {
  ad_ctx *ctx;
  nn_layer *model;
  ad_tensor *weight; /* [CLASSES, PIXELS] */
} linear_model;

static void linear_setup(linear_model *m) {
  ad_rng rng;
  ad_rng_seed(&rng, 3);
  m->ctx = ad_ctx_new(NULL);
  m->model = nn_linear(m->ctx, PIXELS, CLASSES, NN_INIT_XAVIER_NORMAL, &rng);
  ck_assert_ptr_nonnull(m->model);
  m->weight = nn_layer_param(m->model, 0);
}

/* A batch of count random images. */
static ad_tensor *random_images(ad_ctx *ctx, int64_t count) {
  ad_rng rng;
  ad_rng_seed(&rng, 5);
  const int64_t shape[2] = {count, PIXELS};
  return ad_rand_uniform(ctx, &rng, AD_F32, 2, shape, 0, 1);
}

START_TEST(test_linear_saliency_is_weight_row) {
  linear_model m;
  linear_setup(&m);
  ad_tensor *x = random_images(m.ctx, 3);
  const int64_t classes_values[3] = {7, 0, 7};
  const int64_t n = 3;
  ad_tensor *classes = ad_from_i64(m.ctx, 1, &n, classes_values);
  ad_tensor *map = nn_saliency(m.ctx, m.model, x, classes);
  ck_assert_ptr_nonnull(map);
  ck_assert_int_eq(ad_ndim(map), 2);
  ck_assert_int_eq(ad_dim(map, 0), 3);
  ck_assert_int_eq(ad_dim(map, 1), PIXELS);
  const float *w = ad_data_f32(m.weight), *g = ad_data_f32(map);
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < PIXELS; i++)
      ck_assert_float_eq(g[s * PIXELS + i], w[classes_values[s] * PIXELS + i]);
  /* The parameters' accumulated gradients stay untouched. */
  ck_assert_ptr_null(ad_grad(m.weight));
  nn_layer_free(m.model);
  ad_ctx_free(m.ctx);
}
END_TEST

START_TEST(test_saliency_errors) {
  linear_model m;
  linear_setup(&m);
  ad_tensor *x = random_images(m.ctx, 2);
  const int64_t n = 2, bad[2] = {1, CLASSES};
  ad_tensor *classes = ad_from_i64(m.ctx, 1, &n, bad);
  ck_assert_ptr_null(nn_saliency(m.ctx, m.model, x, classes));
  ck_assert_int_eq(ad_errcode(m.ctx), AD_ERR_INDEX);
  ad_clear_error(m.ctx);
  const int64_t one = 1, ok[1] = {1};
  ad_tensor *short_classes = ad_from_i64(m.ctx, 1, &one, ok);
  ck_assert_ptr_null(nn_saliency(m.ctx, m.model, x, short_classes));
  ck_assert_int_eq(ad_errcode(m.ctx), AD_ERR_SHAPE);
  ad_clear_error(m.ctx);
  ck_assert_ptr_null(nn_saliency(m.ctx, NULL, x, classes));
  ck_assert_int_eq(ad_errcode(m.ctx), AD_ERR_ARGUMENT);
  nn_layer_free(m.model);
  ad_ctx_free(m.ctx);
}
END_TEST

/* Decodes a PNG file with libpng's simplified API into format. */
static unsigned char *decode_png(const char *path, png_uint_32 format, png_uint_32 *width,
                                 png_uint_32 *height) {
  png_image image;
  memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  ck_assert_msg(png_image_begin_read_from_file(&image, path), "%s", image.message);
  image.format = format;
  unsigned char *pixels = malloc(PNG_IMAGE_SIZE(image));
  ck_assert_ptr_nonnull(pixels);
  ck_assert_msg(png_image_finish_read(&image, NULL, pixels, 0, NULL), "%s", image.message);
  *width = image.width;
  *height = image.height;
  return pixels;
}

START_TEST(test_gray_png_decodes_to_values) {
  linear_model m;
  linear_setup(&m);
  ad_tensor *x = random_images(m.ctx, 1);
  const int64_t n = 1, class_value[1] = {4};
  ad_tensor *map = nn_saliency(m.ctx, m.model, x, ad_from_i64(m.ctx, 1, &n, class_value));
  ck_assert_ptr_nonnull(map);
  const float *g = ad_data_f32(map);
  double low = INFINITY, high = -INFINITY;
  for (int i = 0; i < PIXELS; i++) {
    low = fmin(low, g[i]);
    high = fmax(high, g[i]);
  }
  const int scale = 4;
  char path[512];
  ck_assert(temp_path(path, sizeof path, "saliency.png"));
  ck_assert_int_eq(nn_png_save_gray(m.ctx, path, g, SIDE, SIDE, low, high, scale), AD_OK);

  png_uint_32 width, height;
  unsigned char *pixels = decode_png(path, PNG_FORMAT_GRAY, &width, &height);
  ck_assert_uint_eq(width, SIDE * scale);
  ck_assert_uint_eq(height, SIDE * scale);
  const float *w = ad_data_f32(m.weight) + 4 * PIXELS; /* the weight row of class 4 */
  for (png_uint_32 y = 0; y < height; y++)
    for (png_uint_32 xx = 0; xx < width; xx++) {
      double v = w[(y / scale) * SIDE + xx / scale];
      long expected = lround(255 * (v - low) / (high - low));
      ck_assert_int_eq(pixels[y * width + xx], expected);
    }
  free(pixels);
  unlink(path);
  nn_layer_free(m.model);
  ad_ctx_free(m.ctx);
}
END_TEST

START_TEST(test_gray_png_clamps) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float values[4] = {-5, 0.5f, NAN, 7};
  char path[512];
  ck_assert(temp_path(path, sizeof path, "clamp.png"));
  ck_assert_int_eq(nn_png_save_gray(ctx, path, values, 1, 4, 0, 1, 1), AD_OK);
  png_uint_32 width, height;
  unsigned char *pixels = decode_png(path, PNG_FORMAT_GRAY, &width, &height);
  ck_assert_uint_eq(width, 4);
  ck_assert_uint_eq(height, 1);
  ck_assert_int_eq(pixels[0], 0);
  ck_assert_int_eq(pixels[1], 128);
  ck_assert_int_eq(pixels[2], 0);
  ck_assert_int_eq(pixels[3], 255);
  free(pixels);
  unlink(path);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_rgb_image_png) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_image *image = nn_image_new(ctx, 40, 20, (nn_rgb){255, 255, 255});
  ck_assert_ptr_nonnull(image);
  const float values[2] = {0, 1};
  ck_assert_int_eq(nn_image_draw_values(image, 0, 0, values, 1, 2, 0, 1, NN_COLORMAP_DIVERGING, 5),
                   AD_OK);
  int drawn = nn_image_draw_text(image, 12, 2, "Ab1", (nn_rgb){0, 0, 0}, 2);
  ck_assert_int_eq(drawn, nn_image_text_width("Ab1", 2));
  ck_assert_int_eq(drawn, 36);
  char path[512];
  ck_assert(temp_path(path, sizeof path, "rgb.png"));
  ck_assert_int_eq(nn_image_save_png(image, path), AD_OK);
  png_uint_32 width, height;
  unsigned char *pixels = decode_png(path, PNG_FORMAT_RGB, &width, &height);
  ck_assert_uint_eq(width, 40);
  ck_assert_uint_eq(height, 20);
  nn_rgb low = nn_colormap_color(NN_COLORMAP_DIVERGING, 0);
  nn_rgb high = nn_colormap_color(NN_COLORMAP_DIVERGING, 1);
  ck_assert_int_eq(pixels[0], low.r);
  ck_assert_int_eq(pixels[1], low.g);
  ck_assert_int_eq(pixels[2], low.b);
  ck_assert_int_eq(pixels[(2 * 40 + 7) * 3], high.r); /* row 2, column 7: the second block */
  ck_assert_int_eq(pixels[(19 * 40 + 39) * 3], 255); /* background */
  /* The top-left pixel of 'A' (row 0 of its glyph is 01110) stays white. */
  ck_assert_int_eq(pixels[(2 * 40 + 12) * 3], 255);
  ck_assert_int_eq(pixels[(2 * 40 + 14) * 3], 0);
  free(pixels);
  unlink(path);
  nn_image_free(image);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_colormaps) {
  nn_rgb white = nn_colormap_color(NN_COLORMAP_DIVERGING, 0.5);
  ck_assert_int_eq(white.r, 247);
  ck_assert_int_eq(white.g, 247);
  ck_assert_int_eq(white.b, 247);
  nn_rgb gray = nn_colormap_color(NN_COLORMAP_GRAY, 2.0);
  ck_assert_int_eq(gray.r, 255);
  nn_rgb missing = nn_colormap_color(NN_COLORMAP_INFERNO, NAN);
  ck_assert_int_eq(missing.r, 255);
  ck_assert_int_eq(missing.g, 0);
  ck_assert_int_eq(missing.b, 255);
}
END_TEST

START_TEST(test_png_errors) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float values[1] = {0};
  ck_assert_int_eq(nn_png_save_gray(ctx, "/nonexistent-folder/x.png", values, 1, 1, 0, 1, 1),
                   AD_ERR_IO);
  ad_clear_error(ctx);
  if (have_full_device()) {
    ck_assert_int_eq(nn_png_save_gray(ctx, "/dev/full", values, 1, 1, 0, 1, 1), AD_ERR_IO);
    ck_assert(have_full_device()); /* a failed write must not remove a device */
    ad_clear_error(ctx);
  }
  ck_assert_int_eq(nn_png_save_gray(ctx, "unused.png", values, 1, 1, 1, 1, 1), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);
  ck_assert_ptr_null(nn_image_new(ctx, 0, 10, (nn_rgb){0, 0, 0}));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

/* An allocator that fails every allocation after the first `budget`. */
typedef struct failing_allocator {
  long budget;
  long live;
} failing_allocator;

static void *failing_alloc(void *user, size_t size) {
  failing_allocator *a = user;
  if (a->budget-- <= 0) return NULL;
  a->live++;
  return malloc(size);
}

static void failing_free(void *user, void *ptr, size_t size) {
  (void)size;
  failing_allocator *a = user;
  if (ptr) a->live--;
  free(ptr);
}

START_TEST(test_png_allocation_failures) {
  const float values[4] = {0, 0.25f, 0.5f, 1};
  char path[512];
  ck_assert(temp_path(path, sizeof path, "alloc.png"));
  bool succeeded = false;
  for (long budget = 1; budget < 64 && !succeeded; budget++) {
    failing_allocator state = {.budget = 1000};
    ad_allocator allocator = {failing_alloc, failing_free, &state};
    ad_ctx *ctx = ad_ctx_new(&allocator);
    ck_assert_ptr_nonnull(ctx);
    state.budget = budget;
    ad_status st = nn_png_save_gray(ctx, path, values, 2, 2, 0, 1, 2);
    ck_assert(st == AD_OK || st == AD_ERR_MEMORY || st == AD_ERR_IO);
    succeeded = st == AD_OK;
    if (!succeeded) ck_assert_int_ne(access(path, F_OK), 0); /* no partial file is left */
    ad_ctx_free(ctx);
    ck_assert_int_eq(state.live, 0);
  }
  ck_assert(succeeded);
  unlink(path);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"linear_saliency_is_weight_row", test_linear_saliency_is_weight_row},
    {"saliency_errors", test_saliency_errors},
    {"gray_png_decodes_to_values", test_gray_png_decodes_to_values},
    {"gray_png_clamps", test_gray_png_clamps},
    {"rgb_image_png", test_rgb_image_png},
    {"colormaps", test_colormaps},
    {"png_errors", test_png_errors},
    {"png_allocation_failures", test_png_allocation_failures},
  };
  return run_test_table("saliency_png", cases, sizeof cases / sizeof cases[0]);
}
