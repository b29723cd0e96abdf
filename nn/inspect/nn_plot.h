/*
 * nn_plot.h: line plots written as SVG, with no dependency.
 *
 * A figure is one or more panels laid out in a grid. Each panel has its own
 * axes with ticks and labels, one polyline per series and a legend on its
 * right. NaN and infinite values (and values <= 0 on a logarithmic axis) are
 * not drawn: the line breaks there, a small mark on the panel's top or bottom
 * edge shows where they were, and the legend counts them. A constant series
 * gets a range around its value, and a panel without finite values shows
 * a message instead of lines.
 */
#ifndef NN_PLOT_H
#define NN_PLOT_H

#include <stdio.h>

#include "autodiff.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The size of a panel when nn_plot leaves it 0, in pixels. */
#define NN_PLOT_DEFAULT_WIDTH 640
#define NN_PLOT_DEFAULT_HEIGHT 360

/* One line of a panel. */
typedef struct nn_plot_series {
  const char *name;  /* legend text, or NULL for none */
  const double *x;   /* count values, or NULL for 0, 1, 2, ... */
  const double *y;   /* count values */
  int64_t count;
  const char *color; /* "#rrggbb", or NULL for the next colour of the palette */
  bool markers;      /* also draw a dot at every drawn point */
  double opacity;    /* of the line, in (0, 1]; 0 picks 1 */
} nn_plot_series;

/* One panel: axes and the series drawn on them. */
typedef struct nn_plot {
  const char *title;   /* above the panel, or NULL */
  const char *x_label; /* or NULL */
  const char *y_label; /* or NULL */
  int width, height;   /* pixels; 0 picks the defaults above */
  bool log_y;          /* logarithmic y axis with ticks at powers of 10 */
  int series_count;
  const nn_plot_series *series;
} nn_plot;

/* Returns colour index (modulo 10) of the palette that series without a
   colour take in turn: Tableau's ten categorical colours, "#1f77b4" first. */
const char *nn_plot_palette_color(int index);

/* Writes count panels as one SVG document to stream, columns panels per row
   (columns <= 0 means one row). Every panel takes the width and height of
   panels[0], so the image is columns * width by rows * height pixels.
   Returns AD_OK, AD_ERR_ARGUMENT for missing or invalid fields (the message
   names the panel and series), or AD_ERR_IO after a failed write. The
   stream stays open. */
ad_status nn_plot_write_svg(ad_ctx *ctx, const nn_plot *panels, int count, int columns,
                            FILE *stream);

/* Writes the same document to a new file at path and closes it. Fails with
   AD_ERR_IO when the file cannot be created, written or closed; a partly
   written regular file is then removed. */
ad_status nn_plot_save_svg(ad_ctx *ctx, const nn_plot *panels, int count, int columns,
                           const char *path);

#ifdef __cplusplus
}
#endif

#endif /* NN_PLOT_H */
