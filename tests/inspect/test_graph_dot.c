/* Graph export: the DOT text of small fixed graphs, its limits and errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autodiff.h"
#include "inspect_test_util.h"

/* y = sum(a * c) with a = [1, 2] a parameter and c = [3, 4] a constant,
   after ad_backward: y = 11, dy/da = c. */
typedef struct small_graph {
  ad_ctx *ctx;
  ad_tensor *a, *c, *product, *y;
  const ad_tensor *tensors[3];
  const char *labels[3];
  ad_tensor_names names;
} small_graph;

static void small_graph_build(small_graph *g) {
  const int64_t shape[1] = {2};
  const double a[2] = {1, 2}, c[2] = {3, 4};
  g->ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(g->ctx);
  g->a = ad_from_f64(g->ctx, 1, shape, a);
  g->c = ad_from_f64(g->ctx, 1, shape, c);
  ck_assert_int_eq(ad_set_requires_grad(g->a, true), AD_OK);
  g->product = ad_mul(g->ctx, g->a, g->c);
  g->y = ad_sum_all(g->ctx, g->product);
  ck_assert_ptr_nonnull(g->y);
  ck_assert_int_eq(ad_backward(g->ctx, g->y, NULL), AD_OK);
  g->tensors[0] = g->a;
  g->tensors[1] = g->c;
  g->tensors[2] = g->y;
  g->labels[0] = "a";
  g->labels[1] = "c";
  g->labels[2] = "y";
  g->names = (ad_tensor_names){3, g->tensors, g->labels};
}

/* Runs ad_graph_dot into capture and returns its status. */
static ad_status export_text(ad_ctx *ctx, const ad_tensor *output, const ad_dot_options *options,
                             text_capture *capture) {
  ck_assert(text_capture_begin(capture));
  ad_status st = ad_graph_dot(ctx, output, capture->stream, options);
  text_capture_end(capture);
  return st;
}

/* The line of the node whose label starts with label_start, or NULL. */
static const char *node_line(const char *text, const char *label_start) {
  char needle[256];
  snprintf(needle, sizeof needle, "[label=\"%s", label_start);
  return strstr(text, needle);
}

/* True when the line starting at line contains needle before its end. */
static bool line_has(const char *line, const char *needle) {
  const char *end = strchr(line, '\n');
  const char *hit = strstr(line, needle);
  return hit && (!end || hit < end);
}

START_TEST(test_nodes_and_labels) {
  small_graph g;
  small_graph_build(&g);
  ad_dot_options options = {.names = &g.names};
  text_capture out;
  ck_assert_int_eq(export_text(g.ctx, g.y, &options, &out), AD_OK);
  const char *text = out.text;
  ck_assert_ptr_nonnull(strstr(text, "digraph autodiff {"));
  ck_assert_int_eq(count_occurrences(text, "\", shape="), 4);

  const char *y = node_line(text, "y = sum\\nscalar float64\\nvalue 11\"");
  ck_assert_ptr_nonnull(y);
  ck_assert(line_has(y, "peripheries=2"));
  ck_assert(line_has(y, "style=\"rounded,filled\""));

  const char *mul = node_line(text, "mul\\n[2] float64\\nvalue [3, 8]\"");
  ck_assert_ptr_nonnull(mul);
  ck_assert(line_has(mul, "shape=box"));
  ck_assert(!line_has(mul, "peripheries"));

  const char *a = node_line(text, "a\\n[2] float64\\nvalue [1, 2]\\ngrad [3, 4]\"");
  ck_assert_ptr_nonnull(a);
  ck_assert(line_has(a, "shape=box, style=filled"));
  ck_assert(line_has(a, "fillcolor=\"#fbe3a0\""));

  const char *c = node_line(text, "c\\n[2] float64\\nvalue [3, 4]\"");
  ck_assert_ptr_nonnull(c);
  ck_assert(line_has(c, "shape=ellipse"));
  ck_assert(line_has(c, "fillcolor=\"#e8e8e8\""));
  text_capture_free(&out);
  ad_ctx_free(g.ctx);
}
END_TEST

/* Returns the node id ("n3") whose label starts with label_start. */
static void node_id(const char *text, const char *label_start, char *id, size_t capacity) {
  const char *line = node_line(text, label_start);
  ck_assert_ptr_nonnull(line);
  const char *start = line;
  while (start > text && start[-1] != '\n') start--;
  while (*start == ' ') start++;
  size_t n = (size_t)(line - start);
  while (n > 0 && start[n - 1] == ' ') n--;
  ck_assert_uint_lt(n, capacity);
  memcpy(id, start, n);
  id[n] = '\0';
}

