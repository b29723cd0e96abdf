/*
 * ad_core.h: status codes, contexts, memory, tensors and random numbers.
 *
 * Error model. Every function that can fail either returns an ad_status or
 * returns a pointer that is NULL on failure. The context keeps the first
 * error recorded since the last ad_clear_error() or ad_ctx_reset(): its code
 * (ad_errcode) and a message that names the function, the shapes or values
 * involved, and the fix (ad_errmsg). Operations accept NULL tensors and return
 * NULL without overwriting that first error, so a chain of calls can be checked
 * once at the end:
 *
 *     ad_tensor *y = ad_sin(ctx, ad_mul(ctx, x, x));
 *     if (!y) fprintf(stderr, "%s\n", ad_errmsg(ctx));
 *
 * The library never aborts, exits or prints because of a caller's mistake.
 *
 * Memory model. A context owns an arena. Every tensor an operation returns is
 * allocated in it and stays valid until ad_ctx_reset() or ad_ctx_free(), which
 * release all of them at once and keep the arena's memory for the next step.
 * Tensors that must outlive a step (parameters, optimizer state) are persistent:
 * ad_persist() copies a tensor out of the arena, and ad_tensor_free() releases
 * it. All memory, the context's own included, comes from one ad_allocator.
 *
 * A context and its tensors must be used by one thread at a time.
 */
#ifndef AD_CORE_H
#define AD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes ---------------------------------------------------- */

/* The maximum number of dimensions of a tensor. */
#define AD_MAX_DIMS 8

typedef enum ad_status {
  AD_OK = 0,
  /* A NULL pointer, or a value outside its documented range. */
  AD_ERR_ARGUMENT,
  /* Shapes that do not match or cannot be broadcast together. */
  AD_ERR_SHAPE,
  /* A dtype the function does not accept, or two tensors whose dtypes differ. */
  AD_ERR_DTYPE,
  /* An axis outside [-ndim, ndim). */
  AD_ERR_AXIS,
  /* An element or class index outside its dimension. */
  AD_ERR_INDEX,
  /* The allocator returned NULL, or a size overflowed. */
  AD_ERR_MEMORY,
  /* A misuse of the tape: backward from a non-scalar output without an
     upstream gradient, from a tensor that does not require a gradient, or
     through an input that was modified after it was recorded. */
  AD_ERR_GRAPH,
  /* Tensors of different contexts used in one call. */
  AD_ERR_CONTEXT,
  /* A file could not be opened, read or written. */
  AD_ERR_IO,
  /* Text or file contents that do not follow their format. */
  AD_ERR_FORMAT,
  /* A combination of arguments this version does not support. */
  AD_ERR_NOT_IMPLEMENTED,
  AD_STATUS_COUNT
} ad_status;

/* Returns a constant name for a status, such as "AD_ERR_SHAPE". */
const char *ad_status_name(ad_status status);

/* ---- Types ----------------------------------------------------------- */

typedef enum ad_dtype {
  AD_F32 = 0, /* float, for training */
  AD_F64 = 1, /* double, for derivative checks and scientific code */
  AD_I64 = 2  /* int64_t, for class labels and indices; never differentiable */
} ad_dtype;

/* Returns "float32", "float64" or "int64". */
const char *ad_dtype_name(ad_dtype dtype);

/* Returns the size of one element in bytes, or 0 for an invalid dtype. */
size_t ad_dtype_size(ad_dtype dtype);

typedef struct ad_ctx ad_ctx;
typedef struct ad_tensor ad_tensor;

/* The one allocation hook. alloc returns a block of at least size bytes,
   aligned as malloc aligns, or NULL; free receives the pointer and the size
   given to alloc. Both receive user unchanged. */
typedef struct ad_allocator {
  void *(*alloc)(void *user, size_t size);
  void (*free)(void *user, void *ptr, size_t size);
  void *user;
} ad_allocator;

/* ---- Contexts -------------------------------------------------------- */

/* Creates a context that allocates through allocator (copied), or through
   malloc and free when allocator is NULL. Returns NULL when the context itself
   cannot be allocated. Free it with ad_ctx_free(). */
ad_ctx *ad_ctx_new(const ad_allocator *allocator);

/* Frees the context, every tensor in its arena, and every persistent tensor
   not yet freed. Accepts NULL. */
void ad_ctx_free(ad_ctx *ctx);

/* Releases every arena tensor and the whole tape in O(arena chunks +
   persistent tensors), keeps persistent tensors, and clears the recorded
   error. The
   arena's memory is kept for reuse: when a step used several chunks, they are
   merged into one so that the next step of the same size allocates nothing.
   Pointers to arena tensors are invalid afterwards. */
void ad_ctx_reset(ad_ctx *ctx);

/* The code of the first error since the last ad_clear_error() or
   ad_ctx_reset(), or AD_OK. */
ad_status ad_errcode(const ad_ctx *ctx);

/* The message of that error, or "" when there is none. Valid until the next
   ad_clear_error(), ad_ctx_reset() or ad_ctx_free(). */
const char *ad_errmsg(const ad_ctx *ctx);

