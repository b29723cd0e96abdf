/* Results must not depend on the thread count: products and their
   gradients are compared bit for bit across 1, 2 and 3 threads. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

/* Shapes large enough that gemm cuts them into blocks, with K above 384
   and not a multiple of 512 (where OpenBLAS's own threading changes its
   blocking of K), plus one that stays whole. */
static const int64_t shapes[][3] = {
    {64, 256, 784}, {256, 784, 64}, {96, 700, 80}, {300, 33, 1000}, {8, 8, 8},
};

typedef struct product_run {
  ad_tensor *y, *dx, *dw;
} product_run;

/* y = linear(x, w) with x [m, k], w [n, k], and the gradients of sum(y * y). */
static product_run run_linear(ad_ctx *ctx, ad_dtype dtype, const int64_t *mnk, int threads) {
  ck_assert_int_eq(ad_ctx_set_threads(ctx, threads), AD_OK);
  ad_rng rng;
  ad_rng_seed(&rng, 7);
  ad_tensor *x = variable(ad_rand_uniform(ctx, &rng, dtype, 2, (int64_t[]){mnk[0], mnk[2]}, -1, 1));
  ad_tensor *w = variable(ad_rand_uniform(ctx, &rng, dtype, 2, (int64_t[]){mnk[1], mnk[2]}, -1, 1));
  ad_tensor *y = ad_linear(ctx, x, w, NULL);
  ad_tensor *loss = ad_sum_all(ctx, ad_mul(ctx, y, y));
  ck_assert_ptr_nonnull(loss);
  ck_assert_int_eq(ad_backward(ctx, loss, NULL), AD_OK);
  return (product_run){y, ad_grad(x), ad_grad(w)};
}

static void assert_bitwise(const char *label, const ad_tensor *a, const ad_tensor *b) {
  ck_assert_msg(a && b, "%s: missing tensor", label);
  ck_assert_msg(ad_numel(a) == ad_numel(b), "%s: sizes differ", label);
  size_t bytes = (size_t)ad_numel(a) * ad_dtype_size(ad_tensor_dtype(a));
  const void *pa = ad_tensor_dtype(a) == AD_F32 ? (const void *)ad_data_f32(a)
                                                 : (const void *)ad_data_f64(a);
  const void *pb = ad_tensor_dtype(b) == AD_F32 ? (const void *)ad_data_f32(b)
                                                 : (const void *)ad_data_f64(b);
  ck_assert_msg(memcmp(pa, pb, bytes) == 0, "%s: results differ between thread counts", label);
}

START_TEST(test_linear_bitwise_across_threads) {
  const int64_t *mnk = shapes[_i];
  for (int d = 0; d < 2; d++) {
    ad_dtype dtype = d == 0 ? AD_F32 : AD_F64;
    ad_ctx *ctx = ad_ctx_new(NULL);
    product_run single = run_linear(ctx, dtype, mnk, 1);
    for (int threads = 2; threads <= 3; threads++) {
      product_run many = run_linear(ctx, dtype, mnk, threads);
      char label[128];
      snprintf(label, sizeof label, "%s m=%lld n=%lld k=%lld threads=%d",
               ad_dtype_name(dtype), (long long)mnk[0], (long long)mnk[1], (long long)mnk[2],
               threads);
      char part[160];
      snprintf(part, sizeof part, "%s output", label);
      assert_bitwise(part, single.y, many.y);
      snprintf(part, sizeof part, "%s dx", label);
      assert_bitwise(part, single.dx, many.dx);
      snprintf(part, sizeof part, "%s dw", label);
      assert_bitwise(part, single.dw, many.dw);
    }
    ad_ctx_free(ctx);
  }
}
END_TEST

START_TEST(test_batched_matmul_bitwise_across_threads) {
  ad_tensor *out[3];
  ad_ctx *ctx = ad_ctx_new(NULL);
  for (int threads = 1; threads <= 3; threads++) {
    ck_assert_int_eq(ad_ctx_set_threads(ctx, threads), AD_OK);
    ad_rng rng;
    ad_rng_seed(&rng, 3);
    ad_tensor *a = ad_rand_normal(ctx, &rng, AD_F32, 3, (int64_t[]){3, 128, 520}, 0, 1);
    ad_tensor *b = ad_rand_normal(ctx, &rng, AD_F32, 2, (int64_t[]){520, 200}, 0, 1);
    out[threads - 1] = ad_matmul(ctx, a, b);
    ck_assert_ptr_nonnull(out[threads - 1]);
  }
  assert_bitwise("batched matmul, 2 threads", out[0], out[1]);
  assert_bitwise("batched matmul, 3 threads", out[0], out[2]);
  ad_ctx_free(ctx);
}
END_TEST