START_TEST(test_edges) {
  small_graph g;
  small_graph_build(&g);
  ad_dot_options options = {.names = &g.names};
  text_capture out;
  ck_assert_int_eq(export_text(g.ctx, g.y, &options, &out), AD_OK);
  char y[16], mul[16], a[16], c[16], edge[64];
  node_id(out.text, "y = sum", y, sizeof y);
  node_id(out.text, "mul", mul, sizeof mul);
  node_id(out.text, "a\\n", a, sizeof a);
  node_id(out.text, "c\\n", c, sizeof c);
  ck_assert_int_eq(count_occurrences(out.text, " -> "), 3);
  snprintf(edge, sizeof edge, "%s -> %s [];", mul, y);
  ck_assert_ptr_nonnull(strstr(out.text, edge));
  snprintf(edge, sizeof edge, "%s -> %s [label=\" 0\"];", a, mul);
  ck_assert_ptr_nonnull(strstr(out.text, edge));
  snprintf(edge, sizeof edge, "%s -> %s [label=\" 1\"];", c, mul);
  ck_assert_ptr_nonnull(strstr(out.text, edge));
  text_capture_free(&out);
  ad_ctx_free(g.ctx);
}
END_TEST

START_TEST(test_dot_parses) {
  if (!have_program("dot")) {
    printf("test_dot_parses: Graphviz's dot is not installed; the parse check is skipped\n");
    return;
  }
  small_graph g;
  small_graph_build(&g);
  char dot_path[512], svg_path[512], command[1200];
  ck_assert(temp_path(dot_path, sizeof dot_path, "small.dot"));
  ck_assert(temp_path(svg_path, sizeof svg_path, "small.svg"));
  FILE *f = fopen(dot_path, "w");
  ck_assert_ptr_nonnull(f);
  ad_dot_options options = {.names = &g.names, .flags = AD_DOT_GRADIENTS | AD_DOT_LEGEND,
                            .title = "a \"quoted\" title\\"};
  ck_assert_int_eq(ad_graph_dot(g.ctx, g.y, f, &options), AD_OK);
  ck_assert_int_eq(fclose(f), 0);
  snprintf(command, sizeof command, "dot -Tsvg '%s' -o '%s' 2>/dev/null", dot_path, svg_path);
  ck_assert_int_eq(system(command), 0);
  FILE *svg = fopen(svg_path, "r");
  ck_assert_ptr_nonnull(svg);
  char head[4096] = {0};
  size_t n = fread(head, 1, sizeof head - 1, svg);
  fclose(svg);
  ck_assert_uint_gt(n, 0);
  ck_assert_ptr_nonnull(strstr(head, "<svg"));
  unlink(dot_path);
  unlink(svg_path);
  ad_ctx_free(g.ctx);
}
END_TEST

START_TEST(test_gradients_of_every_node) {
  small_graph g;
  small_graph_build(&g);
  ad_dot_options options = {.names = &g.names, .flags = AD_DOT_GRADIENTS};
  text_capture out;
  ck_assert_int_eq(export_text(g.ctx, g.y, &options, &out), AD_OK);
  ck_assert_ptr_nonnull(node_line(out.text, "y = sum\\nscalar float64\\nvalue 11\\ngrad 1\""));
  ck_assert_ptr_nonnull(node_line(out.text, "mul\\n[2] float64\\nvalue [3, 8]\\ngrad [1, 1]\""));
  ck_assert_ptr_nonnull(node_line(out.text, "a\\n[2] float64\\nvalue [1, 2]\\ngrad [3, 4]\""));
  /* The extra sweep must leave the accumulated gradient as it was. */
  ck_assert_double_eq(ad_data_f64(ad_grad(g.a))[0], 3);
  ck_assert_double_eq(ad_data_f64(ad_grad(g.a))[1], 4);
  text_capture_free(&out);
  ad_ctx_free(g.ctx);
}
END_TEST

static int trace_calls;
static void count_trace(void *user, const ad_trace_step *step) {
  (void)user;
  (void)step;
  trace_calls++;
}

START_TEST(test_gradient_sweep_is_not_traced) {
  small_graph g;
  small_graph_build(&g);
  trace_calls = 0;
  ck_assert_int_eq(ad_set_backward_trace(g.ctx, count_trace, NULL), AD_OK);
  ad_dot_options options = {.flags = AD_DOT_GRADIENTS};
  text_capture out;
  ck_assert_int_eq(export_text(g.ctx, g.y, &options, &out), AD_OK);
  ck_assert_int_eq(trace_calls, 0);
  ck_assert_int_eq(ad_backward(g.ctx, g.y, NULL), AD_OK);
  ck_assert_int_eq(trace_calls, 2);
  text_capture_free(&out);
  ad_ctx_free(g.ctx);
}
END_TEST

