/*
 * shape.c: operations that move elements without arithmetic: reshape,
 * permute, expand, slice, index_select, gather, concat, and their adjoints.
 *
 * Each backward rule is the adjoint of its forward map: reshape's is reshape
 * back, permute's the inverse permutation, expand's a sum over the broadcast
 * dimensions, slice's the placement of g into zeros (OP_SLICE_ADJOINT),
 * index_select's an index-add, gather's a scatter-add, concat's slices.
 * The adjoints are recorded operations too, so that second derivatives
 * through them work.
 */
#include <math.h>
#include <stdio.h>

#include "iter.h"

/* ---- reshape, squeeze, unsqueeze, detach ------------------------------ */

ad_tensor *ad_reshape(ad_ctx *ctx, ad_tensor *a, int ndim, const int64_t *shape) {
  const char *name = "ad_reshape";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  if (ndim < 0 || ndim > AD_MAX_DIMS || (ndim > 0 && !shape)) {
    fail(ctx, AD_ERR_SHAPE, "%s: %d dimensions requested%s; tensors have 0 to %d", name, ndim,
         ndim > 0 && !shape ? " with a NULL shape" : "", AD_MAX_DIMS);
    return NULL;
  }
  int64_t resolved[AD_MAX_DIMS];
  int infer = -1;
  int64_t known = 1;
  for (int d = 0; d < ndim; d++) {
    resolved[d] = shape[d];
    if (shape[d] == -1 && infer < 0) {
      infer = d;
    } else if (shape[d] < 0) {
      fail(ctx, AD_ERR_SHAPE, "%s: dimension %d of the new shape %s is invalid; only one -1 is "
           "allowed and no other negative size", name, d, shape_str(ndim, shape).s);
      return NULL;
    } else if (shape[d] != 0 && known > INT64_MAX / shape[d]) {
      /* The product of the sizes overflows, so it cannot equal a->numel. */
      fail(ctx, AD_ERR_SHAPE, "%s: the new shape %s has more elements than an int64 counts; "
           "the tensor of shape %s has %lld", name, shape_str(ndim, shape).s, tshape(a).s,
           (long long)a->numel);
      return NULL;
    } else {
      known *= shape[d];
    }
  }
  if (infer >= 0) {
    if (known == 0 || a->numel % known != 0) {
      fail(ctx, AD_ERR_SHAPE, "%s: cannot infer the -1 in %s for %lld elements (shape %s)", name,
           shape_str(ndim, shape).s, (long long)a->numel, tshape(a).s);
      return NULL;
    }
    resolved[infer] = a->numel / known;
    known = a->numel;
  }
  if (known != a->numel) {
    fail(ctx, AD_ERR_SHAPE,
         "%s: cannot reshape %s (%lld elements) into %s (%lld elements); the counts must match",
         name, tshape(a).s, (long long)a->numel, shape_str(ndim, shape).s, (long long)known);
    return NULL;
  }
  ad_tensor *y = tensor_view(ctx, name, a, ndim, resolved);
  return maybe_record(ctx, y, OP_RESHAPE, a, NULL, NULL);
}

ad_tensor *ad_squeeze(ad_ctx *ctx, ad_tensor *a, int axis) {
  const char *name = "ad_squeeze";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  if (a->shape[ax] != 1) {
    fail(ctx, AD_ERR_SHAPE, "%s: axis %d of shape %s has size %lld, not 1", name, axis,
         tshape(a).s, (long long)a->shape[ax]);
    return NULL;
  }
  int64_t shape[AD_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < a->ndim; d++)
    if (d != ax) shape[n++] = a->shape[d];
  return ad_reshape(ctx, a, n, shape);
}

ad_tensor *ad_unsqueeze(ad_ctx *ctx, ad_tensor *a, int axis) {
  const char *name = "ad_unsqueeze";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  if (a->ndim == AD_MAX_DIMS) {
    fail(ctx, AD_ERR_SHAPE, "%s: the tensor already has the maximum of %d dimensions", name,
         AD_MAX_DIMS);
    return NULL;
  }
  int ax = normalize_axis(ctx, name, axis, a->ndim + 1);
  if (ax < 0) return NULL;
  int64_t shape[AD_MAX_DIMS];
  int n = 0;
  for (int d = 0; d <= a->ndim; d++) {
    if (d == ax) shape[n++] = 1;
    if (d < a->ndim) shape[n++] = a->shape[d];
  }
  return ad_reshape(ctx, a, n, shape);
}

ad_tensor *ad_detach(ad_ctx *ctx, ad_tensor *a) {
  if (!ctx || !check_arg(ctx, "ad_detach", "a", a, false)) return NULL;
  return tensor_view(ctx, "ad_detach", a, a->ndim, a->shape);
}

