/*
 * tape.c: recording, and the reverse sweep behind ad_backward and
 * ad_gradients.
 *
 * The tape is the list of recorded tensors, newest first through tape_prev.
 * Every input of an entry is older than the entry, so one pass from the
 * newest entry to the oldest visits each entry after all of its consumers:
 * when the pass reaches an entry, its accumulated gradient is complete. The
 * pass is a loop, so the tape's length is bounded by memory only.
 *
 * Two forms of the pass exist. The fused form (the default) keeps raw
 * gradient buffers in acc.buf and runs each operation's kernel. The graph
 * form (AD_CREATE_GRAPH) keeps gradient tensors in acc.t and runs each
 * operation's rule built from recorded operations, so the gradients can be
 * differentiated again.
 */
#include "internal.h"
#include "trace.h"

bool should_record(const ad_ctx *ctx, ad_tensor *a, ad_tensor *b, ad_tensor *c) {
  if (!ctx->grad_enabled) return false;
  return (a && requires_grad(a)) || (b && requires_grad(b)) || (c && requires_grad(c));
}

void record(ad_ctx *ctx, ad_tensor *out, op_kind op, ad_tensor *a, ad_tensor *b, ad_tensor *c) {
  out->op = (uint16_t)op;
  out->flags |= F_REQUIRES_GRAD;
  out->in[0] = a;
  out->in[1] = b;
  out->in[2] = c;
  out->nin = 0;
  if (a) out->nin = 1;
  if (b) out->nin = 2;
  if (c) out->nin = 3;
  for (int i = 0; i < out->nin; i++) out->in_version[i] = storage_owner(out->in[i])->version;
  out->tape_prev = ctx->tape_tail;
  ctx->tape_tail = out;
}

ad_tensor *maybe_record(ad_ctx *ctx, ad_tensor *out, op_kind op, ad_tensor *a, ad_tensor *b,
                        ad_tensor *c) {
  if (out && should_record(ctx, a, b, c)) record(ctx, out, op, a, b, c);
  return out;
}

/* ---- Leaf flags and gradients ---------------------------------------- */

ad_status ad_set_requires_grad(ad_tensor *t, bool requires) {
  if (!t) return AD_ERR_ARGUMENT;
  if (t->op != OP_LEAF)
    return fail(t->ctx, AD_ERR_GRAPH,
                "ad_set_requires_grad: the tensor of shape %s was produced by the recorded "
                "operation '%s'; only leaves take this flag (use ad_detach for a leaf copy)",
                tshape(t).s, op_table[t->op].name);
  if (requires && !is_float((ad_dtype)t->dtype))
    return fail(t->ctx, AD_ERR_DTYPE,
                "ad_set_requires_grad: a tensor of dtype %s cannot require a gradient; only "
                "float32 and float64 are differentiable",
                ad_dtype_name((ad_dtype)t->dtype));
  if (requires) t->flags |= F_REQUIRES_GRAD;
  else t->flags &= (uint8_t)~F_REQUIRES_GRAD;
  return AD_OK;
}

bool ad_requires_grad(const ad_tensor *t) { return t && requires_grad(t); }
bool ad_is_leaf(const ad_tensor *t) { return t && t->op == OP_LEAF; }

ad_tensor *ad_grad(ad_tensor *t) {
  if (!t || !t->grad) return NULL;
  /* During a sweep that accumulates into a stale grad (a trace function may
     ask), the data contains partial sums that must not be cleared. */
  if ((t->flags & F_GRAD_STALE) && !(t->flags & F_ACC_IN_GRAD)) {
    memset(t->grad->data, 0, (size_t)t->numel * ad_dtype_size((ad_dtype)t->dtype));
    t->flags &= (uint8_t)~F_GRAD_STALE;
  }
  return t->grad;
}

ad_status ad_zero_grad(ad_tensor *t) {
  if (!t) return AD_ERR_ARGUMENT;
  if (t->grad) t->flags |= F_GRAD_STALE;
  return AD_OK;
}

/* ---- The sweep ------------------------------------------------------ */

typedef struct sweep {
  ad_ctx *ctx;
  const char *name;      /* the public function, for messages */
  bool graph;            /* graph form */
  bool to_leaf_grads;    /* ad_backward: accumulate into leaves' grad */
  int ntargets;          /* ad_gradients: requested inputs */
  ad_tensor *const *targets;
  ad_tensor **results;   /* fused form: accumulator tensors of the targets */
} sweep;

