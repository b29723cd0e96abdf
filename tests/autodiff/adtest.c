/* adtest.c: helpers shared by the engine's test suites (see adtest.h). */
#include "adtest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Counting allocator --------------------------------------------- */

/* The header in front of every block; 16 bytes keep malloc's alignment. */
typedef union block_header {
  size_t size;
  max_align_t align;
} block_header;

static void *counting_alloc(void *user, size_t size) {
  counting_allocator *state = user;
  state->calls++;
  if (state->fail_at != 0 &&
      (state->calls == state->fail_at || (state->fail_after && state->calls > state->fail_at)))
    return NULL;
  block_header *h = malloc(sizeof *h + size);
  if (!h) return NULL;
  h->size = size;
  state->live_blocks++;
  state->live_bytes += size;
  if (state->live_bytes > state->peak_bytes) state->peak_bytes = state->live_bytes;
  return h + 1;
}

static void counting_free(void *user, void *ptr, size_t size) {
  counting_allocator *state = user;
  if (!ptr) return;
  block_header *h = (block_header *)ptr - 1;
  if (h->size != size) state->size_mismatches++;
  state->live_blocks--;
  state->live_bytes -= h->size;
  free(h);
}

ad_allocator counting_allocator_hook(counting_allocator *state) {
  ad_allocator hook = {counting_alloc, counting_free, state};
  return hook;
}

/* ---- Building tensors ------------------------------------------------ */

int parse_shape(const char *text, int64_t *shape) {
  int ndim = 0;
  const char *p = text;
  while (*p) {
    char *end;
    long long d = strtoll(p, &end, 10);
    ck_assert_msg(end != p, "shape text '%s' is malformed", text);
    ck_assert_msg(ndim < AD_MAX_DIMS, "shape text '%s' has too many dimensions", text);
    shape[ndim++] = d;
    p = *end == ',' ? end + 1 : end;
  }
  return ndim;
}

ad_tensor *tensor_of(ad_ctx *ctx, const char *shape, const double *values) {
  int64_t dims[AD_MAX_DIMS];
  int ndim = parse_shape(shape, dims);
  return ad_from_f64(ctx, ndim, dims, values);
}

ad_tensor *variable(ad_tensor *t) {
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(ad_set_requires_grad(t, true), AD_OK);
  return t;
}

double flat_get(const ad_tensor *t, int64_t i) {
  switch (ad_tensor_dtype(t)) {
  case AD_F32: return ad_data_f32(t)[i];
  case AD_F64: return ad_data_f64(t)[i];
  default: return (double)ad_data_i64(t)[i];
  }
}

/* ---- Assertions ------------------------------------------------------ */

bool values_close(double got, double expected, double atol, double rtol) {
  if (isnan(expected)) return isnan(got);
  if (isinf(expected)) return got == expected;
  if (!isfinite(got)) return false;
  return fabs(got - expected) <= atol + rtol * fabs(expected);
}

void assert_values(const char *label, const ad_tensor *t, const double *expected, int64_t n,
                   double atol, double rtol) {
  ck_assert_msg(t != NULL, "%s: the tensor is NULL", label);
  ck_assert_msg(ad_numel(t) == n, "%s: %lld elements, expected %lld", label,
                (long long)ad_numel(t), (long long)n);
  for (int64_t i = 0; i < n; i++) {
    double got = flat_get(t, i);
    ck_assert_msg(values_close(got, expected[i], atol, rtol),
                  "%s: element %lld is %.17g, expected %.17g", label, (long long)i, got,
                  expected[i]);
  }
}

static bool same_shape(const ad_tensor *a, const ad_tensor *b) {
  if (ad_ndim(a) != ad_ndim(b)) return false;
  for (int d = 0; d < ad_ndim(a); d++)
    if (ad_shape(a)[d] != ad_shape(b)[d]) return false;
  return true;
}

void assert_tensors_close(const char *label, const ad_tensor *a, const ad_tensor *b,
                          double atol, double rtol) {
  ck_assert_msg(a != NULL && b != NULL, "%s: a tensor is NULL", label);
  ck_assert_msg(same_shape(a, b), "%s: shapes differ (%d and %d dimensions)", label, ad_ndim(a),
                ad_ndim(b));
  for (int64_t i = 0; i < ad_numel(a); i++) {
    double x = flat_get(a, i), y = flat_get(b, i);
    ck_assert_msg(values_close(x, y, atol, rtol), "%s: element %lld is %.17g and %.17g", label,
                  (long long)i, x, y);
  }
}

void assert_shape(const char *label, const ad_tensor *t, const char *shape) {
  int64_t dims[AD_MAX_DIMS];
  int ndim = parse_shape(shape, dims);
  ck_assert_msg(t != NULL, "%s: the tensor is NULL", label);
  ck_assert_msg(ad_ndim(t) == ndim, "%s: %d dimensions, expected %d ([%s])", label, ad_ndim(t),
                ndim, shape);
  for (int d = 0; d < ndim; d++)
    ck_assert_msg(ad_shape(t)[d] == dims[d], "%s: dimension %d is %lld, expected [%s]", label, d,
                  (long long)ad_shape(t)[d], shape);
}

void assert_error(const char *label, const ad_ctx *ctx, ad_status status, ...) {
  ck_assert_msg(ad_errcode(ctx) == status, "%s: status %s, expected %s (message: %s)", label,
                ad_status_name(ad_errcode(ctx)), ad_status_name(status), ad_errmsg(ctx));
  const char *message = ad_errmsg(ctx);
  va_list args;
  va_start(args, status);
  for (const char *part = va_arg(args, const char *); part; part = va_arg(args, const char *))
    ck_assert_msg(strstr(message, part) != NULL, "%s: the message '%s' does not contain '%s'",
                  label, message, part);
  va_end(args);
}

/* ---- Running --------------------------------------------------------- */

int run_suite(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