ad_tensor *ad_clone(ad_ctx *ctx, ad_tensor *a) {
  if (!ctx || !check_arg(ctx, "ad_clone", "a", a, false)) return NULL;
  ad_tensor *y = tensor_like(ctx, "ad_clone", a);
  if (!y) return NULL;
  memcpy(y->data, a->data, (size_t)a->numel * ad_dtype_size((ad_dtype)a->dtype));
  return maybe_record(ctx, y, OP_CLONE, a, NULL, NULL);
}

ad_tensor *ad_cast(ad_ctx *ctx, ad_tensor *a, ad_dtype dtype) {
  const char *name = "ad_cast";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  if (ad_dtype_size(dtype) == 0) {
    fail(ctx, AD_ERR_DTYPE, "%s: dtype %d is not AD_F32, AD_F64 or AD_I64", name, (int)dtype);
    return NULL;
  }
  ad_tensor *y = tensor_new(ctx, name, dtype, a->ndim, a->shape);
  if (!y) return NULL;
  for (int64_t i = 0; i < a->numel; i++) {
    if (dtype == AD_I64 && a->dtype != AD_I64) {
      double v = trunc(load(a, i));
      if (!(fabs(v) < 9.2e18)) {
        fail(ctx, AD_ERR_ARGUMENT, "%s: element %lld is %g, which int64 cannot hold", name,
             (long long)i, load(a, i));
        return NULL;
      }
      ((int64_t *)y->data)[i] = (int64_t)v;
    } else if (dtype == AD_I64) {
      ((int64_t *)y->data)[i] = ((const int64_t *)a->data)[i];
    } else {
      store(y, i, load(a, i));
    }
  }
  if (is_float(dtype) && is_float((ad_dtype)a->dtype)) maybe_record(ctx, y, OP_CAST, a, NULL, NULL);
  return y;
}

/* ---- permute and transpose -------------------------------------------- */

/* Strides over the output shape that read a's element for each output one. */
static void permuted_strides(const ad_tensor *a, const int *perm, int64_t *strides) {
  int64_t own[AD_MAX_DIMS];
  contiguous_strides(a->ndim, a->shape, own);
  for (int d = 0; d < a->ndim; d++) strides[d] = own[perm[d]];
}

void permute_copy(const ad_tensor *a, const int *perm, ad_tensor *out) {
  int64_t st[AD_MAX_DIMS];
  permuted_strides(a, perm, st);
  const int64_t *strides[1] = {st};
  nd_iter it;
  iter_init(&it, out->ndim, out->shape, 1, NULL, NULL, strides);
  size_t es = ad_dtype_size((ad_dtype)a->dtype);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    int64_t off = it.offset[0], s = it.inner_stride[0];
    if (es == 4) {
      const float *src = a->data;
      float *dst = (float *)out->data + pos;
      for (int64_t i = 0; i < it.inner; i++) dst[i] = src[off + i * s];
    } else {
      const double *src = a->data;
      double *dst = (double *)out->data + pos;
      for (int64_t i = 0; i < it.inner; i++) dst[i] = src[off + i * s];
    }
    pos += it.inner;
    iter_next(&it);
  }
}

ad_tensor *ad_permute(ad_ctx *ctx, ad_tensor *a, const int *perm) {
  const char *name = "ad_permute";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  if (!perm && a->ndim > 0) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: perm is NULL; pass %d axes", name, a->ndim);
    return NULL;
  }
  int p[AD_MAX_DIMS];
  uint32_t seen = 0;
  int64_t shape[AD_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++) {
    p[d] = normalize_axis(ctx, name, perm[d], a->ndim);
    if (p[d] < 0) return NULL;
    if (seen & (1u << p[d])) {
      fail(ctx, AD_ERR_AXIS, "%s: axis %d appears twice in the permutation; list each axis once",
           name, perm[d]);
      return NULL;
    }
    seen |= 1u << p[d];
    shape[d] = a->shape[p[d]];
  }
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, a->ndim, shape);
  if (!y) return NULL;
  for (int d = 0; d < a->ndim; d++) y->p.perm[d] = (int8_t)p[d];
  permute_copy(a, p, y);
  return maybe_record(ctx, y, OP_PERMUTE, a, NULL, NULL);
}

ad_tensor *ad_transpose(ad_ctx *ctx, ad_tensor *a, int axis0, int axis1) {
  const char *name = "ad_transpose";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  int x = normalize_axis(ctx, name, axis0, a->ndim);
  int y = x < 0 ? -1 : normalize_axis(ctx, name, axis1, a->ndim);
  if (y < 0) return NULL;
  int perm[AD_MAX_DIMS];
  for (int d = 0; d < a->ndim; d++) perm[d] = d;
  perm[x] = y;
  perm[y] = x;
  return ad_permute(ctx, a, perm);
}

/* ---- expand --------------------------------------------------------- */

