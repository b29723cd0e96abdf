/*
 * internal.h: the engine's data structures, shared by its source files only.
 *
 * Dimension letters used in comments: N batch, C classes, M K N for a matrix
 * product [M, K] x [K, N].
 */
#ifndef AD_INTERNAL_H
#define AD_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "ad_core.h"
#include "ad_grad.h"
#include "ad_ops.h"

/* Everything declared from here to the matching pop stays inside the shared
   library: a program that defines a function of the same name (fail,
   record, gemm) cannot replace the engine's own by symbol interposition. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- Operation kinds ------------------------------------------------- */

/* Every kind of entry the tape can hold. op_table (ops.c) has one row per
   kind, in this order. Leaves carry OP_LEAF. */
typedef enum op_kind {
  OP_LEAF = 0,
  /* binary, broadcasting (binary.c) */
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_POW,
  OP_MINIMUM,
  OP_MAXIMUM,
  OP_ATAN2,
  OP_HYPOT,
  OP_GMUL, /* a * b with 0 * anything = 0; used by graph backward rules */
  OP_WHERE,
  /* unary (unary.c), in the order of unary_table */
  OP_ADD_SCALAR,
  OP_MUL_SCALAR,
  OP_POW_SCALAR,
  OP_NEG,
  OP_ABS,
  OP_SQRT,
  OP_CBRT,
  OP_EXP,
  OP_EXP2,
  OP_EXPM1,
  OP_LOG,
  OP_LOG2,
  OP_LOG10,
  OP_LOG1P,
  OP_SIN,
  OP_COS,
  OP_TAN,
  OP_ASIN,
  OP_ACOS,
  OP_ATAN,
  OP_SINH,
  OP_COSH,
  OP_TANH,
  OP_ERF,
  OP_ERFC,
  OP_SIGMOID,
  OP_RELU,
  OP_LEAKY_RELU,
  OP_ELU,
  OP_GELU,
  OP_SOFTPLUS,
  OP_CLAMP,
  /* reductions (reduce.c) */
  OP_SUM,
  OP_MEAN,
  OP_MAX,
  OP_MIN,
  OP_LOGSUMEXP,
  OP_VAR,
  OP_NORM,
  /* linear algebra (linalg.c) */
  OP_MATMUL,
  OP_LINEAR,
  /* shape (shape.c) */
  OP_RESHAPE,
  OP_PERMUTE,
  OP_EXPAND,
  OP_SLICE,
  OP_SLICE_ADJOINT, /* zeros of the input's shape with g placed in the slice */
  OP_INDEX_SELECT,
  OP_INDEX_ADD,     /* the adjoint of index_select */
  OP_GATHER,
  OP_SCATTER_ADD,   /* the adjoint of gather */
  OP_CONCAT,
  OP_CLONE,
  OP_CAST,
  /* network functions (nnops.c) */
  OP_SOFTMAX,
  OP_LOG_SOFTMAX,
  OP_CROSS_ENTROPY,
  OP_BCE_LOGITS,
  OP_MSE,
  OP_COUNT
} op_kind;

#define OP_FIRST_UNARY OP_ADD_SCALAR
#define OP_LAST_UNARY OP_CLAMP

/* ---- Tensors --------------------------------------------------------- */

enum tensor_flag {
  F_REQUIRES_GRAD = 1u << 0,
  F_PERSISTENT = 1u << 1,
  F_NEEDED = 1u << 2,     /* on a path from a requested input to an output (ad_gradients) */
  F_ACC_FRESH = 1u << 3,  /* acc.buf contains no contribution yet and must be overwritten */
  F_GRAD_STALE = 1u << 4, /* grad is logically zero (ad_zero_grad) */
  F_TARGET = 1u << 5,     /* an input requested from ad_gradients */
  F_TOUCHED = 1u << 6,    /* listed in ctx->touched during a sweep */
  F_ACC_IN_GRAD = 1u << 7 /* acc.buf is the data of a stale grad tensor (ad_backward) */
};

/* Per-operation constants stored in the recorded tensor. */
typedef union op_param {
  double s[3];
  int64_t i[3];
  struct {
    uint32_t axes_mask; /* bit k set when dimension k of the input is reduced */
    int32_t axis;
    int32_t correction;
    uint8_t keepdim;
    uint8_t reduction;
  } r;
  int8_t perm[AD_MAX_DIMS];
  struct {
    double *lse;        /* log-sum-exp of each sample's logits (cross-entropy) */
    int32_t axis;       /* class axis */
    uint8_t reduction;  /* an ad_reduction */
  } loss;
  struct {
    ad_tensor **inputs; /* count tensors (concat) */
    uint32_t *versions;
    int32_t count;
    int32_t axis;
  } list;
} op_param;

