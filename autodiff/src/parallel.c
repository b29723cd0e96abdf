/* parallel.c: splitting elementwise loops among the context's threads. */
#include "internal.h"

/* One elementwise loop split into blocks of PARALLEL_BLOCK elements. */
typedef struct block_job {
  block_fn fn;
  void *arg;
  int64_t n;
} block_job;

static void run_block(void *user, int64_t index) {
  const block_job *job = user;
  int64_t lo = index * PARALLEL_BLOCK;
  int64_t hi = job->n - lo < PARALLEL_BLOCK ? job->n : lo + PARALLEL_BLOCK;
  job->fn(job->arg, lo, hi);
}

void parallel_blocks(ad_ctx *ctx, int64_t n, block_fn fn, void *arg) {
  if (n < PARALLEL_MIN_ELEMENTS || !ctx->pool) {
    fn(arg, 0, n);
    return;
  }
  block_job job = {fn, arg, n};
  ad_parallel_for(ctx, (n + PARALLEL_BLOCK - 1) / PARALLEL_BLOCK, run_block, &job);
}