static bool push_touched(ad_ctx *ctx, ad_tensor *t) {
  if (t->flags & F_TOUCHED) return true;
  if (ctx->touched_count == ctx->touched_capacity) {
    size_t cap = ctx->touched_capacity ? 2 * ctx->touched_capacity : 64;
    ad_tensor **grown = ctx_alloc(ctx, cap * sizeof *grown);
    if (!grown) return false;
    if (ctx->touched_count) memcpy(grown, ctx->touched, ctx->touched_count * sizeof *grown);
    ctx_free(ctx, ctx->touched, ctx->touched_capacity * sizeof *grown);
    ctx->touched = grown;
    ctx->touched_capacity = cap;
  }
  ctx->touched[ctx->touched_count++] = t;
  t->flags |= F_TOUCHED;
  return true;
}

/* True when the sweep must compute a gradient for input i of t. */
static bool wants_grad(const sweep *s, const ad_tensor *t, int i) {
  if (op_table[t->op].constant_inputs & (1u << i)) return false;
  const ad_tensor *x = input_at(t, i);
  if (s->to_leaf_grads) return requires_grad(x);
  return (x->flags & (F_NEEDED | F_TARGET)) != 0;
}

/* Makes sure x has a fused-form accumulator. Returns false on failure.
   A leaf's accumulator is a buffer of its own, not its grad tensor, so that
   a sweep that fails leaves every gradient as it was (see commit_leaf_grads).
   The exception is a grad tensor marked stale by ad_zero_grad, the usual
   case in training: it is logically zero, so the sweep accumulates straight
   into its data and leaves it marked stale until the sweep has succeeded. */
static bool ensure_acc(sweep *s, ad_tensor *x) {
  ad_ctx *ctx = s->ctx;
  if (x->acc.buf) return true;
  if (x->op == OP_LEAF || (x->flags & F_TARGET)) {
    if (!push_touched(ctx, x)) {
      fail(ctx, AD_ERR_MEMORY, "%s: out of memory for the list of reached leaves", s->name);
      return false;
    }
  }
  if (s->to_leaf_grads && x->op == OP_LEAF && x->grad && (x->flags & F_GRAD_STALE)) {
    x->acc.buf = x->grad->data;
    x->flags |= F_ACC_FRESH | F_ACC_IN_GRAD;
    return true;
  }
  /* Requested inputs already have theirs (prepare_targets). */
  size_t bytes = (size_t)x->numel * dtype_bytes((ad_dtype)x->dtype);
  x->acc.buf = arena_alloc(ctx, bytes, bytes >= 64 ? 64 : 16, s->name);
  if (!x->acc.buf) return false;
  x->flags |= F_ACC_FRESH;
  return true;
}

/* Adds tensor g into x's graph-form accumulator. */
static bool add_graph_acc(sweep *s, ad_tensor *x, ad_tensor *g) {
  ad_ctx *ctx = s->ctx;
  if (!g) return false;
  if (!x->acc.t) {
    if ((x->op == OP_LEAF || (x->flags & F_TARGET)) && !push_touched(ctx, x)) {
      fail(ctx, AD_ERR_MEMORY, "%s: out of memory for the list of reached leaves", s->name);
      return false;
    }
    x->acc.t = g;
    return true;
  }
  x->acc.t = ad_add(ctx, x->acc.t, g);
  return x->acc.t != NULL;
}

/* Fails when entry t's inputs or its own result were written after t was
   recorded, because its backward rule reads them. The sweep checks each
   entry it differentiates, so changes off the path from the outputs do not
   matter. */
static ad_status check_versions(sweep *s, const ad_tensor *t) {
  int n = input_count(t);
  for (int i = 0; i < n; i++) {
    ad_tensor *x = input_at(t, i);
    if (storage_owner(x)->version != input_version(t, i))
      return fail(s->ctx, AD_ERR_GRAPH,
                  "%s: input %d (shape %s) of the recorded operation '%s' was modified after "
                  "it was recorded, so its gradient would be wrong; record the computation "
                  "again after the change",
                  s->name, i, tshape(x).s, op_table[t->op].name);
  }
  /* A result owns fresh storage of version 0 when it is recorded; a view's
     storage belongs to its input, which the loop above checked. */
  if (!t->base && t->version != 0)
    return fail(s->ctx, AD_ERR_GRAPH,
                "%s: the result (shape %s) of the recorded operation '%s' was modified after it "
                "was recorded, so the gradient would be wrong; record the computation again "
                "after the change",
                s->name, tshape(t).s, op_table[t->op].name);
  return AD_OK;
}

