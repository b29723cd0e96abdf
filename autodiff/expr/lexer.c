/*
 * lexer.c: splitting C expression text into tokens, and converting numeric
 * constants.
 *
 * Numbers are scanned as C's preprocessing numbers (6.4.8): a digit or a
 * '.' and a digit, then letters, digits, '_', '.', and a sign after e, E, p
 * or P. So "1.2.3" and "2x" are one token each, which the conversion then
 * rejects with the reason a C compiler gives.
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lexer.h"
#include "text.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

typedef struct punctuator {
  const char *text;
  tok_kind kind;
} punctuator;

/* Every C punctuator (6.4.6), longest first so that the first match is the
   longest, as C's tokenizer takes it. */
static const punctuator punctuators[] = {
    {"%:%:", TOK_UNSUPPORTED}, {"...", TOK_UNSUPPORTED}, {"<<=", TOK_UNSUPPORTED},
    {">>=", TOK_UNSUPPORTED},  {"->", TOK_UNSUPPORTED},  {"++", TOK_UNSUPPORTED},
    {"--", TOK_UNSUPPORTED},   {"<<", TOK_UNSUPPORTED},  {">>", TOK_UNSUPPORTED},
    {"<=", TOK_LE},            {">=", TOK_GE},           {"==", TOK_EQ},
    {"!=", TOK_NE},            {"&&", TOK_AND},          {"||", TOK_OR},
    {"*=", TOK_UNSUPPORTED},   {"/=", TOK_UNSUPPORTED},  {"%=", TOK_UNSUPPORTED},
    {"+=", TOK_UNSUPPORTED},   {"-=", TOK_UNSUPPORTED},  {"&=", TOK_UNSUPPORTED},
    {"^=", TOK_UNSUPPORTED},   {"|=", TOK_UNSUPPORTED},  {"##", TOK_UNSUPPORTED},
    {"<:", TOK_UNSUPPORTED},   {":>", TOK_UNSUPPORTED},  {"<%", TOK_UNSUPPORTED},
    {"%>", TOK_UNSUPPORTED},   {"%:", TOK_UNSUPPORTED},  {"(", TOK_LPAREN},
    {")", TOK_RPAREN},         {",", TOK_COMMA},         {"?", TOK_QUESTION},
    {":", TOK_COLON},          {"<", TOK_LT},            {">", TOK_GT},
    {"!", TOK_NOT},            {"+", TOK_PLUS},          {"-", TOK_MINUS},
    {"*", TOK_STAR},           {"/", TOK_SLASH},         {"[", TOK_UNSUPPORTED},
    {"]", TOK_UNSUPPORTED},    {"{", TOK_UNSUPPORTED},   {"}", TOK_UNSUPPORTED},
    {".", TOK_UNSUPPORTED},    {"&", TOK_UNSUPPORTED},   {"~", TOK_UNSUPPORTED},
    {"%", TOK_UNSUPPORTED},    {"^", TOK_UNSUPPORTED},   {"|", TOK_UNSUPPORTED},
    {";", TOK_UNSUPPORTED},    {"=", TOK_UNSUPPORTED},   {"#", TOK_UNSUPPORTED},
};

/* Skips spaces and comments from pos. Returns the new position, or sets
   *unterminated to the start of a comment that never ends. */
static size_t skip_blank(const char *text, size_t length, size_t pos, size_t *unterminated) {
  for (;;) {
    while (pos < length && is_space(text[pos])) pos++;
    if (pos + 1 >= length || text[pos] != '/') return pos;
    if (text[pos + 1] == '/') {
      while (pos < length && text[pos] != '\n') pos++;
    } else if (text[pos + 1] == '*') {
      size_t start = pos;
      pos += 2;
      while (pos + 1 < length && !(text[pos] == '*' && text[pos + 1] == '/')) pos++;
      if (pos + 1 >= length) {
        *unterminated = start;
        return length;
      }
      pos += 2;
    } else {
      return pos;
    }
  }
}

static size_t scan_number(const char *text, size_t length, size_t pos) {
  size_t i = pos;
  while (i < length) {
    char c = text[i];
    bool sign = (c == '+' || c == '-') && i > pos &&
                (text[i - 1] == 'e' || text[i - 1] == 'E' || text[i - 1] == 'p' ||
                 text[i - 1] == 'P');
    if (!is_name_char(c) && c != '.' && !sign) break;
    i++;
  }
  return i;
}

/* A string or character constant from its opening quote. */
static token scan_quoted(const char *text, size_t length, size_t pos) {
  char quote = text[pos];
  size_t i = pos + 1;
  while (i < length && text[i] != quote && text[i] != '\n') i += text[i] == '\\' ? 2 : 1;
  if (i >= length || text[i] != quote) {
    token t = {TOK_INVALID, pos, 1, quote == '"' ? "unterminated string literal"
                                                 : "unterminated character constant"};
    return t;
  }
  token t = {TOK_UNSUPPORTED, pos, i + 1 - pos, NULL};
  return t;
}

