/* train.c: mini-batches, evaluation and progress reports. */
#include <math.h>
#include <unistd.h>

#include "nn_internal.h"

/* ---- Mini-batches ---------------------------------------------------- */

nn_batcher *nn_batcher_new(ad_ctx *ctx, int64_t count, int64_t batch_size, bool drop_last) {
  if (!ctx) return NULL;
  if (count < 1 || batch_size < 1) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_batcher_new: sample count %lld and batch size %lld "
                 "must both be at least 1", (long long)count, (long long)batch_size);
    return NULL;
  }
  if ((uint64_t)count > SIZE_MAX / sizeof(int64_t)) {
    ad_set_error(ctx, AD_ERR_MEMORY, "nn_batcher_new: %lld samples are too many",
                 (long long)count);
    return NULL;
  }
  nn_batcher *b = ad_malloc(ctx, sizeof *b);
  if (!b) return NULL;
  b->order = ad_malloc(ctx, (size_t)count * sizeof *b->order);
  if (!b->order) {
    ad_free(ctx, b, sizeof *b);
    return NULL;
  }
  b->ctx = ctx;
  b->count = count;
  b->batch_size = batch_size;
  b->drop_last = drop_last;
  for (int64_t i = 0; i < count; i++) b->order[i] = i;
  return b;
}

void nn_batcher_free(nn_batcher *b) {
  if (!b) return;
  ad_free(b->ctx, b->order, (size_t)b->count * sizeof *b->order);
  ad_free(b->ctx, b, sizeof *b);
}

void nn_batcher_shuffle(nn_batcher *b, ad_rng *rng) {
  if (!b || !rng) return;
  for (int64_t i = 0; i < b->count; i++) b->order[i] = i;
  for (int64_t i = b->count - 1; i > 0; i--) {
    int64_t j = (int64_t)ad_rng_below(rng, (uint64_t)i + 1);
    int64_t swap = b->order[i];
    b->order[i] = b->order[j];
    b->order[j] = swap;
  }
}

int64_t nn_batcher_batches(const nn_batcher *b) {
  if (!b) return 0;
  return b->drop_last ? b->count / b->batch_size : (b->count + b->batch_size - 1) / b->batch_size;
}

int64_t nn_batcher_batch(const nn_batcher *b, int64_t batch, const int64_t **indices) {
  if (!b || !indices || batch < 0 || batch >= nn_batcher_batches(b)) return 0;
  int64_t start = batch * b->batch_size;
  int64_t n = b->count - start < b->batch_size ? b->count - start : b->batch_size;
  *indices = b->order + start;
  return n;
}

/* ---- Evaluation ------------------------------------------------------ */

void format_shape(char *out, size_t size, int ndim, const int64_t *shape) {
  size_t n = (size_t)snprintf(out, size, "[");
  for (int d = 0; d < ndim && n < size; d++)
    n += (size_t)snprintf(out + n, size - n, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (n < size) snprintf(out + n, size - n, "]");
}

int64_t nn_count_correct(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target) {
  const char *fn = "nn_count_correct";
  if (!ctx || !logits || !target) return -1;
  ad_dtype dtype = ad_tensor_dtype(logits);
  if (ad_tensor_dtype(target) != AD_I64 || (dtype != AD_F32 && dtype != AD_F64)) {
    ad_set_error(ctx, AD_ERR_DTYPE, "%s: needs float32 or float64 logits and int64 targets, got "
                 "%s logits and %s targets; convert with ad_cast", fn, ad_dtype_name(dtype),
                 ad_dtype_name(ad_tensor_dtype(target)));
    return -1;
  }
  if (ad_ndim(logits) != 2 || ad_ndim(target) != 1 || ad_dim(target, 0) != ad_dim(logits, 0)) {
    char logits_shape[200], target_shape[200];
    format_shape(logits_shape, sizeof logits_shape, ad_ndim(logits), ad_shape(logits));
    format_shape(target_shape, sizeof target_shape, ad_ndim(target), ad_shape(target));
    ad_set_error(ctx, AD_ERR_SHAPE, "%s: needs logits [N, C] and targets [N], got logits %s and "
                 "targets %s", fn, logits_shape, target_shape);
    return -1;
  }

  int64_t rows = ad_dim(logits, 0), classes = ad_dim(logits, 1), correct = 0;
  const int64_t *t = ad_data_i64(target);
  for (int64_t i = 0; i < rows; i++) {
    if (t[i] < 0 || t[i] >= classes) {
      ad_set_error(ctx, AD_ERR_INDEX, "%s: target %lld at position %lld is not a class index in "
                   "[0, %lld), the range of the logits' second dimension", fn, (long long)t[i],
                   (long long)i, (long long)classes);
      return -1;
    }
  }

  const float *lf = dtype == AD_F32 ? ad_data_f32(logits) : NULL;
  const double *ld = dtype == AD_F64 ? ad_data_f64(logits) : NULL;
  for (int64_t i = 0; i < rows; i++) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; c++) {
      double v = lf ? lf[i * classes + c] : ld[i * classes + c];
      double top = lf ? lf[i * classes + best] : ld[i * classes + best];
      if (v > top) best = c;
    }
    if (best == t[i]) correct++;
  }
  return correct;
}

