/* tensor.c: creating tensors, element access and argument checks. */
#include <math.h>
#include <stdint.h>

#include "internal.h"

const char *ad_dtype_name(ad_dtype dtype) {
  switch (dtype) {
  case AD_F32: return "float32";
  case AD_F64: return "float64";
  case AD_I64: return "int64";
  }
  return "invalid dtype";
}

size_t ad_dtype_size(ad_dtype dtype) {
  switch (dtype) {
  case AD_F32: return 4;
  case AD_F64: return 8;
  case AD_I64: return 8;
  }
  return 0;
}

static bool valid_dtype(ad_dtype dtype) {
  return dtype == AD_F32 || dtype == AD_F64 || dtype == AD_I64;
}

void contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
}

int64_t checked_numel(ad_ctx *ctx, const char *op, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > AD_MAX_DIMS) {
    fail(ctx, AD_ERR_SHAPE, "%s: %d dimensions requested; tensors have 0 to %d", op, ndim,
         AD_MAX_DIMS);
    return -1;
  }
  if (ndim > 0 && !shape) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: shape is NULL but ndim is %d; pass %d dimensions", op, ndim,
         ndim);
    return -1;
  }
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      fail(ctx, AD_ERR_SHAPE, "%s: dimension %d of shape %s is negative", op, i,
           shape_str(ndim, shape).s);
      return -1;
    }
    if (shape[i] != 0 && n > INT64_MAX / 16 / shape[i]) {
      fail(ctx, AD_ERR_MEMORY, "%s: shape %s has too many elements to allocate", op,
           shape_str(ndim, shape).s);
      return -1;
    }
    n *= shape[i];
  }
  return n;
}

/* Header, shape and data share one block; data is 64-byte aligned when it
   has 64 bytes or more, so that kernels can use full vector loads. */
static size_t header_bytes(int ndim) {
  size_t h = sizeof(ad_tensor) + (size_t)ndim * sizeof(int64_t);
  return (h + 15) & ~(size_t)15;
}

static void init_header(ad_tensor *t, ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape,
                        int64_t numel) {
  memset(t, 0, sizeof *t);
  t->shape = (int64_t *)(t + 1);
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
  t->numel = numel;
  t->ctx = ctx;
  t->dtype = (uint8_t)dtype;
  t->ndim = (uint8_t)ndim;
  t->op = OP_LEAF;
}

ad_tensor *tensor_new(ad_ctx *ctx, const char *op, ad_dtype dtype, int ndim,
                      const int64_t *shape) {
  int64_t numel = ndim == 0 ? 1 : checked_numel(ctx, op, ndim, shape);
  if (numel < 0) return NULL;
  size_t data_bytes = (size_t)numel * dtype_bytes(dtype);
  size_t head = header_bytes(ndim);
  size_t align = data_bytes >= 64 ? 64 : 16;
  size_t offset = (head + align - 1) & ~(align - 1);
  unsigned char *block = arena_alloc(ctx, offset + data_bytes, align, op);
  if (!block) return NULL;
  ad_tensor *t = (ad_tensor *)block;
  init_header(t, ctx, dtype, ndim, shape, numel);
  t->data = block + offset;
  return t;
}

ad_tensor *tensor_view(ad_ctx *ctx, const char *op, ad_tensor *a, int ndim, const int64_t *shape) {
  ad_tensor *t = arena_alloc(ctx, header_bytes(ndim), 16, op);
  if (!t) return NULL;
  init_header(t, ctx, (ad_dtype)a->dtype, ndim, shape, a->numel);
  t->data = a->data;
  t->base = storage_owner(a);
  return t;
}

