/*
 * nn_monitor.h: watching training: gradient health after backward and a
 * training log written as CSV and plotted as SVG.
 */
#ifndef NN_MONITOR_H
#define NN_MONITOR_H

#include <stdio.h>

#include "nn_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Gradient health --------------------------------------------------- */

/* Gradient figures of one parameter. */
typedef struct nn_grad_stat {
  char name[NN_NAME_MAX]; /* the parameter's name in the list, such as "3.weight" */
  int64_t numel;
  bool has_grad;      /* false before the first backward pass that reached it */
  double norm;        /* Euclidean norm of the gradient, 0 without one */
  double rms;         /* norm / sqrt(numel): comparable across layer sizes */
  double max_abs;     /* largest |element| of the gradient */
  double param_norm;  /* Euclidean norm of the parameter itself */
  int64_t nonfinite;  /* NaN and infinite elements of the gradient */
} nn_grad_stat;

/* Gradient figures of one layer: the parameters whose names share the part
   before the last dot ("3.weight" and "3.bias" form layer "3"). */
typedef struct nn_grad_layer {
  char name[NN_NAME_MAX]; /* "" for parameters without a dot */
  int first_param;        /* index of its first parameter in stats */
  int param_count;
  double norm;            /* Euclidean norm of all its gradients together */
  int64_t numel;
  int64_t nonfinite;
} nn_grad_layer;

/* The gradient health of a list of parameters. */
typedef struct nn_grad_report {
  ad_ctx *ctx;
  int count;              /* parameters */
  nn_grad_stat *stats;    /* count entries, in the list's order */
  int layer_count;
  nn_grad_layer *layers;  /* one entry per run of consecutive parameters of one layer */
  double global_norm;     /* Euclidean norm of every gradient together, as clipping uses */
  int64_t nonfinite;      /* NaN and infinite gradient elements in all */
} nn_grad_report;

/* Computes the report of every tensor in params from its accumulated
   gradient (ad_grad), in double precision. The report's arrays are
   allocated through params->ctx. On failure (AD_ERR_ARGUMENT for a NULL
   list, AD_ERR_MEMORY) *report is empty. Release with
   nn_grad_report_release(). */
ad_status nn_grad_report_compute(const nn_tensor_list *params, nn_grad_report *report);

/* Frees the report's arrays and empties it. Accepts an empty report. */
void nn_grad_report_release(nn_grad_report *report);

/* Prints one table row per parameter: name, element count, gradient
   norm, rms, max |grad|, parameter norm and a bar whose length is the norm on
   a log scale from 1e-12 to 1e+3, then the global norm. Rows whose gradient
   contains NaN or inf count them. Returns AD_ERR_IO after a failed write. */
ad_status nn_grad_report_print(const nn_grad_report *report, FILE *stream);

/* The Euclidean norm of all gradients of params together (0 for tensors
   without a gradient), or NaN when params is NULL. Does not change the
   gradients: use nn_clip_grad_norm to clip. */
double nn_grad_global_norm(const nn_tensor_list *params);

/* ---- Training log -------------------------------------------------------- */

/* One row of the log. Any value may be NaN (not measured, or diverged). */
typedef struct nn_train_record {
  int64_t step;         /* optimizer steps so far */
  int64_t epoch;
  double loss;
  double accuracy;      /* a fraction in [0, 1] */
  double learning_rate;
  double grad_norm;     /* the global gradient norm before clipping */
} nn_train_record;

typedef struct nn_train_log nn_train_log;

/* Creates (or truncates) the CSV file at path and writes its header line
   "step,epoch,loss,accuracy,learning_rate,grad_norm". Returns NULL after
   recording AD_ERR_IO or AD_ERR_MEMORY. Close with nn_train_log_close(). */
nn_train_log *nn_train_log_open(ad_ctx *ctx, const char *path);

/* Appends one row to the file, flushed so that a crash loses no rows, and
   keeps a copy for plotting. NaN is written as "nan" and infinities as
   "inf" and "-inf", which Python's float() and pandas read back. Returns
   AD_ERR_IO after a failed write, AD_ERR_MEMORY when the copy cannot grow. */
ad_status nn_train_log_append(nn_train_log *log, const nn_train_record *record);

/* The rows appended so far; valid until the next append or the close. */
int64_t nn_train_log_count(const nn_train_log *log);
const nn_train_record *nn_train_log_records(const nn_train_log *log);

/* Closes the file and frees the log. Returns AD_ERR_IO when closing the file
   failed (its last rows may be lost). Accepts NULL. */
ad_status nn_train_log_close(nn_train_log *log);

/* Plots count logs against their steps as one SVG file of four panels:
   loss (log scale), accuracy, learning rate and gradient norm (log scale),
   with one line per log named names[i] (names may be NULL for a single log).
   title, when not NULL, leads each panel's title. A panel whose values are
   all NaN shows a message instead of lines. Returns the status of
   nn_plot_save_svg. */
ad_status nn_train_log_plot(ad_ctx *ctx, const nn_train_log *const *logs,
                            const char *const *names, int count, const char *title,
                            const char *path);

#ifdef __cplusplus
}
#endif

#endif /* NN_MONITOR_H */
