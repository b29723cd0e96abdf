/* train_log.c: a CSV log of training and its plot (see nn_monitor.h). */
#include <math.h>
#include <string.h>

#include "nn_monitor.h"
#include "nn_plot.h"

struct nn_train_log {
  ad_ctx *ctx;
  FILE *file;
  char path[512]; /* for messages */
  nn_train_record *records;
  int64_t count;
  int64_t capacity;
};

nn_train_log *nn_train_log_open(ad_ctx *ctx, const char *path) {
  if (!ctx) return NULL;
  if (!path) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_train_log_open: the path is NULL");
    return NULL;
  }
  nn_train_log *log = ad_malloc(ctx, sizeof *log);
  if (!log) return NULL;
  memset(log, 0, sizeof *log);
  log->ctx = ctx;
  snprintf(log->path, sizeof log->path, "%s", path);
  log->file = fopen(path, "w");
  if (!log->file) {
    ad_set_error(ctx, AD_ERR_IO, "nn_train_log_open: cannot create \"%s\"; check that the "
                 "folder exists and is writable", path);
    ad_free(ctx, log, sizeof *log);
    return NULL;
  }
  if (fputs("step,epoch,loss,accuracy,learning_rate,grad_norm\n", log->file) == EOF ||
      fflush(log->file) == EOF) {
    ad_set_error(ctx, AD_ERR_IO, "nn_train_log_open: writing the header of \"%s\" failed", path);
    fclose(log->file);
    ad_free(ctx, log, sizeof *log);
    return NULL;
  }
  return log;
}

/* Writes one CSV cell: %.9g for finite values, nan, inf or -inf. */
static int write_cell(FILE *f, double v) {
  if (isnan(v)) return fputs(",nan", f);
  if (isinf(v)) return fputs(v > 0 ? ",inf" : ",-inf", f);
  return fprintf(f, ",%.9g", v);
}

/* Makes room for one more record in memory. */
static ad_status reserve_record(nn_train_log *log) {
  if (log->count == log->capacity) {
    int64_t capacity = log->capacity ? 2 * log->capacity : 256;
    nn_train_record *grown = ad_malloc(log->ctx, (size_t)capacity * sizeof *grown);
    if (!grown) return AD_ERR_MEMORY;
    if (log->count) memcpy(grown, log->records, (size_t)log->count * sizeof *grown);
    ad_free(log->ctx, log->records, (size_t)log->capacity * sizeof *grown);
    log->records = grown;
    log->capacity = capacity;
  }
  return AD_OK;
}

ad_status nn_train_log_append(nn_train_log *log, const nn_train_record *record) {
  if (!log) return AD_ERR_ARGUMENT;
  if (!record)
    return ad_set_error(log->ctx, AD_ERR_ARGUMENT, "nn_train_log_append: the record is NULL");
  /* Room for the in-memory copy first, so that running out of memory
     leaves both the file and the records without this row. */
  ad_status st = reserve_record(log);
  if (st != AD_OK) return st;
  FILE *f = log->file;
  bool ok = fprintf(f, "%lld,%lld", (long long)record->step, (long long)record->epoch) >= 0 &&
            write_cell(f, record->loss) >= 0 && write_cell(f, record->accuracy) >= 0 &&
            write_cell(f, record->learning_rate) >= 0 && write_cell(f, record->grad_norm) >= 0 &&
            fputc('\n', f) != EOF && fflush(f) != EOF;
  if (!ok)
    return ad_set_error(log->ctx, AD_ERR_IO, "nn_train_log_append: writing row %lld of \"%s\" "
                        "failed", (long long)log->count + 1, log->path);
  log->records[log->count++] = *record;
  return AD_OK;
}

int64_t nn_train_log_count(const nn_train_log *log) { return log ? log->count : 0; }

const nn_train_record *nn_train_log_records(const nn_train_log *log) {
  return log ? log->records : NULL;
}

ad_status nn_train_log_close(nn_train_log *log) {
  if (!log) return AD_OK;
  ad_ctx *ctx = log->ctx;
  ad_status st = AD_OK;
  if (fclose(log->file) != 0)
    st = ad_set_error(ctx, AD_ERR_IO, "nn_train_log_close: closing \"%s\" failed", log->path);
  ad_free(ctx, log->records, (size_t)log->capacity * sizeof *log->records);
  ad_free(ctx, log, sizeof *log);
  return st;
}

/* ---- Plot ---------------------------------------------------------------- */

