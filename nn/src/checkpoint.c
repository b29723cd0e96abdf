/* checkpoint.c: safetensors files with an XXH3 checksum and atomic saves. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "json.h"
#include "nn_internal.h"

/* The metadata keys that this module writes itself: the format tag and the
   data section's checksum. */
#define FORMAT_KEY "format"
#define CHECKSUM_KEY "xxh3_64"

/* The header key that the safetensors format reserves for the metadata. */
#define METADATA_NAME "__metadata__"

/* The limits that the messages below state in words. */
_Static_assert(NN_METADATA_KEY_MAX == 64 && NN_METADATA_VALUE_MAX == 256 &&
               NN_METADATA_MAX_ENTRIES == 32, "update the metadata messages");

/* One tensor of a header, matched to entry list_index of the caller's list. */
typedef struct header_entry {
  bool present;
  ad_dtype dtype;
  int ndim;
  int64_t shape[AD_MAX_DIMS];
  uint64_t begin, end; /* data offsets */
} header_entry;

/* What a header holds, with entries indexed like the list. */
typedef struct header_info {
  header_entry *entries;
  bool has_checksum;
  uint64_t checksum;
  nn_metadata *metadata; /* receives every metadata entry, or NULL */
} header_info;

static const char *const dtype_codes[] = {"F32", "F64", "I64"};

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  return *(const unsigned char *)&one == 1;
}

/* Copies count elements of size bytes, reversing the bytes of each element
   on a big-endian host, so that one side is little-endian. */
static void copy_little_endian(void *dst, const void *src, int64_t count, size_t size) {
  if (host_is_little_endian() || size == 1) {
    memcpy(dst, src, (size_t)count * size);
    return;
  }
  const unsigned char *s = src;
  unsigned char *d = dst;
  for (int64_t i = 0; i < count; i++)
    for (size_t b = 0; b < size; b++) d[(size_t)i * size + b] = s[(size_t)i * size + size - 1 - b];
}

/* The data of t for reading (saving). The read accessors leave t's version
   alone, so a save between forward and backward does not invalidate the
   tape. */
static const void *tensor_bytes(const ad_tensor *t) {
  switch (ad_tensor_dtype(t)) {
  case AD_F32: return ad_data_f32(t);
  case AD_F64: return ad_data_f64(t);
  case AD_I64: return ad_data_i64(t);
  }
  return NULL;
}

/* The data of t for writing (loading); marks t as modified. */
static void *tensor_bytes_mut(ad_tensor *t) {
  switch (ad_tensor_dtype(t)) {
  case AD_F32: return ad_data_f32_mut(t);
  case AD_F64: return ad_data_f64_mut(t);
  case AD_I64: return ad_data_i64_mut(t);
  }
  return NULL;
}

/* ---- Header parsing -------------------------------------------------- */

/* Formats a header error at the reader's position into the context. */
static ad_status header_error(ad_ctx *ctx, const char *fn, const char *path, const json_reader *r,
                              const char *name) {
  if (name)
    return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": invalid header at byte %zu (tensor "
                        "\"%s\"): %s", fn, path, r->error_offset, name, r->error);
  return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": invalid header at byte %zu: %s", fn, path,
                      r->error_offset, r->error);
}

/* Reads a JSON array of at most AD_MAX_DIMS dimensions. */
static bool read_shape(json_reader *r, header_entry *e) {
  if (!json_expect(r, '[')) return false;
  e->ndim = 0;
  if (json_accept(r, ']')) return true;
  do {
    uint64_t dim;
    if (e->ndim == AD_MAX_DIMS) return json_fail(r, "shape has more dimensions than supported");
    if (!json_uint(r, (uint64_t)INT64_MAX, &dim)) return false;
    e->shape[e->ndim++] = (int64_t)dim;
  } while (json_accept(r, ','));
  return json_expect(r, ']');
}

static bool read_offsets(json_reader *r, header_entry *e) {
  return json_expect(r, '[') && json_uint(r, UINT64_MAX, &e->begin) && json_expect(r, ',') &&
         json_uint(r, UINT64_MAX, &e->end) && json_expect(r, ']');
}

static bool read_dtype(json_reader *r, header_entry *e) {
  char code[16];
  bool truncated;
  if (!json_string(r, code, sizeof code, &truncated)) return false;
  for (int d = 0; d < 3; d++) {
    if (!truncated && strcmp(code, dtype_codes[d]) == 0) {
      e->dtype = (ad_dtype)d;
      return true;
    }
  }
  return json_fail(r, "unsupported dtype; this reader accepts F32, F64 and I64");
}

