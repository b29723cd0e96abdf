/* optim.c: SGD, Adam, AdamW and RMSprop with PyTorch 1.13's update rules. */
#include <math.h>

#include "nn_internal.h"

/* The maximum number of state buffers of one parameter (RMSprop, centered,
   with momentum). */
#define MAX_SLOTS 3

/* Indices of the state buffers in each parameter's slots. */
enum {
  SLOT_MOMENTUM = 0,   /* SGD, RMSprop: momentum_buffer */
  SLOT_EXP_AVG = 0,    /* Adam, AdamW */
  SLOT_EXP_AVG_SQ = 1, /* Adam, AdamW */
  SLOT_SQUARE_AVG = 1, /* RMSprop */
  SLOT_GRAD_AVG = 2    /* RMSprop, centered */
};

typedef struct optim_param {
  char name[NN_NAME_MAX];
  ad_tensor *param;              /* borrowed */
  ad_tensor *slots[MAX_SLOTS];   /* owned, NULL where unused; param's dtype and shape */
} optim_param;

struct nn_optimizer {
  ad_ctx *ctx;
  nn_optim_config config;
  int64_t count;
  optim_param *params; /* count entries */
  ad_tensor *steps;    /* owned, int64 [count]: updates applied to each parameter */
};

/* ---- Configurations ------------------------------------------------- */

nn_optim_config nn_sgd_config(double lr) {
  return (nn_optim_config){.kind = NN_OPTIM_SGD, .lr = lr};
}

nn_optim_config nn_adam_config(double lr) {
  return (nn_optim_config){.kind = NN_OPTIM_ADAM, .lr = lr, .beta1 = 0.9, .beta2 = 0.999,
                           .eps = 1e-8};
}

nn_optim_config nn_adamw_config(double lr) {
  return (nn_optim_config){.kind = NN_OPTIM_ADAMW, .lr = lr, .beta1 = 0.9, .beta2 = 0.999,
                           .eps = 1e-8, .weight_decay = 0.01};
}

nn_optim_config nn_rmsprop_config(double lr) {
  return (nn_optim_config){.kind = NN_OPTIM_RMSPROP, .lr = lr, .alpha = 0.99, .eps = 1e-8};
}

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop"};

bool nn_optimizer_kind_parse(const char *name, nn_optimizer_kind *kind) {
  if (!name || !kind) return false;
  for (int i = 0; i < (int)(sizeof kind_names / sizeof kind_names[0]); i++) {
    if (strcmp(name, kind_names[i]) == 0) {
      *kind = (nn_optimizer_kind)i;
      return true;
    }
  }
  return false;
}

const char *nn_optimizer_kind_name(nn_optimizer_kind kind) {
  if ((int)kind < 0 || (int)kind >= (int)(sizeof kind_names / sizeof kind_names[0]))
    return "unknown";
  return kind_names[kind];
}

/* Records an error unless lr is a valid learning rate: finite and >= 0. */
static ad_status check_lr(ad_ctx *ctx, const char *fn, double lr) {
  if (lr >= 0 && isfinite(lr)) return AD_OK;
  return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: learning rate %g must be finite and >= 0", fn,
                      lr);
}

/* Records the first out-of-range hyperparameter; returns AD_OK when all are
   valid. The ranges are those torch.optim checks. */
