/*
 * expr.c: the expression object: its buffers, its variable table and the
 * queries of ad_expr.h.
 */
#include <string.h>

#include "expr_internal.h"

ad_expr *expr_new(ad_ctx *ctx, const char *text, size_t length) {
  ad_expr *e = ad_malloc(ctx, sizeof *e);
  if (!e) return NULL;
  memset(e, 0, sizeof *e);
  e->ctx = ctx;
  e->text = ad_malloc(ctx, length + 1);
  if (!e->text) {
    ad_free(ctx, e, sizeof *e);
    return NULL;
  }
  if (length) memcpy(e->text, text, length);
  e->text[length] = '\0';
  e->text_length = length;
  return e;
}

void ad_expr_free(ad_expr *e) {
  if (!e) return;
  ad_ctx *ctx = e->ctx;
  ad_free(ctx, e->text, e->text_length + 1);
  ad_free(ctx, e->nodes, (size_t)e->node_capacity * sizeof *e->nodes);
  ad_free(ctx, e->vars, (size_t)e->var_capacity * sizeof *e->vars);
  ad_free(ctx, e->names, e->names_capacity);
  ad_free(ctx, e->var_hash, (size_t)e->var_hash_size * sizeof *e->var_hash);
  ad_free(ctx, e, sizeof *e);
}

/* Replaces *buffer, an allocation of old_size bytes whose first used bytes
   matter, by one of new_size bytes that starts with those bytes. */
static bool resize(ad_ctx *ctx, void **buffer, size_t old_size, size_t used, size_t new_size) {
  void *fresh = ad_malloc(ctx, new_size);
  if (!fresh) return false;
  if (used) memcpy(fresh, *buffer, used);
  ad_free(ctx, *buffer, old_size);
  *buffer = fresh;
  return true;
}

int32_t expr_add_node(ad_expr *e, const expr_node *node) {
  if (e->node_count == e->node_capacity) {
    int32_t capacity = e->node_capacity ? e->node_capacity * 2 : 16;
    size_t old_size = (size_t)e->node_capacity * sizeof *e->nodes;
    if (!resize(e->ctx, (void **)&e->nodes, old_size, old_size,
                (size_t)capacity * sizeof *e->nodes))
      return -1;
    e->node_capacity = capacity;
  }
  e->nodes[e->node_count] = *node;
  return e->node_count++;
}

/* FNV-1a. */
static uint32_t name_hash(const char *name, size_t length) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < length; i++) h = (h ^ (unsigned char)name[i]) * 16777619u;
  return h;
}

/* The hash table slot that holds name, or the empty slot where it belongs. */
static int32_t find_slot(const ad_expr *e, const char *name, size_t length) {
  uint32_t mask = (uint32_t)e->var_hash_size - 1;
  for (uint32_t i = name_hash(name, length) & mask;; i = (i + 1) & mask) {
    int32_t entry = e->var_hash[i];
    if (entry == 0) return (int32_t)i;
    const expr_var *v = &e->vars[entry - 1];
    if ((size_t)v->length == length && memcmp(e->names + v->name, name, length) == 0)
      return (int32_t)i;
  }
}

/* Doubles the hash table and re-inserts every variable. */
static bool grow_hash(ad_expr *e) {
  int32_t size = e->var_hash_size ? e->var_hash_size * 2 : 16;
  int32_t *table = ad_malloc(e->ctx, (size_t)size * sizeof *table);
  if (!table) return false;
  memset(table, 0, (size_t)size * sizeof *table);
  ad_free(e->ctx, e->var_hash, (size_t)e->var_hash_size * sizeof *e->var_hash);
  e->var_hash = table;
  e->var_hash_size = size;
  for (int32_t k = 0; k < e->var_count; k++) {
    const expr_var *v = &e->vars[k];
    e->var_hash[find_slot(e, e->names + v->name, (size_t)v->length)] = k + 1;
  }
  return true;
}

/* Appends a variable record and its NUL-terminated name. */
static bool append_var(ad_expr *e, const char *name, size_t length, size_t offset) {
  if (e->var_count == e->var_capacity) {
    int32_t capacity = e->var_capacity ? e->var_capacity * 2 : 8;
    size_t old_size = (size_t)e->var_capacity * sizeof *e->vars;
    if (!resize(e->ctx, (void **)&e->vars, old_size, old_size, (size_t)capacity * sizeof *e->vars))
      return false;
    e->var_capacity = capacity;
  }
  if (e->names_used + length + 1 > e->names_capacity) {
    size_t capacity = e->names_capacity ? e->names_capacity * 2 : 64;
    while (capacity < e->names_used + length + 1) capacity *= 2;
    if (!resize(e->ctx, (void **)&e->names, e->names_capacity, e->names_used, capacity))
      return false;
    e->names_capacity = capacity;
  }
  expr_var *v = &e->vars[e->var_count++];
  v->name = (int32_t)e->names_used;
  v->first_use = (int32_t)offset;
  v->length = (int32_t)length;
  memcpy(e->names + e->names_used, name, length);
  e->names[e->names_used + length] = '\0';
  e->names_used += length + 1;
  return true;
}

int32_t expr_intern_var(ad_expr *e, const char *name, size_t length, size_t offset) {
  if (2 * (e->var_count + 1) > e->var_hash_size && !grow_hash(e)) return -1;
  int32_t slot = find_slot(e, name, length);
  if (e->var_hash[slot] != 0) return e->var_hash[slot] - 1;
  if (!append_var(e, name, length, offset)) return -1;
  e->var_hash[slot] = e->var_count;
  return e->var_count - 1;
}

void expr_mark_needed(ad_expr *e) {
  if (e->node_count == 0) return;
  for (int32_t i = 0; i < e->node_count; i++) e->nodes[i].needed = false;
  e->nodes[e->node_count - 1].needed = true;
  for (int32_t i = e->node_count - 1; i >= 0; i--) {
    expr_node *n = &e->nodes[i];
    if (!n->needed || n->is_const) continue;
    for (int k = 0; k < 3; k++)
      if (n->arg[k] >= 0) e->nodes[n->arg[k]].needed = true;
  }
}

/* ---- Queries ---------------------------------------------------------- */

const char *ad_expr_text(const ad_expr *e) { return e ? e->text : NULL; }

int ad_expr_var_count(const ad_expr *e) { return e ? e->var_count : 0; }

const char *ad_expr_var_name(const ad_expr *e, int index) {
  if (!e || index < 0 || index >= e->var_count) return NULL;
  return e->names + e->vars[index].name;
}

int ad_expr_var_index(const ad_expr *e, const char *name) {
  if (!e || !name || e->var_count == 0) return -1;
  size_t length = strlen(name);
  int32_t entry = e->var_hash[find_slot(e, name, length)];
  return entry - 1;
}
