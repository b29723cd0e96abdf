/* SVG plots: document size, well-formed XML, series, non-finite values, errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inspect_test_util.h"
#include "nn_plot.h"

/* Writes panels into a string with nn_plot_write_svg. */
static ad_status plot_text(ad_ctx *ctx, const nn_plot *panels, int count, int columns,
                           text_capture *out) {
  ck_assert(text_capture_begin(out));
  ad_status st = nn_plot_write_svg(ctx, panels, count, columns, out->stream);
  text_capture_end(out);
  return st;
}

/* Reads the integer attribute name="..." of the root <svg> element. */
static long root_attribute(const char *text, const char *name) {
  const char *root = strstr(text, "<svg ");
  ck_assert_ptr_nonnull(root);
  const char *end = strchr(root, '>');
  char needle[64];
  snprintf(needle, sizeof needle, " %s=\"", name);
  const char *attr = strstr(root, needle);
  ck_assert_ptr_nonnull(attr);
  ck_assert(attr < end);
  return strtol(attr + strlen(needle), NULL, 10);
}

/* Checks that every start tag has its end tag, in order, and that the
   document has one root: a small well-formedness check that needs no XML
   library. Returns the number of elements. */
static int check_balanced(const char *text) {
  char stack[64][32];
  int depth = 0, elements = 0, roots = 0;
  for (const char *p = strchr(text, '<'); p; p = strchr(p + 1, '<')) {
    if (p[1] == '?') continue;
    const char *close = strchr(p, '>');
    ck_assert_ptr_nonnull(close);
    if (p[1] == '/') {
      ck_assert_int_gt(depth, 0);
      size_t n = strlen(stack[depth - 1]);
      ck_assert_msg(strncmp(p + 2, stack[depth - 1], n) == 0 && p[2 + n] == '>',
                    "end tag does not match <%s>", stack[depth - 1]);
      depth--;
      continue;
    }
    size_t n = strcspn(p + 1, " />");
    ck_assert_uint_lt(n, sizeof stack[0]);
    elements++;
    if (depth == 0) roots++;
    if (close[-1] == '/') continue;
    ck_assert_int_lt(depth, 64);
    memcpy(stack[depth], p + 1, n);
    stack[depth][n] = '\0';
    depth++;
  }
  ck_assert_int_eq(depth, 0);
  ck_assert_int_eq(roots, 1);
  return elements;
}

