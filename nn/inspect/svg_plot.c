/* svg_plot.c: line plots as SVG documents (see nn_plot.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn_plot.h"

#define MAX_PANEL_SIZE 20000
#define MIN_PANEL_WIDTH 160
#define MIN_PANEL_HEIGHT 120
#define LINEAR_TICKS 5 /* the tick count the nice step aims at */
#define MAX_LOG_TICKS 8

/* Tableau's ten categorical colours, as matplotlib's default cycle uses them. */
static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define PALETTE_SIZE ((int)(sizeof palette / sizeof palette[0]))

/* A stream with a sticky failure flag, checked once at the end. */
typedef struct svg_out {
  FILE *stream;
  bool failed;
} svg_out;

static void emit(svg_out *o, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void emit(svg_out *o, const char *format, ...) {
  if (o->failed) return;
  va_list args;
  va_start(args, format);
  if (vfprintf(o->stream, format, args) < 0) o->failed = true;
  va_end(args);
}

/* Writes text with the five XML special characters escaped. */
static void emit_text(svg_out *o, const char *text) {
  for (const char *c = text; *c && !o->failed; c++) {
    switch (*c) {
    case '&': emit(o, "&amp;"); break;
    case '<': emit(o, "&lt;"); break;
    case '>': emit(o, "&gt;"); break;
    case '"': emit(o, "&quot;"); break;
    case '\'': emit(o, "&apos;"); break;
    default:
      if (fputc(*c, o->stream) == EOF) o->failed = true;
    }
  }
}

/* ---- Axes ------------------------------------------------------------ */

/* One axis: the data range [lo, hi] it shows and its ticks. On a log axis lo
   and hi are exponents of 10. */
typedef struct axis {
  double lo, hi;
  double step; /* tick spacing, in decades on a log axis */
  bool log;
} axis;

/* A tick spacing of 1, 2 or 5 times a power of 10 that gives about
   LINEAR_TICKS ticks over [lo, hi]. */
static double nice_step(double lo, double hi) {
  double raw = (hi / LINEAR_TICKS) - (lo / LINEAR_TICKS); /* no overflow near DBL_MAX */
  double magnitude = pow(10, floor(log10(raw)));
  double fraction = raw / magnitude;
  if (fraction < 1.5) return magnitude;
  if (fraction < 3) return 2 * magnitude;
  if (fraction < 7) return 5 * magnitude;
  return 10 * magnitude;
}

/* Sets a linear axis around the finite range [lo, hi] (lo <= hi), widened
   to whole ticks; a single value gets a range around it. */
static void linear_axis(axis *a, double lo, double hi) {
  if (lo == hi) {
    double pad = lo == 0 ? 1 : fabs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  a->log = false;
  a->step = nice_step(lo, hi);
  a->lo = floor(lo / a->step) * a->step;
  a->hi = ceil(hi / a->step) * a->step;
}

/* Sets a log axis around the positive range [lo, hi], in whole decades. */
static void log_axis(axis *a, double lo, double hi) {
  a->log = true;
  a->lo = floor(log10(lo));
  a->hi = ceil(log10(hi));
  if (a->lo == a->hi) {
    a->lo -= 1;
    a->hi += 1;
  }
  a->step = ceil((a->hi - a->lo) / MAX_LOG_TICKS);
  a->hi = a->lo + ceil((a->hi - a->lo) / a->step) * a->step; /* end on a tick */
}

/* The position of value v along an axis drawn from p0 to p1 pixels. */
static double axis_map(const axis *a, double v, double p0, double p1) {
  double t = a->log ? log10(v) : v;
  return p0 + (t - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

/* Writes a tick label: a decimal with as many digits as the step needs, or
   a power of 10 with a superscript exponent on a log axis. */
static void emit_tick_label(svg_out *o, const axis *a, double t) {
  if (a->log) {
    int e = (int)lround(t);
    if (e >= -3 && e <= 3) emit(o, "%.*f", e < 0 ? -e : 0, pow(10, e));
    else emit(o, "10<tspan dy=\"-6\" font-size=\"9\">%d</tspan>", e);
    return;
  }
  if (fabs(t) < a->step * 1e-9) t = 0; /* no "-0" */
  double largest = fmax(fabs(a->lo), fabs(a->hi));
  if (largest >= 1e6 || a->step < 1e-4) {
    emit(o, "%.3g", t);
    return;
  }
  int decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
  emit(o, "%.*f", decimals, t);
}

/* ---- Panels ---------------------------------------------------------- */

/* A panel's pixel frame: the panel at (x, y) and its plot area inside. */
typedef struct frame {
  double x, y, width, height;
  double left, right, top, bottom; /* the plot area */
} frame;

static bool point_drawable(const nn_plot *p, double x, double y) {
  return isfinite(x) && isfinite(y) && (!p->log_y || y > 0);
}

static double x_value(const nn_plot_series *s, int64_t i) { return s->x ? s->x[i] : (double)i; }

/* Sets the axes of panel p from its drawable points; returns the number of
   drawable points. */
static int64_t fit_axes(const nn_plot *p, axis *ax, axis *ay) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  int64_t points = 0;
  for (int k = 0; k < p->series_count; k++) {
    const nn_plot_series *s = &p->series[k];
    for (int64_t i = 0; i < s->count; i++) {
      double x = x_value(s, i), y = s->y[i];
      if (!point_drawable(p, x, y)) continue;
      xlo = fmin(xlo, x);
      xhi = fmax(xhi, x);
      ylo = fmin(ylo, y);
      yhi = fmax(yhi, y);
      points++;
    }
  }
  if (points == 0) {
    xlo = 0;
    xhi = 1;
    ylo = p->log_y ? 1 : 0;
    yhi = p->log_y ? 10 : 1;
  }
  linear_axis(ax, xlo, xhi);
  if (p->log_y) log_axis(ay, ylo, yhi);
  else linear_axis(ay, ylo, yhi);
  return points;
}

const char *nn_plot_palette_color(int index) {
  int i = index % PALETTE_SIZE;
  return palette[i < 0 ? i + PALETTE_SIZE : i];
}

static const char *series_color(const nn_plot_series *s, int k) {
  return s->color ? s->color : palette[k % PALETTE_SIZE];
}

static int64_t undrawn_count(const nn_plot *p, const nn_plot_series *s) {
  int64_t n = 0;
  for (int64_t i = 0; i < s->count; i++) n += !point_drawable(p, x_value(s, i), s->y[i]);
  return n;
}

/* Lays out the plot area, leaving room for the title, the labels and a
   legend as wide as its longest entry. */
static frame layout(const nn_plot *p, double x, double y, double width, double height) {
  size_t longest = 0;
  for (int k = 0; k < p->series_count; k++) {
    const nn_plot_series *s = &p->series[k];
    size_t len = s->name ? strlen(s->name) : 0;
    if (len && undrawn_count(p, s) > 0) len += 16; /* " (12 not drawn)" */
    if (len > longest) longest = len;
  }
  /* About 7 pixels per character at font-size 12. */
  double legend = longest ? fmin(40 + 7.0 * (double)longest, width * 0.45) : 16;
  frame f = {x, y, width, height, 0, 0, 0, 0};
  f.left = x + 70;
  f.right = x + width - legend;
  f.top = y + (p->title ? 36 : 14);
  f.bottom = y + height - (p->x_label ? 50 : 32);
  return f;
}

/* Draws a grid line, a tick and its label at t on the y axis; label NULL
   formats t as the axis does. */
static void draw_y_tick(svg_out *o, const frame *f, const axis *ay, double t, const char *label) {
  double py = f->bottom - (t - ay->lo) / (ay->hi - ay->lo) * (f->bottom - f->top);
  emit(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>\n",
       f->left, py, f->right, py);
  emit(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\"/>\n",
       f->left - 5, py, f->left, py);
  emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", f->left - 8, py + 4);
  if (label) emit_text(o, label);
  else emit_tick_label(o, ay, t);
  emit(o, "</text>\n");
}

static void draw_axes(svg_out *o, const nn_plot *p, const frame *f, const axis *ax,
                      const axis *ay) {
  emit(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
          "stroke=\"#888888\"/>\n",
       f->left, f->top, f->right - f->left, f->bottom - f->top);
  /* Ticks are computed by index, so rounding never adds or drops one. */
  int xticks = (int)lround((ax->hi - ax->lo) / ax->step);
  for (int i = 0; i <= xticks; i++) {
    double t = ax->lo + i * ax->step;
    double px = axis_map(ax, t, f->left, f->right);
    emit(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e6e6e6\"/>\n", px,
         f->top, px, f->bottom);
    emit(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\"/>\n", px,
         f->bottom, px, f->bottom + 5);
    emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px, f->bottom + 18);
    emit_tick_label(o, ax, t);
    emit(o, "</text>\n");
  }
  int yticks = (int)lround((ay->hi - ay->lo) / ay->step);
  for (int i = 0; i <= yticks; i++) {
    double t = ay->lo + i * ay->step;
    draw_y_tick(o, f, ay, t, NULL);
    /* One or two decades get ticks at 2 and 5 times each power of 10 too. */
    if (!ay->log || ay->hi - ay->lo > 2 || i == yticks) continue;
    char label[32];
    for (int m = 2; m <= 5; m += 3) {
      snprintf(label, sizeof label, "%g", m * pow(10, t));
      draw_y_tick(o, f, ay, t + log10(m), label);
    }
  }
  if (p->title) {
    emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
            "font-weight=\"bold\">",
         (f->left + f->right) / 2, f->y + 22);
    emit_text(o, p->title);
    emit(o, "</text>\n");
  }
  if (p->x_label) {
    emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (f->left + f->right) / 2,
         f->bottom + 38);
    emit_text(o, p->x_label);
    emit(o, "</text>\n");
  }
  if (p->y_label) {
    double cx = f->x + 16, cy = (f->top + f->bottom) / 2;
    emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
         cx, cy, cx, cy);
    emit_text(o, p->y_label);
    emit(o, "</text>\n");
  }
}