START_TEST(test_gradients_need_scalar_output) {
  small_graph g;
  small_graph_build(&g);
  ad_dot_options options = {.flags = AD_DOT_GRADIENTS};
  text_capture out;
  ck_assert_int_eq(export_text(g.ctx, g.product, &options, &out), AD_ERR_SHAPE);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(g.ctx), "AD_DOT_GRADIENTS"));
  text_capture_free(&out);
  ad_ctx_free(g.ctx);
}
END_TEST

/* A chain x -> exp -> sin -> exp -> sin -> exp -> sum of length 6. */
static ad_tensor *chain(ad_ctx *ctx) {
  ad_tensor *x = ad_scalar(ctx, AD_F64, 0.1);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *t = x;
  for (int i = 0; i < 5; i++) t = i % 2 ? ad_sin(ctx, t) : ad_exp(ctx, t);
  return ad_sum_all(ctx, t);
}

START_TEST(test_depth_limit) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *y = chain(ctx);
  ck_assert_ptr_nonnull(y);
  ad_dot_options options = {.max_depth = 2, .flags = AD_DOT_LEGEND};
  text_capture out;
  ck_assert_int_eq(export_text(ctx, y, &options, &out), AD_OK);
  /* sum, exp and sin are drawn; the marker stands for the rest. */
  ck_assert_int_eq(count_occurrences(out.text, "\", shape="), 3 + 1);
  ck_assert_int_eq(count_occurrences(out.text, "... 1 input not shown"), 1);
  ck_assert_ptr_nonnull(strstr(out.text, "cut2 -> n2 [style=dashed"));
  ck_assert_ptr_nonnull(strstr(out.text, "graph cut at the depth limit"));
  text_capture_free(&out);

  options.max_depth = 0;
  ck_assert_int_eq(export_text(ctx, y, &options, &out), AD_OK);
  ck_assert_int_eq(count_occurrences(out.text, "not shown"), 0);
  ck_assert_int_eq(count_occurrences(out.text, " -> "), 6);
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_node_limit) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *y = chain(ctx);
  ad_dot_options options = {.max_nodes = 4};
  text_capture out;
  ck_assert_int_eq(export_text(ctx, y, &options, &out), AD_OK);
  ck_assert_int_eq(count_occurrences(out.text, "\", shape="), 4 + 1);
  ck_assert_ptr_nonnull(strstr(out.text, "cut3 [label=\"... 1 input not shown\""));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_nonfinite_highlighted) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  const int64_t shape[1] = {3};
  const double xs[3] = {1, -1, 0};
  ad_tensor *x = ad_from_f64(ctx, 1, shape, xs);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *logs = ad_log(ctx, x);
  ad_tensor *y = ad_sum_all(ctx, logs);
  ck_assert_ptr_nonnull(y);
  text_capture out;
  ck_assert_int_eq(export_text(ctx, y, NULL, &out), AD_OK);
  const char *log_node = node_line(out.text, "log\\n[3] float64\\nvalue [0, nan, -inf]");
  ck_assert_ptr_nonnull(log_node);
  ck_assert(line_has(log_node, "\\nvalue: 1 NaN, 1 inf\""));
  ck_assert(line_has(log_node, "fillcolor=\"#f4a3a3\""));
  const char *x_node = node_line(out.text, "parameter\\n[3] float64");
  ck_assert_ptr_nonnull(x_node);
  ck_assert(!line_has(x_node, "#f4a3a3"));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_value_limit) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ad_tensor *x = ad_arange(ctx, AD_F32, 0, 10, 1);
  ck_assert_int_eq(ad_set_requires_grad(x, true), AD_OK);
  ad_tensor *y = ad_sum_all(ctx, x);
  text_capture out;
  ck_assert_int_eq(export_text(ctx, y, NULL, &out), AD_OK);
  ck_assert_ptr_nonnull(node_line(out.text, "parameter\\n[10] float32\""));
  text_capture_free(&out);

  ad_dot_options options = {.value_limit = 10};
  ck_assert_int_eq(export_text(ctx, y, &options, &out), AD_OK);
  ck_assert_ptr_nonnull(
      node_line(out.text, "parameter\\n[10] float32\\nvalue [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\""));
  text_capture_free(&out);

  options.value_limit = -1;
  ck_assert_int_eq(export_text(ctx, y, &options, &out), AD_OK);
  ck_assert_int_eq(count_occurrences(out.text, "value"), 0);
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_invalid_arguments) {
  small_graph g;
  small_graph_build(&g);
  text_capture out;
  ck_assert_int_eq(ad_graph_dot(NULL, g.y, stdout, NULL), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_graph_dot(g.ctx, g.y, NULL, NULL), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(g.ctx), "stream"));
  ad_clear_error(g.ctx);
  ck_assert_int_eq(ad_graph_dot(g.ctx, NULL, stdout, NULL), AD_ERR_ARGUMENT);
  ad_clear_error(g.ctx);
  ad_dot_options bad_depth = {.max_depth = -1};
  ck_assert_int_eq(export_text(g.ctx, g.y, &bad_depth, &out), AD_ERR_ARGUMENT);
  text_capture_free(&out);
  ad_clear_error(g.ctx);
  ad_dot_options bad_flags = {.flags = 1u << 7};
  ck_assert_int_eq(export_text(g.ctx, g.y, &bad_flags, &out), AD_ERR_ARGUMENT);
  text_capture_free(&out);
  ad_clear_error(g.ctx);

  ad_ctx *other = ad_ctx_new(NULL);
  ck_assert_int_eq(export_text(other, g.y, NULL, &out), AD_ERR_CONTEXT);
  text_capture_free(&out);
  ad_ctx_free(other);
  ad_ctx_free(g.ctx);
}
END_TEST