/* Marks F_NEEDED on every entry that depends on a target, oldest first. */
static ad_status mark_needed(sweep *s, ad_tensor *tail) {
  ad_ctx *ctx = s->ctx;
  size_t n = 0;
  for (ad_tensor *t = tail; t; t = t->tape_prev) n++;
  if (n == 0) return AD_OK;
  ad_tensor **order = arena_alloc(ctx, n * sizeof *order, 16, s->name);
  if (!order) return ctx->error;
  size_t k = n;
  for (ad_tensor *t = tail; t; t = t->tape_prev) order[--k] = t;
  for (size_t i = 0; i < n; i++) {
    ad_tensor *t = order[i];
    int m = input_count(t);
    for (int j = 0; j < m; j++) {
      if (op_table[t->op].constant_inputs & (1u << j)) continue;
      if (input_at(t, j)->flags & (F_NEEDED | F_TARGET)) {
        t->flags |= F_NEEDED;
        break;
      }
    }
  }
  return AD_OK;
}

/* Chooses where the kernel of t writes the gradient of input i: the
   input's accumulator or, for a tensor that appears twice (x * x), a buffer
   of its own that settle_inputs adds afterwards. Leaves gin[i] NULL when
   the input needs no gradient. */
static ad_status gradient_destination(sweep *s, ad_tensor *t, int i, void **gin, bool *fresh,
                                      bool *repeated) {
  ad_tensor *x = input_at(t, i);
  gin[i] = NULL;
  fresh[i] = false;
  if (!wants_grad(s, t, i)) return AD_OK;
  for (int j = 0; j < i; j++) {
    if (gin[j] && input_at(t, j) == x) {
      ad_tensor *tmp = tensor_like(s->ctx, s->name, x);
      if (!tmp) return s->ctx->error;
      gin[i] = tmp->data;
      fresh[i] = true;
      *repeated = true;
      return AD_OK;
    }
  }
  if (!ensure_acc(s, x)) return s->ctx->error;
  gin[i] = x->acc.buf;
  fresh[i] = (x->flags & F_ACC_FRESH) != 0;
  return AD_OK;
}

/* Adds the buffers of repeated inputs into their accumulators, and marks
   every accumulator the kernel wrote as holding a contribution. */
static void settle_inputs(ad_tensor *t, int n, void *const *gin, bool repeated) {
  for (int i = 0; i < n; i++) {
    ad_tensor *x = input_at(t, i);
    if (!gin[i]) continue;
    if (repeated && gin[i] != x->acc.buf)
      acc_copy((ad_dtype)x->dtype, x->acc.buf, gin[i], x->numel, false);
    x->flags &= (uint8_t)~F_ACC_FRESH;
  }
}

/* Runs the fused kernel of entry t. */
static ad_status step_fused(sweep *s, ad_tensor *t) {
  ad_ctx *ctx = s->ctx;
  ad_status st = check_versions(s, t);
  if (st != AD_OK) return st;

  int n = input_count(t);
  void *gin_small[3];
  bool fresh_small[3];
  void **gin = gin_small;
  bool *fresh = fresh_small;
  if (n > 3) {
    gin = arena_alloc(ctx, (size_t)n * sizeof *gin, 16, s->name);
    fresh = arena_alloc(ctx, (size_t)n, 16, s->name);
    if (!gin || !fresh) return ctx->error;
  }
  bool any = false, repeated = false;
  for (int i = 0; i < n; i++) {
    st = gradient_destination(s, t, i, gin, fresh, &repeated);
    if (st != AD_OK) return st;
    any |= gin[i] != NULL;
  }
  if (!any) return AD_OK;

  bw_args args = {t, t->acc.buf, gin, fresh};
  st = ctx->trace ? trace_step(ctx, &args) : op_table[t->op].backward(ctx, &args);
  ctx->backward_calls[t->op][0]++;
  if (st != AD_OK) return st;
  settle_inputs(t, n, gin, repeated);
  return AD_OK;
}