/* Reads {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, each key once. */
static bool read_tensor_info(json_reader *r, header_entry *e) {
  bool seen[3] = {false, false, false};
  static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
  if (!json_expect(r, '{')) return false;
  if (json_peek(r, '}')) return json_fail(r, "tensor entry has no dtype, shape and data_offsets");
  do {
    char key[16];
    bool truncated;
    if (!json_string(r, key, sizeof key, &truncated) || !json_expect(r, ':')) return false;
    int k = 0;
    while (k < 3 && (truncated || strcmp(key, keys[k]) != 0)) k++;
    if (k == 3) return json_fail(r, "unknown key in tensor entry");
    if (seen[k]) return json_fail(r, "duplicate key in tensor entry");
    seen[k] = true;
    bool ok = k == 0 ? read_dtype(r, e) : k == 1 ? read_shape(r, e) : read_offsets(r, e);
    if (!ok) return false;
  } while (json_accept(r, ','));
  if (!json_expect(r, '}')) return false;
  if (!seen[0] || !seen[1] || !seen[2])
    return json_fail(r, "tensor entry lacks dtype, shape or data_offsets");
  return true;
}

/* Parses 16 lowercase or uppercase hexadecimal digits. */
static bool parse_hex64(const char *text, uint64_t *value) {
  if (strlen(text) != 16) return false;
  uint64_t v = 0;
  for (int i = 0; i < 16; i++) {
    char c = text[i];
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return false;
    v = v << 4 | (uint64_t)digit;
  }
  *value = v;
  return true;
}

/* Stores one metadata entry in info->metadata, which holds only entries
   that fit its fixed buffers. */
static bool collect_metadata(json_reader *r, header_info *info, const char *key, bool key_truncated,
                             const char *value, bool value_truncated) {
  nn_metadata *m = info->metadata;
  if (key_truncated) return json_fail(r, "metadata key longer than 63 bytes, nn_metadata's limit");
  if (value_truncated)
    return json_fail(r, "metadata value longer than 255 bytes, nn_metadata's limit");
  if (nn_metadata_get(m, key)) return json_fail(r, "duplicate metadata key");
  if (m->count == NN_METADATA_MAX_ENTRIES)
    return json_fail(r, "more than 32 metadata entries, nn_metadata's limit");
  nn_metadata_entry *e = &m->entries[m->count++];
  snprintf(e->key, sizeof e->key, "%s", key);
  snprintf(e->value, sizeof e->value, "%s", value);
  return true;
}

/* Reads the "__metadata__" object: string keys to string values. */
static bool read_metadata(json_reader *r, header_info *info) {
  if (!json_expect(r, '{')) return false;
  if (json_accept(r, '}')) return true;
  do {
    char key[NN_METADATA_KEY_MAX], value[NN_METADATA_VALUE_MAX];
    bool key_truncated, value_truncated;
    if (!json_string(r, key, sizeof key, &key_truncated) || !json_expect(r, ':')) return false;
    if (!json_peek(r, '"')) return json_fail(r, "metadata values must be strings");
    if (!json_string(r, value, sizeof value, &value_truncated)) return false;
    if (!key_truncated && strcmp(key, CHECKSUM_KEY) == 0) {
      if (info->has_checksum) return json_fail(r, "duplicate " CHECKSUM_KEY " in metadata");
      if (value_truncated || !parse_hex64(value, &info->checksum))
        return json_fail(r, CHECKSUM_KEY " must be 16 hexadecimal digits");
      info->has_checksum = true;
    }
    if (info->metadata &&
        !collect_metadata(r, info, key, key_truncated, value, value_truncated))
      return false;
  } while (json_accept(r, ','));
  return json_expect(r, '}');
}

/* Finds name in list; returns its index or -1. */
static int64_t list_index(const nn_tensor_list *list, const char *name) {
  for (int64_t i = 0; i < list->count; i++)
    if (strcmp(list->items[i].name, name) == 0) return i;
  return -1;
}

/* Parses the header text and matches every tensor to an entry of list.
   Fails on a JSON error, an unknown or duplicate tensor name, or a second
   "__metadata__"; the match of dtypes, shapes and offsets is checked later.
   With a NULL list, the tensor entries are only checked for syntax. */
