/* Gradient health: per-parameter and per-layer norms of a fixed 2-2-1 network. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "inspect_test_util.h"
#include "nn.h"
#include "nn_monitor.h"

#define TOLERANCE 1e-6 /* float32 parameters */

static const float w1[4] = {0.8f, -0.4f, 0.3f, 0.6f}, b1[2] = {0.1f, -0.2f};
static const float w2[2] = {1.2f, -0.7f}, b2[1] = {0.05f};
static const float x_values[2] = {0.5f, -1.0f}, target_value = 1.0f;

typedef struct fixture {
  ad_ctx *ctx;
  nn_layer *model;
  nn_tensor_list *params;
} fixture;

static void set_param(nn_layer *layer, int index, const float *values) {
  ad_tensor *p = nn_layer_param(layer, index);
  ck_assert_ptr_nonnull(p);
  memcpy(ad_data_f32_mut(p), values, (size_t)ad_numel(p) * sizeof(float));
}

/* Builds Linear(2, 2), Sigmoid, Linear(2, 1) with fixed weights and runs one
   forward and backward pass of the squared error. */
static void fixture_setup(fixture *f, bool backward) {
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  f->ctx = ad_ctx_new(NULL);
  f->model = nn_sequential(f->ctx);
  nn_layer *hidden = nn_linear(f->ctx, 2, 2, NN_INIT_XAVIER_UNIFORM, &rng);
  nn_layer *output = nn_linear(f->ctx, 2, 1, NN_INIT_XAVIER_UNIFORM, &rng);
  ck_assert_int_eq(nn_sequential_add(f->model, hidden), AD_OK);
  ck_assert_int_eq(nn_sequential_add(f->model, nn_sigmoid(f->ctx)), AD_OK);
  ck_assert_int_eq(nn_sequential_add(f->model, output), AD_OK);
  set_param(hidden, 0, w1);
  set_param(hidden, 1, b1);
  set_param(output, 0, w2);
  set_param(output, 1, b2);
  f->params = nn_tensor_list_new(f->ctx);
  ck_assert_int_eq(nn_layer_collect_params(f->model, NULL, f->params), AD_OK);
  if (!backward) return;
  const int64_t x_shape[2] = {1, 2}, t_shape[2] = {1, 1};
  ad_tensor *x = ad_from_f32(f->ctx, 2, x_shape, x_values);
  ad_tensor *t = ad_from_f32(f->ctx, 2, t_shape, &target_value);
  ad_tensor *loss = nn_mse_loss(f->ctx, nn_forward(f->ctx, f->model, x), t, AD_REDUCE_MEAN);
  ck_assert_ptr_nonnull(loss);
  ck_assert_int_eq(ad_backward(f->ctx, loss, NULL), AD_OK);
}

static void fixture_teardown(fixture *f) {
  nn_tensor_list_free(f->params);
  nn_layer_free(f->model);
  ad_ctx_free(f->ctx);
}

/* The gradient norms of the four parameters by the chain rule. */
typedef struct hand_norms {
  double w1, b1, w2, b2;
} hand_norms;

static hand_norms by_hand(void) {
  double h[2], dz[2];
  for (int j = 0; j < 2; j++) {
    double z = (double)w1[2 * j] * x_values[0] + (double)w1[2 * j + 1] * x_values[1] + b1[j];
    h[j] = 1 / (1 + exp(-z));
  }
  double y = (double)w2[0] * h[0] + (double)w2[1] * h[1] + b2[0];
  double dy = 2 * (y - target_value);
  for (int j = 0; j < 2; j++) dz[j] = dy * w2[j] * h[j] * (1 - h[j]);
  double x_norm = hypot(x_values[0], x_values[1]);
  hand_norms n;
  n.b2 = fabs(dy);
  n.w2 = fabs(dy) * hypot(h[0], h[1]);
  n.b1 = hypot(dz[0], dz[1]);
  n.w1 = n.b1 * x_norm; /* the norm of an outer product is the product of norms */
  return n;
}

START_TEST(test_parameter_norms) {
  fixture f;
  fixture_setup(&f, true);
  nn_grad_report report;
  ck_assert_int_eq(nn_grad_report_compute(f.params, &report), AD_OK);
  hand_norms n = by_hand();
  ck_assert_int_eq(report.count, 4);
  ck_assert_str_eq(report.stats[0].name, "0.weight");
  ck_assert_str_eq(report.stats[3].name, "2.bias");
  ck_assert(report.stats[0].has_grad);
  ck_assert_double_eq_tol(report.stats[0].norm, n.w1, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[1].norm, n.b1, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[2].norm, n.w2, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[3].norm, n.b2, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[0].rms, n.w1 / 2, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[3].max_abs, n.b2, TOLERANCE);
  ck_assert_double_eq_tol(report.stats[2].param_norm, hypot(1.2, 0.7), TOLERANCE);
  ck_assert_int_eq(report.stats[0].nonfinite, 0);
  nn_grad_report_release(&report);
  fixture_teardown(&f);
}
END_TEST