START_TEST(test_document_size) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[5] = {3, 1, 4, 1, 5};
  nn_plot_series series = {.name = "pi", .y = y, .count = 5};
  nn_plot panels[3] = {{.width = 300, .height = 200, .series_count = 1, .series = &series},
                       {.series_count = 1, .series = &series},
                       {.series_count = 1, .series = &series}};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, panels, 3, 2, &out), AD_OK);
  ck_assert_int_eq(root_attribute(out.text, "width"), 600);
  ck_assert_int_eq(root_attribute(out.text, "height"), 400);
  text_capture_free(&out);

  panels[0].width = 0;
  panels[0].height = 0;
  ck_assert_int_eq(plot_text(ctx, panels, 1, 0, &out), AD_OK);
  ck_assert_int_eq(root_attribute(out.text, "width"), NN_PLOT_DEFAULT_WIDTH);
  ck_assert_int_eq(root_attribute(out.text, "height"), NN_PLOT_DEFAULT_HEIGHT);
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_well_formed) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[4] = {0.5, NAN, 2, 1};
  nn_plot_series series[2] = {{.name = "a <b> & \"c\"", .y = y, .count = 4, .markers = true},
                              {.name = "second", .y = y, .count = 3}};
  nn_plot panel = {.title = "x < y", .x_label = "step", .y_label = "loss & more",
                   .series_count = 2, .series = series};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_OK);
  ck_assert_int_gt(check_balanced(out.text), 20);
  ck_assert_ptr_nonnull(strstr(out.text, ">a &lt;b&gt; &amp; &quot;c&quot; (1 not drawn)</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">x &lt; y</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, "rotate(-90"));
  text_capture_free(&out);

  if (!have_program("xmllint")) {
    ad_ctx_free(ctx);
    return;
  }
  char path[512], command[700];
  ck_assert(temp_path(path, sizeof path, "well_formed.svg"));
  ck_assert_int_eq(nn_plot_save_svg(ctx, &panel, 1, 1, path), AD_OK);
  snprintf(command, sizeof command, "xmllint --noout '%s' 2>/dev/null", path);
  ck_assert_int_eq(system(command), 0);
  unlink(path);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_one_path_per_series) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double x[4] = {10, 20, 30, 40}, a[4] = {1, 2, 3, 4}, b[4] = {4, 3, 2, 1};
  nn_plot_series series[2] = {{.name = "up", .x = x, .y = a, .count = 4, .color = "#112233"},
                              {.name = "down", .x = x, .y = b, .count = 4}};
  nn_plot panel = {.series_count = 2, .series = series};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_OK);
  ck_assert_int_eq(count_occurrences(out.text, "<path fill=\"none\""), 2);
  ck_assert_int_eq(count_occurrences(out.text, "stroke=\"#112233\""), 2); /* line and legend */
  ck_assert_int_eq(count_occurrences(out.text, " L"), 6);
  /* x ticks at 10, 15, ..., 40 */
  ck_assert_ptr_nonnull(strstr(out.text, ">10</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">40</text>"));
  ck_assert_int_eq(count_occurrences(out.text, "<circle"), 0);
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_nonfinite_breaks_line) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[7] = {1, 2, NAN, 3, 4, INFINITY, 5};
  nn_plot_series series = {.name = "s", .y = y, .count = 7};
  nn_plot panel = {.series_count = 1, .series = &series};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_OK);
  /* Segments [1, 2] and [3, 4] are paths; 5 alone is a dot. */
  ck_assert_int_eq(count_occurrences(out.text, "<path fill=\"none\""), 2);
  ck_assert_int_eq(count_occurrences(out.text, "<circle"), 1);
  ck_assert_int_eq(count_occurrences(out.text, " Z\""), 2); /* edge marks */
  ck_assert_ptr_nonnull(strstr(out.text, ">s (2 not drawn)</text>"));
  ck_assert_ptr_null(strstr(out.text, "nan"));
  ck_assert_ptr_null(strstr(out.text, "inf"));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_constant_and_empty_series) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double constant[3] = {2, 2, 2}, nothing[2] = {NAN, NAN};
  nn_plot_series a = {.y = constant, .count = 3}, b = {.y = nothing, .count = 2};
  nn_plot panels[2] = {{.series_count = 1, .series = &a}, {.series_count = 1, .series = &b}};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, panels, 2, 2, &out), AD_OK);
  /* The constant 2 gets the range [1, 3] around it. */
  ck_assert_ptr_nonnull(strstr(out.text, ">1.0</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">3.0</text>"));
  ck_assert_int_eq(count_occurrences(out.text, "no finite values to draw"), 1);
  ck_assert_ptr_null(strstr(out.text, "nan"));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_log_axis) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[4] = {1e-7, 1e-3, 0.5, 0};
  nn_plot_series series = {.name = "norm", .y = y, .count = 4};
  nn_plot panel = {.log_y = true, .series_count = 1, .series = &series};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_OK);
  ck_assert_ptr_nonnull(strstr(out.text, ">10<tspan dy=\"-6\" font-size=\"9\">-7</tspan></text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">1</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">norm (1 not drawn)</text>"));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_log_axis_minor_ticks) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[3] = {1.5, 3, 8};
  nn_plot_series series = {.y = y, .count = 3, .opacity = 0.5};
  nn_plot panel = {.log_y = true, .series_count = 1, .series = &series};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_OK);
  /* One decade, 1 to 10, labelled at 1, 2, 5 and 10. */
  ck_assert_ptr_nonnull(strstr(out.text, ">1</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">2</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">5</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, ">10</text>"));
  ck_assert_ptr_nonnull(strstr(out.text, "stroke-opacity=\"0.50\""));
  text_capture_free(&out);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_invalid_arguments) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[2] = {1, 2};
  nn_plot_series bad_color = {.y = y, .count = 2, .color = "red\"/>"};
  nn_plot_series no_values = {.count = 2};
  nn_plot panel = {.series_count = 1, .series = &bad_color};
  text_capture out;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "colour"));
  text_capture_free(&out);
  ad_clear_error(ctx);
  nn_plot_series bad_opacity = {.y = y, .count = 2, .opacity = 1.5};
  panel.series = &bad_opacity;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_ERR_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "opacity"));
  text_capture_free(&out);
  ad_clear_error(ctx);
  panel.series = &no_values;
  ck_assert_int_eq(plot_text(ctx, &panel, 1, 1, &out), AD_ERR_ARGUMENT);
  text_capture_free(&out);
  ad_clear_error(ctx);
  ck_assert_int_eq(plot_text(ctx, &panel, 0, 1, &out), AD_ERR_ARGUMENT);
  text_capture_free(&out);
  ad_clear_error(ctx);
  nn_plot tiny = {.width = 10, .height = 10};
  ck_assert_int_eq(plot_text(ctx, &tiny, 1, 1, &out), AD_ERR_ARGUMENT);
  text_capture_free(&out);
  ad_clear_error(ctx);
  ck_assert_int_eq(nn_plot_write_svg(ctx, &tiny, 1, 1, NULL), AD_ERR_ARGUMENT);
  ad_ctx_free(ctx);
}
END_TEST

START_TEST(test_write_failures) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  double y[2] = {1, 2};
  nn_plot_series series = {.y = y, .count = 2};
  nn_plot panel = {.series_count = 1, .series = &series};
  ck_assert_int_eq(nn_plot_save_svg(ctx, &panel, 1, 1, "/nonexistent-folder/plot.svg"),
                   AD_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ad_errmsg(ctx), "/nonexistent-folder/plot.svg"));
  ad_clear_error(ctx);
  FILE *full = open_full_device();
  if (full) {
    ck_assert_int_eq(nn_plot_write_svg(ctx, &panel, 1, 1, full), AD_ERR_IO);
    fclose(full);
  }
  ad_ctx_free(ctx);
}
END_TEST

int main(void) {
  const test_entry cases[] = {
    {"document_size", test_document_size},
    {"well_formed", test_well_formed},
    {"one_path_per_series", test_one_path_per_series},
    {"nonfinite_breaks_line", test_nonfinite_breaks_line},
    {"constant_and_empty_series", test_constant_and_empty_series},
    {"log_axis", test_log_axis},
    {"log_axis_minor_ticks", test_log_axis_minor_ticks},
    {"invalid_arguments", test_invalid_arguments},
    {"write_failures", test_write_failures},
  };
  return run_test_table("svg_plot", cases, sizeof cases / sizeof cases[0]);
}