static ad_status parse_header(ad_ctx *ctx, const char *fn, const char *path, const char *text,
                              size_t size, const nn_tensor_list *list, header_info *info) {
  json_reader r;
  json_init(&r, text, size);
  bool metadata_seen = false;
  if (!json_expect(&r, '{')) return header_error(ctx, fn, path, &r, NULL);
  if (json_accept(&r, '}')) return json_end(&r) ? AD_OK : header_error(ctx, fn, path, &r, NULL);
  do {
    char name[NN_NAME_MAX];
    bool truncated;
    if (!json_string(&r, name, sizeof name, &truncated) || !json_expect(&r, ':'))
      return header_error(ctx, fn, path, &r, NULL);
    if (!truncated && strcmp(name, METADATA_NAME) == 0) {
      if (metadata_seen) {
        json_fail(&r, "duplicate __metadata__");
        return header_error(ctx, fn, path, &r, NULL);
      }
      metadata_seen = true;
      if (!read_metadata(&r, info)) return header_error(ctx, fn, path, &r, NULL);
      continue;
    }
    if (!list) {
      header_entry skipped;
      if (!read_tensor_info(&r, &skipped)) return header_error(ctx, fn, path, &r, name);
      continue;
    }
    int64_t i = truncated ? -1 : list_index(list, name);
    if (i < 0)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" holds tensor \"%s%s\", which is not in "
                          "the list to load; load it with a list of the same names", fn, path,
                          name, truncated ? "..." : "");
    if (info->entries[i].present)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" holds tensor \"%s\" twice", fn, path,
                          name);
    info->entries[i].present = true;
    if (!read_tensor_info(&r, &info->entries[i])) return header_error(ctx, fn, path, &r, name);
  } while (json_accept(&r, ','));
  if (!json_expect(&r, '}') || !json_end(&r)) return header_error(ctx, fn, path, &r, NULL);
  return AD_OK;
}

/* ---- Header validation ------------------------------------------------ */

static int compare_by_begin(const void *a, const void *b) {
  const header_entry *x = *(const header_entry *const *)a, *y = *(const header_entry *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Checks that every listed tensor is present with its dtype and shape, and
   that the offsets tile [0, data_size) exactly. order is scratch space for
   list->count pointers. */
static ad_status check_entries(ad_ctx *ctx, const char *fn, const char *path,
                               const nn_tensor_list *list, header_info *info, uint64_t data_size,
                               header_entry **order) {
  for (int64_t i = 0; i < list->count; i++) {
    const header_entry *e = &info->entries[i];
    ad_tensor *t = list->items[i].tensor;
    const char *name = list->items[i].name;
    if (!e->present)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" lacks tensor \"%s\"", fn, path, name);
    if (e->dtype != ad_tensor_dtype(t))
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" has dtype %s in the file "
                          "but %s in memory", fn, path, name, dtype_codes[e->dtype],
                          dtype_codes[ad_tensor_dtype(t)]);
    bool same = e->ndim == ad_ndim(t);
    for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == ad_shape(t)[d];
    if (!same) {
      char in_file[200], in_memory[200];
      format_shape(in_file, sizeof in_file, e->ndim, e->shape);
      format_shape(in_memory, sizeof in_memory, ad_ndim(t), ad_shape(t));
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" has shape %s in the "
                          "file but %s in memory", fn, path, name, in_file, in_memory);
    }
    uint64_t bytes = (uint64_t)ad_numel(t) * ad_dtype_size(e->dtype);
    if (e->end < e->begin || e->end - e->begin != bytes || e->end > data_size)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": tensor \"%s\" has data_offsets [%llu, "
                          "%llu] but needs %llu bytes inside a data section of %llu bytes", fn,
                          path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                          (unsigned long long)bytes, (unsigned long long)data_size);
    order[i] = &info->entries[i];
  }
  qsort(order, (size_t)list->count, sizeof *order, compare_by_begin);
  uint64_t expected = 0;
  for (int64_t i = 0; i < list->count; i++) {
    if (order[i]->begin != expected)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": the tensors' data_offsets leave a gap "
                          "or overlap at byte %llu of the data section", fn, path,
                          (unsigned long long)expected);
    expected = order[i]->end;
  }
  if (expected != data_size)
    return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\": the tensors cover %llu bytes but the data "
                        "section has %llu (truncated or padded file)", fn, path,
                        (unsigned long long)expected, (unsigned long long)data_size);
  return AD_OK;
}

/* ---- Header writing --------------------------------------------------- */

/* A growable text buffer in the context's memory; failed is sticky. */
typedef struct text_buffer {
  ad_ctx *ctx;
  char *data;
  size_t length, capacity;
  bool failed;
} text_buffer;