/*
 * A tensor: a header, its shape and its data in one arena block (or one
 * allocator block when persistent). Data never changes after an operation
 * produced it, except through the _mut accessors, which bump version.
 * Invariant: op != OP_LEAF implies F_REQUIRES_GRAD and a place on the tape.
 */
struct ad_tensor {
  void *data;
  int64_t *shape;      /* ndim entries */
  int64_t numel;
  ad_ctx *ctx;
  ad_tensor *base;     /* the tensor owning the storage of a view, else NULL */
  ad_tensor *grad;     /* gradient accumulated by ad_backward (leaves only) */
  union {
    void *buf;         /* fused-kernel sweep: accumulated gradient, this dtype and shape */
    ad_tensor *t;      /* graph sweep: accumulated gradient tensor */
  } acc;
  ad_tensor *tape_prev; /* the entry recorded before this one */
  ad_tensor *in[3];    /* inputs of the recorded operation */
  op_param p;
  uint32_t in_version[3]; /* storage versions of in[] when recorded */
  uint32_t version;    /* bumped by every write through the public API */
  uint16_t op;         /* an op_kind */
  uint8_t dtype;
  uint8_t ndim;
  uint8_t flags;
  uint8_t nin;         /* inputs in in[] */
};

/* The tensor whose version counts writes to t's storage. */
static inline ad_tensor *storage_owner(const ad_tensor *t) {
  return (ad_tensor *)(t->base ? t->base : t);
}

static inline bool is_float(ad_dtype dtype) { return dtype == AD_F32 || dtype == AD_F64; }

/* ad_dtype_size for a valid dtype, inline. */
static inline size_t dtype_bytes(ad_dtype dtype) { return dtype == AD_F32 ? 4 : 8; }

static inline bool requires_grad(const ad_tensor *t) { return (t->flags & F_REQUIRES_GRAD) != 0; }

/* ---- Contexts -------------------------------------------------------- */

/* Detects AddressSanitizer. Under it every arena block is followed by a
   poisoned gap, and released memory is poisoned, so overflows and use after
   ad_ctx_reset are reported as they would be for malloc. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#define ARENA_REDZONE 64
#else
#define ARENA_REDZONE 0
#endif

/* A block of arena memory. Blocks are handed out from data upwards. */
typedef struct arena_chunk arena_chunk;
struct arena_chunk {
  arena_chunk *next;
  size_t capacity;     /* bytes usable from data on */
  size_t used;         /* bytes handed out, alignment gaps included */
  size_t alloc_size;   /* bytes obtained from the allocator */
  unsigned char *data; /* 64-byte aligned */
};

/* A persistent allocation: the list links live in front of the tensor. */
typedef struct persistent_block {
  struct persistent_block *prev, *next;
  size_t size;
  ad_tensor tensor;
} persistent_block;

/* The context's worker threads (pool.c). */
typedef struct worker_pool worker_pool;
/* Starts up to workers threads; NULL when none could start. */
worker_pool *pool_new(ad_ctx *ctx, int workers);
/* Stops and joins the threads and frees the pool. Accepts NULL. */
void pool_free(ad_ctx *ctx, worker_pool *pool);

/* The fused-kernel sweep calls this after each entry with copies of the
   gradients that entry sent (see the trace API in ad_inspect.h). */
typedef struct trace_hook trace_hook;

struct ad_ctx {
  ad_allocator allocator;

  /* Arena: a list of chunks; cur is the chunk being filled. */
  arena_chunk *chunks;
  arena_chunk *cur;
  size_t arena_closed;  /* bytes used in the chunks before cur */
  size_t arena_peak;
  size_t arena_reserved;

  persistent_block *persistent;
  size_t persistent_bytes;

  size_t allocator_bytes;
  size_t allocator_peak;
  uint64_t allocations;

  /* The tape: a singly linked list through ad_tensor.tape_prev. */
  ad_tensor *tape_tail;

  bool grad_enabled;
  int threads;
  worker_pool *pool; /* NULL with one thread */

  ad_status error;
  char message[1024];
  ad_error_handler handler;
  void *handler_user;

