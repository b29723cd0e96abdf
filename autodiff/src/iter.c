/* iter.c: setting up broadcast iteration. */
#include "iter.h"

void iter_init(nd_iter *it, int out_ndim, const int64_t *out_shape, int nops, const int *ndims,
               const int64_t *const *shapes, const int64_t *const *strides_in) {
  int64_t full[ITER_MAX_OPERANDS][AD_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    if (strides_in && strides_in[k]) {
      for (int d = 0; d < out_ndim; d++) full[k][d] = strides_in[k][d];
      continue;
    }
    int64_t own[AD_MAX_DIMS];
    contiguous_strides(ndims[k], shapes[k], own);
    int lead = out_ndim - ndims[k];
    for (int d = 0; d < out_ndim; d++) {
      int j = d - lead;
      full[k][d] = (j < 0 || shapes[k][j] == 1) ? 0 : own[j];
    }
  }
  /* Keep dimensions of size > 1, merging each into the previous one when
     every operand steps through both as through one dimension. */
  int n = 0;
  for (int d = 0; d < out_ndim; d++) {
    if (out_shape[d] == 1) continue;
    bool merge = n > 0;
    for (int k = 0; merge && k < nops; k++)
      if (it->strides[k][n - 1] != full[k][d] * out_shape[d]) merge = false;
    if (merge) {
      it->shape[n - 1] *= out_shape[d];
      for (int k = 0; k < nops; k++) it->strides[k][n - 1] = full[k][d];
      continue;
    }
    it->shape[n] = out_shape[d];
    for (int k = 0; k < nops; k++) it->strides[k][n] = full[k][d];
    n++;
  }
  if (n == 0) {
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
    n = 1;
  }
  it->ndim = n;
  it->nops = nops;
  it->inner = it->shape[n - 1];
  it->outer = 1;
  for (int d = 0; d < n - 1; d++) it->outer *= it->shape[d];
  for (int d = 0; d < n; d++) it->index[d] = 0;
  for (int k = 0; k < nops; k++) {
    it->offset[k] = 0;
    it->inner_stride[k] = it->strides[k][n - 1];
  }
  /* An empty output has no runs. */
  for (int d = 0; d < out_ndim; d++)
    if (out_shape[d] == 0) it->outer = 0;
}