START_TEST(test_write_failure) {
  FILE *full = open_full_device();
  if (!full) return;
  small_graph g;
  small_graph_build(&g);
  ck_assert_int_eq(ad_graph_dot(g.ctx, g.y, full, NULL), AD_ERR_IO);
  ck_assert_int_eq(ad_errcode(g.ctx), AD_ERR_IO);
  fclose(full);
  ad_ctx_free(g.ctx);
}
END_TEST

/* An allocator that fails every allocation after the first `budget`. */
typedef struct failing_allocator {
  long budget;
  long live;
} failing_allocator;

static void *failing_alloc(void *user, size_t size) {
  failing_allocator *a = user;
  if (a->budget-- <= 0) return NULL;
  a->live++;
  return malloc(size);
}

static void failing_free(void *user, void *ptr, size_t size) {
  (void)size;
  failing_allocator *a = user;
  if (ptr) a->live--;
  free(ptr);
}

START_TEST(test_allocation_failures) {
  /* Builds the graph with a generous budget, then lets the export run out
     after each possible number of allocations. */
  bool succeeded = false;
  for (long extra = 0; extra < 64 && !succeeded; extra++) {
    failing_allocator state = {.budget = 1000};
    ad_allocator allocator = {failing_alloc, failing_free, &state};
    ad_ctx *ctx = ad_ctx_new(&allocator);
    ck_assert_ptr_nonnull(ctx);
    ad_tensor *y = chain(ctx);
    ck_assert_ptr_nonnull(y);
    state.budget = extra;
    ad_dot_options options = {.flags = AD_DOT_GRADIENTS};
    text_capture out;
    ad_status st = export_text(ctx, y, &options, &out);
    ck_assert(st == AD_OK || st == AD_ERR_MEMORY);
    succeeded = st == AD_OK;
    text_capture_free(&out);
    ad_ctx_free(ctx);
    ck_assert_int_eq(state.live, 0);
  }
  ck_assert(succeeded);
}
END_TEST

START_TEST(test_names_find) {
  small_graph g;
  small_graph_build(&g);
  ck_assert_str_eq(ad_tensor_names_find(&g.names, g.c), "c");
  ck_assert_ptr_null(ad_tensor_names_find(&g.names, g.product));
  ck_assert_ptr_null(ad_tensor_names_find(NULL, g.c));
  ck_assert_ptr_null(ad_tensor_names_find(&g.names, NULL));
  ad_ctx_free(g.ctx);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"nodes_and_labels", test_nodes_and_labels},
    {"edges", test_edges},
    {"dot_parses", test_dot_parses},
    {"gradients_of_every_node", test_gradients_of_every_node},
    {"gradient_sweep_not_traced", test_gradient_sweep_is_not_traced},
    {"gradients_need_scalar_output", test_gradients_need_scalar_output},
    {"depth_limit", test_depth_limit},
    {"node_limit", test_node_limit},
    {"nonfinite_highlighted", test_nonfinite_highlighted},
    {"value_limit", test_value_limit},
    {"invalid_arguments", test_invalid_arguments},
    {"write_failure", test_write_failure},
    {"allocation_failures", test_allocation_failures},
    {"names_find", test_names_find},
  };
  return run_test_table("graph_dot", cases, sizeof cases / sizeof cases[0]);
}
