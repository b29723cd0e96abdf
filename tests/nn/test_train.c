/* Training helpers: mini-batches, evaluation, progress reports, training
   XOR, zero allocations per steady step, and allocation failures. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "nn.h"

/* ---- Mini-batches ---------------------------------------------------- */

START_TEST(test_batcher_split) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_batcher *keep = nn_batcher_new(ctx, 10, 3, false), *drop = nn_batcher_new(ctx, 10, 3, true);
  ck_assert_int_eq(nn_batcher_batches(keep), 4);
  ck_assert_int_eq(nn_batcher_batches(drop), 3);
  const int64_t *idx;
  const int64_t sizes[] = {3, 3, 3, 1};
  for (int b = 0; b < 4; b++) {
    ck_assert_int_eq(nn_batcher_batch(keep, b, &idx), sizes[b]);
    for (int64_t i = 0; i < sizes[b]; i++) ck_assert_int_eq(idx[i], 3 * b + i);
  }
  ck_assert_int_eq(nn_batcher_batch(keep, 4, &idx), 0);
  ck_assert_int_eq(nn_batcher_batch(drop, 3, &idx), 0);
  ck_assert_int_eq(nn_batcher_batch(keep, -1, &idx), 0);
  ck_assert_ptr_null(nn_batcher_new(ctx, 0, 3, false));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  nn_batcher_free(keep);
  nn_batcher_free(drop);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_batcher_shuffle_is_fisher_yates) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_batcher *b = nn_batcher_new(ctx, 100, 7, false);
  ad_rng rng, reference;
  ad_rng_seed(&rng, 2024);
  ad_rng_seed(&reference, 2024);
  for (int epoch = 0; epoch < 3; epoch++) {
    nn_batcher_shuffle(b, &rng);
    int64_t expected[100];
    for (int i = 0; i < 100; i++) expected[i] = i;
    for (int i = 99; i > 0; i--) {
      int64_t j = (int64_t)ad_rng_below(&reference, (uint64_t)i + 1);
      int64_t t = expected[i];
      expected[i] = expected[j];
      expected[j] = t;
    }
    bool seen[100] = {false};
    for (int i = 0; i < 100; i++) {
      ck_assert_int_eq(b->order[i], expected[i]);
      ck_assert(!seen[b->order[i]]);
      seen[b->order[i]] = true;
    }
  }
  nn_batcher_free(b);
  ad_ctx_free(ctx);
}
END_TEST

/* Each of the 6 orders of 3 samples appears about equally often. */
START_TEST(test_batcher_shuffle_uniform) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_batcher *b = nn_batcher_new(ctx, 3, 3, false);
  ad_rng rng;
  ad_rng_seed(&rng, 77);
  int counts[27] = {0};
  for (int i = 0; i < 6000; i++) {
    nn_batcher_shuffle(b, &rng);
    counts[b->order[0] * 9 + b->order[1] * 3 + b->order[2]]++;
  }
  const int perms[] = {0 * 9 + 1 * 3 + 2, 0 * 9 + 2 * 3 + 1, 1 * 9 + 0 * 3 + 2,
                       1 * 9 + 2 * 3 + 0, 2 * 9 + 0 * 3 + 1, 2 * 9 + 1 * 3 + 0};
  /* 1000 expected each; the standard deviation is about 29. */
  for (int p = 0; p < 6; p++) {
    ck_assert_int_ge(counts[perms[p]], 1000 - 150);
    ck_assert_int_le(counts[perms[p]], 1000 + 150);
  }
  nn_batcher_free(b);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Evaluation ------------------------------------------------------ */

/* Five samples whose inputs are already logits over 3 classes. */
static const float eval_logits[5][3] = {{2, 0, 0}, {0, 3, 1}, {1, 1, 4}, {5, 0, 0}, {0, 0, 1}};
static const int64_t eval_labels[5] = {0, 1, 0, 1, 2};

