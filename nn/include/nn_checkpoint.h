/*
 * nn_checkpoint.h: saving and loading named tensors as safetensors files.
 *
 * The file is an 8-byte little-endian header length N, a JSON header of N
 * bytes mapping each tensor name to {"dtype": "F32" | "F64" | "I64",
 * "shape": [...], "data_offsets": [begin, end]} (offsets relative to the
 * data section, which the tensors tile without gaps), and the raw
 * little-endian data. The header's "__metadata__" object maps keys to strings.
 * This module writes "format": "pt" and "xxh3_64", the XXH3 64-bit hash of
 * the data section as 16 lowercase hexadecimal digits.
 */
#ifndef NN_CHECKPOINT_H
#define NN_CHECKPOINT_H

#include "nn_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest header accepted on load, as the safetensors library limits it. */
#define NN_CHECKPOINT_MAX_HEADER 100000000u

/* ---- Metadata -------------------------------------------------------- */

/* Limits of an nn_metadata: entries, and bytes of a key and of a value,
   each with its terminating NUL. */
#define NN_METADATA_MAX_ENTRIES 32
#define NN_METADATA_KEY_MAX 64
#define NN_METADATA_VALUE_MAX 256

typedef struct nn_metadata_entry {
  char key[NN_METADATA_KEY_MAX];
  char value[NN_METADATA_VALUE_MAX];
} nn_metadata_entry;

/* String keys and values of the header's "__metadata__" object, held by
   value without allocations. Initialize with {0} for an empty set. */
typedef struct nn_metadata {
  int count;
  nn_metadata_entry entries[NN_METADATA_MAX_ENTRIES];
} nn_metadata;

/* Adds key with value to metadata, or replaces the value of an existing
   key. Fails with AD_ERR_ARGUMENT, leaving metadata unchanged, on an empty
   key, a key or value that is too long or not valid UTF-8, a full set, or
   the keys "format" and "xxh3_64", which the saves write themselves. */
ad_status nn_metadata_set(ad_ctx *ctx, nn_metadata *metadata, const char *key,
                          const char *value);

/* Returns the value of key in metadata, or NULL when it has no such key. */
const char *nn_metadata_get(const nn_metadata *metadata, const char *key);

/* ---- Saving and loading ---------------------------------------------- */

/* Writes every tensor of list to path. The file is written under a
   temporary name in the same directory, flushed to disk (fsync) and renamed
   over path, so path contains either the old file or the complete new one,
   even after a crash.
   Fails before writing anything with AD_ERR_IO when path exists and is not
   a regular file, because a symbolic link, directory, FIFO or device is
   never replaced, or when its directory is missing or not writable. Fails
   with AD_ERR_ARGUMENT for an empty list or a tensor named "__metadata__",
   which the safetensors format reserves. A failed write also returns
   AD_ERR_IO, and the temporary file is then removed. */
ad_status nn_checkpoint_save(ad_ctx *ctx, const char *path, const nn_tensor_list *list);

/* Like nn_checkpoint_save, and also writes the entries of metadata (may be
   NULL) into the header's "__metadata__" object, after "format" and
   "xxh3_64". An invalid entry fails with AD_ERR_ARGUMENT before anything is
   written. */
ad_status nn_checkpoint_save_with_metadata(ad_ctx *ctx, const char *path,
                                           const nn_tensor_list *list,
                                           const nn_metadata *metadata);

/* Checks that a save to path could succeed, without writing anything: path
   is not empty, names nothing or a regular file, and its directory exists
   and is writable. Returns AD_OK, or AD_ERR_IO (AD_ERR_ARGUMENT for an empty
   path) with the reason in the message. A save may still fail later, for
   example on a full disk. */
ad_status nn_checkpoint_check_path(ad_ctx *ctx, const char *path);

/* Reads path into the tensors of list. The file must contain exactly the names
   in list, each with the dtype and shape of its tensor, and a data section
   whose XXH3 hash matches "xxh3_64" when the metadata contains one (files
   from other writers may lack it). Everything is validated in scratch memory
   before the first tensor is written, so on any failure (AD_ERR_IO,
   AD_ERR_FORMAT with the file, name and reason in the message) no tensor
   has changed. A path that is not a regular file, such as a FIFO, fails
   with AD_ERR_IO without waiting for data. */
ad_status nn_checkpoint_load(ad_ctx *ctx, const char *path, const nn_tensor_list *list);

/* Reads only the header of path and stores every entry of its
   "__metadata__" object in metadata, "format" and "xxh3_64" included. Fails
   with AD_ERR_IO or AD_ERR_FORMAT, leaving metadata unchanged, when the file
   cannot be read, its header is invalid, or the metadata exceeds the limits
   of nn_metadata. The data section is not read or checked. */
ad_status nn_checkpoint_read_metadata(ad_ctx *ctx, const char *path, nn_metadata *metadata);

#ifdef __cplusplus
}
#endif

#endif /* NN_CHECKPOINT_H */