/* Marks the run of undrawable y values that starts at index first: a
   triangle at its first x and a band along the edge to its last x. NaN and
   +inf are marked at the top edge, -inf and y <= 0 of a log axis at the
   bottom. Returns the index of the run's last point. */
static int64_t draw_undrawn_run(svg_out *o, const nn_plot *p, const nn_plot_series *s,
                                int64_t first, const char *color, const frame *f, const axis *ax) {
  double y = s->y[first];
  bool low = y < 0 || (p->log_y && y == 0);
  int64_t last = first;
  while (last + 1 < s->count && isfinite(x_value(s, last + 1)) &&
         !point_drawable(p, x_value(s, last + 1), s->y[last + 1]))
    last++;
  double x0 = axis_map(ax, x_value(s, first), f->left, f->right);
  double x1 = axis_map(ax, x_value(s, last), f->left, f->right);
  double edge = low ? f->bottom : f->top;
  double tip = low ? edge - 7 : edge + 7;
  emit(o, "<path d=\"M%.2f,%.2f L%.2f,%.2f L%.2f,%.2f Z\" fill=\"%s\" opacity=\"0.8\"/>\n",
       x0 - 4, edge, x0 + 4, edge, x0, tip, color);
  if (last > first)
    emit(o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"3\" fill=\"%s\" "
            "opacity=\"0.5\"/>\n",
         x0, low ? edge - 3 : edge, x1 - x0, color);
  return last;
}

