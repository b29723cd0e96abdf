/* training_util.c: data, models and training steps of the inspect examples. */
#include "training_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nn_monitor.h"

const char *const fashion_class_names[FASHION_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Writes dir/name-kind-idxN-ubyte[.gz] into path, preferring the .gz file. */
static void data_path(char *path, size_t capacity, const char *dir, const char *split,
                      const char *kind) {
  int dims = strcmp(kind, "images") == 0 ? 3 : 1;
  snprintf(path, capacity, "%s/%s-%s-idx%d-ubyte.gz", dir, split, kind, dims);
  if (access(path, R_OK) != 0) snprintf(path, capacity, "%s/%s-%s-idx%d-ubyte", dir, split, kind, dims);
}

bool fashion_load(ad_ctx *ctx, const char *dir, const char *split, int64_t limit,
                  nn_image_set *set) {
  char images[4096], labels[4096];
  data_path(images, sizeof images, dir, split, "images");
  data_path(labels, sizeof labels, dir, split, "labels");
  if (nn_image_set_load(ctx, images, labels, set) != AD_OK) {
    fprintf(stderr, "cannot load Fashion-MNIST: %s\n"
                    "Install Debian's dataset-fashion-mnist package or pass --data DIR.\n",
            ad_errmsg(ctx));
    return false;
  }
  if (limit > 0) nn_image_set_limit(set, limit);
  double mean, std;
  nn_image_set_stats(set, &mean, &std);
  set->mean = (float)mean;
  set->std = (float)std;
  return true;
}

/* Multiplies every element of a layer's weight by scale. */
static void scale_weight(nn_layer *linear, double scale) {
  ad_tensor *w = nn_layer_param(linear, 0);
  float *data = ad_data_f32_mut(w);
  for (int64_t i = 0; i < ad_numel(w); i++) data[i] = (float)(data[i] * scale);
}

nn_layer *build_mlp(ad_ctx *ctx, int hidden, int64_t width, activation act, double weight_scale,
                    ad_rng *rng) {
  nn_init init = act == ACTIVATION_RELU ? NN_INIT_KAIMING_NORMAL : NN_INIT_XAVIER_NORMAL;
  nn_layer *model = nn_sequential(ctx);
  int64_t in = 28 * 28;
  for (int i = 0; i <= hidden && model; i++) {
    int64_t out = i < hidden ? width : FASHION_CLASSES;
    nn_layer *linear = nn_linear(ctx, in, out, init, rng);
    if (linear) scale_weight(linear, weight_scale);
    if (nn_sequential_add(model, linear) != AD_OK) break;
    if (i < hidden) {
      nn_layer *f = act == ACTIVATION_RELU ? nn_relu(ctx) : nn_sigmoid(ctx);
      if (nn_sequential_add(model, f) != AD_OK) break;
    }
    in = out;
  }
  if (ad_errcode(ctx) != AD_OK) {
    nn_layer_free(model);
    return NULL;
  }
  return model;
}

nn_batcher *training_batcher(ad_ctx *ctx, const nn_image_set *set, int64_t batch_size) {
  if (set->count < batch_size) {
    fprintf(stderr, "the training set has %lld images, less than one batch of %lld; pass "
                    "--samples %lld or more, or --data with more images\n",
            (long long)set->count, (long long)batch_size, (long long)batch_size);
    return NULL;
  }
  nn_batcher *batcher = nn_batcher_new(ctx, set->count, batch_size, true);
  if (!batcher) fprintf(stderr, "creating the batches failed: %s\n", ad_errmsg(ctx));
  return batcher;
}

ad_status train_forward_backward(ad_ctx *ctx, nn_layer *model, nn_tensor_list *params,
                                 nn_image_set *set, const nn_batcher *batcher, int64_t batch,
                                 step_result *result) {
  ad_ctx_reset(ctx);
  const int64_t *indices;
  int64_t count = nn_batcher_batch(batcher, batch, &indices);
  ad_tensor *x, *y;
  ad_status st = nn_image_set_batch(ctx, set, indices, count, &x, &y);
  if (st != AD_OK) return st;
  for (int64_t i = 0; i < params->count; i++) ad_zero_grad(params->items[i].tensor);
  ad_tensor *logits = nn_forward(ctx, model, x);
  ad_tensor *loss = nn_cross_entropy_loss(ctx, logits, y, AD_REDUCE_MEAN);
  if (!loss) return ad_errcode(ctx);
  int64_t correct = nn_count_correct(ctx, logits, y);
  st = ad_backward(ctx, loss, NULL);
  if (st != AD_OK) return st;
  ad_item(loss, &result->loss);
  result->accuracy = correct >= 0 ? (double)correct / (double)count : NAN;
  result->grad_norm = nn_grad_global_norm(params);
  return AD_OK;
}
