/* json.c: the strict JSON reader behind checkpoint headers. */
#include "json.h"

#include <string.h>

void json_init(json_reader *r, const void *text, size_t size) {
  r->start = r->pos = text;
  r->end = r->start + size;
  r->error = NULL;
  r->error_offset = 0;
}

bool json_fail(json_reader *r, const char *message) {
  if (!r->error) {
    r->error = message;
    r->error_offset = (size_t)(r->pos - r->start);
  }
  return false;
}

static void skip_space(json_reader *r) {
  while (r->pos < r->end &&
         (*r->pos == ' ' || *r->pos == '\t' || *r->pos == '\n' || *r->pos == '\r'))
    r->pos++;
}

bool json_peek(json_reader *r, char c) {
  if (r->error) return false;
  skip_space(r);
  return r->pos < r->end && *r->pos == (unsigned char)c;
}

bool json_accept(json_reader *r, char c) {
  if (!json_peek(r, c)) return false;
  r->pos++;
  return true;
}

bool json_expect(json_reader *r, char c) {
  if (r->error) return false;
  if (json_accept(r, c)) return true;
  switch (c) {
  case '{': return json_fail(r, "expected '{'");
  case '}': return json_fail(r, "expected ',' or '}'");
  case '[': return json_fail(r, "expected '['");
  case ']': return json_fail(r, "expected ',' or ']'");
  case ':': return json_fail(r, "expected ':'");
  default: return json_fail(r, "unexpected character");
  }
}

bool json_end(json_reader *r) {
  if (r->error) return false;
  skip_space(r);
  return r->pos == r->end || json_fail(r, "unexpected data after the end of the JSON object");
}

/* Appends one byte to out when it fits; counts it either way. */
static void put_byte(char *out, size_t capacity, size_t *length, unsigned char byte) {
  if (*length + 1 < capacity) out[*length] = (char)byte;
  (*length)++;
}

static void put_code_point(char *out, size_t capacity, size_t *length, uint32_t cp) {
  if (cp < 0x80) {
    put_byte(out, capacity, length, (unsigned char)cp);
  } else if (cp < 0x800) {
    put_byte(out, capacity, length, (unsigned char)(0xC0 | cp >> 6));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    put_byte(out, capacity, length, (unsigned char)(0xE0 | cp >> 12));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp & 0x3F)));
  } else {
    put_byte(out, capacity, length, (unsigned char)(0xF0 | cp >> 18));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp >> 12 & 0x3F)));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp >> 6 & 0x3F)));
    put_byte(out, capacity, length, (unsigned char)(0x80 | (cp & 0x3F)));
  }
}

/* Reads four hexadecimal digits. */
static bool read_hex4(json_reader *r, uint32_t *value) {
  if (r->end - r->pos < 4) return json_fail(r, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = *r->pos++;
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return json_fail(r, "invalid hexadecimal digit in \\u escape");
  }
  *value = v;
  return true;
}

/* Decodes the escape after a backslash. */
static bool read_escape(json_reader *r, char *out, size_t capacity, size_t *length) {
  if (r->pos >= r->end) return json_fail(r, "unterminated string");
  unsigned char c = *r->pos++;
  const char *simple = "\"\\/bfnrt";
  const char *decoded = "\"\\/\b\f\n\r\t";
  const char *hit = c ? strchr(simple, c) : NULL;
  if (hit) {
    put_byte(out, capacity, length, (unsigned char)decoded[hit - simple]);
    return true;
  }
  if (c != 'u') return json_fail(r, "invalid escape sequence");
  uint32_t cp;
  if (!read_hex4(r, &cp)) return false;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return json_fail(r, "unpaired low surrogate in \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    uint32_t low;
    if (r->end - r->pos < 2 || r->pos[0] != '\\' || r->pos[1] != 'u')
      return json_fail(r, "unpaired high surrogate in \\u escape");
    r->pos += 2;
    if (!read_hex4(r, &low)) return false;
    if (low < 0xDC00 || low > 0xDFFF) return json_fail(r, "invalid low surrogate in \\u escape");
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  put_code_point(out, capacity, length, cp);
  return true;
}

/* Copies one raw UTF-8 sequence that starts with a byte >= 0x80, checking it
   as RFC 3629 defines it (no overlong forms, no surrogates, at most
   U+10FFFF). */
static bool read_utf8(json_reader *r, char *out, size_t capacity, size_t *length) {
  unsigned char c = *r->pos;
  int extra;
  unsigned char low = 0x80, high = 0xBF; /* the range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) extra = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    extra = 2;
    if (c == 0xE0) low = 0xA0;
    if (c == 0xED) high = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    extra = 3;
    if (c == 0xF0) low = 0x90;
    if (c == 0xF4) high = 0x8F;
  } else {
    return json_fail(r, "invalid UTF-8 byte in string");
  }
  if (r->end - r->pos <= extra) return json_fail(r, "truncated UTF-8 sequence in string");
  for (int i = 1; i <= extra; i++) {
    unsigned char b = r->pos[i];
    unsigned char lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (b < lo || b > hi) return json_fail(r, "invalid UTF-8 sequence in string");
  }
  for (int i = 0; i <= extra; i++) put_byte(out, capacity, length, r->pos[i]);
  r->pos += extra + 1;
  return true;
}

bool json_string(json_reader *r, char *out, size_t capacity, bool *truncated) {
  if (!json_accept(r, '"')) return json_fail(r, "expected a string");
  size_t length = 0;
  for (;;) {
    if (r->pos >= r->end) return json_fail(r, "unterminated string");
    unsigned char c = *r->pos;
    if (c == '"') {
      r->pos++;
      break;
    }
    if (c < 0x20) return json_fail(r, "control character in string");
    if (c == '\\') {
      r->pos++;
      if (!read_escape(r, out, capacity, &length)) return false;
    } else if (c >= 0x80) {
      if (!read_utf8(r, out, capacity, &length)) return false;
    } else {
      put_byte(out, capacity, &length, c);
      r->pos++;
    }
  }
  if (capacity) out[length < capacity ? length : capacity - 1] = '\0';
  if (truncated) *truncated = length >= capacity;
  return true;
}

bool json_uint(json_reader *r, uint64_t max, uint64_t *value) {
  if (r->error) return false;
  skip_space(r);
  if (r->pos >= r->end || *r->pos < '0' || *r->pos > '9')
    return json_fail(r, "expected a non-negative integer");
  if (*r->pos == '0' && r->end - r->pos > 1 && r->pos[1] >= '0' && r->pos[1] <= '9')
    return json_fail(r, "integer with a leading zero");
  uint64_t v = 0;
  while (r->pos < r->end && *r->pos >= '0' && *r->pos <= '9') {
    unsigned digit = (unsigned)(*r->pos - '0');
    if (digit > max || v > (max - digit) / 10) return json_fail(r, "integer out of range");
    v = v * 10 + digit;
    r->pos++;
  }
  if (r->pos < r->end && (*r->pos == '.' || *r->pos == 'e' || *r->pos == 'E'))
    return json_fail(r, "expected an integer, found a fraction or exponent");
  *value = v;
  return true;
}

bool json_utf8_valid(const void *text, size_t size) {
  json_reader r;
  json_init(&r, text, size);
  size_t length = 0;
  while (r.pos < r.end) {
    if (*r.pos < 0x80) r.pos++;
    else if (!read_utf8(&r, NULL, 0, &length)) return false;
  }
  return true;
}
