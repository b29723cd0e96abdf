/*
 * graph_export.c: draws recorded graphs with Graphviz.
 *
 * Writes four graphs as DOT and, when Graphviz is installed, as SVG and PNG:
 *   square_cubed   (x^2 + 1)^3 at x = 2, with the gradient on every node
 *   network        the 2-2-1 network of the backpropagation lesson
 *   deep_cut       a 12-layer network drawn only 5 operations deep
 *   nonfinite      a computation whose log turns a negative input into NaN
 */
#include <math.h>
#include <stdio.h>

#include "autodiff.h"
#include "example_util.h"
#include "tiny_network.h"

typedef struct graph_job {
  const char *name;
  ad_tensor *output;
  ad_dot_options options;
} graph_job;

/* The files written so far, listed only when every graph succeeded. */
#define MAX_WRITTEN 16
typedef struct written_files {
  int count;
  char paths[MAX_WRITTEN][4096];
} written_files;

static void add_written(written_files *w, const char *path) {
  if (w->count < MAX_WRITTEN) snprintf(w->paths[w->count++], sizeof w->paths[0], "%s", path);
}

/* Writes out_dir/name.dot and renders it when render is set. */
static bool export_graph(ad_ctx *ctx, const char *out_dir, const graph_job *job, bool render,
                         written_files *written) {
  char dot_path[4096], svg_path[4096], png_path[4096], file[256];
  snprintf(file, sizeof file, "%s.dot", job->name);
  if (!example_join(dot_path, sizeof dot_path, out_dir, file)) return false;
  FILE *f = fopen(dot_path, "w");
  if (!f) {
    perror(dot_path);
    return false;
  }
  ad_status st = ad_graph_dot(ctx, job->output, f, &job->options);
  if (fclose(f) != 0 && st == AD_OK) st = AD_ERR_IO;
  if (st != AD_OK) {
    fprintf(stderr, "%s: %s\n", dot_path, ad_errmsg(ctx));
    return false;
  }
  add_written(written, dot_path);
  if (!render) return true;
  snprintf(file, sizeof file, "%s.svg", job->name);
  if (!example_join(svg_path, sizeof svg_path, out_dir, file)) return false;
  snprintf(file, sizeof file, "%s.png", job->name);
  if (!example_join(png_path, sizeof png_path, out_dir, file)) return false;
  if (!example_render_dot(dot_path, svg_path, png_path)) return false;
  add_written(written, svg_path);
  add_written(written, png_path);
  return true;
}

/* (x^2 + 1)^3 at x = 2: value 125, derivative 6x(x^2 + 1)^2 = 300. */
static ad_tensor *square_cubed(ad_ctx *ctx, ad_tensor **x) {
  *x = ad_scalar(ctx, AD_F64, 2.0);
  if (!*x || ad_set_requires_grad(*x, true) != AD_OK) return NULL;
  ad_tensor *y = ad_pow_scalar(ctx, ad_add_scalar(ctx, ad_mul(ctx, *x, *x), 1), 3);
  if (y && ad_backward(ctx, y, NULL) != AD_OK) return NULL;
  return y;
}

/* A 12-layer tanh network on a batch of 4, reduced to its mean. */
static ad_tensor *deep_network(ad_ctx *ctx, ad_rng *rng) {
  const int64_t x_shape[2] = {4, 8}, w_shape[2] = {8, 8}, b_shape[1] = {8};
  ad_tensor *h = ad_rand_normal(ctx, rng, AD_F32, 2, x_shape, 0, 1);
  for (int layer = 0; layer < 12 && h; layer++) {
    ad_tensor *w = ad_rand_normal(ctx, rng, AD_F32, 2, w_shape, 0, 0.35);
    ad_tensor *b = ad_zeros(ctx, AD_F32, 1, b_shape);
    if (!w || !b || ad_set_requires_grad(w, true) || ad_set_requires_grad(b, true)) return NULL;
    h = ad_tanh(ctx, ad_linear(ctx, h, w, b));
  }
  return ad_mean_all(ctx, h);
}

