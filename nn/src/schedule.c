/* schedule.c: gradient clipping and learning-rate schedules. */
#include <math.h>

#include "nn_internal.h"

/* ---- Gradient clipping ---------------------------------------------- */

/* Multiplies every element of a float gradient by factor, or clamps it to
   [-limit, limit] when clamp is set. */
static void transform_grad(ad_tensor *grad, bool clamp, double factor, double limit) {
  int64_t n = ad_numel(grad);
  if (ad_tensor_dtype(grad) == AD_F32) {
    float *g = ad_data_f32_mut(grad);
    float f = (float)factor, hi = (float)limit;
    for (int64_t i = 0; i < n; i++) g[i] = clamp ? fminf(fmaxf(g[i], -hi), hi) : g[i] * f;
  } else {
    double *g = ad_data_f64_mut(grad);
    for (int64_t i = 0; i < n; i++) g[i] = clamp ? fmin(fmax(g[i], -limit), limit) : g[i] * factor;
  }
}

/* The gradient of a float parameter, or NULL (also for int64 tensors). */
static ad_tensor *float_grad(ad_tensor *t) {
  ad_dtype dtype = ad_tensor_dtype(t);
  return dtype == AD_F32 || dtype == AD_F64 ? ad_grad(t) : NULL;
}

ad_status nn_clip_grad_norm(const nn_tensor_list *params, double max_norm, double *total_norm) {
  if (!params) return AD_ERR_ARGUMENT;
  if (!(max_norm >= 0))
    return ad_set_error(params->ctx, AD_ERR_ARGUMENT, "nn_clip_grad_norm: max_norm %g must be "
                        ">= 0", max_norm);
  double sum = 0;
  for (int64_t i = 0; i < params->count; i++) {
    ad_tensor *grad = float_grad(params->items[i].tensor);
    if (!grad) continue;
    int64_t n = ad_numel(grad);
    if (ad_tensor_dtype(grad) == AD_F32) {
      const float *g = ad_data_f32(grad);
      for (int64_t j = 0; j < n; j++) sum += (double)g[j] * g[j];
    } else {
      const double *g = ad_data_f64(grad);
      for (int64_t j = 0; j < n; j++) sum += g[j] * g[j];
    }
  }
  double norm = sqrt(sum);
  if (total_norm) *total_norm = norm;
  double factor = max_norm / (norm + 1e-6);
  if (factor >= 1) return AD_OK;
  for (int64_t i = 0; i < params->count; i++) {
    ad_tensor *grad = float_grad(params->items[i].tensor);
    if (grad) transform_grad(grad, false, factor, 0);
  }
  return AD_OK;
}

ad_status nn_clip_grad_value(const nn_tensor_list *params, double clip_value) {
  if (!params) return AD_ERR_ARGUMENT;
  if (!(clip_value >= 0))
    return ad_set_error(params->ctx, AD_ERR_ARGUMENT, "nn_clip_grad_value: clip_value %g must be "
                        ">= 0", clip_value);
  for (int64_t i = 0; i < params->count; i++) {
    ad_tensor *grad = float_grad(params->items[i].tensor);
    if (grad) transform_grad(grad, true, 0, clip_value);
  }
  return AD_OK;
}

/* ---- Learning-rate schedules ----------------------------------------- */

/* The reason a schedule is invalid, or NULL. */
static const char *schedule_problem(const nn_schedule *s) {
  if (!(s->lr >= 0) || !isfinite(s->lr)) return "lr must be finite and >= 0";
  if (s->warmup_steps < 0) return "warmup_steps must be >= 0";
  switch (s->kind) {
  case NN_SCHEDULE_CONSTANT: return NULL;
  case NN_SCHEDULE_STEP:
    if (s->step_size < 1) return "step_size must be >= 1";
    if (!(s->gamma >= 0) || !isfinite(s->gamma)) return "gamma must be finite and >= 0";
    return NULL;
  case NN_SCHEDULE_COSINE:
    if (s->total_steps <= s->warmup_steps) return "total_steps must exceed warmup_steps";
    if (!(s->min_lr >= 0) || !isfinite(s->min_lr)) return "min_lr must be finite and >= 0";
    return NULL;
  }
  return "kind is not an nn_schedule_kind";
}

ad_status nn_schedule_check(ad_ctx *ctx, const nn_schedule *schedule) {
  if (!schedule) return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_schedule_check: the schedule is NULL");
  const char *problem = schedule_problem(schedule);
  if (!problem) return AD_OK;
  return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_schedule_check: %s (lr %g, warmup_steps %lld, "
                      "step_size %lld, gamma %g, total_steps %lld, min_lr %g)", problem,
                      schedule->lr, (long long)schedule->warmup_steps,
                      (long long)schedule->step_size, schedule->gamma,
                      (long long)schedule->total_steps, schedule->min_lr);
}

double nn_schedule_lr(const nn_schedule *s, int64_t t) {
  if (!s || t < 0 || schedule_problem(s)) return NAN;
  if (t < s->warmup_steps) return s->lr * (double)(t + 1) / (double)(s->warmup_steps + 1);
  int64_t after = t - s->warmup_steps;
  switch (s->kind) {
  case NN_SCHEDULE_CONSTANT: return s->lr;
  case NN_SCHEDULE_STEP: return s->lr * pow(s->gamma, (double)(after / s->step_size));
  case NN_SCHEDULE_COSINE: {
    int64_t span = s->total_steps - s->warmup_steps;
    if (after >= span) return s->min_lr;
    const double pi = 3.14159265358979323846;
    return s->min_lr + (s->lr - s->min_lr) * (1 + cos(pi * (double)after / (double)span)) / 2;
  }
  }
  return NAN;
}