static ad_status check_config(ad_ctx *ctx, const nn_optim_config *c) {
  const char *fn = "nn_optimizer_new";
  const char *name = nn_optimizer_kind_name(c->kind);
  if ((int)c->kind < NN_OPTIM_SGD || c->kind > NN_OPTIM_RMSPROP)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: kind %d is not an nn_optimizer_kind", fn,
                        (int)c->kind);
  if (check_lr(ctx, fn, c->lr) != AD_OK) return AD_ERR_ARGUMENT;
  if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: weight_decay %g must be finite and >= 0", fn,
                        c->weight_decay);
  bool uses_momentum = c->kind == NN_OPTIM_SGD || c->kind == NN_OPTIM_RMSPROP;
  if (uses_momentum && (!(c->momentum >= 0) || !isfinite(c->momentum)))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: %s momentum %g must be finite and >= 0", fn,
                        name, c->momentum);
  if (c->kind == NN_OPTIM_SGD && c->nesterov && (c->momentum <= 0 || c->dampening != 0))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: Nesterov momentum requires momentum > 0 and "
                        "dampening 0 (got momentum %g, dampening %g)", fn, c->momentum,
                        c->dampening);
  if (c->kind == NN_OPTIM_SGD && !isfinite(c->dampening))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: dampening %g must be finite", fn,
                        c->dampening);
  bool adam = c->kind == NN_OPTIM_ADAM || c->kind == NN_OPTIM_ADAMW;
  if (adam && (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1)))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: %s betas (%g, %g) must be in [0, 1)", fn, name,
                        c->beta1, c->beta2);
  if ((adam || c->kind == NN_OPTIM_RMSPROP) && (!(c->eps >= 0) || !isfinite(c->eps)))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: %s eps %g must be finite and >= 0", fn, name,
                        c->eps);
  if (c->kind == NN_OPTIM_RMSPROP && (!(c->alpha >= 0) || !isfinite(c->alpha)))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: RMSprop alpha %g must be finite and >= 0", fn,
                        c->alpha);
  return AD_OK;
}

/* ---- Creation -------------------------------------------------------- */

/* The names of the slots a configuration uses, NULL for unused ones. */
static void slot_names(const nn_optim_config *c, const char *names[MAX_SLOTS]) {
  for (int s = 0; s < MAX_SLOTS; s++) names[s] = NULL;
  switch (c->kind) {
  case NN_OPTIM_SGD:
    if (c->momentum != 0) names[SLOT_MOMENTUM] = "momentum_buffer";
    break;
  case NN_OPTIM_ADAM:
  case NN_OPTIM_ADAMW:
    names[SLOT_EXP_AVG] = "exp_avg";
    names[SLOT_EXP_AVG_SQ] = "exp_avg_sq";
    break;
  case NN_OPTIM_RMSPROP:
    if (c->momentum > 0) names[SLOT_MOMENTUM] = "momentum_buffer";
    names[SLOT_SQUARE_AVG] = "square_avg";
    if (c->centered) names[SLOT_GRAD_AVG] = "grad_avg";
    break;
  }
}

/* Checks that t can be optimized: a persistent float tensor that requires a
   gradient and is not listed twice. */
static ad_status check_param(ad_ctx *ctx, const nn_tensor_list *params, int64_t i) {
  const char *fn = "nn_optimizer_new";
  const nn_named_tensor *item = &params->items[i];
  ad_tensor *t = item->tensor;
  if (!t) return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: parameter \"%s\" is NULL", fn, item->name);
  if (ad_tensor_ctx(t) != ctx)
    return ad_set_error(ctx, AD_ERR_CONTEXT, "%s: parameter \"%s\" belongs to another context",
                        fn, item->name);
  ad_dtype dtype = ad_tensor_dtype(t);
  if (dtype != AD_F32 && dtype != AD_F64)
    return ad_set_error(ctx, AD_ERR_DTYPE, "%s: parameter \"%s\" has dtype %s; optimizers update "
                        "float32 and float64 tensors only", fn, item->name, ad_dtype_name(dtype));
  if (!ad_is_persistent(t) || !ad_requires_grad(t))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: parameter \"%s\" must be a persistent tensor "
                        "that requires a gradient (see ad_persist, ad_set_requires_grad)", fn,
                        item->name);
  for (int64_t j = 0; j < i; j++)
    if (params->items[j].tensor == t)
      return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: parameters \"%s\" and \"%s\" are the same "
                          "tensor; list each parameter once", fn, params->items[j].name,
                          item->name);
  return AD_OK;
}

/* A persistent zero tensor of t's dtype and shape, made with recording off. */
static ad_tensor *persistent_zeros_like(ad_ctx *ctx, ad_tensor *t) {
  return ad_persist(ad_zeros(ctx, ad_tensor_dtype(t), ad_ndim(t), ad_shape(t)));
}

