/*
 * nn_optim.h: optimizers, gradient clipping and learning-rate schedules.
 *
 * The update formulas are those of torch.optim in PyTorch 1.13 (SGD, Adam,
 * AdamW, RMSprop with foreach=False, maximize=False, amsgrad=False). Each
 * update runs on the raw data of the parameters and their gradients with
 * recording turned off, in double precision per element, and allocates
 * nothing: the optimizer allocates its state once, when it is created.
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include "nn_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Optimizers ------------------------------------------------------ */

typedef enum nn_optimizer_kind {
  NN_OPTIM_SGD = 0,
  NN_OPTIM_ADAM,
  NN_OPTIM_ADAMW,
  NN_OPTIM_RMSPROP
} nn_optimizer_kind;

/* Hyperparameters; the fields an optimizer does not use are ignored. */
typedef struct nn_optim_config {
  nn_optimizer_kind kind;
  double lr;           /* learning rate, >= 0 */
  double weight_decay; /* >= 0; added as weight_decay * p to the gradient, except
                          AdamW, which multiplies p by 1 - lr * weight_decay */
  double momentum;     /* SGD and RMSprop, >= 0 */
  double dampening;    /* SGD: the momentum buffer adds (1 - dampening) g */
  bool nesterov;       /* SGD: requires momentum > 0 and dampening == 0 */
  double beta1, beta2; /* Adam and AdamW, each in [0, 1) */
  double eps;          /* Adam, AdamW and RMSprop: added to the denominator, >= 0 */
  double alpha;        /* RMSprop: smoothing constant of the squared gradient, >= 0 */
  bool centered;       /* RMSprop: divide by an estimate of the gradient's variance */
} nn_optim_config;

/* Configurations with PyTorch's default hyperparameters for learning rate
   lr: SGD without momentum; Adam with betas (0.9, 0.999), eps 1e-8; AdamW
   likewise with weight_decay 0.01; RMSprop with alpha 0.99, eps 1e-8. */
nn_optim_config nn_sgd_config(double lr);
nn_optim_config nn_adam_config(double lr);
nn_optim_config nn_adamw_config(double lr);
nn_optim_config nn_rmsprop_config(double lr);

/* Parses "sgd", "adam", "adamw" or "rmsprop" into *kind; returns false for
   any other name. */
bool nn_optimizer_kind_parse(const char *name, nn_optimizer_kind *kind);
const char *nn_optimizer_kind_name(nn_optimizer_kind kind);

typedef struct nn_optimizer nn_optimizer;

/* Creates an optimizer for the persistent float tensors in params (copied:
   the list may be freed afterwards, the tensors may not) and allocates its
   state, zero-filled, of each parameter's dtype and shape. Fails with
   AD_ERR_ARGUMENT on an invalid hyperparameter or a parameter that is not a
   persistent float tensor requiring a gradient. Free with
   nn_optimizer_free(). */
nn_optimizer *nn_optimizer_new(ad_ctx *ctx, const nn_tensor_list *params,
                               const nn_optim_config *config);

/* Frees the optimizer and its state, not the parameters. Accepts NULL. */
void nn_optimizer_free(nn_optimizer *opt);

/* Applies one update to every parameter that has a gradient (ad_grad not
   NULL), as torch.optim skips parameters whose grad is None, with recording
   turned off. Returns AD_OK, or an error before changing anything. */
ad_status nn_optimizer_step(nn_optimizer *opt);

/* Marks every parameter's gradient as zero (ad_zero_grad). */
void nn_optimizer_zero_grad(nn_optimizer *opt);

/* Sets the learning rate of the next step, as schedules do before each
   step. Unless lr is finite and >= 0, the rule of nn_optimizer_new, returns
   AD_ERR_ARGUMENT with a message and keeps the previous rate. A NULL
   optimizer returns AD_ERR_ARGUMENT without a message. */
ad_status nn_optimizer_set_lr(nn_optimizer *opt, double lr);

/* The learning rate of the next step, and the whole configuration. */
double nn_optimizer_lr(const nn_optimizer *opt);
const nn_optim_config *nn_optimizer_config(const nn_optimizer *opt);

/* The number of updates applied to the most-updated parameter. */
int64_t nn_optimizer_steps(const nn_optimizer *opt);

/* Appends the optimizer's state tensors to list for a checkpoint, each named
   prefix + "." + name. They are "step" (int64 [count], the updates applied
   to each parameter) and, for each parameter p, "<p>.momentum_buffer" (SGD
   or RMSprop with momentum), "<p>.exp_avg" and "<p>.exp_avg_sq" (Adam,
   AdamW), "<p>.square_avg" and "<p>.grad_avg" (RMSprop, centered). Loading
   a checkpoint into these tensors restores the optimizer exactly. */
ad_status nn_optimizer_collect_state(const nn_optimizer *opt, const char *prefix,
                                     nn_tensor_list *list);

/* ---- Gradient clipping ---------------------------------------------- */

/* Scales every gradient in params by min(1, max_norm / (norm + 1e-6)), where
   norm is the Euclidean norm of all gradients together, as PyTorch's
   clip_grad_norm_. Stores norm in *total_norm when it is not NULL. Parameters
   without a gradient are skipped. A NaN norm scales every gradient by NaN;
   an infinite norm scales them by 0, so infinite elements become NaN and
   finite ones 0. Both as PyTorch does with error_if_nonfinite=False. */
ad_status nn_clip_grad_norm(const nn_tensor_list *params, double max_norm, double *total_norm);

/* Clamps every gradient element in params to [-clip_value, clip_value]. */
ad_status nn_clip_grad_value(const nn_tensor_list *params, double clip_value);

/* ---- Learning-rate schedules ----------------------------------------- */

typedef enum nn_schedule_kind {
  NN_SCHEDULE_CONSTANT = 0,
  NN_SCHEDULE_STEP,   /* lr * gamma^floor(t / step_size) */
  NN_SCHEDULE_COSINE  /* from lr down to min_lr along half a cosine */
} nn_schedule_kind;

/*
 * A learning rate as a pure function of the step t = 0, 1, ... (batches or
 * epochs, as the caller counts them), so resuming needs only t. The first
 * warmup_steps steps rise linearly: lr * (t + 1) / (warmup_steps + 1). After
 * them, the decay runs on t' = t - warmup_steps: step decay multiplies lr by
 * gamma every step_size steps; cosine gives
 *   min_lr + (lr - min_lr) (1 + cos(pi t' / T')) / 2,  T' = total_steps - warmup_steps,
 * and min_lr for t' >= T'.
 */
typedef struct nn_schedule {
  nn_schedule_kind kind;
  double lr;            /* the peak rate */
  int64_t warmup_steps; /* >= 0 */
  int64_t step_size;    /* step decay: >= 1 */
  double gamma;         /* step decay: the factor per step_size steps */
  int64_t total_steps;  /* cosine: warm-up included, > warmup_steps */
  double min_lr;        /* cosine: the final rate */
} nn_schedule;

/* The learning rate at step t, or NaN for an invalid schedule or t < 0
   (see nn_schedule_check). */
double nn_schedule_lr(const nn_schedule *schedule, int64_t t);

/* Validates a schedule; records the reason on ctx and returns
   AD_ERR_ARGUMENT when a field is out of range. */
ad_status nn_schedule_check(ad_ctx *ctx, const nn_schedule *schedule);

#ifdef __cplusplus
}
#endif

#endif /* NN_OPTIM_H */
