/* format.c: text helpers of the graph export and the trace printer. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>

#include "inspect_internal.h"

void out_printf(text_out *o, const char *format, ...) {
  if (o->failed) return;
  va_list args;
  va_start(args, format);
  int n = vfprintf(o->stream, format, args);
  va_end(args);
  if (n < 0) o->failed = true;
}

void out_dot_escaped(text_out *o, const char *s) {
  for (; *s && !o->failed; s++) {
    if (*s == '"' || *s == '\\') out_printf(o, "\\%c", *s);
    else if (*s == '\n') out_printf(o, "\\n");
    else if (fputc(*s, o->stream) == EOF) o->failed = true;
  }
}

static void out_element(text_out *o, const ad_tensor *t, int64_t i, int precision) {
  double v = load(t, i);
  if (t->dtype == AD_I64) out_printf(o, "%" PRId64, ((const int64_t *)t->data)[i]);
  else if (isnan(v)) out_printf(o, "nan"); /* printf may write "-nan" */
  else out_printf(o, "%.*g", precision, v);
}

/* Writes dimension dim of t starting at flat offset base. */
static void out_dim(text_out *o, const ad_tensor *t, int dim, int64_t base, const int64_t *strides,
                    int precision, const char *row_separator) {
  bool last = dim == t->ndim - 1;
  out_printf(o, "[");
  for (int64_t i = 0; i < t->shape[dim]; i++) {
    if (i > 0) out_printf(o, last ? ", " : ",%s", row_separator);
    if (last) out_element(o, t, base + i, precision);
    else out_dim(o, t, dim + 1, base + i * strides[dim], strides, precision, row_separator);
  }
  out_printf(o, "]");
}

void out_values(text_out *o, const ad_tensor *t, int precision, const char *row_separator) {
  if (t->ndim == 0) {
    out_element(o, t, 0, precision);
    return;
  }
  int64_t strides[AD_MAX_DIMS];
  contiguous_strides(t->ndim, t->shape, strides);
  out_dim(o, t, 0, 0, strides, precision, row_separator);
}

void count_nonfinite(const ad_tensor *t, int64_t *nans, int64_t *infs) {
  *nans = 0;
  *infs = 0;
  if (!is_float((ad_dtype)t->dtype)) return;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = load(t, i);
    if (isnan(v)) (*nans)++;
    else if (isinf(v)) (*infs)++;
  }
}

const char *ad_tensor_names_find(const ad_tensor_names *names, const ad_tensor *t) {
  if (!names || !t || !names->tensors || !names->names) return NULL;
  for (int i = 0; i < names->count; i++)
    if (names->tensors[i] == t) return names->names[i];
  return NULL;
}
