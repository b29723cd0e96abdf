/*
 * text.h: expression text in messages.
 */
#ifndef AD_EXPR_TEXT_H
#define AD_EXPR_TEXT_H

#include <stddef.h>

/* Internal to libautodiff: these symbols are not exported. */
#pragma GCC visibility push(hidden)

/* The length of the valid UTF-8 sequence (RFC 3629) at s, of at most n
   bytes, or 0 when the bytes there are not valid UTF-8. */
size_t expr_utf8_length(const unsigned char *s, size_t n);

/* Writes text[start, end) into out (capacity bytes, NUL-terminated), with
   control bytes as spaces, invalid UTF-8 as '?', and the middle replaced by
   "..." when it does not fit. */
void expr_excerpt(const char *text, size_t start, size_t end, char *out, size_t capacity);

/* Formats v with the fewest significant digits (15 to 17) that read back
   to v, or as "NaN", "inf" or "-inf". */
void expr_format_double(double v, char *out, size_t capacity);

/* The 1-based line and column (in characters) of byte offset. */
void expr_position(const char *text, size_t offset, int *line, int *column);

/* Writes two lines into out: the line of text around offset, indented by
   two spaces and cut to about 72 characters, and below it a caret under
   the token's first character with '~' under the rest. Returns the length
   written. */
size_t expr_caret_lines(const char *text, size_t length, size_t offset, size_t token_length,
                        char *out, size_t capacity);

#pragma GCC visibility pop

#endif /* AD_EXPR_TEXT_H */