bool check_arg_slow(ad_ctx *ctx, const char *op, const char *name, const ad_tensor *t,
                    bool float_only) {
  if (!t) {
    if (ctx->error == AD_OK)
      fail(ctx, AD_ERR_ARGUMENT, "%s: tensor argument '%s' is NULL", op, name);
    return false;
  }
  if (t->ctx != ctx) {
    fail(ctx, AD_ERR_CONTEXT,
         "%s: tensor argument '%s' belongs to another context; copy it into this one with "
         "ad_from_f32/ad_from_f64 first",
         op, name);
    return false;
  }
  if (float_only && !is_float((ad_dtype)t->dtype)) {
    fail(ctx, AD_ERR_DTYPE,
         "%s: tensor argument '%s' has dtype %s; this operation needs float32 or float64 "
         "(convert with ad_cast)",
         op, name, ad_dtype_name((ad_dtype)t->dtype));
    return false;
  }
  return true;
}

bool check_same_dtype_slow(ad_ctx *ctx, const char *op, const ad_tensor *a, const ad_tensor *b) {
  if (a->dtype == b->dtype) return true;
  fail(ctx, AD_ERR_DTYPE,
       "%s: dtypes differ (%s and %s); convert one with ad_cast so both have the same dtype", op,
       ad_dtype_name((ad_dtype)a->dtype), ad_dtype_name((ad_dtype)b->dtype));
  return false;
}

int normalize_axis(ad_ctx *ctx, const char *op, int axis, int ndim) {
  int a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) {
    if (ndim == 0)
      fail(ctx, AD_ERR_AXIS, "%s: axis %d is invalid for a 0-d tensor, which has no axes", op,
           axis);
    else
      fail(ctx, AD_ERR_AXIS, "%s: axis %d is out of range for a tensor of %d dimensions; use %d to %d",
           op, axis, ndim, -ndim, ndim - 1);
    return -1;
  }
  return a;
}

/* ---- Creation ------------------------------------------------------- */

static ad_tensor *new_checked(ad_ctx *ctx, const char *op, ad_dtype dtype, int ndim,
                              const int64_t *shape) {
  if (!ctx) return NULL;
  if (!valid_dtype(dtype)) {
    fail(ctx, AD_ERR_DTYPE, "%s: dtype %d is not AD_F32, AD_F64 or AD_I64", op, (int)dtype);
    return NULL;
  }
  return tensor_new(ctx, op, dtype, ndim, shape);
}

static void fill_value(ad_tensor *t, double value) {
  switch (t->dtype) {
  case AD_F32: {
    float *p = t->data, v = (float)value;
    for (int64_t i = 0; i < t->numel; i++) p[i] = v;
    break;
  }
  case AD_F64: {
    double *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) p[i] = value;
    break;
  }
  default: {
    int64_t *p = t->data, v = (int64_t)value;
    for (int64_t i = 0; i < t->numel; i++) p[i] = v;
    break;
  }
  }
}

/* Rejects a fill value an int64 tensor cannot hold exactly. */
static bool check_int_value(ad_ctx *ctx, const char *op, ad_dtype dtype, double value) {
  if (dtype != AD_I64) return true;
  if (!isfinite(value) || value != floor(value) || fabs(value) > 9.2e18) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: value %g cannot be stored in an int64 tensor; pass an integer",
         op, value);
    return false;
  }
  return true;
}

ad_tensor *ad_full(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape, double value) {
  if (!ctx || !check_int_value(ctx, "ad_full", dtype, value)) return NULL;
  ad_tensor *t = new_checked(ctx, "ad_full", dtype, ndim, shape);
  if (t) fill_value(t, value);
  return t;
}

ad_tensor *ad_zeros(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape) {
  ad_tensor *t = new_checked(ctx, "ad_zeros", dtype, ndim, shape);
  if (t) memset(t->data, 0, (size_t)t->numel * ad_dtype_size(dtype));
  return t;
}

ad_tensor *ad_ones(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape) {
  ad_tensor *t = new_checked(ctx, "ad_ones", dtype, ndim, shape);
  if (t) fill_value(t, 1.0);
  return t;
}

ad_tensor *ad_scalar(ad_ctx *ctx, ad_dtype dtype, double value) {
  if (!ctx || !check_int_value(ctx, "ad_scalar", dtype, value)) return NULL;
  ad_tensor *t = new_checked(ctx, "ad_scalar", dtype, 0, NULL);
  if (t) fill_value(t, value);
  return t;
}