/* Runs one evaluation batch and adds its summed loss and correct count. */
static ad_status evaluate_batch(ad_ctx *ctx, nn_layer *model, nn_loss_fn loss, nn_batch_fn load,
                                void *data, const int64_t *indices, int64_t n, double *loss_sum,
                                int64_t *correct, bool *classified) {
  ad_tensor *x = NULL, *y = NULL;
  ad_status status = load(ctx, data, indices, n, &x, &y);
  if (status != AD_OK) return status;
  if (!x || !y)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_evaluate: the batch function returned AD_OK "
                        "without tensors");
  ad_tensor *out = nn_forward(ctx, model, x);
  double value;
  ad_tensor *l = loss(ctx, out, y, AD_REDUCE_SUM);
  if (!l || ad_item(l, &value) != AD_OK)
    return ad_errcode(ctx) != AD_OK ? ad_errcode(ctx) : AD_ERR_ARGUMENT;
  *loss_sum += value;
  if (ad_tensor_dtype(y) == AD_I64 && ad_ndim(out) == 2) {
    int64_t c = nn_count_correct(ctx, out, y);
    if (c < 0) return ad_errcode(ctx);
    *correct += c;
  } else {
    *classified = false;
  }
  return AD_OK;
}

ad_status nn_evaluate(ad_ctx *ctx, nn_layer *model, nn_loss_fn loss, nn_batch_fn load,
                      void *data, int64_t count, int64_t batch_size, nn_eval_result *result) {
  const char *fn = "nn_evaluate";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!model || !loss || !load || !result)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the model, loss, batch function and result "
                        "must not be NULL", fn);
  if (count < 1 || batch_size < 1)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: sample count %lld and batch size %lld must "
                        "both be at least 1", fn, (long long)count, (long long)batch_size);
  bool training = nn_layer_training(model);
  bool recording = ad_set_grad_enabled(ctx, false);
  nn_layer_set_training(model, false);
  /* The indices of one batch, written in place for each batch. */
  int64_t chunk = batch_size < NN_EVAL_MAX_BATCH ? batch_size : NN_EVAL_MAX_BATCH;
  int64_t indices[NN_EVAL_MAX_BATCH];
  double loss_sum = 0;
  int64_t correct = 0;
  bool classified = true;
  ad_status status = AD_OK;
  for (int64_t start = 0; start < count && status == AD_OK; start += chunk) {
    int64_t n = count - start < chunk ? count - start : chunk;
    for (int64_t i = 0; i < n; i++) indices[i] = start + i;
    ad_ctx_reset(ctx);
    status = evaluate_batch(ctx, model, loss, load, data, indices, n, &loss_sum, &correct,
                            &classified);
  }
  nn_layer_set_training(model, training);
  ad_set_grad_enabled(ctx, recording);
  if (status != AD_OK) return status;
  result->loss = loss_sum / (double)count;
  result->accuracy = classified ? (double)correct / (double)count : NAN;
  result->samples = count;
  return AD_OK;
}

/* ---- Progress -------------------------------------------------------- */

void nn_progress_begin(nn_progress *p, FILE *stream, nn_progress_style style, const char *label,
                       int64_t batches) {
  if (!p) return;
  memset(p, 0, sizeof *p);
  p->stream = stream;
  if (style == NN_PROGRESS_AUTO)
    style = stream && isatty(fileno(stream)) ? NN_PROGRESS_BAR : NN_PROGRESS_LINE;
  p->style = style;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->batches = batches;
  p->start = monotonic_seconds();
  p->last_draw = -1;
}

double nn_progress_elapsed(const nn_progress *p) {
  return p ? monotonic_seconds() - p->start : 0;
}

/* Formats seconds as m:ss, or h:mm:ss from an hour on. */
static void format_duration(char *out, size_t size, double seconds) {
  if (!(seconds >= 0) || seconds > 359999) seconds = 0;
  long s = (long)(seconds + 0.5);
  if (s >= 3600) snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

static void draw_bar(nn_progress *p, double now) {
  enum { WIDTH = 30 };
  char bar[WIDTH + 1];
  int64_t total = p->batches > 0 ? p->batches : 1;
  int filled = (int)(WIDTH * (p->batches_done < total ? p->batches_done : total) / total);
  for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
  bar[WIDTH] = '\0';
  double elapsed = now - p->start;
  double rate = elapsed > 0 ? (double)p->samples_done / elapsed : 0;
  double left = p->batches_done > 0 ? elapsed / (double)p->batches_done *
                                          (double)(p->batches - p->batches_done)
                                    : 0;
  char eta[32];
  format_duration(eta, sizeof eta, left);
  double loss = p->batches_done ? p->loss_sum / (double)p->batches_done : 0;
  fprintf(p->stream, "\r%s [%s] %lld/%lld loss %.4f %.0f samples/s %s left ", p->label, bar,
          (long long)p->batches_done, (long long)p->batches, loss, rate, eta);
  fflush(p->stream);
  p->last_draw = now;
}

void nn_progress_update(nn_progress *p, int64_t samples, double loss) {
  if (!p) return;
  p->batches_done++;
  p->samples_done += samples;
  p->loss_sum += loss;
  if (!p->stream || p->style != NN_PROGRESS_BAR) return;
  double now = monotonic_seconds();
  if (p->last_draw < 0 || now - p->last_draw >= 0.1 || p->batches_done >= p->batches)
    draw_bar(p, now);
}

void nn_progress_end(nn_progress *p) {
  if (!p || !p->stream) return;
  double now = monotonic_seconds();
  if (p->style == NN_PROGRESS_BAR) {
    if (p->last_draw < now) draw_bar(p, now);
    fputc('\n', p->stream);
  } else {
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)p->samples_done / elapsed : 0;
    double loss = p->batches_done ? p->loss_sum / (double)p->batches_done : 0;
    fprintf(p->stream, "%s: %lld batches, loss %.4f, %.0f samples/s, %.1f s\n", p->label,
            (long long)p->batches_done, loss, rate, elapsed);
  }
  fflush(p->stream);
}