ad_tensor *ad_expand(ad_ctx *ctx, ad_tensor *a, int ndim, const int64_t *shape) {
  const char *name = "ad_expand";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  if (checked_numel(ctx, name, ndim, shape) < 0) return NULL;
  int n;
  int64_t out[AD_MAX_DIMS];
  if (ndim < a->ndim ||
      !broadcast_shapes(ctx, name, a->ndim, a->shape, ndim, shape, &n, out) ||
      memcmp(out, shape, (size_t)ndim * sizeof(int64_t)) != 0) {
    if (ctx->error == AD_OK)
      fail(ctx, AD_ERR_SHAPE,
           "%s: shape %s cannot be broadcast to %s; each dimension must match or be 1", name,
           tshape(a).s, shape_str(ndim, shape).s);
    return NULL;
  }
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, ndim, shape);
  if (!y) return NULL;
  const int ndims[1] = {a->ndim};
  const int64_t *shapes[1] = {a->shape};
  nd_iter it;
  iter_init(&it, ndim, shape, 1, ndims, shapes, NULL);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, pos++) {
      int64_t src = it.offset[0] + i * it.inner_stride[0];
      if (a->dtype == AD_F32) ((float *)y->data)[pos] = ((const float *)a->data)[src];
      else if (a->dtype == AD_F64) ((double *)y->data)[pos] = ((const double *)a->data)[src];
      else ((int64_t *)y->data)[pos] = ((const int64_t *)a->data)[src];
    }
    iter_next(&it);
  }
  return maybe_record(ctx, y, OP_EXPAND, a, NULL, NULL);
}

/* ---- slices and their adjoint ------------------------------------------ */

/* Copies along axis between a big tensor and a small one holding big's
   elements start, start + step, ... When to_big, small is added into big
   (or written, when fresh); else big's elements are copied into small. */
static void slice_move(ad_dtype dtype, const int64_t *big_shape, int ndim, int axis, int64_t start,
                       int64_t step, void *big, void *small, int64_t len, bool to_big, bool fresh) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= big_shape[d];
  for (int d = axis + 1; d < ndim; d++) inner *= big_shape[d];
  int64_t dim = big_shape[axis];
  size_t es = ad_dtype_size(dtype);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t k = 0; k < len; k++) {
      int64_t bi = (o * dim + start + k * step) * inner, si = (o * len + k) * inner;
      if (!to_big) {
        memcpy((char *)small + si * (int64_t)es, (const char *)big + bi * (int64_t)es,
               (size_t)inner * es);
        continue;
      }
      for (int64_t i = 0; i < inner; i++) {
        if (dtype == AD_F32) {
          float *b = (float *)big + bi + i, *s = (float *)small + si + i;
          if (to_big) *b = (fresh ? 0.0f : *b) + *s;
          else *s = *b;
        } else {
          double *b = (double *)big + bi + i, *s = (double *)small + si + i;
          if (to_big) *b = (fresh ? 0.0 : *b) + *s;
          else *s = *b;
        }
      }
    }
  }
}

static ad_tensor *slice_record(ad_ctx *ctx, ad_tensor *a, int axis, int64_t start, int64_t step,
                               int64_t len) {
  const char *name = "ad_slice";
  int64_t shape[AD_MAX_DIMS];
  memcpy(shape, a->shape, (size_t)a->ndim * sizeof(int64_t));
  shape[axis] = len;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, a->ndim, shape);
  if (!y) return NULL;
  slice_move((ad_dtype)a->dtype, a->shape, a->ndim, axis, start, step, a->data, y->data,
             len, false, false);
  y->p.i[0] = start;
  y->p.i[1] = step;
  y->p.i[2] = axis;
  return maybe_record(ctx, y, OP_SLICE, a, NULL, NULL);
}

/* i clamped to [0, dim], as Python clamps slice bounds. */
static int64_t clamp_index(int64_t i, int64_t dim) {
  if (i < 0) return 0;
  if (i > dim) return dim;
  return i;
}

ad_tensor *ad_slice(ad_ctx *ctx, ad_tensor *a, int axis, int64_t start, int64_t stop,
                    int64_t step) {
  const char *name = "ad_slice";
  if (!ctx || !check_arg(ctx, name, "a", a, false)) return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  if (step <= 0) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: step %lld must be positive", name, (long long)step);
    return NULL;
  }
  int64_t dim = a->shape[ax];
  if (start < 0) start += dim;
  if (stop < 0) stop += dim;
  start = clamp_index(start, dim);
  stop = clamp_index(stop, dim);
  int64_t len = stop > start ? (stop - start - 1) / step + 1 : 0;
  return slice_record(ctx, a, ax, start, step, len);
}

/* Zeros of shape (ndim, shape) with g placed at start, start + step, ...
   along axis: the adjoint of ad_slice. */
static ad_tensor *slice_adjoint(ad_ctx *ctx, ad_tensor *g, int ndim, const int64_t *shape,
                                int axis, int64_t start, int64_t step) {
  if (!g) return NULL;
  ad_tensor *y = tensor_new(ctx, "backward", (ad_dtype)g->dtype, ndim, shape);
  if (!y) return NULL;
  memset(y->data, 0, (size_t)y->numel * ad_dtype_size((ad_dtype)y->dtype));
  slice_move((ad_dtype)g->dtype, shape, ndim, axis, start, step, y->data, g->data, g->shape[axis],
             true, false);
  y->p.i[0] = start;
  y->p.i[1] = step;
  y->p.i[2] = axis;
  return maybe_record(ctx, y, OP_SLICE_ADJOINT, g, NULL, NULL);
}

