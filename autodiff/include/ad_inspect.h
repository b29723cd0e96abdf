/*
 * ad_inspect.h: looking inside the tape.
 *
 *   tracing      a hook called for every entry of the reverse sweep, and a
 *                ready-made hook that prints each entry as text
 *   graph export the recorded graph behind a tensor as Graphviz DOT
 *
 * Both label tensors with the names of an ad_tensor_names table, so that a
 * printed step reads "dL/dW1" instead of "input 1 of linear".
 */
#ifndef AD_INSPECT_H
#define AD_INSPECT_H

#include "ad_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One entry of the reverse sweep, as ad_backward and ad_gradients (without
   AD_CREATE_GRAPH) process it. All tensors are valid during the call only. */
typedef struct ad_trace_step {
  int op;                     /* the operation kind, as in ad_op_name */
  const char *op_name;
  const ad_tensor *output;    /* the recorded tensor */
  const ad_tensor *upstream;  /* d loss / d output as accumulated so far (complete) */
  int ninputs;
  const ad_tensor *const *inputs;
  /* The gradient this entry sends to each input, or NULL for an input that
     needs none. The sweep adds it into that input's accumulated gradient. */
  const ad_tensor *const *input_grads;
} ad_trace_step;

typedef void (*ad_trace_fn)(void *user, const ad_trace_step *step);

/* Calls fn after every entry of every later fused sweep on ctx, newest entry
   first; fn NULL stops tracing. Tracing copies every gradient it reports, so
   it is meant for teaching and debugging, not for training. */
ad_status ad_set_backward_trace(ad_ctx *ctx, ad_trace_fn fn, void *user);

/* ---- Naming tensors ---------------------------------------------------- */

/* A table of names for tensors: tensors[i] is called names[i]. The arrays
   belong to the caller and must stay valid while a printer or an export
   reads them. Lookups compare pointers, so a name follows one tensor
   object, not its values. */
typedef struct ad_tensor_names {
  int count;
  const ad_tensor *const *tensors;
  const char *const *names;
} ad_tensor_names;

/* Returns the name of t in names, or NULL when names is NULL or does not
   list t. */
const char *ad_tensor_names_find(const ad_tensor_names *names, const ad_tensor *t);

/* ---- Printing the backward sweep --------------------------------------- */

/* The state of ad_trace_print. Zero-initialise it, set stream (and
   optionally the other inputs), then pass its address as the user pointer
   of ad_set_backward_trace. */
typedef struct ad_trace_printer {
  FILE *stream;                /* where the text goes */
  const ad_tensor_names *names; /* labels for tensors, or NULL */
  const char *loss_name;       /* numerator of the printed derivatives, dL/dx; NULL picks "L" */
  int value_limit;             /* print the elements of tensors with at most this many; 0 picks 16,
                                  negative prints shapes only */
  int precision;               /* significant digits; 0 picks 6 */
  int steps;                   /* entries printed so far, which numbers the next one */
  ad_status status;            /* AD_ERR_IO after a failed write; later entries print nothing */
} ad_trace_printer;

/* An ad_trace_fn that prints one entry of the sweep: the operation, the
   upstream gradient it received and the gradient it sent to each input,
   each labelled with its name from printer->names. user must point to an
   ad_trace_printer. A write error sets printer->status to AD_ERR_IO, because
   a trace function cannot return a status. */
void ad_trace_print(void *user, const ad_trace_step *step);

/* ---- Graph export ------------------------------------------------------ */

/* Flags of ad_dot_options. */
enum {
  /* Show d output / d tensor on every drawn tensor that requires a
     gradient and has at most value_limit elements, computed with one extra
     sweep (ad_gradients) that leaves accumulated gradients unchanged.
     output must then have one element. Without this flag only leaves
     show a gradient, the one ad_backward accumulated (ad_grad). */
  AD_DOT_GRADIENTS = 1u << 0,
  /* Draw inputs on the left and the output on the right instead of
     inputs at the top. */
  AD_DOT_LEFT_TO_RIGHT = 1u << 1,
  /* Add a legend that explains the node shapes and colours. */
  AD_DOT_LEGEND = 1u << 2
};

/* Options of ad_graph_dot. A zero-initialised struct selects the defaults. */
typedef struct ad_dot_options {
  const ad_tensor_names *names; /* labels for tensors, or NULL */
  int value_limit;  /* show values (and gradients) of tensors with at most this many
                       elements; 0 picks 8, negative shows none */
  int max_depth;    /* draw tensors at most this many edges above the output; 0: no limit */
  int max_nodes;    /* draw at most this many tensors; 0: no limit */
  unsigned flags;   /* AD_DOT_* */
  const char *title; /* a label printed above the graph, or NULL */
} ad_dot_options;

/* Writes the recorded graph that produced output to stream as a Graphviz
   DOT digraph, walking from output to the leaves. Each tensor is one node
   that shows its operation (or its name), shape and dtype, and, when it is
   small enough, its values and gradient. Operations are rounded blue boxes,
   parameters (leaves that require a gradient) gold boxes, constants and
   inputs grey ellipses, and the output has a double border. A tensor whose
   value or gradient contains NaN or inf is red and states the counts. Edges
   run from input to consumer; inputs that never receive a gradient (indices,
   masks) have dashed edges. Where max_depth or max_nodes stops the walk, a
   dashed "not shown" node counts the hidden inputs. Render the text with
   "dot -Tsvg graph.dot -o graph.svg". options may be NULL.
   Returns AD_OK, AD_ERR_ARGUMENT, AD_ERR_CONTEXT, AD_ERR_MEMORY, AD_ERR_IO
   after a failed write (part of the text may have been written), or the
   error of the gradient sweep of AD_DOT_GRADIENTS. The stream stays open. */
ad_status ad_graph_dot(ad_ctx *ctx, const ad_tensor *output, FILE *stream,
                       const ad_dot_options *options);

#ifdef __cplusplus
}
#endif

#endif /* AD_INSPECT_H */
