/*
 * Tensor basics: creation functions, arange and linspace, element access,
 * copies and casts, the text form, and 8-d, 0-d and empty tensors through
 * the operations.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adtest.h"

static ad_ctx *new_ctx(void) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  return ctx;
}

/* Asserts that t is a fresh leaf of dtype and shape holding value everywhere. */
static void assert_filled(const char *label, const ad_tensor *t, ad_dtype dtype, const char *shape,
                          double value) {
  assert_shape(label, t, shape);
  ck_assert_msg(ad_tensor_dtype(t) == dtype, "%s: dtype %s", label,
                ad_dtype_name(ad_tensor_dtype(t)));
  ck_assert_msg(ad_is_leaf(t) && !ad_requires_grad(t) && !ad_is_persistent(t),
                "%s: not a plain arena leaf", label);
  for (int64_t i = 0; i < ad_numel(t); i++)
    ck_assert_msg(flat_get(t, i) == value, "%s: element %lld is %g, expected %g", label,
                  (long long)i, flat_get(t, i), value);
}

/* ---- Creation ------------------------------------------------------------ */

START_TEST(test_creation_functions) {
  const ad_dtype dtypes[3] = {AD_F32, AD_F64, AD_I64};
  ad_dtype dtype = dtypes[_i];
  ad_ctx *ctx = new_ctx();
  int64_t shape[3] = {2, 0, 3};
  assert_filled("zeros", ad_zeros(ctx, dtype, 2, (int64_t[]){2, 3}), dtype, "2,3", 0);
  assert_filled("ones", ad_ones(ctx, dtype, 1, (int64_t[]){4}), dtype, "4", 1);
  assert_filled("full", ad_full(ctx, dtype, 3, (int64_t[]){1, 2, 2}, -3), dtype, "1,2,2", -3);
  assert_filled("scalar", ad_scalar(ctx, dtype, 7), dtype, "", 7);
  assert_filled("empty zeros", ad_zeros(ctx, dtype, 3, shape), dtype, "2,0,3", 0);
  assert_filled("0-d ones", ad_ones(ctx, dtype, 0, NULL), dtype, "", 1);
  ck_assert_int_eq(ad_numel(ad_zeros(ctx, dtype, 0, NULL)), 1);
  ck_assert_int_eq(ad_numel(ad_zeros(ctx, dtype, 3, shape)), 0);
  ck_assert_ptr_eq(ad_tensor_ctx(ad_ones(ctx, dtype, 0, NULL)), ctx);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_from_data) {
  ad_ctx *ctx = new_ctx();
  const float f[3] = {1.5f, -2, 3};
  const double d[4] = {0.1, 0.2, 0.3, 0.4};
  const int64_t i[2] = {-5, INT64_MAX};
  ad_tensor *a = ad_from_f32(ctx, 1, (int64_t[]){3}, f);
  ad_tensor *b = ad_from_f64(ctx, 2, (int64_t[]){2, 2}, d);
  ad_tensor *c = ad_from_i64(ctx, 1, (int64_t[]){2}, i);
  ck_assert_int_eq(ad_tensor_dtype(a), AD_F32);
  ck_assert_int_eq(ad_tensor_dtype(b), AD_F64);
  ck_assert_int_eq(ad_tensor_dtype(c), AD_I64);
  ck_assert_mem_eq(ad_data_f32(a), f, sizeof f);
  ck_assert_mem_eq(ad_data_f64(b), d, sizeof d);
  ck_assert_mem_eq(ad_data_i64(c), i, sizeof i);
  /* The data is copied, not referenced. */
  ck_assert_ptr_ne(ad_data_f64(b), d);
  /* No elements need no data. */
  ad_tensor *e = ad_from_f64(ctx, 1, (int64_t[]){0}, NULL);
  assert_shape("empty from NULL", e, "0");
  ck_assert_int_eq(ad_ndim(b), 2);
  ck_assert_int_eq(ad_shape(b)[1], 2);
  ck_assert_int_eq(ad_dim(b, -1), 2);
  ck_assert_int_eq(ad_dim(b, 0), 2);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_arange) {
  ad_ctx *ctx = new_ctx();
  assert_values("arange(0, 5, 1)", ad_arange(ctx, AD_F64, 0, 5, 1),
                (const double[]){0, 1, 2, 3, 4}, 5, 0, 0);
  /* NumPy's count ceil((stop - start) / step) with rounding: arange(1, 1.3,
     0.1) has 4 elements because 0.3 / 0.1 rounds above 3. */
  ck_assert_int_eq(ad_numel(ad_arange(ctx, AD_F64, 0, 1, 0.1)), 10);
  ck_assert_int_eq(ad_numel(ad_arange(ctx, AD_F64, 1, 1.3, 0.1)), 4);
  assert_values("arange(5, 0, -1)", ad_arange(ctx, AD_F64, 5, 0, -1),
                (const double[]){5, 4, 3, 2, 1}, 5, 0, 0);
  assert_values("arange(0, 1, 2)", ad_arange(ctx, AD_F64, 0, 1, 2), (const double[]){0}, 1, 0, 0);
  assert_shape("arange(0, 5, -1)", ad_arange(ctx, AD_F64, 0, 5, -1), "0");
  assert_shape("arange(2, 2, 1)", ad_arange(ctx, AD_F64, 2, 2, 1), "0");
  assert_values("arange int64", ad_arange(ctx, AD_I64, -2, 3, 2), (const double[]){-2, 0, 2}, 3,
                0, 0);
  ad_tensor *f = ad_arange(ctx, AD_F32, 0, 0.5, 0.125);
  assert_values("arange float32", f, (const double[]){0, 0.125, 0.25, 0.375}, 4, 0, 0);
  ck_assert_ptr_null(ad_arange(ctx, AD_F64, 0, INFINITY, 1));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);
  ck_assert_ptr_null(ad_arange(ctx, AD_F64, 0, 1e300, 1e-10));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_MEMORY);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_linspace) {
  ad_ctx *ctx = new_ctx();
  assert_values("linspace(0, 1, 5)", ad_linspace(ctx, AD_F64, 0, 1, 5),
                (const double[]){0, 0.25, 0.5, 0.75, 1}, 5, 0, 0);
  assert_values("linspace(1, 0, 3)", ad_linspace(ctx, AD_F64, 1, 0, 3),
                (const double[]){1, 0.5, 0}, 3, 0, 0);
  assert_values("one point", ad_linspace(ctx, AD_F64, 2, 9, 1), (const double[]){2}, 1, 0, 0);
  assert_shape("no points", ad_linspace(ctx, AD_F64, 2, 9, 0), "0");
  /* The last point is stop exactly, whatever the rounding of the step. */
  ad_tensor *t = ad_linspace(ctx, AD_F64, 0, 0.3, 7);
  ck_assert_double_eq(ad_data_f64(t)[6], 0.3);
  ck_assert_double_eq(ad_data_f64(t)[0], 0);
  assert_values("linspace int64", ad_linspace(ctx, AD_I64, 0, 4, 3), (const double[]){0, 2, 4}, 3,
                0, 0);
  ad_tensor *f = ad_linspace(ctx, AD_F32, -1, 1, 3);
  assert_values("linspace float32", f, (const double[]){-1, 0, 1}, 3, 0, 0);
  ck_assert_ptr_null(ad_linspace(ctx, AD_F64, NAN, 1, 3));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Element access -------------------------------------------------- */

START_TEST(test_get_set_item) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *t = ad_zeros(ctx, AD_F64, 2, (int64_t[]){2, 3});
  ck_assert_int_eq(ad_set(t, (int64_t[]){1, 2}, 5.5), AD_OK);
  ck_assert_int_eq(ad_set(t, (int64_t[]){-2, -3}, -1), AD_OK);
  double v = 0;
  ck_assert_int_eq(ad_get(t, (int64_t[]){-1, -1}, &v), AD_OK);
  ck_assert_double_eq(v, 5.5);
  ck_assert_int_eq(ad_get(t, (int64_t[]){0, 0}, &v), AD_OK);
  ck_assert_double_eq(v, -1);
  ck_assert_double_eq(ad_data_f64(t)[5], 5.5);
  ck_assert_int_eq(ad_get(t, (int64_t[]){2, 0}, &v), AD_ERR_INDEX);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_set(t, (int64_t[]){0, -4}, 1), AD_ERR_INDEX);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_get(t, NULL, &v), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_get(t, (int64_t[]){0, 0}, NULL), AD_ERR_ARGUMENT);
  ad_clear_error(ctx);

  ad_tensor *i = ad_zeros(ctx, AD_I64, 1, (int64_t[]){2});
  ck_assert_int_eq(ad_set(i, (int64_t[]){1}, 9007199254740992.0), AD_OK);
  ck_assert_int_eq(ad_data_i64(i)[1], 9007199254740992LL);
  ck_assert_int_eq(ad_set(i, (int64_t[]){0}, 0.5), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_data_i64(i)[0], 0);
  ad_clear_error(ctx);

  ad_tensor *f = ad_zeros(ctx, AD_F32, 1, (int64_t[]){1});
  ck_assert_int_eq(ad_set(f, (int64_t[]){0}, 0.1), AD_OK);
  ck_assert_int_eq(ad_item(f, &v), AD_OK);
  ck_assert_double_eq(v, (double)0.1f);
  ck_assert_int_eq(ad_item(ad_scalar(ctx, AD_F64, 4), &v), AD_OK);
  ck_assert_double_eq(v, 4);
  ck_assert_int_eq(ad_item(ad_ones(ctx, AD_I64, 2, (int64_t[]){1, 1}), &v), AD_OK);
  ck_assert_double_eq(v, 1);
  ck_assert_int_eq(ad_item(ad_zeros(ctx, AD_F64, 1, (int64_t[]){0}), &v), AD_ERR_SHAPE);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_fill_and_mut) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *t = ad_zeros(ctx, AD_F32, 1, (int64_t[]){3});
  ck_assert_int_eq(ad_fill(t, 2.5), AD_OK);
  assert_values("fill", t, (const double[]){2.5, 2.5, 2.5}, 3, 0, 0);
  float *p = ad_data_f32_mut(t);
  p[1] = -1;
  assert_values("write through _mut", t, (const double[]){2.5, -1, 2.5}, 3, 0, 0);
  ck_assert_ptr_null(ad_data_f64_mut(t));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ad_clear_error(ctx);
  ad_tensor *i = ad_zeros(ctx, AD_I64, 1, (int64_t[]){2});
  ck_assert_int_eq(ad_fill(i, 3), AD_OK);
  ck_assert_int_eq(ad_data_i64_mut(i)[1], 3);
  ck_assert_int_eq(ad_fill(i, INFINITY), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Copies and casts -------------------------------------------------- */

START_TEST(test_copy_into) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *src = tensor_of(ctx, "2,2", (const double[]){1.5, -2.5, 3.25, 4});
  ad_tensor *same = ad_zeros(ctx, AD_F64, 2, (int64_t[]){2, 2});
  ck_assert_int_eq(ad_copy_into(same, src), AD_OK);
  assert_values("float64 copy", same, (const double[]){1.5, -2.5, 3.25, 4}, 4, 0, 0);
  ad_tensor *f = ad_zeros(ctx, AD_F32, 2, (int64_t[]){2, 2});
  ck_assert_int_eq(ad_copy_into(f, src), AD_OK);
  assert_values("float32 copy", f, (const double[]){1.5, -2.5, 3.25, 4}, 4, 0, 0);
  ad_tensor *i = ad_zeros(ctx, AD_I64, 2, (int64_t[]){2, 2});
  ck_assert_int_eq(ad_copy_into(i, src), AD_OK);
  assert_values("int64 copy truncates", i, (const double[]){1, -2, 3, 4}, 4, 0, 0);
  ck_assert_int_eq(ad_copy_into(same, same), AD_OK);

  /* A value int64 cannot hold fails the copy and leaves dst unchanged. */
  ad_tensor *bad = tensor_of(ctx, "2,2", (const double[]){8, NAN, 1e30, 2});
  ck_assert_int_eq(ad_copy_into(i, bad), AD_ERR_ARGUMENT);
  assert_error("copy of NaN into int64", ctx, AD_ERR_ARGUMENT, "ad_copy_into", NULL);
  assert_values("dst after a failed copy", i, (const double[]){1, -2, 3, 4}, 4, 0, 0);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_copy_into(NULL, src), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_copy_into(same, NULL), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_cast) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *x = variable(tensor_of(ctx, "5", (const double[]){-2.7, -0.5, 0, 0.5, 3.9}));
  ad_tensor *i = ad_cast(ctx, x, AD_I64);
  ck_assert_int_eq(ad_tensor_dtype(i), AD_I64);
  assert_values("to int64 toward zero", i, (const double[]){-2, 0, 0, 0, 3}, 5, 0, 0);
  ck_assert(!ad_requires_grad(i));
  ad_tensor *back = ad_cast(ctx, i, AD_F32);
  assert_values("int64 to float32", back, (const double[]){-2, 0, 0, 0, 3}, 5, 0, 0);
  ck_assert(!ad_requires_grad(back));
  ad_tensor *f = ad_cast(ctx, x, AD_F32);
  ck_assert(ad_requires_grad(f));
  ck_assert_str_eq(ad_op_name(ad_tensor_op(f)), "cast");
  ck_assert_float_eq(ad_data_f32(f)[0], -2.7f);
  ad_tensor *g = NULL;
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, f, f));
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, NULL, 1, &x, &g, 0), AD_OK);
  ck_assert_int_eq(ad_tensor_dtype(g), AD_F64);
  ck_assert_double_eq_tol(ad_data_f64(g)[4], 2 * 3.9, 1e-6);
  /* Same dtype: a recorded copy. */
  ad_tensor *c = ad_cast(ctx, x, AD_F64);
  ck_assert_ptr_ne(ad_data_f64(c), ad_data_f64(x));
  ck_assert(ad_requires_grad(c));
  ck_assert_ptr_null(ad_cast(ctx, tensor_of(ctx, "1", (const double[]){1e19}), AD_I64));
  assert_error("1e19 to int64", ctx, AD_ERR_ARGUMENT, "ad_cast", "1e+19", NULL);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Text ------------------------------------------------------------ */

