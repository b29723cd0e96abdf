/* image.c: RGB images, colour maps and a 5 x 7 bitmap font (see nn_image.h). */
#include <math.h>
#include <string.h>

#include "nn_image.h"

/* ---- Colour maps --------------------------------------------------------- */

typedef struct color_stop {
  double t;
  nn_rgb color;
} color_stop;

/* ColorBrewer's RdBu with five classes, blue for low values. */
static const color_stop diverging_stops[] = {{0.0, {5, 48, 97}},
                                             {0.25, {67, 147, 195}},
                                             {0.5, {247, 247, 247}},
                                             {0.75, {214, 96, 77}},
                                             {1.0, {103, 0, 31}}};
/* Five samples of matplotlib's inferno. */
static const color_stop inferno_stops[] = {{0.0, {0, 0, 4}},
                                           {0.25, {87, 16, 110}},
                                           {0.5, {188, 55, 84}},
                                           {0.75, {249, 142, 9}},
                                           {1.0, {252, 255, 164}}};

static uint8_t mix(uint8_t a, uint8_t b, double t) { return (uint8_t)lround(a + (b - a) * t); }

static nn_rgb interpolate(const color_stop *stops, int count, double t) {
  for (int i = 1; i < count; i++) {
    if (t > stops[i].t) continue;
    double u = (t - stops[i - 1].t) / (stops[i].t - stops[i - 1].t);
    nn_rgb a = stops[i - 1].color, b = stops[i].color;
    return (nn_rgb){mix(a.r, b.r, u), mix(a.g, b.g, u), mix(a.b, b.b, u)};
  }
  return stops[count - 1].color;
}

nn_rgb nn_colormap_color(nn_colormap map, double t) {
  if (isnan(t)) return (nn_rgb){255, 0, 255};
  t = fmin(fmax(t, 0), 1);
  switch (map) {
  case NN_COLORMAP_DIVERGING: return interpolate(diverging_stops, 5, t);
  case NN_COLORMAP_INFERNO: return interpolate(inferno_stops, 5, t);
  default: {
    uint8_t v = (uint8_t)lround(255 * t);
    return (nn_rgb){v, v, v};
  }
  }
}

/* ---- Images -------------------------------------------------------------- */

nn_image *nn_image_new(ad_ctx *ctx, int width, int height, nn_rgb background) {
  if (!ctx) return NULL;
  if (width < 1 || height < 1 || width > NN_IMAGE_MAX_SIZE || height > NN_IMAGE_MAX_SIZE) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_image_new: a %d x %d image is invalid; each side "
                 "must be 1 to %d pixels", width, height, NN_IMAGE_MAX_SIZE);
    return NULL;
  }
  nn_image *image = ad_malloc(ctx, sizeof *image);
  uint8_t *pixels = image ? ad_malloc(ctx, (size_t)width * (size_t)height * 3) : NULL;
  if (!pixels) {
    ad_free(ctx, image, sizeof *image);
    return NULL;
  }
  *image = (nn_image){ctx, width, height, pixels};
  nn_image_fill_rect(image, 0, 0, width, height, background);
  return image;
}

void nn_image_free(nn_image *image) {
  if (!image) return;
  ad_ctx *ctx = image->ctx;
  ad_free(ctx, image->pixels, (size_t)image->width * (size_t)image->height * 3);
  ad_free(ctx, image, sizeof *image);
}

void nn_image_fill_rect(nn_image *image, int x, int y, int width, int height, nn_rgb color) {
  if (!image) return;
  int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
  int x1 = x + width > image->width ? image->width : x + width;
  int y1 = y + height > image->height ? image->height : y + height;
  for (int row = y0; row < y1; row++) {
    uint8_t *p = image->pixels + ((size_t)row * (size_t)image->width + (size_t)x0) * 3;
    for (int col = x0; col < x1; col++, p += 3) {
      p[0] = color.r;
      p[1] = color.g;
      p[2] = color.b;
    }
  }
}

ad_status nn_image_draw_values(nn_image *image, int x, int y, const float *values, int rows,
                               int cols, double low, double high, nn_colormap map, int scale) {
  if (!image) return AD_ERR_ARGUMENT;
  if (!values || rows < 1 || cols < 1 || scale < 1 || !(low < high))
    return ad_set_error(image->ctx, AD_ERR_ARGUMENT,
                        "nn_image_draw_values: invalid arguments: values %s, %d x %d values, "
                        "scale %d, range [%g, %g]; sizes and scale must be positive and low < "
                        "high",
                        values ? "given" : "NULL", rows, cols, scale, low, high);
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) {
      double t = ((double)values[(size_t)r * (size_t)cols + (size_t)c] - low) / (high - low);
      nn_image_fill_rect(image, x + c * scale, y + r * scale, scale, scale,
                         nn_colormap_color(map, t));
    }
  return AD_OK;
}

/* ---- Font ---------------------------------------------------------------- */

/* A 5 x 7 glyph: seven rows, top first, bit 4 the leftmost pixel. */
typedef struct glyph {
  char c;
  uint8_t rows[7];
} glyph;

static const glyph font[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
    {'=', {0, 0, 0x1F, 0, 0x1F, 0, 0}},
    {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
    {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},
    {'|', {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
};

static const glyph *find_glyph(char c) {
  if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
  const glyph *unknown = NULL;
  for (size_t i = 0; i < sizeof font / sizeof font[0]; i++) {
    if (font[i].c == c) return &font[i];
    if (font[i].c == '?') unknown = &font[i];
  }
  return unknown;
}

int nn_image_text_width(const char *text, int scale) {
  return text && scale > 0 ? (int)strlen(text) * 6 * scale : 0;
}

int nn_image_draw_text(nn_image *image, int x, int y, const char *text, nn_rgb color, int scale) {
  if (!image || !text || scale < 1) return 0;
  int start = x;
  for (const char *c = text; *c; c++, x += 6 * scale) {
    const glyph *g = find_glyph(*c);
    for (int row = 0; row < 7; row++)
      for (int col = 0; col < 5; col++)
        if (g->rows[row] & (0x10 >> col))
          nn_image_fill_rect(image, x + col * scale, y + row * scale, scale, scale, color);
  }
  return x - start;
}
