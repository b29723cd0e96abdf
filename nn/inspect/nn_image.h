/*
 * nn_image.h: RGB pictures written as PNG (through libpng), colour maps, a
 * small bitmap font, and saliency maps: the gradient of a class score with
 * respect to the input image.
 */
#ifndef NN_IMAGE_H
#define NN_IMAGE_H

#include <stdint.h>

#include "nn_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Colours ------------------------------------------------------------ */

typedef struct nn_rgb {
  uint8_t r, g, b;
} nn_rgb;

typedef enum nn_colormap {
  NN_COLORMAP_GRAY = 0,  /* black at 0 to white at 1 */
  NN_COLORMAP_DIVERGING, /* blue at 0, white at 0.5, red at 1 (ColorBrewer RdBu) */
  NN_COLORMAP_INFERNO    /* black, purple, orange, pale yellow (close to matplotlib's inferno) */
} nn_colormap;

/* The colour of t in [0, 1] (clamped) in map; NaN gives magenta, so missing
   values stand out. */
nn_rgb nn_colormap_color(nn_colormap map, double t);

/* ---- Images ------------------------------------------------------------- */

/* An 8-bit RGB image, row-major, 3 bytes per pixel. */
typedef struct nn_image {
  ad_ctx *ctx;
  int width, height;
  uint8_t *pixels; /* width * height * 3 bytes, allocated through ctx */
} nn_image;

/* The largest width or height of an image. */
#define NN_IMAGE_MAX_SIZE 16384

/* Creates an image filled with background. Returns NULL after recording
   AD_ERR_ARGUMENT (a size outside 1 .. NN_IMAGE_MAX_SIZE) or AD_ERR_MEMORY.
   Free with nn_image_free(). */
nn_image *nn_image_new(ad_ctx *ctx, int width, int height, nn_rgb background);
void nn_image_free(nn_image *image);

/* Fills a rectangle, clipped to the image. */
void nn_image_fill_rect(nn_image *image, int x, int y, int width, int height, nn_rgb color);

/* Draws rows x cols values (row-major) with their top-left corner at (x, y),
   each value as a scale x scale block coloured by map at
   t = (value - low) / (high - low), clipped to the image. Fails with
   AD_ERR_ARGUMENT for NULL values, non-positive sizes or scale, or
   low >= high. */
ad_status nn_image_draw_values(nn_image *image, int x, int y, const float *values, int rows,
                               int cols, double low, double high, nn_colormap map, int scale);

/* Draws text in a 5 x 7 pixel font magnified scale times, top-left corner at
   (x, y), clipped to the image. Letters print as capitals; characters the
   font lacks print as '?'. Returns the width drawn, in pixels. */
int nn_image_draw_text(nn_image *image, int x, int y, const char *text, nn_rgb color, int scale);

/* The width nn_image_draw_text would draw, in pixels (6 * scale per character). */
int nn_image_text_width(const char *text, int scale);

/* Writes the image as an 8-bit RGB PNG file. Fails with AD_ERR_IO (the
   message has libpng's reason) when the file cannot be created or written;
   a partly written regular file is then removed. */
ad_status nn_image_save_png(const nn_image *image, const char *path);

/* Writes rows x cols values as an 8-bit grayscale PNG of (rows * scale) x
   (cols * scale) pixels, each value a block of gray
   round(255 * (value - low) / (high - low)), clamped to 0 .. 255 (NaN gives
   0). Fails like nn_image_save_png, and with AD_ERR_ARGUMENT as
   nn_image_draw_values does. */
ad_status nn_png_save_gray(ad_ctx *ctx, const char *path, const float *values, int rows, int cols,
                           double low, double high, int scale);

/* ---- Saliency ------------------------------------------------------------ */

/* The saliency map of each sample: the gradient of the model's output
   (logit, before any softmax) of class classes[n] with respect to input
   x[n], with x float [N, ...] and classes int64 [N]. Returns an arena
   tensor of x's shape and dtype. The model runs in its current mode with
   recording enabled for this call only; leaf gradients of the parameters
   are not changed. Samples do not interact, so one call serves a batch.
   Returns NULL with the error recorded (AD_ERR_SHAPE when the output is not
   [N, C] or classes is not [N], AD_ERR_INDEX for a class outside [0, C)). */
ad_tensor *nn_saliency(ad_ctx *ctx, nn_layer *model, ad_tensor *x, ad_tensor *classes);

#ifdef __cplusplus
}
#endif

#endif /* NN_IMAGE_H */