static ad_status eval_batch(ad_ctx *ctx, void *data, const int64_t *indices, int64_t count,
                            ad_tensor **x, ad_tensor **y) {
  int *calls = data;
  (*calls)++;
  float xv[5 * 3];
  int64_t yv[5];
  for (int64_t i = 0; i < count; i++) {
    memcpy(xv + 3 * i, eval_logits[indices[i]], sizeof eval_logits[0]);
    yv[i] = eval_labels[indices[i]];
  }
  *x = ad_from_f32(ctx, 2, (const int64_t[]){count, 3}, xv);
  *y = ad_from_i64(ctx, 1, &count, yv);
  return *x && *y ? AD_OK : ad_errcode(ctx);
}

START_TEST(test_evaluate_loss_and_accuracy) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_layer *identity = nn_sequential(ctx);
  int calls = 0;
  nn_eval_result result;
  ck_assert_int_eq(nn_evaluate(ctx, identity, nn_cross_entropy_loss, eval_batch, &calls, 5, 2,
                               &result), AD_OK);
  ck_assert_int_eq(calls, 3);
  double expected = 0;
  for (int i = 0; i < 5; i++) {
    double z = 0;
    for (int c = 0; c < 3; c++) z += exp(eval_logits[i][c]);
    expected += log(z) - eval_logits[i][eval_labels[i]];
  }
  ck_assert_double_eq_tol(result.loss, expected / 5, 1e-6);
  /* Samples 0, 1 and 4 are right; 2 and 3 are wrong. */
  ck_assert_double_eq(result.accuracy, 0.6);
  ck_assert_int_eq(result.samples, 5);
  ck_assert(ad_grad_enabled(ctx));
  ck_assert(nn_layer_training(identity));
  ck_assert_int_eq(nn_evaluate(ctx, identity, nn_cross_entropy_loss, eval_batch, &calls, 0, 2,
                               &result), AD_ERR_ARGUMENT);
  nn_layer_free(identity);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_count_correct) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  /* Ties go to the first maximum. */
  const float lv[] = {1, 1, 0, 0, 2, 2, 3, -1, 3};
  const int64_t tv[] = {0, 1, 2};
  ad_tensor *logits = ad_from_f32(ctx, 2, (const int64_t[]){3, 3}, lv);
  ad_tensor *target = ad_from_i64(ctx, 1, (const int64_t[]){3}, tv);
  ck_assert_int_eq(nn_count_correct(ctx, logits, target), 2);
  ck_assert_int_eq(nn_count_correct(ctx, logits, logits), -1);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_DTYPE);
  ad_clear_error(ctx);
  ad_tensor *short_target = ad_from_i64(ctx, 1, (const int64_t[]){2}, tv);
  ck_assert_int_eq(nn_count_correct(ctx, logits, short_target), -1);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "got logits [3, 3] and targets [2]"));
  ad_ctx_free(ctx);
}
END_TEST

/* A target outside [0, C) is an error, not a wrong prediction. */
START_TEST(test_count_correct_rejects_bad_targets) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const float lv[] = {1, 0, 0, 0, 1, 0};
  ad_tensor *logits = ad_from_f32(ctx, 2, (const int64_t[]){2, 3}, lv);
  const struct {
    int64_t targets[2];
    const char *message;
  } cases[] = {
      {{7, 7}, "target 7 at position 0 is not a class index in [0, 3)"},
      {{0, 3}, "target 3 at position 1 is not a class index in [0, 3)"},
      {{0, -1}, "target -1 at position 1"},
  };
  for (int i = 0; i < 3; i++) {
    ad_tensor *target = ad_from_i64(ctx, 1, (const int64_t[]){2}, cases[i].targets);
    ck_assert_int_eq(nn_count_correct(ctx, logits, target), -1);
    ck_assert_int_eq(ad_errcode(ctx), AD_ERR_INDEX);
    ck_assert_msg(strstr(ad_errmsg(ctx), cases[i].message) != NULL, "case %d: %s", i,
                  ad_errmsg(ctx));
    ad_clear_error(ctx);
  }
  ad_tensor *valid = ad_from_i64(ctx, 1, (const int64_t[]){2}, (const int64_t[]){0, 2});
  ck_assert_int_eq(nn_count_correct(ctx, logits, valid), 1);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Progress -------------------------------------------------------- */

