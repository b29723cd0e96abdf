/* trace.h: the backward trace hook of ad_set_backward_trace. */
#ifndef AD_TRACE_H
#define AD_TRACE_H

#include "ad_inspect.h"
#include "internal.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden) /* see internal.h */
#endif

struct trace_hook {
  ad_trace_fn fn;
  void *user;
};

/* Runs the fused kernel of args->out into fresh buffers, reports them to the
   trace function, then adds them into args->gin as the kernel would have. */
ad_status trace_step(ad_ctx *ctx, const bw_args *args);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* AD_TRACE_H */