static ad_tensor *from_data(ad_ctx *ctx, const char *op, ad_dtype dtype, int ndim,
                            const int64_t *shape, const void *data) {
  if (!ctx) return NULL;
  int64_t n = checked_numel(ctx, op, ndim, shape);
  if (n < 0) return NULL;
  if (!data && n > 0) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: data is NULL; pass %lld elements", op, (long long)n);
    return NULL;
  }
  ad_tensor *t = tensor_new(ctx, op, dtype, ndim, shape);
  if (t && n > 0) memcpy(t->data, data, (size_t)n * ad_dtype_size(dtype));
  return t;
}

ad_tensor *ad_from_f32(ad_ctx *ctx, int ndim, const int64_t *shape, const float *data) {
  return from_data(ctx, "ad_from_f32", AD_F32, ndim, shape, data);
}

ad_tensor *ad_from_f64(ad_ctx *ctx, int ndim, const int64_t *shape, const double *data) {
  return from_data(ctx, "ad_from_f64", AD_F64, ndim, shape, data);
}

ad_tensor *ad_from_i64(ad_ctx *ctx, int ndim, const int64_t *shape, const int64_t *data) {
  return from_data(ctx, "ad_from_i64", AD_I64, ndim, shape, data);
}

ad_tensor *ad_arange(ad_ctx *ctx, ad_dtype dtype, double start, double stop, double step) {
  if (!ctx) return NULL;
  if (!isfinite(start) || !isfinite(stop) || !isfinite(step) || step == 0) {
    fail(ctx, AD_ERR_ARGUMENT,
         "ad_arange: start %g, stop %g and step %g must be finite and step nonzero", start, stop,
         step);
    return NULL;
  }
  double count = ceil((stop - start) / step);
  if (count < 0) count = 0;
  if (count > 1e15) {
    fail(ctx, AD_ERR_MEMORY, "ad_arange: %g elements are too many; use a larger step", count);
    return NULL;
  }
  int64_t n = (int64_t)count;
  ad_tensor *t = new_checked(ctx, "ad_arange", dtype, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) store(t, i, start + (double)i * step);
  return t;
}

ad_tensor *ad_linspace(ad_ctx *ctx, ad_dtype dtype, double start, double stop, int64_t count) {
  if (!ctx) return NULL;
  if (count < 0 || !isfinite(start) || !isfinite(stop)) {
    fail(ctx, AD_ERR_ARGUMENT,
         "ad_linspace: count %lld must be >= 0 and start %g and stop %g finite", (long long)count,
         start, stop);
    return NULL;
  }
  ad_tensor *t = new_checked(ctx, "ad_linspace", dtype, 1, &count);
  if (!t) return NULL;
  double step = count > 1 ? (stop - start) / (double)(count - 1) : 0;
  for (int64_t i = 0; i < count; i++)
    store(t, i, i == count - 1 && count > 1 ? stop : start + (double)i * step);
  return t;
}

/* ---- Persistent tensors ----------------------------------------------- */

/* A persistent tensor of a's dtype and shape, not yet linked into ctx. */
static ad_tensor *persistent_new(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape,
                                 int64_t numel) {
  size_t data_bytes = (size_t)numel * ad_dtype_size(dtype);
  size_t head = offsetof(persistent_block, tensor) + header_bytes(ndim);
  size_t offset = (head + 63) & ~(size_t)63;
  size_t size = offset + data_bytes + 64;
  persistent_block *b = ctx_alloc(ctx, size);
  if (!b) return NULL;
  b->size = size;
  ad_tensor *t = &b->tensor;
  init_header(t, ctx, dtype, ndim, shape, numel);
  uintptr_t data = ((uintptr_t)b + offset + 63) & ~(uintptr_t)63;
  t->data = (void *)data;
  t->flags = F_PERSISTENT;
  b->prev = NULL;
  b->next = ctx->persistent;
  if (ctx->persistent) ctx->persistent->prev = b;
  ctx->persistent = b;
  ctx->persistent_bytes += size;
  return t;
}

