/*
 * The random generator: fixed sequences for fixed seeds, and the sample
 * moments of uniform and normal draws.
 *
 * The golden values come from an independent Python implementation of
 * splitmix64 seeding, xoshiro256** (Blackman and Vigna), Lemire's bounded
 * integers and Marsaglia's polar method, so they check the algorithms as
 * well as their stability across builds.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

START_TEST(test_next_golden) {
  ad_rng rng;
  ad_rng_seed(&rng, 42);
  const uint64_t expected[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
  for (int i = 0; i < 4; i++) {
    uint64_t got = ad_rng_next(&rng);
    ck_assert_msg(got == expected[i], "seed 42, draw %d: 0x%016llx, expected 0x%016llx", i,
                  (unsigned long long)got, (unsigned long long)expected[i]);
  }
  ad_rng_seed(&rng, 0);
  ck_assert(ad_rng_next(&rng) == 0x99ec5f36cb75f2b4ull);
  ck_assert(ad_rng_next(&rng) == 0xbf6e1f784956452aull);
}
END_TEST

START_TEST(test_uniform_golden) {
  ad_rng rng;
  ad_rng_seed(&rng, 42);
  const double expected[3] = {0.08386297105988216, 0.3789802506626686, 0.6800434110281394};
  for (int i = 0; i < 3; i++) {
    double got = ad_rng_uniform(&rng);
    ck_assert_msg(got == expected[i], "draw %d: %.17g, expected %.17g", i, got, expected[i]);
  }
}
END_TEST

START_TEST(test_normal_golden) {
  ad_rng rng;
  ad_rng_seed(&rng, 42);
  /* The Python reference uses the C library's log; the engine's portable
     logarithm may differ from it in the last bit. */
  const double expected[4] = {-0.7262191382447857, -0.21119691823195985, 0.2216227015035933,
                              0.5227716877560146};
  for (int i = 0; i < 4; i++) {
    double got = ad_rng_normal(&rng);
    ck_assert_msg(fabs(got - expected[i]) <= 4e-16 * fabs(expected[i]),
                  "draw %d: %.17g, expected %.17g", i, got, expected[i]);
  }
}
END_TEST

START_TEST(test_below_golden) {
  ad_rng rng;
  ad_rng_seed(&rng, 7);
  const uint64_t tens[10] = {7, 2, 8, 9, 9, 8, 0, 1, 4, 1};
  for (int i = 0; i < 10; i++) ck_assert_uint_eq(ad_rng_below(&rng, 10), tens[i]);
  const uint64_t large[3] = {541369, 731860, 938968};
  for (int i = 0; i < 3; i++) ck_assert_uint_eq(ad_rng_below(&rng, 1000003), large[i]);
  ck_assert_uint_eq(ad_rng_below(&rng, 0), 0);
  ck_assert_uint_eq(ad_rng_below(&rng, 1), 0);
}
END_TEST

START_TEST(test_same_seed_same_numbers) {
  ad_rng a, b;
  ad_rng_seed(&a, 123);
  ad_rng_seed(&b, 123);
  for (int i = 0; i < 1000; i++) ck_assert_double_eq(ad_rng_normal(&a), ad_rng_normal(&b));
  /* Seeding again restarts the sequence and drops the spare normal. */
  ad_rng_seed(&a, 5);
  double first = ad_rng_normal(&a);
  ad_rng_seed(&a, 5);
  ck_assert_double_eq(ad_rng_normal(&a), first);
  ad_rng_seed(&b, 6);
  ck_assert(ad_rng_normal(&b) != first);

  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng_seed(&a, 9);
  ad_rng_seed(&b, 9);
  ad_tensor *x = ad_rand_normal(ctx, &a, AD_F64, 2, (int64_t[]){3, 4}, 1, 2);
  ad_tensor *y = ad_rand_normal(ctx, &b, AD_F64, 2, (int64_t[]){3, 4}, 1, 2);
  assert_tensors_close("same seed, same tensor", x, y, 0, 0);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Moments --------------------------------------------------------- */

#define SAMPLES 1000000

static void moments(const double *v, int64_t n, double *mean, double *var) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
  *var = s2 / (double)(n - 1);
}

