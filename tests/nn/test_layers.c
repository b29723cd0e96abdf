/* Layers: forward values on known inputs, parameter names, initialisation,
   dropout modes, a custom layer, and construction errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "nn.h"

static ad_tensor *tensor_f32(ad_ctx *ctx, int64_t rows, int64_t cols, const float *values) {
  return ad_from_f32(ctx, 2, (const int64_t[]){rows, cols}, values);
}

static void assert_values(ad_tensor *t, const float *expected, int64_t n, double tol) {
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(ad_numel(t), n);
  const float *v = ad_data_f32(t);
  for (int64_t i = 0; i < n; i++)
    ck_assert_msg(fabs(v[i] - expected[i]) <= tol, "element %lld: got %.9g, expected %.9g",
                  (long long)i, v[i], expected[i]);
}

/* ---- Linear ---------------------------------------------------------- */

START_TEST(test_linear_forward) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  nn_layer *layer = nn_linear(ctx, 3, 2, NN_INIT_XAVIER_UNIFORM, &rng);
  ck_assert_ptr_nonnull(layer);
  ck_assert_int_eq(nn_layer_param_count(layer), 2);
  ck_assert_str_eq(nn_layer_param_name(layer, 0), "weight");
  ck_assert_str_eq(nn_layer_param_name(layer, 1), "bias");
  ad_tensor *w = nn_layer_param(layer, 0), *b = nn_layer_param(layer, 1);
  ck_assert_int_eq(ad_dim(w, 0), 2);
  ck_assert_int_eq(ad_dim(w, 1), 3);
  ck_assert_int_eq(ad_dim(b, 0), 2);
  const float wv[] = {1, 2, 3, -1, 0.5f, 0}, bv[] = {0.5f, -2};
  for (int i = 0; i < 6; i++) ad_data_f32_mut(w)[i] = wv[i];
  for (int i = 0; i < 2; i++) ad_data_f32_mut(b)[i] = bv[i];
  const float xv[] = {1, 0, -1, 2, 2, 2};
  ad_tensor *y = nn_forward(ctx, layer, tensor_f32(ctx, 2, 3, xv));
  /* Row 1: (1 - 3) + 0.5, (-1) - 2. Row 2: 12 + 0.5, (-2 + 1) - 2. */
  const float expected[] = {-1.5f, -3, 12.5f, -3};
  assert_values(y, expected, 4, 1e-6);
  nn_layer_free(layer);
  ad_ctx_free(ctx);
}
END_TEST

