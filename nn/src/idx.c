/* idx.c: the IDX reader (plain or gzip) and labelled image sets. */
#include <errno.h>
#include <math.h>
#include <unistd.h>
#include <zlib.h>

#include "nn_internal.h"

/* deflate compresses at most 1032:1, so a gzip file of n bytes expands to at
   most about 1032 n bytes. A header that claims more is rejected before any
   allocation. */
#define GZIP_MAX_RATIO 1032u

/* An open file, read either directly or through zlib. */
typedef struct byte_source {
  const char *path;
  FILE *file;   /* plain files */
  gzFile gz;    /* gzip files */
  int zlib_error; /* the zlib code of the last failed gzip read, or Z_OK */
  uint64_t file_size;
} byte_source;

static ad_status open_source(ad_ctx *ctx, const char *path, byte_source *src) {
  memset(src, 0, sizeof *src);
  src->path = path;
  int fd;
  ad_status status = open_regular_file(ctx, "nn_idx_load", path, &fd, &src->file_size);
  if (status != AD_OK) return status;
  unsigned char magic[2] = {0, 0};
  ssize_t got = pread(fd, magic, 2, 0);
  bool gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (gzip) {
    /* gzdopen takes over fd, and gzclose closes it. */
    src->gz = gzdopen(fd, "rb");
    if (src->gz) {
      gzbuffer(src->gz, 1u << 17);
      return AD_OK;
    }
  } else {
    src->file = fdopen(fd, "rb");
    if (src->file) return AD_OK;
  }
  int saved = errno;
  close(fd);
  return ad_set_error(ctx, AD_ERR_IO, "nn_idx_load: cannot open \"%s\"%s: %s", path,
                      gzip ? " for gzip reading" : "", strerror(saved));
}

static void close_source(byte_source *src) {
  if (src->file) fclose(src->file);
  if (src->gz) gzclose(src->gz);
  src->file = NULL;
  src->gz = NULL;
}

/* Reads up to n bytes and returns the count read. It is less than n only at
   the end of the data or on an error, which sets *error to a message. */
static size_t read_bytes(byte_source *src, void *buf, size_t n, const char **error) {
  *error = NULL;
  size_t total = 0;
  while (total < n) {
    size_t want = n - total < (1u << 30) ? n - total : (1u << 30);
    if (src->file) {
      size_t got = fread((char *)buf + total, 1, want, src->file);
      total += got;
      if (got < want) {
        if (ferror(src->file)) *error = strerror(errno);
        break;
      }
    } else {
      int got = gzread(src->gz, (char *)buf + total, (unsigned)want);
      if (got > 0) total += (size_t)got;
      if (got < 0 || (size_t)got < want) {
        const char *message = gzerror(src->gz, &src->zlib_error);
        if (src->zlib_error != Z_OK) *error = message;
        break;
      }
    }
  }
  return total;
}

static uint32_t be32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reports a read that ended early: an I/O error, corrupt gzip data, or a
   truncated file. */
static ad_status short_read(ad_ctx *ctx, const byte_source *src, const char *what, size_t got,
                            size_t wanted, const char *error) {
  if (error && src->file)
    return ad_set_error(ctx, AD_ERR_IO, "nn_idx_load: reading %s of \"%s\" failed: %s", what,
                        src->path, error);
  if (error && src->zlib_error == Z_ERRNO)
    return ad_set_error(ctx, AD_ERR_IO, "nn_idx_load: reading %s of \"%s\" failed: %s", what,
                        src->path, strerror(errno));
  if (error && src->zlib_error != Z_BUF_ERROR)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: the gzip data of \"%s\" is corrupt in "
                        "%s (zlib: %s)", src->path, what, error);
  return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" is truncated: %s has %zu of its "
                      "%zu bytes%s%s", src->path, what, got, wanted, error ? "; zlib: " : "",
                      error ? error : "");
}

/* Reads the magic number and dimensions into idx and computes the data
   size; checks them against expected_magic and the file size. */