/* Asserts that ad_format and ad_print both give expected. */
static void assert_text(const char *label, const ad_tensor *t, const char *expected) {
  char buffer[8192];
  int64_t n = ad_format(t, buffer, sizeof buffer);
  ck_assert_msg(n == (int64_t)strlen(expected), "%s: length %lld, expected %zu:\n%s", label,
                (long long)n, strlen(expected), buffer);
  ck_assert_msg(strcmp(buffer, expected) == 0, "%s: got\n%s\nexpected\n%s", label, buffer,
                expected);
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(ad_print(t, f), AD_OK);
  rewind(f);
  size_t read = fread(buffer, 1, sizeof buffer - 1, f);
  buffer[read] = '\0';
  fclose(f);
  ck_assert_msg(strcmp(buffer, expected) == 0, "%s: ad_print wrote\n%s", label, buffer);
}

START_TEST(test_text_form) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *a = ad_reshape(ctx, ad_arange(ctx, AD_F32, 0, 6, 1), 2, (int64_t[]){2, 3});
  assert_text("float32 matrix", a,
              "tensor(shape=[2, 3], dtype=float32)\n"
              "[[0, 1, 2],\n"
              " [3, 4, 5]]\n");
  ck_assert_int_eq(ad_set_requires_grad(a, true), AD_OK);
  assert_text("recorded", ad_mul_scalar(ctx, a, 0.5),
              "tensor(shape=[2, 3], dtype=float32, requires_grad, op=mul_scalar)\n"
              "[[0, 0.5, 1],\n"
              " [1.5, 2, 2.5]]\n");
  assert_text("0-d", ad_scalar(ctx, AD_F64, 3.25), "tensor(shape=[], dtype=float64)\n3.25\n");
  assert_text("empty", ad_zeros(ctx, AD_I64, 2, (int64_t[]){0, 3}),
              "tensor(shape=[0, 3], dtype=int64)\n[]\n");
  assert_text("3-d", ad_reshape(ctx, ad_arange(ctx, AD_F64, 0, 4, 1), 3, (int64_t[]){2, 1, 2}),
              "tensor(shape=[2, 1, 2], dtype=float64)\n"
              "[[[0, 1]],\n"
              " [[2, 3]]]\n");
  assert_text("special values",
              tensor_of(ctx, "5", (const double[]){1.0 / 3, -1e-20, INFINITY, -INFINITY, NAN}),
              "tensor(shape=[5], dtype=float64)\n"
              "[0.3333333333, -1e-20, inf, -inf, nan]\n");
  /* NaN prints as nan whatever its sign bit. */
  assert_text("negative NaN", tensor_of(ctx, "1", (const double[]){-NAN}),
              "tensor(shape=[1], dtype=float64)\n[nan]\n");
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_text_abbreviation) {
  ad_ctx *ctx = new_ctx();
  assert_text("1001 elements", ad_arange(ctx, AD_I64, 0, 1001, 1),
              "tensor(shape=[1001], dtype=int64)\n[0, 1, 2, ..., 998, 999, 1000]\n");
  ad_tensor *m = ad_reshape(ctx, ad_arange(ctx, AD_F64, 0, 1200, 1), 3, (int64_t[]){2, 20, 30});
  assert_text("2 x 20 x 30", m,
              "tensor(shape=[2, 20, 30], dtype=float64)\n"
              "[[[0, 1, 2, ..., 27, 28, 29],\n"
              "  [30, 31, 32, ..., 57, 58, 59],\n"
              "  [60, 61, 62, ..., 87, 88, 89],\n"
              "  ...,\n"
              "  [510, 511, 512, ..., 537, 538, 539],\n"
              "  [540, 541, 542, ..., 567, 568, 569],\n"
              "  [570, 571, 572, ..., 597, 598, 599]],\n"
              " [[600, 601, 602, ..., 627, 628, 629],\n"
              "  [630, 631, 632, ..., 657, 658, 659],\n"
              "  [660, 661, 662, ..., 687, 688, 689],\n"
              "  ...,\n"
              "  [1110, 1111, 1112, ..., 1137, 1138, 1139],\n"
              "  [1140, 1141, 1142, ..., 1167, 1168, 1169],\n"
              "  [1170, 1171, 1172, ..., 1197, 1198, 1199]]]\n");
  /* Exactly 1000 elements print in full. */
  char *buffer = malloc(20000);
  ck_assert_ptr_nonnull(buffer);
  int64_t n = ad_format(ad_arange(ctx, AD_I64, 0, 1000, 1), buffer, 20000);
  ck_assert_int_gt(n, 0);
  ck_assert_ptr_null(strstr(buffer, "..."));
  ck_assert_ptr_nonnull(strstr(buffer, ", 500, "));
  free(buffer);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_format_truncation) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *t = ad_arange(ctx, AD_F64, 0, 3, 1);
  const char *full = "tensor(shape=[3], dtype=float64)\n[0, 1, 2]\n";
  int64_t len = (int64_t)strlen(full);
  ck_assert_int_eq(ad_format(t, NULL, 0), len);
  char small[10];
  memset(small, 'x', sizeof small);
  ck_assert_int_eq(ad_format(t, small, sizeof small), len);
  ck_assert_str_eq(small, "tensor(sh");
  char one[1] = {'x'};
  ck_assert_int_eq(ad_format(t, one, 1), len);
  ck_assert_int_eq(one[0], '\0');
  ck_assert_int_eq(ad_format(t, NULL, 5), -1);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- 8-d, 0-d and empty tensors --------------------------------------- */

