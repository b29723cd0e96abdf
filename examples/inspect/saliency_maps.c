/*
 * saliency_maps.c: which pixels a Fashion-MNIST classifier looks at.
 *
 * Trains a 784-128-10 ReLU network briefly, then for three test images of
 * each class computes the saliency map: the gradient of the true class's
 * logit with respect to the input pixels (nn_saliency). A red pixel raises
 * the class score when it gets brighter, a blue one lowers it. Writes one
 * PNG per image (the image, the signed gradient and its magnitude) and an
 * overview grid of all classes with each class's mean gradient magnitude
 * over 100 test images.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "example_util.h"
#include "nn.h"
#include "nn_image.h"
#include "training_util.h"

#define SIDE 28
#define PIXELS (SIDE * SIDE)
#define HIDDEN 128
#define BATCH 64
#define EXAMPLES_PER_CLASS 3
#define MEAN_SAMPLES_PER_CLASS 100
#define TEST_IMAGES 10000
#define FIRST_LAYER_INIT_SCALE 0.05

static const nn_rgb white = {255, 255, 255}, black = {0, 0, 0}, gray = {110, 110, 110};
static const nn_rgb green = {0, 120, 60}, red = {190, 30, 30};

/* ---- Training ------------------------------------------------------------ */

static nn_layer *train_model(ad_ctx *ctx, nn_image_set *set, long steps) {
  ad_rng rng;
  ad_rng_seed(&rng, 11);
  nn_layer *model = nn_sequential(ctx);
  nn_layer *first = nn_linear(ctx, PIXELS, HIDDEN, NN_INIT_KAIMING_NORMAL, &rng);
  if (first) {
    /* Small initial weights: the random part of the first layer, which
       training never removes, would otherwise cover the saliency maps with
       pixel noise. */
    ad_tensor *w = nn_layer_param(first, 0);
    float *data = ad_data_f32_mut(w);
    for (int64_t i = 0; i < ad_numel(w); i++) data[i] *= FIRST_LAYER_INIT_SCALE;
  }
  nn_sequential_add(model, first);
  nn_sequential_add(model, nn_relu(ctx));
  nn_sequential_add(model, nn_linear(ctx, HIDDEN, FASHION_CLASSES, NN_INIT_XAVIER_NORMAL, &rng));

  nn_tensor_list *params = nn_tensor_list_new(ctx);
  nn_batcher *batcher = training_batcher(ctx, set, BATCH);
  nn_optim_config config = nn_adam_config(1e-3);
  nn_optimizer *opt = NULL;
  if (batcher && ad_errcode(ctx) == AD_OK &&
      nn_layer_collect_params(model, NULL, params) == AD_OK)
    opt = nn_optimizer_new(ctx, params, &config);
  bool ok = opt != NULL;

  int64_t batches = ok ? nn_batcher_batches(batcher) : 1;
  double recent_loss = 0;
  for (long step = 0; ok && step < steps; step++) {
    if (step % batches == 0) nn_batcher_shuffle(batcher, &rng);
    step_result result;
    ok = train_forward_backward(ctx, model, params, set, batcher, step % batches, &result) ==
             AD_OK &&
         nn_optimizer_step(opt) == AD_OK;
    recent_loss = step == 0 ? result.loss : 0.98 * recent_loss + 0.02 * result.loss;
    if (ok && (step + 1) % 250 == 0)
      printf("  step %4ld  training loss %.3f (moving average)\n", step + 1, recent_loss);
  }

  nn_optimizer_free(opt);
  nn_batcher_free(batcher);
  nn_tensor_list_free(params);
  if (!ok) {
    fprintf(stderr, "training failed: %s\n", ad_errmsg(ctx));
    nn_layer_free(model);
    return NULL;
  }
  nn_layer_set_training(model, false);
  return model;
}

/* ---- Choosing and explaining images ----------------------------------------- */

/* What the overview shows of one test image. */
typedef struct explained {
  int64_t index;          /* in the test set */
  int label, predicted;
  float saliency[PIXELS]; /* d logit[label] / d pixel */
} explained;