static ad_status read_header(ad_ctx *ctx, byte_source *src, uint32_t expected_magic, nn_idx *idx,
                             uint64_t *data_size) {
  const char *path = src->path, *error;
  unsigned char head[4 + 4 * NN_IDX_MAX_DIMS];
  size_t got = read_bytes(src, head, 4, &error);
  if (got < 4) return short_read(ctx, src, "the magic number", got, 4, error);
  uint32_t magic = be32(head);
  int type = head[2], ndim = head[3];
  if (head[0] != 0 || head[1] != 0 || ndim < 1 || ndim > NN_IDX_MAX_DIMS)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" is not an IDX file: magic number "
                        "0x%08x must be 0x0000TTDD with 1 to %d dimensions DD", path, magic,
                        NN_IDX_MAX_DIMS);
  if (expected_magic && magic != expected_magic)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" has magic number 0x%08x, "
                        "expected 0x%08x (%s)", path, magic, expected_magic,
                        expected_magic == NN_IDX_MAGIC_IMAGES   ? "images"
                        : expected_magic == NN_IDX_MAGIC_LABELS ? "labels"
                                                                : "as requested");
  if (type != 0x08)
    return ad_set_error(ctx, AD_ERR_NOT_IMPLEMENTED, "nn_idx_load: \"%s\" has element type 0x%02x;"
                        " only unsigned bytes (0x08) are supported", path, type);
  size_t dims_bytes = 4 * (size_t)ndim;
  got = read_bytes(src, head + 4, dims_bytes, &error);
  if (got < dims_bytes) return short_read(ctx, src, "the dimensions", got, dims_bytes, error);
  uint64_t size = 1;
  for (int d = 0; d < ndim; d++) {
    uint32_t dim = be32(head + 4 + 4 * d);
    idx->dims[d] = dim;
    if (dim && size > (uint64_t)INT64_MAX / dim)
      return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: the dimensions of \"%s\" overflow: "
                          "their product exceeds 2^63 bytes", path);
    size *= dim;
  }
  idx->magic = magic;
  idx->ndim = ndim;
  uint64_t header = 4 + dims_bytes;
  uint64_t available = src->file ? src->file_size - header : 0;
  if (src->file && size > available)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" is truncated: its dimensions "
                        "describe %llu bytes of data but only %llu follow the %llu-byte header",
                        path, (unsigned long long)size, (unsigned long long)available,
                        (unsigned long long)header);
  if (src->file && size < available)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" has more data than its "
                        "dimensions describe: %llu bytes follow the %llu-byte header instead of "
                        "%llu", path, (unsigned long long)available, (unsigned long long)header,
                        (unsigned long long)size);
  if (src->gz && size / GZIP_MAX_RATIO > src->file_size)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: the dimensions of \"%s\" describe %llu "
                        "bytes, more than a gzip file of %llu bytes can hold", path,
                        (unsigned long long)size, (unsigned long long)src->file_size);
  if (size > SIZE_MAX)
    return ad_set_error(ctx, AD_ERR_MEMORY, "nn_idx_load: \"%s\" holds %llu bytes, more than "
                        "this machine can address", path, (unsigned long long)size);
  *data_size = size;
  return AD_OK;
}

/* Reads the data that follows the header and checks that nothing follows it. */
static ad_status read_data(ad_ctx *ctx, byte_source *src, nn_idx *idx) {
  const char *error;
  size_t got = read_bytes(src, idx->data, idx->size, &error);
  if (got < idx->size) return short_read(ctx, src, "the data", got, idx->size, error);
  unsigned char extra;
  if (read_bytes(src, &extra, 1, &error) != 0)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" has more data than its "
                        "dimensions describe (%zu bytes)", src->path, idx->size);
  if (error)
    return ad_set_error(ctx, AD_ERR_FORMAT, "nn_idx_load: \"%s\" is damaged after its data: %s",
                        src->path, error);
  return AD_OK;
}

ad_status nn_idx_load(ad_ctx *ctx, const char *path, uint32_t expected_magic, nn_idx *idx) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!path || !idx)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_idx_load: the %s is NULL",
                        path ? "output" : "path");
  memset(idx, 0, sizeof *idx);
  byte_source src;
  ad_status status = open_source(ctx, path, &src);
  if (status != AD_OK) return status;
  uint64_t size = 0;
  nn_idx loaded = {.ctx = ctx};
  status = read_header(ctx, &src, expected_magic, &loaded, &size);
  if (status == AD_OK) {
    loaded.size = (size_t)size;
    loaded.data = ad_malloc(ctx, loaded.size ? loaded.size : 1);
    status = loaded.data ? read_data(ctx, &src, &loaded) : AD_ERR_MEMORY;
  }
  close_source(&src);
  if (status != AD_OK) {
    if (loaded.data) ad_free(ctx, loaded.data, loaded.size ? loaded.size : 1);
    return status;
  }
  *idx = loaded;
  return AD_OK;
}

void nn_idx_release(nn_idx *idx) {
  if (!idx || !idx->ctx) return;
  if (idx->data) ad_free(idx->ctx, idx->data, idx->size ? idx->size : 1);
  memset(idx, 0, sizeof *idx);
}

/* ---- Image sets ------------------------------------------------------ */

ad_status nn_image_set_load(ad_ctx *ctx, const char *images_path, const char *labels_path,
                            nn_image_set *set) {
  const char *fn = "nn_image_set_load";
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!images_path || !labels_path || !set)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the paths and the output must not be NULL", fn);
  memset(set, 0, sizeof *set);
  nn_idx images, labels;
  ad_status status = nn_idx_load(ctx, images_path, NN_IDX_MAGIC_IMAGES, &images);
  if (status != AD_OK) return status;
  status = nn_idx_load(ctx, labels_path, NN_IDX_MAGIC_LABELS, &labels);
  if (status != AD_OK) {
    nn_idx_release(&images);
    return status;
  }
  if (images.dims[0] != labels.dims[0])
    status = ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" has %lld images but \"%s\" has %lld "
                          "labels; the counts must match", fn, images_path,
                          (long long)images.dims[0], labels_path, (long long)labels.dims[0]);
  else if (images.size == 0)
    status = ad_set_error(ctx, AD_ERR_FORMAT, "%s: \"%s\" holds no pixels (dimensions %lld x %lld "
                          "x %lld)", fn, images_path, (long long)images.dims[0],
                          (long long)images.dims[1], (long long)images.dims[2]);
  if (status != AD_OK) {
    nn_idx_release(&images);
    nn_idx_release(&labels);
    return status;
  }
  int max_label = 0;
  for (size_t i = 0; i < labels.size; i++)
    if (labels.data[i] > max_label) max_label = labels.data[i];
  *set = (nn_image_set){.ctx = ctx, .count = images.dims[0], .rows = images.dims[1],
                        .cols = images.dims[2], .classes = max_label + 1, .images = images.data,
                        .labels = labels.data, .mean = 0, .std = 1, .image_file = images,
                        .label_file = labels};
  return AD_OK;
}