static char *stream_text(FILE *f) {
  static char text[4096];
  fflush(f);
  rewind(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  return text;
}

START_TEST(test_progress_bar_style) {
  FILE *f = tmpfile();
  nn_progress p;
  nn_progress_begin(&p, f, NN_PROGRESS_BAR, "epoch 2/5", 3);
  nn_progress_update(&p, 64, 0.4);
  nn_progress_update(&p, 64, 0.5);
  nn_progress_update(&p, 32, 0.6);
  nn_progress_end(&p);
  const char *text = stream_text(f);
  ck_assert_int_eq(text[0], '\r');
  ck_assert_ptr_nonnull(strstr(text, "epoch 2/5 ["));
  ck_assert_ptr_nonnull(strstr(text, "] 3/3 loss 0.5000 "));
  ck_assert_ptr_nonnull(strstr(text, "samples/s"));
  ck_assert_ptr_nonnull(strstr(text, "0:00 left"));
  ck_assert_int_eq(text[strlen(text) - 1], '\n');
  ck_assert_int_eq(p.samples_done, 160);
  fclose(f);
}
END_TEST

START_TEST(test_progress_line_style) {
  FILE *f = tmpfile();
  nn_progress p;
  /* A file is no terminal, so the automatic style prints one line. */
  nn_progress_begin(&p, f, NN_PROGRESS_AUTO, "epoch 1/1", 2);
  ck_assert_int_eq(p.style, NN_PROGRESS_LINE);
  nn_progress_update(&p, 10, 1.0);
  nn_progress_update(&p, 10, 2.0);
  const char *text = stream_text(f);
  ck_assert_str_eq(text, "");
  nn_progress_end(&p);
  text = stream_text(f);
  ck_assert_ptr_nonnull(strstr(text, "epoch 1/1: 2 batches, loss 1.5000, "));
  ck_assert_ptr_nonnull(strstr(text, " samples/s, "));
  ck_assert_ptr_null(strchr(text, '\r'));
  ck_assert_ptr_eq(strchr(text, '\n'), text + strlen(text) - 1);
  fclose(f);
}
END_TEST

/* ---- Training a small network ----------------------------------------- */

START_TEST(test_xor_reaches_low_loss) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_rng rng;
  ad_rng_seed(&rng, 5);
  nn_layer *model = nn_sequential(ctx);
  nn_sequential_add(model, nn_linear(ctx, 2, 8, NN_INIT_XAVIER_UNIFORM, &rng));
  nn_sequential_add(model, nn_tanh(ctx));
  nn_sequential_add(model, nn_linear(ctx, 8, 1, NN_INIT_XAVIER_UNIFORM, &rng));
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_layer_collect_params(model, NULL, params), AD_OK);
  nn_optim_config config = nn_adam_config(0.05);
  nn_optimizer *opt = nn_optimizer_new(ctx, params, &config);
  const float xv[] = {0, 0, 0, 1, 1, 0, 1, 1}, yv[] = {0, 1, 1, 0};
  double loss = INFINITY;
  for (int step = 0; step < 500; step++) {
    ad_ctx_reset(ctx);
    ad_tensor *x = ad_from_f32(ctx, 2, (const int64_t[]){4, 2}, xv);
    ad_tensor *y = ad_from_f32(ctx, 2, (const int64_t[]){4, 1}, yv);
    ad_tensor *l = nn_bce_with_logits_loss(ctx, nn_forward(ctx, model, x), y, AD_REDUCE_MEAN);
    nn_optimizer_zero_grad(opt);
    ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
    ck_assert_int_eq(ad_item(l, &loss), AD_OK);
    ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
  }
  /* The mean binary cross-entropy of a fit network is near 0; chance is log 2 = 0.69. */
  ck_assert_double_lt(loss, 0.01);
  nn_optimizer_free(opt);
  nn_tensor_list_free(params);
  nn_layer_free(model);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Allocation counts ----------------------------------------------- */