static void text_append(text_buffer *b, const char *s, size_t n) {
  if (b->failed) return;
  if (n > SIZE_MAX / 4 - b->length) {
    b->failed = true;
    return;
  }
  if (b->length + n > b->capacity) {
    size_t wanted = b->capacity ? b->capacity : 256;
    while (wanted < b->length + n) wanted *= 2;
    char *grown = ad_malloc(b->ctx, wanted);
    if (!grown) {
      b->failed = true;
      return;
    }
    if (b->length) memcpy(grown, b->data, b->length);
    if (b->data) ad_free(b->ctx, b->data, b->capacity);
    b->data = grown;
    b->capacity = wanted;
  }
  memcpy(b->data + b->length, s, n);
  b->length += n;
}

static void text_append_str(text_buffer *b, const char *s) { text_append(b, s, strlen(s)); }

/* Appends s as a JSON string with quotes and escapes. */
static void text_append_json_string(text_buffer *b, const char *s) {
  text_append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char escaped[8];
    if (*p == '"' || *p == '\\') {
      escaped[0] = '\\';
      escaped[1] = (char)*p;
      text_append(b, escaped, 2);
    } else if (*p < 0x20) {
      snprintf(escaped, sizeof escaped, "\\u%04x", *p);
      text_append(b, escaped, 6);
    } else {
      text_append(b, (const char *)p, 1);
    }
  }
  text_append(b, "\"", 1);
}

static void text_free(text_buffer *b) {
  if (b->data) ad_free(b->ctx, b->data, b->capacity);
  b->data = NULL;
}

/* Builds the header for list with data offsets in list order, padded with
   spaces so that the data section starts at a multiple of 8 bytes. The
   caller's metadata (may be NULL) follows the format tag and the checksum. */
static void build_header(text_buffer *b, const nn_tensor_list *list, uint64_t checksum,
                         const nn_metadata *metadata) {
  char number[64];
  snprintf(number, sizeof number, "%016" PRIx64, checksum);
  text_append_str(b, "{\"" METADATA_NAME "\":{\"" FORMAT_KEY "\":\"pt\",\"" CHECKSUM_KEY
                    "\":\"");
  text_append_str(b, number);
  text_append_str(b, "\"");
  for (int i = 0; metadata && i < metadata->count; i++) {
    text_append_str(b, ",");
    text_append_json_string(b, metadata->entries[i].key);
    text_append_str(b, ":");
    text_append_json_string(b, metadata->entries[i].value);
  }
  text_append_str(b, "}");
  uint64_t offset = 0;
  for (int64_t i = 0; i < list->count; i++) {
    ad_tensor *t = list->items[i].tensor;
    text_append_str(b, ",");
    text_append_json_string(b, list->items[i].name);
    text_append_str(b, ":{\"dtype\":\"");
    text_append_str(b, dtype_codes[ad_tensor_dtype(t)]);
    text_append_str(b, "\",\"shape\":[");
    for (int d = 0; d < ad_ndim(t); d++) {
      snprintf(number, sizeof number, d ? ",%lld" : "%lld", (long long)ad_shape(t)[d]);
      text_append_str(b, number);
    }
    uint64_t bytes = (uint64_t)ad_numel(t) * ad_dtype_size(ad_tensor_dtype(t));
    snprintf(number, sizeof number, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset,
             offset + bytes);
    text_append_str(b, number);
    offset += bytes;
  }
  text_append_str(b, "}");
  while (!b->failed && (8 + b->length) % 8 != 0) text_append(b, " ", 1);
}

/* ---- Names and metadata ---------------------------------------------- */

/* Rejects the one tensor name that no safetensors file can contain. */
static ad_status check_tensor_name(ad_ctx *ctx, const char *fn, const char *name) {
  if (strcmp(name, METADATA_NAME) != 0) return AD_OK;
  return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the tensor name \"" METADATA_NAME "\" is "
                      "reserved by the safetensors format for the header's metadata; rename the "
                      "tensor", fn);
}

/* Checks one key and value for nn_metadata_set and saving: both terminated
   inside their buffers and valid UTF-8, the key not empty and not written by
   this module itself. */
static ad_status check_metadata_entry(ad_ctx *ctx, const char *fn, const char *key,
                                      size_t key_capacity, const char *value,
                                      size_t value_capacity) {
  size_t key_length = strnlen(key, key_capacity), value_length = strnlen(value, value_capacity);
  if (key_length == 0)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: a metadata key is empty; give every entry a "
                        "key", fn);
  if (key_length == key_capacity)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata key \"%.40s...\" is longer "
                        "than %d bytes", fn, key, NN_METADATA_KEY_MAX - 1);
  if (value_length == value_capacity)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the value of metadata key \"%s\" is longer "
                        "than %d bytes", fn, key, NN_METADATA_VALUE_MAX - 1);
  if (!json_utf8_valid(key, key_length) || !json_utf8_valid(value, value_length))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata entry \"%s\" is not valid "
                        "UTF-8, which the JSON header requires", fn, key);
  if (strcmp(key, FORMAT_KEY) == 0 || strcmp(key, CHECKSUM_KEY) == 0)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata key \"%s\" is reserved, "
                        "because nn_checkpoint_save writes it itself; choose another key", fn,
                        key);
  return AD_OK;
}

