/*
 * Memory. Every block goes through the ad_allocator hook and comes back by
 * ad_ctx_free. A failed allocation anywhere in a training step is reported
 * as AD_ERR_MEMORY without a crash or a leak, and a failed backward pass
 * leaves every gradient as it was. After ad_ctx_reset a repeated step runs
 * without allocating, and persistent tensors survive. The figures of
 * ad_ctx_memory agree with the allocator's own count.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adtest.h"

#define BATCH 256
#define FEATURES 256
#define HIDDEN 256
#define CLASSES 10

typedef struct model {
  ad_tensor *w1, *b1, *w2, *b2;
} model;

static ad_ctx *counted_ctx(counting_allocator *state) {
  ad_allocator hook = counting_allocator_hook(state);
  return ad_ctx_new(&hook);
}

/* A persistent parameter of the given shape with small random values,
   requiring a gradient; NULL after an error. */
static ad_tensor *parameter(ad_ctx *ctx, ad_rng *rng, int ndim, const int64_t *shape) {
  ad_tensor *t = ad_persist(ad_rand_normal(ctx, rng, AD_F64, ndim, shape, 0, 0.05));
  if (t && ad_set_requires_grad(t, true) != AD_OK) return NULL;
  return t;
}

static bool make_model(ad_ctx *ctx, model *m) {
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  m->w1 = parameter(ctx, &rng, 2, (int64_t[]){HIDDEN, FEATURES});
  m->b1 = parameter(ctx, &rng, 1, (int64_t[]){HIDDEN});
  m->w2 = parameter(ctx, &rng, 2, (int64_t[]){CLASSES, HIDDEN});
  m->b2 = parameter(ctx, &rng, 1, (int64_t[]){CLASSES});
  return m->w1 && m->b1 && m->w2 && m->b2;
}

/* Forward and backward of a two-layer network on a batch of 256 rows; the
   activations (512 KiB each) make the arena grow over several chunks. */
static ad_status train_step(ad_ctx *ctx, const model *m, uint64_t seed) {
  ad_rng rng;
  ad_rng_seed(&rng, seed);
  ad_tensor *x = ad_rand_normal(ctx, &rng, AD_F64, 2, (int64_t[]){BATCH, FEATURES}, 0, 1);
  int64_t labels[BATCH];
  for (int i = 0; i < BATCH; i++) labels[i] = i % CLASSES;
  ad_tensor *target = ad_from_i64(ctx, 1, (int64_t[]){BATCH}, labels);
  ad_tensor *h = ad_tanh(ctx, ad_linear(ctx, x, m->w1, m->b1));
  ad_tensor *loss = ad_cross_entropy(ctx, ad_linear(ctx, h, m->w2, m->b2), target,
                                     AD_REDUCE_MEAN);
  if (!loss) return ad_errcode(ctx);
  return ad_backward(ctx, loss, NULL);
}

/* ---- Leaks ------------------------------------------------------------ */

START_TEST(test_no_leak_after_free) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  ck_assert_ptr_nonnull(ctx);
  model m;
  ck_assert(make_model(ctx, &m));
  ck_assert_int_eq(train_step(ctx, &m, 2), AD_OK);
  ck_assert_int_eq(ad_set_backward_trace(ctx, NULL, NULL), AD_OK);
  void *block = ad_malloc(ctx, 100);
  ck_assert_ptr_nonnull(block);
  ad_ctx_reset(ctx);
  ck_assert_int_eq(train_step(ctx, &m, 3), AD_OK);
  ck_assert_int_gt(state.live_blocks, 0);
  ad_free(ctx, block, 100);
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
  ck_assert_uint_eq(state.live_bytes, 0);
  ck_assert_uint_eq(state.size_mismatches, 0);
}
END_TEST

START_TEST(test_allocator_without_free_rejected) {
  counting_allocator state = {0};
  ad_allocator hook = counting_allocator_hook(&state);
  hook.free = NULL;
  ck_assert_ptr_null(ad_ctx_new(&hook));
  ck_assert_uint_eq(state.calls, 0);
}
END_TEST

/* ---- Failure injection ---------------------------------------------- */

