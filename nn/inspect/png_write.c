/*
 * png_write.c: PNG files through libpng.
 *
 * libpng reports errors by calling an error function that must not return;
 * ours records the message and jumps back to the setjmp in write_png. Its
 * memory comes from the context's allocator, so the allocation hook counts it.
 */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "nn_image.h"

/* libpng's free function gets no size, so each block starts with a header
   that stores it. The header is as large as malloc's alignment. */
typedef union block_header {
  size_t size;
  max_align_t align;
} block_header;

typedef struct png_state {
  ad_ctx *ctx;
  char message[200];
} png_state;

static png_voidp png_alloc(png_structp png, png_alloc_size_t size) {
  png_state *state = png_get_mem_ptr(png);
  block_header *block = ad_malloc(state->ctx, sizeof *block + size);
  if (!block) return NULL; /* libpng then raises its own out-of-memory error */
  block->size = sizeof *block + size;
  return block + 1;
}

static void png_release(png_structp png, png_voidp ptr) {
  if (!ptr) return;
  png_state *state = png_get_mem_ptr(png);
  block_header *block = (block_header *)ptr - 1;
  ad_free(state->ctx, block, block->size);
}

static void png_on_error(png_structp png, png_const_charp message) {
  png_state *state = png_get_error_ptr(png);
  snprintf(state->message, sizeof state->message, "%s", message);
  png_longjmp(png, 1);
}

/* Warnings are not errors, and the library must not print. */
static void png_on_warning(png_structp png, png_const_charp message) {
  (void)png;
  (void)message;
}

/* Fills row y of a PNG: one call per row, so no image-sized buffer is needed. */
typedef void (*row_fn)(const void *source, int y, uint8_t *row);

/* Writes a width x height PNG of color_type (PNG_COLOR_TYPE_RGB or _GRAY)
   to path, taking each row from fill_row. row is a caller buffer of one row. */
static ad_status write_png(ad_ctx *ctx, const char *fn, const char *path, int width, int height,
                           int color_type, row_fn fill_row, const void *source, uint8_t *row) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot create \"%s\"; check that the folder exists "
                        "and is writable", fn, path);
  /* Only a regular file may be removed after a failure: path may name a
     device or a pipe. */
  struct stat file_stat;
  const bool regular = fstat(fileno(f), &file_stat) == 0 && S_ISREG(file_stat.st_mode);
  png_state state = {.ctx = ctx, .message = "out of memory"};
  png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &state, png_on_error,
                                              png_on_warning, &state, png_alloc, png_release);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    fclose(f);
    if (regular) remove(path);
    return ad_set_error(ctx, AD_ERR_MEMORY, "%s: out of memory starting libpng", fn);
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    fclose(f);
    if (regular) remove(path);
    /* libpng's allocation through ad_malloc may have recorded AD_ERR_MEMORY
       already; return the recorded status so the two agree. */
    ad_status st = ad_set_error(ctx, AD_ERR_IO, "%s: writing \"%s\" failed: %s", fn, path,
                                state.message);
    return ad_errcode(ctx) != AD_OK ? ad_errcode(ctx) : st;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < height; y++) {
    fill_row(source, y, row);
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  if (fclose(f) != 0) {
    if (regular) remove(path);
    return ad_set_error(ctx, AD_ERR_IO, "%s: closing \"%s\" failed", fn, path);
  }
  return AD_OK;
}

static void rgb_row(const void *source, int y, uint8_t *row) {
  const nn_image *image = source;
  size_t bytes = (size_t)image->width * 3;
  memcpy(row, image->pixels + (size_t)y * bytes, bytes);
}

ad_status nn_image_save_png(const nn_image *image, const char *path) {
  if (!image) return AD_ERR_ARGUMENT;
  const char *fn = "nn_image_save_png";
  if (!path) return ad_set_error(image->ctx, AD_ERR_ARGUMENT, "%s: the path is NULL", fn);
  size_t bytes = (size_t)image->width * 3;
  uint8_t *row = ad_malloc(image->ctx, bytes);
  if (!row) return AD_ERR_MEMORY;
  ad_status st = write_png(image->ctx, fn, path, image->width, image->height, PNG_COLOR_TYPE_RGB,
                           rgb_row, image, row);
  ad_free(image->ctx, row, bytes);
  return st;
}

/* The values of nn_png_save_gray and their mapping to gray levels. */
typedef struct gray_source {
  const float *values;
  int cols, scale;
  double low, high;
} gray_source;

static void gray_row(const void *source, int y, uint8_t *row) {
  const gray_source *g = source;
  const float *values = g->values + (size_t)(y / g->scale) * (size_t)g->cols;
  for (int c = 0; c < g->cols; c++) {
    double level = 255 * ((double)values[c] - g->low) / (g->high - g->low);
    uint8_t v = isnan(level) ? 0 : (uint8_t)lround(fmin(fmax(level, 0), 255));
    memset(row + (size_t)c * (size_t)g->scale, v, (size_t)g->scale);
  }
}

ad_status nn_png_save_gray(ad_ctx *ctx, const char *path, const float *values, int rows, int cols,
                           double low, double high, int scale) {
  if (!ctx) return AD_ERR_ARGUMENT;
  const char *fn = "nn_png_save_gray";
  if (!path || !values || rows < 1 || cols < 1 || scale < 1 || !(low < high) ||
      (int64_t)rows * scale > NN_IMAGE_MAX_SIZE || (int64_t)cols * scale > NN_IMAGE_MAX_SIZE)
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "%s: invalid arguments: path %s, values %s, %d x %d values, scale %d, "
                        "range [%g, %g]; sizes and scale must be positive, the image at most %d "
                        "pixels a side, and low < high",
                        fn, path ? "given" : "NULL", values ? "given" : "NULL", rows, cols, scale,
                        low, high, NN_IMAGE_MAX_SIZE);
  size_t bytes = (size_t)cols * (size_t)scale;
  uint8_t *row = ad_malloc(ctx, bytes);
  if (!row) return AD_ERR_MEMORY;
  gray_source source = {values, cols, scale, low, high};
  ad_status st = write_png(ctx, fn, path, cols * scale, rows * scale, PNG_COLOR_TYPE_GRAY,
                           gray_row, &source, row);
  ad_free(ctx, row, bytes);
  return st;
}