/* Runs the graph rule of entry t. */
static ad_status step_graph(sweep *s, ad_tensor *t) {
  ad_ctx *ctx = s->ctx;
  ad_status st = check_versions(s, t);
  if (st != AD_OK) return st;
  int n = input_count(t);
  bool need_small[3];
  ad_tensor *gin_small[3];
  bool *need = need_small;
  ad_tensor **gin = gin_small;
  if (n > 3) {
    need = arena_alloc(ctx, (size_t)n, 16, s->name);
    gin = arena_alloc(ctx, (size_t)n * sizeof *gin, 16, s->name);
    if (!need || !gin) return ctx->error;
  }
  bool any = false;
  for (int i = 0; i < n; i++) {
    need[i] = wants_grad(s, t, i);
    gin[i] = NULL;
    any |= need[i];
  }
  if (!any) return AD_OK;
  st = op_table[t->op].backward_graph(ctx, t, t->acc.t, need, gin);
  ctx->backward_calls[t->op][1]++;
  if (st != AD_OK) return st;
  for (int i = 0; i < n; i++) {
    if (!need[i]) continue;
    if (!gin[i])
      return fail(ctx, AD_ERR_NOT_IMPLEMENTED,
                  "%s: internal error: the graph backward rule of '%s' returned no gradient for "
                  "input %d; please report it",
                  s->name, op_table[t->op].name, i);
    if (!add_graph_acc(s, input_at(t, i), gin[i])) return ctx->error;
  }
  return AD_OK;
}

/* Seeds output o with seed (NULL means a seed of ones). */
static ad_status seed_output(sweep *s, ad_tensor *o, ad_tensor *seed) {
  ad_ctx *ctx = s->ctx;
  if (s->graph) {
    ad_tensor *g = seed ? seed : ad_ones(ctx, (ad_dtype)o->dtype, o->ndim, o->shape);
    return add_graph_acc(s, o, g) ? AD_OK : ctx->error;
  }
  if (!ensure_acc(s, o)) return ctx->error;
  bool fresh = (o->flags & F_ACC_FRESH) != 0;
  if (seed) {
    acc_copy((ad_dtype)o->dtype, o->acc.buf, seed->data, o->numel, fresh);
  } else if (o->dtype == AD_F32) {
    ((float *)o->acc.buf)[0] = (fresh ? 0.0f : ((float *)o->acc.buf)[0]) + 1.0f;
  } else {
    ((double *)o->acc.buf)[0] = (fresh ? 0.0 : ((double *)o->acc.buf)[0]) + 1.0;
  }
  o->flags &= (uint8_t)~F_ACC_FRESH;
  return AD_OK;
}

static ad_status check_output(sweep *s, ad_tensor *o, ad_tensor *seed, int i) {
  ad_ctx *ctx = s->ctx;
  if (!check_arg(ctx, s->name, "output", o, true)) return ctx->error;
  if (!requires_grad(o))
    return fail(ctx, AD_ERR_GRAPH,
                "%s: output %d (shape %s) does not require a gradient: no input of its "
                "computation requires one, or recording was disabled; call "
                "ad_set_requires_grad on the inputs before computing it",
                s->name, i, tshape(o).s);
  if (!seed) {
    if (o->numel != 1)
      return fail(ctx, AD_ERR_GRAPH,
                  "%s: output %d has shape %s (%lld elements); pass an upstream gradient of that "
                  "shape, or reduce the output to one element first (for example with "
                  "ad_sum_all)",
                  s->name, i, tshape(o).s, (long long)o->numel);
    return AD_OK;
  }
  if (!check_arg(ctx, s->name, "seed", seed, true)) return ctx->error;
  if (seed->dtype != o->dtype)
    return fail(ctx, AD_ERR_DTYPE,
                "%s: the upstream gradient of output %d has dtype %s but the output has dtype "
                "%s; convert it with ad_cast",
                s->name, i, ad_dtype_name((ad_dtype)seed->dtype),
                ad_dtype_name((ad_dtype)o->dtype));
  if (seed->ndim != o->ndim ||
      memcmp(seed->shape, o->shape, (size_t)o->ndim * sizeof(int64_t)) != 0)
    return fail(ctx, AD_ERR_SHAPE,
                "%s: the upstream gradient of output %d has shape %s; it must match the "
                "output's shape %s",
                s->name, i, tshape(seed).s, tshape(o).s);
  return AD_OK;
}

/* The flags that a sweep sets, cleared. */
#define SWEEP_FLAGS_CLEAR \
  ((uint8_t) ~(F_NEEDED | F_ACC_FRESH | F_TARGET | F_TOUCHED | F_ACC_IN_GRAD))

/* Clears the sweep fields of the leaves and targets it reached; sweep_run
   clears those of the tape's entries as it passes them. */