nn_optimizer *nn_optimizer_new(ad_ctx *ctx, const nn_tensor_list *params,
                               const nn_optim_config *config) {
  const char *fn = "nn_optimizer_new";
  if (!ctx) return NULL;
  if (!params || !config) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn,
                 params ? "configuration" : "parameter list");
    return NULL;
  }
  if (check_config(ctx, config) != AD_OK) return NULL;
  for (int64_t i = 0; i < params->count; i++)
    if (check_param(ctx, params, i) != AD_OK) return NULL;

  nn_optimizer *opt = ad_malloc(ctx, sizeof *opt);
  if (!opt) return NULL;
  memset(opt, 0, sizeof *opt);
  opt->ctx = ctx;
  opt->config = *config;
  size_t bytes = (size_t)(params->count ? params->count : 1) * sizeof *opt->params;
  opt->params = ad_malloc(ctx, bytes);
  if (!opt->params) {
    ad_free(ctx, opt, sizeof *opt);
    return NULL;
  }
  memset(opt->params, 0, bytes);
  opt->count = params->count;

  const char *names[MAX_SLOTS];
  slot_names(config, names);
  bool ok = true;
  for (int64_t i = 0; i < opt->count && ok; i++) {
    optim_param *p = &opt->params[i];
    memcpy(p->name, params->items[i].name, NN_NAME_MAX);
    p->param = params->items[i].tensor;
    for (int s = 0; s < MAX_SLOTS && ok; s++)
      if (names[s]) ok = (p->slots[s] = persistent_zeros_like(ctx, p->param)) != NULL;
  }
  const int64_t steps_shape[1] = {opt->count};
  if (ok) ok = (opt->steps = ad_persist(ad_zeros(ctx, AD_I64, 1, steps_shape))) != NULL;
  if (!ok) {
    nn_optimizer_free(opt);
    return NULL;
  }
  return opt;
}

void nn_optimizer_free(nn_optimizer *opt) {
  if (!opt) return;
  ad_ctx *ctx = opt->ctx;
  for (int64_t i = 0; i < opt->count; i++)
    for (int s = 0; s < MAX_SLOTS; s++) ad_tensor_free(opt->params[i].slots[s]);
  ad_tensor_free(opt->steps);
  ad_free(ctx, opt->params, (size_t)(opt->count ? opt->count : 1) * sizeof *opt->params);
  ad_free(ctx, opt, sizeof *opt);
}

/* ---- Update rules, one element at a time ------------------------------ */
/*
 * Each rule receives the parameter p and gradient g of one float64 element
 * and its state s[] (unused entries hold a scratch value), and returns the
 * new p. k is the number of this update for the parameter, starting at 1.
 */

typedef struct rule_args {
  const nn_optim_config *c;
  double lr;
  int64_t k;
  double bias_correction1, bias_correction2_sqrt; /* Adam */
} rule_args;

static inline double sgd_rule(const rule_args *a, double p, double g, double *s) {
  const nn_optim_config *c = a->c;
  if (c->weight_decay != 0) g += c->weight_decay * p;
  if (c->momentum != 0) {
    double buf = a->k == 1 ? g : c->momentum * s[SLOT_MOMENTUM] + (1 - c->dampening) * g;
    s[SLOT_MOMENTUM] = buf;
    g = c->nesterov ? g + c->momentum * buf : buf;
  }
  return p - a->lr * g;
}

static inline double adam_rule(const rule_args *a, double p, double g, double *s) {
  const nn_optim_config *c = a->c;
  if (c->kind == NN_OPTIM_ADAMW) p *= 1 - a->lr * c->weight_decay;
  else if (c->weight_decay != 0) g += c->weight_decay * p;
  double m = c->beta1 * s[SLOT_EXP_AVG] + (1 - c->beta1) * g;
  double v = c->beta2 * s[SLOT_EXP_AVG_SQ] + (1 - c->beta2) * g * g;
  s[SLOT_EXP_AVG] = m;
  s[SLOT_EXP_AVG_SQ] = v;
  double denom = sqrt(v) / a->bias_correction2_sqrt + c->eps;
  return p - (a->lr / a->bias_correction1) * m / denom;
}