/* Each scheme's bound or standard deviation for in = 200, out = 100. */
START_TEST(test_linear_init_schemes) {
  const nn_init inits[] = {NN_INIT_XAVIER_UNIFORM, NN_INIT_XAVIER_NORMAL, NN_INIT_KAIMING_UNIFORM,
                           NN_INIT_KAIMING_NORMAL};
  const double in = 200, out = 100;
  const double spread[] = {sqrt(6 / (in + out)), sqrt(2 / (in + out)), sqrt(6 / in), sqrt(2 / in)};
  const bool uniform[] = {true, false, true, false};
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, (uint64_t)_i + 7);
  nn_layer *layer = nn_linear(ctx, 200, 100, inits[_i], &rng);
  ck_assert_ptr_nonnull(layer);
  const float *w = ad_data_f32(nn_layer_param(layer, 0));
  double sum = 0, sum_sq = 0, largest = 0;
  for (int i = 0; i < 20000; i++) {
    sum += w[i];
    sum_sq += (double)w[i] * w[i];
    if (fabs(w[i]) > largest) largest = fabs(w[i]);
  }
  double mean = sum / 20000, std = sqrt(sum_sq / 20000 - mean * mean);
  /* A uniform U(-a, a) has standard deviation a / sqrt(3). */
  double expected_std = uniform[_i] ? spread[_i] / sqrt(3) : spread[_i];
  ck_assert_double_le(fabs(mean), 0.05 * expected_std);
  ck_assert_double_le(fabs(std - expected_std), 0.03 * expected_std);
  if (uniform[_i]) ck_assert_double_le(largest, spread[_i]);
  const float *b = ad_data_f32(nn_layer_param(layer, 1));
  for (int i = 0; i < 100; i++) ck_assert_float_eq(b[i], 0);
  nn_layer_free(layer);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_linear_same_seed_same_weights) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng a, b;
  ad_rng_seed(&a, 42);
  ad_rng_seed(&b, 42);
  nn_layer *first = nn_linear(ctx, 5, 4, NN_INIT_KAIMING_NORMAL, &a);
  nn_layer *second = nn_linear(ctx, 5, 4, NN_INIT_KAIMING_NORMAL, &b);
  const float *w1 = ad_data_f32(nn_layer_param(first, 0));
  const float *w2 = ad_data_f32(nn_layer_param(second, 0));
  for (int i = 0; i < 20; i++) ck_assert_float_eq(w1[i], w2[i]);
  nn_layer_free(first);
  nn_layer_free(second);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_linear_rejects_bad_arguments) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  ck_assert_ptr_null(nn_linear(ctx, 0, 3, NN_INIT_XAVIER_UNIFORM, &rng));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_linear"));
  ad_clear_error(ctx);
  ck_assert_ptr_null(nn_linear(ctx, 3, 3, NN_INIT_XAVIER_UNIFORM, NULL));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);
  ck_assert_ptr_null(nn_linear(ctx, 3, 3, (nn_init)99, &rng));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);
  nn_layer *layer = nn_linear(ctx, 3, 2, NN_INIT_XAVIER_UNIFORM, &rng);
  const float xv[] = {1, 2, 3, 4};
  ck_assert_ptr_null(nn_forward(ctx, layer, tensor_f32(ctx, 1, 4, xv)));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  nn_layer_free(layer);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Activations ----------------------------------------------------- */

static const float act_input[] = {-2, -0.5f, 0, 0.5f, 2, 10};

START_TEST(test_activations_forward) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *layers[] = {nn_relu(ctx), nn_leaky_relu(ctx, 0.1), nn_sigmoid(ctx), nn_tanh(ctx),
                        nn_gelu(ctx)};
  const char *kinds[] = {"ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU"};
  float expected[5][6];
  for (int i = 0; i < 6; i++) {
    double x = act_input[i];
    expected[0][i] = (float)(x > 0 ? x : 0);
    expected[1][i] = (float)(x > 0 ? x : 0.1 * x);
    expected[2][i] = (float)(1 / (1 + exp(-x)));
    expected[3][i] = (float)tanh(x);
    expected[4][i] = (float)(x * 0.5 * (1 + erf(x / sqrt(2))));
  }
  for (int k = 0; k < 5; k++) {
    ck_assert_str_eq(nn_layer_kind(layers[k]), kinds[k]);
    ad_tensor *y = nn_forward(ctx, layers[k], tensor_f32(ctx, 2, 3, act_input));
    ck_assert_msg(y != NULL, "%s: %s", kinds[k], ad_errmsg(ctx));
    assert_values(y, expected[k], 6, 1e-6);
    ck_assert_int_eq(nn_layer_param_count(layers[k]), 0);
    nn_layer_free(layers[k]);
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_softmax_forward) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *rows = nn_softmax(ctx, -1), *cols = nn_softmax(ctx, 0);
  const float xv[] = {0, 1, 2, 3, 3, 3};
  ad_tensor *x = tensor_f32(ctx, 2, 3, xv);
  double e = exp(1), s = 1 + e + e * e;
  const float by_row[] = {(float)(1 / s), (float)(e / s), (float)(e * e / s), 1 / 3.0f, 1 / 3.0f,
                          1 / 3.0f};
  assert_values(nn_forward(ctx, rows, x), by_row, 6, 1e-6);
  /* Columns: (0, 3), (1, 3), (2, 3). */
  const float by_col[] = {(float)(1 / (1 + exp(3))), (float)(1 / (1 + exp(2))),
                          (float)(1 / (1 + exp(1))), (float)(1 / (1 + exp(-3))),
                          (float)(1 / (1 + exp(-2))), (float)(1 / (1 + exp(-1)))};
  assert_values(nn_forward(ctx, cols, x), by_col, 6, 1e-6);
  nn_layer_free(rows);
  nn_layer_free(cols);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Dropout and Flatten --------------------------------------------- */