static void sweep_cleanup(sweep *s) {
  ad_ctx *ctx = s->ctx;
  const uint8_t mask = SWEEP_FLAGS_CLEAR;
  for (size_t i = 0; i < ctx->touched_count; i++) {
    ad_tensor *t = ctx->touched[i];
    t->acc.buf = NULL;
    t->flags &= mask;
  }
  ctx->touched_count = 0;
  for (int i = 0; i < s->ntargets; i++) {
    s->targets[i]->flags &= mask;
    s->targets[i]->acc.buf = NULL;
  }
}

/* Gives each requested input of a fused sweep its accumulator up front:
   the tensor ad_gradients returns, zeroed at the end if the sweep never
   reaches it. One pass over the inputs, so the sweep never searches them. */
static ad_status prepare_targets(sweep *s) {
  ad_ctx *ctx = s->ctx;
  for (int i = 0; i < s->ntargets; i++) {
    ad_tensor *x = s->targets[i];
    if (x->acc.buf) {
      /* The same input listed twice shares one gradient. */
      for (int j = 0; j < i; j++)
        if (s->targets[j] == x) s->results[i] = s->results[j];
      continue;
    }
    if (!push_touched(ctx, x))
      return fail(ctx, AD_ERR_MEMORY, "%s: out of memory for the list of reached leaves",
                  s->name);
    ad_tensor *holder = tensor_like(ctx, s->name, x);
    if (!holder) return ctx->error;
    s->results[i] = holder;
    x->acc.buf = holder->data;
    x->flags |= F_ACC_FRESH;
  }
  return AD_OK;
}

static ad_status sweep_run(sweep *s, int noutputs, ad_tensor *const *outputs,
                           ad_tensor *const *seeds) {
  ad_ctx *ctx = s->ctx;
  ad_tensor *tail = ctx->tape_tail;
  for (int i = 0; i < noutputs; i++) {
    ad_status st = check_output(s, outputs[i], seeds ? seeds[i] : NULL, i);
    if (st != AD_OK) return st;
  }
  ad_status st = AD_OK;
  if (!s->to_leaf_grads) {
    for (int i = 0; i < s->ntargets; i++) s->targets[i]->flags |= F_TARGET;
    st = mark_needed(s, tail);
    if (st == AD_OK && !s->graph) st = prepare_targets(s);
  }
  for (int i = 0; st == AD_OK && i < noutputs; i++)
    st = seed_output(s, outputs[i], seeds ? seeds[i] : NULL);
  bool saved_mode = ctx->grad_enabled;
  ctx->grad_enabled = s->graph;
  /* One pass differentiates each reached entry and clears its sweep state;
     after an error it goes on clearing, so no later sweep finds stale
     state. A target keeps its accumulator until the results are read. */
  for (ad_tensor *t = tail; t; t = t->tape_prev) {
    /* An accumulator still marked fresh received nothing: a requested
       input that the outputs do not depend on. */
    bool reached = t->acc.buf && (s->graph || !(t->flags & F_ACC_FRESH));
    if (st == AD_OK && reached) st = s->graph ? step_graph(s, t) : step_fused(s, t);
    if (!(t->flags & F_TARGET)) {
      t->acc.buf = NULL;
      t->flags &= SWEEP_FLAGS_CLEAR;
    }
  }
  ctx->grad_enabled = saved_mode;
  return st;
}

/* Adds the gradients that a successful sweep staged in the leaves'
   accumulators into their grad tensors (overwriting a stale one). Every
   missing grad tensor is allocated first, so on failure no gradient
   changes. */
static ad_status commit_leaf_grads(sweep *s) {
  ad_ctx *ctx = s->ctx;
  size_t n = ctx->touched_count;
  ad_tensor **created = arena_alloc(ctx, (n ? n : 1) * sizeof *created, 16, s->name);
  if (!created) return ctx->error;
  for (size_t i = 0; i < n; i++) {
    ad_tensor *x = ctx->touched[i];
    created[i] = NULL;
    if (x->grad || !x->acc.buf) continue;
    ad_tensor *g = (x->flags & F_PERSISTENT) ? persistent_like(ctx, x)
                                             : tensor_like(ctx, s->name, x);
    if (!g) {
      for (size_t j = 0; j < i; j++) {
        if (!created[j]) continue;
        ctx->touched[j]->grad = NULL;
        if (created[j]->flags & F_PERSISTENT) ad_tensor_free(created[j]);
      }
      return fail(ctx, AD_ERR_MEMORY, "%s: out of memory for the gradient of a leaf of shape %s",
                  s->name, tshape(x).s);
    }
    created[i] = g;
    x->grad = g;
    x->flags |= F_GRAD_STALE;
  }
  for (size_t i = 0; i < n; i++) {
    ad_tensor *x = ctx->touched[i];
    if (!x->acc.buf) continue;
    if (!(x->flags & F_ACC_IN_GRAD)) {
      bool overwrite = (x->flags & F_GRAD_STALE) != 0;
      acc_copy((ad_dtype)x->dtype, x->grad->data, x->acc.buf, x->numel, overwrite);
    }
    x->flags &= (uint8_t)~F_GRAD_STALE;
  }
  return AD_OK;
}