static inline double rmsprop_rule(const rule_args *a, double p, double g, double *s) {
  const nn_optim_config *c = a->c;
  if (c->weight_decay != 0) g += c->weight_decay * p;
  double v = c->alpha * s[SLOT_SQUARE_AVG] + (1 - c->alpha) * g * g;
  s[SLOT_SQUARE_AVG] = v;
  double avg;
  if (c->centered) {
    double mean = c->alpha * s[SLOT_GRAD_AVG] + (1 - c->alpha) * g;
    s[SLOT_GRAD_AVG] = mean;
    avg = sqrt(v - mean * mean) + c->eps;
  } else {
    avg = sqrt(v) + c->eps;
  }
  if (c->momentum > 0) {
    double buf = c->momentum * s[SLOT_MOMENTUM] + g / avg;
    s[SLOT_MOMENTUM] = buf;
    return p - a->lr * buf;
  }
  return p - a->lr * g / avg;
}

static inline double apply_rule(const rule_args *a, double p, double g, double *s) {
  switch (a->c->kind) {
  case NN_OPTIM_SGD: return sgd_rule(a, p, g, s);
  case NN_OPTIM_ADAM:
  case NN_OPTIM_ADAMW: return adam_rule(a, p, g, s);
  case NN_OPTIM_RMSPROP: return rmsprop_rule(a, p, g, s);
  }
  return p;
}

/* ---- Float32 loops ----------------------------------------------------- */
/*
 * Float32 parameters take these loops. They compute in float, as PyTorch's
 * CPU kernels do, so they vectorize. They apply the formulas of the rules
 * above in the same order of operations.
 */

static void sgd_f32(const rule_args *a, int64_t n, float *restrict p, const float *restrict g,
                    float *restrict buf) {
  const nn_optim_config *c = a->c;
  const float lr = (float)a->lr, wd = (float)c->weight_decay, mu = (float)c->momentum;
  const float keep = (float)(1 - c->dampening);
  const bool decay = c->weight_decay != 0, first = a->k == 1, nesterov = c->nesterov;
  if (!buf) {
    for (int64_t i = 0; i < n; i++) p[i] -= lr * (decay ? g[i] + wd * p[i] : g[i]);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    float d = decay ? g[i] + wd * p[i] : g[i];
    float b = first ? d : mu * buf[i] + keep * d;
    buf[i] = b;
    p[i] -= lr * (nesterov ? d + mu * b : b);
  }
}

static void adam_f32(const rule_args *a, int64_t n, float *restrict p, const float *restrict g,
                     float *restrict m, float *restrict v) {
  const nn_optim_config *c = a->c;
  const float b1 = (float)c->beta1, b2 = (float)c->beta2;
  const float rest1 = (float)(1 - c->beta1), rest2 = (float)(1 - c->beta2);
  const float wd = (float)c->weight_decay, eps = (float)c->eps;
  const float shrink = (float)(1 - a->lr * c->weight_decay);
  const float step_size = (float)(a->lr / a->bias_correction1);
  const float bc2_sqrt = (float)a->bias_correction2_sqrt;
  const bool decoupled = c->kind == NN_OPTIM_ADAMW, coupled = !decoupled && wd != 0;
  for (int64_t i = 0; i < n; i++) {
    float pi = decoupled ? p[i] * shrink : p[i];
    float gi = coupled ? g[i] + wd * pi : g[i];
    float mi = b1 * m[i] + rest1 * gi;
    float vi = b2 * v[i] + rest2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
  }
}

static void rmsprop_f32(const rule_args *a, int64_t n, float *restrict p,
                        const float *restrict g, float *restrict buf, float *restrict sq,
                        float *restrict mean) {
  const nn_optim_config *c = a->c;
  const float lr = (float)a->lr, wd = (float)c->weight_decay, alpha = (float)c->alpha;
  const float rest = (float)(1 - c->alpha), eps = (float)c->eps, mu = (float)c->momentum;
  const bool decay = c->weight_decay != 0;
  for (int64_t i = 0; i < n; i++) {
    float gi = decay ? g[i] + wd * p[i] : g[i];
    float vi = alpha * sq[i] + rest * gi * gi;
    sq[i] = vi;
    float avg;
    if (mean) {
      float mi = alpha * mean[i] + rest * gi;
      mean[i] = mi;
      avg = sqrtf(vi - mi * mi) + eps;
    } else {
      avg = sqrtf(vi) + eps;
    }
    if (buf) {
      float b = mu * buf[i] + gi / avg;
      buf[i] = b;
      p[i] -= lr * b;
    } else {
      p[i] -= lr * (gi / avg);
    }
  }
}

