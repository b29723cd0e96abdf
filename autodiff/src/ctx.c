/* ctx.c: contexts, the arena, the allocation hook and error recording. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "trace.h"

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* The first chunk's size; later chunks double, and a larger request gets a
   chunk of its own size. */
#define ARENA_FIRST_CHUNK ((size_t)1 << 20)
#define ARENA_ALIGN 64

static void *default_alloc(void *user, size_t size) {
  (void)user;
  return malloc(size);
}

static void default_free(void *user, void *ptr, size_t size) {
  (void)user;
  (void)size;
  free(ptr);
}

void *ctx_alloc(ad_ctx *ctx, size_t size) {
  void *p = ctx->allocator.alloc(ctx->allocator.user, size);
  ctx->allocations++;
  if (!p) return NULL;
  ctx->allocator_bytes += size;
  if (ctx->allocator_bytes > ctx->allocator_peak) ctx->allocator_peak = ctx->allocator_bytes;
  return p;
}

void ctx_free(ad_ctx *ctx, void *ptr, size_t size) {
  if (!ptr) return;
  ctx->allocator.free(ctx->allocator.user, ptr, size);
  ctx->allocator_bytes -= size;
}

void *ad_malloc(ad_ctx *ctx, size_t size) {
  if (!ctx) return NULL;
  void *p = ctx_alloc(ctx, size ? size : 1);
  if (!p) fail(ctx, AD_ERR_MEMORY, "ad_malloc: out of memory allocating %zu bytes", size);
  return p;
}

void ad_free(ad_ctx *ctx, void *ptr, size_t size) {
  if (ctx && ptr) ctx_free(ctx, ptr, size ? size : 1);
}

ad_ctx *ad_ctx_new(const ad_allocator *allocator) {
  ad_allocator al = {default_alloc, default_free, NULL};
  if (allocator) {
    if (!allocator->alloc || !allocator->free) return NULL;
    al = *allocator;
  }
  ad_ctx *ctx = al.alloc(al.user, sizeof *ctx);
  if (!ctx) return NULL;
  memset(ctx, 0, sizeof *ctx);
  ctx->allocator = al;
  ctx->allocations = 1;
  ctx->allocator_bytes = sizeof *ctx;
  ctx->allocator_peak = sizeof *ctx;
  ctx->grad_enabled = true;
  ctx->threads = 1;
  blas_use_one_thread();
  return ctx;
}

