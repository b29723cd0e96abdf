/*
 * bench_scalar.c: recording and differentiating a long chain of scalar
 * (0-d) operations.
 *
 * The chain cycles through six operations, starting from y = x:
 *   y = y * a;  y = y + b;  y = exp(y);  y = log(y);  y = y - b;  y = y * c
 * in float64 (the usual type of scalar code), with x = 0.5, a = 2, b = 0.25
 * and c = 0.5. Each cycle maps y to itself up to rounding and has the
 * derivative 1, so values and gradients neither grow nor decay into
 * subnormal numbers. dy/dx stays close to 1 as a check, or close to 2 when
 * the chain ends inside a cycle after its first multiplication. x, a, b and c
 * are 0-d leaves that require a gradient, so backward also accumulates one
 * contribution per cycle into a, b and c. One run times the recording and
 * ad_backward together; ad_ctx_reset, which releases the tape, is timed
 * apart.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

typedef struct scalar_options {
  int64_t ops;
  int repeats;
  int warmup;
  bool lockstep;
} scalar_options;

static void parse_scalar_options(scalar_options *o, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--lockstep") == 0) o->lockstep = true;
    else if (strcmp(a, "--ops") == 0) o->ops = parse_count(a, option_value(argc, argv, &i));
    else if (strcmp(a, "--repeats") == 0) o->repeats = parse_small_count(a, option_value(argc, argv, &i), 1);
    else if (strcmp(a, "--warmup") == 0) o->warmup = parse_small_count(a, option_value(argc, argv, &i), 0);
    else {
      fprintf(stderr, "ad-bench: unknown option '%s'\nusage: ad-bench scalar [--ops N] "
              "[--repeats N] [--warmup N] [--lockstep]\n", a);
      exit(2);
    }
  }
}

static ad_tensor *scalar_leaf(ad_ctx *ctx, double value) {
  ad_tensor *t = ad_scalar(ctx, AD_F64, value);
  if (!t || ad_set_requires_grad(t, true) != AD_OK) die_on_engine_error(ctx, "creating a leaf");
  return t;
}

/* Records the chain of ops operations, runs backward and returns dy/dx. */
static double run_chain(ad_ctx *ctx, int64_t ops) {
  ad_tensor *x = scalar_leaf(ctx, 0.5);
  ad_tensor *a = scalar_leaf(ctx, 2.0);
  ad_tensor *b = scalar_leaf(ctx, 0.25);
  ad_tensor *c = scalar_leaf(ctx, 0.5);
  ad_tensor *y = x;
  for (int64_t i = 0; i < ops; i++) {
    switch (i % 6) {
      case 0: y = ad_mul(ctx, y, a); break;
      case 1: y = ad_add(ctx, y, b); break;
      case 2: y = ad_exp(ctx, y); break;
      case 3: y = ad_log(ctx, y); break;
      case 4: y = ad_sub(ctx, y, b); break;
      default: y = ad_mul(ctx, y, c); break;
    }
  }
  if (!y || ad_backward(ctx, y, NULL) != AD_OK) die_on_engine_error(ctx, "the scalar chain");
  double dx;
  if (ad_item(ad_grad(x), &dx) != AD_OK) die_on_engine_error(ctx, "reading dy/dx");
  return dx;
}

int bench_scalar(int argc, char **argv) {
  /* Two warm-up runs: the first touches fresh arena pages, and the reset
     after it merges the arena's chunks into a new one, which the second
     run touches again. */
  scalar_options o = {.ops = 1000000, .repeats = 7, .warmup = 2};
  parse_scalar_options(&o, argc, argv);
  double *seconds = calloc((size_t)o.repeats, sizeof *seconds);
  double *reset_seconds = calloc((size_t)o.repeats, sizeof *reset_seconds);
  double *warmup_seconds = calloc((size_t)o.warmup + 1, sizeof *warmup_seconds);
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx || !seconds || !reset_seconds || !warmup_seconds) {
    fprintf(stderr, "ad-bench: out of memory\n");
    return 1;
  }
  double dx = NAN;
  int timed = 0;
  for (int r = 0; r < o.warmup + o.repeats; r++) {
    if (r == o.warmup) lockstep_ready(o.lockstep);
    if (r >= o.warmup && !lockstep_wait(o.lockstep)) break;
    double start = now_seconds();
    dx = run_chain(ctx, o.ops);
    double mid = now_seconds();
    ad_ctx_reset(ctx);
    double end = now_seconds();
    if (r >= o.warmup) {
      seconds[timed] = mid - start;
      reset_seconds[timed++] = end - mid;
      lockstep_done(o.lockstep, mid - start);
    } else {
      warmup_seconds[r] = mid - start;
    }
    fprintf(stderr, "scalar: %s run %d: %lld ops in %.4f s (%.3g ops/s), reset %.4f s\n",
            r < o.warmup ? "warm-up" : "timed", r + 1, (long long)o.ops, mid - start,
            (double)o.ops / (mid - start), end - mid);
  }
  ad_memory_stats stats;
  ad_ctx_memory(ctx, &stats);

  result_begin("scalar");
  result_int("ops", o.ops);
  result_string("dtype", "float64");
  result_samples("seconds", seconds, timed);
  result_samples("reset_seconds", reset_seconds, timed);
  result_samples("warmup_seconds", warmup_seconds, o.warmup);
  result_number("dy_dx", dx);
  result_int("arena_peak_bytes", (int64_t)stats.arena_peak_used);
  result_int("peak_rss_bytes", peak_rss_bytes());
  result_end();

  ad_ctx_free(ctx);
  free(seconds);
  free(reset_seconds);
  free(warmup_seconds);
  return 0;
}