/* Draws one series: a path broken at undrawable points, dots for markers
   and isolated points, and a mark on the edge for each run of undrawable y. */
static void draw_series(svg_out *o, const nn_plot *p, const nn_plot_series *s, int k,
                        const frame *f, const axis *ax, const axis *ay) {
  const char *color = series_color(s, k);
  bool open = false;
  for (int64_t i = 0; i < s->count; i++) {
    double x = x_value(s, i), y = s->y[i];
    if (!point_drawable(p, x, y)) {
      open = false;
      continue;
    }
    bool next_drawable = i + 1 < s->count && point_drawable(p, x_value(s, i + 1), s->y[i + 1]);
    if (!open && !next_drawable) continue; /* an isolated point is drawn as a dot below */
    double px = axis_map(ax, x, f->left, f->right);
    double py = f->bottom - axis_map(ay, y, 0, f->bottom - f->top);
    if (open)
      emit(o, " L%.2f,%.2f", px, py);
    else
      emit(o, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" stroke-opacity=\"%.2f\" "
              "stroke-linejoin=\"round\" d=\"M%.2f,%.2f",
           color, s->opacity > 0 ? s->opacity : 1.0, px, py);
    open = next_drawable;
    if (!open) emit(o, "\"/>\n");
  }
  for (int64_t i = 0; i < s->count; i++) {
    double x = x_value(s, i), y = s->y[i];
    bool drawable = point_drawable(p, x, y);
    bool isolated = drawable && (i == 0 || !point_drawable(p, x_value(s, i - 1), s->y[i - 1])) &&
                    (i + 1 == s->count || !point_drawable(p, x_value(s, i + 1), s->y[i + 1]));
    if (drawable && (s->markers || isolated))
      emit(o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n",
           axis_map(ax, x, f->left, f->right),
           f->bottom - axis_map(ay, y, 0, f->bottom - f->top), color);
    else if (!drawable && isfinite(x))
      i = draw_undrawn_run(o, p, s, i, color, f, ax);
  }
}