static arena_chunk *chunk_new(ad_ctx *ctx, size_t capacity) {
  if (capacity > SIZE_MAX - sizeof(arena_chunk) - ARENA_ALIGN) return NULL;
  size_t total = sizeof(arena_chunk) + ARENA_ALIGN + capacity;
  unsigned char *raw = ctx_alloc(ctx, total);
  if (!raw) return NULL;
  arena_chunk *c = (arena_chunk *)raw;
  uintptr_t start = (uintptr_t)(raw + sizeof(arena_chunk));
  start = (start + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
  c->next = NULL;
  c->capacity = capacity;
  c->used = 0;
  c->alloc_size = total;
  c->data = (unsigned char *)start;
  POISON(c->data, capacity);
  ctx->arena_reserved += capacity;
  return c;
}

static void chunk_free(ad_ctx *ctx, arena_chunk *c) {
  UNPOISON(c->data, c->capacity);
  ctx->arena_reserved -= c->capacity;
  ctx_free(ctx, c, c->alloc_size);
}

/* Tries to place size bytes in chunk c; returns NULL when they do not fit. */
static void *chunk_take(arena_chunk *c, size_t size, size_t align) {
  size_t start = (c->used + align - 1) & ~(align - 1);
  if (start > c->capacity || size > c->capacity - start) return NULL;
#if ARENA_REDZONE > 0
  if (c->capacity - start - size < ARENA_REDZONE) return NULL;
#endif
  c->used = start + size + ARENA_REDZONE;
  UNPOISON(c->data + start, size);
  return c->data + start;
}

/* The capacity of the chunk that the arena adds to fit size bytes. */
static size_t growth_for(const ad_ctx *ctx, size_t size, size_t align) {
  size_t last = ctx->chunks ? ctx->arena_reserved : 0;
  size_t capacity = last > ARENA_FIRST_CHUNK ? last : ARENA_FIRST_CHUNK;
  size_t needed = size + align + ARENA_REDZONE;
  return capacity < needed ? needed : capacity;
}

/* Moves the arena on to chunk c, counting the bytes of the chunk it leaves. */
static void arena_enter(ad_ctx *ctx, arena_chunk *c) {
  if (ctx->cur) ctx->arena_closed += ctx->cur->used;
  ctx->cur = c;
}

/* Records the arena's current use in its peak. The arena only grows between
   resets, so calling this before each reset and each query keeps the peak
   exact without bookkeeping on every allocation. */
static void arena_note_peak(ad_ctx *ctx) {
  size_t used = arena_used_now(ctx);
  if (used > ctx->arena_peak) ctx->arena_peak = used;
}

void *arena_try_alloc(ad_ctx *ctx, size_t size, size_t align) {
  if (size == 0) size = 1;
  if (size > SIZE_MAX / 2) return NULL;
  for (arena_chunk *c = ctx->cur; c; c = c->next) {
    void *p = chunk_take(c, size, align);
    if (p) {
      if (c != ctx->cur) arena_enter(ctx, c);
      return p;
    }
    /* A chunk that cannot take this block is left with its free space;
       blocks never move back to earlier chunks. */
  }
  arena_chunk *c = chunk_new(ctx, growth_for(ctx, size, align));
  if (!c) return NULL;
  /* Append at the end, so chunks keep their order of creation. */
  arena_chunk **tail = &ctx->chunks;
  while (*tail) tail = &(*tail)->next;
  *tail = c;
  arena_enter(ctx, c);
  return chunk_take(c, size, align);
}

void *arena_alloc_slow(ad_ctx *ctx, size_t size, size_t align, const char *op) {
  void *p = arena_try_alloc(ctx, size, align);
  if (p) return p;
  if (size > SIZE_MAX / 2)
    fail(ctx, AD_ERR_MEMORY, "%s: a tensor of %zu bytes is too large to allocate", op, size);
  else
    fail(ctx, AD_ERR_MEMORY,
         "%s: out of memory: the arena could not grow by %zu bytes (%zu bytes already "
         "reserved); free tensors or reduce the batch size",
         op, growth_for(ctx, size, align), ctx->arena_reserved);
  return NULL;
}

/* Clears the sweep fields that point into the arena from persistent tensors. */
static void detach_persistent(ad_ctx *ctx) {
  for (persistent_block *b = ctx->persistent; b; b = b->next) {
    ad_tensor *t = &b->tensor;
    t->acc.buf = NULL;
    t->flags &= (uint8_t)~(F_NEEDED | F_ACC_FRESH | F_TARGET | F_TOUCHED | F_ACC_IN_GRAD);
    if (t->grad && t->grad->ctx == ctx && !(t->grad->flags & F_PERSISTENT)) t->grad = NULL;
  }
}

void ad_ctx_reset(ad_ctx *ctx) {
  if (!ctx) return;
  detach_persistent(ctx);
  ctx->tape_tail = NULL;
  ctx->error = AD_OK;
  ctx->message[0] = '\0';
  arena_note_peak(ctx);
  ctx->arena_closed = 0;
  if (ctx->chunks && ctx->chunks->next) {
    /* Merge all chunks into one of their total size, so that a repeated step
       fits in a single chunk and allocates nothing. */
    size_t total = ctx->arena_reserved;
    arena_chunk *merged = chunk_new(ctx, total);
    if (merged) {
      arena_chunk *c = ctx->chunks;
      while (c) {
        arena_chunk *next = c->next;
        chunk_free(ctx, c);
        c = next;
      }
      ctx->chunks = merged;
    }
  }
  for (arena_chunk *c = ctx->chunks; c; c = c->next) {
    c->used = 0;
    POISON(c->data, c->capacity);
  }
  ctx->cur = ctx->chunks;
}

void ad_ctx_free(ad_ctx *ctx) {
  if (!ctx) return;
  persistent_block *b = ctx->persistent;
  while (b) {
    persistent_block *next = b->next;
    ctx_free(ctx, b, b->size);
    b = next;
  }
  arena_chunk *c = ctx->chunks;
  while (c) {
    arena_chunk *next = c->next;
    chunk_free(ctx, c);
    c = next;
  }
  if (ctx->touched) ctx_free(ctx, ctx->touched, ctx->touched_capacity * sizeof *ctx->touched);
  if (ctx->trace) ctx_free(ctx, ctx->trace, sizeof *ctx->trace);
  pool_free(ctx, ctx->pool);
  ad_allocator al = ctx->allocator;
  al.free(al.user, ctx, sizeof *ctx);
}

void ad_ctx_memory(const ad_ctx *ctx, ad_memory_stats *stats) {
  if (!stats) return;
  memset(stats, 0, sizeof *stats);
  if (!ctx) return;
  stats->arena_used = arena_used_now(ctx);
  stats->arena_reserved = ctx->arena_reserved;
  stats->arena_peak_used = ctx->arena_peak > stats->arena_used ? ctx->arena_peak : stats->arena_used;
  stats->persistent = ctx->persistent_bytes;
  stats->allocator_bytes = ctx->allocator_bytes;
  stats->allocator_peak = ctx->allocator_peak;
  stats->allocations = ctx->allocations;
}

bool ad_set_grad_enabled(ad_ctx *ctx, bool enabled) {
  if (!ctx) return false;
  bool old = ctx->grad_enabled;
  ctx->grad_enabled = enabled;
  return old;
}

bool ad_grad_enabled(const ad_ctx *ctx) { return ctx && ctx->grad_enabled; }

ad_status ad_ctx_set_threads(ad_ctx *ctx, int threads) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (threads < 1 || threads > 1024)
    return fail(ctx, AD_ERR_ARGUMENT,
                "ad_ctx_set_threads: thread count %d is out of range; pass 1 to 1024", threads);
  if (threads == ctx->threads) return AD_OK;
  worker_pool *pool = NULL;
  if (threads > 1) {
    pool = pool_new(ctx, threads - 1);
    if (!pool)
      return fail(ctx, AD_ERR_MEMORY,
                  "ad_ctx_set_threads: could not start any of %d worker threads; the context "
                  "keeps %d thread%s",
                  threads - 1, ctx->threads, ctx->threads == 1 ? "" : "s");
  }
  pool_free(ctx, ctx->pool);
  ctx->pool = pool;
  ctx->threads = threads;
  return AD_OK;
}

