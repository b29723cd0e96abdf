/*
 * gemm.c: the matrix product behind matmul and linear.
 *
 * Built with a CBLAS (the meson option blas), products go to cblas_sgemm and
 * cblas_dgemm; otherwise, or for sizes a CBLAS int cannot hold, a portable
 * kernel in C runs.
 *
 * Threads. A large product is cut into blocks of output columns (or rows),
 * and the context's threads compute the blocks in parallel, each block with
 * a one-thread BLAS call. The cut depends on the shape only, never on the
 * thread count, so every element is computed by the same call with the same
 * arguments whatever the thread count, and results are bitwise identical.
 * Letting OpenBLAS split the product itself would not be: OpenBLAS 0.3.21
 * picks its blocking of K by thread count, and a 64 x 784 x 256 float32
 * product differed in about 12,000 of 16,384 elements between 1 and 2
 * threads.
 */
#include <limits.h>

#include "internal.h"

#if defined(AD_BLAS_OPENBLAS) || defined(AD_BLAS_CBLAS)
#include <cblas.h>
#define HAVE_CBLAS 1
#endif

/* Products with fewer multiply-adds than this run as one call: the cost of
   waking a second thread is larger than what it saves. */
#define SPLIT_MIN_WORK (1.0 * (1 << 20))
/* Block edges fall on multiples of this many rows or columns. */
#define BLOCK_ALIGN 16

void blas_use_one_thread(void) {
#ifdef AD_BLAS_OPENBLAS
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
#endif
}

/* C = beta C when there is nothing to multiply; beta == 0 clears C even if
   it contains NaN. */
static void scale_c(ad_dtype dtype, int64_t m, int64_t n, double beta, void *c, int64_t ldc) {
  for (int64_t i = 0; i < m; i++) {
    if (dtype == AD_F32) {
      float *row = (float *)c + i * ldc;
      for (int64_t j = 0; j < n; j++) row[j] = beta == 0 ? 0.0f : (float)(row[j] * beta);
    } else {
      double *row = (double *)c + i * ldc;
      for (int64_t j = 0; j < n; j++) row[j] = beta == 0 ? 0.0 : row[j] * beta;
    }
  }
}

/* Element (i, j) of op(A) for a row-major A with leading dimension lda. */
static inline int64_t at(bool trans, int64_t i, int64_t j, int64_t ld) {
  return trans ? j * ld + i : i * ld + j;
}

/* The portable kernel: rows of C are updated from rows of op(B) with an
   i-p-j loop order, so the inner loop is contiguous and vectorizes when B
   is not transposed (gemm copies a transposed B first when it can). It
   allocates nothing, so blocks may run on several threads at once. */
static void gemm_portable(ad_dtype dtype, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                          double alpha, const void *a, int64_t lda, const void *bb, int64_t ldbb,
                          double beta, void *c, int64_t ldc) {
  scale_c(dtype, m, n, beta, c, ldc);
  for (int64_t i = 0; i < m; i++) {
    for (int64_t p = 0; p < k; p++) {
      if (dtype == AD_F32) {
        float s = (float)alpha * ((const float *)a)[at(ta, i, p, lda)];
        float *crow = (float *)c + i * ldc;
        if (!tb) {
          const float *brow = (const float *)bb + p * ldbb;
          for (int64_t j = 0; j < n; j++) crow[j] += s * brow[j];
        } else {
          for (int64_t j = 0; j < n; j++) crow[j] += s * ((const float *)bb)[at(true, p, j, ldbb)];
        }
      } else {
        double s = alpha * ((const double *)a)[at(ta, i, p, lda)];
        double *crow = (double *)c + i * ldc;
        if (!tb) {
          const double *brow = (const double *)bb + p * ldbb;
          for (int64_t j = 0; j < n; j++) crow[j] += s * brow[j];
        } else {
          for (int64_t j = 0; j < n; j++)
            crow[j] += s * ((const double *)bb)[at(true, p, j, ldbb)];
        }
      }
    }
  }
}

/* One product, on the calling thread. */
static void gemm_call(ad_ctx *ctx, ad_dtype dtype, bool trans_a, bool trans_b, int64_t m,
                      int64_t n, int64_t k, double alpha, const void *a, int64_t lda,
                      const void *b, int64_t ldb, double beta, void *c, int64_t ldc) {
#ifdef HAVE_CBLAS
  bool fits = m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
              ldc <= INT_MAX;
  if (fits) {
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    /* CBLAS requires a leading dimension of at least 1. */
    int ia = (int)(lda > 0 ? lda : 1), ib = (int)(ldb > 0 ? ldb : 1), ic = (int)(ldc > 0 ? ldc : 1);
    if (dtype == AD_F32)
      cblas_sgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, (float)alpha, a, ia, b, ib,
                  (float)beta, c, ic);
    else
      cblas_dgemm(CblasRowMajor, ta, tb, (int)m, (int)n, (int)k, alpha, a, ia, b, ib, beta, c,
                  ic);
    return;
  }
