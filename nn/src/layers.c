/* layers.c: the built-in layers (linear, activations, dropout, flatten). */
#include <math.h>

#include "nn_internal.h"

/* ---- Linear ---------------------------------------------------------- */

static ad_tensor *linear_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  return ad_linear(ctx, x, self->params[0].tensor, self->params[1].tensor);
}

/* Draws a [out, in] float32 weight matrix with the scheme init. */
static ad_tensor *initial_weight(ad_ctx *ctx, int64_t in, int64_t out, nn_init init, ad_rng *rng) {
  const int64_t shape[2] = {out, in};
  double fan_in = (double)in, fan_sum = (double)(in + out);
  switch (init) {
  case NN_INIT_XAVIER_UNIFORM: {
    double a = sqrt(6.0 / fan_sum);
    return ad_rand_uniform(ctx, rng, AD_F32, 2, shape, -a, a);
  }
  case NN_INIT_XAVIER_NORMAL:
    return ad_rand_normal(ctx, rng, AD_F32, 2, shape, 0, sqrt(2.0 / fan_sum));
  case NN_INIT_KAIMING_UNIFORM: {
    double b = sqrt(6.0 / fan_in);
    return ad_rand_uniform(ctx, rng, AD_F32, 2, shape, -b, b);
  }
  case NN_INIT_KAIMING_NORMAL:
    return ad_rand_normal(ctx, rng, AD_F32, 2, shape, 0, sqrt(2.0 / fan_in));
  }
  ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_linear: init %d is not an nn_init value", (int)init);
  return NULL;
}

nn_layer *nn_linear(ad_ctx *ctx, int64_t in, int64_t out, nn_init init, ad_rng *rng) {
  if (!ctx) return NULL;
  if (in < 1 || out < 1) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_linear: in %lld and out %lld must both be at least 1",
                 (long long)in, (long long)out);
    return NULL;
  }
  if (!rng) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_linear: the random generator is NULL; pass a seeded "
                 "ad_rng");
    return NULL;
  }
  ad_tensor *weight = initial_weight(ctx, in, out, init, rng);
  if (!weight) return NULL;
  nn_layer *layer = nn_layer_new(ctx, "Linear", linear_forward, 0);
  if (!nn_layer_add_param(layer, "weight", weight) ||
      !nn_layer_add_param(layer, "bias", ad_zeros(ctx, AD_F32, 1, &out))) {
    nn_layer_free(layer);
    return NULL;
  }
  return layer;
}

/* ---- Activations ----------------------------------------------------- */

typedef struct activation_state {
  double slope; /* leaky ReLU */
  int axis;     /* softmax */
} activation_state;

static ad_tensor *relu_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  (void)self;
  return ad_relu(ctx, x);
}

static ad_tensor *leaky_relu_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  const activation_state *state = self->state;
  return ad_leaky_relu(ctx, x, state->slope);
}

static ad_tensor *sigmoid_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  (void)self;
  return ad_sigmoid(ctx, x);
}

static ad_tensor *tanh_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  (void)self;
  return ad_tanh(ctx, x);
}

static ad_tensor *gelu_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  (void)self;
  return ad_gelu(ctx, x);
}

static ad_tensor *softmax_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  const activation_state *state = self->state;
  return ad_softmax(ctx, x, state->axis);
}

nn_layer *nn_relu(ad_ctx *ctx) { return nn_layer_new(ctx, "ReLU", relu_forward, 0); }
nn_layer *nn_sigmoid(ad_ctx *ctx) { return nn_layer_new(ctx, "Sigmoid", sigmoid_forward, 0); }
nn_layer *nn_tanh(ad_ctx *ctx) { return nn_layer_new(ctx, "Tanh", tanh_forward, 0); }
nn_layer *nn_gelu(ad_ctx *ctx) { return nn_layer_new(ctx, "GELU", gelu_forward, 0); }

nn_layer *nn_leaky_relu(ad_ctx *ctx, double slope) {
  if (ctx && !isfinite(slope)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_leaky_relu: slope %g is not finite", slope);
    return NULL;
  }
  nn_layer *layer = nn_layer_new(ctx, "LeakyReLU", leaky_relu_forward, sizeof(activation_state));
  if (layer) ((activation_state *)layer->state)->slope = slope;
  return layer;
}

nn_layer *nn_softmax(ad_ctx *ctx, int axis) {
  nn_layer *layer = nn_layer_new(ctx, "Softmax", softmax_forward, sizeof(activation_state));
  if (layer) ((activation_state *)layer->state)->axis = axis;
  return layer;
}

/* ---- Dropout --------------------------------------------------------- */

typedef struct dropout_state {
  double p;    /* probability of zeroing an element */
  ad_rng *rng; /* borrowed from the caller */
} dropout_state;

static ad_tensor *dropout_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  const dropout_state *state = self->state;
  if (!self->training || state->p == 0) return x;
  ad_dtype dtype = ad_tensor_dtype(x);
  if (dtype != AD_F32 && dtype != AD_F64) {
    ad_set_error(ctx, AD_ERR_DTYPE, "Dropout: the input has dtype %s; dropout needs float32 or "
                 "float64", ad_dtype_name(dtype));
    return NULL;
  }
  ad_tensor *mask = ad_zeros(ctx, dtype, ad_ndim(x), ad_shape(x));
  if (!mask) return NULL;
  /* An element survives when its uniform draw u >= p, so with probability
     1 - p; p == 1 keeps nothing. */
  double scale = state->p < 1 ? 1 / (1 - state->p) : 0;
  int64_t n = ad_numel(mask);
  if (dtype == AD_F32) {
    float *m = ad_data_f32_mut(mask);
    for (int64_t i = 0; i < n; i++)
      m[i] = ad_rng_uniform(state->rng) >= state->p ? (float)scale : 0.0f;
  } else {
    double *m = ad_data_f64_mut(mask);
    for (int64_t i = 0; i < n; i++) m[i] = ad_rng_uniform(state->rng) >= state->p ? scale : 0.0;
  }
  return ad_mul(ctx, x, mask);
}

nn_layer *nn_dropout(ad_ctx *ctx, double p, ad_rng *rng) {
  if (!ctx) return NULL;
  if (!(p >= 0 && p <= 1)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_dropout: probability %g is outside [0, 1]", p);
    return NULL;
  }
  if (!rng) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_dropout: the random generator is NULL; pass a seeded "
                 "ad_rng that outlives the layer");
    return NULL;
  }
  nn_layer *layer = nn_layer_new(ctx, "Dropout", dropout_forward, sizeof(dropout_state));
  if (!layer) return NULL;
  dropout_state *state = layer->state;
  state->p = p;
  state->rng = rng;
  return layer;
}

/* ---- Flatten --------------------------------------------------------- */

static ad_tensor *flatten_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  (void)self;
  if (ad_ndim(x) < 1) {
    ad_set_error(ctx, AD_ERR_SHAPE, "Flatten: the input is a 0-d tensor; it needs a batch "
                 "dimension");
    return NULL;
  }
  const int64_t shape[2] = {ad_dim(x, 0), -1};
  if (shape[0] == 0) {
    /* -1 cannot be inferred beside a zero dimension. */
    int64_t rest = 1;
    for (int d = 1; d < ad_ndim(x); d++) rest *= ad_shape(x)[d];
    return ad_reshape(ctx, x, 2, (const int64_t[]){0, rest});
  }
  return ad_reshape(ctx, x, 2, shape);
}

nn_layer *nn_flatten(ad_ctx *ctx) { return nn_layer_new(ctx, "Flatten", flatten_forward, 0); }
