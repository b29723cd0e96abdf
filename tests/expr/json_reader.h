/* A strict JSON reader (RFC 8259) for checking the output of the autodiff
   program: it rejects NaN, Infinity, trailing commas and trailing text. */
#ifndef JSON_READER_H
#define JSON_READER_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
  json_type type;
  bool boolean;
  double number;
  char *string;             /* JSON_STRING: the decoded bytes, NUL-terminated */
  int count;                /* JSON_ARRAY and JSON_OBJECT */
  char **keys;              /* JSON_OBJECT */
  struct json_value *items; /* JSON_ARRAY and JSON_OBJECT */
} json_value;

typedef struct json_parser {
  const char *s;
  int depth;
} json_parser;

static void json_skip(json_parser *p) {
  while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r') p->s++;
}

/* Appends the UTF-8 encoding of code point cp to out at *n. */
static void json_put_utf8(char *out, size_t *n, unsigned cp) {
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xC0 | (cp >> 6));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  } else {
    out[(*n)++] = (char)(0xE0 | (cp >> 12));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[(*n)++] = (char)(0x80 | (cp & 0x3F));
  }
}

static char *json_parse_string(json_parser *p) {
  if (*p->s != '"') return NULL;
  p->s++;
  char *out = malloc(strlen(p->s) * 3 + 1);
  size_t n = 0;
  while (out && *p->s != '"') {
    unsigned char c = (unsigned char)*p->s;
    if (c == '\0' || c < 0x20) break;
    if (c != '\\') {
      out[n++] = (char)c;
      p->s++;
      continue;
    }
    char e = p->s[1];
    if (e == '\0') break;
    p->s += 2;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (simple) {
      out[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
    } else if (e == 'u') {
      unsigned cp = 0;
      for (int i = 0; i < 4; i++, p->s++) {
        char h = *p->s;
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) {
          free(out);
          return NULL;
        }
        cp = cp * 16 + (unsigned)d;
      }
      json_put_utf8(out, &n, cp);
    } else {
      break;
    }
  }
  if (!out || *p->s != '"') {
    free(out);
    return NULL;
  }
  p->s++;
  out[n] = '\0';
  return out;
}

static bool json_parse_value(json_parser *p, json_value *v);

static bool json_parse_number(json_parser *p, json_value *v) {
  const char *start = p->s;
  if (*p->s == '-') p->s++;
  if (*p->s == '0') p->s++;
  else if (*p->s >= '1' && *p->s <= '9') while (*p->s >= '0' && *p->s <= '9') p->s++;
  else return false;
  if (*p->s == '.') {
    p->s++;
    if (!(*p->s >= '0' && *p->s <= '9')) return false;
    while (*p->s >= '0' && *p->s <= '9') p->s++;
  }
  if (*p->s == 'e' || *p->s == 'E') {
    p->s++;
    if (*p->s == '+' || *p->s == '-') p->s++;
    if (!(*p->s >= '0' && *p->s <= '9')) return false;
    while (*p->s >= '0' && *p->s <= '9') p->s++;
  }
  v->type = JSON_NUMBER;
  v->number = strtod(start, NULL);
  return true;
}

/* Parses '[' items ']' or '{' members '}'. */
static bool json_parse_container(json_parser *p, json_value *v, bool object) {
  char close = object ? '}' : ']';
  v->type = object ? JSON_OBJECT : JSON_ARRAY;
  p->s++;
  json_skip(p);
  if (*p->s == close) {
    p->s++;
    return true;
  }
  for (;;) {
    v->items = realloc(v->items, (size_t)(v->count + 1) * sizeof *v->items);
    v->keys = object ? realloc(v->keys, (size_t)(v->count + 1) * sizeof *v->keys) : NULL;
    memset(&v->items[v->count], 0, sizeof *v->items);
    if (object) {
      json_skip(p);
      v->keys[v->count] = json_parse_string(p);
      if (!v->keys[v->count]) return false;
      json_skip(p);
      if (*p->s++ != ':') return false;
    }
    v->count++;
    if (!json_parse_value(p, &v->items[v->count - 1])) return false;
    json_skip(p);
    if (*p->s == ',') {
      p->s++;
      continue;
    }
    if (*p->s != close) return false;
    p->s++;
    return true;
  }
}

static bool json_parse_value(json_parser *p, json_value *v) {
  json_skip(p);
  if (++p->depth > 64) return false;
  bool ok;
  if (*p->s == '{' || *p->s == '[') {
    ok = json_parse_container(p, v, *p->s == '{');
  } else if (*p->s == '"') {
    v->type = JSON_STRING;
    v->string = json_parse_string(p);
    ok = v->string != NULL;
  } else if (strncmp(p->s, "true", 4) == 0 || strncmp(p->s, "false", 5) == 0) {
    v->type = JSON_BOOL;
    v->boolean = *p->s == 't';
    p->s += v->boolean ? 4 : 5;
    ok = true;
  } else if (strncmp(p->s, "null", 4) == 0) {
    v->type = JSON_NULL;
    p->s += 4;
    ok = true;
  } else {
    ok = json_parse_number(p, v);
  }
  p->depth--;
  return ok;
}

static void json_free(json_value *v) {
  for (int i = 0; i < v->count; i++) {
    json_free(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->string);
  memset(v, 0, sizeof *v);
}

/* Parses text, which must hold one value and nothing else but spaces. */
static bool json_parse(const char *text, json_value *v) {
  memset(v, 0, sizeof *v);
  json_parser p = {text, 0};
  if (!json_parse_value(&p, v)) {
    json_free(v);
    return false;
  }
  json_skip(&p);
  if (*p.s != '\0') {
    json_free(v);
    return false;
  }
  return true;
}

/* The member key of object v, or NULL. */
static const json_value *json_get(const json_value *v, const char *key) {
  if (!v || v->type != JSON_OBJECT) return NULL;
  for (int i = 0; i < v->count; i++)
    if (strcmp(v->keys[i], key) == 0) return &v->items[i];
  return NULL;
}

/* Item i of array v, or NULL. */
static const json_value *json_at(const json_value *v, int i) {
  if (!v || v->type != JSON_ARRAY || i < 0 || i >= v->count) return NULL;
  return &v->items[i];
}

#endif /* JSON_READER_H */
