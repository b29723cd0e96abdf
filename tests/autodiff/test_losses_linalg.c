/*
 * Losses and linear algebra against formulas computed by hand in the test:
 * MSE and its gradient (including large values), cross-entropy and binary
 * cross-entropy reductions, NumPy's matmul cases, and ad_linear with and
 * without bias for 1-d, 2-d and 3-d inputs.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

static ad_ctx *new_ctx(void) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(ctx);
  return ctx;
}

static ad_tensor *make(ad_ctx *ctx, ad_dtype dtype, const char *shape, const double *values) {
  ad_tensor *t = tensor_of(ctx, shape, values);
  if (dtype == AD_F64) return t;
  return ad_cast(ctx, t, dtype);
}

/* ---- MSE ---------------------------------------------------------------- */

START_TEST(test_mse_gradient) {
  ad_dtype dtype = _i ? AD_F32 : AD_F64;
  double tol = _i ? 1e-6 : 1e-15;
  ad_ctx *ctx = new_ctx();
  const double p[6] = {0.5, -1, 2, 3, 0, 1.25}, t[6] = {1, -1, 0, 2.5, -0.5, 1};
  ad_tensor *pred = variable(make(ctx, dtype, "2,3", p));
  ad_tensor *target = variable(make(ctx, dtype, "2,3", t));
  double sum = 0, mean_grad[6], sum_grad[6];
  for (int i = 0; i < 6; i++) {
    sum += (p[i] - t[i]) * (p[i] - t[i]);
    sum_grad[i] = 2 * (p[i] - t[i]);
    mean_grad[i] = sum_grad[i] / 6;
  }
  const ad_reduction reductions[2] = {AD_REDUCE_MEAN, AD_REDUCE_SUM};
  for (int r = 0; r < 2; r++) {
    ad_tensor *loss = ad_mse(ctx, pred, target, reductions[r]);
    double expected = r == 0 ? sum / 6 : sum;
    assert_values(r == 0 ? "mean squared error" : "summed squared error", loss, &expected, 1, tol,
                  tol);
    for (unsigned flags = 0; flags <= AD_CREATE_GRAPH; flags += AD_CREATE_GRAPH) {
      ad_tensor *inputs[2] = {pred, target}, *grads[2];
      ck_assert_int_eq(ad_gradients(ctx, 1, &loss, NULL, 2, inputs, grads, flags), AD_OK);
      const double *g = r == 0 ? mean_grad : sum_grad;
      double negated[6];
      for (int i = 0; i < 6; i++) negated[i] = -g[i];
      assert_values("gradient 2 (p - t) / n for the prediction", grads[0], g, 6, tol, tol);
      assert_values("gradient for the target", grads[1], negated, 6, tol, tol);
    }
  }
  /* No reduction: one loss per element, weighted by the seed. */
  ad_tensor *each = ad_mse(ctx, pred, target, AD_REDUCE_NONE);
  assert_shape("unreduced MSE", each, "2,3");
  ad_tensor *seed = make(ctx, dtype, "2,3", (const double[]){1, 2, 3, 4, 5, 6});
  ck_assert_int_eq(ad_backward(ctx, each, seed), AD_OK);
  double weighted[6];
  for (int i = 0; i < 6; i++) weighted[i] = (i + 1) * sum_grad[i];
  assert_values("unreduced MSE gradient", ad_grad(pred), weighted, 6, tol, tol);
  ad_ctx_free(ctx);
}
END_TEST

/* A prediction of 300000 against 320000: the squared error is 4e8 and the
   gradient -40000, exact in float32 as well. */