START_TEST(test_dropout_modes) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 3);
  nn_layer *drop = nn_dropout(ctx, 0.25, &rng);
  ck_assert_ptr_nonnull(drop);
  ad_tensor *x = ad_ones(ctx, AD_F32, 2, (const int64_t[]){100, 100});
  ad_tensor *y = nn_forward(ctx, drop, x);
  ck_assert_ptr_nonnull(y);
  const float *v = ad_data_f32(y);
  int64_t zeros = 0;
  for (int64_t i = 0; i < 10000; i++) {
    ck_assert_msg(v[i] == 0 || fabsf(v[i] - 1 / 0.75f) < 1e-6f, "element %lld is %g",
                  (long long)i, v[i]);
    zeros += v[i] == 0;
  }
  /* 2500 expected zeros; 5 standard deviations is about 217. */
  ck_assert_int_ge(zeros, 2500 - 217);
  ck_assert_int_le(zeros, 2500 + 217);

  nn_layer_set_training(drop, false);
  ck_assert(!nn_layer_training(drop));
  ad_tensor *same = nn_forward(ctx, drop, x);
  ck_assert_ptr_eq(same, x);
  nn_layer_free(drop);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_dropout_edges_and_gradient) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 5);
  nn_layer *all = nn_dropout(ctx, 1, &rng), *none = nn_dropout(ctx, 0, &rng);
  ad_tensor *x = ad_full(ctx, AD_F32, 1, (const int64_t[]){50}, 2);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *zeroed = nn_forward(ctx, all, x);
  for (int i = 0; i < 50; i++) ck_assert_float_eq(ad_data_f32(zeroed)[i], 0);
  ck_assert_ptr_eq(nn_forward(ctx, none, x), x);

  nn_layer *half = nn_dropout(ctx, 0.5, &rng);
  ad_tensor *y = nn_forward(ctx, half, x);
  ck_assert_int_eq(ad_backward(ctx, ad_sum_all(ctx, y), NULL), AD_OK);
  const float *g = ad_data_f32(ad_grad(x)), *v = ad_data_f32(y);
  /* The gradient is the mask: 2 where the element survived, else 0. */
  for (int i = 0; i < 50; i++) ck_assert_float_eq(g[i], v[i] == 0 ? 0.0f : 2.0f);

  ck_assert_ptr_null(nn_dropout(ctx, 1.5, &rng));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  nn_layer_free(all);
  nn_layer_free(none);
  nn_layer_free(half);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_flatten_forward) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *flat = nn_flatten(ctx);
  ad_tensor *x = ad_arange(ctx, AD_F32, 0, 24, 1);
  ad_tensor *x4 = ad_reshape(ctx, x, 4, (const int64_t[]){2, 3, 2, 2});
  ad_tensor *y = nn_forward(ctx, flat, x4);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(ad_ndim(y), 2);
  ck_assert_int_eq(ad_dim(y, 0), 2);
  ck_assert_int_eq(ad_dim(y, 1), 12);
  for (int i = 0; i < 24; i++) ck_assert_float_eq(ad_data_f32(y)[i], (float)i);
  ck_assert_ptr_null(nn_forward(ctx, flat, ad_scalar(ctx, AD_F32, 1)));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  nn_layer_free(flat);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Sequential and names -------------------------------------------- */

