/* Optimizers against torch.optim, gradient clipping and learning-rate
   schedules. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "nn.h"
#include "optim_reference.h"

enum { CASE_COUNT = sizeof optim_ref_cases / sizeof optim_ref_cases[0] };

/* A persistent float32 parameter holding values, in a one-entry list. */
static ad_tensor *make_param(ad_ctx *ctx, int64_t n, const float *values, nn_tensor_list *list,
                             const char *name) {
  ad_tensor *p = ad_persist(ad_from_f32(ctx, 1, &n, values));
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(ad_set_requires_grad(p, true), AD_OK);
  ck_assert_int_eq(nn_tensor_list_add(list, name, p), AD_OK);
  return p;
}

/* Backward of sum((w x - y)^2), the problem of gen_optim_reference.py. */
static void reference_backward(ad_ctx *ctx, ad_tensor *w) {
  ad_ctx_reset(ctx);
  ad_tensor *x = ad_from_f32(ctx, 1, (const int64_t[]){OPTIM_REF_N}, optim_ref_x);
  ad_tensor *y = ad_from_f32(ctx, 1, (const int64_t[]){OPTIM_REF_N}, optim_ref_y);
  ad_tensor *l = nn_mse_loss(ctx, ad_mul(ctx, w, x), y, AD_REDUCE_SUM);
  ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
}