/* Checks every entry of metadata (may be NULL) before a save. */
static ad_status check_metadata(ad_ctx *ctx, const char *fn, const nn_metadata *metadata) {
  if (!metadata) return AD_OK;
  if (metadata->count < 0 || metadata->count > NN_METADATA_MAX_ENTRIES)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata count %d is outside [0, %d]", fn,
                        metadata->count, NN_METADATA_MAX_ENTRIES);
  for (int i = 0; i < metadata->count; i++) {
    const nn_metadata_entry *e = &metadata->entries[i];
    ad_status status = check_metadata_entry(ctx, fn, e->key, sizeof e->key, e->value,
                                            sizeof e->value);
    if (status != AD_OK) return status;
    for (int j = 0; j < i; j++)
      if (strcmp(metadata->entries[j].key, e->key) == 0)
        return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata key \"%s\" appears twice; "
                            "keys must be unique", fn, e->key);
  }
  return AD_OK;
}

ad_status nn_metadata_set(ad_ctx *ctx, nn_metadata *metadata, const char *key,
                          const char *value) {
  const char *fn = "nn_metadata_set";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!metadata)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the metadata is NULL", fn);
  if (!key || !value)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn, key ? "value" : "key");
  ad_status status = check_metadata_entry(ctx, fn, key, NN_METADATA_KEY_MAX, value,
                                          NN_METADATA_VALUE_MAX);
  if (status != AD_OK) return status;
  nn_metadata_entry *e = NULL;
  for (int i = 0; i < metadata->count && !e; i++)
    if (strcmp(metadata->entries[i].key, key) == 0) e = &metadata->entries[i];
  if (!e) {
    if (metadata->count < 0 || metadata->count >= NN_METADATA_MAX_ENTRIES)
      return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: cannot add \"%s\": the metadata holds %d "
                          "entries and the maximum is %d", fn, key, metadata->count,
                          NN_METADATA_MAX_ENTRIES);
    e = &metadata->entries[metadata->count++];
    snprintf(e->key, sizeof e->key, "%s", key);
  }
  snprintf(e->value, sizeof e->value, "%s", value);
  return AD_OK;
}

const char *nn_metadata_get(const nn_metadata *metadata, const char *key) {
  if (!metadata || !key) return NULL;
  for (int i = 0; i < metadata->count && i < NN_METADATA_MAX_ENTRIES; i++)
    if (strcmp(metadata->entries[i].key, key) == 0) return metadata->entries[i].value;
  return NULL;
}

/* ---- Saving ---------------------------------------------------------- */

/* Checks the list and returns the size of its data section in *size. */
static ad_status check_save_list(ad_ctx *ctx, const char *fn, const nn_tensor_list *list,
                                 uint64_t *size) {
  if (list->count == 0)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the list is empty; there is nothing to save",
                        fn);
  uint64_t total = 0;
  for (int64_t i = 0; i < list->count; i++) {
    ad_tensor *t = list->items[i].tensor;
    if (ad_tensor_ctx(t) != ctx)
      return ad_set_error(ctx, AD_ERR_CONTEXT, "%s: tensor \"%s\" belongs to another context", fn,
                          list->items[i].name);
    const char *name = list->items[i].name;
    ad_status status = check_tensor_name(ctx, fn, name);
    if (status != AD_OK) return status;
    if (!json_utf8_valid(name, strlen(name)))
      return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: tensor name \"%s\" is not valid UTF-8, "
                          "which the JSON header requires", fn, name);
    uint64_t bytes = (uint64_t)ad_numel(t) * ad_dtype_size(ad_tensor_dtype(t));
    if (bytes > SIZE_MAX - total)
      return ad_set_error(ctx, AD_ERR_MEMORY, "%s: the tensors hold more bytes than this machine "
                          "can address", fn);
    total += bytes;
  }
  *size = total;
  return AD_OK;
}

/* Writes all n bytes to fd, retrying partial writes. */
static bool write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t written = write(fd, p, n);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    p += written;
    n -= (size_t)written;
  }
  return true;
}

