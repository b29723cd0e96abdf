/* The README's example of the nn module and the custom layer of nn_layer.h's
   header comment, compiled and run so that they stay correct. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn.h"

/* ---- The example, as the README shows it ----------------------------- */

/* A layer of one's own: y = x * scale, one learnable scale per feature. */
static ad_tensor *scale_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  return ad_mul(ctx, x, nn_layer_param(self, 0));
}

static nn_layer *scale_new(ad_ctx *ctx, int64_t features) {
  nn_layer *layer = nn_layer_new(ctx, "Scale", scale_forward, 0);
  if (!nn_layer_add_param(layer, "weight", ad_ones(ctx, AD_F32, 1, &features))) {
    nn_layer_free(layer);
    return NULL;
  }
  return layer;
}

/* Trains a small network with the custom layer on XOR, saves it to path and
   stores the last loss. Returns 0, or 1 after printing the error. */
static int train_xor(const char *path, double *last_loss) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  nn_layer *model = nn_sequential(ctx);
  nn_sequential_add(model, nn_linear(ctx, 2, 16, NN_INIT_KAIMING_UNIFORM, &rng));
  nn_sequential_add(model, nn_relu(ctx));
  nn_sequential_add(model, scale_new(ctx, 16));
  nn_sequential_add(model, nn_linear(ctx, 16, 2, NN_INIT_XAVIER_UNIFORM, &rng));
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  nn_layer_collect_params(model, NULL, params); /* "0.weight", "0.bias", "2.weight", ... */
  nn_optim_config config = nn_adam_config(0.01);
  nn_optimizer *opt = nn_optimizer_new(ctx, params, &config);

  const float inputs[] = {0, 0, 0, 1, 1, 0, 1, 1};
  const int64_t classes[] = {0, 1, 1, 0};
  ad_status status = ad_errcode(ctx);
  for (int step = 0; step < 300 && status == AD_OK; step++) {
    ad_ctx_reset(ctx); /* releases the previous step's tensors and tape */
    ad_tensor *x = ad_from_f32(ctx, 2, (const int64_t[]){4, 2}, inputs);
    ad_tensor *y = ad_from_i64(ctx, 1, (const int64_t[]){4}, classes);
    ad_tensor *loss = nn_cross_entropy_loss(ctx, nn_forward(ctx, model, x), y, AD_REDUCE_MEAN);
    nn_optimizer_zero_grad(opt);
    status = ad_backward(ctx, loss, NULL);
    if (status == AD_OK) status = ad_item(loss, last_loss);
    if (status == AD_OK) status = nn_optimizer_step(opt);
  }
  if (status == AD_OK) status = nn_checkpoint_save(ctx, path, params);
  if (status != AD_OK) fprintf(stderr, "training failed: %s\n", ad_errmsg(ctx));

  nn_optimizer_free(opt);
  nn_tensor_list_free(params);
  nn_layer_free(model);
  ad_ctx_free(ctx);
  return status == AD_OK ? 0 : 1;
}

/* ---- Tests ----------------------------------------------------------- */

START_TEST(test_readme_example_trains) {
  char path[] = "/tmp/nn-readme-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  double loss = -1;
  ck_assert_int_eq(train_xor(path, &loss), 0);
  /* Chance level is log 2 = 0.69. */
  ck_assert_double_lt(loss, 0.01);
  ck_assert_double_ge(loss, 0);
  ck_assert_int_eq(access(path, R_OK), 0);
  unlink(path);
}
END_TEST

START_TEST(test_scale_layer_forward) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *layer = scale_new(ctx, 3);
  ck_assert_ptr_nonnull(layer);
  ck_assert_str_eq(nn_layer_kind(layer), "Scale");
  ck_assert_str_eq(nn_layer_param_name(layer, 0), "weight");
  float *w = ad_data_f32_mut(nn_layer_param(layer, 0));
  w[0] = 2;
  w[2] = -1;
  const float xv[] = {1, 2, 3, 4, 5, 6};
  ad_tensor *y = nn_forward(ctx, layer, ad_from_f32(ctx, 2, (const int64_t[]){2, 3}, xv));
  const float expected[] = {2, 2, -3, 8, 5, -6};
  ck_assert_ptr_nonnull(y);
  for (int i = 0; i < 6; i++) ck_assert_float_eq(ad_data_f32(y)[i], expected[i]);
  nn_layer_free(layer);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *readme_suite(void) {
  Suite *s = suite_create("nn_readme_example");
  TCase *tc = tcase_create("example");
  tcase_add_test(tc, test_readme_example_trains);
  tcase_add_test(tc, test_scale_layer_forward);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(readme_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