/* Tolerances are 6 standard errors of the estimate for 10^6 samples. */
START_TEST(test_uniform_moments) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 2024);
  int64_t n = SAMPLES;
  ad_tensor *t = ad_rand_uniform(ctx, &rng, AD_F64, 1, &n, -1, 3);
  ck_assert_ptr_nonnull(t);
  const double *v = ad_data_f64(t);
  for (int64_t i = 0; i < n; i++) ck_assert(v[i] >= -1 && v[i] < 3);
  double mean, var;
  moments(v, n, &mean, &var);
  /* U(-1, 3): mean 1, variance 16 / 12, standard deviation of the
     variance estimate about 16 / sqrt(180 n). */
  ck_assert_msg(fabs(mean - 1) < 6 * sqrt(16.0 / 12 / n), "mean %.6f", mean);
  ck_assert_msg(fabs(var - 16.0 / 12) < 6 * 16 / sqrt(180.0 * n), "variance %.6f", var);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_normal_moments) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 2025);
  int64_t n = SAMPLES;
  ad_tensor *t = ad_rand_normal(ctx, &rng, AD_F64, 1, &n, 0.5, 2);
  ck_assert_ptr_nonnull(t);
  double mean, var;
  moments(ad_data_f64(t), n, &mean, &var);
  /* N(0.5, 4): the variance estimate has standard deviation 4 sqrt(2 / n). */
  ck_assert_msg(fabs(mean - 0.5) < 6 * 2 / sqrt((double)n), "mean %.6f", mean);
  ck_assert_msg(fabs(var - 4) < 6 * 4 * sqrt(2.0 / n), "variance %.6f", var);
  /* About 68.27% within one standard deviation. */
  int64_t inside = 0;
  for (int64_t i = 0; i < n; i++) inside += fabs(ad_data_f64(t)[i] - 0.5) < 2;
  double fraction = (double)inside / (double)n;
  ck_assert_msg(fabs(fraction - 0.682689) < 6 * sqrt(0.2166 / n), "fraction %.6f", fraction);
  ad_ctx_free(ctx);
}
END_TEST

/* A chi-square test of ad_rng_below(10) over 10^5 draws: with 9 degrees of
   freedom, 40 is far beyond the 0.9999 quantile (about 33.7). */
START_TEST(test_below_uniform) {
  ad_rng rng;
  ad_rng_seed(&rng, 77);
  int64_t counts[10] = {0};
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    uint64_t v = ad_rng_below(&rng, 10);
    ck_assert_uint_lt(v, 10);
    counts[v]++;
  }
  double chi2 = 0;
  for (int k = 0; k < 10; k++) chi2 += pow((double)counts[k] - n / 10.0, 2) / (n / 10.0);
  ck_assert_msg(chi2 < 40, "chi-square %.2f", chi2);
}
END_TEST

START_TEST(test_random_tensors) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng, copy;
  ad_rng_seed(&rng, 3);
  copy = rng;
  ad_tensor *u = ad_rand_uniform(ctx, &rng, AD_F32, 2, (int64_t[]){2, 5}, 2, 4);
  ck_assert_int_eq(ad_tensor_dtype(u), AD_F32);
  assert_shape("uniform tensor", u, "2,5");
  ck_assert(ad_is_leaf(u));
  ck_assert(!ad_requires_grad(u));
  for (int64_t i = 0; i < 10; i++) {
    float expected = (float)(2 + 2 * ad_rng_uniform(&copy));
    ck_assert_float_eq(ad_data_f32(u)[i], expected);
  }
  /* A degenerate interval and a zero standard deviation give constants. */
  ad_tensor *c = ad_rand_uniform(ctx, &rng, AD_F64, 1, (int64_t[]){3}, 5, 5);
  assert_values("uniform on [5, 5]", c, (const double[]){5, 5, 5}, 3, 0, 0);
  ad_tensor *d = ad_rand_normal(ctx, &rng, AD_F64, 0, NULL, -1, 0);
  assert_values("normal with stddev 0", d, (const double[]){-1}, 1, 0, 0);
  ad_tensor *e = ad_rand_normal(ctx, &rng, AD_F64, 2, (int64_t[]){0, 4}, 0, 1);
  assert_shape("empty normal tensor", e, "0,4");
  ck_assert_ptr_null(ad_rand_uniform(ctx, &rng, AD_F64, 1, (int64_t[]){3}, 2, 1));
  assert_error("low above high", ctx, AD_ERR_ARGUMENT, "ad_rand_uniform", "2", "1", NULL);
  ad_clear_error(ctx);
  ck_assert_ptr_null(ad_rand_normal(ctx, &rng, AD_F64, 1, (int64_t[]){3}, INFINITY, 1));
  assert_error("infinite mean", ctx, AD_ERR_ARGUMENT, "ad_rand_normal", "finite", NULL);
  ad_ctx_free(ctx);
}
END_TEST