/* The indices of the first count test images of each class, class-major. */
static bool pick_images(const nn_image_set *test, int per_class, int64_t *indices) {
  int found[FASHION_CLASSES] = {0};
  for (int64_t i = 0; i < test->count; i++) {
    int c = test->labels[i];
    if (found[c] < per_class) indices[c * per_class + found[c]++] = i;
  }
  for (int c = 0; c < FASHION_CLASSES; c++)
    if (found[c] < per_class) {
      fprintf(stderr, "the test set has only %d images of class %d\n", found[c], c);
      return false;
    }
  return true;
}

/* Computes predictions and saliency maps of count test images. */
static bool explain(ad_ctx *ctx, nn_layer *model, nn_image_set *test, const int64_t *indices,
                    int count, explained *out) {
  ad_ctx_reset(ctx);
  ad_tensor *x, *y;
  if (nn_image_set_batch(ctx, test, indices, count, &x, &y) != AD_OK) return false;
  ad_tensor *map = nn_saliency(ctx, model, x, y);
  bool recording = ad_set_grad_enabled(ctx, false);
  ad_tensor *predicted = ad_argmax(ctx, nn_forward(ctx, model, x), 1, false);
  ad_set_grad_enabled(ctx, recording);
  if (!map || !predicted) return false;
  const float *g = ad_data_f32(map);
  for (int i = 0; i < count; i++) {
    out[i].index = indices[i];
    out[i].label = test->labels[indices[i]];
    out[i].predicted = (int)ad_data_i64(predicted)[i];
    memcpy(out[i].saliency, g + (size_t)i * PIXELS, sizeof out[i].saliency);
  }
  return true;
}

