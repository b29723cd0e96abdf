/*
 * text.c: showing expression text in messages: excerpts, numbers, and the
 * line with a caret under a token.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

size_t expr_utf8_length(const unsigned char *s, size_t n) {
  size_t len;
  uint32_t cp;
  if (s[0] < 0x80) return 1;
  if (s[0] >= 0xC2 && s[0] <= 0xDF) len = 2, cp = s[0] & 0x1Fu;
  else if (s[0] >= 0xE0 && s[0] <= 0xEF) len = 3, cp = s[0] & 0x0Fu;
  else if (s[0] >= 0xF0 && s[0] <= 0xF4) len = 4, cp = s[0] & 0x07u;
  else return 0;
  if (len > n) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3Fu);
  }
  bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
  bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF) return 0;
  return len;
}

/* Copies text[start, end) into out at *used as printable text: control
   bytes become spaces and invalid UTF-8 bytes '?'. Returns the number of
   characters written. */
static size_t append_printable(const char *text, size_t start, size_t end, char *out,
                               size_t capacity, size_t *used) {
  size_t characters = 0;
  size_t i = start;
  while (i < end) {
    const unsigned char *s = (const unsigned char *)text + i;
    size_t len = expr_utf8_length(s, end - i);
    if (*used + (len ? len : 1) + 1 > capacity) break;
    if (len > 1) {
      memcpy(out + *used, s, len);
      *used += len;
      i += len;
    } else {
      out[(*used)++] = len == 0 ? '?' : (s[0] < 0x20 || s[0] == 0x7F) ? ' ' : (char)s[0];
      i++;
    }
    characters++;
  }
  out[*used] = '\0';
  return characters;
}

/* The number of characters in text[start, end), counting each valid UTF-8
   sequence and each other byte as one. */
static size_t count_characters(const char *text, size_t start, size_t end) {
  size_t count = 0;
  while (start < end) {
    size_t len = expr_utf8_length((const unsigned char *)text + start, end - start);
    start += len ? len : 1;
    count++;
  }
  return count;
}

/* Moves pos back to the start of the UTF-8 sequence it is inside. */
static size_t sequence_start(const char *text, size_t floor, size_t pos) {
  while (pos > floor && ((unsigned char)text[pos] & 0xC0) == 0x80) pos--;
  return pos;
}

void expr_excerpt(const char *text, size_t start, size_t end, char *out, size_t capacity) {
  if (capacity == 0) return;
  size_t used = 0;
  out[0] = '\0';
  if (end - start + 1 <= capacity) {
    append_printable(text, start, end, out, capacity, &used);
    return;
  }
  size_t keep = capacity > 8 ? (capacity - 5) / 2 : 0;
  size_t head_end = sequence_start(text, start, start + keep);
  size_t tail_start = sequence_start(text, start, end - keep);
  append_printable(text, start, head_end, out, capacity, &used);
  if (used + 4 <= capacity) {
    memcpy(out + used, "...", 4);
    used += 3;
  }
  append_printable(text, tail_start, end, out, capacity, &used);
}

void expr_format_double(double v, char *out, size_t capacity) {
  if (isnan(v)) {
    snprintf(out, capacity, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, capacity, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int precision = 15; precision <= 17; precision++) {
    snprintf(out, capacity, "%.*g", precision, v);
    if (strtod(out, NULL) == v) return;
  }
}

void expr_position(const char *text, size_t offset, int *line, int *column) {
  size_t line_start = 0;
  int lines = 1;
  for (size_t i = 0; i < offset; i++) {
    if (text[i] == '\n') {
      lines++;
      line_start = i + 1;
    }
  }
  *line = lines;
  *column = (int)count_characters(text, line_start, offset) + 1;
}

/* The width of the text shown around the caret, in characters. */
#define WINDOW 72

size_t expr_caret_lines(const char *text, size_t length, size_t offset, size_t token_length,
                        char *out, size_t capacity) {
  size_t line_start = offset, line_end = offset;
  while (line_start > 0 && text[line_start - 1] != '\n') line_start--;
  while (line_end < length && text[line_end] != '\n') line_end++;

  size_t from = line_start, to = line_end;
  if (count_characters(text, line_start, line_end) > WINDOW) {
    from = offset > line_start + WINDOW / 2 ? sequence_start(text, line_start, offset - WINDOW / 2)
                                            : line_start;
    to = from + WINDOW < line_end ? sequence_start(text, from, from + WINDOW) : line_end;
  }
  size_t used = 0;
  out[0] = '\0';
  if (capacity < 16) return 0;
  memcpy(out, "  ", 3);
  used = 2;
  if (from > line_start) {
    memcpy(out + used, "...", 4);
    used += 3;
  }
  append_printable(text, from, to, out, capacity - 4, &used);
  if (to < line_end) {
    memcpy(out + used, "...", 4);
    used += 3;
  }

  size_t pad = 2 + (from > line_start ? 3 : 0) + count_characters(text, from, offset);
  size_t end = offset + token_length < to ? offset + token_length : to;
  size_t marks = end > offset ? count_characters(text, offset, end) : 1;
  if (used + 1 + pad + marks + 1 > capacity) return used;
  out[used++] = '\n';
  memset(out + used, ' ', pad);
  used += pad;
  out[used++] = '^';
  for (size_t i = 1; i < marks; i++) out[used++] = '~';
  out[used] = '\0';
  return used;
}