START_TEST(test_optimizer_matches_pytorch) {
  const optim_ref_case *c = &optim_ref_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  ad_tensor *w = make_param(ctx, OPTIM_REF_N, optim_ref_w0, list, "w");
  nn_optimizer *opt = nn_optimizer_new(ctx, list, &c->config);
  ck_assert_msg(opt != NULL, "%s: %s", c->name, ad_errmsg(ctx));
  for (int step = 0; step < OPTIM_REF_STEPS; step++) {
    nn_optimizer_zero_grad(opt);
    reference_backward(ctx, w);
    ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
    for (int i = 0; i < OPTIM_REF_N; i++) {
      double got = ad_data_f32(w)[i], expected = c->after[step][i];
      ck_assert_msg(fabs(got - expected) <= 2e-6 * fmax(1, fabs(expected)),
                    "%s step %d element %d: %.9g, PyTorch %.9g", c->name, step + 1, i, got,
                    expected);
    }
  }
  ck_assert_int_eq(nn_optimizer_steps(opt), OPTIM_REF_STEPS);
  nn_optimizer_free(opt);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

/* The same updates on float64 parameters agree with the float32 reference
   to float32 precision. */
START_TEST(test_optimizer_float64_params) {
  const optim_ref_case *c = &optim_ref_cases[_i];
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  double w0[OPTIM_REF_N];
  for (int i = 0; i < OPTIM_REF_N; i++) w0[i] = optim_ref_w0[i];
  ad_tensor *w = ad_persist(ad_from_f64(ctx, 1, (const int64_t[]){OPTIM_REF_N}, w0));
  ck_assert_int_eq(ad_set_requires_grad(w, true), AD_OK);
  ck_assert_int_eq(nn_tensor_list_add(list, "w", w), AD_OK);
  nn_optimizer *opt = nn_optimizer_new(ctx, list, &c->config);
  ck_assert_ptr_nonnull(opt);
  for (int step = 0; step < OPTIM_REF_STEPS; step++) {
    ad_ctx_reset(ctx);
    nn_optimizer_zero_grad(opt);
    ad_tensor *x = ad_cast(ctx, ad_from_f32(ctx, 1, (const int64_t[]){OPTIM_REF_N}, optim_ref_x),
                           AD_F64);
    ad_tensor *y = ad_cast(ctx, ad_from_f32(ctx, 1, (const int64_t[]){OPTIM_REF_N}, optim_ref_y),
                           AD_F64);
    ad_tensor *l = nn_mse_loss(ctx, ad_mul(ctx, w, x), y, AD_REDUCE_SUM);
    ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
    ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
  }
  for (int i = 0; i < OPTIM_REF_N; i++) {
    double expected = c->after[OPTIM_REF_STEPS - 1][i];
    ck_assert_msg(fabs(ad_data_f64(w)[i] - expected) <= 1e-5 * fmax(1, fabs(expected)),
                  "%s element %d: %.9g, PyTorch (float32) %.9g", c->name, i, ad_data_f64(w)[i],
                  expected);
  }
  nn_optimizer_free(opt);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_optimizer_skips_params_without_grad) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float one[] = {1};
  ad_tensor *used = make_param(ctx, 1, one, list, "used");
  ad_tensor *unused = make_param(ctx, 1, one, list, "unused");
  nn_optim_config config = nn_adam_config(0.1);
  nn_optimizer *opt = nn_optimizer_new(ctx, list, &config);
  ad_tensor *l = ad_mul_scalar(ctx, used, 3);
  ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
  ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
  /* Adam's first step moves by lr in the direction of -sign(g). */
  ck_assert_float_eq_tol(ad_data_f32(used)[0], 0.9f, 1e-6);
  ck_assert_float_eq(ad_data_f32(unused)[0], 1);
  nn_tensor_list *state = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_optimizer_collect_state(opt, "opt", state), AD_OK);
  ad_tensor *steps = nn_tensor_list_find(state, "opt.step");
  ck_assert_ptr_nonnull(steps);
  ck_assert_int_eq(ad_data_i64(steps)[0], 1);
  ck_assert_int_eq(ad_data_i64(steps)[1], 0);
  nn_tensor_list_free(state);
  nn_optimizer_free(opt);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_optimizer_state_names) {
  const nn_optim_config configs[] = {
      nn_sgd_config(0.1), {.kind = NN_OPTIM_SGD, .lr = 0.1, .momentum = 0.9},
      nn_adam_config(0.1), nn_adamw_config(0.1),
      {.kind = NN_OPTIM_RMSPROP, .lr = 0.1, .alpha = 0.9, .momentum = 0.5, .centered = true}};
  const char *expected[][4] = {
      {"step", NULL},
      {"step", "w.momentum_buffer", NULL},
      {"step", "w.exp_avg", "w.exp_avg_sq", NULL},
      {"step", "w.exp_avg", "w.exp_avg_sq", NULL},
      {"step", "w.momentum_buffer", "w.square_avg", "w.grad_avg"}};
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float v[] = {1, 2};
  make_param(ctx, 2, v, list, "w");
  for (int c = 0; c < 5; c++) {
    nn_optimizer *opt = nn_optimizer_new(ctx, list, &configs[c]);
    nn_tensor_list *state = nn_tensor_list_new(ctx);
    ck_assert_int_eq(nn_optimizer_collect_state(opt, NULL, state), AD_OK);
    int n = 0;
    while (n < 4 && expected[c][n]) n++;
    ck_assert_int_eq(state->count, n);
    for (int i = 0; i < n; i++) ck_assert_str_eq(state->items[i].name, expected[c][i]);
    nn_tensor_list_free(state);
    nn_optimizer_free(opt);
  }
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_optimizer_rejects_bad_config) {
  nn_optim_config configs[] = {nn_sgd_config(-1), nn_sgd_config(0.1), nn_adam_config(0.1),
                               nn_rmsprop_config(0.1), nn_sgd_config(NAN)};
  configs[1].nesterov = true; /* without momentum */
  configs[2].beta2 = 1;
  configs[3].alpha = -0.5;
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float v[] = {1};
  make_param(ctx, 1, v, list, "w");
  for (int c = 0; c < 5; c++) {
    ck_assert_ptr_null(nn_optimizer_new(ctx, list, &configs[c]));
    ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_optimizer_new"));
    ad_clear_error(ctx);
  }
  /* An arena tensor is no parameter. */
  nn_tensor_list *arena = nn_tensor_list_new(ctx);
  ck_assert_int_eq(nn_tensor_list_add(arena, "a", ad_ones(ctx, AD_F32, 0, NULL)), AD_OK);
  nn_optim_config ok = nn_sgd_config(0.1);
  ck_assert_ptr_null(nn_optimizer_new(ctx, arena, &ok));
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_ARGUMENT);
  nn_tensor_list_free(arena);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

/* nn_optimizer_set_lr applies the rule of nn_optimizer_new, so a schedule
   that produces NaN or a negative rate cannot reach the weights. */