/* Allocator calls made inside ad_ctx_reset, whose chunk merge may fail
   without an error because the old chunks are then kept. */
typedef struct reset_calls {
  uint64_t first[2], last[2]; /* calls (first, last] of each reset */
} reset_calls;

static void counted_reset(ad_ctx *ctx, const counting_allocator *state, reset_calls *r, int i) {
  r->first[i] = state->calls;
  ad_ctx_reset(ctx);
  r->last[i] = state->calls;
}

/* The scenario of the injection test: a model, two training steps with a
   reset after each, and a persistent tensor freed. Returns the first failing
   status. */
static ad_status scenario(ad_ctx *ctx, const counting_allocator *state, reset_calls *r) {
  model m;
  if (!make_model(ctx, &m)) return ad_errcode(ctx);
  ad_status st = train_step(ctx, &m, 2);
  if (st != AD_OK) return st;
  counted_reset(ctx, state, r, 0);
  st = train_step(ctx, &m, 3);
  if (st != AD_OK) return st;
  ad_tensor_free(m.w2);
  counted_reset(ctx, state, r, 1);
  return AD_OK;
}

/* Fails the k-th allocation (and, with _i == 1, every later one) for every
   k up to the count of a clean run. */
START_TEST(test_failure_injection) {
  counting_allocator clean = {0};
  ad_ctx *ctx = counted_ctx(&clean);
  reset_calls r = {{0, 0}, {0, 0}};
  ck_assert_int_eq(scenario(ctx, &clean, &r), AD_OK);
  ad_ctx_free(ctx);
  uint64_t total = clean.calls;
  ck_assert_uint_gt(total, 8);

  for (uint64_t k = 1; k <= total + 1; k++) {
    counting_allocator state = {.fail_at = k, .fail_after = _i == 1};
    ctx = counted_ctx(&state);
    if (!ctx) {
      ck_assert_msg(k == 1, "k = %llu: ad_ctx_new failed", (unsigned long long)k);
      ck_assert_int_eq(state.live_blocks, 0);
      continue;
    }
    memset(&r, 0, sizeof r);
    ad_status st = scenario(ctx, &state, &r);
    if (st != AD_OK) {
      ck_assert_msg(st == AD_ERR_MEMORY, "k = %llu: status %s, expected AD_ERR_MEMORY (%s)",
                    (unsigned long long)k, ad_status_name(st), ad_errmsg(ctx));
      ck_assert_msg(ad_errcode(ctx) == AD_ERR_MEMORY, "k = %llu: recorded status %s",
                    (unsigned long long)k, ad_status_name(ad_errcode(ctx)));
      ck_assert_msg(strstr(ad_errmsg(ctx), "out of memory") != NULL,
                    "k = %llu: message '%s' does not say out of memory", (unsigned long long)k,
                    ad_errmsg(ctx));
    } else {
      bool failed_call = k <= state.calls;
      bool in_reset = (k > r.first[0] && k <= r.last[0]) || (k > r.first[1] && k <= r.last[1]);
      ck_assert_msg(!failed_call || in_reset,
                    "k = %llu: that allocation failed but the scenario reported no error",
                    (unsigned long long)k);
    }
    ad_ctx_free(ctx);
    ck_assert_msg(state.live_blocks == 0, "k = %llu: %lld blocks leaked", (unsigned long long)k,
                  (long long)state.live_blocks);
    ck_assert_uint_eq(state.size_mismatches, 0);
  }
}
END_TEST

/* ---- Gradients after a failed backward pass --------------------------- */

#define LEAVES 100

/* sum_i x_i^2 over leaves[from..LEAVES). */
static ad_tensor *sum_of_squares(ad_ctx *ctx, ad_tensor **leaves, int from) {
  ad_tensor *y = ad_mul(ctx, leaves[from], leaves[from]);
  for (int i = from + 1; i < LEAVES; i++) y = ad_add(ctx, y, ad_mul(ctx, leaves[i], leaves[i]));
  return y;
}