START_TEST(test_sequential_forward_and_names) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 9);
  nn_layer *model = nn_sequential(ctx);
  ck_assert_int_eq(nn_sequential_add(model, nn_linear(ctx, 2, 2, NN_INIT_XAVIER_UNIFORM, &rng)),
                   AD_OK);
  ck_assert_int_eq(nn_sequential_add(model, nn_relu(ctx)), AD_OK);
  nn_layer *inner = nn_sequential(ctx);
  nn_sequential_add(inner, nn_linear(ctx, 2, 1, NN_INIT_XAVIER_UNIFORM, &rng));
  ck_assert_int_eq(nn_sequential_add(model, inner), AD_OK);
  ck_assert_int_eq(nn_layer_child_count(model), 3);
  ck_assert_int_eq(nn_layer_param_numel(model), 6 + 3);

  nn_tensor_list *params = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_layer_collect_params(model, NULL, params), AD_OK);
  const char *names[] = {"0.weight", "0.bias", "2.0.weight", "2.0.bias"};
  ck_assert_int_eq(params->count, 4);
  for (int i = 0; i < 4; i++) ck_assert_str_eq(params->items[i].name, names[i]);

  /* y = relu(x W0^T + b0) W1^T + b1 with hand-set weights. */
  const float w0[] = {1, -1, 2, 1}, b0[] = {0, -1}, w1[] = {3, -2}, b1[] = {0.5f};
  const float *src[] = {w0, b0, w1, b1};
  for (int i = 0; i < 4; i++)
    for (int64_t j = 0; j < ad_numel(params->items[i].tensor); j++)
      ad_data_f32_mut(params->items[i].tensor)[j] = src[i][j];
  const float xv[] = {1, 2, 3, -1};
  ad_tensor *y = nn_forward(ctx, model, tensor_f32(ctx, 2, 2, xv));
  /* Row (1, 2): hidden relu(-1, 3) = (0, 3), y = -6 + 0.5.
     Row (3, -1): hidden relu(4, 4) = (4, 4), y = 12 - 8 + 0.5. */
  const float expected[] = {-5.5f, 4.5f};
  assert_values(y, expected, 2, 1e-6);

  nn_layer_set_training(model, false);
  ck_assert(!nn_layer_training(nn_layer_child(inner, 0)));
  nn_tensor_list_free(params);
  nn_layer_free(model);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_sequential_empty_is_identity) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *model = nn_sequential(ctx);
  ad_tensor *x = ad_ones(ctx, AD_F32, 1, (const int64_t[]){3});
  ck_assert_ptr_eq(nn_forward(ctx, model, x), x);
  nn_layer_free(model);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_failed_child_breaks_model) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  nn_layer *model = nn_sequential(ctx);
  nn_sequential_add(model, nn_linear(ctx, -1, 2, NN_INIT_XAVIER_UNIFORM, &rng));
  nn_sequential_add(model, nn_relu(ctx));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_linear"));
  ad_clear_error(ctx);
  ck_assert_ptr_null(nn_forward(ctx, model, ad_ones(ctx, AD_F32, 1, (const int64_t[]){2})));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "incomplete"));
  ad_clear_error(ctx);
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_layer_collect_params(model, NULL, params), AD_ERR_ARGUMENT);
  nn_tensor_list_free(params);
  nn_layer_free(model);
  ad_ctx_free(ctx);
}
END_TEST

/* A layer cannot be its own child, its ancestor's child, or the child of
   two layers; the refused layer stays usable and nothing is freed twice. */
START_TEST(test_child_cycles_rejected) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *outer = nn_sequential(ctx);
  nn_layer *inner = nn_sequential(ctx);
  nn_layer *relu = nn_relu(ctx);
  ck_assert_int_eq(nn_sequential_add(outer, inner), AD_OK);
  ck_assert_int_eq(nn_sequential_add(inner, relu), AD_OK);

  ck_assert_int_eq(nn_sequential_add(outer, outer), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "ancestors"));
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_sequential_add(inner, outer), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "ancestors"));
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_sequential_add(outer, relu), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "already belongs"));
  ad_clear_error(ctx);

  ck_assert_int_eq(nn_layer_child_count(outer), 1);
  ck_assert_int_eq(nn_layer_child_count(inner), 1);
  nn_layer_free(outer);
  ad_ctx_free(ctx);
}
END_TEST

/* A child belongs to its parent: nn_layer_free on it records an error and
   frees nothing, so freeing the parent later is no use after free. */