/* Opens a new temporary file next to path; stores its name in tmp. */
static int open_temporary(const char *path, char *tmp, size_t size) {
  for (int attempt = 0; attempt < 100; attempt++) {
    int n = snprintf(tmp, size, "%s.tmp-%ld-%d", path, (long)getpid(), attempt);
    if (n < 0 || (size_t)n >= size) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

/* Writes the directory that contains path into dir[size]: "." for a bare
   name. Returns false when it does not fit. */
static bool directory_of(const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  int n;
  if (!slash) n = snprintf(dir, size, ".");
  else if (slash == path) n = snprintf(dir, size, "/");
  else n = snprintf(dir, size, "%.*s", (int)(slash - path), path);
  return n >= 0 && (size_t)n < size;
}

/* Flushes the directory that contains path, so that the rename is durable.
   NOTE: failures are ignored, because some file systems reject fsync on a
   directory; the file itself was already synced. */
static void sync_directory(const char *path) {
  char dir[4096];
  if (!directory_of(path, dir, sizeof dir)) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* Fails unless path names nothing or a regular file, so that the rename of
   a save never replaces a device, FIFO, directory or symbolic link. */
static ad_status check_target(ad_ctx *ctx, const char *fn, const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return AD_OK;
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot check \"%s\": %s", fn, path,
                        strerror(errno));
  }
  if (S_ISREG(st.st_mode)) return AD_OK;
  return ad_set_error(ctx, AD_ERR_IO, "%s: \"%s\" is %s, not a regular file, and a save would "
                      "replace it; pass the path of a regular file or of a new file", fn, path,
                      file_type_name((unsigned)st.st_mode));
}

/* The checks of nn_checkpoint_check_path under the function name fn. */
static ad_status check_path(ad_ctx *ctx, const char *fn, const char *path) {
  if (!path[0])
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the path is empty; pass a file name", fn);
  ad_status status = check_target(ctx, fn, path);
  if (status != AD_OK) return status;
  char dir[4096];
  if (!directory_of(path, dir, sizeof dir))
    return ad_set_error(ctx, AD_ERR_IO, "%s: the path \"%.40s...\" is longer than %zu bytes",
                        fn, path, sizeof dir - 1);
  struct stat st;
  if (stat(dir, &st) != 0)
    return ad_set_error(ctx, AD_ERR_IO, "%s: the directory \"%s\" of \"%s\" cannot be used: "
                        "%s; create it first", fn, dir, path, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return ad_set_error(ctx, AD_ERR_IO, "%s: \"%s\", the directory part of \"%s\", is %s",
                        fn, dir, path, file_type_name((unsigned)st.st_mode));
  if (access(dir, W_OK | X_OK) != 0)
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot create files in the directory \"%s\": %s",
                        fn, dir, strerror(errno));
  return AD_OK;
}

ad_status nn_checkpoint_check_path(ad_ctx *ctx, const char *path) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_checkpoint_check_path: the path is NULL");
  return check_path(ctx, "nn_checkpoint_check_path", path);
}

/* Writes the header length, header and data to a temporary file and renames
   it over path. */
static ad_status write_file(ad_ctx *ctx, const char *fn, const char *path, const text_buffer *h,
                            const void *data, size_t data_size) {
  char tmp[4200];
  int fd = open_temporary(path, tmp, sizeof tmp);
  if (fd < 0)
    return ad_set_error(ctx, AD_ERR_IO, "%s: cannot create a temporary file next to \"%s\": %s",
                        fn, path, strerror(errno));
  unsigned char length[8];
  for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)h->length >> (8 * i));
  bool ok = write_all(fd, length, 8) && write_all(fd, h->data, h->length) &&
            write_all(fd, data, data_size) && fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  /* The target is checked again here, because it may have changed while
     the data was written. */
  if (ok && check_target(ctx, fn, path) != AD_OK) {
    unlink(tmp);
    return ad_errcode(ctx);
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    unlink(tmp);
    return ad_set_error(ctx, AD_ERR_IO, "%s: writing \"%s\" failed: %s", fn, path,
                        strerror(saved));
  }
  sync_directory(path);
  return AD_OK;
}