token lex_token(const char *text, size_t length, size_t pos) {
  size_t unterminated = SIZE_MAX;
  pos = skip_blank(text, length, pos, &unterminated);
  if (unterminated != SIZE_MAX) {
    token t = {TOK_INVALID, unterminated, 2, "unterminated comment"};
    return t;
  }
  token t = {TOK_END, pos, 0, NULL};
  if (pos >= length) return t;
  char c = text[pos];
  if (is_digit(c) || (c == '.' && pos + 1 < length && is_digit(text[pos + 1]))) {
    t.kind = TOK_NUMBER;
    t.length = scan_number(text, length, pos) - pos;
    return t;
  }
  if (is_name_start(c)) {
    size_t i = pos;
    while (i < length && is_name_char(text[i])) i++;
    t.kind = TOK_NAME;
    t.length = i - pos;
    return t;
  }
  if (c == '"' || c == '\'') return scan_quoted(text, length, pos);
  for (size_t k = 0; k < sizeof punctuators / sizeof punctuators[0]; k++) {
    size_t n = strlen(punctuators[k].text);
    if (n <= length - pos && memcmp(text + pos, punctuators[k].text, n) == 0) {
      t.kind = punctuators[k].kind;
      t.length = n;
      return t;
    }
  }
  size_t n = expr_utf8_length((const unsigned char *)text + pos, length - pos);
  t.kind = TOK_INVALID;
  t.length = n ? n : 1;
  t.problem = "invalid character";
  return t;
}

/* ---- Integer constants ------------------------------------------------ */

typedef struct int_suffix {
  bool is_unsigned;
  int longs; /* 0, 1 (l or L) or 2 (ll or LL) */
} int_suffix;

/* Parses an integer suffix (6.4.4.1): u or U, l or L, ll or LL, in either
   order. Returns false for anything else. */
static bool parse_int_suffix(const char *s, size_t n, int_suffix *out) {
  out->is_unsigned = false;
  out->longs = 0;
  size_t i = 0;
  bool seen_u = false, seen_l = false;
  while (i < n) {
    if ((s[i] == 'u' || s[i] == 'U') && !seen_u) {
      seen_u = true;
      i++;
    } else if ((s[i] == 'l' || s[i] == 'L') && !seen_l) {
      seen_l = true;
      bool doubled = i + 1 < n && s[i + 1] == s[i];
      out->longs = doubled ? 2 : 1;
      i += doubled ? 2 : 1;
    } else {
      return false;
    }
  }
  out->is_unsigned = seen_u;
  return true;
}

/* The first type of the list in C11 6.4.4.1 that can represent value. */
static bool integer_type(uint64_t value, bool decimal, int_suffix sfx, c_type *type) {
  static const c_type decimal_list[3][3] = {
      {CT_INT, CT_LONG, CT_LLONG}, {CT_LONG, CT_LLONG, CT_LLONG}, {CT_LLONG, CT_LLONG, CT_LLONG}};
  static const c_type other_list[3][6] = {
      {CT_INT, CT_UINT, CT_LONG, CT_ULONG, CT_LLONG, CT_ULLONG},
      {CT_LONG, CT_ULONG, CT_LLONG, CT_ULLONG, CT_ULLONG, CT_ULLONG},
      {CT_LLONG, CT_ULLONG, CT_ULLONG, CT_ULLONG, CT_ULLONG, CT_ULLONG}};
  static const c_type unsigned_list[3][3] = {{CT_UINT, CT_ULONG, CT_ULLONG},
                                             {CT_ULONG, CT_ULLONG, CT_ULLONG},
                                             {CT_ULLONG, CT_ULLONG, CT_ULLONG}};
  const c_type *list;
  int count;
  if (sfx.is_unsigned) list = unsigned_list[sfx.longs], count = 3;
  else if (decimal) list = decimal_list[sfx.longs], count = 3;
  else list = other_list[sfx.longs], count = 6;
  for (int i = 0; i < count; i++) {
    c_type t = list[i];
    uint64_t max = t == CT_INT ? INT32_MAX : t == CT_UINT ? UINT32_MAX
                   : c_type_is_unsigned(t) ? UINT64_MAX : INT64_MAX;
    if (value <= max) {
      *type = t;
      return true;
    }
  }
  return false;
}

