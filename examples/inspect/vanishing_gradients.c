/*
 * vanishing_gradients.c: 20-layer networks on Fashion-MNIST, sigmoid
 * against ReLU.
 *
 * Trains two networks of 20 Linear layers (width 64) with the same data,
 * optimizer and seed, one with sigmoid and one with ReLU activations, and
 * records the gradient norm of every layer after the first and the last
 * backward pass. With sigmoid each layer multiplies the gradient by at most
 * sigmoid' = 0.25 times its weights, so the first layers get almost nothing;
 * with ReLU and Kaiming initialisation the norm stays about the same from
 * the last layer to the first. Writes a table, an SVG plot of the norms per
 * layer, and the training logs as CSV and SVG.
 */
#include <math.h>
#include <stdio.h>

#include "example_util.h"
#include "nn.h"
#include "nn_monitor.h"
#include "nn_plot.h"
#include "training_util.h"

#define LINEAR_LAYERS 20
#define WIDTH 64
#define BATCH 64

typedef struct run {
  const char *name;
  activation act;
  double first[LINEAR_LAYERS]; /* layer gradient norms after the first backward pass */
  double last[LINEAR_LAYERS];  /* and after the last one */
  nn_grad_report first_report;
  nn_train_log *log;
} run;

static void copy_layer_norms(const nn_grad_report *report, double *norms) {
  for (int i = 0; i < LINEAR_LAYERS && i < report->layer_count; i++)
    norms[i] = report->layers[i].norm;
}

/* Trains one network for steps steps and fills in r. */
static bool train(ad_ctx *ctx, nn_image_set *set, long steps, const char *csv_path, run *r) {
  ad_rng rng;
  ad_rng_seed(&rng, 42);
  nn_layer *model = build_mlp(ctx, LINEAR_LAYERS - 1, WIDTH, r->act, 1.0, &rng);
  nn_tensor_list *params = nn_tensor_list_new(ctx);
  nn_batcher *batcher = training_batcher(ctx, set, BATCH);
  nn_optim_config config = nn_sgd_config(0.05);
  config.momentum = 0.9;
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
    nn_grad_report report;
    if (ok && (step == 0 || step == steps - 1)) {
      ok = nn_grad_report_compute(params, &report) == AD_OK;
      if (ok) copy_layer_norms(&report, step == 0 ? r->first : r->last);
      if (ok && step == 0) r->first_report = report;
      else if (ok) nn_grad_report_release(&report);
    }
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

static void print_table(const run *runs) {
  printf("\nGradient norm of each Linear layer (weight and bias together)\n");
  printf("%5s  %14s %14s  %14s %14s\n", "layer", "sigmoid first", "sigmoid last", "relu first",
         "relu last");
  for (int i = 0; i < LINEAR_LAYERS; i++)
    printf("%5d  %14.3e %14.3e  %14.3e %14.3e\n", i + 1, runs[0].first[i], runs[0].last[i],
           runs[1].first[i], runs[1].last[i]);
  for (int k = 0; k < 2; k++)
    printf("%s: the first layer gets %.2g times the gradient norm of the last layer\n",
           runs[k].name, runs[k].first[0] / runs[k].first[LINEAR_LAYERS - 1]);
}

static bool plot_layers(ad_ctx *ctx, const run *runs, const char *path) {
  double layer[LINEAR_LAYERS];
  for (int i = 0; i < LINEAR_LAYERS; i++) layer[i] = i + 1;
  nn_plot_series series[4] = {
      {.name = "sigmoid, first step", .x = layer, .y = runs[0].first, .count = LINEAR_LAYERS,
       .color = "#d62728", .markers = true},
      {.name = "sigmoid, last step", .x = layer, .y = runs[0].last, .count = LINEAR_LAYERS,
       .color = "#ff9896", .markers = true},
      {.name = "ReLU, first step", .x = layer, .y = runs[1].first, .count = LINEAR_LAYERS,
       .color = "#1f77b4", .markers = true},
      {.name = "ReLU, last step", .x = layer, .y = runs[1].last, .count = LINEAR_LAYERS,
       .color = "#aec7e8", .markers = true},
  };
  nn_plot panel = {.title = "Gradient norm per layer of a 20-layer network",
                   .x_label = "Linear layer (1 = next to the input, 20 = output)",
                   .y_label = "gradient norm (log scale)",
                   .width = 900,
                   .height = 480,
                   .log_y = true,
                   .series_count = 4,
                   .series = series};
  if (nn_plot_save_svg(ctx, &panel, 1, 1, path) != AD_OK) {
    fprintf(stderr, "%s\n", ad_errmsg(ctx));
    return false;
  }
  return true;
}

int main(int argc, char **argv) {
  example_options opt = {.out_dir = EXAMPLE_DEFAULT_OUT, .data_dir = EXAMPLE_DEFAULT_DATA,
                         .steps = 300, .samples = 6000, .min_samples = BATCH};
  int code = 0;
  if (!example_parse_args(argc, argv,
                          "Shows vanishing gradients: a 20-layer sigmoid network against the "
                          "same depth with ReLU on Fashion-MNIST.",
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
  printf("Training two 20-layer networks for %ld steps of %d images (%lld images in all)\n",
         opt.steps, BATCH, (long long)set.count);

  run runs[2] = {{.name = "sigmoid", .act = ACTIVATION_SIGMOID},
                 {.name = "relu", .act = ACTIVATION_RELU}};
  char csv[2][4096], layers_svg[4096], curves_svg[4096];
  bool ok = example_join(csv[0], sizeof csv[0], opt.out_dir, "vanishing_sigmoid.csv") &&
            example_join(csv[1], sizeof csv[1], opt.out_dir, "vanishing_relu.csv") &&
            example_join(layers_svg, sizeof layers_svg, opt.out_dir, "vanishing_layers.svg") &&
            example_join(curves_svg, sizeof curves_svg, opt.out_dir, "vanishing_training.svg");
  for (int k = 0; ok && k < 2; k++) ok = train(ctx, &set, opt.steps, csv[k], &runs[k]);

  if (ok) {
    printf("\nGradient report of the sigmoid network after its first backward pass\n");
    nn_grad_report_print(&runs[0].first_report, stdout);
    print_table(runs);
    const nn_train_log *logs[2] = {runs[0].log, runs[1].log};
    const char *names[2] = {"sigmoid", "ReLU"};
    ok = plot_layers(ctx, runs, layers_svg) &&
         nn_train_log_plot(ctx, logs, names, 2, "20 layers", curves_svg) == AD_OK;
    if (!ok) fprintf(stderr, "%s\n", ad_errmsg(ctx));
  }
  for (int k = 0; k < 2; k++) {
    nn_grad_report_release(&runs[k].first_report);
    if (nn_train_log_close(runs[k].log) != AD_OK) ok = false;
  }
  if (ok)
    printf("\nWrote:\n  %s\n  %s\n  %s\n  %s\nOutput folder: %s\n", layers_svg, curves_svg,
           csv[0], csv[1], opt.out_dir);
  nn_image_set_release(&set);
  ad_ctx_free(ctx);
  return ok ? 0 : 1;
}
