/* trace.h: the backward trace hook of ad_set_backward_trace. */
#ifndef AD_TRACE_H
#define AD_TRACE_H

#include "ad_inspect.h"
#include "internal.h"

struct trace_hook {
  ad_trace_fn fn;
  void *user;
};

/* Runs the fused kernel of args->out into fresh buffers, reports them to the
   trace function, then adds them into args->gin as the kernel would have. */
ad_status trace_step(ad_ctx *ctx, const bw_args *args);

#endif /* AD_TRACE_H */
