/* grad_report.c: gradient norms per parameter and per layer after backward. */
#include <math.h>
#include <string.h>

#include "nn_monitor.h"

/* The figures of one parameter from its accumulated gradient. */
static void measure(const nn_named_tensor *item, nn_grad_stat *stat) {
  ad_tensor *t = item->tensor;
  memset(stat, 0, sizeof *stat);
  snprintf(stat->name, sizeof stat->name, "%s", item->name);
  if (!t) return;
  stat->numel = ad_numel(t);
  double sum = 0;
  for (int64_t i = 0; i < stat->numel; i++) {
    double v = ad_tensor_dtype(t) == AD_F32 ? ad_data_f32(t)[i] : ad_data_f64(t)[i];
    sum += v * v;
  }
  stat->param_norm = sqrt(sum);
  ad_tensor *g = ad_grad(t);
  if (!g) return;
  stat->has_grad = true;
  sum = 0;
  for (int64_t i = 0; i < stat->numel; i++) {
    double v = ad_tensor_dtype(g) == AD_F32 ? ad_data_f32(g)[i] : ad_data_f64(g)[i];
    if (!isfinite(v)) stat->nonfinite++;
    sum += v * v;
    if (isnan(v)) stat->max_abs = NAN;
    else if (fabs(v) > stat->max_abs) stat->max_abs = fabs(v); /* false once max_abs is NaN */
  }
  stat->norm = sqrt(sum);
  stat->rms = stat->numel > 0 ? stat->norm / sqrt((double)stat->numel) : 0;
}

/* Writes the layer part of name (before its last dot) into layer. */
static void layer_of(const char *name, char *layer, size_t capacity) {
  const char *dot = strrchr(name, '.');
  size_t n = dot ? (size_t)(dot - name) : 0;
  if (n >= capacity) n = capacity - 1;
  memcpy(layer, name, n);
  layer[n] = '\0';
}

/* Groups the parameters into layers; consecutive parameters of one layer
   form one group, as nn_layer_collect_params lists them. */
static void group_layers(nn_grad_report *r) {
  r->layer_count = 0;
  for (int i = 0; i < r->count; i++) {
    char name[NN_NAME_MAX];
    layer_of(r->stats[i].name, name, sizeof name);
    nn_grad_layer *layer = r->layer_count ? &r->layers[r->layer_count - 1] : NULL;
    if (!layer || strcmp(layer->name, name) != 0) {
      layer = &r->layers[r->layer_count++];
      memset(layer, 0, sizeof *layer);
      memcpy(layer->name, name, sizeof name);
      layer->first_param = i;
    }
    layer->param_count++;
    layer->norm = hypot(layer->norm, r->stats[i].norm);
    layer->numel += r->stats[i].numel;
    layer->nonfinite += r->stats[i].nonfinite;
  }
}

ad_status nn_grad_report_compute(const nn_tensor_list *params, nn_grad_report *report) {
  if (!report) return params ? ad_set_error(params->ctx, AD_ERR_ARGUMENT,
                                            "nn_grad_report_compute: the report is NULL")
                             : AD_ERR_ARGUMENT;
  memset(report, 0, sizeof *report);
  if (!params) return AD_ERR_ARGUMENT;
  ad_ctx *ctx = params->ctx;
  int count = (int)params->count;
  size_t stats_bytes = (size_t)(count ? count : 1) * sizeof(nn_grad_stat);
  size_t layers_bytes = (size_t)(count ? count : 1) * sizeof(nn_grad_layer);
  nn_grad_stat *stats = ad_malloc(ctx, stats_bytes);
  nn_grad_layer *layers = stats ? ad_malloc(ctx, layers_bytes) : NULL;
  if (!layers) {
    ad_free(ctx, stats, stats_bytes);
    return AD_ERR_MEMORY;
  }
  *report = (nn_grad_report){.ctx = ctx, .count = count, .stats = stats, .layers = layers};
  double sum = 0;
  for (int i = 0; i < count; i++) {
    measure(&params->items[i], &stats[i]);
    sum += stats[i].norm * stats[i].norm;
    report->nonfinite += stats[i].nonfinite;
  }
  report->global_norm = sqrt(sum);
  group_layers(report);
  return AD_OK;
}