static void draw_legend(svg_out *o, const nn_plot *p, const frame *f) {
  double y = f->top + 10;
  for (int k = 0; k < p->series_count; k++) {
    const nn_plot_series *s = &p->series[k];
    if (!s->name) continue;
    double x = f->right + 12;
    emit(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"3\"/>\n",
         x, y, x + 20, y, series_color(s, k));
    emit(o, "<text x=\"%.1f\" y=\"%.1f\">", x + 26, y + 4);
    emit_text(o, s->name);
    int64_t undrawn = undrawn_count(p, s);
    if (undrawn > 0) emit(o, " (%lld not drawn)", (long long)undrawn);
    emit(o, "</text>\n");
    y += 20;
  }
}

static void draw_panel(svg_out *o, const nn_plot *p, double x, double y, double width,
                       double height) {
  axis ax, ay;
  int64_t points = fit_axes(p, &ax, &ay);
  frame f = layout(p, x, y, width, height);
  draw_axes(o, p, &f, &ax, &ay);
  for (int k = 0; k < p->series_count; k++) draw_series(o, p, &p->series[k], k, &f, &ax, &ay);
  if (points == 0)
    emit(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#c00000\">"
            "no finite values to draw</text>\n",
         (f.left + f.right) / 2, (f.top + f.bottom) / 2);
  draw_legend(o, p, &f);
}

/* ---- Checks and documents ---------------------------------------------- */

static bool valid_color(const char *c) {
  if (strlen(c) != 7 || c[0] != '#') return false;
  for (int i = 1; i < 7; i++)
    if (!strchr("0123456789abcdefABCDEF", c[i])) return false;
  return true;
}