/* ---- index_select and index_add ------------------------------------- */

/* Validates int64 indices for a dimension of size dim. */
static bool check_indices(ad_ctx *ctx, const char *name, const ad_tensor *idx, int64_t dim) {
  const int64_t *p = idx->data;
  for (int64_t i = 0; i < idx->numel; i++) {
    if (p[i] < -dim || p[i] >= dim) {
      fail(ctx, AD_ERR_INDEX,
           "%s: index %lld at position %lld is out of range for a dimension of size %lld; use "
           "%lld to %lld",
           name, (long long)p[i], (long long)i, (long long)dim, (long long)-dim,
           (long long)dim - 1);
      return false;
    }
  }
  return true;
}

/* Moves rows along axis between big (dim rows) and small (one row per
   index): small[k] = big[idx[k]], or big[idx[k]] += small[k] when to_big. */
static void index_move(ad_dtype dtype, const int64_t *big_shape, int ndim, int axis,
                       const int64_t *idx, int64_t count, void *big, void *small, bool to_big) {
  int64_t outer = 1, inner = 1, dim = big_shape[axis];
  for (int d = 0; d < axis; d++) outer *= big_shape[d];
  for (int d = axis + 1; d < ndim; d++) inner *= big_shape[d];
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t k = 0; k < count; k++) {
      int64_t row = idx[k] < 0 ? idx[k] + dim : idx[k];
      int64_t bi = (o * dim + row) * inner, si = (o * count + k) * inner;
      if (!to_big) {
        size_t es = ad_dtype_size(dtype);
        memcpy((char *)small + si * (int64_t)es, (const char *)big + bi * (int64_t)es,
               (size_t)inner * es);
        continue;
      }
      for (int64_t i = 0; i < inner; i++) {
        if (dtype == AD_F32) {
          float *b = (float *)big + bi + i, *s = (float *)small + si + i;
          if (to_big) *b += *s;
          else *s = *b;
        } else {
          double *b = (double *)big + bi + i, *s = (double *)small + si + i;
          if (to_big) *b += *s;
          else *s = *b;
        }
      }
    }
  }
}

static bool check_index_tensor(ad_ctx *ctx, const char *name, const ad_tensor *idx) {
  if (!check_arg(ctx, name, "indices", idx, false)) return false;
  if (idx->dtype != AD_I64) {
    fail(ctx, AD_ERR_DTYPE, "%s: indices have dtype %s; they must be int64 (see ad_from_i64)",
         name, ad_dtype_name((ad_dtype)idx->dtype));
    return false;
  }
  return true;
}

ad_tensor *ad_index_select(ad_ctx *ctx, ad_tensor *a, int axis, ad_tensor *indices) {
  const char *name = "ad_index_select";
  if (!ctx || !check_arg(ctx, name, "a", a, false) || !check_index_tensor(ctx, name, indices))
    return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  if (indices->ndim != 1) {
    fail(ctx, AD_ERR_SHAPE, "%s: indices have shape %s; they must be 1-d", name,
         tshape(indices).s);
    return NULL;
  }
  if (!check_indices(ctx, name, indices, a->shape[ax])) return NULL;
  int64_t shape[AD_MAX_DIMS];
  memcpy(shape, a->shape, (size_t)a->ndim * sizeof(int64_t));
  shape[ax] = indices->numel;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, a->ndim, shape);
  if (!y) return NULL;
  index_move((ad_dtype)a->dtype, a->shape, a->ndim, ax, indices->data, indices->numel,
             a->data, y->data, false);
  y->p.i[0] = ax;
  if (should_record(ctx, a, NULL, NULL)) record(ctx, y, OP_INDEX_SELECT, a, indices, NULL);
  return y;
}

/* Zeros of shape (ndim, shape) plus g's rows added at the indices along
   axis: the adjoint of index_select. */
static ad_tensor *index_add(ad_ctx *ctx, ad_tensor *g, ad_tensor *indices, int axis, int ndim,
                            const int64_t *shape) {
  if (!g) return NULL;
  ad_tensor *y = tensor_new(ctx, "backward", (ad_dtype)g->dtype, ndim, shape);
  if (!y) return NULL;
  memset(y->data, 0, (size_t)y->numel * ad_dtype_size((ad_dtype)y->dtype));
  index_move((ad_dtype)g->dtype, shape, ndim, axis, indices->data, indices->numel, y->data,
             g->data, true);
  y->p.i[0] = axis;
  if (should_record(ctx, g, NULL, NULL)) record(ctx, y, OP_INDEX_ADD, g, indices, NULL);
  return y;
}

/* ---- gather and scatter_add ------------------------------------------- */

