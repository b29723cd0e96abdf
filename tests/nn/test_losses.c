/* Losses: values and gradients against hand-computed numbers, and errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "nn.h"

typedef ad_tensor *(*make_loss)(ad_ctx *, ad_tensor *, ad_tensor *, ad_reduction);

/* Computes loss(output, target) with output requiring a gradient, checks
   the value and d loss / d output element by element. */
static void check_loss(make_loss loss, ad_tensor *output, ad_tensor *target,
                       ad_reduction reduction, double value, const double *grad, double tol) {
  ad_ctx *ctx = ad_tensor_ctx(output);
  ck_assert_int_eq(ad_set_requires_grad(output, true), AD_OK);
  ad_tensor *l = loss(ctx, output, target, reduction);
  ck_assert_msg(l != NULL, "%s", ad_errmsg(ctx));
  ck_assert_int_eq(ad_ndim(l), 0);
  double got;
  ck_assert_int_eq(ad_item(l, &got), AD_OK);
  ck_assert_msg(fabs(got - value) <= tol * fmax(1, fabs(value)), "loss %.9g, expected %.9g", got,
                value);
  ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
  ad_tensor *g = ad_grad(output);
  ck_assert_ptr_nonnull(g);
  for (int64_t i = 0; i < ad_numel(output); i++) {
    double gi = ad_data_f32(g)[i];
    ck_assert_msg(fabs(gi - grad[i]) <= tol * fmax(1, fabs(grad[i])),
                  "gradient element %lld: %.9g, expected %.9g", (long long)i, gi, grad[i]);
  }
}

static ad_tensor *vector(ad_ctx *ctx, int64_t n, const float *v) {
  return ad_from_f32(ctx, 1, &n, v);
}

START_TEST(test_mse_large_values) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float pred[] = {300000}, truth[] = {320000};
  /* (300000 - 320000)^2 = 4e8; d/dpred = 2 (pred - truth) = -40000. */
  const double grad[] = {-40000};
  check_loss(nn_mse_loss, vector(ctx, 1, pred), vector(ctx, 1, truth), AD_REDUCE_SUM, 4e8, grad,
             1e-7);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_mse_reductions) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float pred[] = {1, 2, 3, 4}, truth[] = {0, 2, 5, 1};
  /* Errors 1, 0, -2, 3; squares 1, 0, 4, 9. */
  const double grad_sum[] = {2, 0, -4, 6}, grad_mean[] = {0.5, 0, -1, 1.5};
  check_loss(nn_mse_loss, vector(ctx, 4, pred), vector(ctx, 4, truth), AD_REDUCE_SUM, 14,
             grad_sum, 1e-6);
  ad_ctx_reset(ctx);
  check_loss(nn_mse_loss, vector(ctx, 4, pred), vector(ctx, 4, truth), AD_REDUCE_MEAN, 3.5,
             grad_mean, 1e-6);
  ad_ctx_reset(ctx);
  ad_tensor *each = nn_mse_loss(ctx, vector(ctx, 4, pred), vector(ctx, 4, truth), AD_REDUCE_NONE);
  ck_assert_ptr_nonnull(each);
  const float squares[] = {1, 0, 4, 9};
  for (int i = 0; i < 4; i++) ck_assert_float_eq(ad_data_f32(each)[i], squares[i]);
  ad_ctx_free(ctx);
}
END_TEST