ad_tensor *persistent_like(ad_ctx *ctx, const ad_tensor *a) {
  return persistent_new(ctx, (ad_dtype)a->dtype, a->ndim, a->shape, a->numel);
}

ad_tensor *ad_persist(ad_tensor *t) {
  if (!t) return NULL;
  ad_ctx *ctx = t->ctx;
  ad_tensor *p = persistent_like(ctx, t);
  if (!p) {
    fail(ctx, AD_ERR_MEMORY, "ad_persist: out of memory copying a tensor of shape %s",
         tshape(t).s);
    return NULL;
  }
  memcpy(p->data, t->data, (size_t)t->numel * ad_dtype_size((ad_dtype)t->dtype));
  return p;
}

static void persistent_release(ad_ctx *ctx, ad_tensor *t) {
  persistent_block *b = (persistent_block *)((char *)t - offsetof(persistent_block, tensor));
  if (b->prev) b->prev->next = b->next;
  else ctx->persistent = b->next;
  if (b->next) b->next->prev = b->prev;
  ctx->persistent_bytes -= b->size;
  ctx_free(ctx, b, b->size);
}

void ad_tensor_free(ad_tensor *t) {
  if (!t) return;
  ad_ctx *ctx = t->ctx;
  if (!(t->flags & F_PERSISTENT)) {
    fail(ctx, AD_ERR_ARGUMENT,
         "ad_tensor_free: the tensor of shape %s lives in the arena; ad_ctx_reset releases it",
         tshape(t).s);
    return;
  }
  if (t->grad && (t->grad->flags & F_PERSISTENT)) persistent_release(ctx, t->grad);
  persistent_release(ctx, t);
}

/* ---- Queries -------------------------------------------------------- */

ad_ctx *ad_tensor_ctx(const ad_tensor *t) { return t ? t->ctx : NULL; }
ad_dtype ad_tensor_dtype(const ad_tensor *t) { return t ? (ad_dtype)t->dtype : AD_F32; }
int ad_ndim(const ad_tensor *t) { return t ? t->ndim : 0; }
const int64_t *ad_shape(const ad_tensor *t) { return t ? t->shape : NULL; }
int64_t ad_numel(const ad_tensor *t) { return t ? t->numel : 0; }
bool ad_is_persistent(const ad_tensor *t) { return t && (t->flags & F_PERSISTENT); }

int64_t ad_dim(const ad_tensor *t, int axis) {
  if (!t) return -1;
  int a = normalize_axis(t->ctx, "ad_dim", axis, t->ndim);
  return a < 0 ? -1 : t->shape[a];
}

/* ---- Element access ------------------------------------------------- */

static const void *data_checked(const ad_tensor *t, ad_dtype dtype, const char *op) {
  if (!t) return NULL;
  if (t->dtype != dtype) {
    fail(t->ctx, AD_ERR_DTYPE, "%s: the tensor has dtype %s, not %s; convert it with ad_cast", op,
         ad_dtype_name((ad_dtype)t->dtype), ad_dtype_name(dtype));
    return NULL;
  }
  return t->data;
}

static void *data_mut(ad_tensor *t, ad_dtype dtype, const char *op) {
  void *p = (void *)data_checked(t, dtype, op);
  if (p) storage_owner(t)->version++;
  return p;
}

const float *ad_data_f32(const ad_tensor *t) { return data_checked(t, AD_F32, "ad_data_f32"); }
const double *ad_data_f64(const ad_tensor *t) { return data_checked(t, AD_F64, "ad_data_f64"); }
const int64_t *ad_data_i64(const ad_tensor *t) { return data_checked(t, AD_I64, "ad_data_i64"); }
float *ad_data_f32_mut(ad_tensor *t) { return data_mut(t, AD_F32, "ad_data_f32_mut"); }
double *ad_data_f64_mut(ad_tensor *t) { return data_mut(t, AD_F64, "ad_data_f64_mut"); }
int64_t *ad_data_i64_mut(ad_tensor *t) { return data_mut(t, AD_I64, "ad_data_i64_mut"); }