/* For each element of index (shape of index): moves between big and small,
   where small has index's shape and big's element is found by replacing the
   axis coordinate with the index value. */
static void gather_move(ad_dtype dtype, const int64_t *big_shape, int ndim, int axis,
                        const ad_tensor *index, void *big, void *small, bool to_big) {
  int64_t big_strides[AD_MAX_DIMS];
  contiguous_strides(ndim, big_shape, big_strides);
  int64_t coord[AD_MAX_DIMS] = {0};
  const int64_t *ip = index->data;
  for (int64_t k = 0; k < index->numel; k++) {
    int64_t off = 0;
    for (int d = 0; d < ndim; d++) {
      int64_t c = coord[d];
      if (d == axis) c = ip[k] < 0 ? ip[k] + big_shape[axis] : ip[k];
      off += c * big_strides[d];
    }
    if (dtype == AD_F32) {
      float *b = (float *)big + off, *s = (float *)small + k;
      if (to_big) *b += *s;
      else *s = *b;
    } else {
      double *b = (double *)big + off, *s = (double *)small + k;
      if (to_big) *b += *s;
      else *s = *b;
    }
    for (int d = ndim - 1; d >= 0; d--) {
      if (++coord[d] < index->shape[d]) break;
      coord[d] = 0;
    }
  }
}

ad_tensor *ad_gather(ad_ctx *ctx, ad_tensor *a, int axis, ad_tensor *index) {
  const char *name = "ad_gather";
  if (!ctx || !check_arg(ctx, name, "a", a, true) || !check_index_tensor(ctx, name, index))
    return NULL;
  int ax = normalize_axis(ctx, name, axis, a->ndim);
  if (ax < 0) return NULL;
  if (index->ndim != a->ndim) {
    fail(ctx, AD_ERR_SHAPE, "%s: index has shape %s and a has shape %s; they need the same "
         "number of dimensions", name, tshape(index).s, tshape(a).s);
    return NULL;
  }
  for (int d = 0; d < a->ndim; d++) {
    if (d != ax && index->shape[d] > a->shape[d]) {
      fail(ctx, AD_ERR_SHAPE, "%s: index shape %s exceeds a's shape %s in dimension %d", name,
           tshape(index).s, tshape(a).s, d);
      return NULL;
    }
  }
  if (!check_indices(ctx, name, index, a->shape[ax])) return NULL;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)a->dtype, index->ndim, index->shape);
  if (!y) return NULL;
  gather_move((ad_dtype)a->dtype, a->shape, a->ndim, ax, index, a->data, y->data, false);
  y->p.i[0] = ax;
  if (should_record(ctx, a, NULL, NULL)) record(ctx, y, OP_GATHER, a, index, NULL);
  return y;
}

/* Zeros of shape (ndim, shape) with g (index's shape) added at the gathered
   positions: the adjoint of gather. */
static ad_tensor *scatter_add(ad_ctx *ctx, ad_tensor *g, ad_tensor *index, int axis, int ndim,
                              const int64_t *shape) {
  if (!g) return NULL;
  ad_tensor *y = tensor_new(ctx, "backward", (ad_dtype)g->dtype, ndim, shape);
  if (!y) return NULL;
  memset(y->data, 0, (size_t)y->numel * ad_dtype_size((ad_dtype)y->dtype));
  gather_move((ad_dtype)g->dtype, shape, ndim, axis, index, y->data, g->data, true);
  y->p.i[0] = axis;
  if (should_record(ctx, g, NULL, NULL)) record(ctx, y, OP_SCATTER_ADD, g, index, NULL);
  return y;
}

/* ---- concat and stack ------------------------------------------------ */

/* Checks entry i of a list of count tensors, naming it in the message. */
static bool check_list_entry(ad_ctx *ctx, const char *name, ad_tensor *const *tensors, int i,
                             int count) {
  char label[48];
  snprintf(label, sizeof label, "tensors[%d] of %d", i, count);
  return check_arg(ctx, name, label, tensors[i], false);
}

/* The shape of the concatenation along axis ax into shape. Returns false
   after recording an error when the tensors do not fit together. */
static bool concat_shape(ad_ctx *ctx, const char *name, int count, ad_tensor *const *tensors,
                         int ax, int axis, int64_t *shape) {
  ad_tensor *first = tensors[0];
  memcpy(shape, first->shape, (size_t)first->ndim * sizeof(int64_t));
  shape[ax] = 0;
  for (int i = 0; i < count; i++) {
    ad_tensor *t = tensors[i];
    if (!check_same_dtype(ctx, name, first, t)) return false;
    bool ok = t->ndim == first->ndim;
    for (int d = 0; ok && d < t->ndim; d++)
      if (d != ax && t->shape[d] != first->shape[d]) ok = false;
    if (!ok) {
      fail(ctx, AD_ERR_SHAPE, "%s: tensor %d has shape %s but tensor 0 has %s; all dimensions "
           "except axis %d must match", name, i, tshape(t).s, tshape(first).s, axis);
      return false;
    }
    if (shape[ax] > INT64_MAX - t->shape[ax]) {
      fail(ctx, AD_ERR_SHAPE, "%s: the joined axis %d would have more elements than an int64 "
           "counts", name, axis);
      return false;
    }
    shape[ax] += t->shape[ax];
  }
  return true;
}

