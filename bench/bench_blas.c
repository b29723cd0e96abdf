/*
 * bench_blas.c: the benchmarks measured against direct cblas_sgemm calls.
 *
 *   matmul      y = a b and its backward through the engine, against the
 *               three sgemm calls that compute the same products
 *   gemm-floor  the sgemm calls of one MLP training epoch alone: the time
 *               an epoch cannot go below with this BLAS
 *
 * Both need the engine built with a CBLAS (meson option blas); without one
 * they print a RESULT line with "available": false.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mlp.h"

#if defined(AD_BLAS_OPENBLAS) || defined(AD_BLAS_CBLAS)
#include <cblas.h>
#define HAVE_CBLAS 1
#endif

#ifdef HAVE_CBLAS

/* Sets the BLAS thread count for the direct calls. With a CBLAS other than
   OpenBLAS the count is left to that library. */
static void set_blas_threads(int threads) {
#ifdef AD_BLAS_OPENBLAS
  openblas_set_num_threads(threads);
#else
  (void)threads;
#endif
}

static float *random_floats(ad_rng *rng, int64_t count) {
  float *p = malloc((size_t)count * sizeof *p);
  if (!p) {
    fprintf(stderr, "ad-bench: out of memory for %lld floats\n", (long long)count);
    exit(1);
  }
  for (int64_t i = 0; i < count; i++) p[i] = (float)(2 * ad_rng_uniform(rng) - 1);
  return p;
}

/* ---- matmul --------------------------------------------------------- */

#define MATMUL_MAX_SIZE 8192
/* The pause before each run, as bench.py's lockstep turns have. */
#define SETTLE_SECONDS 0.2

typedef struct matmul_options {
  int64_t size;
  int threads;
  int repeats;
  int warmup;
} matmul_options;

static void parse_matmul_options(matmul_options *o, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--size") == 0) o->size = parse_small_count(a, option_value(argc, argv, &i), 1);
    else if (strcmp(a, "--threads") == 0) o->threads = parse_small_count(a, option_value(argc, argv, &i), 1);
    else if (strcmp(a, "--repeats") == 0) o->repeats = parse_small_count(a, option_value(argc, argv, &i), 1);
    else if (strcmp(a, "--warmup") == 0) o->warmup = parse_small_count(a, option_value(argc, argv, &i), 0);
    else {
      fprintf(stderr, "ad-bench: unknown option '%s'\nusage: ad-bench matmul [--size N] "
              "[--threads N] [--repeats N] [--warmup N]\n", a);
      exit(2);
    }
  }
  /* The run keeps twelve size x size float32 matrices: six buffers, three
     persistent tensors, the product and two gradients. */
  if (o->size > MATMUL_MAX_SIZE) {
    fprintf(stderr, "ad-bench: --size %lld is too large; use at most %d\n", (long long)o->size,
            MATMUL_MAX_SIZE);
    exit(2);
  }
}

/* A persistent n x n float32 tensor holding values. */
static ad_tensor *persistent_matrix(ad_ctx *ctx, int64_t n, const float *values) {
  ad_tensor *t = ad_persist(ad_from_f32(ctx, 2, (int64_t[]){n, n}, values));
  if (!t) die_on_engine_error(ctx, "creating a matrix");
  return t;
}

/* One engine run: y = a b, then backward with seed g into a and b. */
static double engine_matmul(ad_ctx *ctx, ad_tensor *a, ad_tensor *b, ad_tensor *g) {
  ad_ctx_reset(ctx);
  ad_zero_grad(a);
  ad_zero_grad(b);
  double start = now_seconds();
  ad_tensor *y = ad_matmul(ctx, a, b);
  if (!y || ad_backward(ctx, y, g) != AD_OK) die_on_engine_error(ctx, "matmul forward and backward");
  return now_seconds() - start;
}

/* One reference run: the same three products as direct sgemm calls. */
static double direct_matmul(int n, const float *a, const float *b, const float *g, float *y,
                            float *da, float *db) {
  double start = now_seconds();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, y, n);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, g, n, b, n, 0, da, n);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, n, n, 1, a, n, g, n, 0, db, n);
  return now_seconds() - start;
}

int bench_matmul(int argc, char **argv) {
  matmul_options o = {.size = 1024, .threads = 2, .repeats = 7, .warmup = 2};
  parse_matmul_options(&o, argc, argv);
  int n = (int)o.size;
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  float *a = random_floats(&rng, o.size * o.size), *b = random_floats(&rng, o.size * o.size);
  float *g = random_floats(&rng, o.size * o.size);
  float *y = random_floats(&rng, o.size * o.size), *da = random_floats(&rng, o.size * o.size);
  float *db = random_floats(&rng, o.size * o.size);

  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx || ad_ctx_set_threads(ctx, o.threads) != AD_OK) die_on_engine_error(ctx, "setup");
  ad_tensor *ta = persistent_matrix(ctx, o.size, a), *tb = persistent_matrix(ctx, o.size, b);
  ad_tensor *tg = persistent_matrix(ctx, o.size, g);
  if (ad_set_requires_grad(ta, true) != AD_OK || ad_set_requires_grad(tb, true) != AD_OK)
    die_on_engine_error(ctx, "setup");

  /* Engine and direct runs alternate, so that both see the same load, with
     a pause before each: the engine's worker threads and OpenBLAS's own
     threads keep spinning for a while after their work, and would slow the
     run that follows. */
  double *engine = calloc((size_t)o.repeats, sizeof *engine);
  double *direct = calloc((size_t)o.repeats, sizeof *direct);
  if (!engine || !direct) {
    fprintf(stderr, "ad-bench: out of memory\n");
    return 1;
  }
  for (int r = 0; r < o.warmup + o.repeats; r++) {
    pause_seconds(SETTLE_SECONDS);
    double te = engine_matmul(ctx, ta, tb, tg);
    set_blas_threads(o.threads);
    pause_seconds(SETTLE_SECONDS);
    double td = direct_matmul(n, a, b, g, y, da, db);
    if (r >= o.warmup) {
      engine[r - o.warmup] = te;
      direct[r - o.warmup] = td;
    }
  }
  double flops = 3 * 2.0 * (double)o.size * (double)o.size * (double)o.size;
  fprintf(stderr, "matmul: %d^3, %d threads: last run engine %.4f s, direct sgemm %.4f s\n", n,
          o.threads, engine[o.repeats - 1], direct[o.repeats - 1]);

  result_begin("matmul");
  result_bool("available", true);
  result_int("size", o.size);
  result_int("threads", o.threads);
  result_number("flops", flops);
  result_samples("engine_seconds", engine, o.repeats);
  result_samples("direct_seconds", direct, o.repeats);
  result_end();

  ad_ctx_free(ctx);
  float *buffers[] = {a, b, g, y, da, db};
  for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(buffers[i]);
  free(engine);
  free(direct);
  return 0;
}