/* Logits [[1, 2, 3], [1, 1, 1]] with classes 2 and 0. */
START_TEST(test_cross_entropy_value_and_gradient) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float logits[] = {1, 2, 3, 1, 1, 1};
  const int64_t classes[] = {2, 0};
  double e = exp(1.0);
  double z = 1 + e + e * e; /* softmax of row 1 is (1, e, e^2) / z */
  double loss1 = log(1 + exp(-1.0) + exp(-2.0)), loss2 = log(3.0);
  double p1[] = {1 / z, e / z, e * e / z}, p2[] = {1 / 3.0, 1 / 3.0, 1 / 3.0};
  /* d/dlogits = softmax - one_hot(target), divided by N = 2 for the mean. */
  double grad_sum[] = {p1[0], p1[1], p1[2] - 1, p2[0] - 1, p2[1], p2[2]};
  double grad_mean[6];
  for (int i = 0; i < 6; i++) grad_mean[i] = grad_sum[i] / 2;
  const ad_reduction reductions[] = {AD_REDUCE_SUM, AD_REDUCE_MEAN};
  const double values[] = {loss1 + loss2, (loss1 + loss2) / 2};
  const double *grads[] = {grad_sum, grad_mean};
  for (int r = 0; r < 2; r++) {
    ad_ctx_reset(ctx);
    ad_tensor *x = ad_from_f32(ctx, 2, (const int64_t[]){2, 3}, logits);
    ad_tensor *t = ad_from_i64(ctx, 1, (const int64_t[]){2}, classes);
    check_loss(nn_cross_entropy_loss, x, t, reductions[r], values[r], grads[r], 1e-6);
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_cross_entropy_stable_for_large_logits) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float logits[] = {1000, 0, -1000};
  const int64_t classes[] = {1};
  ad_tensor *x = ad_from_f32(ctx, 2, (const int64_t[]){1, 3}, logits);
  ad_tensor *t = ad_from_i64(ctx, 1, (const int64_t[]){1}, classes);
  /* log(e^1000 + 1 + e^-1000) - 0 = 1000 to float precision. */
  const double grad[] = {1, -1, 0};
  check_loss(nn_cross_entropy_loss, x, t, AD_REDUCE_SUM, 1000, grad, 1e-6);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_bce_with_logits_value_and_gradient) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float logits[] = {0, 2, -3}, targets[] = {1, 0, 0.5f};
  double l0 = log(2.0), l1 = 2 + log1p(exp(-2.0)), l2 = 1.5 + log1p(exp(-3.0));
  double sig2 = 1 / (1 + exp(-2.0)), sig3 = 1 / (1 + exp(3.0));
  /* d/dx = sigmoid(x) - t. */
  const double grad_sum[] = {-0.5, sig2, sig3 - 0.5};
  const double grad_mean[] = {-0.5 / 3, sig2 / 3, (sig3 - 0.5) / 3};
  check_loss(nn_bce_with_logits_loss, vector(ctx, 3, logits), vector(ctx, 3, targets),
             AD_REDUCE_SUM, l0 + l1 + l2, grad_sum, 1e-6);
  ad_ctx_reset(ctx);
  check_loss(nn_bce_with_logits_loss, vector(ctx, 3, logits), vector(ctx, 3, targets),
             AD_REDUCE_MEAN, (l0 + l1 + l2) / 3, grad_mean, 1e-6);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_loss_argument_errors) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float v[] = {1, 2, 3, 4};
  ad_tensor *a = vector(ctx, 4, v), *b = vector(ctx, 3, v);
  ck_assert_ptr_null(nn_mse_loss(ctx, a, b, AD_REDUCE_MEAN));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_mse_loss"));
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "[4]"));
  ad_clear_error(ctx);

  ck_assert_ptr_null(nn_bce_with_logits_loss(ctx, a, b, AD_REDUCE_SUM));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  ad_clear_error(ctx);

  ck_assert_ptr_null(nn_mse_loss(ctx, a, a, (ad_reduction)7));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);

  ad_tensor *logits = ad_from_f32(ctx, 2, (const int64_t[]){2, 2}, v);
  ck_assert_ptr_null(nn_cross_entropy_loss(ctx, logits, vector(ctx, 2, v), AD_REDUCE_MEAN));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ad_clear_error(ctx);

  const int64_t out_of_range[] = {0, 2};
  ad_tensor *t = ad_from_i64(ctx, 1, (const int64_t[]){2}, out_of_range);
  ck_assert_ptr_null(nn_cross_entropy_loss(ctx, logits, t, AD_REDUCE_MEAN));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_INDEX);
  ad_clear_error(ctx);

  ck_assert_ptr_null(nn_mse_loss(ctx, NULL, a, AD_REDUCE_MEAN));
  ad_ctx_free(ctx);
}
END_TEST

static Suite *losses_suite(void) {
  Suite *s = suite_create("nn_losses");
  TCase *tc = tcase_create("mse");
  tcase_add_test(tc, test_mse_large_values);
  tcase_add_test(tc, test_mse_reductions);
  suite_add_tcase(s, tc);
  tc = tcase_create("cross_entropy");
  tcase_add_test(tc, test_cross_entropy_value_and_gradient);
  tcase_add_test(tc, test_cross_entropy_stable_for_large_logits);
  suite_add_tcase(s, tc);
  tc = tcase_create("bce_with_logits");
  tcase_add_test(tc, test_bce_with_logits_value_and_gradient);
  suite_add_tcase(s, tc);
  tc = tcase_create("errors");
  tcase_add_test(tc, test_loss_argument_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(losses_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
