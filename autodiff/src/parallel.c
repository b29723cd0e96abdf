/* parallel.c: splitting elementwise loops among the context's threads. */
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void parallel_blocks(const ad_ctx *ctx, int64_t n, block_fn fn, void *arg) {
  int threads = ctx->threads;
  if (n < PARALLEL_MIN_ELEMENTS || threads < 2) {
    fn(arg, 0, n);
    return;
  }
  int64_t blocks = (n + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK;
  if (threads > blocks) threads = (int)blocks;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
  for (int64_t b = 0; b < blocks; b++) {
    int64_t lo = b * PARALLEL_BLOCK;
    int64_t hi = n - lo < PARALLEL_BLOCK ? n : lo + PARALLEL_BLOCK;
    fn(arg, lo, hi);
  }
}
