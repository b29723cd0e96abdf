/*
 * Semantics of the tape: accumulation over fan-out, repeated backward
 * passes, ad_gradients against accumulated gradients, flags, no-grad mode,
 * detection of inputs modified after recording, seeds, and the iterative
 * sweep over a very long tape.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

static double item(const ad_tensor *t) {
  double v = NAN;
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(ad_item(t, &v), AD_OK);
  return v;
}

/* The gradient of scalar y with respect to x by ad_backward, after a
   zero_grad, so that earlier passes do not count. */
static double backward_grad(ad_ctx *ctx, ad_tensor *y, ad_tensor *x) {
  ck_assert_int_eq(ad_zero_grad(x), AD_OK);
  ck_assert_msg(ad_backward(ctx, y, NULL) == AD_OK, "backward failed: %s", ad_errmsg(ctx));
  return item(ad_grad(x));
}

/* ---- Fan-out --------------------------------------------------------- */

START_TEST(test_fan_out_square) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 3));
  ck_assert_double_eq(backward_grad(ctx, ad_mul(ctx, x, x), x), 6);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_fan_out_diamond) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 3));
  /* y = (x + 1)(2x), dy/dx = 2x + 2(x + 1) = 4x + 2 */
  ad_tensor *a = ad_add_scalar(ctx, x, 1), *b = ad_mul_scalar(ctx, x, 2);
  ck_assert_double_eq(backward_grad(ctx, ad_mul(ctx, a, b), x), 14);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_fan_out_three_uses) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 2));
  /* x^3 as (x x) x: 3 x^2 = 12 */
  ck_assert_double_eq(backward_grad(ctx, ad_mul(ctx, ad_mul(ctx, x, x), x), x), 12);
  /* x + x + x: 3 */
  ck_assert_double_eq(backward_grad(ctx, ad_add(ctx, ad_add(ctx, x, x), x), x), 3);
  /* sum(concat(x, x, x)) over 1-d views: 3 */
  ad_tensor *v = ad_reshape(ctx, x, 1, (int64_t[]){1});
  ad_tensor *parts[3] = {v, v, v};
  ck_assert_double_eq(backward_grad(ctx, ad_sum_all(ctx, ad_concat(ctx, 3, parts, 0)), x), 3);
  /* where(mask, x, x) sends the whole gradient to x: 1 */
  ad_tensor *mask = ad_scalar(ctx, AD_F64, 1);
  ck_assert_double_eq(backward_grad(ctx, ad_where(ctx, mask, x, x), x), 1);
  /* matmul(v, v) of 1-d vectors: 2x = 4 */
  ck_assert_double_eq(backward_grad(ctx, ad_matmul(ctx, v, v), x), 4);
  ad_ctx_free(ctx);
}
END_TEST

/* The same sums through ad_gradients on both paths. */
START_TEST(test_fan_out_gradients) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 2));
  ad_tensor *y = ad_mul(ctx, ad_mul(ctx, x, x), x);
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, flags), AD_OK);
    ck_assert_msg(item(g) == 12, "flags %u: gradient %g, expected 12", flags, item(g));
  }
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Repeated passes and accumulated gradients ------------------------ */

