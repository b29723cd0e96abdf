/*
 * nn_train.h: mini-batches, evaluation and progress reports.
 *
 * Only the progress functions print, and only to the stream their caller
 * passes.
 */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <stdio.h>

#include "nn_layer.h"
#include "nn_loss.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Mini-batches ---------------------------------------------------- */

/* The sample order of an epoch, split into batches of batch_size samples.
   The last batch is smaller when batch_size does not divide count, unless
   drop_last drops it. */
typedef struct nn_batcher {
  ad_ctx *ctx;
  int64_t count;      /* samples */
  int64_t batch_size;
  bool drop_last;
  int64_t *order;     /* count sample indices, a permutation of 0 .. count - 1 */
} nn_batcher;

/* Creates a batcher over count >= 1 samples in the order 0 .. count - 1.
   Returns NULL on failure. Free with nn_batcher_free(). */
nn_batcher *nn_batcher_new(ad_ctx *ctx, int64_t count, int64_t batch_size, bool drop_last);
void nn_batcher_free(nn_batcher *batcher);

/* Resets the order to 0 .. count - 1 and shuffles it with Fisher-Yates
   driven by ad_rng_below(rng), so the order depends only on rng's state. */
void nn_batcher_shuffle(nn_batcher *batcher, ad_rng *rng);

/* The number of batches of an epoch. */
int64_t nn_batcher_batches(const nn_batcher *batcher);

/* Points *indices at the sample indices of batch number batch and returns
   how many there are, or 0 for a batch outside [0, nn_batcher_batches). */
int64_t nn_batcher_batch(const nn_batcher *batcher, int64_t batch, const int64_t **indices);

/* ---- Evaluation ------------------------------------------------------ */

/* Builds the input x and target y of the samples indices[0 .. count) as
   arena tensors of ctx. Returns AD_OK, or an error after recording it. */
typedef ad_status (*nn_batch_fn)(ad_ctx *ctx, void *data, const int64_t *indices, int64_t count,
                                 ad_tensor **x, ad_tensor **y);

typedef struct nn_eval_result {
  double loss;     /* the mean loss per sample */
  double accuracy; /* the fraction of samples whose largest output is the target
                      class, or NaN when the target is not int64 class indices */
  int64_t samples;
} nn_eval_result;

/* The largest batch nn_evaluate runs; larger batch sizes are cut to it. */
#define NN_EVAL_MAX_BATCH 4096

/*
 * Runs model in evaluation mode with recording off over samples 0 .. count-1
 * in batches of batch_size (at most NN_EVAL_MAX_BATCH), loading each batch with
 * load(data), and stores the mean loss (loss with AD_REDUCE_SUM, divided by
 * count) and the accuracy in *result. Calls ad_ctx_reset(ctx) before each
 * batch, so arena tensors made before the call are invalid after it. The model's mode and the
 * recording setting are restored. On failure *result is unchanged.
 */
ad_status nn_evaluate(ad_ctx *ctx, nn_layer *model, nn_loss_fn loss, nn_batch_fn load,
                      void *data, int64_t count, int64_t batch_size, nn_eval_result *result);

/* The number of rows of logits [N, C] whose first largest entry is the
   int64 class in target [N], or -1 after recording an error: AD_ERR_DTYPE,
   AD_ERR_SHAPE, or AD_ERR_INDEX for a target outside [0, C). */
int64_t nn_count_correct(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target);

/* ---- Progress -------------------------------------------------------- */

typedef enum nn_progress_style {
  NN_PROGRESS_AUTO = 0, /* a bar on a terminal (isatty), otherwise one line */
  NN_PROGRESS_BAR,      /* a bar redrawn in place with carriage returns */
  NN_PROGRESS_LINE      /* one line at the end of the epoch */
} nn_progress_style;

/* The state of one epoch's report. */
typedef struct nn_progress {
  FILE *stream;
  nn_progress_style style; /* resolved: BAR or LINE */
  char label[64];          /* such as "epoch 3/20" */
  int64_t batches;         /* total */
  int64_t batches_done;
  int64_t samples_done;
  double loss_sum;         /* sum over batches of their mean loss */
  double start;            /* monotonic seconds */
  double last_draw;
} nn_progress;

/* Starts a report of batches batches on stream, labelled label. */
void nn_progress_begin(nn_progress *progress, FILE *stream, nn_progress_style style,
                       const char *label, int64_t batches);

/* Records a finished batch of samples samples with mean loss loss. In BAR
   style it redraws the bar at most 10 times per second and after the last
   batch. The bar shows the batches done, the mean loss so far, samples per
   second and the estimated time left. */
void nn_progress_update(nn_progress *progress, int64_t samples, double loss);

/* Finishes the report: BAR style ends the bar's line, LINE style prints
   its one line with the batches, mean loss, samples per second and seconds. */
void nn_progress_end(nn_progress *progress);

/* Seconds since nn_progress_begin. */
double nn_progress_elapsed(const nn_progress *progress);

#ifdef __cplusplus
}
#endif

#endif /* NN_TRAIN_H */