void nn_grad_report_release(nn_grad_report *report) {
  if (!report || !report->ctx) return;
  size_t n = (size_t)(report->count ? report->count : 1);
  ad_free(report->ctx, report->stats, n * sizeof(nn_grad_stat));
  ad_free(report->ctx, report->layers, n * sizeof(nn_grad_layer));
  memset(report, 0, sizeof *report);
}

double nn_grad_global_norm(const nn_tensor_list *params) {
  if (!params) return NAN;
  double sum = 0;
  for (int64_t i = 0; i < params->count; i++) {
    ad_tensor *g = params->items[i].tensor ? ad_grad(params->items[i].tensor) : NULL;
    if (!g) continue;
    bool f32 = ad_tensor_dtype(g) == AD_F32;
    for (int64_t j = 0; j < ad_numel(g); j++) {
      double v = f32 ? ad_data_f32(g)[j] : ad_data_f64(g)[j];
      sum += v * v;
    }
  }
  return sqrt(sum);
}

/* ---- The table --------------------------------------------------------- */

#define BAR_WIDTH 30
#define BAR_LOW_EXPONENT (-12)
#define BAR_HIGH_EXPONENT 3

/* Writes a bar whose length grows with log10(norm) from 1e-12 to 1e+3. */
static int print_bar(FILE *stream, double norm) {
  int length = 0;
  if (norm > 0 && isfinite(norm)) {
    double t = (log10(norm) - BAR_LOW_EXPONENT) / (BAR_HIGH_EXPONENT - BAR_LOW_EXPONENT);
    length = (int)lround(fmin(fmax(t, 0), 1) * BAR_WIDTH);
    if (length == 0) length = 1;
  }
  char bar[BAR_WIDTH + 1];
  memset(bar, '#', (size_t)length);
  bar[length] = '\0';
  return fprintf(stream, "|%-*s|", BAR_WIDTH, bar);
}

ad_status nn_grad_report_print(const nn_grad_report *report, FILE *stream) {
  if (!report || !stream) return AD_ERR_ARGUMENT;
  bool ok = fprintf(stream, "%-22s %10s %11s %11s %11s %11s  %s\n", "parameter", "elements",
                    "grad norm", "grad rms", "max |grad|", "param norm",
                    "grad norm, log scale 1e-12 .. 1e+3") >= 0;
  for (int i = 0; ok && i < report->count; i++) {
    const nn_grad_stat *s = &report->stats[i];
    ok = fprintf(stream, "%-22s %10lld ", s->name, (long long)s->numel) >= 0;
    if (ok && !s->has_grad) ok = fprintf(stream, "%11s %11s %11s %11.4g  (no gradient)\n", "-",
                                         "-", "-", s->param_norm) >= 0;
    if (!ok || !s->has_grad) continue;
    ok = fprintf(stream, "%11.4g %11.4g %11.4g %11.4g  ", s->norm, s->rms, s->max_abs,
                 s->param_norm) >= 0 &&
         print_bar(stream, s->norm) >= 0;
    if (ok && s->nonfinite > 0)
      ok = fprintf(stream, " %lld NaN or inf", (long long)s->nonfinite) >= 0;
    if (ok) ok = fputc('\n', stream) != EOF;
  }
  if (ok) ok = fprintf(stream, "global gradient norm %.6g over %d parameters%s\n",
                       report->global_norm, report->count,
                       report->nonfinite > 0 ? ", with NaN or inf elements" : "") >= 0;
  if (!ok || ferror(stream)) {
    if (report->ctx)
      return ad_set_error(report->ctx, AD_ERR_IO, "nn_grad_report_print: writing the table failed");
    return AD_ERR_IO;
  }
  return AD_OK;
}