START_TEST(test_backward_twice_doubles) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, x, x));
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  const double once[2] = {2, 4}, twice[2] = {4, 8};
  assert_values("after one pass", ad_grad(x), once, 2, 0, 0);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  assert_values("after two passes", ad_grad(x), twice, 2, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_zero_grad_overwrites) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ck_assert_ptr_null(ad_grad(x));
  ck_assert_int_eq(ad_zero_grad(x), AD_OK);
  ck_assert_ptr_null(ad_grad(x));
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, x, x));
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  ck_assert_int_eq(ad_zero_grad(x), AD_OK);
  const double zeros[2] = {0, 0}, once[2] = {2, 4};
  assert_values("after zero_grad", ad_grad(x), zeros, 2, 0, 0);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  assert_values("backward after zero_grad", ad_grad(x), once, 2, 0, 0);
  /* zero_grad without reading the gradient in between. */
  ck_assert_int_eq(ad_zero_grad(x), AD_OK);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  assert_values("zero_grad then backward", ad_grad(x), once, 2, 0, 0);
  ck_assert_int_eq(ad_zero_grad(NULL), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_gradients_leave_grad_untouched) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *unused = variable(ad_scalar(ctx, AD_F64, 5));
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, x, x));
  ad_tensor *z = ad_mul_scalar(ctx, unused, 3); /* recorded, not on y's path */
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  const double once[2] = {2, 4};
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *inputs[3] = {x, unused, z}, *grads[3];
    ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 3, inputs, grads, flags), AD_OK);
    assert_values("gradient of x", grads[0], once, 2, 0, 0);
    const double zero = 0;
    assert_values("gradient of an unused leaf", grads[1], &zero, 1, 0, 0);
    assert_values("gradient of an unused recorded tensor", grads[2], &zero, 1, 0, 0);
    assert_values("accumulated gradient after ad_gradients", ad_grad(x), once, 2, 0, 0);
    ck_assert_ptr_null(ad_grad(unused));
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_gradients_of_intermediate) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 3));
  ad_tensor *h = ad_mul_scalar(ctx, x, 2);
  ad_tensor *y = ad_mul(ctx, h, h);
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *inputs[2] = {h, x}, *grads[2];
    ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 2, inputs, grads, flags), AD_OK);
    ck_assert_double_eq(item(grads[0]), 12); /* 2h */
    ck_assert_double_eq(item(grads[1]), 24); /* 8x */
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_gradients_several_outputs) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *outputs[2] = {ad_mul(ctx, x, x), ad_sum_all(ctx, ad_mul_scalar(ctx, x, 3))};
  ad_tensor *seeds[2] = {tensor_of(ctx, "2", (const double[]){1, 10}), NULL};
  const double expected[2] = {2 * 1 + 3, 10 * 4 + 3};
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 2, outputs, seeds, 1, &x, &g, flags), AD_OK);
    assert_values("gradient of two outputs", g, expected, 2, 0, 0);
  }
  ad_ctx_free(ctx);
}
END_TEST

/* An input that does not require a gradient has no recorded path to the
   outputs, so ad_gradients cannot compute its gradient. */
START_TEST(test_gradients_input_without_flag) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 1);
  ad_tensor *w = variable(ad_scalar(ctx, AD_F64, 2));
  ad_tensor *y = ad_mul(ctx, ad_exp(ctx, x), w);
  ad_tensor *g = w;
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, 0), AD_ERR_GRAPH);
  ck_assert_ptr_null(g);
  assert_error("input without flag", ctx, AD_ERR_GRAPH, "ad_gradients", "input 0",
               "ad_set_requires_grad", NULL);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Flags, detach and no-grad mode ------------------------------------ */

