/* trace.c: reporting each step of the reverse sweep to a caller's function. */
#include "trace.h"

ad_status ad_set_backward_trace(ad_ctx *ctx, ad_trace_fn fn, void *user) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!fn) {
    if (ctx->trace) ctx_free(ctx, ctx->trace, sizeof *ctx->trace);
    ctx->trace = NULL;
    return AD_OK;
  }
  if (!ctx->trace) {
    ctx->trace = ctx_alloc(ctx, sizeof *ctx->trace);
    if (!ctx->trace)
      return fail(ctx, AD_ERR_MEMORY, "ad_set_backward_trace: out of memory for the hook");
  }
  ctx->trace->fn = fn;
  ctx->trace->user = user;
  return AD_OK;
}

ad_status trace_step(ad_ctx *ctx, const bw_args *args) {
  ad_tensor *out = args->out;
  int n = input_count(out);
  const char *name = "ad_backward (trace)";
  ad_tensor **parts = arena_alloc(ctx, (size_t)n * sizeof *parts, 16, name);
  ad_tensor **inputs = arena_alloc(ctx, (size_t)n * sizeof *inputs, 16, name);
  void **gin = arena_alloc(ctx, (size_t)n * sizeof *gin, 16, name);
  bool *fresh = arena_alloc(ctx, (size_t)n, 16, name);
  ad_tensor *upstream = tensor_like(ctx, name, out);
  if (!parts || !inputs || !gin || !fresh || !upstream) return ctx->error;
  memcpy(upstream->data, args->gout, (size_t)out->numel * ad_dtype_size((ad_dtype)out->dtype));
  for (int i = 0; i < n; i++) {
    inputs[i] = input_at(out, i);
    parts[i] = NULL;
    gin[i] = NULL;
    fresh[i] = true;
    if (!args->gin[i]) continue;
    parts[i] = tensor_like(ctx, name, inputs[i]);
    if (!parts[i]) return ctx->error;
    gin[i] = parts[i]->data;
  }
  bw_args local = {out, args->gout, gin, fresh};
  ad_status st = op_table[out->op].backward(ctx, &local);
  if (st != AD_OK) return st;
  ad_trace_step step = {.op = out->op - 1,
                        .op_name = op_table[out->op].name,
                        .output = out,
                        .upstream = upstream,
                        .ninputs = n,
                        .inputs = (const ad_tensor *const *)inputs,
                        .input_grads = (const ad_tensor *const *)parts};
  ctx->trace->fn(ctx->trace->user, &step);
  for (int i = 0; i < n; i++)
    if (parts[i])
      acc_copy((ad_dtype)inputs[i]->dtype, args->gin[i], parts[i]->data, inputs[i]->numel,
               args->fresh[i]);
  return AD_OK;
}
