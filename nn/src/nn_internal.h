/* nn_internal.h: data structures and helpers shared by the nn sources only. */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "nn.h"

/* A named child of a layer. */
typedef struct nn_child {
  char name[NN_NAME_MAX];
  nn_layer *layer; /* owned */
} nn_child;

/*
 * A layer and its state live in one allocation of alloc_size bytes: the
 * struct, then state_size bytes of state. params and children are separate
 * allocations of capacity entries each.
 */
struct nn_layer {
  ad_ctx *ctx;
  const char *kind;
  nn_forward_fn forward;
  nn_destroy_fn destroy;
  void *state;
  size_t alloc_size;
  bool training;
  bool broken;          /* a child or parameter failed to be added */
  nn_layer *parent;     /* the layer that owns this one as a child, or NULL */
  int64_t nparams, params_capacity;
  nn_named_tensor *params;
  int64_t nchildren, children_capacity;
  nn_child *children;
};

/* Copies src into dst[NN_NAME_MAX]; returns false when it does not fit. */
static inline bool copy_name(char *dst, const char *src) {
  size_t n = strlen(src);
  if (n >= NN_NAME_MAX) return false;
  memcpy(dst, src, n + 1);
  return true;
}

/* Grows *items (count used, *capacity allocated entries of size bytes)
   through the context's allocator so that one more entry fits. */
bool grow_array(ad_ctx *ctx, void **items, int64_t count, int64_t *capacity, size_t size);

/* Writes a shape as "[2, 3]" into out[size], cut short when it does not fit. */
void format_shape(char *out, size_t size, int ndim, const int64_t *shape);

/* Seconds from a monotonic clock. */
double monotonic_seconds(void);

/* The kind of file that st_mode value mode describes, such as "a FIFO", for
   messages about files that are not regular. */
const char *file_type_name(unsigned mode);

/* Opens path for reading, without blocking when it is a FIFO, and checks
   that it is a regular file. On success stores a blocking descriptor, which
   the caller closes, and the file's size. Otherwise records AD_ERR_IO under
   the function name fn and leaves nothing open. */
ad_status open_regular_file(ad_ctx *ctx, const char *fn, const char *path, int *fd,
                            uint64_t *size);

#endif /* NN_INTERNAL_H */
