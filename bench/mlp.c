/* mlp.c: the MLP model, its two forms of training step, and its data. */
#include "mlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

const int64_t mlp_widths[MLP_LAYERS + 1] = {784, 256, 128, 10};

/* Fashion-MNIST's pixel mean and standard deviation over the training set,
   in units of 1/255; each pixel p becomes (p / 255 - mean) / std. */
#define PIXEL_MEAN 0.2860f
#define PIXEL_STD 0.3530f

static nn_layer *build_model(ad_ctx *ctx, uint64_t seed) {
  ad_rng rng;
  ad_rng_seed(&rng, seed);
  nn_layer *model = nn_sequential(ctx);
  for (int layer = 0; layer < MLP_LAYERS; layer++) {
    nn_sequential_add(model, nn_linear(ctx, mlp_widths[layer], mlp_widths[layer + 1],
                                       NN_INIT_KAIMING_UNIFORM, &rng));
    if (layer + 1 < MLP_LAYERS) nn_sequential_add(model, nn_relu(ctx));
  }
  if (ad_errcode(ctx) != AD_OK) die_on_engine_error(ctx, "building the MLP");
  return model;
}

static void create_optimizer(mlp *m) {
  nn_tensor_list *params = nn_tensor_list_new(m->ctx);
  if (!params || nn_layer_collect_params(m->model, NULL, params) != AD_OK)
    die_on_engine_error(m->ctx, "collecting the MLP parameters");
  nn_optim_config config = nn_sgd_config(m->lr);
  config.momentum = m->momentum;
  m->optimizer = nn_optimizer_new(m->ctx, params, &config);
  nn_tensor_list_free(params);
  m->state = nn_tensor_list_new(m->ctx);
  if (!m->optimizer || !m->state || nn_optimizer_collect_state(m->optimizer, "", m->state) != AD_OK)
    die_on_engine_error(m->ctx, "creating the optimizer");
}

static void create_velocity(mlp *m) {
  for (int i = 0; i < MLP_PARAMS; i++) {
    ad_tensor *p = m->params[i];
    m->velocity[i] = ad_persist(ad_zeros(m->ctx, AD_F32, ad_ndim(p), ad_shape(p)));
    if (!m->velocity[i]) die_on_engine_error(m->ctx, "creating the momentum buffers");
  }
}

void mlp_init(mlp *m, ad_ctx *ctx, mlp_api api, uint64_t seed, double lr, double momentum) {
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  m->api = api;
  m->lr = lr;
  m->momentum = momentum;
  m->model = build_model(ctx, seed);
  /* The Linear layers are children 0, 2 and 4, each with weight and bias. */
  for (int layer = 0; layer < MLP_LAYERS; layer++) {
    nn_layer *linear = nn_layer_child(m->model, 2 * layer);
    m->params[2 * layer] = nn_layer_param(linear, 0);
    m->params[2 * layer + 1] = nn_layer_param(linear, 1);
  }
  if (api == MLP_API_NN) create_optimizer(m);
  else create_velocity(m);
  for (int i = 0; i < MLP_PARAMS; i++) {
    size_t bytes = (size_t)ad_numel(m->params[i]) * sizeof(float);
    m->initial[i] = malloc(bytes);
    if (!m->initial[i]) {
      fprintf(stderr, "ad-bench: out of memory copying the initial parameters\n");
      exit(1);
    }
    memcpy(m->initial[i], ad_data_f32(m->params[i]), bytes);
  }
  ad_ctx_reset(ctx);
}

static void zero_tensor(ad_tensor *t) {
  size_t bytes = (size_t)ad_numel(t) * ad_dtype_size(ad_tensor_dtype(t));
  void *data = ad_tensor_dtype(t) == AD_I64 ? (void *)ad_data_i64_mut(t) : (void *)ad_data_f32_mut(t);
  if (!data) die_on_engine_error(ad_tensor_ctx(t), "zeroing the optimizer state");
  memset(data, 0, bytes);
}

