/*
 * training_util.h: Fashion-MNIST loading, multilayer perceptrons and one
 * training step, shared by the inspect examples that train.
 */
#ifndef TRAINING_UTIL_H
#define TRAINING_UTIL_H

#include "nn.h"

#define FASHION_CLASSES 10

/* The ten Fashion-MNIST class names, indexed by label. */
extern const char *const fashion_class_names[FASHION_CLASSES];

/* Loads split ("train" or "t10k") from dir, trying the .gz file first, keeps
   its first limit samples (0 keeps all) and standardises pixels with the
   split's own mean and standard deviation. Prints the reason and returns
   false on failure. */
bool fashion_load(ad_ctx *ctx, const char *dir, const char *split, int64_t limit,
                  nn_image_set *set);

typedef enum activation { ACTIVATION_SIGMOID, ACTIVATION_RELU } activation;

/* A Sequential of `hidden` Linear layers of width `width` with activation
   after each, then Linear(width, 10): 784 -> width -> ... -> 10. Linear
   layers get Xavier initialisation with sigmoid and Kaiming with ReLU, then
   their weights are multiplied by weight_scale. Returns NULL on failure. */
nn_layer *build_mlp(ad_ctx *ctx, int hidden, int64_t width, activation act, double weight_scale,
                    ad_rng *rng);

/* The figures of one training step. */
typedef struct step_result {
  double loss;
  double accuracy;  /* of this batch */
  double grad_norm; /* global norm before clipping */
} step_result;

/* Creates a batcher of full batches of batch_size samples over set. Prints
   the reason and returns NULL when the set contains fewer samples than one
   batch or the batcher cannot be made. */
nn_batcher *training_batcher(ad_ctx *ctx, const nn_image_set *set, int64_t batch_size);

/* Runs forward and backward on one batch of the batcher and leaves the
   gradients in the parameters; the caller clips and steps. Calls
   ad_ctx_reset first. Returns the first error. */
ad_status train_forward_backward(ad_ctx *ctx, nn_layer *model, nn_tensor_list *params,
                                 nn_image_set *set, const nn_batcher *batcher, int64_t batch,
                                 step_result *result);

#endif /* TRAINING_UTIL_H */