/* Saves list and metadata (may be NULL) under the function name fn. */
static ad_status save_checkpoint(ad_ctx *ctx, const char *fn, const char *path,
                                 const nn_tensor_list *list, const nn_metadata *metadata) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path || !list)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn, path ? "list" : "path");
  uint64_t size = 0;
  ad_status status = check_save_list(ctx, fn, list, &size);
  if (status == AD_OK) status = check_metadata(ctx, fn, metadata);
  if (status == AD_OK) status = check_path(ctx, fn, path);
  if (status != AD_OK) return status;

  unsigned char *data = ad_malloc(ctx, size ? (size_t)size : 1);
  if (!data) return AD_ERR_MEMORY;
  size_t offset = 0;
  for (int64_t i = 0; i < list->count; i++) {
    ad_tensor *t = list->items[i].tensor;
    size_t es = ad_dtype_size(ad_tensor_dtype(t));
    copy_little_endian(data + offset, tensor_bytes(t), ad_numel(t), es);
    offset += (size_t)ad_numel(t) * es;
  }
  text_buffer header = {.ctx = ctx};
  build_header(&header, list, XXH3_64bits(data, (size_t)size), metadata);
  if (header.failed) status = ad_set_error(ctx, AD_ERR_MEMORY, "%s: out of memory for the header",
                                           fn);

  if (status == AD_OK) status = write_file(ctx, fn, path, &header, data, (size_t)size);
  text_free(&header);
  ad_free(ctx, data, size ? (size_t)size : 1);
  return status;
}

ad_status nn_checkpoint_save(ad_ctx *ctx, const char *path, const nn_tensor_list *list) {
  return save_checkpoint(ctx, "nn_checkpoint_save", path, list, NULL);
}

ad_status nn_checkpoint_save_with_metadata(ad_ctx *ctx, const char *path,
                                           const nn_tensor_list *list,
                                           const nn_metadata *metadata) {
  return save_checkpoint(ctx, "nn_checkpoint_save_with_metadata", path, list, metadata);
}

/* ---- Loading --------------------------------------------------------- */

/* Scratch memory of one load, released in one place. */
typedef struct load_scratch {
  ad_ctx *ctx;
  char *header;
  size_t header_size;
  unsigned char *data;
  size_t data_size;
  header_entry *entries;
  header_entry **order;
  size_t count;
} load_scratch;

static void scratch_free(load_scratch *s) {
  if (s->header) ad_free(s->ctx, s->header, s->header_size ? s->header_size : 1);
  if (s->data) ad_free(s->ctx, s->data, s->data_size ? s->data_size : 1);
  if (s->entries) ad_free(s->ctx, s->entries, s->count * sizeof *s->entries);
  if (s->order) ad_free(s->ctx, s->order, s->count * sizeof *s->order);
}

/* Reads exactly n bytes or reports what is missing. */
static ad_status read_exact(ad_ctx *ctx, const char *fn, const char *path, FILE *f, void *buf,
                            size_t n, const char *what) {
  size_t got = n ? fread(buf, 1, n, f) : 0;
  if (got == n) return AD_OK;
  if (ferror(f))
    return ad_set_error(ctx, AD_ERR_IO, "%s: reading %s of \"%s\" failed: %s", fn, what, path,
                        strerror(errno));
  return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" is truncated: %s has %zu of %zu bytes", fn,
                      path, what, got, n);
}

/* Reads the length prefix and the header text of a file of file_size bytes
   into s. */
static ad_status read_header_text(ad_ctx *ctx, const char *fn, const char *path, FILE *f,
                                  load_scratch *s, uint64_t file_size) {
  unsigned char prefix[8];
  ad_status status = read_exact(ctx, fn, path, f, prefix, 8, "the header length");
  if (status != AD_OK) return status;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
  if (n > NN_CHECKPOINT_MAX_HEADER || n > file_size - 8)
    return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" declares a header of %llu bytes, but the "
                        "file has %llu bytes after the length (limit %u); the file is truncated "
                        "or not a safetensors file", fn, path, (unsigned long long)n,
                        (unsigned long long)(file_size - 8), NN_CHECKPOINT_MAX_HEADER);
  s->header_size = (size_t)n;
  s->header = ad_malloc(ctx, n ? (size_t)n : 1);
  if (!s->header) return AD_ERR_MEMORY;
  return read_exact(ctx, fn, path, f, s->header, (size_t)n, "the header");
}

/* Opens path, which must be a regular file, as a stream; stores its size. */
static ad_status open_for_reading(ad_ctx *ctx, const char *fn, const char *path, FILE **f,
                                  uint64_t *file_size) {
  int fd;
  ad_status status = open_regular_file(ctx, fn, path, &fd, file_size);
  if (status != AD_OK) return status;
  *f = fdopen(fd, "rb");
  if (*f) return AD_OK;
  int saved = errno;
  close(fd);
  return ad_set_error(ctx, AD_ERR_IO, "%s: cannot open \"%s\": %s", fn, path, strerror(saved));
}

