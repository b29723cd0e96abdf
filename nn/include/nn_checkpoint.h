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

/* Writes every tensor of list to path. The file is written under a
   temporary name in the same directory, flushed to disk (fsync) and renamed
   over path, so path contains either the old file or the complete new one, even
   after a crash. Fails with AD_ERR_IO when a write fails (the temporary file
   is removed) and AD_ERR_ARGUMENT for an empty list. */
ad_status nn_checkpoint_save(ad_ctx *ctx, const char *path, const nn_tensor_list *list);

/* Reads path into the tensors of list. The file must contain exactly the names
   in list, each with the dtype and shape of its tensor, and a data section
   whose XXH3 hash matches "xxh3_64" when the metadata contains one (files
   from other writers may lack it). Everything is validated in scratch memory
   before the first tensor is written, so on any failure (AD_ERR_IO,
   AD_ERR_FORMAT with the file, name and reason in the message) no tensor
   has changed. */
ad_status nn_checkpoint_load(ad_ctx *ctx, const char *path, const nn_tensor_list *list);

#ifdef __cplusplus
}
#endif

#endif /* NN_CHECKPOINT_H */