  /* Leaves whose acc field a sweep set, to be cleared at its end. */
  ad_tensor **touched;
  size_t touched_count;
  size_t touched_capacity;

  uint64_t backward_calls[OP_COUNT][2];

  trace_hook *trace;
};

/* ---- Memory (ctx.c) ---------------------------------------------------- */

/* Allocates size bytes from the allocator, counting them. NULL on failure
   (no error recorded). */
void *ctx_alloc(ad_ctx *ctx, size_t size);
void ctx_free(ad_ctx *ctx, void *ptr, size_t size);

/* The arena bytes handed out since the last reset. */
static inline size_t arena_used_now(const ad_ctx *ctx) {
  return ctx->arena_closed + (ctx->cur ? ctx->cur->used : 0);
}

/* Allocates size bytes aligned to align (a power of two, at most 64) from the
   arena. Records AD_ERR_MEMORY naming op and returns NULL on failure. */
void *arena_alloc_slow(ad_ctx *ctx, size_t size, size_t align, const char *op);
static inline void *arena_alloc(ad_ctx *ctx, size_t size, size_t align, const char *op) {
#if ARENA_REDZONE == 0
  /* The common case inline: the block fits in the current chunk. */
  arena_chunk *c = ctx->cur;
  if (c && size > 0) {
    size_t start = (c->used + align - 1) & ~(align - 1);
    if (start <= c->capacity && size <= c->capacity - start) {
      c->used = start + size;
      return c->data + start;
    }
  }
#endif
  return arena_alloc_slow(ctx, size, align, op);
}
/* The same without recording an error, for scratch memory that a caller
   can do without. */
void *arena_try_alloc(ad_ctx *ctx, size_t size, size_t align);

/* ---- Errors (ctx.c) --------------------------------------------------- */