/* Forgets the recorded error. */
void ad_clear_error(ad_ctx *ctx);

/* A function called with every error as it is recorded, for logging or
   breaking into a debugger. It must not call back into the context. */
typedef void (*ad_error_handler)(void *user, ad_status status, const char *message);

/* Installs handler (NULL removes it). */
void ad_set_error_handler(ad_ctx *ctx, ad_error_handler handler, void *user);

/* Records an error on the context, formatted like printf, and returns status.
   Libraries built on this one (the nn module, the expression parser) report
   their own errors through it, so that callers see one error model. A status
   of AD_OK records nothing. */
ad_status ad_set_error(ad_ctx *ctx, ad_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Sets the number of threads that matrix products and large elementwise
   kernels may use, at least 1. The default is 1.
   Results do not depend on it. Work is split by shape alone and every sum
   runs in a fixed order, so 1 and N threads give bitwise identical results.
   The context starts threads - 1 worker threads, which spin for about 2 ms
   between jobs and then sleep. Fewer start if the system refuses some, and
   the call fails with AD_ERR_MEMORY when none can start.
   With OpenBLAS, ad_ctx_new and every matrix product set OpenBLAS's
   process-wide thread count to 1, because the engine splits products
   itself and more BLAS threads per block would oversubscribe the cores. A
   program that calls OpenBLAS directly with more threads must set its count
   again before those calls. */
ad_status ad_ctx_set_threads(ad_ctx *ctx, int threads);
int ad_ctx_threads(const ad_ctx *ctx);

/* A task of ad_parallel_for: does item index of a job. */
typedef void (*ad_task_fn)(void *user, int64_t index);

/* Calls fn(user, i) for every i in [0, count) on the context's threads, the
   calling thread included, and returns when all calls are done. The calls
   run concurrently and in no fixed order, so each must touch only its own
   part of the data and must not call the library (no operations, no
   allocation). With one thread, or when called from inside a task, the
   calls run in order on the calling thread. Libraries built on the engine
   use it so that one pool of threads does all the work. */
void ad_parallel_for(ad_ctx *ctx, int64_t count, ad_task_fn fn, void *user);

/* Memory figures of a context, in bytes. */
typedef struct ad_memory_stats {
  size_t arena_used;      /* arena bytes handed out since the last reset */
  size_t arena_reserved;  /* arena chunks held from the allocator */
  size_t arena_peak_used; /* the largest arena_used ever reached */
  size_t persistent;      /* persistent tensors and their gradients */
  size_t allocator_bytes; /* everything this context has from the allocator */
  size_t allocator_peak;  /* the largest allocator_bytes ever reached */
  uint64_t allocations;   /* calls to the allocator's alloc so far */
} ad_memory_stats;

void ad_ctx_memory(const ad_ctx *ctx, ad_memory_stats *stats);

/* Allocates size bytes (aligned as malloc aligns) through the context's
   allocator, for libraries built on this one that keep their own buffers.
   Returns NULL and records AD_ERR_MEMORY on failure. Release with ad_free,
   passing the same size. The bytes count in ad_ctx_memory's figures. */
void *ad_malloc(ad_ctx *ctx, size_t size);
void ad_free(ad_ctx *ctx, void *ptr, size_t size);

/* Enables or disables recording on the tape and returns the previous setting.
   With recording disabled (evaluation, optimizer updates), operations compute
   their results and record nothing, and their results do not require a
   gradient. Enabled by default. */
bool ad_set_grad_enabled(ad_ctx *ctx, bool enabled);
bool ad_grad_enabled(const ad_ctx *ctx);

/* ---- Creating tensors ------------------------------------------------ */
/*
 * Shapes are given as (ndim, shape) with 0 <= ndim <= AD_MAX_DIMS; a 0-d
 * tensor is a scalar and shape may then be NULL. Dimensions may be 0.
 * Every function returns a new arena tensor that is a leaf and does not
 * require a gradient, or NULL with the error recorded.
 */

ad_tensor *ad_zeros(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape);
ad_tensor *ad_ones(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape);
ad_tensor *ad_full(ad_ctx *ctx, ad_dtype dtype, int ndim, const int64_t *shape, double value);

/* A 0-d tensor holding value. */
ad_tensor *ad_scalar(ad_ctx *ctx, ad_dtype dtype, double value);

/* Copies numel(shape) elements from data. */
ad_tensor *ad_from_f32(ad_ctx *ctx, int ndim, const int64_t *shape, const float *data);
ad_tensor *ad_from_f64(ad_ctx *ctx, int ndim, const int64_t *shape, const double *data);
ad_tensor *ad_from_i64(ad_ctx *ctx, int ndim, const int64_t *shape, const int64_t *data);

/* The 1-d tensor start, start + step, ... up to but excluding stop, as
   NumPy's arange. step must be nonzero and finite. */
ad_tensor *ad_arange(ad_ctx *ctx, ad_dtype dtype, double start, double stop, double step);

/* count evenly spaced values from start to stop, both included. */
ad_tensor *ad_linspace(ad_ctx *ctx, ad_dtype dtype, double start, double stop, int64_t count);

/* A copy of t as a persistent leaf: it is not in the arena, survives
   ad_ctx_reset(), and must be freed with ad_tensor_free() (or ad_ctx_free()).
   The copy does not require a gradient; the graph of t is not copied. */
ad_tensor *ad_persist(ad_tensor *t);

/* Frees a persistent tensor and its gradient. Accepts NULL. Arena tensors
   are released by ad_ctx_reset(); passing one here records an error and
   frees nothing. Any arena tensor that refers to t must not be used after. */
void ad_tensor_free(ad_tensor *t);

/* ---- Random numbers -------------------------------------------------- */

/* A generator the caller owns (xoshiro256** seeded through splitmix64). The
   same seed gives the same sequence on every machine: the normal variates use
   only IEEE-exact arithmetic and a fixed polynomial logarithm. */
typedef struct ad_rng {
  uint64_t state[4];
  double spare;     /* the second normal variate of the last Box-Muller pair */
  bool has_spare;
} ad_rng;

/* The functions below take no context to record an error on, so a NULL
   generator makes them return 0 (and ad_rng_seed do nothing). */
/* Seeds rng. A generator used without a seed, zero-initialized, behaves as
   if seeded with 0. */
void ad_rng_seed(ad_rng *rng, uint64_t seed);
uint64_t ad_rng_next(ad_rng *rng);
/* A uniform integer in [0, bound), without modulo bias; 0 when bound is 0. */
uint64_t ad_rng_below(ad_rng *rng, uint64_t bound);
/* A uniform double in [0, 1) with 53 random bits. */
double ad_rng_uniform(ad_rng *rng);
/* A standard normal variate. */
double ad_rng_normal(ad_rng *rng);

/* Tensors of uniform values in [low, high) and of normal values. */
ad_tensor *ad_rand_uniform(ad_ctx *ctx, ad_rng *rng, ad_dtype dtype, int ndim,
                           const int64_t *shape, double low, double high);
ad_tensor *ad_rand_normal(ad_ctx *ctx, ad_rng *rng, ad_dtype dtype, int ndim,
                          const int64_t *shape, double mean, double stddev);

/* ---- Queries --------------------------------------------------------- */

ad_ctx *ad_tensor_ctx(const ad_tensor *t);
ad_dtype ad_tensor_dtype(const ad_tensor *t);
int ad_ndim(const ad_tensor *t);
/* The ndim dimensions; valid as long as t is. */
const int64_t *ad_shape(const ad_tensor *t);
/* The size of dimension axis; negative axes count from the end. Returns -1
   and records AD_ERR_AXIS for an invalid axis. */
int64_t ad_dim(const ad_tensor *t, int axis);
int64_t ad_numel(const ad_tensor *t);
bool ad_is_persistent(const ad_tensor *t);

/* ---- Element access -------------------------------------------------- */
/*
 * Storage is contiguous and row-major. The read accessors return NULL and
 * record AD_ERR_DTYPE when the dtype differs. The _mut accessors (and
 * ad_set, ad_fill, ad_copy_into) also mark the tensor as modified, so that a
 * backward pass through an operation that read or produced it before the
 * change fails with AD_ERR_GRAPH instead of returning a wrong gradient.
 * Tensors returned by ad_reshape, ad_squeeze, ad_unsqueeze and ad_detach
 * share storage with their input.
 */

const float *ad_data_f32(const ad_tensor *t);
const double *ad_data_f64(const ad_tensor *t);
const int64_t *ad_data_i64(const ad_tensor *t);
float *ad_data_f32_mut(ad_tensor *t);
double *ad_data_f64_mut(ad_tensor *t);
int64_t *ad_data_i64_mut(ad_tensor *t);

/* Reads the element at index (ndim entries; negative entries count from the
   end) converted to double. */
ad_status ad_get(const ad_tensor *t, const int64_t *index, double *value);
/* Writes value, converted to the tensor's dtype, at index. */
ad_status ad_set(ad_tensor *t, const int64_t *index, double value);
/* Reads the only element of a tensor with one element. */
ad_status ad_item(const ad_tensor *t, double *value);

/* Fills t with value. */
ad_status ad_fill(ad_tensor *t, double value);
/* Copies src's elements into dst; shapes must be equal, dtypes may differ
   (conversion to int64 truncates toward zero). On failure dst is unchanged. */
ad_status ad_copy_into(ad_tensor *dst, const ad_tensor *src);

/* Prints "tensor(shape=[2, 3], dtype=float32, requires_grad)" and the values,
   nested by dimension. With more than 1000 elements each dimension shows
   its first and last 3 entries around "...". */
ad_status ad_print(const ad_tensor *t, FILE *stream);

/* Writes the same text as ad_print into buffer, truncated to capacity - 1
   bytes and always terminated. Returns the length the full text needs,
   excluding the terminator, or -1 on error. */
int64_t ad_format(const ad_tensor *t, char *buffer, size_t capacity);

#ifdef __cplusplus
}
#endif

#endif /* AD_CORE_H */