void nn_image_set_release(nn_image_set *set) {
  if (!set) return;
  nn_idx_release(&set->image_file);
  nn_idx_release(&set->label_file);
  memset(set, 0, sizeof *set);
}

void nn_image_set_limit(nn_image_set *set, int64_t count) {
  if (set && count >= 0 && count < set->count) set->count = count;
}

void nn_image_set_stats(const nn_image_set *set, double *mean, double *std) {
  double m = 0, s = 0;
  if (set && set->count > 0) {
    int64_t n = set->count * set->rows * set->cols;
    uint64_t sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < n; i++) {
      sum += set->images[i];
      sum_sq += (uint64_t)set->images[i] * set->images[i];
    }
    m = (double)sum / (double)n / 255.0;
    double var = (double)sum_sq / (double)n / (255.0 * 255.0) - m * m;
    s = sqrt(var > 0 ? var : 0);
  }
  if (mean) *mean = m;
  if (std) *std = s;
}

/* Pixels in a batch below which converting it on one thread is faster
   than waking others. */
#define CONVERT_PARALLEL_MIN (1 << 15)

/* Converting a batch's rows from bytes to standardised float32. */
typedef struct convert_job {
  const nn_image_set *set;
  const int64_t *indices;
  float *out;
  int64_t count; /* rows in the batch */
  int64_t features;
  float scale, shift; /* (p / 255 - mean) / std as one multiply-add per pixel */
} convert_job;

/* Rows per task: enough work per claim to keep the claims cheap. */
#define CONVERT_ROWS_PER_TASK 8

/* Converts rows [task * CONVERT_ROWS_PER_TASK, ...) of the batch. */
static void convert_rows(void *user, int64_t task) {
  const convert_job *job = user;
  int64_t first = task * CONVERT_ROWS_PER_TASK;
  int64_t last = first + CONVERT_ROWS_PER_TASK < job->count ? first + CONVERT_ROWS_PER_TASK
                                                            : job->count;
  for (int64_t i = first; i < last; i++) {
    const uint8_t *pixels = job->set->images + job->indices[i] * job->features;
    float *row = job->out + i * job->features;
    for (int64_t j = 0; j < job->features; j++)
      row[j] = (float)pixels[j] * job->scale + job->shift;
  }
}

ad_status nn_image_set_batch(ad_ctx *ctx, void *data, const int64_t *indices, int64_t count,
                             ad_tensor **x, ad_tensor **y) {
  const char *fn = "nn_image_set_batch";
  if (!ctx) return AD_ERR_ARGUMENT;
  const nn_image_set *set = data;
  if (!set || !indices || !x || !y || count < 1)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: needs a set, indices, outputs and count >= 1 "
                        "(count %lld)", fn, (long long)count);
  if (!(set->std > 0) || !isfinite(set->mean))
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: normalisation mean %g and std %g must be "
                        "finite with std > 0", fn, set->mean, set->std);
  int64_t features = set->rows * set->cols;
  ad_tensor *xt = ad_zeros(ctx, AD_F32, 2, (const int64_t[]){count, features});
  ad_tensor *yt = ad_zeros(ctx, AD_I64, 1, &count);
  if (!xt || !yt) return ad_errcode(ctx);
  float *xd = ad_data_f32_mut(xt);
  int64_t *yd = ad_data_i64_mut(yt);
  for (int64_t i = 0; i < count; i++) {
    int64_t s = indices[i];
    if (s < 0 || s >= set->count)
      return ad_set_error(ctx, AD_ERR_INDEX, "%s: sample index %lld at position %lld is outside "
                          "[0, %lld)", fn, (long long)s, (long long)i, (long long)set->count);
    yd[i] = set->labels[s];
  }
  /* The rows are independent, so the context's threads share them. */
  convert_job job = {set, indices, xd, count, features, (float)(1.0 / (255.0 * set->std)),
                     (float)(-set->mean / set->std)};
  int64_t tasks = (count + CONVERT_ROWS_PER_TASK - 1) / CONVERT_ROWS_PER_TASK;
  if (count * features >= CONVERT_PARALLEL_MIN) ad_parallel_for(ctx, tasks, convert_rows, &job);
  else
    for (int64_t t = 0; t < tasks; t++) convert_rows(&job, t);
  *x = xt;
  *y = yt;
  return AD_OK;
}