START_TEST(test_optimizer_set_lr_validates) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float one[] = {1};
  ad_tensor *w = make_param(ctx, 1, one, list, "w");
  nn_optim_config config = nn_sgd_config(0.1);
  nn_optimizer *opt = nn_optimizer_new(ctx, list, &config);
  ck_assert_ptr_nonnull(opt);
  const double invalid[] = {NAN, -5, INFINITY, -INFINITY};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(nn_optimizer_set_lr(opt, invalid[i]), AD_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_optimizer_set_lr"));
    ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "must be finite and >= 0"));
    ck_assert_double_eq(nn_optimizer_lr(opt), 0.1);
    ad_clear_error(ctx);
  }
  /* The step after a rejected rate uses the previous one: 1 - 0.1 * 3. */
  ck_assert_int_eq(ad_backward(ctx, ad_mul_scalar(ctx, w, 3), NULL), AD_OK);
  ck_assert_int_eq(nn_optimizer_step(opt), AD_OK);
  ck_assert_float_eq_tol(ad_data_f32(w)[0], 0.7f, 1e-6);
  ck_assert_int_eq(nn_optimizer_set_lr(opt, 0), AD_OK);
  ck_assert_double_eq(nn_optimizer_lr(opt), 0);
  ck_assert_int_eq(nn_optimizer_set_lr(NULL, 0.1), AD_ERR_ARGUMENT);
  nn_optimizer_free(opt);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_optimizer_kind_names) {
  const char *names[] = {"sgd", "adam", "adamw", "rmsprop"};
  for (int i = 0; i < 4; i++) {
    nn_optimizer_kind kind;
    ck_assert(nn_optimizer_kind_parse(names[i], &kind));
    ck_assert_int_eq(kind, i);
    ck_assert_str_eq(nn_optimizer_kind_name(kind), names[i]);
  }
  nn_optimizer_kind kind;
  ck_assert(!nn_optimizer_kind_parse("lbfgs", &kind));
}
END_TEST

/* ---- Clipping -------------------------------------------------------- */

/* Gives a = [3, 4] and b = [-12] those gradients. */
static void set_clip_grads(ad_ctx *ctx, ad_tensor *a, ad_tensor *b) {
  ad_ctx_reset(ctx);
  ad_zero_grad(a);
  ad_zero_grad(b);
  const float ca[] = {3, 4}, cb[] = {-12};
  ad_tensor *l = ad_add(ctx, ad_sum_all(ctx, ad_mul(ctx, a, ad_from_f32(ctx, 1, (const int64_t[]){2}, ca))),
                        ad_sum_all(ctx, ad_mul(ctx, b, ad_from_f32(ctx, 1, (const int64_t[]){1}, cb))));
  ck_assert_int_eq(ad_backward(ctx, l, NULL), AD_OK);
}

START_TEST(test_clip_grad_norm) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float zeros[] = {0, 0};
  ad_tensor *a = make_param(ctx, 2, zeros, list, "a"), *b = make_param(ctx, 1, zeros, list, "b");
  /* The global norm is sqrt(9 + 16 + 144) = 13; a max of 6.5 halves it. */
  set_clip_grads(ctx, a, b);
  double norm;
  ck_assert_int_eq(nn_clip_grad_norm(list, 6.5, &norm), AD_OK);
  ck_assert_double_eq_tol(norm, 13, 1e-12);
  double factor = 6.5 / (13 + 1e-6);
  ck_assert_float_eq_tol(ad_data_f32(ad_grad(a))[0], 3 * factor, 1e-6);
  ck_assert_float_eq_tol(ad_data_f32(ad_grad(a))[1], 4 * factor, 1e-6);
  ck_assert_float_eq_tol(ad_data_f32(ad_grad(b))[0], -12 * factor, 1e-6);
  /* A larger max leaves the gradients alone. */
  set_clip_grads(ctx, a, b);
  ck_assert_int_eq(nn_clip_grad_norm(list, 20, &norm), AD_OK);
  ck_assert_float_eq(ad_data_f32(ad_grad(a))[1], 4);
  ck_assert_float_eq(ad_data_f32(ad_grad(b))[0], -12);
  ck_assert_int_eq(nn_clip_grad_norm(list, -1, NULL), AD_ERR_ARGUMENT);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_clip_grad_value) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  nn_tensor_list *list = nn_tensor_list_new(ctx);
  const float zeros[] = {0, 0};
  ad_tensor *a = make_param(ctx, 2, zeros, list, "a"), *b = make_param(ctx, 1, zeros, list, "b");
  set_clip_grads(ctx, a, b);
  ck_assert_int_eq(nn_clip_grad_value(list, 3.5), AD_OK);
  ck_assert_float_eq(ad_data_f32(ad_grad(a))[0], 3);
  ck_assert_float_eq(ad_data_f32(ad_grad(a))[1], 3.5f);
  ck_assert_float_eq(ad_data_f32(ad_grad(b))[0], -3.5f);
  ck_assert_int_eq(nn_clip_grad_value(list, NAN), AD_ERR_ARGUMENT);
  nn_tensor_list_free(list);
  ad_ctx_free(ctx);
}
END_TEST

/* ---- Schedules ------------------------------------------------------- */