/* Records an error unless one is already recorded; returns code. */
ad_status fail(ad_ctx *ctx, ad_status code, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
ad_status vfail(ad_ctx *ctx, ad_status code, const char *format, va_list args);

/* Text of a shape, "[2, 3]", for messages. */
typedef struct shape_text {
  char s[200];
} shape_text;
shape_text shape_str(int ndim, const int64_t *shape);
static inline shape_text tshape(const ad_tensor *t) { return shape_str(t->ndim, t->shape); }

/* ---- Tensor helpers (tensor.c) ---------------------------------------- */

/* Validates ndim and shape and returns their element count, or -1 after
   recording an error that names op. */
int64_t checked_numel(ad_ctx *ctx, const char *op, int ndim, const int64_t *shape);

/* A new arena tensor with uninitialised data: a leaf without flags. NULL
   after recording an error that names op. */
ad_tensor *tensor_new(ad_ctx *ctx, const char *op, ad_dtype dtype, int ndim,
                      const int64_t *shape);
/* A tensor of a's dtype and shape. */
static inline ad_tensor *tensor_like(ad_ctx *ctx, const char *op, const ad_tensor *a) {
  return tensor_new(ctx, op, (ad_dtype)a->dtype, a->ndim, a->shape);
}
/* A new persistent tensor of a's dtype and shape with uninitialised data, or
   NULL when the allocator fails (no error recorded). */
ad_tensor *persistent_like(ad_ctx *ctx, const ad_tensor *a);

/* A new arena tensor that shares a's storage under another shape. */
ad_tensor *tensor_view(ad_ctx *ctx, const char *op, ad_tensor *a, int ndim, const int64_t *shape);

/* Checks one tensor argument of op: not NULL, of ctx, and (when float_only)
   of a float dtype. Returns false after recording an error; a NULL tensor
   records an error only when none is recorded yet. */
bool check_arg_slow(ad_ctx *ctx, const char *op, const char *name, const ad_tensor *t,
                    bool float_only);
static inline bool check_arg(ad_ctx *ctx, const char *op, const char *name, const ad_tensor *t,
                             bool float_only) {
  if (t && t->ctx == ctx && (!float_only || t->dtype != AD_I64)) return true;
  return check_arg_slow(ctx, op, name, t, float_only);
}
/* Checks that a and b have the same dtype. */
bool check_same_dtype_slow(ad_ctx *ctx, const char *op, const ad_tensor *a, const ad_tensor *b);
static inline bool check_same_dtype(ad_ctx *ctx, const char *op, const ad_tensor *a,
                                    const ad_tensor *b) {
  return a->dtype == b->dtype || check_same_dtype_slow(ctx, op, a, b);
}

/* Normalizes axis for a tensor of ndim dimensions into [0, ndim). Returns
   -1 after recording AD_ERR_AXIS. */
int normalize_axis(ad_ctx *ctx, const char *op, int axis, int ndim);

/* Element i of a float32 or float64 gradient buffer as double. */
static inline double load_grad(ad_dtype dtype, const void *g, int64_t i) {
  return dtype == AD_F32 ? ((const float *)g)[i] : ((const double *)g)[i];
}

/* Element i of a float tensor as double, and its inverse. */
static inline double load(const ad_tensor *t, int64_t i) {
  switch (t->dtype) {
  case AD_F32: return ((const float *)t->data)[i];
  case AD_F64: return ((const double *)t->data)[i];
  default: return (double)((const int64_t *)t->data)[i];
  }
}
static inline void store(ad_tensor *t, int64_t i, double v) {
  switch (t->dtype) {
  case AD_F32: ((float *)t->data)[i] = (float)v; break;
  case AD_F64: ((double *)t->data)[i] = v; break;
  default: ((int64_t *)t->data)[i] = (int64_t)v; break;
  }
}

/* Row-major strides of a shape, in elements. */
void contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* ---- Recording (tape.c) ----------------------------------------------- */

/* The inputs of a recorded tensor: in[] for most operations, the list in
   p.list for concat, which may have any number. */
static inline int input_count(const ad_tensor *t) {
  return t->op == OP_CONCAT ? t->p.list.count : t->nin;
}
static inline ad_tensor *input_at(const ad_tensor *t, int i) {
  return t->op == OP_CONCAT ? t->p.list.inputs[i] : t->in[i];
}
static inline uint32_t input_version(const ad_tensor *t, int i) {
  return t->op == OP_CONCAT ? t->p.list.versions[i] : t->in_version[i];
}

/* True when an operation on these inputs must be recorded: recording is
   enabled and one of the non-NULL inputs requires a gradient. */
bool should_record(const ad_ctx *ctx, ad_tensor *a, ad_tensor *b, ad_tensor *c);

/* Records out as produced by op from inputs a, b, c (trailing ones NULL). */
void record(ad_ctx *ctx, ad_tensor *out, op_kind op, ad_tensor *a, ad_tensor *b, ad_tensor *c);

/* Records when should_record is true; returns out for chaining. */
ad_tensor *maybe_record(ad_ctx *ctx, ad_tensor *out, op_kind op, ad_tensor *a, ad_tensor *b,
                        ad_tensor *c);

/* ---- Backward rules ------------------------------------------------- */

/* Arguments of a fused backward kernel. The kernel adds its contribution for
   each input i with gin[i] != NULL into gin[i] (dtype and shape of that
   input), or overwrites gin[i] when fresh[i] is set. */
typedef struct bw_args {
  ad_tensor *out;    /* the recorded tensor; see input_at() */
  const void *gout;  /* d loss / d out, out's dtype and shape */
  void **gin;        /* input_count(out) entries */
  const bool *fresh;
} bw_args;

typedef ad_status (*bw_kernel)(ad_ctx *ctx, const bw_args *args);

/* A backward rule built from recorded operations, for higher derivatives.
   For each i with need[i] set it stores d loss / d in[i] (the input's shape
   and dtype) in gin[i], or returns an error. */
typedef ad_status (*bw_graph)(ad_ctx *ctx, ad_tensor *out, ad_tensor *gout,
                              const bool *need, ad_tensor **gin);

typedef struct op_def {
  const char *name;
  bw_kernel backward;
  bw_graph backward_graph;
  uint8_t constant_inputs; /* bit i set: input i never receives a gradient (masks, indices) */
} op_def;

extern const op_def op_table[OP_COUNT];

/* The backward rules, defined beside their forward operations. */
ad_status binary_backward(ad_ctx *ctx, const bw_args *args);
ad_status binary_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                                ad_tensor **gin);
ad_status unary_backward(ad_ctx *ctx, const bw_args *args);
ad_status unary_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                               ad_tensor **gin);
ad_status reduce_backward(ad_ctx *ctx, const bw_args *args);
ad_status reduce_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                                ad_tensor **gin);
ad_status matmul_backward(ad_ctx *ctx, const bw_args *args);
ad_status matmul_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                                ad_tensor **gin);
ad_status linear_backward(ad_ctx *ctx, const bw_args *args);
ad_status linear_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                                ad_tensor **gin);
ad_status copy_backward(ad_ctx *ctx, const bw_args *args);
ad_status cast_backward(ad_ctx *ctx, const bw_args *args);
ad_status permute_backward(ad_ctx *ctx, const bw_args *args);
ad_status expand_backward(ad_ctx *ctx, const bw_args *args);
ad_status slice_backward(ad_ctx *ctx, const bw_args *args);
ad_status slice_adjoint_backward(ad_ctx *ctx, const bw_args *args);
ad_status select_backward(ad_ctx *ctx, const bw_args *args);
ad_status scatter_backward(ad_ctx *ctx, const bw_args *args);
ad_status concat_backward(ad_ctx *ctx, const bw_args *args);
ad_status shape_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                               ad_tensor **gin);
ad_status nnops_backward(ad_ctx *ctx, const bw_args *args);
ad_status nnops_backward_graph(ad_ctx *ctx, ad_tensor *out, ad_tensor *g, const bool *need,
                               ad_tensor **gin);