START_TEST(test_requires_grad_flags) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_scalar(ctx, AD_F64, 1), *c = ad_scalar(ctx, AD_F64, 2);
  ck_assert(!ad_requires_grad(x));
  ck_assert(ad_is_leaf(x));
  ck_assert_int_eq(ad_tensor_op(x), -1);
  ck_assert(!ad_requires_grad(ad_mul(ctx, x, c)));
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *y = ad_mul(ctx, x, c);
  ck_assert(ad_requires_grad(y));
  ck_assert(!ad_is_leaf(y));
  ck_assert_str_eq(ad_op_name(ad_tensor_op(y)), "mul");
  ck_assert_int_eq(ad_set_requires_grad(y, false), AD_ERR_GRAPH);
  assert_error("flag on a recorded tensor", ctx, AD_ERR_GRAPH, "ad_set_requires_grad", "mul",
               NULL);
  ad_clear_error(ctx);
  ad_tensor *i = ad_from_i64(ctx, 0, NULL, (const int64_t[]){1});
  ck_assert_int_eq(ad_set_requires_grad(i, true), AD_ERR_DTYPE);
  assert_error("flag on int64", ctx, AD_ERR_DTYPE, "int64", NULL);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_set_requires_grad(i, false), AD_OK);
  ck_assert_int_eq(ad_set_requires_grad(NULL, true), AD_ERR_ARGUMENT);
  /* Masks and signs never require a gradient. */
  ck_assert(!ad_requires_grad(ad_gt(ctx, x, c)));
  ck_assert(!ad_requires_grad(ad_sign(ctx, x)));
  ck_assert(!ad_requires_grad(ad_argmax(ctx, ad_reshape(ctx, x, 1, (int64_t[]){1}), 0, false)));
  ck_assert_int_eq(ad_set_requires_grad(x, false), AD_OK);
  ck_assert(!ad_requires_grad(x));
  ck_assert(!ad_requires_grad(NULL));
  ck_assert(!ad_is_leaf(NULL));
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_detach_blocks_gradient) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 3));
  ad_tensor *d = ad_detach(ctx, x);
  ck_assert(!ad_requires_grad(d));
  ck_assert(ad_is_leaf(d));
  ck_assert_ptr_eq(ad_data_f64(d), ad_data_f64(x));
  /* y = x * detach(x): dy/dx = detach(x) = 3, not 2x. */
  ck_assert_double_eq(backward_grad(ctx, ad_mul(ctx, x, d), x), 3);
  /* The detached tensor of a recorded one is a leaf too. */
  ad_tensor *h = ad_detach(ctx, ad_mul(ctx, x, x));
  ck_assert(ad_is_leaf(h));
  ck_assert(!ad_requires_grad(h));
  ck_assert_double_eq(item(h), 9);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_no_grad_mode) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert(ad_grad_enabled(ctx));
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 3));
  ck_assert(ad_set_grad_enabled(ctx, false));
  ck_assert(!ad_grad_enabled(ctx));
  ad_tensor *y = ad_mul(ctx, x, x);
  ck_assert(!ad_requires_grad(y));
  ck_assert(ad_is_leaf(y));
  ck_assert_double_eq(item(y), 9);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_ERR_GRAPH);
  assert_error("backward from an unrecorded result", ctx, AD_ERR_GRAPH, "ad_backward",
               "does not require a gradient", NULL);
  ad_clear_error(ctx);
  ck_assert(!ad_set_grad_enabled(ctx, true));
  ad_tensor *z = ad_mul(ctx, x, x);
  ck_assert(ad_requires_grad(z));
  ck_assert_double_eq(backward_grad(ctx, z, x), 6);
  ck_assert(!ad_grad_enabled(NULL));
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Modified inputs ----------------------------------------------- */

/* How a test writes to a tensor after it was recorded. */
static void modify(ad_tensor *t, int how) {
  switch (how) {
  case 0: ad_data_f64_mut(t)[0] = 7; break;
  case 1: ck_assert_int_eq(ad_set(t, (int64_t[]){0}, 7), AD_OK); break;
  case 2: ck_assert_int_eq(ad_fill(t, 7), AD_OK); break;
  default: {
    ad_tensor *src = ad_full(ad_tensor_ctx(t), AD_F64, ad_ndim(t), ad_shape(t), 7);
    ck_assert_int_eq(ad_copy_into(t, src), AD_OK);
    break;
  }
  }
}

START_TEST(test_modified_input_detected) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *y = ad_sum_all(ctx, ad_exp(ctx, x));
  modify(x, _i);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_ERR_GRAPH);
  assert_error("modified input", ctx, AD_ERR_GRAPH, "ad_backward", "exp", "[2]", "modified",
               NULL);
  ck_assert_ptr_null(ad_grad(x));
  ad_clear_error(ctx);
  ad_tensor *g = NULL;
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, 0), AD_ERR_GRAPH);
  ck_assert_ptr_null(g);
  ad_ctx_free(ctx);
}
END_TEST

/* Writing through a view changes the storage that a recorded operation
   read through another view. */
START_TEST(test_modified_view_detected) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2,2", (const double[]){1, 2, 3, 4}));
  ad_tensor *flat = ad_reshape(ctx, x, 1, (int64_t[]){4});
  ad_tensor *y = ad_sum_all(ctx, ad_sin(ctx, flat));
  ad_tensor *alias = ad_detach(ctx, x);
  ad_data_f64_mut(alias)[3] = 0;
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_ERR_GRAPH);
  assert_error("modified through a view", ctx, AD_ERR_GRAPH, "modified", NULL);
  ad_ctx_free(ctx);
}
END_TEST

/* An operation's own result read by its backward rule (exp, sqrt, tanh,
   softmax use y), written before a later operation recorded it. */