static ad_status convert_integer(const char *s, size_t n, number *out, char *message,
                                 size_t capacity) {
  unsigned base = 10;
  size_t i = 0;
  if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) base = 16, i = 2;
  else if (s[0] == '0') base = 8;
  size_t digits_start = i;
  uint64_t value = 0;
  bool too_large = false;
  for (; i < n; i++) {
    char c = s[i];
    unsigned d;
    if (base == 16 && is_hex_digit(c)) d = is_digit(c) ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
    else if (base != 16 && is_digit(c)) d = (unsigned)(c - '0');
    else break;
    if (d >= base) {
      snprintf(message, capacity, "invalid digit '%c' in octal constant '%.*s'", c, (int)n, s);
      return AD_ERR_FORMAT;
    }
    if (value > (UINT64_MAX - d) / base) too_large = true;
    value = value * base + d;
  }
  if (base == 16 && i == digits_start) {
    snprintf(message, capacity, "hexadecimal constant '%.*s' has no digits", (int)n, s);
    return AD_ERR_FORMAT;
  }
  int_suffix sfx;
  if (!parse_int_suffix(s + i, n - i, &sfx)) {
    if (n - i == 1 && (s[i] | 0x20) == 'f') {
      snprintf(message, capacity,
               "invalid suffix 'f' on integer constant '%.*s'; write %.*s.0f for a float constant",
               (int)i, s, (int)i, s);
      return AD_ERR_FORMAT;
    }
    if (base == 8 && i == 1 && (s[1] | 0x20) == 'b') {
      snprintf(message, capacity,
               "binary constant '%.*s' is not C11; write it in hexadecimal (0x...)", (int)n, s);
      return AD_ERR_FORMAT;
    }
    bool product = base == 10 && is_name_start(s[i]);
    snprintf(message, capacity, "invalid suffix '%.*s' on integer constant '%.*s'%s%.*s%s%.*s",
             (int)(n - i), s + i, (int)i, s, product ? "; for a product write " : "",
             product ? (int)i : 0, s, product ? "*" : "", product ? (int)(n - i) : 0, s + i);
    return AD_ERR_FORMAT;
  }
  if (too_large || !integer_type(value, base == 10, sfx, &out->type)) {
    snprintf(message, capacity,
             "integer constant '%.*s' is too large for its type; write it as a floating "
             "constant, such as %.*s.0",
             (int)n, s, (int)i, s);
    return AD_ERR_FORMAT;
  }
  out->bits = value;
  out->value = (double)value;
  return AD_OK;
}

/* ---- Floating constants ----------------------------------------------- */

/* Checks the form of a floating constant (6.4.4.2) and returns the length
   of its part before the suffix, or 0 with a message. */
static size_t floating_body(const char *s, size_t n, char *message, size_t capacity) {
  bool hex = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  size_t i = hex ? 2 : 0;
  size_t mantissa_digits = 0;
  while (i < n && (hex ? is_hex_digit(s[i]) : is_digit(s[i]))) i++, mantissa_digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && (hex ? is_hex_digit(s[i]) : is_digit(s[i]))) i++, mantissa_digits++;
  }
  if (mantissa_digits == 0) {
    snprintf(message, capacity, "floating constant '%.*s' has no digits", (int)n, s);
    return 0;
  }
  char e = hex ? 'p' : 'e';
  if (i < n && (s[i] | 0x20) == e) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t exponent_start = i;
    while (i < n && is_digit(s[i])) i++;
    if (i == exponent_start) {
      snprintf(message, capacity, "exponent of '%.*s' has no digits", (int)n, s);
      return 0;
    }
  } else if (hex) {
    snprintf(message, capacity,
             "hexadecimal floating constant '%.*s' needs an exponent, such as p0", (int)n, s);
    return 0;
  }
  return i;
}

/* strtod or strtof on text[0, n) in the "C" locale's notation: the '.' is
   replaced by the current locale's decimal point before conversion.
   NOTE: localeconv() is not safe against a concurrent setlocale(). */
static ad_status convert_floating(ad_ctx *ctx, const char *s, size_t n, bool single,
                                  double *value) {
  const char *point = localeconv()->decimal_point;
  size_t point_length = point && *point ? strlen(point) : 1;
  size_t size = n + point_length + 1;
  char local[128];
  char *buffer = size <= sizeof local ? local : ad_malloc(ctx, size);
  if (!buffer) return AD_ERR_MEMORY;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '.' && point && *point) {
      memcpy(buffer + k, point, point_length);
      k += point_length;
    } else {
      buffer[k++] = s[i];
    }
  }
  buffer[k] = '\0';
  /* Out-of-range constants become inf or 0, as C compilers make them. */
  *value = single ? (double)strtof(buffer, NULL) : strtod(buffer, NULL);
  if (buffer != local) ad_free(ctx, buffer, size);
  return AD_OK;
}

ad_status convert_number(ad_ctx *ctx, const char *s, size_t n, number *out, char *message,
                         size_t capacity) {
  bool hex = n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  bool floating = false;
  for (size_t i = 0; i < n; i++) {
    char c = (char)(s[i] | 0x20);
    if (s[i] == '.' || (hex ? c == 'p' : c == 'e')) floating = true;
  }
  if (!floating) return convert_integer(s, n, out, message, capacity);

  size_t body = floating_body(s, n, message, capacity);
  if (body == 0) return AD_ERR_FORMAT;
  size_t suffix_length = n - body;
  char suffix = suffix_length == 1 ? s[body] : '\0';
  if (suffix_length > 1 || (suffix_length == 1 && (suffix | 0x20) != 'f' && (suffix | 0x20) != 'l')) {
    snprintf(message, capacity, "invalid suffix '%.*s' on floating constant '%.*s'",
             (int)suffix_length, s + body, (int)n, s);
    return AD_ERR_FORMAT;
  }
  bool single = (suffix | 0x20) == 'f';
  ad_status st = convert_floating(ctx, s, body, single, &out->value);
  if (st != AD_OK) return st;
  out->type = single ? CT_FLOAT : CT_DOUBLE;
  out->bits = 0;
  return AD_OK;
}
