/* The backward trace of the 2-2-1 example network against a hand calculation. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "inspect_test_util.h"
#include "tiny_network.h"

#define TOLERANCE 1e-12
#define MAX_STEPS 8

/* What the trace reported for one entry, copied out of the callback. */
typedef struct recorded_step {
  char op_name[32];
  const ad_tensor *output;
  double upstream[4];
  int ninputs;
  const ad_tensor *inputs[3];
  bool has_grad[3];
  double grads[3][4];
} recorded_step;

typedef struct recording {
  recorded_step steps[MAX_STEPS];
  int count;
} recording;

static void copy_values(const ad_tensor *t, double *dst) {
  ck_assert_int_le(ad_numel(t), 4);
  for (int64_t i = 0; i < ad_numel(t); i++) dst[i] = ad_data_f64(t)[i];
}

static void record_step(void *user, const ad_trace_step *step) {
  recording *r = user;
  ck_assert_int_lt(r->count, MAX_STEPS);
  recorded_step *s = &r->steps[r->count++];
  snprintf(s->op_name, sizeof s->op_name, "%s", step->op_name);
  s->output = step->output;
  copy_values(step->upstream, s->upstream);
  s->ninputs = step->ninputs;
  ck_assert_int_le(step->ninputs, 3);
  for (int i = 0; i < step->ninputs; i++) {
    s->inputs[i] = step->inputs[i];
    s->has_grad[i] = step->input_grads[i] != NULL;
    if (s->has_grad[i]) copy_values(step->input_grads[i], s->grads[i]);
  }
}

/* The forward and backward pass of the 2-2-1 network, written out with the
   chain rule. */
typedef struct hand_gradients {
  double h[2], y;
  double dy, dh[2], dz1[2], dw2[2], db2, dw1[4], db1[2];
} hand_gradients;

static hand_gradients by_hand(void) {
  hand_gradients g;
  double z1[2];
  for (int j = 0; j < 2; j++) {
    z1[j] = tiny_w1[2 * j] * tiny_x[0] + tiny_w1[2 * j + 1] * tiny_x[1] + tiny_b1[j];
    g.h[j] = 1 / (1 + exp(-z1[j]));
  }
  g.y = tiny_w2[0] * g.h[0] + tiny_w2[1] * g.h[1] + tiny_b2[0];
  g.dy = 2 * (g.y - tiny_target[0]); /* d/dy of (y - t)^2 */
  g.db2 = g.dy;
  for (int j = 0; j < 2; j++) {
    g.dw2[j] = g.dy * g.h[j];
    g.dh[j] = g.dy * tiny_w2[j];
    g.dz1[j] = g.dh[j] * g.h[j] * (1 - g.h[j]); /* sigmoid' = h (1 - h) */
    g.db1[j] = g.dz1[j];
    for (int k = 0; k < 2; k++) g.dw1[2 * j + k] = g.dz1[j] * tiny_x[k];
  }
  return g;
}

static void run_traced(ad_ctx *ctx, tiny_network *net, recording *r) {
  ck_assert_int_eq(tiny_network_build(ctx, net), AD_OK);
  r->count = 0;
  ck_assert_int_eq(ad_set_backward_trace(ctx, record_step, r), AD_OK);
  ck_assert_int_eq(ad_backward(ctx, net->loss, NULL), AD_OK);
  ck_assert_int_eq(ad_set_backward_trace(ctx, NULL, NULL), AD_OK);
}

START_TEST(test_step_order) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  recording r;
  run_traced(ctx, &net, &r);
  ck_assert_int_eq(r.count, 4);
  ck_assert_str_eq(r.steps[0].op_name, "mse");
  ck_assert_ptr_eq(r.steps[0].output, net.loss);
  ck_assert_str_eq(r.steps[1].op_name, "linear");
  ck_assert_ptr_eq(r.steps[1].output, net.y);
  ck_assert_str_eq(r.steps[2].op_name, "sigmoid");
  ck_assert_ptr_eq(r.steps[2].output, net.h);
  ck_assert_str_eq(r.steps[3].op_name, "linear");
  ck_assert_ptr_eq(r.steps[3].output, net.z1);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_loss_step) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  recording r;
  run_traced(ctx, &net, &r);
  hand_gradients g = by_hand();
  const recorded_step *s = &r.steps[0];
  ck_assert_double_eq_tol(s->upstream[0], 1, TOLERANCE);
  ck_assert_int_eq(s->ninputs, 2);
  ck_assert(s->has_grad[0]);
  ck_assert(!s->has_grad[1]);
  ck_assert_double_eq_tol(s->grads[0][0], g.dy, TOLERANCE);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_output_layer_step) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  recording r;
  run_traced(ctx, &net, &r);
  hand_gradients g = by_hand();
  const recorded_step *s = &r.steps[1];
  ck_assert_double_eq_tol(s->upstream[0], g.dy, TOLERANCE);
  ck_assert_ptr_eq(s->inputs[0], net.h);
  ck_assert_ptr_eq(s->inputs[1], net.w2);
  ck_assert_ptr_eq(s->inputs[2], net.b2);
  for (int j = 0; j < 2; j++) {
    ck_assert_double_eq_tol(s->grads[0][j], g.dh[j], TOLERANCE);
    ck_assert_double_eq_tol(s->grads[1][j], g.dw2[j], TOLERANCE);
  }
  ck_assert_double_eq_tol(s->grads[2][0], g.db2, TOLERANCE);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_sigmoid_step) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  recording r;
  run_traced(ctx, &net, &r);
  hand_gradients g = by_hand();
  const recorded_step *s = &r.steps[2];
  for (int j = 0; j < 2; j++) {
    ck_assert_double_eq_tol(s->upstream[j], g.dh[j], TOLERANCE);
    ck_assert_double_eq_tol(s->grads[0][j], g.dz1[j], TOLERANCE);
  }
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_hidden_layer_step) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  recording r;
  run_traced(ctx, &net, &r);
  hand_gradients g = by_hand();
  const recorded_step *s = &r.steps[3];
  ck_assert(!s->has_grad[0]); /* x does not require a gradient */
  ck_assert(s->has_grad[1]);
  ck_assert(s->has_grad[2]);
  for (int j = 0; j < 2; j++) {
    ck_assert_double_eq_tol(s->upstream[j], g.dz1[j], TOLERANCE);
    ck_assert_double_eq_tol(s->grads[2][j], g.db1[j], TOLERANCE);
  }
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(s->grads[1][i], g.dw1[i], TOLERANCE);
  /* The trace reports what ad_backward accumulates. */
  for (int i = 0; i < 4; i++)
    ck_assert_double_eq_tol(ad_data_f64(ad_grad(net.w1))[i], g.dw1[i], TOLERANCE);
  ad_ctx_free(ctx);
}
END_TEST