static ad_status check_panels(ad_ctx *ctx, const nn_plot *panels, int count) {
  const char *fn = "nn_plot_write_svg";
  if (!panels || count < 1)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: needs at least one panel (got %d)", fn, count);
  int width = panels[0].width ? panels[0].width : NN_PLOT_DEFAULT_WIDTH;
  int height = panels[0].height ? panels[0].height : NN_PLOT_DEFAULT_HEIGHT;
  if (width < MIN_PANEL_WIDTH || height < MIN_PANEL_HEIGHT || width > MAX_PANEL_SIZE ||
      height > MAX_PANEL_SIZE)
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "%s: a panel of %d x %d pixels is invalid; use %d to %d by %d to %d, or 0 "
                        "for %d x %d",
                        fn, width, height, MIN_PANEL_WIDTH, MAX_PANEL_SIZE, MIN_PANEL_HEIGHT,
                        MAX_PANEL_SIZE, NN_PLOT_DEFAULT_WIDTH, NN_PLOT_DEFAULT_HEIGHT);
  for (int i = 0; i < count; i++) {
    const nn_plot *p = &panels[i];
    if (p->series_count < 0 || (p->series_count > 0 && !p->series))
      return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: panel %d has %d series but no series array",
                          fn, i, p->series_count);
    for (int k = 0; k < p->series_count; k++) {
      const nn_plot_series *s = &p->series[k];
      if (s->count < 0 || (s->count > 0 && !s->y))
        return ad_set_error(ctx, AD_ERR_ARGUMENT,
                            "%s: series %d of panel %d has count %lld and %s y values", fn, k, i,
                            (long long)s->count, s->y ? "valid" : "no");
      if (!(s->opacity >= 0 && s->opacity <= 1))
        return ad_set_error(ctx, AD_ERR_ARGUMENT,
                            "%s: series %d of panel %d has opacity %g; use 0 to 1", fn, k, i,
                            s->opacity);
      if (s->color && !valid_color(s->color))
        return ad_set_error(ctx, AD_ERR_ARGUMENT,
                            "%s: series %d of panel %d has the invalid colour \"%.20s\"; use "
                            "\"#rrggbb\" or NULL",
                            fn, k, i, s->color);
    }
  }
  return AD_OK;
}

ad_status nn_plot_write_svg(ad_ctx *ctx, const nn_plot *panels, int count, int columns,
                            FILE *stream) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!stream) return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_plot_write_svg: the stream is NULL");
  ad_status st = check_panels(ctx, panels, count);
  if (st != AD_OK) return st;
  if (columns <= 0 || columns > count) columns = count;
  int rows = (count + columns - 1) / columns;
  int width = panels[0].width ? panels[0].width : NN_PLOT_DEFAULT_WIDTH;
  int height = panels[0].height ? panels[0].height : NN_PLOT_DEFAULT_HEIGHT;

  svg_out o = {stream, false};
  emit(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  emit(&o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" "
           "font-size=\"12\" fill=\"#333333\">\n",
       columns * width, rows * height, columns * width, rows * height);
  emit(&o, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fafafa\"/>\n");
  for (int i = 0; i < count; i++)
    draw_panel(&o, &panels[i], (double)(i % columns) * width, (double)(i / columns) * height,
               width, height);
  emit(&o, "</svg>\n");
  if (!o.failed && fflush(stream) == EOF) o.failed = true;
  if (o.failed || ferror(stream))
    return ad_set_error(ctx, AD_ERR_IO, "nn_plot_write_svg: writing the SVG document failed");
  return AD_OK;
}

ad_status nn_plot_save_svg(ad_ctx *ctx, const nn_plot *panels, int count, int columns,
                           const char *path) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path) return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_plot_save_svg: the path is NULL");
  FILE *f = fopen(path, "w");
  if (!f)
    return ad_set_error(ctx, AD_ERR_IO, "nn_plot_save_svg: cannot create \"%s\"; check that the "
                        "folder exists and is writable", path);
  /* Only a regular file may be removed after a failure: path may name a
     device or a pipe. */
  struct stat file_stat;
  bool regular = fstat(fileno(f), &file_stat) == 0 && S_ISREG(file_stat.st_mode);
  ad_status st = nn_plot_write_svg(ctx, panels, count, columns, f);
  if (fclose(f) != 0 && st == AD_OK)
    st = ad_set_error(ctx, AD_ERR_IO, "nn_plot_save_svg: closing \"%s\" failed", path);
  if (st != AD_OK && regular) unlink(path);
  return st;
}