/* Copies the inputs, one after the other along axis ax, into y. */
static void concat_copy(int count, ad_tensor *const *tensors, int ax, ad_tensor *y) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < ax; d++) outer *= y->shape[d];
  for (int d = ax + 1; d < y->ndim; d++) inner *= y->shape[d];
  size_t es = ad_dtype_size((ad_dtype)y->dtype);
  int64_t row = y->shape[ax] * inner, at = 0;
  for (int i = 0; i < count; i++) {
    int64_t chunk = tensors[i]->shape[ax] * inner;
    for (int64_t o = 0; o < outer; o++)
      memcpy((char *)y->data + (o * row + at) * (int64_t)es,
             (const char *)tensors[i]->data + o * chunk * (int64_t)es, (size_t)chunk * es);
    at += chunk;
  }
}

ad_tensor *ad_concat(ad_ctx *ctx, int count, ad_tensor *const *tensors, int axis) {
  const char *name = "ad_concat";
  if (!ctx) return NULL;
  if (count < 1 || !tensors) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: needs a list of at least one tensor, got %d tensors%s", name,
         count, tensors ? "" : " and a NULL list");
    return NULL;
  }
  for (int i = 0; i < count; i++)
    if (!check_list_entry(ctx, name, tensors, i, count)) return NULL;
  int ax = normalize_axis(ctx, name, axis, tensors[0]->ndim);
  int64_t shape[AD_MAX_DIMS];
  if (ax < 0 || !concat_shape(ctx, name, count, tensors, ax, axis, shape)) return NULL;
  ad_tensor *y = tensor_new(ctx, name, (ad_dtype)tensors[0]->dtype, tensors[0]->ndim, shape);
  if (!y) return NULL;
  concat_copy(count, tensors, ax, y);

  bool any_grad = false;
  for (int i = 0; i < count; i++) any_grad |= requires_grad(tensors[i]);
  if (!any_grad || !ctx->grad_enabled) return y;
  ad_tensor **list = arena_alloc(ctx, (size_t)count * sizeof *list, 16, name);
  uint32_t *versions = arena_alloc(ctx, (size_t)count * sizeof *versions, 16, name);
  if (!list || !versions) return NULL;
  for (int i = 0; i < count; i++) {
    list[i] = tensors[i];
    versions[i] = storage_owner(tensors[i])->version;
  }
  record(ctx, y, OP_CONCAT, NULL, NULL, NULL);
  y->p.list.inputs = list;
  y->p.list.versions = versions;
  y->p.list.count = count;
  y->p.list.axis = ax;
  return y;
}

ad_tensor *ad_stack(ad_ctx *ctx, int count, ad_tensor *const *tensors, int axis) {
  const char *name = "ad_stack";
  if (!ctx) return NULL;
  if (count < 1 || !tensors) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: needs a list of at least one tensor, got %d tensors%s", name,
         count, tensors ? "" : " and a NULL list");
    return NULL;
  }
  for (int i = 0; i < count; i++) {
    if (!check_list_entry(ctx, name, tensors, i, count)) return NULL;
    const ad_tensor *t = tensors[i], *f = tensors[0];
    if (t->ndim != f->ndim || memcmp(t->shape, f->shape, (size_t)t->ndim * sizeof(int64_t))) {
      fail(ctx, AD_ERR_SHAPE, "%s: tensor %d has shape %s but tensor 0 has %s; stacked tensors "
           "must have one shape", name, i, tshape(t).s, tshape(f).s);
      return NULL;
    }
  }
  ad_tensor **parts = arena_alloc(ctx, (size_t)count * sizeof *parts, 16, name);
  if (!parts) return NULL;
  for (int i = 0; i < count; i++) {
    parts[i] = ad_unsqueeze(ctx, tensors[i], axis);
    if (!parts[i]) return NULL;
  }
  return ad_concat(ctx, count, parts, axis);
}

/* ---- one_hot -------------------------------------------------------- */