/* Checks that text contains one line made from format. */
#define assert_line(text, ...)                                                                    \
  do {                                                                                            \
    char expected_line[512];                                                                      \
    snprintf(expected_line, sizeof expected_line, __VA_ARGS__);                                   \
    ck_assert_msg(strstr((text), expected_line) != NULL, "missing line: %s", expected_line);      \
  } while (0)

START_TEST(test_printed_text) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  ck_assert_int_eq(tiny_network_build(ctx, &net), AD_OK);
  text_capture out;
  ck_assert(text_capture_begin(&out));
  ad_trace_printer printer = {.stream = out.stream, .names = &net.names};
  ck_assert_int_eq(ad_set_backward_trace(ctx, ad_trace_print, &printer), AD_OK);
  ck_assert_int_eq(ad_backward(ctx, net.loss, NULL), AD_OK);
  text_capture_end(&out);
  ck_assert_int_eq(printer.status, AD_OK);
  ck_assert_int_eq(printer.steps, 4);
  hand_gradients g = by_hand();
  const char *text = out.text;
  assert_line(text, "step 1: mse -> L []\n");
  assert_line(text, "  received  dL/dL = 1\n  sent      dL/dy = [%.6g]\n", g.dy);
  assert_line(text, "  no gradient for input 1 (target): it does not require one\n");
  assert_line(text, "step 2: linear -> y [1]\n");
  assert_line(text, "            dL/dW2 = [[%.6g, %.6g]]\n", g.dw2[0], g.dw2[1]);
  assert_line(text, "step 3: sigmoid -> h [2]\n  rule      dL/dz1 = dL/dh * h * (1 - h)\n");
  assert_line(text, "  sent      dL/dz1 = [%.6g, %.6g]\n", g.dz1[0], g.dz1[1]);
  /* The rows of a matrix start under each other. */
  assert_line(text, "  sent      dL/dW1 = [[%.6g, %.6g],\n                      [%.6g, %.6g]]\n",
              g.dw1[0], g.dw1[1], g.dw1[2], g.dw1[3]);
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_printer_large_tensor_and_names) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_arange(ctx, AD_F64, 0, 20, 1);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *y = ad_sum_all(ctx, ad_mul_scalar(ctx, x, 2));
  text_capture out;
  ck_assert(text_capture_begin(&out));
  ad_trace_printer printer = {.stream = out.stream, .loss_name = "E"};
  ck_assert_int_eq(ad_set_backward_trace(ctx, ad_trace_print, &printer), AD_OK);
  ck_assert_int_eq(ad_backward(ctx, y, NULL), AD_OK);
  text_capture_end(&out);
  /* 20 elements exceed the default limit of 16: the norm sqrt(20 * 4). */
  assert_line(out.text, "  sent      dE/d(parameter [20])");
  assert_line(out.text, "= [20] tensor, norm %.6g\n", sqrt(80.0));
  assert_line(out.text, "step 2: mul_scalar -> (mul_scalar result) [20]\n");
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_printer_write_failure) {
  FILE *full = open_full_device();
  if (!full) return;
  setvbuf(full, NULL, _IONBF, 0);
  ad_ctx *ctx = ad_ctx_new(NULL);
  tiny_network net;
  ck_assert_int_eq(tiny_network_build(ctx, &net), AD_OK);
  ad_trace_printer printer = {.stream = full};
  ck_assert_int_eq(ad_set_backward_trace(ctx, ad_trace_print, &printer), AD_OK);
  ck_assert_int_eq(ad_backward(ctx, net.loss, NULL), AD_OK);
  ck_assert_int_eq(printer.status, AD_ERR_IO);
  ck_assert_int_eq(printer.steps, 1);
  fclose(full);
  ad_ctx_free(ctx);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"step_order", test_step_order},
    {"loss_step", test_loss_step},
    {"output_layer_step", test_output_layer_step},
    {"sigmoid_step", test_sigmoid_step},
    {"hidden_layer_step", test_hidden_layer_step},
    {"printed_text", test_printed_text},
    {"printer_large_tensor_and_names", test_printer_large_tensor_and_names},
    {"printer_write_failure", test_printer_write_failure},
  };
  return run_test_table("backward_trace", cases, sizeof cases / sizeof cases[0]);
}