START_TEST(test_mse_large_values) {
  ad_dtype dtype = _i ? AD_F32 : AD_F64;
  ad_ctx *ctx = new_ctx();
  ad_tensor *pred = variable(make(ctx, dtype, "1", (const double[]){300000}));
  ad_tensor *target = make(ctx, dtype, "1", (const double[]){320000});
  ad_tensor *loss = ad_mse(ctx, pred, target, AD_REDUCE_SUM);
  assert_values("squared error of 300000 against 320000", loss, (const double[]){4e8}, 1, 0, 0);
  ck_assert_int_eq(ad_backward(ctx, loss, NULL), AD_OK);
  assert_values("its gradient", ad_grad(pred), (const double[]){-40000}, 1, 0, 0);

  ad_tensor *batch = variable(make(ctx, dtype, "2", (const double[]){300000, 1}));
  ad_tensor *truth = make(ctx, dtype, "2", (const double[]){320000, 1});
  ad_tensor *mean = ad_mse(ctx, batch, truth, AD_REDUCE_MEAN);
  assert_values("mean over two samples", mean, (const double[]){2e8}, 1, 0, 0);
  ck_assert_int_eq(ad_backward(ctx, mean, NULL), AD_OK);
  assert_values("mean gradient", ad_grad(batch), (const double[]){-20000, 0}, 2, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Cross-entropy losses -------------------------------------------- */

START_TEST(test_cross_entropy_reductions) {
  ad_ctx *ctx = new_ctx();
  const double z[6] = {1, 2, 0.5, -1, 0, 3};
  ad_tensor *logits = variable(tensor_of(ctx, "2,3", z));
  ad_tensor *target = ad_from_i64(ctx, 1, (int64_t[]){2}, (const int64_t[]){1, 2});
  double loss[2], grad[6];
  for (int n = 0; n < 2; n++) {
    double m = 0;
    for (int c = 0; c < 3; c++) m += exp(z[n * 3 + c]);
    double lse = log(m);
    loss[n] = lse - z[n * 3 + (n == 0 ? 1 : 2)];
    for (int c = 0; c < 3; c++)
      grad[n * 3 + c] = exp(z[n * 3 + c] - lse) - (c == (n == 0 ? 1 : 2) ? 1 : 0);
  }
  assert_values("cross-entropy per sample", ad_cross_entropy(ctx, logits, target, AD_REDUCE_NONE),
                loss, 2, 1e-15, 1e-15);
  double total = loss[0] + loss[1];
  assert_values("cross-entropy sum", ad_cross_entropy(ctx, logits, target, AD_REDUCE_SUM), &total,
                1, 1e-15, 1e-15);
  double mean = total / 2;
  ad_tensor *l = ad_cross_entropy(ctx, logits, target, AD_REDUCE_MEAN);
  assert_values("cross-entropy mean over the batch", l, &mean, 1, 1e-15, 1e-15);
  ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
  double half[6];
  for (int i = 0; i < 6; i++) half[i] = grad[i] / 2;
  assert_values("cross-entropy gradient (softmax - onehot) / N", ad_grad(logits), half, 6, 1e-15,
                1e-14);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_bce_with_logits) {
  ad_ctx *ctx = new_ctx();
  const double x[4] = {-3, -0.5, 0, 2}, t[4] = {0, 1, 0.5, 0.25};
  ad_tensor *logits = variable(tensor_of(ctx, "4", x));
  ad_tensor *target = variable(tensor_of(ctx, "4", t));
  double sum = 0, dx[4], dt[4];
  for (int i = 0; i < 4; i++) {
    double s = 1 / (1 + exp(-x[i]));
    sum += -(t[i] * log(s) + (1 - t[i]) * log(1 - s));
    dx[i] = (s - t[i]) / 4;
    dt[i] = -x[i] / 4;
  }
  ad_tensor *loss = ad_bce_with_logits(ctx, logits, target, AD_REDUCE_MEAN);
  double mean = sum / 4;
  assert_values("binary cross-entropy", loss, &mean, 1, 1e-15, 1e-14);
  ck_assert_int_eq(ad_backward(ctx, loss, NULL), AD_OK);
  assert_values("binary cross-entropy: logits gradient", ad_grad(logits), dx, 4, 1e-15, 1e-14);
  assert_values("binary cross-entropy: target gradient", ad_grad(target), dt, 4, 1e-15, 1e-14);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- matmul ---------------------------------------------------------------- */

/* The element of a stack of matrices at batch index b (already broadcast
   and reduced to the stack's own batch shape by the caller). */
typedef struct stack {
  int batch_ndim;
  int64_t batch[4];
  int64_t rows, cols;
  const double *data;
} stack;

static double stack_at(const stack *s, const int64_t *out_batch, int out_ndim, int64_t i,
                       int64_t j) {
  int64_t offset = 0;
  for (int d = 0; d < s->batch_ndim; d++) {
    int64_t k = out_batch[out_ndim - s->batch_ndim + d];
    if (s->batch[d] == 1) k = 0;
    offset = offset * s->batch[d] + k;
  }
  return s->data[(offset * s->rows + i) * s->cols + j];
}

/* The reference product of two stacks whose batch shapes broadcast to
   out_batch (out_ndim entries), written row-major into out. */
static void reference_matmul(const stack *a, const stack *b, int out_ndim, const int64_t *out_batch,
                             double *out) {
  int64_t count = 1;
  for (int d = 0; d < out_ndim; d++) count *= out_batch[d];
  int64_t index[4] = {0};
  int64_t pos = 0;
  for (int64_t n = 0; n < count; n++) {
    int64_t rest = n;
    for (int d = out_ndim - 1; d >= 0; d--) {
      index[d] = rest % out_batch[d];
      rest /= out_batch[d];
    }
    for (int64_t i = 0; i < a->rows; i++)
      for (int64_t j = 0; j < b->cols; j++) {
        double s = 0;
        for (int64_t k = 0; k < a->cols; k++)
          s += stack_at(a, index, out_ndim, i, k) * stack_at(b, index, out_ndim, k, j);
        out[pos++] = s;
      }
  }
}

static void fill_sequence(double *v, int n, double scale) {
  for (int i = 0; i < n; i++) v[i] = scale * (double)((i * 7) % 11 - 5);
}

START_TEST(test_matmul_numpy_cases) {
  ad_ctx *ctx = new_ctx();
  double a[36], b[36], out[64];
  fill_sequence(a, 36, 0.5);
  fill_sequence(b, 36, 0.25);

  /* 1-d by 1-d: a dot product, 0-d. */
  ad_tensor *dot = ad_matmul(ctx, tensor_of(ctx, "3", a), tensor_of(ctx, "3", b));
  assert_shape("vector by vector", dot, "");
  double d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  assert_values("vector by vector", dot, &d, 1, 1e-15, 0);

  /* 1-d by 2-d: a row vector, its dimension removed. */
  ad_tensor *vm = ad_matmul(ctx, tensor_of(ctx, "3", a), tensor_of(ctx, "3,4", b));
  assert_shape("vector by matrix", vm, "4");
  stack sa = {0, {0}, 1, 3, a}, sb = {0, {0}, 3, 4, b};
  reference_matmul(&sa, &sb, 0, NULL, out);
  assert_values("vector by matrix", vm, out, 4, 1e-15, 0);

  /* 2-d by 1-d: a column vector, its dimension removed. */
  ad_tensor *mv = ad_matmul(ctx, tensor_of(ctx, "2,3", a), tensor_of(ctx, "3", b));
  assert_shape("matrix by vector", mv, "2");
  stack sa2 = {0, {0}, 2, 3, a}, sb2 = {0, {0}, 3, 1, b};
  reference_matmul(&sa2, &sb2, 0, NULL, out);
  assert_values("matrix by vector", mv, out, 2, 1e-15, 0);

  /* Batches that broadcast: [2, 1, 2, 3] by [3, 3, 2] gives [2, 3, 2, 2]. */
  ad_tensor *bb = ad_matmul(ctx, tensor_of(ctx, "2,1,2,3", a), tensor_of(ctx, "3,3,2", b));
  assert_shape("broadcast batches", bb, "2,3,2,2");
  stack sa3 = {2, {2, 1}, 2, 3, a}, sb3 = {1, {3}, 3, 2, b};
  reference_matmul(&sa3, &sb3, 2, (int64_t[]){2, 3}, out);
  assert_values("broadcast batches", bb, out, 24, 1e-15, 0);

  /* A 1-d left operand against a stack, and a stack against a 1-d right one. */
  ad_tensor *vs = ad_matmul(ctx, tensor_of(ctx, "3", a), tensor_of(ctx, "2,3,4", b));
  assert_shape("vector by stack", vs, "2,4");
  stack sa4 = {0, {0}, 1, 3, a}, sb4 = {1, {2}, 3, 4, b};
  reference_matmul(&sa4, &sb4, 1, (int64_t[]){2}, out);
  assert_values("vector by stack", vs, out, 8, 1e-15, 0);
  ad_tensor *sv = ad_matmul(ctx, tensor_of(ctx, "2,2,3", a), tensor_of(ctx, "3", b));
  assert_shape("stack by vector", sv, "2,2");
  stack sa5 = {1, {2}, 2, 3, a}, sb5 = {0, {0}, 3, 1, b};
  reference_matmul(&sa5, &sb5, 1, (int64_t[]){2}, out);
  assert_values("stack by vector", sv, out, 4, 1e-15, 0);

  /* An inner dimension of 0 gives zeros. */
  ad_tensor *z = ad_matmul(ctx, ad_ones(ctx, AD_F64, 2, (int64_t[]){2, 0}),
                           ad_ones(ctx, AD_F64, 2, (int64_t[]){0, 3}));
  assert_values("inner dimension 0", z, (const double[]){0, 0, 0, 0, 0, 0}, 6, 0, 0);

  /* outer and dot. */
  ad_tensor *o = ad_outer(ctx, tensor_of(ctx, "2", (const double[]){1, 2}),
                          tensor_of(ctx, "3", (const double[]){3, 4, 5}));
  assert_values("outer", o, (const double[]){3, 4, 5, 6, 8, 10}, 6, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* The gradients of <a b, g> for a broadcast batch: da sums g b^T over the
   batches a was broadcast along. */
START_TEST(test_matmul_broadcast_gradient) {
  ad_ctx *ctx = new_ctx();
  double av[6], bv[18];
  fill_sequence(av, 6, 0.5);
  fill_sequence(bv, 18, 0.25);
  ad_tensor *a = variable(tensor_of(ctx, "2,3", av));
  ad_tensor *b = variable(tensor_of(ctx, "3,3,2", bv));
  ad_tensor *y = ad_matmul(ctx, a, b);
  assert_shape("broadcast product", y, "3,2,2");
  ck_assert_int_eq(ad_backward(ctx, ad_sum_all(ctx, y), NULL), AD_OK);
  /* With g all ones: da[i][k] = sum over batches and j of b[n][k][j];
     db[n][k][j] = sum over i of a[i][k]. */
  double da[6] = {0}, db[18];
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++)
      for (int n = 0; n < 3; n++)
        for (int j = 0; j < 2; j++) da[i * 3 + k] += bv[(n * 3 + k) * 2 + j];
  for (int n = 0; n < 3; n++)
    for (int k = 0; k < 3; k++)
      for (int j = 0; j < 2; j++) db[(n * 3 + k) * 2 + j] = av[k] + av[3 + k];
  assert_values("gradient of the broadcast operand", ad_grad(a), da, 6, 1e-15, 0);
  assert_values("gradient of the batched operand", ad_grad(b), db, 18, 1e-15, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* A fixed thread count repeats matrix products exactly, with OpenBLAS too,
   and the engine's own reductions do not depend on the thread count. */
START_TEST(test_results_repeat) {
  ad_ctx *ctx = new_ctx();
  ad_rng rng;
  ad_rng_seed(&rng, 4);
  ad_tensor *a = ad_rand_normal(ctx, &rng, AD_F32, 2, (int64_t[]){96, 700}, 0, 1);
  ad_tensor *b = ad_rand_normal(ctx, &rng, AD_F32, 2, (int64_t[]){700, 80}, 0, 1);
  for (int threads = 1; threads <= 2; threads++) {
    ck_assert_int_eq(ad_ctx_set_threads(ctx, threads), AD_OK);
    ck_assert_int_eq(ad_ctx_threads(ctx), threads);
    ad_tensor *first = ad_matmul(ctx, a, b), *again = ad_matmul(ctx, a, b);
    ck_assert_mem_eq(ad_data_f32(first), ad_data_f32(again), 96 * 80 * sizeof(float));
  }
  ck_assert_int_eq(ad_ctx_set_threads(ctx, 1), AD_OK);
  ad_tensor *one = ad_sum(ctx, a, 1, (const int[]){0}, false);
  ck_assert_int_eq(ad_ctx_set_threads(ctx, 4), AD_OK);
  ad_tensor *four = ad_sum(ctx, a, 1, (const int[]){0}, false);
  ck_assert_mem_eq(ad_data_f32(one), ad_data_f32(four), 700 * sizeof(float));
  ck_assert_int_eq(ad_ctx_set_threads(ctx, 1), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- linear ------------------------------------------------------------- */

/* y = x w^T + b and its gradients for a seed of ones, computed by hand for
   x viewed as [M, in]. */
static void check_linear(const char *shape, int64_t m, bool with_bias) {
  const int64_t in = 3, out = 2;
  ad_ctx *ctx = new_ctx();
  double xv[24], wv[6] = {0.5, -1, 2, 1.5, 0.25, -0.75}, bv[2] = {0.1, -0.2};
  fill_sequence(xv, (int)(m * in), 0.3);
  ad_tensor *x = variable(tensor_of(ctx, shape, xv));
  ad_tensor *w = variable(tensor_of(ctx, "2,3", wv));
  ad_tensor *b = with_bias ? variable(tensor_of(ctx, "2", bv)) : NULL;
  ad_tensor *y = ad_linear(ctx, x, w, b);
  ck_assert_msg(y != NULL, "linear %s: %s", shape, ad_errmsg(ctx));

  char label[80];
  snprintf(label, sizeof label, "linear of [%s]%s", shape, with_bias ? " with bias" : "");
  ck_assert_int_eq(ad_ndim(y), ad_ndim(x));
  ck_assert_int_eq(ad_dim(y, -1), out);
  double expected[16], dx[24] = {0}, dw[6] = {0}, db[2] = {0};
  for (int64_t r = 0; r < m; r++)
    for (int64_t o = 0; o < out; o++) {
      double s = with_bias ? bv[o] : 0;
      for (int64_t k = 0; k < in; k++) {
        s += xv[r * in + k] * wv[o * in + k];
        dx[r * in + k] += wv[o * in + k];
        dw[o * in + k] += xv[r * in + k];
      }
      expected[r * out + o] = s;
      db[o] += 1;
    }
  assert_values(label, y, expected, m * out, 1e-15, 1e-15);
  ck_assert_int_eq(ad_backward(ctx, ad_sum_all(ctx, y), NULL), AD_OK);
  assert_values(label, ad_grad(x), dx, m * in, 1e-15, 1e-15);
  assert_values(label, ad_grad(w), dw, out * in, 1e-14, 1e-15);
  if (with_bias) assert_values(label, ad_grad(b), db, out, 0, 0);

  /* The graph rule gives the same gradients. */
  ad_tensor *inputs[3] = {x, w, b}, *grads[3];
  ck_assert_int_eq(ad_gradients(ctx, 1, &y, (ad_tensor *[]){ad_ones(ctx, AD_F64, ad_ndim(y),
                                                                     ad_shape(y))},
                                with_bias ? 3 : 2, inputs, grads, AD_CREATE_GRAPH),
                   AD_OK);
  assert_values(label, grads[0], dx, m * in, 1e-15, 1e-15);
  assert_values(label, grads[1], dw, out * in, 1e-14, 1e-15);
  if (with_bias) assert_values(label, grads[2], db, out, 0, 0);
  ad_ctx_free(ctx);
}

START_TEST(test_linear_shapes) {
  const char *shapes[3] = {"3", "4,3", "2,4,3"};
  const int64_t rows[3] = {1, 4, 8};
  for (int k = 0; k < 3; k++) {
    check_linear(shapes[k], rows[k], true);
    check_linear(shapes[k], rows[k], false);
  }
}
END_TEST

static Suite *losses_linalg_suite(void) {
  Suite *s = suite_create("losses_linalg");
  TCase *tc = tcase_create("mse");
  tcase_add_loop_test(tc, test_mse_gradient, 0, 2);
  tcase_add_loop_test(tc, test_mse_large_values, 0, 2);
  suite_add_tcase(s, tc);
  tc = tcase_create("cross_entropy");
  tcase_add_test(tc, test_cross_entropy_reductions);
  tcase_add_test(tc, test_bce_with_logits);
  suite_add_tcase(s, tc);
  tc = tcase_create("matmul");
  tcase_add_test(tc, test_matmul_numpy_cases);
  tcase_add_test(tc, test_matmul_broadcast_gradient);
  tcase_add_test(tc, test_results_repeat);
  suite_add_tcase(s, tc);
  tc = tcase_create("linear");
  tcase_add_test(tc, test_linear_shapes);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(losses_linalg_suite()); }