enum { PANEL_LOSS, PANEL_ACCURACY, PANEL_LR, PANEL_GRAD_NORM, PANEL_COUNT };

/* Logs longer than this get a smoothed line over their faint raw line. */
#define SMOOTH_MIN_ROWS 50
/* The smoothing window is about this fraction of the log's length. */
#define SMOOTH_FRACTION 0.05

/* Writes the exponential moving average of y[0 .. n) into out. A NaN or
   inf value stays as it is and restarts the average after it. */
static void smooth(const double *y, int64_t n, double *out) {
  double window = fmax(1, SMOOTH_FRACTION * (double)n);
  double alpha = 2 / (window + 1);
  bool started = false;
  double average = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(y[i])) {
      out[i] = y[i];
      started = false;
      continue;
    }
    average = started ? average + alpha * (y[i] - average) : y[i];
    started = true;
    out[i] = average;
  }
}

static double field(const nn_train_record *r, int panel) {
  switch (panel) {
  case PANEL_LOSS: return r->loss;
  case PANEL_ACCURACY: return r->accuracy;
  case PANEL_LR: return r->learning_rate;
  default: return r->grad_norm;
  }
}

ad_status nn_train_log_plot(ad_ctx *ctx, const nn_train_log *const *logs,
                            const char *const *names, int count, const char *title,
                            const char *path) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!logs || count < 1)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_train_log_plot: needs at least one log");
  for (int i = 0; i < count; i++)
    if (!logs[i]) return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_train_log_plot: log %d is NULL", i);

  /* One block contains the x values and the four raw and four smoothed y
     arrays of every log. Each log has a raw and a smoothed series per panel. */
  int64_t rows = 0;
  for (int i = 0; i < count; i++) rows += logs[i]->count;
  size_t bytes = (size_t)(rows ? rows : 1) * (1 + 2 * PANEL_COUNT) * sizeof(double);
  size_t series_bytes = (size_t)count * PANEL_COUNT * 2 * sizeof(nn_plot_series);
  double *values = ad_malloc(ctx, bytes);
  nn_plot_series *series = values ? ad_malloc(ctx, series_bytes) : NULL;
  if (!series) {
    ad_free(ctx, values, bytes);
    return AD_ERR_MEMORY;
  }

  double *next = values;
  for (int i = 0; i < count; i++) {
    const nn_train_log *log = logs[i];
    double *x = next;
    next += log->count;
    for (int64_t j = 0; j < log->count; j++) x[j] = (double)log->records[j].step;
    const char *color = nn_plot_palette_color(i);
    const char *name = names ? names[i] : NULL;
    bool smoothed = log->count > SMOOTH_MIN_ROWS;
    for (int panel = 0; panel < PANEL_COUNT; panel++) {
      double *y = next, *y_smooth = next + log->count;
      next += 2 * log->count;
      for (int64_t j = 0; j < log->count; j++) y[j] = field(&log->records[j], panel);
      smooth(y, log->count, y_smooth);
      nn_plot_series *pair = &series[2 * (panel * count + i)];
      /* The legend names the smoothed line when there is one. */
      pair[0] = (nn_plot_series){.name = smoothed ? NULL : name,
                                 .x = x, .y = y, .count = log->count, .color = color,
                                 .opacity = smoothed ? 0.25 : 1};
      pair[1] = (nn_plot_series){.name = name, .x = x, .y = y_smooth,
                                 .count = smoothed ? log->count : 0, .color = color};
    }
  }

  static const char *const titles[PANEL_COUNT] = {"loss (log scale)", "accuracy", "learning rate",
                                                  "global gradient norm (log scale)"};
  char full_titles[PANEL_COUNT][160];
  nn_plot panels[PANEL_COUNT];
  for (int panel = 0; panel < PANEL_COUNT; panel++) {
    if (title) snprintf(full_titles[panel], sizeof full_titles[panel], "%.100s: %s", title,
                        titles[panel]);
    else snprintf(full_titles[panel], sizeof full_titles[panel], "%s", titles[panel]);
    panels[panel] = (nn_plot){.title = full_titles[panel],
                              .x_label = "step",
                              .width = 560,
                              .height = 340,
                              .log_y = panel == PANEL_LOSS || panel == PANEL_GRAD_NORM,
                              .series_count = 2 * count,
                              .series = &series[2 * panel * count]};
  }
  ad_status st = nn_plot_save_svg(ctx, panels, PANEL_COUNT, 2, path);
  ad_free(ctx, series, series_bytes);
  ad_free(ctx, values, bytes);
  return st;
}