void mlp_restore(mlp *m) {
  for (int i = 0; i < MLP_PARAMS; i++)
    memcpy(ad_data_f32_mut(m->params[i]), m->initial[i],
           (size_t)ad_numel(m->params[i]) * sizeof(float));
  if (m->api == MLP_API_NN) {
    for (int64_t i = 0; i < m->state->count; i++) zero_tensor(m->state->items[i].tensor);
  } else {
    for (int i = 0; i < MLP_PARAMS; i++) zero_tensor(m->velocity[i]);
  }
}

void mlp_free(mlp *m) {
  for (int i = 0; i < MLP_PARAMS; i++) {
    free(m->initial[i]);
    ad_tensor_free(m->velocity[i]);
  }
  nn_tensor_list_free(m->state);
  nn_optimizer_free(m->optimizer);
  nn_layer_free(m->model);
  memset(m, 0, sizeof *m);
}

/* ---- Training steps ----------------------------------------------------- */

static ad_tensor *forward_nn(mlp *m, ad_tensor *x, ad_tensor *y) {
  return nn_cross_entropy_loss(m->ctx, nn_forward(m->ctx, m->model, x), y, AD_REDUCE_MEAN);
}

static ad_tensor *forward_engine(mlp *m, ad_tensor *x, ad_tensor *y) {
  ad_tensor *h = x;
  for (int layer = 0; layer < MLP_LAYERS; layer++) {
    h = ad_linear(m->ctx, h, m->params[2 * layer], m->params[2 * layer + 1]);
    if (layer + 1 < MLP_LAYERS) h = ad_relu(m->ctx, h);
  }
  return ad_cross_entropy(m->ctx, h, y, AD_REDUCE_MEAN);
}

/* v = momentum v + grad; p -= lr v in float32, as torch.optim.SGD with
   dampening 0 computes it (v starts at zero, which equals its first-step
   v = grad). */
static void sgd_engine(mlp *m) {
  const float lr = (float)m->lr, momentum = (float)m->momentum;
  for (int i = 0; i < MLP_PARAMS; i++) {
    const float *g = ad_data_f32(ad_grad(m->params[i]));
    float *v = ad_data_f32_mut(m->velocity[i]);
    float *p = ad_data_f32_mut(m->params[i]);
    if (!g || !v || !p) die_on_engine_error(m->ctx, "the SGD update");
    int64_t n = ad_numel(m->params[i]);
    for (int64_t k = 0; k < n; k++) {
      v[k] = momentum * v[k] + g[k];
      p[k] -= lr * v[k];
    }
  }
}

double mlp_step(mlp *m, nn_image_set *set, const int64_t *indices, int64_t count) {
  ad_ctx *ctx = m->ctx;
  ad_ctx_reset(ctx);
  ad_tensor *x, *y;
  if (nn_image_set_batch(ctx, set, indices, count, &x, &y) != AD_OK)
    die_on_engine_error(ctx, "building a batch");

  ad_tensor *loss = m->api == MLP_API_NN ? forward_nn(m, x, y) : forward_engine(m, x, y);
  if (!loss) die_on_engine_error(ctx, "the MLP forward pass");

  /* Zeroed gradients make the backward sweep overwrite instead of adding. */
  if (m->api == MLP_API_NN) nn_optimizer_zero_grad(m->optimizer);
  else
    for (int i = 0; i < MLP_PARAMS; i++) ad_zero_grad(m->params[i]);
  if (ad_backward(ctx, loss, NULL) != AD_OK) die_on_engine_error(ctx, "the MLP backward pass");
  double value;
  if (ad_item(loss, &value) != AD_OK) die_on_engine_error(ctx, "reading the loss");

  if (m->api == MLP_API_NN) {
    if (nn_optimizer_step(m->optimizer) != AD_OK) die_on_engine_error(ctx, "the SGD update");
  } else {
    sgd_engine(m);
  }
  return value;
}

/* ---- Options and data ----------------------------------------------- */

static mlp_api parse_api(const char *text) {
  if (strcmp(text, "nn") == 0) return MLP_API_NN;
  if (strcmp(text, "engine") == 0) return MLP_API_ENGINE;
  fprintf(stderr, "ad-bench: invalid value '%s' for --api; expected nn or engine\n", text);
  exit(2);
}