/* Updates n float32 elements; state arrays that are unused are NULL. */
static void update_f32(const rule_args *a, int64_t n, float *p, const float *g,
                       float *slot[MAX_SLOTS]) {
  switch (a->c->kind) {
  case NN_OPTIM_SGD: sgd_f32(a, n, p, g, slot[SLOT_MOMENTUM]); break;
  case NN_OPTIM_ADAM:
  case NN_OPTIM_ADAMW: adam_f32(a, n, p, g, slot[SLOT_EXP_AVG], slot[SLOT_EXP_AVG_SQ]); break;
  case NN_OPTIM_RMSPROP:
    rmsprop_f32(a, n, p, g, slot[SLOT_MOMENTUM], slot[SLOT_SQUARE_AVG], slot[SLOT_GRAD_AVG]);
    break;
  }
}

static void update_f64(const rule_args *a, int64_t n, double *p, const double *g,
                       double *slot[MAX_SLOTS]) {
  for (int64_t i = 0; i < n; i++) {
    double s[MAX_SLOTS] = {0, 0, 0};
    for (int k = 0; k < MAX_SLOTS; k++)
      if (slot[k]) s[k] = slot[k][i];
    p[i] = apply_rule(a, p[i], g[i], s);
    for (int k = 0; k < MAX_SLOTS; k++)
      if (slot[k]) slot[k][i] = s[k];
  }
}

/* Elements per block when an update is split across threads. Blocks are a
   fixed size, so each element's update is the same whatever the thread
   count (the rules are elementwise anyway). */
#define UPDATE_BLOCK 16384

/* One update_f32 split into blocks of UPDATE_BLOCK elements. */
typedef struct update_job {
  const rule_args *a;
  int64_t n;
  float *p;
  const float *g;
  float *const *slot;
} update_job;

static void update_block(void *user, int64_t index) {
  const update_job *job = user;
  int64_t lo = index * UPDATE_BLOCK;
  int64_t len = job->n - lo < UPDATE_BLOCK ? job->n - lo : UPDATE_BLOCK;
  float *part[MAX_SLOTS];
  for (int s = 0; s < MAX_SLOTS; s++) part[s] = job->slot[s] ? job->slot[s] + lo : NULL;
  update_f32(job->a, len, job->p + lo, job->g + lo, part);
}

/* update_f32 over n elements in blocks, on the context's threads. */
static void update_f32_blocks(ad_ctx *ctx, const rule_args *a, int64_t n, float *p,
                              const float *g, float *slot[MAX_SLOTS]) {
  update_job job = {a, n, p, g, slot};
  ad_parallel_for(ctx, (n + UPDATE_BLOCK - 1) / UPDATE_BLOCK, update_block, &job);
}

/* Updates one parameter whose gradient is grad; k counts this update. */
static void update_param(nn_optimizer *opt, optim_param *p, ad_tensor *grad, int64_t k) {
  const nn_optim_config *c = &opt->config;
  rule_args a = {.c = c, .lr = c->lr, .k = k, .bias_correction1 = 1,
                 .bias_correction2_sqrt = 1};
  if (c->kind == NN_OPTIM_ADAM || c->kind == NN_OPTIM_ADAMW) {
    a.bias_correction1 = 1 - pow(c->beta1, (double)k);
    a.bias_correction2_sqrt = sqrt(1 - pow(c->beta2, (double)k));
  }
  int64_t n = ad_numel(p->param);
  if (ad_tensor_dtype(p->param) == AD_F32) {
    float *slot[MAX_SLOTS];
    for (int s = 0; s < MAX_SLOTS; s++) slot[s] = p->slots[s] ? ad_data_f32_mut(p->slots[s]) : NULL;
    update_f32_blocks(opt->ctx, &a, n, ad_data_f32_mut(p->param), ad_data_f32(grad), slot);
  } else {
    double *slot[MAX_SLOTS];
    for (int s = 0; s < MAX_SLOTS; s++) slot[s] = p->slots[s] ? ad_data_f64_mut(p->slots[s]) : NULL;
    update_f64(&a, n, ad_data_f64_mut(p->param), ad_data_f64(grad), slot);
  }
}