int ad_ctx_threads(const ad_ctx *ctx) { return ctx ? ctx->threads : 0; }

/* ---- Errors --------------------------------------------------------- */

static const char *const status_names[AD_STATUS_COUNT] = {
    [AD_OK] = "AD_OK",
    [AD_ERR_ARGUMENT] = "AD_ERR_ARGUMENT",
    [AD_ERR_SHAPE] = "AD_ERR_SHAPE",
    [AD_ERR_DTYPE] = "AD_ERR_DTYPE",
    [AD_ERR_AXIS] = "AD_ERR_AXIS",
    [AD_ERR_INDEX] = "AD_ERR_INDEX",
    [AD_ERR_MEMORY] = "AD_ERR_MEMORY",
    [AD_ERR_GRAPH] = "AD_ERR_GRAPH",
    [AD_ERR_CONTEXT] = "AD_ERR_CONTEXT",
    [AD_ERR_IO] = "AD_ERR_IO",
    [AD_ERR_FORMAT] = "AD_ERR_FORMAT",
    [AD_ERR_NOT_IMPLEMENTED] = "AD_ERR_NOT_IMPLEMENTED",
};

const char *ad_status_name(ad_status status) {
  if ((int)status < 0 || status >= AD_STATUS_COUNT) return "AD_ERR_UNKNOWN";
  return status_names[status];
}

ad_status vfail(ad_ctx *ctx, ad_status code, const char *format, va_list args) {
  if (!ctx || code == AD_OK) return code;
  if (ctx->error != AD_OK) return code;
  ctx->error = code;
  vsnprintf(ctx->message, sizeof ctx->message, format, args);
  if (ctx->handler) ctx->handler(ctx->handler_user, code, ctx->message);
  return code;
}

ad_status fail(ad_ctx *ctx, ad_status code, const char *format, ...) {
  va_list args;
  va_start(args, format);
  vfail(ctx, code, format, args);
  va_end(args);
  return code;
}

ad_status ad_set_error(ad_ctx *ctx, ad_status status, const char *format, ...) {
  if (!format) format = "unknown error";
  va_list args;
  va_start(args, format);
  vfail(ctx, status, format, args);
  va_end(args);
  return status;
}

ad_status ad_errcode(const ad_ctx *ctx) { return ctx ? ctx->error : AD_ERR_ARGUMENT; }

const char *ad_errmsg(const ad_ctx *ctx) {
  if (!ctx) return "context is NULL";
  return ctx->error == AD_OK ? "" : ctx->message;
}

void ad_clear_error(ad_ctx *ctx) {
  if (!ctx) return;
  ctx->error = AD_OK;
  ctx->message[0] = '\0';
}

void ad_set_error_handler(ad_ctx *ctx, ad_error_handler handler, void *user) {
  if (!ctx) return;
  ctx->handler = handler;
  ctx->handler_user = user;
}

shape_text shape_str(int ndim, const int64_t *shape) {
  shape_text t;
  size_t n = 0;
  t.s[n++] = '[';
  for (int i = 0; i < ndim && n < sizeof t.s - 24; i++)
    n += (size_t)snprintf(t.s + n, sizeof t.s - n, i ? ", %lld" : "%lld", (long long)shape[i]);
  t.s[n++] = ']';
  t.s[n] = '\0';
  return t;
}