void mlp_parse_options(mlp_options *o, int argc, char **argv, const char *usage) {
  static const char *const with_value[] = {"--data", "--samples", "--batch", "--threads",
                                           "--epochs", "--warmup", "--steps", "--seed", "--api"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--synthetic") == 0) {
      o->synthetic = true;
      continue;
    }
    if (strcmp(a, "--lockstep") == 0) {
      o->lockstep = true;
      continue;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      if (strcmp(a, with_value[k]) == 0) known = true;
    if (!known) {
      fprintf(stderr, "ad-bench: unknown option '%s'\nusage: %s\n", a, usage);
      exit(2);
    }
    const char *v = option_value(argc, argv, &i);
    if (strcmp(a, "--data") == 0) o->data_dir = v;
    else if (strcmp(a, "--samples") == 0) o->samples = parse_count(a, v);
    else if (strcmp(a, "--batch") == 0) o->batch = parse_count(a, v);
    else if (strcmp(a, "--threads") == 0) o->threads = parse_small_count(a, v, 1);
    else if (strcmp(a, "--epochs") == 0) o->epochs = parse_small_count(a, v, 1);
    else if (strcmp(a, "--warmup") == 0) o->warmup = parse_small_count(a, v, 0);
    else if (strcmp(a, "--steps") == 0) o->steps = parse_count(a, v);
    else if (strcmp(a, "--api") == 0) o->api = parse_api(v);
    else o->seed = (uint64_t)parse_count(a, v);
  }
}

/* Returns directory/name, or directory/name.gz when only that exists, in path. */
static const char *idx_path(char *path, size_t capacity, const char *directory, const char *name) {
  snprintf(path, capacity, "%s/%s", directory, name);
  if (access(path, R_OK) == 0) return path;
  snprintf(path, capacity, "%s/%s.gz", directory, name);
  return path;
}

/* Fills set with count random 28x28 images and labels from a fixed seed,
   for the quick mode on machines without the dataset. */
static void synthetic_set(nn_image_set *set, int64_t count) {
  memset(set, 0, sizeof *set);
  uint8_t *images = malloc((size_t)count * 784);
  uint8_t *labels = malloc((size_t)count);
  if (!images || !labels) {
    fprintf(stderr, "ad-bench: out of memory for %lld synthetic images\n", (long long)count);
    exit(1);
  }
  ad_rng rng;
  ad_rng_seed(&rng, 7);
  for (int64_t i = 0; i < count * 784; i++) images[i] = (uint8_t)ad_rng_next(&rng);
  for (int64_t i = 0; i < count; i++) labels[i] = (uint8_t)ad_rng_below(&rng, 10);
  set->count = count;
  set->rows = set->cols = 28;
  set->classes = 10;
  set->images = images;
  set->labels = labels;
}

void mlp_load_data(nn_image_set *set, ad_ctx *ctx, const mlp_options *o) {
  if (o->synthetic) {
    synthetic_set(set, o->samples ? o->samples : 60000);
  } else {
    char images[4096], labels[4096];
    idx_path(images, sizeof images, o->data_dir, "train-images-idx3-ubyte");
    idx_path(labels, sizeof labels, o->data_dir, "train-labels-idx1-ubyte");
    if (nn_image_set_load(ctx, images, labels, set) != AD_OK) {
      fprintf(stderr, "ad-bench: %s\ninstall Debian's dataset-fashion-mnist or pass --data DIR\n",
              ad_errmsg(ctx));
      exit(1);
    }
    if (o->samples) nn_image_set_limit(set, o->samples);
  }
  if (set->rows * set->cols != mlp_widths[0]) {
    fprintf(stderr, "ad-bench: images have %lld pixels; the MLP expects %lld\n",
            (long long)(set->rows * set->cols), (long long)mlp_widths[0]);
    exit(1);
  }
  set->mean = PIXEL_MEAN;
  set->std = PIXEL_STD;
}

void mlp_release_data(nn_image_set *set) {
  if (set->image_file.ctx) {
    nn_image_set_release(set);
    return;
  }
  /* A synthetic set owns malloc'd bytes instead of IDX files. */
  free((void *)set->images);
  free((void *)set->labels);
  memset(set, 0, sizeof *set);
}