ad_tensor *ad_one_hot(ad_ctx *ctx, ad_tensor *indices, int64_t classes, ad_dtype dtype) {
  const char *name = "ad_one_hot";
  if (!ctx || !check_index_tensor(ctx, name, indices)) return NULL;
  if (classes < 1 || indices->ndim == AD_MAX_DIMS || ad_dtype_size(dtype) == 0) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: needs classes >= 1 (got %lld), fewer than %d index "
         "dimensions and a valid dtype", name, (long long)classes, AD_MAX_DIMS);
    return NULL;
  }
  const int64_t *p = indices->data;
  for (int64_t i = 0; i < indices->numel; i++) {
    if (p[i] < 0 || p[i] >= classes) {
      fail(ctx, AD_ERR_INDEX, "%s: index %lld at position %lld is outside [0, %lld)", name,
           (long long)p[i], (long long)i, (long long)classes);
      return NULL;
    }
  }
  int64_t shape[AD_MAX_DIMS];
  memcpy(shape, indices->shape, (size_t)indices->ndim * sizeof(int64_t));
  shape[indices->ndim] = classes;
  ad_tensor *y = tensor_new(ctx, name, dtype, indices->ndim + 1, shape);
  if (!y) return NULL;
  memset(y->data, 0, (size_t)y->numel * ad_dtype_size(dtype));
  for (int64_t i = 0; i < indices->numel; i++) store(y, i * classes + p[i], 1);
  return y;
}

/* ---- Backward ------------------------------------------------------- */

/* reshape and clone: the gradient passes through unchanged. */
ad_status copy_backward(ad_ctx *ctx, const bw_args *args) {
  (void)ctx;
  ad_tensor *y = args->out;
  acc_copy((ad_dtype)y->dtype, args->gin[0], args->gout, y->numel, args->fresh[0]);
  return AD_OK;
}

/* cast: the gradient converted back to the input's dtype. */
ad_status cast_backward(ad_ctx *ctx, const bw_args *args) {
  (void)ctx;
  ad_tensor *y = args->out, *x = y->in[0];
  for (int64_t i = 0; i < y->numel; i++) {
    double v = load_grad((ad_dtype)y->dtype, args->gout, i);
    if (x->dtype == AD_F32) {
      float *d = (float *)args->gin[0] + i;
      *d = (float)((args->fresh[0] ? 0.0 : *d) + v);
    } else {
      double *d = (double *)args->gin[0] + i;
      *d = (args->fresh[0] ? 0.0 : *d) + v;
    }
  }
  return AD_OK;
}

/* permute: each gradient element goes back to its input position. */
ad_status permute_backward(ad_ctx *ctx, const bw_args *args) {
  (void)ctx;
  ad_tensor *y = args->out, *x = y->in[0];
  ad_dtype dtype = (ad_dtype)y->dtype;
  int perm[AD_MAX_DIMS];
  for (int d = 0; d < y->ndim; d++) perm[d] = y->p.perm[d];
  int64_t st[AD_MAX_DIMS];
  permuted_strides(x, perm, st);
  const int64_t *strides[1] = {st};
  nd_iter it;
  iter_init(&it, y->ndim, y->shape, 1, NULL, NULL, strides);
  int64_t pos = 0;
  for (int64_t r = 0; r < it.outer; r++) {
    for (int64_t i = 0; i < it.inner; i++, pos++) {
      int64_t off = it.offset[0] + i * it.inner_stride[0];
      if (dtype == AD_F32) {
        float *d = (float *)args->gin[0] + off;
        *d = (args->fresh[0] ? 0.0f : *d) + ((const float *)args->gout)[pos];
      } else {
        double *d = (double *)args->gin[0] + off;
        *d = (args->fresh[0] ? 0.0 : *d) + ((const double *)args->gout)[pos];
      }
    }
    iter_next(&it);
  }
  return AD_OK;
}

/* expand: the gradient summed over the broadcast dimensions. */
ad_status expand_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out, *x = y->in[0];
  return sum_to_acc(ctx, (ad_dtype)y->dtype, args->gout, y->ndim, y->shape, args->gin[0],
                    x->ndim, x->shape, args->fresh[0]);
}

/* slice: the gradient placed into the slice's positions, zero elsewhere. */
ad_status slice_backward(ad_ctx *ctx, const bw_args *args) {
  (void)ctx;
  ad_tensor *y = args->out, *x = y->in[0];
  ad_dtype dtype = (ad_dtype)y->dtype;
  if (args->fresh[0]) memset(args->gin[0], 0, (size_t)x->numel * ad_dtype_size(dtype));
  slice_move(dtype, x->shape, x->ndim, (int)y->p.i[2], y->p.i[0], y->p.i[1], args->gin[0],
             (void *)args->gout, y->shape[y->p.i[2]], true, false);
  return AD_OK;
}

/* The adjoint of slice: the slice of the gradient. */
ad_status slice_adjoint_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out, *x = y->in[0];
  ad_dtype dtype = (ad_dtype)y->dtype;
  ad_tensor *tmp = tensor_like(ctx, "backward", x);
  if (!tmp) return ctx->error;
  slice_move(dtype, y->shape, y->ndim, (int)y->p.i[2], y->p.i[0], y->p.i[1], (void *)args->gout,
             tmp->data, x->shape[y->p.i[2]], false, false);
  acc_copy(dtype, args->gin[0], tmp->data, x->numel, args->fresh[0]);
  return AD_OK;
}