typedef struct counting {
  uint64_t allocations;
  uint64_t fail_after; /* fail every allocation after this many; UINT64_MAX: never */
  size_t live;
} counting;

static void *counting_alloc(void *user, size_t size) {
  counting *c = user;
  if (c->allocations >= c->fail_after) return NULL;
  c->allocations++;
  void *p = malloc(size);
  if (p) c->live += size;
  return p;
}

static void counting_free(void *user, void *ptr, size_t size) {
  counting *c = user;
  c->live -= size;
  free(ptr);
}

/* An MLP with dropout, its optimizer and data, trained step by step. */
typedef struct mlp_run {
  ad_ctx *ctx;
  ad_rng rng;
  nn_layer *model;
  nn_tensor_list *params;
  nn_optimizer *opt;
  nn_batcher *batcher;
  float x[64 * 20];
  int64_t y[64];
} mlp_run;

/* Builds the run; returns false on any failure (the error is on ctx). */
static bool mlp_build(mlp_run *r, const ad_allocator *al, nn_optimizer_kind kind) {
  memset(r, 0, sizeof *r);
  r->ctx = ad_ctx_new(al);
  if (!r->ctx) return false;
  ad_rng_seed(&r->rng, 3);
  for (int i = 0; i < 64 * 20; i++) r->x[i] = (float)ad_rng_normal(&r->rng);
  for (int i = 0; i < 64; i++) r->y[i] = i % 4;
  r->model = nn_sequential(r->ctx);
  nn_sequential_add(r->model, nn_linear(r->ctx, 20, 32, NN_INIT_KAIMING_UNIFORM, &r->rng));
  nn_sequential_add(r->model, nn_relu(r->ctx));
  nn_sequential_add(r->model, nn_dropout(r->ctx, 0.1, &r->rng));
  nn_sequential_add(r->model, nn_linear(r->ctx, 32, 4, NN_INIT_KAIMING_UNIFORM, &r->rng));
  r->params = nn_tensor_list_new(r->ctx);
  if (!r->params || nn_layer_collect_params(r->model, NULL, r->params) != AD_OK) return false;
  nn_optim_config config = kind == NN_OPTIM_SGD ? nn_sgd_config(0.05) : nn_adam_config(0.01);
  config.momentum = kind == NN_OPTIM_SGD ? 0.9 : 0;
  r->opt = nn_optimizer_new(r->ctx, r->params, &config);
  r->batcher = nn_batcher_new(r->ctx, 64, 16, false);
  return r->opt && r->batcher && ad_errcode(r->ctx) == AD_OK;
}

/* One training step on batch number batch; returns false on failure. */
static bool mlp_step(mlp_run *r, int64_t batch) {
  ad_ctx *ctx = r->ctx;
  if (batch == 0) nn_batcher_shuffle(r->batcher, &r->rng);
  const int64_t *idx;
  int64_t n = nn_batcher_batch(r->batcher, batch, &idx);
  ad_ctx_reset(ctx);
  ad_tensor *x = ad_zeros(ctx, AD_F32, 2, (const int64_t[]){n, 20});
  ad_tensor *y = ad_zeros(ctx, AD_I64, 1, &n);
  if (!x || !y) return false;
  for (int64_t i = 0; i < n; i++) {
    memcpy(ad_data_f32_mut(x) + 20 * i, r->x + 20 * idx[i], 20 * sizeof(float));
    ad_data_i64_mut(y)[i] = r->y[idx[i]];
  }
  ad_tensor *l = nn_cross_entropy_loss(ctx, nn_forward(ctx, r->model, x), y, AD_REDUCE_MEAN);
  if (!l) return false;
  nn_optimizer_zero_grad(r->opt);
  double norm;
  return ad_backward(ctx, l, NULL) == AD_OK && nn_clip_grad_norm(r->params, 5, &norm) == AD_OK &&
         nn_optimizer_step(r->opt) == AD_OK;
}