typedef struct schedule_case {
  nn_schedule schedule;
  int64_t t;
  double lr;
} schedule_case;

static const double pi = 3.14159265358979323846;

START_TEST(test_schedule_values) {
  const nn_schedule constant = {.kind = NN_SCHEDULE_CONSTANT, .lr = 0.1, .warmup_steps = 4};
  const nn_schedule step = {.kind = NN_SCHEDULE_STEP, .lr = 1, .step_size = 10, .gamma = 0.5};
  const nn_schedule step_warm = {.kind = NN_SCHEDULE_STEP, .lr = 1, .step_size = 10,
                                 .gamma = 0.5, .warmup_steps = 5};
  const nn_schedule cosine = {.kind = NN_SCHEDULE_COSINE, .lr = 1, .min_lr = 0.1,
                              .total_steps = 10};
  const nn_schedule cosine_warm = {.kind = NN_SCHEDULE_COSINE, .lr = 1, .warmup_steps = 2,
                                   .total_steps = 12};
  const schedule_case cases[] = {
      {constant, 0, 0.02}, {constant, 3, 0.08}, {constant, 4, 0.1}, {constant, 1000, 0.1},
      {step, 0, 1}, {step, 9, 1}, {step, 10, 0.5}, {step, 25, 0.25},
      {step_warm, 0, 1.0 / 6}, {step_warm, 5, 1}, {step_warm, 14, 1}, {step_warm, 15, 0.5},
      {cosine, 0, 1}, {cosine, 5, 0.55}, {cosine, 2, 0.1 + 0.9 * (1 + cos(0.2 * pi)) / 2},
      {cosine, 10, 0.1}, {cosine, 50, 0.1},
      {cosine_warm, 0, 1.0 / 3}, {cosine_warm, 1, 2.0 / 3}, {cosine_warm, 2, 1},
      {cosine_warm, 7, 0.5}, {cosine_warm, 12, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double lr = nn_schedule_lr(&cases[i].schedule, cases[i].t);
    ck_assert_msg(fabs(lr - cases[i].lr) < 1e-12, "case %zu (kind %d, t %lld): %.15g, expected "
                  "%.15g", i, cases[i].schedule.kind, (long long)cases[i].t, lr, cases[i].lr);
  }
}
END_TEST

START_TEST(test_schedule_invalid) {
  const nn_schedule bad[] = {
      {.kind = NN_SCHEDULE_STEP, .lr = 1, .step_size = 0, .gamma = 0.5},
      {.kind = NN_SCHEDULE_COSINE, .lr = 1, .warmup_steps = 10, .total_steps = 10},
      {.kind = NN_SCHEDULE_CONSTANT, .lr = -1},
      {.kind = NN_SCHEDULE_CONSTANT, .lr = 1, .warmup_steps = -2},
      {.kind = (nn_schedule_kind)9, .lr = 1},
  };
  ad_ctx *ctx = ad_ctx_new(NULL);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert(isnan(nn_schedule_lr(&bad[i], 0)));
    ck_assert_int_eq(nn_schedule_check(ctx, &bad[i]), AD_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "nn_schedule_check"));
    ad_clear_error(ctx);
  }
  const nn_schedule fine = {.kind = NN_SCHEDULE_CONSTANT, .lr = 1};
  ck_assert(isnan(nn_schedule_lr(&fine, -1)));
  ck_assert_int_eq(nn_schedule_check(ctx, &fine), AD_OK);
  ad_ctx_free(ctx);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("nn_optim");
  TCase *tc = tcase_create("optimizers");
  tcase_add_loop_test(tc, test_optimizer_matches_pytorch, 0, CASE_COUNT);
  tcase_add_loop_test(tc, test_optimizer_float64_params, 0, CASE_COUNT);
  tcase_add_test(tc, test_optimizer_skips_params_without_grad);
  tcase_add_test(tc, test_optimizer_state_names);
  tcase_add_test(tc, test_optimizer_rejects_bad_config);
  tcase_add_test(tc, test_optimizer_set_lr_validates);
  tcase_add_test(tc, test_optimizer_kind_names);
  suite_add_tcase(s, tc);
  tc = tcase_create("clipping");
  tcase_add_test(tc, test_clip_grad_norm);
  tcase_add_test(tc, test_clip_grad_value);
  suite_add_tcase(s, tc);
  tc = tcase_create("schedules");
  tcase_add_test(tc, test_schedule_values);
  tcase_add_test(tc, test_schedule_invalid);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *runner = srunner_create(optim_suite());
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
