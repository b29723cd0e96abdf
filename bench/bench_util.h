/*
 * bench_util.h: helpers shared by the benchmark subcommands of ad-bench.
 *
 * Every subcommand prints its progress to stderr and ends by printing one
 * line to stdout that starts with "RESULT " and continues with a JSON
 * object. bench/bench.py parses that line; timings in it are raw samples in
 * seconds, and the driver computes medians, minima and maxima.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autodiff.h"

/* Seconds on CLOCK_MONOTONIC. */
double now_seconds(void);

/* Sleeps for seconds (at least 0). */
void pause_seconds(double seconds);

/* The process's peak resident set size (VmHWM in /proc/self/status) in
   bytes, or -1 when it cannot be read. */
int64_t peak_rss_bytes(void);

/* Calls through an ad_allocator hook. The hook forwards to malloc and free
   and counts; it keeps no other state, so one counter can serve several
   contexts. */
typedef struct alloc_counter {
  uint64_t allocs; /* calls to alloc */
  uint64_t frees;  /* calls to free */
  size_t live;     /* bytes allocated and not yet freed */
  size_t peak;     /* the largest value live has reached */
} alloc_counter;

/* An allocator that counts into counter, which must outlive every context
   created with it. */
ad_allocator counting_allocator(alloc_counter *counter);

/* Parses argument text as a positive integer, which may be written as 1e6.
   Exits with a message naming option on invalid input. */
int64_t parse_count(const char *option, const char *text);

/* Parses text as an integer from minimum to 1000000, for thread, run and
   epoch counts. Exits with a message naming option on invalid input. */
int parse_small_count(const char *option, const char *text, int minimum);

/* Returns the value following argv[*i] and advances *i, or exits with a
   message naming the option when there is none. */
const char *option_value(int argc, char **argv, int *i);

/* Prints the context's error, naming the failed operation, on stderr and
   exits with status 1. */
void die_on_engine_error(ad_ctx *ctx, const char *operation);

/* ---- Lockstep mode --------------------------------------------------- */
/*
 * With --lockstep, bench.py interleaves the timed runs of several processes
 * (the engine, the GEMM floor and PyTorch) so that all of them run under the
 * same background load. The process prints "READY" once its set-up and
 * warm-up runs are done. Before each timed run it waits for a line on stdin,
 * and after the run it prints "DONE <seconds>". Without --lockstep these
 * calls do nothing and the timed runs follow each other at once.
 */
void lockstep_ready(bool lockstep);
/* Returns false when stdin ends, which means that no more runs are wanted. */
bool lockstep_wait(bool lockstep);
void lockstep_done(bool lockstep, double seconds);

/* ---- The RESULT line ------------------------------------------------ */
/*
 * A flat JSON object written field by field:
 *
 *     result_begin("scalar");
 *     result_int("ops", ops);
 *     result_samples("seconds", times, repeats);
 *     result_end();
 */
void result_begin(const char *benchmark);
void result_int(const char *key, int64_t value);
void result_number(const char *key, double value);
void result_bool(const char *key, bool value);
/* value must not need escaping: no quotes, backslashes or control characters. */
void result_string(const char *key, const char *value);
void result_samples(const char *key, const double *values, int count);
void result_end(void);

/* ---- Subcommands ---------------------------------------------------- */

int bench_mlp(int argc, char **argv);
int bench_gemm_floor(int argc, char **argv);
int bench_determinism(int argc, char **argv);
int bench_scalar(int argc, char **argv);
int bench_matmul(int argc, char **argv);

#endif /* BENCH_UTIL_H */