START_TEST(test_free_child_rejected) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  nn_layer *outer = nn_sequential(ctx);
  nn_layer *inner = nn_sequential(ctx);
  nn_layer *linear = nn_linear(ctx, 2, 3, NN_INIT_XAVIER_UNIFORM, &rng);
  ck_assert_int_eq(nn_sequential_add(outer, inner), AD_OK);
  ck_assert_int_eq(nn_sequential_add(inner, linear), AD_OK);

  nn_layer_free(linear);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_layer_free"));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "Linear layer \"0\""));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "belongs to a parent Sequential layer"));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "free the parent"));
  ad_clear_error(ctx);
  nn_layer_free(inner);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);

  /* Both layers still work, and the root frees the whole tree. */
  ck_assert_int_eq(nn_layer_param_count(linear), 2);
  ad_tensor *y = nn_forward(ctx, outer, ad_ones(ctx, AD_F32, 2, (const int64_t[]){1, 2}));
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(ad_dim(y, 1), 3);
  nn_layer_free(outer);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_param_names_validated) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const char *bad[] = {"", "a.b", "w"};
  nn_layer *layer = nn_layer_new(ctx, "Custom", NULL, 0);
  ck_assert_ptr_null(layer);
  ad_clear_error(ctx);
  for (int i = 0; i < 3; i++) {
    nn_layer *l = nn_sequential(ctx);
    ck_assert_ptr_nonnull(nn_layer_add_param(l, "w", ad_ones(ctx, AD_F32, 0, NULL)));
    ck_assert_ptr_null(nn_layer_add_param(l, bad[i], ad_ones(ctx, AD_F32, 0, NULL)));
    ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
    ad_clear_error(ctx);
    nn_layer_free(l);
  }
  nn_layer *l = nn_sequential(ctx);
  ck_assert_ptr_null(nn_layer_add_param(l, "index", ad_zeros(ctx, AD_I64, 0, NULL)));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ad_clear_error(ctx);
  ad_ctx *other = ad_ctx_new(NULL);
  ck_assert_ptr_null(nn_layer_add_param(l, "foreign", ad_ones(other, AD_F32, 0, NULL)));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_CONTEXT);
  ad_ctx_free(other);
  nn_layer_free(l);
  ad_clear_error(ctx);

  /* Full names longer than NN_NAME_MAX - 1 bytes are rejected when collected. */
  char long_name[100];
  memset(long_name, 'n', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  nn_layer *outer = nn_sequential(ctx), *inner = nn_sequential(ctx);
  ck_assert_ptr_nonnull(nn_layer_add_param(inner, long_name, ad_ones(ctx, AD_F32, 0, NULL)));
  ck_assert_int_eq(nn_layer_add_child(outer, long_name, inner), AD_OK);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_layer_collect_params(outer, NULL, list), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "longer than"));
  ck_assert_int_eq(list->count, 0);
  nn_tensor_list_free(list);
  nn_layer_free(outer);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- A custom layer, as the README shows it -------------------------- */

/* y = x * scale + shift, with one learnable scale and shift per feature. */
static ad_tensor *affine_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  return ad_add(ctx, ad_mul(ctx, x, nn_layer_param(self, 0)), nn_layer_param(self, 1));
}

static nn_layer *affine_new(ad_ctx *ctx, int64_t features) {
  nn_layer *layer = nn_layer_new(ctx, "Affine", affine_forward, 0);
  if (!nn_layer_add_param(layer, "scale", ad_ones(ctx, AD_F32, 1, &features)) ||
      !nn_layer_add_param(layer, "shift", ad_zeros(ctx, AD_F32, 1, &features))) {
    nn_layer_free(layer);
    return NULL;
  }
  return layer;
}