/* index_select and gather: the gradient added back at the indices. */
ad_status select_backward(ad_ctx *ctx, const bw_args *args) {
  (void)ctx;
  ad_tensor *y = args->out, *x = y->in[0], *idx = y->in[1];
  ad_dtype dtype = (ad_dtype)y->dtype;
  int axis = (int)y->p.i[0];
  if (args->fresh[0]) memset(args->gin[0], 0, (size_t)x->numel * ad_dtype_size(dtype));
  if (y->op == OP_INDEX_SELECT)
    index_move(dtype, x->shape, x->ndim, axis, idx->data, idx->numel, args->gin[0],
               (void *)args->gout, true);
  else
    gather_move(dtype, x->shape, x->ndim, axis, idx, args->gin[0], (void *)args->gout, true);
  return AD_OK;
}

/* index_add and scatter_add (the adjoints of the above): the gradient read
   back at the indices. */
ad_status scatter_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out, *x = y->in[0], *idx = y->in[1];
  ad_dtype dtype = (ad_dtype)y->dtype;
  int axis = (int)y->p.i[0];
  ad_tensor *tmp = tensor_like(ctx, "backward", x);
  if (!tmp) return ctx->error;
  if (y->op == OP_INDEX_ADD)
    index_move(dtype, y->shape, y->ndim, axis, idx->data, idx->numel, (void *)args->gout,
               tmp->data, false);
  else
    gather_move(dtype, y->shape, y->ndim, axis, idx, (void *)args->gout, tmp->data, false);
  acc_copy(dtype, args->gin[0], tmp->data, x->numel, args->fresh[0]);
  return AD_OK;
}

/* concat: each input gets its slice of the gradient. */
ad_status concat_backward(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *y = args->out;
  ad_dtype dtype = (ad_dtype)y->dtype;
  int ax = y->p.list.axis;
  int64_t at = 0;
  for (int i = 0; i < y->p.list.count; i++) {
    ad_tensor *x = y->p.list.inputs[i];
    int64_t len = x->shape[ax];
    if (args->gin[i]) {
      ad_tensor *tmp = tensor_like(ctx, "backward", x);
      if (!tmp) return ctx->error;
      slice_move(dtype, y->shape, y->ndim, ax, at, 1, (void *)args->gout, tmp->data, len, false,
                 false);
      acc_copy(dtype, args->gin[i], tmp->data, x->numel, args->fresh[i]);
    }
    at += len;
  }
  return AD_OK;
}

ad_status shape_backward_graph(ad_ctx *ctx, ad_tensor *y, ad_tensor *g, const bool *need,
                               ad_tensor **gin) {
  if (y->op == OP_CONCAT) {
    int ax = y->p.list.axis;
    int64_t at = 0;
    for (int i = 0; i < y->p.list.count; i++) {
      int64_t len = y->p.list.inputs[i]->shape[ax];
      if (need[i]) {
        gin[i] = ad_slice(ctx, g, ax, at, at + len, 1);
        if (!gin[i]) return ctx->error;
      }
      at += len;
    }
    return AD_OK;
  }
  if (!need[0]) return AD_OK;
  ad_tensor *x = y->in[0];
  switch ((op_kind)y->op) {
  case OP_RESHAPE: gin[0] = ad_reshape(ctx, g, x->ndim, x->shape); break;
  case OP_CLONE: gin[0] = g; break;
  case OP_CAST: gin[0] = ad_cast(ctx, g, (ad_dtype)x->dtype); break;
  case OP_PERMUTE: {
    int inverse[AD_MAX_DIMS];
    for (int d = 0; d < y->ndim; d++) inverse[y->p.perm[d]] = d;
    gin[0] = ad_permute(ctx, g, inverse);
    break;
  }
  case OP_EXPAND: gin[0] = sum_to(ctx, g, x->ndim, x->shape); break;
  case OP_SLICE:
    gin[0] = slice_adjoint(ctx, g, x->ndim, x->shape, (int)y->p.i[2], y->p.i[0], y->p.i[1]);
    break;
  case OP_SLICE_ADJOINT: {
    int ax = (int)y->p.i[2];
    int64_t start = y->p.i[0], step = y->p.i[1], len = x->shape[ax];
    gin[0] = slice_record(ctx, g, ax, start, step, len);
    break;
  }
  case OP_INDEX_SELECT:
    gin[0] = index_add(ctx, g, y->in[1], (int)y->p.i[0], x->ndim, x->shape);
    break;
  case OP_INDEX_ADD: gin[0] = ad_index_select(ctx, g, (int)y->p.i[0], y->in[1]); break;
  case OP_GATHER:
    gin[0] = scatter_add(ctx, g, y->in[1], (int)y->p.i[0], x->ndim, x->shape);
    break;
  case OP_SCATTER_ADD: gin[0] = ad_gather(ctx, g, (int)y->p.i[0], y->in[1]); break;
  default: return fail(ctx, AD_ERR_NOT_IMPLEMENTED, "shape backward: unknown kind %d", y->op);
  }
  return gin[0] ? AD_OK : (ctx->error ? ctx->error : AD_ERR_MEMORY);
}
