/*
 * exploding_gradients.c: a deep ReLU network with too large initial
 * weights, trained with and without gradient clipping.
 *
 * Every Linear layer of a 12-layer ReLU network starts with 1.4 times the
 * Kaiming weights. So each layer enlarges the activations on the way
 * forward and the gradients on the way back by about 1.4, and the first
 * backward pass has a global gradient norm in the hundreds. Plain SGD takes
 * steps that large and the loss turns to NaN within a few steps; the same
 * run with the global gradient norm clipped to 1 (nn_clip_grad_norm) trains. Writes a table, the gradient
 * report of the first step, and both training logs as CSV and SVG.
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"
#include "nn.h"
#include "nn_monitor.h"
#include "training_util.h"

#define HIDDEN_LAYERS 11
#define WIDTH 64
#define BATCH 64
#define WEIGHT_SCALE 1.4
#define LEARNING_RATE 0.1
#define MAX_NORM 1.0
#define TABLE_EVERY 20

typedef struct run {
  const char *name;
  bool clip;
  nn_train_log *log;
} run;

static bool train(ad_ctx *ctx, nn_image_set *set, long steps, const char *csv_path, run *r,
                  bool print_report) {
  ad_rng rng;
  ad_rng_seed(&rng, 7);
  nn_layer *model = build_mlp(ctx, HIDDEN_LAYERS, WIDTH, ACTIVATION_RELU, WEIGHT_SCALE, &rng);
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  nn_batcher *batcher = training_batcher(ctx, set, BATCH);
  nn_optim_config config = nn_sgd_config(LEARNING_RATE);
  nn_optimizer *opt = NULL;
  if (model && params && batcher && nn_layer_collect_params(model, NULL, params) == AD_OK)
    opt = nn_optimizer_new(ctx, params, &config);
  r->log = opt ? nn_train_log_open(ctx, csv_path) : NULL;
  bool ok = r->log != NULL;

  int64_t batches = ok ? nn_batcher_batches(batcher) : 1;
  for (long step = 0; ok && step < steps; step++) {
    if (step % batches == 0) nn_batcher_shuffle(batcher, &rng);
    step_result result;
    ok = train_forward_backward(ctx, model, params, set, batcher, step % batches, &result) == AD_OK;
    if (ok && step == 0 && print_report) {
      nn_grad_report report;
      ok = nn_grad_report_compute(params, &report) == AD_OK;
      printf("Gradient report after the first backward pass (before any clipping)\n");
      if (ok) ok = nn_grad_report_print(&report, stdout) == AD_OK;
      nn_grad_report_release(&report);
      printf("\n");
    }
    if (ok && r->clip) ok = nn_clip_grad_norm(params, MAX_NORM, NULL) == AD_OK;
    nn_train_record record = {step, step / batches, result.loss, result.accuracy, config.lr,
                              result.grad_norm};
    ok = ok && nn_train_log_append(r->log, &record) == AD_OK && nn_optimizer_step(opt) == AD_OK;
  }
  if (!ok) fprintf(stderr, "training the %s network failed: %s\n", r->name, ad_errmsg(ctx));
  nn_optimizer_free(opt);
  nn_batcher_free(batcher);
  nn_tensor_list_free(params);
  nn_layer_free(model);
  return ok;
}

/* Writes v with %.4g, and NaN as "nan" (printf may write "-nan"). */
static void format_value(char cell[32], double v) {
  if (isnan(v)) snprintf(cell, 32, "nan");
  else snprintf(cell, 32, "%.4g", v);
}

static void print_table(const run *runs) {
  printf("%6s  %12s %14s  %12s %14s\n", "step", "plain loss", "plain |grad|", "clipped loss",
         "clipped |grad|");
  const nn_train_record *a = nn_train_log_records(runs[0].log);
  const nn_train_record *b = nn_train_log_records(runs[1].log);
  int64_t n = nn_train_log_count(runs[0].log);
  for (int64_t i = 0; i < n; i++) {
    if (i % TABLE_EVERY != 0 && i != n - 1) continue;
    char cells[4][32];
    format_value(cells[0], a[i].loss);
    format_value(cells[1], a[i].grad_norm);
    format_value(cells[2], b[i].loss);
    format_value(cells[3], b[i].grad_norm);
    printf("%6lld  %12s %14s  %12s %14s\n", (long long)a[i].step, cells[0], cells[1], cells[2],
           cells[3]);
  }
  printf("(|grad| is the global gradient norm before clipping; clipping scales it to at most "
         "%g)\n",
         MAX_NORM);
}

int main(int argc, char **argv) {
  example_options opt = {.out_dir = EXAMPLE_DEFAULT_OUT, .data_dir = EXAMPLE_DEFAULT_DATA,
                         .steps = 300, .samples = 6000, .min_samples = BATCH};
  int code = 0;
  if (!example_parse_args(argc, argv,
                          "Shows exploding gradients in a deep ReLU network with large initial "
                          "weights, and gradient clipping taming them.",
                          &opt, &code))
    return code;
  if (!example_make_dir(opt.out_dir)) return 1;
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx) return 1;
  nn_image_set set;
  if (!fashion_load(ctx, opt.data_dir, "train", opt.samples, &set)) {
    ad_ctx_free(ctx);
    return 1;
  }
  printf("Training a 12-layer ReLU network with %gx Kaiming weights, SGD at lr %g, for %ld "
         "steps, without and with clipping\n\n",
         WEIGHT_SCALE, LEARNING_RATE, opt.steps);

  run runs[2] = {{.name = "plain SGD", .clip = false}, {.name = "clipped SGD", .clip = true}};
  char csv[2][4096], svg[4096];
  bool ok = example_join(csv[0], sizeof csv[0], opt.out_dir, "exploding_plain.csv") &&
            example_join(csv[1], sizeof csv[1], opt.out_dir, "exploding_clipped.csv") &&
            example_join(svg, sizeof svg, opt.out_dir, "exploding_training.svg");
  for (int k = 0; ok && k < 2; k++) ok = train(ctx, &set, opt.steps, csv[k], &runs[k], k == 0);
  if (ok) {
    print_table(runs);
    const nn_train_log *logs[2] = {runs[0].log, runs[1].log};
    const char *names[2] = {"plain SGD", "clipped to norm 1"};
    ok = nn_train_log_plot(ctx, logs, names, 2, "12 layers, 1.4x weights", svg) == AD_OK;
    if (!ok) fprintf(stderr, "%s\n", ad_errmsg(ctx));
  }
  for (int k = 0; k < 2; k++)
    if (nn_train_log_close(runs[k].log) != AD_OK) ok = false;
  if (ok) printf("\nWrote:\n  %s\n  %s\n  %s\nOutput folder: %s\n", svg, csv[0], csv[1], opt.out_dir);
  nn_image_set_release(&set);
  ad_ctx_free(ctx);
  return ok ? 0 : 1;
}
