/*
 * nn_data.h: IDX files and image sets (MNIST, Fashion-MNIST).
 *
 * An IDX file is a 4-byte big-endian magic number (two zero bytes, a type
 * byte, the number of dimensions), one big-endian uint32 per dimension, and
 * the elements in row-major order. This reader accepts unsigned bytes (type
 * 0x08), as MNIST uses for images (magic 0x00000803) and labels (0x00000801).
 * Files may be gzip-compressed; gzip is detected by its magic bytes 1f 8b,
 * not by the file name.
 */
#ifndef NN_DATA_H
#define NN_DATA_H

#include "nn_train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The maximum number of dimensions this reader accepts. */
#define NN_IDX_MAX_DIMS 4

/* The magic numbers of MNIST's image and label files. */
#define NN_IDX_MAGIC_IMAGES 0x00000803u
#define NN_IDX_MAGIC_LABELS 0x00000801u

/* The contents of an IDX file of unsigned bytes. */
typedef struct nn_idx {
  ad_ctx *ctx;
  uint32_t magic;
  int ndim;
  int64_t dims[NN_IDX_MAX_DIMS];
  uint8_t *data; /* size bytes, allocated through ctx */
  size_t size;
} nn_idx;

/* Reads the IDX file at path into *idx. When expected_magic is not 0 the
   file's magic number must equal it. Fails with AD_ERR_IO when the file
   cannot be opened or read, AD_ERR_FORMAT when it is truncated, longer than
   its dimensions describe, not IDX, or has another magic number, and
   AD_ERR_NOT_IMPLEMENTED for element types other than unsigned bytes. The
   message names the file. On failure *idx is empty. Release with
   nn_idx_release(). */
ad_status nn_idx_load(ad_ctx *ctx, const char *path, uint32_t expected_magic, nn_idx *idx);
void nn_idx_release(nn_idx *idx);

/* A labelled image set kept as bytes: count images of rows x cols pixels
   and count labels. */
typedef struct nn_image_set {
  ad_ctx *ctx;
  int64_t count;
  int64_t rows, cols;
  int64_t classes;        /* the largest label + 1 */
  const uint8_t *images;  /* [count, rows * cols], row-major */
  const uint8_t *labels;  /* [count] */
  float mean, std;        /* batches hold (pixel / 255 - mean) / std; 0 and 1 at load */
  nn_idx image_file, label_file; /* owners of the bytes */
} nn_image_set;

/* Loads an image file (magic 0x00000803) and a label file (0x00000801).
   Fails with AD_ERR_FORMAT when either is broken (see nn_idx_load), when the
   counts differ, or when the image file contains no pixels. On failure *set is empty.
   Release with nn_image_set_release(). */
ad_status nn_image_set_load(ad_ctx *ctx, const char *images_path, const char *labels_path,
                            nn_image_set *set);
void nn_image_set_release(nn_image_set *set);

/* Keeps only the first count samples (no copy); a larger count changes
   nothing. */
void nn_image_set_limit(nn_image_set *set, int64_t count);

/* The mean and standard deviation (population) of all pixels of the set,
   scaled to [0, 1]. */
void nn_image_set_stats(const nn_image_set *set, double *mean, double *std);

/* Builds a batch of the samples indices[0 .. count) as arena tensors: x
   float32 [count, rows * cols] holding (pixel / 255 - mean) / std, and y
   int64 [count] holding the labels. data is the nn_image_set; the signature
   is that of nn_batch_fn. */
ad_status nn_image_set_batch(ad_ctx *ctx, void *data, const int64_t *indices, int64_t count,
                             ad_tensor **x, ad_tensor **y);

#ifdef __cplusplus
}
#endif

#endif /* NN_DATA_H */
