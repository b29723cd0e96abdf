/*
 * nn_loss.h: loss functions.
 *
 * Each loss returns a new arena tensor (0-d with AD_REDUCE_MEAN or
 * AD_REDUCE_SUM, one loss per element or sample with AD_REDUCE_NONE), or
 * NULL with the error recorded. They call the engine's numerically stable
 * operations (ad_mse, ad_cross_entropy, ad_bce_with_logits) after checking
 * the arguments, so that a mistake names the nn function.
 */
#ifndef NN_LOSS_H
#define NN_LOSS_H

#include "autodiff.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loss of an output and a target, such as the three below. */
typedef ad_tensor *(*nn_loss_fn)(ad_ctx *ctx, ad_tensor *output, ad_tensor *target,
                                 ad_reduction reduction);

/* (prediction - target)^2 over elements; shapes and dtypes must be equal. */
ad_tensor *nn_mse_loss(ad_ctx *ctx, ad_tensor *prediction, ad_tensor *target,
                       ad_reduction reduction);

/* -log softmax(logits)[target] for logits [N, C] and int64 class indices
   [N] in [0, C); the mean is over the N samples. */
ad_tensor *nn_cross_entropy_loss(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                                 ad_reduction reduction);

/* Binary cross-entropy of logits against float targets in [0, 1] of the same
   shape: max(x, 0) - x t + log(1 + exp(-|x|)). */
ad_tensor *nn_bce_with_logits_loss(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                                   ad_reduction reduction);

#ifdef __cplusplus
}
#endif

#endif /* NN_LOSS_H */