START_TEST(test_eight_dims) {
  ad_ctx *ctx = new_ctx();
  int64_t shape[8] = {1, 2, 1, 2, 1, 2, 1, 2};
  ad_tensor *x = variable(ad_clone(ctx, ad_reshape(ctx, ad_arange(ctx, AD_F64, 0, 16, 1), 8,
                                                   shape)));
  ck_assert_int_eq(ad_ndim(x), 8);
  const int perm[8] = {7, 6, 5, 4, 3, 2, 1, 0};
  ad_tensor *p = ad_permute(ctx, x, perm);
  assert_shape("reversed axes", p, "2,1,2,1,2,1,2,1");
  /* p[1, 0, 0, 0, 1, 0, 0, 0] is x[0, 0, 0, 1, 0, 0, 0, 1], flat index 4 + 1. */
  double v;
  ck_assert_int_eq(ad_get(p, (int64_t[]){1, 0, 0, 0, 1, 0, 0, 0}, &v), AD_OK);
  ck_assert_double_eq(v, 5);
  ad_tensor *s = ad_sum(ctx, ad_mul(ctx, p, p), 2, (const int[]){0, -2}, true);
  assert_shape("8-d reduction", s, "1,1,2,1,2,1,1,1");
  ad_tensor *y = ad_sum_all(ctx, s);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  for (int64_t i = 0; i < 16; i++) ck_assert_double_eq(flat_get(ad_grad(x), i), 2.0 * (double)i);
  ck_assert_ptr_null(ad_unsqueeze(ctx, x, 0));
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_zero_dims_everywhere) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *a = variable(ad_scalar(ctx, AD_F64, 3)), *b = variable(ad_scalar(ctx, AD_F64, 4));
  ad_tensor *h = ad_hypot(ctx, a, b);
  assert_shape("0-d hypot", h, "");
  assert_values("0-d hypot", h, (const double[]){5}, 1, 0, 0);
  assert_shape("0-d sum", ad_sum_all(ctx, h), "");
  assert_shape("0-d mean", ad_mean(ctx, h, 0, NULL, true), "");
  assert_shape("0-d reshape", ad_reshape(ctx, h, 1, (int64_t[]){1}), "1");
  assert_shape("0-d unsqueeze", ad_unsqueeze(ctx, h, 0), "1");
  assert_shape("0-d expand", ad_expand(ctx, h, 2, (int64_t[]){2, 3}), "2,3");
  assert_shape("0-d with matrix", ad_mul(ctx, h, ad_ones(ctx, AD_F64, 1, (int64_t[]){4})), "4");
  assert_shape("0-d where", ad_where(ctx, ad_gt(ctx, a, b), a, b), "");
  assert_shape("0-d clone", ad_clone(ctx, h), "");
  ad_tensor *stacked = ad_stack(ctx, 2, (ad_tensor *[]){a, b}, 0);
  assert_values("stack of 0-d", stacked, (const double[]){3, 4}, 2, 0, 0);
  ad_tensor *y = ad_mul(ctx, h, ad_sum_all(ctx, stacked));
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  /* y = hypot(a, b) (a + b): dy/da = a / h (a + b) + h. */
  assert_values("0-d gradient", ad_grad(a), (const double[]){3.0 / 5 * 7 + 5}, 1, 1e-15, 1e-15);
  assert_values("0-d gradient", ad_grad(b), (const double[]){4.0 / 5 * 7 + 5}, 1, 1e-15, 1e-15);
  ck_assert_ptr_null(ad_sum(ctx, a, 1, (const int[]){0}, false));
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_empty_tensors) {
  ad_ctx *ctx = new_ctx();
  ad_tensor *e = variable(ad_zeros(ctx, AD_F64, 3, (int64_t[]){2, 0, 3}));
  assert_shape("empty exp", ad_exp(ctx, e), "2,0,3");
  assert_shape("empty broadcast", ad_add(ctx, e, ad_ones(ctx, AD_F64, 1, (int64_t[]){3})),
               "2,0,3");
  ad_tensor *s = ad_sum(ctx, e, 1, (const int[]){1}, false);
  assert_values("sum over an empty axis", s, (const double[]){0, 0, 0, 0, 0, 0}, 6, 0, 0);
  ad_tensor *m = ad_mean(ctx, e, 0, NULL, false);
  ck_assert(isnan(flat_get(m, 0)));
  assert_shape("empty keepdim", ad_sum(ctx, e, 1, (const int[]){0}, true), "1,0,3");
  assert_shape("empty transpose", ad_transpose(ctx, e, 0, 2), "3,0,2");
  assert_shape("empty slice", ad_slice(ctx, e, 2, 1, 3, 1), "2,0,2");
  ad_tensor *parts[2] = {e, ad_ones(ctx, AD_F64, 3, (int64_t[]){2, 1, 3})};
  ad_tensor *c = ad_concat(ctx, 2, parts, 1);
  assert_shape("concat with an empty part", c, "2,1,3");
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, c, c));
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  assert_shape("gradient of an empty leaf", ad_grad(e), "2,0,3");
  ad_tensor *v = variable(ad_zeros(ctx, AD_F64, 1, (int64_t[]){0}));
  ad_tensor *dot = ad_dot(ctx, v, v);
  assert_values("empty dot", dot, (const double[]){0}, 1, 0, 0);
  ck_assert_int_eq(ad_backward(ctx, dot, NULL), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *tensor_suite(void) {
  Suite *s = suite_create("tensor");
  TCase *tc = tcase_create("creation");
  tcase_add_loop_test(tc, test_creation_functions, 0, 3);
  tcase_add_test(tc, test_from_data);
  tcase_add_test(tc, test_arange);
  tcase_add_test(tc, test_linspace);
  suite_add_tcase(s, tc);

  tc = tcase_create("access");
  tcase_add_test(tc, test_get_set_item);
  tcase_add_test(tc, test_fill_and_mut);
  tcase_add_test(tc, test_copy_into);
  tcase_add_test(tc, test_cast);
  suite_add_tcase(s, tc);

  tc = tcase_create("text");
  tcase_add_test(tc, test_text_form);
  tcase_add_test(tc, test_text_abbreviation);
  tcase_add_test(tc, test_format_truncation);
  suite_add_tcase(s, tc);

  tc = tcase_create("dimensions");
  tcase_add_test(tc, test_eight_dims);
  tcase_add_test(tc, test_zero_dims_everywhere);
  tcase_add_test(tc, test_empty_tensors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(tensor_suite()); }