ad_status nn_optimizer_step(nn_optimizer *opt) {
  if (!opt) return AD_ERR_ARGUMENT;
  ad_ctx *ctx = opt->ctx;
  int64_t *steps = ad_data_i64_mut(opt->steps);
  if (!steps) return ad_errcode(ctx);
  for (int64_t i = 0; i < opt->count; i++) {
    ad_tensor *grad = ad_grad(opt->params[i].param);
    if (grad && ad_tensor_dtype(grad) != ad_tensor_dtype(opt->params[i].param))
      return ad_set_error(ctx, AD_ERR_DTYPE, "nn_optimizer_step: the gradient of \"%s\" is %s "
                          "but the parameter is %s; keep a parameter and its gradient in one "
                          "dtype", opt->params[i].name,
                          ad_dtype_name(ad_tensor_dtype(grad)),
                          ad_dtype_name(ad_tensor_dtype(opt->params[i].param)));
  }
  bool recording = ad_set_grad_enabled(ctx, false);
  for (int64_t i = 0; i < opt->count; i++) {
    ad_tensor *grad = ad_grad(opt->params[i].param);
    if (!grad) continue;
    steps[i] += 1;
    update_param(opt, &opt->params[i], grad, steps[i]);
  }
  ad_set_grad_enabled(ctx, recording);
  return AD_OK;
}

void nn_optimizer_zero_grad(nn_optimizer *opt) {
  if (!opt) return;
  for (int64_t i = 0; i < opt->count; i++) ad_zero_grad(opt->params[i].param);
}

ad_status nn_optimizer_set_lr(nn_optimizer *opt, double lr) {
  if (!opt) return AD_ERR_ARGUMENT;
  if (check_lr(opt->ctx, "nn_optimizer_set_lr", lr) != AD_OK) return AD_ERR_ARGUMENT;
  opt->config.lr = lr;
  return AD_OK;
}

double nn_optimizer_lr(const nn_optimizer *opt) { return opt ? opt->config.lr : 0; }

const nn_optim_config *nn_optimizer_config(const nn_optimizer *opt) {
  return opt ? &opt->config : NULL;
}

int64_t nn_optimizer_steps(const nn_optimizer *opt) {
  if (!opt || !opt->count) return 0;
  const int64_t *steps = ad_data_i64(opt->steps);
  int64_t max_steps = 0;
  for (int64_t i = 0; i < opt->count; i++)
    if (steps[i] > max_steps) max_steps = steps[i];
  return max_steps;
}

ad_status nn_optimizer_collect_state(const nn_optimizer *opt, const char *prefix,
                                     nn_tensor_list *list) {
  if (!list) return AD_ERR_ARGUMENT;
  if (!opt)
    return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "nn_optimizer_collect_state: the optimizer "
                        "is NULL");
  const char *sep = prefix && prefix[0] ? "." : "";
  if (!prefix) prefix = "";
  char name[NN_NAME_MAX];
  const char *names[MAX_SLOTS];
  slot_names(&opt->config, names);
  int n = snprintf(name, sizeof name, "%s%sstep", prefix, sep);
  if (n < 0 || n >= NN_NAME_MAX)
    return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "nn_optimizer_collect_state: the prefix "
                        "\"%.40s...\" is too long", prefix);
  ad_status status = nn_tensor_list_add(list, name, opt->steps);
  for (int64_t i = 0; i < opt->count && status == AD_OK; i++) {
    for (int s = 0; s < MAX_SLOTS && status == AD_OK; s++) {
      if (!names[s]) continue;
      n = snprintf(name, sizeof name, "%s%s%s.%s", prefix, sep, opt->params[i].name, names[s]);
      if (n < 0 || n >= NN_NAME_MAX)
        return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "nn_optimizer_collect_state: the name of "
                            "the %s of \"%s\" is longer than %d bytes", names[s],
                            opt->params[i].name, NN_NAME_MAX - 1);
      status = nn_tensor_list_add(list, name, opt->params[i].slots[s]);
    }
  }
  return status;
}