/* Takes all but about slack bytes of the arena's current chunk. */
static void fill_arena(ad_ctx *ctx, size_t slack) {
  ad_memory_stats s;
  ad_ctx_memory(ctx, &s);
  size_t free_bytes = s.arena_reserved - s.arena_used;
  size_t take = free_bytes > slack + 256 ? free_bytes - slack - 256 : 0;
  ck_assert_ptr_nonnull(ad_zeros(ctx, AD_I64, 1, (int64_t[]){(int64_t)(take / 8)}));
}

/* 100 leaves x_i = i + 1. A first pass over the last 10 gives them
   gradients, and 5 of those are zeroed. A second pass over all 100 runs with
   an arena that must grow after about slack bytes and an allocator that
   fails from then on. Whether it fails early, in the middle or not at all,
   every gradient must be either the one before the pass or the right sum. */
START_TEST(test_failed_backward_keeps_gradients) {
  int failures = 0;
  for (size_t slack = 0; slack <= 32768; slack += 64) {
    counting_allocator state = {0};
    ad_ctx *ctx = counted_ctx(&state);
    ad_tensor *leaves[LEAVES];
    for (int i = 0; i < LEAVES; i++) leaves[i] = variable(ad_scalar(ctx, AD_F64, i + 1));
    ck_assert_int_eq(ad_backward(ctx, sum_of_squares(ctx, leaves, LEAVES - 10), NULL), AD_OK);
    for (int i = LEAVES - 5; i < LEAVES; i++) ck_assert_int_eq(ad_zero_grad(leaves[i]), AD_OK);
    ad_tensor *y = sum_of_squares(ctx, leaves, 0);
    ck_assert_ptr_nonnull(y);
    fill_arena(ctx, slack);
    state.fail_at = state.calls + 1;
    state.fail_after = true;

    bool failed = ad_backward(ctx, y, NULL) != AD_OK;
    failures += failed;
    for (int i = 0; i < LEAVES; i++) {
      /* NAN stands for no gradient at all. */
      double square = 2.0 * (i + 1), expected = square;
      bool first_pass = i >= LEAVES - 10, zeroed = i >= LEAVES - 5;
      if (failed && !first_pass) expected = NAN;
      else if (failed && zeroed) expected = 0;
      else if (!failed && first_pass && !zeroed) expected = 2 * square;
      ad_tensor *g = ad_grad(leaves[i]);
      if (isnan(expected)) {
        ck_assert_msg(g == NULL, "slack %zu: the failed pass gave leaf %d a gradient", slack, i);
        continue;
      }
      ck_assert_msg(g && flat_get(g, 0) == expected,
                    "slack %zu, %s pass: leaf %d has gradient %g, expected %g", slack,
                    failed ? "failed" : "successful", i, g ? flat_get(g, 0) : NAN, expected);
    }
    if (failed) assert_error("failed backward", ctx, AD_ERR_MEMORY, "ad_backward", NULL);
    ad_ctx_free(ctx);
    ck_assert_int_eq(state.live_blocks, 0);
  }
  ck_assert_int_gt(failures, 0);
}
END_TEST

/* The built-in matrix product copies a transposed operand into scratch
   memory when it can and reads it in place when it cannot, so a failed
   scratch allocation is no error of the product. */
START_TEST(test_failed_scratch_allocation) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  ad_tensor *x = tensor_of(ctx, "2,3", (const double[]){1, 2, 3, 4, 5, 6});
  ad_tensor *w = tensor_of(ctx, "2,3", (const double[]){1, 0, -1, 2, 1, 0});
  for (size_t slack = 0; slack <= 2048; slack += 16) {
    ad_ctx_reset(ctx);
    x = tensor_of(ctx, "2,3", (const double[]){1, 2, 3, 4, 5, 6});
    w = tensor_of(ctx, "2,3", (const double[]){1, 0, -1, 2, 1, 0});
    fill_arena(ctx, slack);
    state.fail_at = state.calls + 1;
    state.fail_after = true;
    ad_tensor *y = ad_linear(ctx, x, w, NULL);
    state.fail_at = 0;
    if (!y) {
      assert_error("linear without memory for its result", ctx, AD_ERR_MEMORY, "ad_linear",
                   NULL);
      continue;
    }
    ck_assert_msg(ad_errcode(ctx) == AD_OK, "slack %zu: linear succeeded but recorded %s: %s",
                  slack, ad_status_name(ad_errcode(ctx)), ad_errmsg(ctx));
    assert_values("linear with scarce memory", y, (const double[]){-2, 4, -2, 13}, 4, 0, 0);
  }
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
}
END_TEST

