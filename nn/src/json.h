/*
 * json.h: a strict, bounds-checked JSON reader for the safetensors header.
 *
 * The reader never reads outside [start, end) and never recurses. The
 * caller walks the document with these functions, because the header's
 * schema is fixed. Each function returns false on the first error and
 * stores a constant message and the byte offset in the reader. Later calls
 * then fail at once. Strings must be valid UTF-8 without raw control
 * characters, as RFC 8259 requires.
 */
#ifndef NN_JSON_H
#define NN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_reader {
  const unsigned char *start, *pos, *end;
  const char *error; /* NULL until the first failure */
  size_t error_offset;
} json_reader;

void json_init(json_reader *r, const void *text, size_t size);

/* Records message at the current position unless an error is recorded
   already; returns false. */
bool json_fail(json_reader *r, const char *message);

/* Skips whitespace and returns true when the next byte is c (not consumed). */
bool json_peek(json_reader *r, char c);

/* Skips whitespace and consumes c, or fails. */
bool json_expect(json_reader *r, char c);

/* Skips whitespace and consumes c when it is next; returns whether it was. */
bool json_accept(json_reader *r, char c);

/* Reads a string, decoding escapes to UTF-8, into out[capacity] with a
   terminator. A longer string is still read and validated whole, and then
   out contains only its first capacity - 1 bytes and *truncated (may be
   NULL) is set. */
bool json_string(json_reader *r, char *out, size_t capacity, bool *truncated);

/* Reads a non-negative integer without sign, fraction or exponent, at most
   max. */
bool json_uint(json_reader *r, uint64_t max, uint64_t *value);

/* Skips whitespace and fails unless nothing else remains. */
bool json_end(json_reader *r);

/* Returns whether size bytes of text are valid UTF-8 (RFC 3629). */
bool json_utf8_valid(const void *text, size_t size);

#endif /* NN_JSON_H */