/* The flat offset of index, or -1 after recording AD_ERR_INDEX. */
static int64_t flat_offset(const ad_tensor *t, const int64_t *index, const char *op) {
  if (t->ndim > 0 && !index) {
    fail(t->ctx, AD_ERR_ARGUMENT, "%s: index is NULL; pass %d coordinates", op, t->ndim);
    return -1;
  }
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) {
    int64_t k = index[i] < 0 ? index[i] + t->shape[i] : index[i];
    if (k < 0 || k >= t->shape[i]) {
      fail(t->ctx, AD_ERR_INDEX,
           "%s: index %lld is out of range for dimension %d of size %lld (shape %s)", op,
           (long long)index[i], i, (long long)t->shape[i], tshape(t).s);
      return -1;
    }
    off = off * t->shape[i] + k;
  }
  return off;
}

ad_status ad_get(const ad_tensor *t, const int64_t *index, double *value) {
  if (!t) return AD_ERR_ARGUMENT;
  if (!value) return fail(t->ctx, AD_ERR_ARGUMENT, "ad_get: value is NULL");
  int64_t off = flat_offset(t, index, "ad_get");
  if (off < 0) return t->ctx->error;
  *value = load(t, off);
  return AD_OK;
}

ad_status ad_set(ad_tensor *t, const int64_t *index, double value) {
  if (!t) return AD_ERR_ARGUMENT;
  if (!check_int_value(t->ctx, "ad_set", (ad_dtype)t->dtype, value)) return AD_ERR_ARGUMENT;
  int64_t off = flat_offset(t, index, "ad_set");
  if (off < 0) return t->ctx->error;
  store(t, off, value);
  storage_owner(t)->version++;
  return AD_OK;
}

ad_status ad_item(const ad_tensor *t, double *value) {
  if (!t) return AD_ERR_ARGUMENT;
  if (!value) return fail(t->ctx, AD_ERR_ARGUMENT, "ad_item: value is NULL");
  if (t->numel != 1)
    return fail(t->ctx, AD_ERR_SHAPE,
                "ad_item: the tensor has shape %s (%lld elements); ad_item needs exactly one, so "
                "reduce it first (for example with ad_sum_all) or use ad_get",
                tshape(t).s, (long long)t->numel);
  *value = load(t, 0);
  return AD_OK;
}

ad_status ad_fill(ad_tensor *t, double value) {
  if (!t) return AD_ERR_ARGUMENT;
  if (!check_int_value(t->ctx, "ad_fill", (ad_dtype)t->dtype, value)) return AD_ERR_ARGUMENT;
  fill_value(t, value);
  storage_owner(t)->version++;
  return AD_OK;
}

ad_status ad_copy_into(ad_tensor *dst, const ad_tensor *src) {
  if (!dst) return AD_ERR_ARGUMENT;
  ad_ctx *ctx = dst->ctx;
  if (!src) return fail(ctx, AD_ERR_ARGUMENT, "ad_copy_into: src is NULL");
  if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, (size_t)dst->ndim * 8) != 0)
    return fail(ctx, AD_ERR_SHAPE, "ad_copy_into: shapes differ (destination %s, source %s)",
                tshape(dst).s, tshape(src).s);
  if (dst->dtype == src->dtype) {
    if (dst->data != src->data)
      memmove(dst->data, src->data, (size_t)src->numel * ad_dtype_size((ad_dtype)src->dtype));
  } else if (dst->dtype == AD_I64) {
    /* Every value is checked before the first write, so a failure leaves
       dst as it was. */
    for (int64_t i = 0; i < src->numel; i++)
      if (!check_int_value(ctx, "ad_copy_into", AD_I64, trunc(load(src, i)))) return ctx->error;
    for (int64_t i = 0; i < src->numel; i++) store(dst, i, trunc(load(src, i)));
  } else {
    for (int64_t i = 0; i < src->numel; i++) store(dst, i, load(src, i));
  }
  storage_owner(dst)->version++;
  return AD_OK;
}