/* ---- Reuse after reset ------------------------------------------------ */

START_TEST(test_reset_reuses_memory) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  model m;
  ck_assert(make_model(ctx, &m));
  for (int step = 0; step < 2; step++) {
    ck_assert_int_eq(train_step(ctx, &m, 10 + (uint64_t)step), AD_OK);
    ad_ctx_reset(ctx);
  }
  ad_memory_stats before, after;
  ad_ctx_memory(ctx, &before);
  uint64_t calls = state.calls;
  size_t live = state.live_bytes;
  for (int step = 2; step < 5; step++) {
    ck_assert_int_eq(train_step(ctx, &m, 10 + (uint64_t)step), AD_OK);
    ad_ctx_reset(ctx);
  }
  ad_ctx_memory(ctx, &after);
  ck_assert_msg(state.calls == calls, "repeated steps made %llu allocations",
                (unsigned long long)(state.calls - calls));
  ck_assert_uint_eq(after.allocations, before.allocations);
  ck_assert_uint_eq(after.arena_reserved, before.arena_reserved);
  ck_assert_uint_eq(state.live_bytes, live);
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
}
END_TEST

/* ---- Persistent tensors ---------------------------------------------- */

START_TEST(test_persistent_survives_reset) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  ad_tensor *w = variable(ad_persist(tensor_of(ctx, "3", (const double[]){1, 2, 3})));
  ck_assert(ad_is_persistent(w));
  ck_assert(ad_requires_grad(w));
  ad_tensor *arena = variable(ad_scalar(ctx, AD_F64, 2));
  ck_assert(!ad_is_persistent(arena));
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, ad_mul(ctx, w, w), arena));
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  ck_assert(ad_is_persistent(ad_grad(w)));
  ck_assert(!ad_is_persistent(ad_grad(arena)));
  for (int step = 0; step < 3; step++) {
    ad_ctx_reset(ctx);
    ck_assert_ptr_nonnull(ad_zeros(ctx, AD_F64, 1, (int64_t[]){1000}));
    assert_values("persistent values after reset", w, (const double[]){1, 2, 3}, 3, 0, 0);
    assert_values("persistent gradient after reset", ad_grad(w), (const double[]){4, 8, 12}, 3,
                  0, 0);
  }
  /* A persistent copy does not require a gradient and owns its storage. */
  ad_tensor *copy = ad_persist(w);
  ck_assert(!ad_requires_grad(copy));
  ck_assert_ptr_ne(ad_data_f64(copy), ad_data_f64(w));
  ad_memory_stats stats;
  ad_ctx_memory(ctx, &stats);
  size_t persistent = stats.persistent;
  ck_assert_uint_gt(persistent, 0);
  int64_t blocks = state.live_blocks;
  ad_tensor_free(w);
  ck_assert_int_eq(state.live_blocks, blocks - 2); /* w and its gradient */
  ad_ctx_memory(ctx, &stats);
  ck_assert_uint_lt(stats.persistent, persistent);
  ad_tensor_free(copy);
  ad_ctx_memory(ctx, &stats);
  ck_assert_uint_eq(stats.persistent, 0);
  /* An arena tensor is not freed one by one. */
  ad_tensor *t = ad_zeros(ctx, AD_F64, 1, (int64_t[]){4});
  ad_tensor_free(t);
  assert_error("ad_tensor_free on an arena tensor", ctx, AD_ERR_ARGUMENT, "ad_tensor_free",
               "ad_ctx_reset", NULL);
  ad_tensor_free(NULL);
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
}
END_TEST

/* Persistent tensors not freed by the caller are freed with the context. */
START_TEST(test_persistent_freed_with_context) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  for (int i = 0; i < 10; i++)
    ck_assert_ptr_nonnull(ad_persist(ad_ones(ctx, AD_F32, 1, (int64_t[]){100})));
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
}
END_TEST