/* Reads, parses and checks the file into s without touching any tensor. */
static ad_status load_into_scratch(ad_ctx *ctx, const char *fn, const char *path, FILE *f,
                                   uint64_t file_size, const nn_tensor_list *list,
                                   load_scratch *s) {
  ad_status status = read_header_text(ctx, fn, path, f, s, file_size);
  if (status != AD_OK) return status;
  s->count = (size_t)list->count;
  s->entries = ad_malloc(ctx, s->count ? s->count * sizeof *s->entries : 1);
  s->order = ad_malloc(ctx, s->count ? s->count * sizeof *s->order : 1);
  if (!s->entries || !s->order) return AD_ERR_MEMORY;
  memset(s->entries, 0, s->count * sizeof *s->entries);
  header_info info = {.entries = s->entries};
  status = parse_header(ctx, fn, path, s->header, s->header_size, list, &info);
  if (status != AD_OK) return status;
  uint64_t data_size = file_size - 8 - s->header_size;
  status = check_entries(ctx, fn, path, list, &info, data_size, s->order);
  if (status != AD_OK) return status;

  s->data_size = (size_t)data_size;
  s->data = ad_malloc(ctx, s->data_size ? s->data_size : 1);
  if (!s->data) return AD_ERR_MEMORY;
  status = read_exact(ctx, fn, path, f, s->data, s->data_size, "the data section");
  if (status != AD_OK) return status;
  if (fgetc(f) != EOF)
    return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" grew while it was read; load it again",
                        fn, path);
  if (info.has_checksum) {
    uint64_t actual = XXH3_64bits(s->data, s->data_size);
    if (actual != info.checksum)
      return ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" is corrupt: the data section hashes to "
                          "%016" PRIx64 " but the header records %016" PRIx64, fn, path, actual,
                          info.checksum);
  }
  return AD_OK;
}

ad_status nn_checkpoint_load(ad_ctx *ctx, const char *path, const nn_tensor_list *list) {
  const char *fn = "nn_checkpoint_load";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path || !list)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn, path ? "list" : "path");
  for (int64_t i = 0; i < list->count; i++) {
    if (ad_tensor_ctx(list->items[i].tensor) != ctx)
      return ad_set_error(ctx, AD_ERR_CONTEXT, "%s: tensor \"%s\" belongs to another context", fn,
                          list->items[i].name);
    ad_status status = check_tensor_name(ctx, fn, list->items[i].name);
    if (status != AD_OK) return status;
  }
  uint64_t file_size = 0;
  FILE *f = NULL;
  ad_status status = open_for_reading(ctx, fn, path, &f, &file_size);
  if (status != AD_OK) return status;
  load_scratch s = {.ctx = ctx};
  status = load_into_scratch(ctx, fn, path, f, file_size, list, &s);
  fclose(f);
  if (status == AD_OK) {
    /* Nothing below can fail: every tensor was checked above. */
    for (int64_t i = 0; i < list->count; i++) {
      ad_tensor *t = list->items[i].tensor;
      copy_little_endian(tensor_bytes_mut(t), s.data + s.entries[i].begin, ad_numel(t),
                         ad_dtype_size(ad_tensor_dtype(t)));
    }
  }
  scratch_free(&s);
  return status;
}

ad_status nn_checkpoint_read_metadata(ad_ctx *ctx, const char *path, nn_metadata *metadata) {
  const char *fn = "nn_checkpoint_read_metadata";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path || !metadata)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn,
                        path ? "metadata" : "path");
  uint64_t file_size = 0;
  FILE *f = NULL;
  ad_status status = open_for_reading(ctx, fn, path, &f, &file_size);
  if (status != AD_OK) return status;
  load_scratch s = {.ctx = ctx};
  status = read_header_text(ctx, fn, path, f, &s, file_size);
  fclose(f);
  /* Parsed into a copy, so that a failure leaves the caller's set alone. */
  nn_metadata *read = NULL;
  if (status == AD_OK) {
    read = ad_malloc(ctx, sizeof *read);
    status = read ? AD_OK : AD_ERR_MEMORY;
  }
  if (status == AD_OK) {
    read->count = 0;
    header_info info = {.metadata = read};
    status = parse_header(ctx, fn, path, s.header, s.header_size, NULL, &info);
  }
  if (status == AD_OK) memcpy(metadata, read, sizeof *read);
  if (read) ad_free(ctx, read, sizeof *read);
  scratch_free(&s);
  return status;
}