START_TEST(test_modified_result_detected) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *e = ad_exp(ctx, x);
  modify(e, _i);
  ad_tensor *y = ad_sum_all(ctx, e);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_ERR_GRAPH);
  assert_error("modified result", ctx, AD_ERR_GRAPH, "ad_backward", "exp", "modified", NULL);
  ad_ctx_free(ctx);
}
END_TEST

/* Entries off the path from the output do not matter: a backward pass
   that does not go through an operation works after its input changed. */
START_TEST(test_modification_off_path_ignored) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2", (const double[]){1, 2}));
  ad_tensor *old = ad_sum_all(ctx, ad_exp(ctx, x));
  ck_assert_ptr_nonnull(old);
  ad_data_f64_mut(x)[0] = 0;
  ad_tensor *y = ad_sum_all(ctx, ad_sin(ctx, x));
  ck_assert_msg(ad_backward(ctx, y, NULL) == AD_OK, "backward failed: %s", ad_errmsg(ctx));
  const double expected[2] = {1, cos(2)};
  assert_values("gradient after an off-path change", ad_grad(x), expected, 2, 1e-15, 0);
  ad_tensor *g = NULL;
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, AD_CREATE_GRAPH), AD_OK);
  assert_values("graph gradient after an off-path change", g, expected, 2, 1e-15, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Outputs and seeds --------------------------------------------- */

START_TEST(test_non_scalar_without_seed) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2,3", (const double[]){1, 2, 3, 4, 5, 6}));
  ad_tensor *y = ad_mul(ctx, x, x);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_ERR_GRAPH);
  assert_error("backward without seed", ctx, AD_ERR_GRAPH, "ad_backward", "[2, 3]",
               "ad_sum_all", NULL);
  ck_assert_ptr_null(ad_grad(x));
  ad_clear_error(ctx);
  ad_tensor *g = NULL;
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, 0), AD_ERR_GRAPH);
  assert_error("gradients without seed", ctx, AD_ERR_GRAPH, "ad_gradients", "[2, 3]", NULL);
  /* One element of any shape needs no seed. */
  ad_clear_error(ctx);
  ad_tensor *one = ad_sum(ctx, y, 0, NULL, true);
  ck_assert_int_eq(ad_ndim(one), 2);
  ck_assert_int_eq(ad_backward(ctx, one, NULL), AD_OK);
  const double expected[6] = {2, 4, 6, 8, 10, 12};
  assert_values("gradient from a [1, 1] output", ad_grad(x), expected, 6, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_seed_mismatch) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(tensor_of(ctx, "2,3", (const double[]){1, 2, 3, 4, 5, 6}));
  ad_tensor *y = ad_mul(ctx, x, x);
  ad_tensor *wrong_shape = ad_ones(ctx, AD_F64, 1, (int64_t[]){6});
  ck_assert_int_eq(ad_backward(ctx, y, wrong_shape), AD_ERR_SHAPE);
  assert_error("seed of another shape", ctx, AD_ERR_SHAPE, "ad_backward", "[6]", "[2, 3]", NULL);
  ad_clear_error(ctx);
  ad_tensor *wrong_dtype = ad_ones(ctx, AD_F32, 2, (int64_t[]){2, 3});
  ck_assert_int_eq(ad_backward(ctx, y, wrong_dtype), AD_ERR_DTYPE);
  assert_error("seed of another dtype", ctx, AD_ERR_DTYPE, "ad_backward", "float32", "float64",
               NULL);
  ad_clear_error(ctx);
  ad_tensor *g = NULL;
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, &wrong_dtype, 1, &x, &g, AD_CREATE_GRAPH),
                   AD_ERR_DTYPE);
  ck_assert_ptr_null(ad_grad(x));
  /* A matching seed weights the gradient: d <seed, x^2> / dx = 2 seed x. */
  ad_clear_error(ctx);
  ad_tensor *seed = ad_full(ctx, AD_F64, 2, (int64_t[]){2, 3}, 0.5);
  ck_assert_int_eq(ad_backward(ctx, y, seed), AD_OK);
  const double expected[6] = {1, 2, 3, 4, 5, 6};
  assert_values("seeded gradient", ad_grad(x), expected, 6, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_leaf_as_output) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 4));
  ck_assert_int_eq(ad_backward(ctx, x, NULL), AD_OK);
  ck_assert_double_eq(item(ad_grad(x)), 1);
  ad_tensor *v = variable(tensor_of(ctx, "3", (const double[]){1, 2, 3}));
  ad_tensor *seed = tensor_of(ctx, "3", (const double[]){4, 5, 6});
  ck_assert_int_eq(ad_backward(ctx, v, seed), AD_OK);
  assert_values("leaf output with seed", ad_grad(v), (const double[]){4, 5, 6}, 3, 0, 0);
  for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
    ad_tensor *g = NULL;
    ck_assert_int_eq(ad_gradients(ctx, 1, &x, NULL, 1, &x, &g, flags), AD_OK);
    ck_assert_double_eq(item(g), 1);
    ck_assert_int_eq(ad_gradients(ctx, 1, &v, &seed, 1, &v, &g, flags), AD_OK);
    assert_values("leaf gradients with seed", g, (const double[]){4, 5, 6}, 3, 0, 0);
  }
  /* A leaf without the flag is no output. */
  ad_tensor *c = ad_scalar(ctx, AD_F64, 1);
  ck_assert_int_eq(ad_backward(ctx, c, NULL), AD_ERR_GRAPH);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Long tapes ----------------------------------------------------- */