/* ---- Figures ------------------------------------------------------------ */

static void assert_figures(const char *label, const ad_ctx *ctx, const counting_allocator *state) {
  ad_memory_stats s;
  ad_ctx_memory(ctx, &s);
  ck_assert_msg(s.allocator_bytes == state->live_bytes, "%s: allocator_bytes %zu, allocator %zu",
                label, s.allocator_bytes, state->live_bytes);
  ck_assert_msg(s.allocator_peak == state->peak_bytes, "%s: allocator_peak %zu, allocator %zu",
                label, s.allocator_peak, state->peak_bytes);
  ck_assert_msg(s.allocations == state->calls, "%s: allocations %llu, allocator calls %llu",
                label, (unsigned long long)s.allocations, (unsigned long long)state->calls);
  ck_assert_msg(s.arena_used <= s.arena_reserved, "%s: used %zu > reserved %zu", label,
                s.arena_used, s.arena_reserved);
  ck_assert_msg(s.arena_used <= s.arena_peak_used, "%s: used %zu > peak %zu", label, s.arena_used,
                s.arena_peak_used);
  ck_assert_msg(s.arena_reserved + s.persistent <= s.allocator_bytes,
                "%s: reserved %zu + persistent %zu > allocator bytes %zu", label,
                s.arena_reserved, s.persistent, s.allocator_bytes);
}

START_TEST(test_memory_figures) {
  counting_allocator state = {0};
  ad_ctx *ctx = counted_ctx(&state);
  assert_figures("new context", ctx, &state);
  ad_memory_stats s;
  ad_ctx_memory(ctx, &s);
  ck_assert_uint_eq(s.arena_used, 0);
  ck_assert_uint_eq(s.persistent, 0);

  model m;
  ck_assert(make_model(ctx, &m));
  assert_figures("model", ctx, &state);
  ck_assert_int_eq(train_step(ctx, &m, 2), AD_OK);
  assert_figures("step", ctx, &state);
  ad_ctx_memory(ctx, &s);
  size_t peak = s.arena_peak_used;
  ck_assert_uint_ge(s.arena_used, (size_t)BATCH * FEATURES * sizeof(double));
  ck_assert_uint_ge(s.persistent, (size_t)(HIDDEN * FEATURES + CLASSES * HIDDEN) *
                                      sizeof(double) * 2);

  ad_ctx_reset(ctx);
  assert_figures("reset", ctx, &state);
  ad_ctx_memory(ctx, &s);
  ck_assert_uint_eq(s.arena_used, 0);
  ck_assert_uint_eq(s.arena_peak_used, peak);

  void *block = ad_malloc(ctx, 1000);
  assert_figures("ad_malloc", ctx, &state);
  ad_free(ctx, block, 1000);
  assert_figures("ad_free", ctx, &state);
  ad_ctx_free(ctx);
  ck_assert_int_eq(state.live_blocks, 0);
  ad_ctx_memory(NULL, &s);
  ck_assert_uint_eq(s.allocator_bytes, 0);
}
END_TEST

static Suite *memory_suite(void) {
  Suite *s = suite_create("memory");
  TCase *tc = tcase_create("leaks");
  tcase_add_test(tc, test_no_leak_after_free);
  tcase_add_test(tc, test_allocator_without_free_rejected);
  suite_add_tcase(s, tc);

  tc = tcase_create("failure_injection");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_failure_injection, 0, 2);
  tcase_add_test(tc, test_failed_backward_keeps_gradients);
  tcase_add_test(tc, test_failed_scratch_allocation);
  suite_add_tcase(s, tc);

  tc = tcase_create("reset");
  tcase_add_test(tc, test_reset_reuses_memory);
  tcase_add_test(tc, test_persistent_survives_reset);
  tcase_add_test(tc, test_persistent_freed_with_context);
  suite_add_tcase(s, tc);

  tc = tcase_create("figures");
  tcase_add_test(tc, test_memory_figures);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(memory_suite()); }
