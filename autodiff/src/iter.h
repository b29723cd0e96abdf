/*
 * iter.h: iteration over broadcast operands.
 *
 * An iterator walks the elements of an output shape in row-major order and
 * keeps, for each operand, the offset of the element that broadcasts onto the
 * current output element. Dimensions of size 1 are dropped and adjacent
 * dimensions that are contiguous in every operand are merged, so the inner
 * loop is as long as possible.
 */
#ifndef AD_ITER_H
#define AD_ITER_H

#include "internal.h"

#define ITER_MAX_OPERANDS 4

typedef struct nd_iter {
  int ndim;                 /* merged dimensions, at least 1 */
  int nops;
  int64_t shape[AD_MAX_DIMS];
  int64_t strides[ITER_MAX_OPERANDS][AD_MAX_DIMS];
  int64_t index[AD_MAX_DIMS];
  int64_t offset[ITER_MAX_OPERANDS]; /* current element offset of each operand */
  int64_t inner;            /* length of the innermost dimension */
  int64_t inner_stride[ITER_MAX_OPERANDS];
  int64_t outer;            /* number of inner runs */
} nd_iter;

/* Prepares iteration over out_shape. Operand k has shape (ndims[k],
   shapes[k]), which must broadcast to out_shape, or explicit strides when
   strides_in[k] is non-NULL (out_ndim entries, in elements). */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden) /* see internal.h */
#endif
void iter_init(nd_iter *it, int out_ndim, const int64_t *out_shape, int nops, const int *ndims,
               const int64_t *const *shapes, const int64_t *const *strides_in);
#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

/* Moves to the next inner run; call after each run, outer - 1 times. */
static inline void iter_next(nd_iter *it) {
  for (int d = it->ndim - 2; d >= 0; d--) {
    if (++it->index[d] < it->shape[d]) {
      for (int k = 0; k < it->nops; k++) it->offset[k] += it->strides[k][d];
      return;
    }
    it->index[d] = 0;
    for (int k = 0; k < it->nops; k++) it->offset[k] -= it->strides[k][d] * (it->shape[d] - 1);
  }
}

#endif /* AD_ITER_H */