/* sum(log(x) * w) where x contains a negative value, so log gives NaN. */
static ad_tensor *nonfinite_graph(ad_ctx *ctx, ad_tensor **names_tensors) {
  const int64_t shape[1] = {3};
  const double xs[3] = {2.0, -1.0, 0.5}, ws[3] = {0.3, 0.2, -0.4};
  ad_tensor *x = ad_from_f64(ctx, 1, shape, xs);
  ad_tensor *w = ad_from_f64(ctx, 1, shape, ws);
  if (!x || !w || ad_set_requires_grad(x, true) != AD_OK || ad_set_requires_grad(w, true) != AD_OK)
    return NULL;
  names_tensors[0] = x;
  names_tensors[1] = w;
  ad_tensor *y = ad_sum_all(ctx, ad_mul(ctx, ad_log(ctx, x), w));
  if (y && ad_backward(ctx, y, NULL) != AD_OK) return NULL;
  return y;
}

int main(int argc, char **argv) {
  example_options opt = {.out_dir = EXAMPLE_DEFAULT_OUT};
  int code = 0;
  if (!example_parse_args(argc, argv, "Draws recorded graphs as DOT, SVG and PNG.", &opt, &code))
    return code;
  if (!example_make_dir(opt.out_dir)) return 1;
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx) return 1;

  ad_tensor *x = NULL;
  ad_tensor *cube = square_cubed(ctx, &x);
  const ad_tensor *cube_tensors[2] = {x, cube};
  const char *cube_labels[2] = {"x", "y"};
  ad_tensor_names cube_names = {2, cube_tensors, cube_labels};

  tiny_network net;
  ad_status st = tiny_network_build(ctx, &net);

  ad_rng rng;
  ad_rng_seed(&rng, 7);
  ad_tensor *deep = deep_network(ctx, &rng);

  ad_tensor *bad_leaves[2] = {NULL, NULL};
  ad_tensor *bad = nonfinite_graph(ctx, bad_leaves);
  const ad_tensor *bad_tensors[2] = {bad_leaves[0], bad_leaves[1]};
  const char *bad_labels[2] = {"x", "w"};
  ad_tensor_names bad_names = {2, bad_tensors, bad_labels};

  if (!cube || st != AD_OK || !deep || !bad) {
    fprintf(stderr, "building the graphs failed: %s\n", ad_errmsg(ctx));
    ad_ctx_free(ctx);
    return 1;
  }

  const unsigned flags = AD_DOT_GRADIENTS | AD_DOT_LEGEND;
  const graph_job jobs[] = {
      {"square_cubed", cube,
       {.names = &cube_names, .flags = flags, .title = "y = (x^2 + 1)^3 at x = 2, dy/dx = 300"}},
      {"network", net.loss,
       {.names = &net.names, .flags = flags,
        .title = "2-2-1 network, sigmoid hidden layer, squared error L"}},
      {"deep_cut", deep,
       {.max_depth = 5, .flags = flags, .title = "12-layer tanh network cut 5 operations deep"}},
      {"nonfinite", bad,
       {.names = &bad_names, .flags = flags, .title = "log of a negative input gives NaN"}},
  };

  bool render = example_have_dot();
  static written_files written;
  bool ok = true;
  for (size_t i = 0; ok && i < sizeof jobs / sizeof jobs[0]; i++)
    ok = export_graph(ctx, opt.out_dir, &jobs[i], render, &written);
  ad_ctx_free(ctx);
  if (!ok) return 1;
  printf("Wrote:\n");
  for (int i = 0; i < written.count; i++) printf("  %s\n", written.paths[i]);
  if (!render) example_print_dot_help(opt.out_dir);
  printf("Output folder: %s\n", opt.out_dir);
  return 0;
}
