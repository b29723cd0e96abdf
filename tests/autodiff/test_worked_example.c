/* The worked example everyone learns first: d/dx (x^2 + 1)^3 = 6x(x^2 + 1)^2. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "autodiff.h"

static ad_tensor *cube_of_square_plus_one(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  ad_tensor *x = in[0];
  return ad_pow_scalar(ctx, ad_add_scalar(ctx, ad_mul(ctx, x, x), 1), 3);
}

START_TEST(test_first_derivative) {
  const double xs[] = {-2, 0, 0.5, 3};
  double x0 = xs[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  ad_tensor *x = ad_scalar(ctx, AD_F64, x0);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *y = cube_of_square_plus_one(ctx, &x, NULL);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  double g;
  ck_assert_int_eq(ad_item(ad_grad(x), &g), AD_OK);
  double u = x0 * x0 + 1;
  ck_assert_double_eq_tol(g, 6 * x0 * u * u, 1e-12 * fmax(1, fabs(g)));
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_second_derivative) {
  const double xs[] = {-2, 0, 0.5, 3};
  double x0 = xs[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, x0);
  ad_tensor *h = ad_hessian(ctx, cube_of_square_plus_one, NULL, x);
  ck_assert_ptr_nonnull(h);
  double v;
  ck_assert_int_eq(ad_item(h, &v), AD_OK);
  double u = x0 * x0 + 1;
  double expected = 6 * u * u + 24 * x0 * x0 * u;
  ck_assert_double_eq_tol(v, expected, 1e-12 * fmax(1, fabs(expected)));
  ad_ctx_free(ctx);
}
END_TEST

static Suite *smoke_suite(void) {
  Suite *s = suite_create("smoke");
  TCase *tc = tcase_create("worked_example");
  tcase_add_loop_test(tc, test_first_derivative, 0, 4);
  tcase_add_loop_test(tc, test_second_derivative, 0, 4);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(smoke_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
