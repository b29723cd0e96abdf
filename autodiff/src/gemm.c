/*
 * gemm.c: the matrix product behind matmul and linear.
 *
 * Built with a CBLAS (the meson option blas), products go to cblas_sgemm and
 * cblas_dgemm; otherwise, or for sizes a CBLAS int cannot hold, a portable
 * kernel in C runs.
 *
 * NOTE: OpenBLAS (0.3.21 measured) picks its kernels and its split of the
 * output by thread count, so a product can differ in the last bits between
 * thread counts: a 96 x 700 x 80 float32 product differed in 4853 of 7680
 * elements between 1 and 2 threads. A fixed thread count repeats its results.
 */
#include <limits.h>

#include "internal.h"

#if defined(AD_BLAS_OPENBLAS) || defined(AD_BLAS_CBLAS)
#include <cblas.h>
#define HAVE_CBLAS 1
#endif

void blas_set_threads(int threads) {
#ifdef AD_BLAS_OPENBLAS
  if (openblas_get_num_threads() != threads) openblas_set_num_threads(threads);
#else
  (void)threads;
#endif
}

/* C = beta C when there is nothing to multiply; beta == 0 clears C even if
   it holds NaN. */
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
   i-p-j loop order, so the inner loop is contiguous and vectorizes. A
   transposed B is first copied to row-major order, or read in place when
   the arena has no room for the copy. */
static void gemm_portable(ad_ctx *ctx, ad_dtype dtype, bool ta, bool tb, int64_t m, int64_t n,
                          int64_t k, double alpha, const void *a, int64_t lda, const void *b,
                          int64_t ldb, double beta, void *c, int64_t ldc) {
  scale_c(dtype, m, n, beta, c, ldc);
  size_t es = ad_dtype_size(dtype);
  const void *bb = b;
  int64_t ldbb = ldb;
  if (tb) {
    void *copy = arena_try_alloc(ctx, (size_t)(k * n) * es, 64);
    if (copy) {
      for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++) {
          if (dtype == AD_F32) ((float *)copy)[p * n + j] = ((const float *)b)[j * ldb + p];
          else ((double *)copy)[p * n + j] = ((const double *)b)[j * ldb + p];
        }
      bb = copy;
      ldbb = n;
      tb = false;
    }
  }
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

void gemm(ad_ctx *ctx, ad_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
          double beta, void *c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    scale_c(dtype, m, n, beta, c, ldc);
    return;
  }
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
  gemm_portable(ctx, dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
