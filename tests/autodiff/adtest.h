/*
 * adtest.h: helpers shared by the engine's test suites.
 *
 * The assertion helpers use Check's ck_assert_msg, so they may be called
 * from any function that runs inside a test. Every message starts with the
 * label the caller passes, which names the case.
 */
#ifndef ADTEST_H
#define ADTEST_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autodiff.h"

/* ---- Counting allocator --------------------------------------------- */

/* State of an allocator that counts live blocks and can fail on demand.
   Each block carries a header with its size, so a free with a size other
   than the one given to alloc is detected. */
typedef struct counting_allocator {
  uint64_t calls;        /* calls to alloc so far, failed ones included */
  uint64_t fail_at;      /* the call number (1-based) that returns NULL; 0 for none */
  bool fail_after;       /* when set, every call from fail_at on fails */
  int64_t live_blocks;
  size_t live_bytes;
  size_t peak_bytes;
  uint64_t size_mismatches; /* frees whose size differed from the allocation's */
} counting_allocator;

/* The hook for ad_ctx_new that allocates through state. */
ad_allocator counting_allocator_hook(counting_allocator *state);

/* ---- Building tensors ------------------------------------------------ */

/* Parses a shape written as "2,3" ("" is 0-d) into shape; returns ndim. */
int parse_shape(const char *text, int64_t *shape);

/* A float64 tensor of the given shape text filled from values (which must
   hold enough elements). */
ad_tensor *tensor_of(ad_ctx *ctx, const char *shape, const double *values);

/* Requires a gradient on t and returns it, for chaining. */
ad_tensor *variable(ad_tensor *t);

/* The double value of element i (flat) of any tensor. */
double flat_get(const ad_tensor *t, int64_t i);

/* ---- Assertions ------------------------------------------------------ */

/* True when got and expected agree within atol + rtol * |expected|, with
   infinities equal only to themselves and NaN equal to NaN. */
bool values_close(double got, double expected, double atol, double rtol);

/* Asserts that t is non-NULL and contains the n values of expected within the
   tolerances; label names the case in the failure message. */
void assert_values(const char *label, const ad_tensor *t, const double *expected, int64_t n,
                   double atol, double rtol);

/* Asserts that a and b have the same shape and close values. */
void assert_tensors_close(const char *label, const ad_tensor *a, const ad_tensor *b,
                          double atol, double rtol);

/* Asserts that t has the shape written as text ("2,3"). */
void assert_shape(const char *label, const ad_tensor *t, const char *shape);

/* Asserts that the context records status and that its message contains
   every NULL-terminated substring given. */
void assert_error(const char *label, const ad_ctx *ctx, ad_status status, ...);

/* ---- Running --------------------------------------------------------- */

/* Runs the suite and returns the process exit status. */
int run_suite(Suite *suite);

#endif /* ADTEST_H */