START_TEST(test_custom_layer_trains) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *model = nn_sequential(ctx);
  nn_sequential_add(model, affine_new(ctx, 2));
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_layer_collect_params(model, NULL, params), AD_OK);
  ck_assert_str_eq(params->items[0].name, "0.scale");
  ck_assert_str_eq(params->items[1].name, "0.shift");
  nn_optim_config config = nn_sgd_config(0.1);
  nn_optimizer *opt = nn_optimizer_new(ctx, params, &config);
  ck_assert_ptr_nonnull(opt);
  /* Learn y = (2 x0 + 1, -x1 + 3) from four samples. */
  const float xv[] = {0, 0, 1, 1, -1, 2, 2, -1};
  float yv[8];
  for (int i = 0; i < 4; i++) {
    yv[2 * i] = 2 * xv[2 * i] + 1;
    yv[2 * i + 1] = -xv[2 * i + 1] + 3;
  }
  double loss = 0;
  for (int step = 0; step < 300; step++) {
    ad_ctx_reset(ctx);
    ad_tensor *y = nn_forward(ctx, model, tensor_f32(ctx, 4, 2, xv));
    ad_tensor *l = nn_mse_loss(ctx, y, tensor_f32(ctx, 4, 2, yv), AD_REDUCE_MEAN);
    nn_optimizer_zero_grad(opt);
    ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
    ck_assert_int_eq(ad_item(l, &loss), AD_OK);
    ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
  }
  ck_assert_double_lt(loss, 1e-6);
  const float *scale = ad_data_f32(params->items[0].tensor);
  const float *shift = ad_data_f32(params->items[1].tensor);
  ck_assert_float_eq_tol(scale[0], 2, 1e-3);
  ck_assert_float_eq_tol(scale[1], -1, 1e-3);
  ck_assert_float_eq_tol(shift[0], 1, 1e-3);
  ck_assert_float_eq_tol(shift[1], 3, 1e-3);
  nn_optimizer_free(opt);
  nn_tensor_list_free(params);
  nn_layer_free(model);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Tensor lists ---------------------------------------------------- */

START_TEST(test_tensor_list_rules) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  ad_tensor *t = ad_zeros(ctx, AD_F32, 0, NULL);
  char name[16];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof name, "t%d", i);
    ck_assert_int_eq(nn_tensor_list_add(list, name, t), AD_OK);
  }
  ck_assert_int_eq(list->count, 40);
  ck_assert_ptr_eq(nn_tensor_list_find(list, "t39"), t);
  ck_assert_ptr_null(nn_tensor_list_find(list, "t40"));
  ck_assert_int_eq(nn_tensor_list_add(list, "t3", t), AD_ERR_ARGUMENT);
  ck_assert_int_eq(nn_tensor_list_add(list, "", t), AD_ERR_ARGUMENT);
  ck_assert_int_eq(nn_tensor_list_add(list, "null", NULL), AD_ERR_ARGUMENT);
  char long_name[NN_NAME_MAX + 1];
  memset(long_name, 'a', NN_NAME_MAX);
  long_name[NN_NAME_MAX] = '\0';
  ck_assert_int_eq(nn_tensor_list_add(list, long_name, t), AD_ERR_ARGUMENT);
  ck_assert_int_eq(list->count, 40);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *layers_suite(void) {
  Suite *s = suite_create("nn_layers");
  TCase *tc = tcase_create("linear");
  tcase_add_test(tc, test_linear_forward);
  tcase_add_loop_test(tc, test_linear_init_schemes, 0, 4);
  tcase_add_test(tc, test_linear_same_seed_same_weights);
  tcase_add_test(tc, test_linear_rejects_bad_arguments);
  suite_add_tcase(s, tc);
  tc = tcase_create("activations");
  tcase_add_test(tc, test_activations_forward);
  tcase_add_test(tc, test_softmax_forward);
  suite_add_tcase(s, tc);
  tc = tcase_create("dropout_flatten");
  tcase_add_test(tc, test_dropout_modes);
  tcase_add_test(tc, test_dropout_edges_and_gradient);
  tcase_add_test(tc, test_flatten_forward);
  suite_add_tcase(s, tc);
  tc = tcase_create("containers");
  tcase_add_test(tc, test_sequential_forward_and_names);
  tcase_add_test(tc, test_sequential_empty_is_identity);
  tcase_add_test(tc, test_failed_child_breaks_model);
  tcase_add_test(tc, test_child_cycles_rejected);
  tcase_add_test(tc, test_free_child_rejected);
  tcase_add_test(tc, test_param_names_validated);
  tcase_add_test(tc, test_tensor_list_rules);
  suite_add_tcase(s, tc);
  tc = tcase_create("custom_layer");
  tcase_add_test(tc, test_custom_layer_trains);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(layers_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