static void mlp_free(mlp_run *r) {
  nn_batcher_free(r->batcher);
  nn_optimizer_free(r->opt);
  nn_tensor_list_free(r->params);
  nn_layer_free(r->model);
  ad_ctx_free(r->ctx);
}

START_TEST(test_steady_step_allocates_nothing) {
  const nn_optimizer_kind kinds[] = {NN_OPTIM_SGD, NN_OPTIM_ADAM};
  counting c = {.fail_after = UINT64_MAX};
  ad_allocator al = {counting_alloc, counting_free, &c};
  mlp_run r;
  ck_assert_msg(mlp_build(&r, &al, kinds[_i]), "%s", ad_errmsg(r.ctx));
  /* The first steps size the arena and create the gradients. */
  for (int step = 0; step < 8; step++) ck_assert_msg(mlp_step(&r, step % 4), "%s", ad_errmsg(r.ctx));
  uint64_t before = c.allocations;
  for (int step = 0; step < 40; step++) ck_assert(mlp_step(&r, step % 4));
  ck_assert_uint_eq(c.allocations, before);
  mlp_free(&r);
  ck_assert_uint_eq(c.live, 0);
}
END_TEST

/* Failing every allocation from the n-th on is handled cleanly for every n:
   no crash, AD_ERR_MEMORY on the context when a call failed, and no memory
   left behind. A run may still succeed when the failed allocation was
   optional (ad_ctx_reset merging arena chunks). */
START_TEST(test_allocation_failures_are_clean) {
  uint64_t total;
  {
    counting c = {.fail_after = UINT64_MAX};
    ad_allocator al = {counting_alloc, counting_free, &c};
    mlp_run r;
    ck_assert(mlp_build(&r, &al, NN_OPTIM_ADAM));
    for (int step = 0; step < 4; step++) ck_assert(mlp_step(&r, step));
    mlp_free(&r);
    total = c.allocations;
  }
  ck_assert_uint_gt(total, 20);
  uint64_t failures = 0;
  for (uint64_t n = 0; n < total; n++) {
    counting c = {.fail_after = n};
    ad_allocator al = {counting_alloc, counting_free, &c};
    mlp_run r;
    bool ok = mlp_build(&r, &al, NN_OPTIM_ADAM);
    for (int step = 0; ok && step < 4; step++) ok = mlp_step(&r, step);
    if (!ok && r.ctx)
      ck_assert_msg(ad_errcode(r.ctx) == AD_ERR_MEMORY, "allocation %llu: %s",
                    (unsigned long long)n, ad_errmsg(r.ctx));
    failures += !ok;
    mlp_free(&r);
    ck_assert_msg(c.live == 0, "failing allocation %llu leaked %zu bytes",
                  (unsigned long long)n, c.live);
  }
  ck_assert_uint_ge(failures, total - 2);
}
END_TEST

static Suite *train_suite(void) {
  Suite *s = suite_create("nn_train");
  TCase *tc = tcase_create("batches");
  tcase_add_test(tc, test_batcher_split);
  tcase_add_test(tc, test_batcher_shuffle_is_fisher_yates);
  tcase_add_test(tc, test_batcher_shuffle_uniform);
  suite_add_tcase(s, tc);
  tc = tcase_create("evaluation");
  tcase_add_test(tc, test_evaluate_loss_and_accuracy);
  tcase_add_test(tc, test_count_correct);
  tcase_add_test(tc, test_count_correct_rejects_bad_targets);
  suite_add_tcase(s, tc);
  tc = tcase_create("progress");
  tcase_add_test(tc, test_progress_bar_style);
  tcase_add_test(tc, test_progress_line_style);
  suite_add_tcase(s, tc);
  tc = tcase_create("training");
  tcase_add_test(tc, test_xor_reaches_low_loss);
  suite_add_tcase(s, tc);
  tc = tcase_create("allocations");
  tcase_add_loop_test(tc, test_steady_step_allocates_nothing, 0, 2);
  tcase_add_test(tc, test_allocation_failures_are_clean);
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(train_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
