/*
 * inspect_internal.h: text output shared by the graph export and the trace
 * printer.
 */
#ifndef AD_INSPECT_INTERNAL_H
#define AD_INSPECT_INTERNAL_H

#include "../src/internal.h"
#include "ad_inspect.h"

/* A stream with a sticky failure flag, so a long run of writes is checked
   once at the end. */
typedef struct text_out {
  FILE *stream;
  bool failed;
} text_out;

/* Writes formatted text; a failed write sets o->failed and later calls
   write nothing. */
void out_printf(text_out *o, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes s with the characters that DOT's quoted strings treat specially
   (quote, backslash, newline) escaped. */
void out_dot_escaped(text_out *o, const char *s);

/* Writes the elements of t with %.*g: a scalar bare, a 1-d tensor as
   "[a, b]", and higher dimensions nested, with row_separator written
   between the rows of the last two dimensions. */
void out_values(text_out *o, const ad_tensor *t, int precision, const char *row_separator);

/* Counts the NaN and infinite elements of a float tensor. */
void count_nonfinite(const ad_tensor *t, int64_t *nans, int64_t *infs);

#endif /* AD_INSPECT_INTERNAL_H */