static int compare_floats(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* The 99th percentile of |values|, so that one extreme pixel does not wash
   out the rest of the map. */
static double robust_scale(const float *values, int n) {
  float magnitudes[PIXELS];
  for (int i = 0; i < n; i++) magnitudes[i] = fabsf(values[i]);
  qsort(magnitudes, (size_t)n, sizeof magnitudes[0], compare_floats);
  double scale = magnitudes[(n * 99) / 100];
  return scale > 0 ? scale : 1;
}

/* ---- Drawing ---------------------------------------------------------------- */

static void draw_pixels(nn_image *image, int x, int y, const uint8_t *pixels, int scale) {
  float values[PIXELS];
  for (int i = 0; i < PIXELS; i++) values[i] = pixels[i];
  nn_image_draw_values(image, x, y, values, SIDE, SIDE, 0, 255, NN_COLORMAP_GRAY, scale);
}

/* The signed map with white at 0, and the magnitude map from 0 up. */
static void draw_signed(nn_image *image, int x, int y, const float *map, int scale) {
  double s = robust_scale(map, PIXELS);
  nn_image_draw_values(image, x, y, map, SIDE, SIDE, -s, s, NN_COLORMAP_DIVERGING, scale);
}

static void draw_magnitude(nn_image *image, int x, int y, const float *map, int scale) {
  float magnitude[PIXELS];
  for (int i = 0; i < PIXELS; i++) magnitude[i] = fabsf(map[i]);
  double s = robust_scale(map, PIXELS);
  nn_image_draw_values(image, x, y, magnitude, SIDE, SIDE, 0, s, NN_COLORMAP_INFERNO, scale);
}

/* One PNG per image: the image, the signed gradient and its magnitude. */
static bool save_single(ad_ctx *ctx, const nn_image_set *test, const explained *e,
                        const char *path) {
  const int scale = 8, side = SIDE * scale, gap = 16, top = 64;
  nn_image *image = nn_image_new(ctx, 3 * side + 4 * gap, top + side + gap, white);
  if (!image) return false;
  char text[96];
  snprintf(text, sizeof text, "TRUE: %s   PREDICTED: %s", fashion_class_names[e->label],
           fashion_class_names[e->predicted]);
  nn_image_draw_text(image, gap, 12, text, e->label == e->predicted ? green : red, 2);
  const char *captions[3] = {"IMAGE", "GRADIENT (RED +, BLUE -)", "|GRADIENT|"};
  for (int k = 0; k < 3; k++) nn_image_draw_text(image, gap + k * (side + gap), 44, captions[k], gray, 1);
  draw_pixels(image, gap, top, test->images + e->index * PIXELS, scale);
  draw_signed(image, gap + side + gap, top, e->saliency, scale);
  draw_magnitude(image, gap + 2 * (side + gap), top, e->saliency, scale);
  bool ok = nn_image_save_png(image, path) == AD_OK;
  nn_image_free(image);
  return ok;
}

/* The overview: one row per class with its examples (image and signed
   gradient), the predictions, and the class's mean gradient magnitude. */
static bool save_overview(ad_ctx *ctx, const nn_image_set *test, const explained *examples,
                          float means[FASHION_CLASSES][PIXELS], const char *path) {
  const int scale = 4, side = SIDE * scale, gap = 10, label_width = 150;
  const int pair = 2 * side + 4, column = pair + 3 * gap, row_height = side + 28, top = 84;
  int width = label_width + EXAMPLES_PER_CLASS * column + side + 2 * gap;
  int height = top + FASHION_CLASSES * row_height + 40;
  nn_image *image = nn_image_new(ctx, width, height, white);
  if (!image) return false;
  nn_image_draw_text(image, gap, 12, "SALIENCY MAPS OF A 784-128-10 NETWORK ON FASHION-MNIST",
                     black, 2);
  nn_image_draw_text(image, gap, 36,
                     "EACH PAIR: TEST IMAGE AND D(TRUE CLASS LOGIT)/D(PIXEL). RED RAISES THE "
                     "SCORE, BLUE LOWERS IT.",
                     gray, 1);
  for (int k = 0; k < EXAMPLES_PER_CLASS; k++) {
    char text[32];
    snprintf(text, sizeof text, "EXAMPLE %d", k + 1);
    nn_image_draw_text(image, label_width + k * column, top - 20, text, gray, 1);
  }
  nn_image_draw_text(image, label_width + EXAMPLES_PER_CLASS * column, top - 30, "MEAN |GRAD|",
                     gray, 1);
  nn_image_draw_text(image, label_width + EXAMPLES_PER_CLASS * column, top - 20, "100 IMAGES",
                     gray, 1);

  for (int c = 0; c < FASHION_CLASSES; c++) {
    int y = top + c * row_height;
    nn_image_draw_text(image, gap, y + side / 2 - 7, fashion_class_names[c], black, 2);
    for (int k = 0; k < EXAMPLES_PER_CLASS; k++) {
      const explained *e = &examples[c * EXAMPLES_PER_CLASS + k];
      int x = label_width + k * column;
      draw_pixels(image, x, y, test->images + e->index * PIXELS, scale);
      draw_signed(image, x + side + 4, y, e->saliency, scale);
      char text[48];
      snprintf(text, sizeof text, "%s %s", e->label == e->predicted ? "OK" : "PREDICTED",
               e->label == e->predicted ? "" : fashion_class_names[e->predicted]);
      nn_image_draw_text(image, x, y + side + 6, text, e->label == e->predicted ? green : red, 1);
    }
    draw_magnitude(image, label_width + EXAMPLES_PER_CLASS * column, y, means[c], scale);
  }
  bool ok = nn_image_save_png(image, path) == AD_OK;
  nn_image_free(image);
  return ok;
}

/* The mean |saliency| of the first MEAN_SAMPLES_PER_CLASS test images of
   each class. */
static bool class_means(ad_ctx *ctx, nn_layer *model, nn_image_set *test,
                        float means[FASHION_CLASSES][PIXELS]) {
  static int64_t indices[FASHION_CLASSES * MEAN_SAMPLES_PER_CLASS];
  static explained batch[MEAN_SAMPLES_PER_CLASS];
  if (!pick_images(test, MEAN_SAMPLES_PER_CLASS, indices)) return false;
  for (int c = 0; c < FASHION_CLASSES; c++) {
    if (!explain(ctx, model, test, indices + c * MEAN_SAMPLES_PER_CLASS, MEAN_SAMPLES_PER_CLASS,
                 batch))
      return false;
    for (int p = 0; p < PIXELS; p++) {
      double sum = 0;
      for (int i = 0; i < MEAN_SAMPLES_PER_CLASS; i++) sum += fabsf(batch[i].saliency[p]);
      means[c][p] = (float)(sum / MEAN_SAMPLES_PER_CLASS);
    }
  }
  return true;
}

static bool write_pictures(ad_ctx *ctx, nn_layer *model, nn_image_set *test, const char *dir) {
  static explained examples[FASHION_CLASSES * EXAMPLES_PER_CLASS];
  static float means[FASHION_CLASSES][PIXELS];
  int64_t indices[FASHION_CLASSES * EXAMPLES_PER_CLASS];
  if (!pick_images(test, EXAMPLES_PER_CLASS, indices) ||
      !explain(ctx, model, test, indices, FASHION_CLASSES * EXAMPLES_PER_CLASS, examples) ||
      !class_means(ctx, model, test, means)) {
    fprintf(stderr, "computing saliency maps failed: %s\n", ad_errmsg(ctx));
    return false;
  }
  char path[4096], name[64];
  printf("Wrote:\n");
  for (int i = 0; i < FASHION_CLASSES * EXAMPLES_PER_CLASS; i++) {
    snprintf(name, sizeof name, "saliency_class%d_%d.png", examples[i].label,
             i % EXAMPLES_PER_CLASS + 1);
    if (!example_join(path, sizeof path, dir, name) || !save_single(ctx, test, &examples[i], path))
      goto failed;
    if (i % EXAMPLES_PER_CLASS == 0) printf("  %s (and 2 more of %s)\n", path,
                                            fashion_class_names[examples[i].label]);
  }
  if (!example_join(path, sizeof path, dir, "saliency_overview.png") ||
      !save_overview(ctx, test, examples, means, path))
    goto failed;
  printf("  %s\n", path);
  return true;

failed:
  fprintf(stderr, "writing %s failed: %s\n", path, ad_errmsg(ctx));
  return false;
}

int main(int argc, char **argv) {
  example_options opt = {.out_dir = EXAMPLE_DEFAULT_OUT, .data_dir = EXAMPLE_DEFAULT_DATA,
                         .steps = 1500, .samples = 30000, .min_samples = BATCH};
  int code = 0;
  if (!example_parse_args(argc, argv,
                          "Trains a small Fashion-MNIST classifier and draws saliency maps of "
                          "test images as PNG.",
                          &opt, &code))
    return code;
  if (!example_make_dir(opt.out_dir)) return 1;
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx) return 1;
  nn_image_set train, test;
  if (!fashion_load(ctx, opt.data_dir, "train", opt.samples, &train)) {
    ad_ctx_free(ctx);
    return 1;
  }
  if (!fashion_load(ctx, opt.data_dir, "t10k", TEST_IMAGES, &test)) {
    nn_image_set_release(&train);
    ad_ctx_free(ctx);
    return 1;
  }
  /* The test images are standardised like the training images. */
  test.mean = train.mean;
  test.std = train.std;

  printf("Training a 784-%d-10 ReLU network for %ld steps of %d images\n", HIDDEN, opt.steps,
         BATCH);
  nn_layer *model = train_model(ctx, &train, opt.steps);
  bool ok = model != NULL;
  nn_eval_result eval;
  if (ok) ok = nn_evaluate(ctx, model, nn_cross_entropy_loss, nn_image_set_batch, &test,
                           test.count, 500, &eval) == AD_OK;
  if (ok) printf("Test accuracy %.1f%% on %lld images\n\n", 100 * eval.accuracy,
                 (long long)test.count);
  if (ok) ok = write_pictures(ctx, model, &test, opt.out_dir);
  if (ok) printf("Output folder: %s\n", opt.out_dir);
  else fprintf(stderr, "%s\n", ad_errmsg(ctx));
  nn_layer_free(model);
  nn_image_set_release(&test);
  nn_image_set_release(&train);
  ad_ctx_free(ctx);
  return ok ? 0 : 1;
}
