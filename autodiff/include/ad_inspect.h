/*
 * ad_inspect.h: looking inside the tape.
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

#ifdef __cplusplus
}
#endif

#endif /* AD_INSPECT_H */