/* 10 million alternating mul_scalar(y, 1 + 1e-7) and add_scalar(y, 1e-3):
   dy/dx = (1 + 1e-7)^(5e6). A recursive sweep would overflow the stack. */
START_TEST(test_long_chain) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = variable(ad_scalar(ctx, AD_F64, 0.5));
  const long ops = 10000000;
  const double factor = 1 + 1e-7;
  ad_tensor *y = x;
  for (long i = 0; i < ops / 2 && y; i++)
    y = ad_add_scalar(ctx, ad_mul_scalar(ctx, y, factor), 1e-3);
  ck_assert_msg(y != NULL, "building the chain failed: %s", ad_errmsg(ctx));
  ck_assert_msg(ad_backward(ctx, y, NULL) == AD_OK, "backward failed: %s", ad_errmsg(ctx));
  double expected = exp((double)(ops / 2) * log1p(1e-7));
  double got = item(ad_grad(x));
  ck_assert_msg(fabs(got - expected) <= 1e-8 * expected, "gradient %.17g, expected %.17g", got,
                expected);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *tape_suite(void) {
  Suite *s = suite_create("tape");
  TCase *tc = tcase_create("fan_out");
  tcase_add_test(tc, test_fan_out_square);
  tcase_add_test(tc, test_fan_out_diamond);
  tcase_add_test(tc, test_fan_out_three_uses);
  tcase_add_test(tc, test_fan_out_gradients);
  suite_add_tcase(s, tc);

  tc = tcase_create("accumulation");
  tcase_add_test(tc, test_backward_twice_doubles);
  tcase_add_test(tc, test_zero_grad_overwrites);
  tcase_add_test(tc, test_gradients_leave_grad_untouched);
  tcase_add_test(tc, test_gradients_of_intermediate);
  tcase_add_test(tc, test_gradients_several_outputs);
  tcase_add_test(tc, test_gradients_input_without_flag);
  suite_add_tcase(s, tc);

  tc = tcase_create("flags");
  tcase_add_test(tc, test_requires_grad_flags);
  tcase_add_test(tc, test_detach_blocks_gradient);
  tcase_add_test(tc, test_no_grad_mode);
  suite_add_tcase(s, tc);

  tc = tcase_create("modified_inputs");
  tcase_add_loop_test(tc, test_modified_input_detected, 0, 4);
  tcase_add_test(tc, test_modified_view_detected);
  tcase_add_loop_test(tc, test_modified_result_detected, 0, 4);
  tcase_add_test(tc, test_modification_off_path_ignored);
  suite_add_tcase(s, tc);

  tc = tcase_create("outputs_and_seeds");
  tcase_add_test(tc, test_non_scalar_without_seed);
  tcase_add_test(tc, test_seed_mismatch);
  tcase_add_test(tc, test_leaf_as_output);
  suite_add_tcase(s, tc);

  tc = tcase_create("long_tape");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_long_chain);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(tape_suite()); }
