/*
 * backward_steps.c: the reverse sweep of a 2-2-1 network, one operation at
 * a time.
 *
 * Prints the forward values, then every entry of the backward pass with the
 * upstream gradient it received and the gradients it sent, through the
 * trace hook. Then it prints the same gradients computed by hand with the
 * chain rule, so the two can be compared line by line.
 */
#include <math.h>
#include <stdio.h>

#include "autodiff.h"
#include "example_util.h"
#include "tiny_network.h"

static double value_at(const ad_tensor *t, int64_t i) { return ad_data_f64(t)[i]; }

static void print_forward(const tiny_network *net) {
  printf("Forward pass\n");
  printf("  x  = [%g, %g]   target = %g\n", tiny_x[0], tiny_x[1], tiny_target[0]);
  printf("  W1 = [[%g, %g], [%g, %g]]   b1 = [%g, %g]\n", tiny_w1[0], tiny_w1[1], tiny_w1[2],
         tiny_w1[3], tiny_b1[0], tiny_b1[1]);
  printf("  W2 = [[%g, %g]]   b2 = [%g]\n", tiny_w2[0], tiny_w2[1], tiny_b2[0]);
  printf("  z1 = W1 x + b1   = [%.6g, %.6g]\n", value_at(net->z1, 0), value_at(net->z1, 1));
  printf("  h  = sigmoid(z1) = [%.6g, %.6g]\n", value_at(net->h, 0), value_at(net->h, 1));
  printf("  y  = W2 h + b2   = [%.6g]\n", value_at(net->y, 0));
  printf("  L  = (y - target)^2 = %.6g\n\n", value_at(net->loss, 0));
}

/* One line of the hand calculation next to the engine's value. */
static void compare(const char *what, const char *formula, double by_hand, const ad_tensor *grad,
                    int64_t i) {
  double engine = ad_data_f64(grad)[i];
  printf("  %-12s = %-16s = %11.6g   engine %11.6g   difference %.1e\n", what, formula, by_hand,
         engine, fabs(by_hand - engine));
}

static void print_by_hand(const tiny_network *net) {
  const double *h = ad_data_f64(net->h);
  double y = value_at(net->y, 0);
  double dy = 2 * (y - tiny_target[0]);
  double dh[2], dz[2];
  printf("\nThe same gradients by hand (chain rule)\n");
  printf("  dL/dy = 2 (y - target) = %.6g\n", dy);
  for (int j = 0; j < 2; j++) {
    dh[j] = dy * tiny_w2[j];
    dz[j] = dh[j] * h[j] * (1 - h[j]);
    printf("  dL/dh[%d]  = dL/dy W2[0][%d] = %.6g\n", j, j, dh[j]);
    printf("  dL/dz1[%d] = dL/dh[%d] h[%d] (1 - h[%d]) = %.6g\n", j, j, j, j, dz[j]);
  }
  compare("dL/db2[0]", "dL/dy", dy, ad_grad(net->b2), 0);
  for (int j = 0; j < 2; j++) {
    char what[32], formula[64];
    snprintf(what, sizeof what, "dL/dW2[0][%d]", j);
    snprintf(formula, sizeof formula, "dL/dy h[%d]", j);
    compare(what, formula, dy * h[j], ad_grad(net->w2), j);
  }
  for (int j = 0; j < 2; j++) {
    char what[32], formula[64];
    snprintf(what, sizeof what, "dL/db1[%d]", j);
    snprintf(formula, sizeof formula, "dL/dz1[%d]", j);
    compare(what, formula, dz[j], ad_grad(net->b1), j);
    for (int k = 0; k < 2; k++) {
      snprintf(what, sizeof what, "dL/dW1[%d][%d]", j, k);
      snprintf(formula, sizeof formula, "dL/dz1[%d] x[%d]", j, k);
      compare(what, formula, dz[j] * tiny_x[k], ad_grad(net->w1), 2 * j + k);
    }
  }
}

int main(int argc, char **argv) {
  example_options opt = {.out_dir = EXAMPLE_DEFAULT_OUT};
  int code = 0;
  if (!example_parse_args(argc, argv,
                          "Prints the backward pass of a 2-2-1 network step by step.", &opt,
                          &code))
    return code;
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx) return 1;
  tiny_network net;
  if (tiny_network_build(ctx, &net) != AD_OK) {
    fprintf(stderr, "building the network failed: %s\n", ad_errmsg(ctx));
    ad_ctx_free(ctx);
    return 1;
  }
  print_forward(&net);

  printf("Backward pass, newest operation first\n");
  ad_trace_printer printer = {.stream = stdout, .names = &net.names};
  ad_status st = ad_set_backward_trace(ctx, ad_trace_print, &printer);
  if (st == AD_OK) st = ad_backward(ctx, net.loss, NULL);
  ad_set_backward_trace(ctx, NULL, NULL);
  if (st != AD_OK || printer.status != AD_OK) {
    fprintf(stderr, "the backward pass failed: %s\n", ad_errmsg(ctx));
    ad_ctx_free(ctx);
    return 1;
  }
  print_by_hand(&net);
  ad_ctx_free(ctx);
  return 0;
}