/* The inverse of an odd number modulo 2^64, by Newton's iteration. */
static uint64_t inverse_mod_2_64(uint64_t a) {
  uint64_t x = a;
  for (int i = 0; i < 6; i++) x *= 2 - a * x;
  return x;
}

/* Sets the state so that the next ad_rng_next returns value: xoshiro256**
   returns rotl(s[1] * 5, 7) * 9, which is invertible in s[1]. */
static void force_next(ad_rng *rng, uint64_t value) {
  uint64_t r = value * inverse_mod_2_64(9);
  r = (r >> 7) | (r << 57);
  ad_rng_seed(rng, 1);
  rng->state[1] = r * inverse_mod_2_64(5);
}

/* The largest draw, 1 - 2^-53, rounds to high in float32 (and can in
   float64): the values must still lie in [low, high). */
START_TEST(test_uniform_excludes_high) {
  ad_rng rng;
  force_next(&rng, UINT64_MAX);
  ck_assert(ad_rng_next(&rng) == UINT64_MAX);
  force_next(&rng, UINT64_MAX);
  ck_assert_double_eq(ad_rng_uniform(&rng), 1 - 0x1.0p-53);

  ad_ctx *ctx = ad_ctx_new(NULL);
  const double bounds[4][2] = {{0, 1}, {-1, 3}, {0.1, 0.3}, {1e6, 1e6 + 1}};
  for (int dtype = 0; dtype < 2; dtype++) {
    for (int k = 0; k < 4; k++) {
      force_next(&rng, UINT64_MAX);
      ad_tensor *t = ad_rand_uniform(ctx, &rng, dtype ? AD_F64 : AD_F32, 0, NULL, bounds[k][0],
                                     bounds[k][1]);
      double v = flat_get(t, 0);
      ck_assert_msg(v >= bounds[k][0] && v < bounds[k][1],
                    "%s draw on [%g, %g): %.17g is outside", dtype ? "float64" : "float32",
                    bounds[k][0], bounds[k][1], v);
      ck_assert_msg(v > bounds[k][0] + 0.9 * (bounds[k][1] - bounds[k][0]),
                    "%s draw on [%g, %g): %.17g is not near high", dtype ? "float64" : "float32",
                    bounds[k][0], bounds[k][1], v);
    }
  }
  ad_ctx_free(ctx);
}
END_TEST

/* The generator functions take no context, so a NULL generator cannot be
   reported; they return 0 instead of crashing. */
START_TEST(test_null_generator) {
  ck_assert_uint_eq(ad_rng_next(NULL), 0);
  ck_assert_uint_eq(ad_rng_below(NULL, 10), 0);
  ck_assert_double_eq(ad_rng_uniform(NULL), 0);
  ck_assert_double_eq(ad_rng_normal(NULL), 0);
}
END_TEST

static Suite *rng_suite(void) {
  Suite *s = suite_create("rng");
  TCase *tc = tcase_create("sequences");
  tcase_add_test(tc, test_next_golden);
  tcase_add_test(tc, test_uniform_golden);
  tcase_add_test(tc, test_normal_golden);
  tcase_add_test(tc, test_below_golden);
  tcase_add_test(tc, test_same_seed_same_numbers);
  tcase_add_test(tc, test_null_generator);
  suite_add_tcase(s, tc);
  tc = tcase_create("distributions");
  tcase_add_test(tc, test_uniform_moments);
  tcase_add_test(tc, test_normal_moments);
  tcase_add_test(tc, test_below_uniform);
  tcase_add_test(tc, test_random_tensors);
  tcase_add_test(tc, test_uniform_excludes_high);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(rng_suite()); }