#endif
  (void)ctx;
  gemm_portable(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* True when gemm_call will use the portable kernel for this shape. */
static bool uses_portable(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
#ifdef HAVE_CBLAS
  return !(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
           ldc <= INT_MAX);
#else
  (void)m, (void)n, (void)k, (void)lda, (void)ldb, (void)ldc;
  return true;
#endif
}

/* A row-major copy of the transposed B (k x n) for the portable kernel, or
   NULL when the arena has no room (the kernel then reads B in place). */
static const void *untransposed_copy(ad_ctx *ctx, ad_dtype dtype, int64_t k, int64_t n,
                                     const void *b, int64_t ldb) {
  void *copy = arena_try_alloc(ctx, (size_t)(k * n) * ad_dtype_size(dtype), 64);
  if (!copy) return NULL;
  for (int64_t p = 0; p < k; p++)
    for (int64_t j = 0; j < n; j++) {
      if (dtype == AD_F32) ((float *)copy)[p * n + j] = ((const float *)b)[j * ldb + p];
      else ((double *)copy)[p * n + j] = ((const double *)b)[j * ldb + p];
    }
  return copy;
}

/* The number of blocks a product of this shape is cut into: a function of
   the shape alone (see the file comment). */
static int block_count(int64_t m, int64_t n, int64_t k) {
  double work = (double)m * (double)n * (double)k;
  if (work < SPLIT_MIN_WORK) return 1;
  /* Every block repacks the operand it shares with the others, so fewer
     blocks run faster on few cores. A 1024^3 product and its backward
     reached 97% of direct sgemm with 2 blocks, 95% with 4 and 91% with 8 on
     2 threads (ad-bench matmul), and 4 blocks still keep 4 cores busy. */
  int blocks = work < 64 * SPLIT_MIN_WORK ? 2 : 4;
  int64_t dim = n >= m ? n : m;
  while (blocks > 1 && dim / blocks < BLOCK_ALIGN) blocks /= 2;
  return blocks;
}

/* The first row or column of block b of count blocks over dim. */
static int64_t block_start(int64_t dim, int b, int count) {
  if (b == count) return dim;
  return dim * b / count / BLOCK_ALIGN * BLOCK_ALIGN;
}

/* A product cut into blocks of rows or columns of C. */
typedef struct gemm_job {
  ad_ctx *ctx;
  ad_dtype dtype;
  bool trans_a, trans_b;
  int64_t m, n, k;
  double alpha;
  const void *a;
  int64_t lda;
  const void *b;
  int64_t ldb;
  double beta;
  void *c;
  int64_t ldc;
  bool by_columns; /* cut along N; else along M */
  int blocks;
} gemm_job;

static void gemm_block(void *user, int64_t index) {
  const gemm_job *j = user;
  size_t es = ad_dtype_size(j->dtype);
  int64_t dim = j->by_columns ? j->n : j->m;
  int64_t lo = block_start(dim, (int)index, j->blocks);
  int64_t hi = block_start(dim, (int)index + 1, j->blocks);
  if (j->by_columns) {
    /* Columns lo..hi of op(B) and of C. */
    const char *bb = (const char *)j->b + (size_t)(j->trans_b ? lo * j->ldb : lo) * es;
    gemm_call(j->ctx, j->dtype, j->trans_a, j->trans_b, j->m, hi - lo, j->k, j->alpha, j->a,
              j->lda, bb, j->ldb, j->beta, (char *)j->c + (size_t)lo * es, j->ldc);
  } else {
    /* Rows lo..hi of op(A) and of C. */
    const char *ab = (const char *)j->a + (size_t)(j->trans_a ? lo : lo * j->lda) * es;
    gemm_call(j->ctx, j->dtype, j->trans_a, j->trans_b, hi - lo, j->n, j->k, j->alpha, ab,
              j->lda, j->b, j->ldb, j->beta, (char *)j->c + (size_t)(lo * j->ldc) * es,
              j->ldc);
  }
}

void gemm(ad_ctx *ctx, ad_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
          double beta, void *c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(dtype, m, n, beta, c, ldc);
    return;
  }
  if (trans_b && uses_portable(m, n, k, lda, ldb, ldc)) {
    const void *copy = untransposed_copy(ctx, dtype, k, n, b, ldb);
    if (copy) {
      b = copy;
      ldb = n;
      trans_b = false;
    }
  }
  /* Another part of the program may have raised OpenBLAS's thread count;
     blocks on several threads, each running several BLAS threads, would
     oversubscribe the cores. */
  blas_use_one_thread();
  int blocks = block_count(m, n, k);
  if (blocks == 1) {
    gemm_call(ctx, dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  /* Cut the larger of M and N, so that each block repacks the smaller of
     the two operands it shares. */
  gemm_job job = {.ctx = ctx, .dtype = dtype, .trans_a = trans_a, .trans_b = trans_b,
                  .m = m, .n = n, .k = k, .alpha = alpha, .a = a, .lda = lda, .b = b,
                  .ldb = ldb, .beta = beta, .c = c, .ldc = ldc, .by_columns = n >= m,
                  .blocks = blocks};
  ad_parallel_for(ctx, blocks, gemm_block, &job);
}
