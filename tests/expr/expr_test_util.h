/* Helpers shared by the expression suites. */
#ifndef EXPR_TEST_UTIL_H
#define EXPR_TEST_UTIL_H

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"

/* True when got equals expected to a relative tolerance, with NaN equal to
   NaN, infinities equal to themselves and exact zeros compared absolutely. */
static inline bool close_to(double got, double expected, double rtol) {
  if (isnan(expected)) return isnan(got);
  if (isinf(expected)) return got == expected;
  if (expected == 0) return fabs(got) <= rtol;
  return fabs(got - expected) <= rtol * fabs(expected);
}

/* Evaluates text at a scalar point given by name-value pairs, in float64,
   binding only the names that the text uses. Returns the value and stores
   the gradient in the order of names, 0 for a name the text does not use.
   The context is reset first. */
static inline double eval_at(ad_ctx *ctx, const char *text, int count, const char *const *names,
                             const double *values, double *gradient) {
  enum { MAX_NAMES = 16 };
  ad_ctx_reset(ctx);
  ck_assert_int_le(count, MAX_NAMES);
  ad_expr *e = ad_expr_parse(ctx, text, NULL);
  ck_assert_msg(e != NULL, "%s: %s", text, ad_errmsg(ctx));
  ad_tensor *leaves[MAX_NAMES];
  ad_expr_binding bindings[MAX_NAMES];
  int used[MAX_NAMES];
  int bound = 0;
  for (int i = 0; i < count; i++) {
    if (ad_expr_var_index(e, names[i]) < 0) continue;
    leaves[bound] = ad_scalar(ctx, AD_F64, values[i]);
    ck_assert_ptr_nonnull(leaves[bound]);
    ck_assert_int_eq(ad_set_requires_grad(leaves[bound], true), AD_OK);
    bindings[bound] = ad_expr_tensor(names[i], leaves[bound]);
    used[bound++] = i;
  }
  ad_tensor *y = ad_expr_eval_named(ctx, e, bound, bindings);
  ck_assert_msg(y != NULL, "%s: %s", text, ad_errmsg(ctx));
  ad_expr_free(e);
  double value;
  ck_assert_int_eq(ad_item(y, &value), AD_OK);
  if (!gradient) return value;
  for (int i = 0; i < count; i++) gradient[i] = 0;
  if (bound == 0 || !ad_requires_grad(y)) return value;
  ad_tensor *grads[MAX_NAMES];
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, bound, leaves, grads, 0), AD_OK);
  for (int k = 0; k < bound; k++) ck_assert_int_eq(ad_item(grads[k], &gradient[used[k]]), AD_OK);
  return value;
}

/* Runs a suite and returns the process exit status. */
static inline int run_suite(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif /* EXPR_TEST_UTIL_H */