/* Elementwise kernels long enough to be split among threads: values and
   gradients of sin(a * b) + relu(a) over 300,000 elements. */
static product_run run_elementwise(ad_ctx *ctx, ad_dtype dtype, int threads) {
  ck_assert_int_eq(ad_ctx_set_threads(ctx, threads), AD_OK);
  ad_rng rng;
  ad_rng_seed(&rng, 11);
  int64_t n = 300000;
  ad_tensor *a = variable(ad_rand_normal(ctx, &rng, dtype, 1, &n, 0, 1));
  ad_tensor *b = variable(ad_rand_normal(ctx, &rng, dtype, 1, &n, 0, 1));
  ad_tensor *y = ad_add(ctx, ad_sin(ctx, ad_mul(ctx, a, b)), ad_relu(ctx, a));
  ad_tensor *loss = ad_sum_all(ctx, ad_mul(ctx, y, y));
  ck_assert_ptr_nonnull(loss);
  ck_assert_int_eq(ad_backward(ctx, loss, NULL), AD_OK);
  return (product_run){y, ad_grad(a), ad_grad(b)};
}

START_TEST(test_elementwise_bitwise_across_threads) {
  for (int d = 0; d < 2; d++) {
    ad_dtype dtype = d == 0 ? AD_F32 : AD_F64;
    ad_ctx *ctx = ad_ctx_new(NULL);
    product_run single = run_elementwise(ctx, dtype, 1);
    product_run many = run_elementwise(ctx, dtype, 2);
    char label[96];
    snprintf(label, sizeof label, "%s elementwise output", ad_dtype_name(dtype));
    assert_bitwise(label, single.y, many.y);
    snprintf(label, sizeof label, "%s elementwise da", ad_dtype_name(dtype));
    assert_bitwise(label, single.dx, many.dx);
    snprintf(label, sizeof label, "%s elementwise db", ad_dtype_name(dtype));
    assert_bitwise(label, single.dw, many.dw);
    ad_ctx_free(ctx);
  }
}
END_TEST

/* ad_parallel_for: every index runs exactly once, whatever the thread
   count, and a call from inside a task runs inline. */
typedef struct count_job {
  ad_ctx *ctx;
  int *hits;
  int64_t inner;
} count_job;

static void count_inner(void *user, int64_t index) {
  count_job *job = user;
  job->hits[index] += 1;
}

static void count_outer(void *user, int64_t index) {
  count_job *job = user;
  count_job inner = {job->ctx, job->hits + index * job->inner, 0};
  ad_parallel_for(job->ctx, job->inner, count_inner, &inner);
}

START_TEST(test_parallel_for_runs_each_index_once) {
  enum { outer = 37, inner = 53 };
  for (int threads = 1; threads <= 4; threads++) {
    ad_ctx *ctx = ad_ctx_new(NULL);
    ck_assert_int_eq(ad_ctx_set_threads(ctx, threads), AD_OK);
    static int hits[outer * inner];
    for (int round = 0; round < 50; round++) {
      memset(hits, 0, sizeof hits);
      count_job job = {ctx, hits, inner};
      ad_parallel_for(ctx, outer, count_outer, &job);
      for (int i = 0; i < outer * inner; i++)
        ck_assert_msg(hits[i] == 1, "threads=%d round=%d: index %d ran %d times", threads, round,
                      i, hits[i]);
    }
    ad_parallel_for(ctx, 0, count_inner, NULL); /* no tasks: returns at once */
    ad_ctx_free(ctx);
  }
}
END_TEST

START_TEST(test_thread_count_range) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_int_eq(ad_ctx_threads(ctx), 1);
  ck_assert_int_eq(ad_ctx_set_threads(ctx, 0), AD_ERR_ARGUMENT);
  assert_error("zero threads", ctx, AD_ERR_ARGUMENT, "ad_ctx_set_threads", "0", NULL);
  ck_assert_int_eq(ad_ctx_threads(ctx), 1);
  ad_clear_error(ctx);
  ck_assert_int_eq(ad_ctx_set_threads(ctx, 4), AD_OK);
  ck_assert_int_eq(ad_ctx_threads(ctx), 4);
  ad_ctx_free(ctx);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("determinism");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_linear_bitwise_across_threads, 0,
                      (int)(sizeof shapes / sizeof shapes[0]));
  tcase_add_test(tc, test_batched_matmul_bitwise_across_threads);
  tcase_add_test(tc, test_elementwise_bitwise_across_threads);
  tcase_add_test(tc, test_parallel_for_runs_each_index_once);
  tcase_add_test(tc, test_thread_count_range);
  suite_add_tcase(s, tc);
  return run_suite(s);
}
