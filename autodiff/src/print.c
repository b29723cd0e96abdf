/* print.c: the text form of a tensor for ad_print and ad_format. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>

#include "internal.h"

/* Above this many elements, each dimension shows only its ends. */
#define PRINT_FULL_LIMIT 1000
#define PRINT_EDGE 3

/* Text output to a stream or a bounded buffer; length counts every byte the
   full text needs. */
typedef struct writer {
  FILE *stream;
  char *buffer;
  size_t capacity;
  int64_t length;
  bool failed;
} writer;

static void emit(writer *w, const char *format, ...) {
  char tmp[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(tmp, sizeof tmp, format, args);
  va_end(args);
  if (n < 0) {
    w->failed = true;
    return;
  }
  if (w->stream) {
    if (fputs(tmp, w->stream) == EOF) w->failed = true;
  } else if (w->buffer && w->capacity > 0 && (size_t)w->length < w->capacity - 1) {
    size_t room = w->capacity - 1 - (size_t)w->length;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(w->buffer + w->length, tmp, take);
    w->buffer[(size_t)w->length + take] = '\0';
  }
  w->length += n;
}

static void emit_value(writer *w, const ad_tensor *t, int64_t i) {
  if (t->dtype == AD_I64) {
    emit(w, "%" PRId64, ((const int64_t *)t->data)[i]);
    return;
  }
  double v = load(t, i);
  /* printf writes a NaN with its sign bit set as "-nan", although NaN has
     no sign; 0.0 / 0.0 has it set on x86. */
  if (isnan(v)) emit(w, "nan");
  else emit(w, t->dtype == AD_F32 ? "%.6g" : "%.10g", v);
}

/* Writes dimension dim of t starting at flat offset base; indent is the
   column of this dimension's opening bracket. */
static void emit_dim(writer *w, const ad_tensor *t, int dim, int64_t base, const int64_t *strides,
                     bool abbreviate) {
  int64_t n = t->shape[dim];
  emit(w, "[");
  for (int64_t i = 0; i < n; i++) {
    if (abbreviate && n > 2 * PRINT_EDGE && i == PRINT_EDGE) {
      emit(w, dim == t->ndim - 1 ? "..., " : "...,\n%*s", dim == t->ndim - 1 ? 0 : dim + 1, "");
      i = n - PRINT_EDGE - 1;
      continue;
    }
    if (dim == t->ndim - 1) emit_value(w, t, base + i);
    else emit_dim(w, t, dim + 1, base + i * strides[dim], strides, abbreviate);
    if (i + 1 < n) {
      if (dim == t->ndim - 1) emit(w, ", ");
      else emit(w, ",\n%*s", dim + 1, "");
    }
  }
  emit(w, "]");
}

static void write_tensor(writer *w, const ad_tensor *t) {
  emit(w, "tensor(shape=%s, dtype=%s", tshape(t).s, ad_dtype_name((ad_dtype)t->dtype));
  if (requires_grad(t)) emit(w, ", requires_grad");
  if (t->op != OP_LEAF) emit(w, ", op=%s", op_table[t->op].name);
  emit(w, ")\n");
  if (t->ndim == 0) {
    emit_value(w, t, 0);
  } else if (t->numel == 0) {
    emit(w, "[]");
  } else {
    int64_t strides[AD_MAX_DIMS];
    contiguous_strides(t->ndim, t->shape, strides);
    emit_dim(w, t, 0, 0, strides, t->numel > PRINT_FULL_LIMIT);
  }
  emit(w, "\n");
}

ad_status ad_print(const ad_tensor *t, FILE *stream) {
  if (!t) return AD_ERR_ARGUMENT;
  if (!stream) return fail(t->ctx, AD_ERR_ARGUMENT, "ad_print: stream is NULL");
  writer w = {.stream = stream};
  write_tensor(&w, t);
  if (w.failed) return fail(t->ctx, AD_ERR_IO, "ad_print: writing to the stream failed");
  return AD_OK;
}

int64_t ad_format(const ad_tensor *t, char *buffer, size_t capacity) {
  if (!t) return -1;
  if (!buffer && capacity > 0) {
    fail(t->ctx, AD_ERR_ARGUMENT, "ad_format: buffer is NULL but capacity is %zu", capacity);
    return -1;
  }
  writer w = {.buffer = buffer, .capacity = capacity};
  if (buffer && capacity > 0) buffer[0] = '\0';
  write_tensor(&w, t);
  return w.failed ? -1 : w.length;
}
