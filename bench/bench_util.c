/* bench_util.c: clocks, peak memory, the counting allocator and the RESULT line. */
#include "bench_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pause_seconds(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

int64_t peak_rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int64_t kib = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kib = strtoll(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

static void *counting_alloc(void *user, size_t size) {
  alloc_counter *c = user;
  c->allocs++;
  void *p = malloc(size);
  if (p) {
    c->live += size;
    if (c->live > c->peak) c->peak = c->live;
  }
  return p;
}

static void counting_free(void *user, void *ptr, size_t size) {
  alloc_counter *c = user;
  c->frees++;
  c->live -= size;
  free(ptr);
}

ad_allocator counting_allocator(alloc_counter *counter) {
  ad_allocator al = {counting_alloc, counting_free, counter};
  return al;
}

static int64_t parse_integer(const char *option, const char *text, double minimum,
                             const char *expected) {
  errno = 0;
  char *end = NULL;
  double value = strtod(text, &end);
  if (errno || end == text || *end != '\0' || !(value >= minimum) || value > 1e15 ||
      value != floor(value)) {
    fprintf(stderr, "ad-bench: invalid value '%s' for %s; expected %s\n", text, option, expected);
    exit(2);
  }
  return (int64_t)value;
}

int64_t parse_count(const char *option, const char *text) {
  return parse_integer(option, text, 1, "a positive integer");
}

int parse_small_count(const char *option, const char *text, int minimum) {
  int64_t value = parse_integer(option, text, minimum,
                                minimum == 0 ? "an integer from 0 to 1000000" : "an integer from 1 to 1000000");
  if (value > 1000000) {
    fprintf(stderr, "ad-bench: %s %s is too large; use at most 1000000\n", option, text);
    exit(2);
  }
  return (int)value;
}

const char *option_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "ad-bench: option %s needs a value\n", argv[*i]);
    exit(2);
  }
  *i += 1;
  return argv[*i];
}

void die_on_engine_error(ad_ctx *ctx, const char *operation) {
  fprintf(stderr, "ad-bench: %s failed: %s: %s\n", operation, ad_status_name(ad_errcode(ctx)),
          ad_errmsg(ctx));
  exit(1);
}

/* ---- Lockstep mode --------------------------------------------------- */

void lockstep_ready(bool lockstep) {
  if (!lockstep) return;
  printf("READY\n");
  fflush(stdout);
}

bool lockstep_wait(bool lockstep) {
  if (!lockstep) return true;
  char line[64];
  return fgets(line, sizeof line, stdin) != NULL;
}

void lockstep_done(bool lockstep, double seconds) {
  if (!lockstep) return;
  printf("DONE %.9f\n", seconds);
  fflush(stdout);
}

/* ---- The RESULT line ------------------------------------------------ */

static bool result_first_field;

static void result_key(const char *key) {
  printf("%s\"%s\": ", result_first_field ? "" : ", ", key);
  result_first_field = false;
}

void result_begin(const char *benchmark) {
  printf("RESULT {");
  result_first_field = true;
  result_string("benchmark", benchmark);
}

void result_int(const char *key, int64_t value) {
  result_key(key);
  printf("%lld", (long long)value);
}

/* JSON has no inf or NaN, so they are written as null. */
static void print_number(double value) {
  if (isfinite(value)) printf("%.17g", value);
  else printf("null");
}

void result_number(const char *key, double value) {
  result_key(key);
  print_number(value);
}

void result_bool(const char *key, bool value) {
  result_key(key);
  printf(value ? "true" : "false");
}

void result_string(const char *key, const char *value) {
  result_key(key);
  printf("\"%s\"", value);
}

void result_samples(const char *key, const double *values, int count) {
  result_key(key);
  printf("[");
  for (int i = 0; i < count; i++) {
    if (i) printf(", ");
    print_number(values[i]);
  }
  printf("]");
}

void result_end(void) {
  printf("}\n");
  fflush(stdout);
}