/* ---- gemm-floor ----------------------------------------------------- */

/* Buffers of one layer, sized for the largest batch. */
typedef struct layer_buffers {
  float *x;  /* [batch, in] the layer's input */
  float *w;  /* [out, in] */
  float *y;  /* [batch, out] the output, and its gradient in backward */
  float *dx; /* [batch, in] */
  float *dw; /* [out, in] */
} layer_buffers;

/* The sgemm calls that ad_linear makes for one step on a batch of n:
   y = x w^T (beta 1, after the bias copy) in forward, then dx = dy w for
   every layer but the first (the input needs no gradient) and dw = dy^T x. */
static void step_gemms(layer_buffers *layers, int n) {
  for (int l = 0; l < MLP_LAYERS; l++) {
    int in = (int)mlp_widths[l], out = (int)mlp_widths[l + 1];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1, layers[l].x, in,
                layers[l].w, in, 1, layers[l].y, out);
  }
  for (int l = MLP_LAYERS - 1; l >= 0; l--) {
    int in = (int)mlp_widths[l], out = (int)mlp_widths[l + 1];
    if (l > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1, layers[l].y, out,
                  layers[l].w, in, 0, layers[l].dx, in);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1, layers[l].y, out,
                layers[l].x, in, 0, layers[l].dw, in);
  }
}

int bench_gemm_floor(int argc, char **argv) {
  mlp_options o = {.samples = 60000, .batch = 64, .threads = 2, .epochs = 5, .warmup = 1};
  mlp_parse_options(&o, argc, argv,
                    "ad-bench gemm-floor [--samples N] [--batch N] [--threads N] [--epochs N] "
                    "[--warmup N] [--lockstep]");

  /* Random operands: the sgemm time does not depend on the values. */
  ad_rng rng;
  ad_rng_seed(&rng, 3);
  layer_buffers layers[MLP_LAYERS];
  for (int l = 0; l < MLP_LAYERS; l++) {
    int64_t in = mlp_widths[l], out = mlp_widths[l + 1];
    layers[l].x = random_floats(&rng, o.batch * in);
    layers[l].w = random_floats(&rng, out * in);
    layers[l].y = random_floats(&rng, o.batch * out);
    layers[l].dx = random_floats(&rng, o.batch * in);
    layers[l].dw = random_floats(&rng, out * in);
  }
  double *seconds = calloc((size_t)o.epochs, sizeof *seconds);
  if (!seconds) {
    fprintf(stderr, "ad-bench: out of memory\n");
    return 1;
  }

  set_blas_threads(o.threads);
  int timed = 0;
  for (int e = 0; e < o.warmup + o.epochs; e++) {
    if (e == o.warmup) lockstep_ready(o.lockstep);
    if (e >= o.warmup && !lockstep_wait(o.lockstep)) break;
    double start = now_seconds();
    for (int64_t first = 0; first < o.samples; first += o.batch) {
      int64_t n = o.samples - first < o.batch ? o.samples - first : o.batch;
      step_gemms(layers, (int)n);
    }
    double elapsed = now_seconds() - start;
    if (e >= o.warmup) {
      seconds[timed++] = elapsed;
      lockstep_done(o.lockstep, elapsed);
    }
    fprintf(stderr, "gemm-floor: %s epoch %d: %.4f s\n", e < o.warmup ? "warm-up" : "timed",
            e + 1, elapsed);
  }

  result_begin("gemm_floor");
  result_bool("available", true);
  result_int("samples", o.samples);
  result_int("batch", o.batch);
  result_int("threads", o.threads);
  result_samples("seconds", seconds, timed);
  result_end();

  for (int l = 0; l < MLP_LAYERS; l++) {
    free(layers[l].x);
    free(layers[l].w);
    free(layers[l].y);
    free(layers[l].dx);
    free(layers[l].dw);
  }
  free(seconds);
  return 0;
}

#else /* no CBLAS */

static int unavailable(const char *benchmark) {
  fprintf(stderr, "%s: the engine was built without a CBLAS (meson option blas=none), so there "
          "is no sgemm to compare with\n", benchmark);
  result_begin(benchmark);
  result_bool("available", false);
  result_end();
  return 0;
}

int bench_matmul(int argc, char **argv) {
  (void)argc, (void)argv;
  return unavailable("matmul");
}

int bench_gemm_floor(int argc, char **argv) {
  (void)argc, (void)argv;
  return unavailable("gemm_floor");
}

#endif