/* ---- Threads (parallel.c) --------------------------------------------- */

/* Elementwise loops shorter than this run on the calling thread: waking
   another thread costs more than it saves. */
#define PARALLEL_MIN_ELEMENTS ((int64_t)1 << 16)
/* Elements per block when a loop is split. Blocks are a fixed size, so
   each element is computed the same way whatever the thread count. */
#define PARALLEL_BLOCK ((int64_t)1 << 14)

/* A loop body over elements [lo, hi). */
typedef void (*block_fn)(void *arg, int64_t lo, int64_t hi);

/* Runs fn over [0, n) in blocks on the context's threads, or in one call
   when n is small or the context has one thread. fn must only touch the
   elements of its range. */
void parallel_blocks(ad_ctx *ctx, int64_t n, block_fn fn, void *arg);

/* ---- Shared kernels ------------------------------------------------- */

/* Broadcasts shapes a and b into out (NumPy rules); out_shape may be ashape
   or bshape. Returns false after recording AD_ERR_SHAPE naming op. */
bool broadcast_shapes(ad_ctx *ctx, const char *op, int andim, const int64_t *ashape, int bndim,
                      const int64_t *bshape, int *out_ndim, int64_t *out_shape);

/* Adds (or, when fresh, writes) the sum of g (shape gshape) over its
   broadcast dimensions into dst of shape dshape, which must broadcast to
   gshape. Both have dtype. */
ad_status sum_to_acc(ad_ctx *ctx, ad_dtype dtype, const void *g, int gndim, const int64_t *gshape,
                     void *dst, int dndim, const int64_t *dshape, bool fresh);

/* dst (+)= src elementwise over n elements of dtype. */
void acc_copy(ad_dtype dtype, void *dst, const void *src, int64_t n, bool fresh);

/* The graph form of sum_to_acc: g summed down to shape (ndim, shape). */
ad_tensor *sum_to(ad_ctx *ctx, ad_tensor *g, int ndim, const int64_t *shape);

/* g * d elementwise with 0 * anything = 0 (recorded as OP_GMUL). */
ad_tensor *gmul(ad_ctx *ctx, ad_tensor *g, ad_tensor *d);

/* A 0-d constant of t's dtype. */
ad_tensor *const_like(ad_ctx *ctx, const ad_tensor *t, double value);

/* Reduction of a over the dimensions in axes_mask (bit k = dimension k) with
   keepdim, recorded as op (OP_SUM, OP_MEAN, ...). */
ad_tensor *reduce_mask(ad_ctx *ctx, const char *name, op_kind op, ad_tensor *a, uint32_t axes_mask,
                       bool keepdim, int correction);

/* Matrix product C = alpha op(A) op(B) + beta C of row-major matrices, where
   op transposes when trans_* is set. Uses the BLAS when built with one. */
void gemm(ad_ctx *ctx, ad_dtype dtype, bool trans_a, bool trans_b, int64_t m, int64_t n,
          int64_t k, double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
          double beta, void *c, int64_t ldc);

/* Makes the BLAS run each call on its calling thread; gemm runs blocks of a
   product on the context's threads itself (see gemm.c). */
void blas_use_one_thread(void);

/* Copies a into out with its axes permuted (out dimension i = a dimension perm[i]). */
void permute_copy(const ad_tensor *a, const int *perm, ad_tensor *out);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* AD_INTERNAL_H */