START_TEST(test_layer_norms) {
  fixture f;
  fixture_setup(&f, true);
  nn_grad_report report;
  ck_assert_int_eq(nn_grad_report_compute(f.params, &report), AD_OK);
  hand_norms n = by_hand();
  ck_assert_int_eq(report.layer_count, 2);
  ck_assert_str_eq(report.layers[0].name, "0");
  ck_assert_str_eq(report.layers[1].name, "2");
  ck_assert_int_eq(report.layers[1].first_param, 2);
  ck_assert_int_eq(report.layers[1].param_count, 2);
  ck_assert_int_eq(report.layers[0].numel, 6);
  ck_assert_double_eq_tol(report.layers[0].norm, hypot(n.w1, n.b1), TOLERANCE);
  ck_assert_double_eq_tol(report.layers[1].norm, hypot(n.w2, n.b2), TOLERANCE);
  double global = sqrt(n.w1 * n.w1 + n.b1 * n.b1 + n.w2 * n.w2 + n.b2 * n.b2);
  ck_assert_double_eq_tol(report.global_norm, global, TOLERANCE);
  ck_assert_double_eq_tol(nn_grad_global_norm(f.params), global, TOLERANCE);
  double clip_norm = 0;
  ck_assert_int_eq(nn_clip_grad_norm(f.params, 1e9, &clip_norm), AD_OK);
  ck_assert_double_eq_tol(report.global_norm, clip_norm, TOLERANCE);
  nn_grad_report_release(&report);
  fixture_teardown(&f);
}
END_TEST

START_TEST(test_without_gradients) {
  fixture f;
  fixture_setup(&f, false);
  nn_grad_report report;
  ck_assert_int_eq(nn_grad_report_compute(f.params, &report), AD_OK);
  ck_assert(!report.stats[0].has_grad);
  ck_assert_double_eq(report.stats[0].norm, 0);
  ck_assert_double_eq(report.global_norm, 0);
  ck_assert_double_eq(nn_grad_global_norm(f.params), 0);
  text_capture out;
  ck_assert(text_capture_begin(&out));
  ck_assert_int_eq(nn_grad_report_print(&report, out.stream), AD_OK);
  text_capture_end(&out);
  ck_assert_int_eq(count_occurrences(out.text, "(no gradient)"), 4);
  text_capture_free(&out);
  nn_grad_report_release(&report);
  fixture_teardown(&f);
}
END_TEST

START_TEST(test_nonfinite_gradient) {
  fixture f;
  fixture_setup(&f, true);
  ad_tensor *grad = ad_grad(f.params->items[1].tensor);
  ad_data_f32_mut(grad)[0] = NAN;
  nn_grad_report report;
  ck_assert_int_eq(nn_grad_report_compute(f.params, &report), AD_OK);
  ck_assert_int_eq(report.stats[1].nonfinite, 1);
  ck_assert(isnan(report.stats[1].norm));
  ck_assert(isnan(report.stats[1].max_abs));
  ck_assert_int_eq(report.layers[0].nonfinite, 1);
  ck_assert_int_eq(report.nonfinite, 1);
  ck_assert(isnan(report.global_norm));
  text_capture out;
  ck_assert(text_capture_begin(&out));
  ck_assert_int_eq(nn_grad_report_print(&report, out.stream), AD_OK);
  text_capture_end(&out);
  ck_assert_ptr_nonnull(strstr(out.text, " 1 NaN or inf\n"));
  ck_assert_ptr_nonnull(strstr(out.text, "with NaN or inf elements"));
  text_capture_free(&out);
  nn_grad_report_release(&report);
  fixture_teardown(&f);
}
END_TEST

START_TEST(test_printed_table) {
  fixture f;
  fixture_setup(&f, true);
  nn_grad_report report;
  ck_assert_int_eq(nn_grad_report_compute(f.params, &report), AD_OK);
  text_capture out;
  ck_assert(text_capture_begin(&out));
  ck_assert_int_eq(nn_grad_report_print(&report, out.stream), AD_OK);
  text_capture_end(&out);
  ck_assert_int_eq(count_occurrences(out.text, "\n"), 1 + 4 + 1);
  ck_assert_ptr_nonnull(strstr(out.text, "\n0.weight "));
  ck_assert_ptr_nonnull(strstr(out.text, "\n2.bias "));
  char expected[64];
  snprintf(expected, sizeof expected, "global gradient norm %.6g over 4 parameters\n",
           report.global_norm);
  ck_assert_ptr_nonnull(strstr(out.text, expected));
  text_capture_free(&out);
  FILE *full = open_full_device();
  if (full) {
    setvbuf(full, NULL, _IONBF, 0);
    ck_assert_int_eq(nn_grad_report_print(&report, full), AD_ERR_IO);
    fclose(full);
  }
  nn_grad_report_release(&report);
  fixture_teardown(&f);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"parameter_norms", test_parameter_norms},
    {"layer_norms", test_layer_norms},
    {"without_gradients", test_without_gradients},
    {"nonfinite_gradient", test_nonfinite_gradient},
    {"printed_table", test_printed_table},
  };
  return run_test_table("grad_report", cases, sizeof cases / sizeof cases[0]);
}