ad_status ad_backward(ad_ctx *ctx, ad_tensor *output, ad_tensor *seed) {
  if (!ctx) return AD_ERR_ARGUMENT;
  sweep s = {.ctx = ctx, .name = "ad_backward", .to_leaf_grads = true};
  ad_status st = sweep_run(&s, 1, &output, &seed);
  if (st == AD_OK) st = commit_leaf_grads(&s);
  sweep_cleanup(&s);
  return st;
}

ad_status ad_gradients(ad_ctx *ctx, int noutputs, ad_tensor *const *outputs,
                       ad_tensor *const *seeds, int ninputs, ad_tensor *const *inputs,
                       ad_tensor **grads, unsigned flags) {
  if (!ctx) return AD_ERR_ARGUMENT;
  const char *name = "ad_gradients";
  if (noutputs < 1 || !outputs || ninputs < 1 || !inputs || !grads)
    return fail(ctx, AD_ERR_ARGUMENT,
                "%s: needs at least one output and one input, and non-NULL arrays (got %d "
                "outputs, %d inputs)",
                name, noutputs, ninputs);
  for (int i = 0; i < ninputs; i++) grads[i] = NULL;
  if (flags & ~(unsigned)AD_CREATE_GRAPH)
    return fail(ctx, AD_ERR_ARGUMENT, "%s: unknown flags 0x%x; pass 0 or AD_CREATE_GRAPH", name,
                flags);
  for (int i = 0; i < ninputs; i++) {
    if (!check_arg(ctx, name, "input", inputs[i], true)) return ctx->error;
    /* Operations on a tensor without the flag are not recorded, so its
       gradient could not be traced and would come out as a wrong zero. */
    if (!requires_grad(inputs[i]))
      return fail(ctx, AD_ERR_GRAPH,
                  "%s: input %d (shape %s) does not require a gradient, so no recorded "
                  "operation connects it to the outputs; call ad_set_requires_grad on it "
                  "before computing them",
                  name, i, tshape(inputs[i]).s);
  }

  ad_tensor **results = arena_alloc(ctx, (size_t)ninputs * sizeof *results, 16, name);
  if (!results) return ctx->error;
  memset(results, 0, (size_t)ninputs * sizeof *results);
  sweep s = {.ctx = ctx,
             .name = name,
             .graph = (flags & AD_CREATE_GRAPH) != 0,
             .ntargets = ninputs,
             .targets = inputs,
             .results = results};
  ad_status st = sweep_run(&s, noutputs, outputs, seeds);
  for (int i = 0; st == AD_OK && i < ninputs; i++) {
    ad_tensor *x = inputs[i];
    ad_tensor *g = s.graph ? x->acc.t : results[i];
    if (g && !s.graph && (x->flags & F_ACC_FRESH))
      memset(g->data, 0, (size_t)g->numel * ad_dtype_size((ad_dtype)g->dtype)); /* not reached */
    if (!g) g = ad_zeros(ctx, (ad_dtype)x->dtype, x->ndim, x->shape);
    grads[i] = g;
    if (!g) st = ctx->error;
  }
  sweep_cleanup(&s);
  if (st != AD_OK)
    for (int i = 0; i < ninputs; i++) grads[i] = NULL;
  return st;
}

/* ---- The operation table ---------------------------------------------- */

int ad_op_count(void) { return OP_COUNT - 1; }

const char *ad_op_name(int op) {
  if (op < 0 || op >= OP_COUNT - 1) return NULL;
  return op_table[op + 1].name;
}

int ad_tensor_op(const ad_tensor *t) { return (!t || t->op == OP_LEAF) ? -1 : t->op - 1; }

uint64_t ad_backward_count(const ad_ctx *ctx, int op, bool graph) {
  if (!ctx || op < 0 || op >= OP_COUNT - 1) return 0;
  return ctx->backward_calls[op + 1][graph ? 1 : 0];
}
