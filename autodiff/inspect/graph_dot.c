/*
 * graph_dot.c: the recorded graph behind a tensor as Graphviz DOT.
 *
 * The walk is breadth-first from the output over input_at(), so each tensor
 * gets the depth of its shortest path to the output, and a node limit keeps
 * the tensors nearest to the output. A pointer hash map gives each tensor one
 * node however many consumers it has.
 */
#include <math.h>

#include "inspect_internal.h"

#define DEFAULT_VALUE_LIMIT 8
#define LABEL_PRECISION 4

/* One drawn tensor. */
typedef struct dot_node {
  const ad_tensor *t;
  const ad_tensor *grad; /* the gradient to show, or NULL */
  int depth;             /* edges between t and the output */
  int hidden_inputs;     /* inputs left out by a limit, shown as one marker node */
} dot_node;

typedef struct dot_walk {
  ad_ctx *ctx;
  const ad_dot_options *options;
  int value_limit;
  dot_node *nodes; /* in breadth-first order; nodes[0] is the output */
  int count;
  int capacity;
  int *slots; /* open addressing: node index + 1, or 0 for an empty slot */
  int slot_count; /* a power of two, at least twice count */
  bool cut_by_depth;
  bool cut_by_nodes;
} dot_walk;

static size_t pointer_hash(const void *p) {
  uint64_t h = (uint64_t)(uintptr_t)p;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)h;
}

/* Returns the slot that contains t or the empty slot where t belongs. */
static int *find_slot(dot_walk *w, const ad_tensor *t) {
  size_t mask = (size_t)w->slot_count - 1;
  for (size_t i = pointer_hash(t) & mask;; i = (i + 1) & mask) {
    int *slot = &w->slots[i];
    if (*slot == 0 || w->nodes[*slot - 1].t == t) return slot;
  }
}

static bool grow_slots(dot_walk *w) {
  int old_count = w->slot_count;
  int *old = w->slots;
  int count = old_count ? 2 * old_count : 64;
  w->slots = ad_malloc(w->ctx, (size_t)count * sizeof *w->slots);
  if (!w->slots) {
    w->slots = old;
    return false;
  }
  memset(w->slots, 0, (size_t)count * sizeof *w->slots);
  w->slot_count = count;
  for (int i = 0; i < old_count; i++)
    if (old[i]) *find_slot(w, w->nodes[old[i] - 1].t) = old[i];
  ad_free(w->ctx, old, (size_t)old_count * sizeof *old);
  return true;
}

/* Returns the index of t's node, adding it at depth when it is new, or -1
   when memory runs out. */
static int add_node(dot_walk *w, const ad_tensor *t, int depth) {
  if (2 * (w->count + 1) > w->slot_count && !grow_slots(w)) return -1;
  int *slot = find_slot(w, t);
  if (*slot) return *slot - 1;
  if (w->count == w->capacity) {
    int capacity = w->capacity ? 2 * w->capacity : 32;
    dot_node *grown = ad_malloc(w->ctx, (size_t)capacity * sizeof *grown);
    if (!grown) return -1;
    if (w->count) memcpy(grown, w->nodes, (size_t)w->count * sizeof *grown);
    ad_free(w->ctx, w->nodes, (size_t)w->capacity * sizeof *grown);
    w->nodes = grown;
    w->capacity = capacity;
  }
  w->nodes[w->count] = (dot_node){.t = t, .depth = depth};
  *slot = ++w->count;
  return w->count - 1;
}

static int lookup_node(dot_walk *w, const ad_tensor *t) {
  int slot = *find_slot(w, t);
  return slot - 1;
}

static bool is_drawn(const dot_walk *w, const ad_tensor *t) {
  return *find_slot((dot_walk *)w, t) != 0;
}

/* Walks from the output breadth-first, stopping at the limits. */
static ad_status walk_graph(dot_walk *w, const ad_tensor *output) {
  int max_depth = w->options->max_depth;
  int max_nodes = w->options->max_nodes;
  if (add_node(w, output, 0) < 0) goto out_of_memory;
  for (int k = 0; k < w->count; k++) {
    const ad_tensor *t = w->nodes[k].t;
    int depth = w->nodes[k].depth;
    int n = t->op == OP_LEAF ? 0 : input_count(t);
    for (int i = 0; i < n; i++) {
      const ad_tensor *x = input_at(t, i);
      if (is_drawn(w, x)) continue;
      if (max_depth > 0 && depth >= max_depth) {
        w->nodes[k].hidden_inputs++;
        w->cut_by_depth = true;
      } else if (max_nodes > 0 && w->count >= max_nodes) {
        w->nodes[k].hidden_inputs++;
        w->cut_by_nodes = true;
      } else if (add_node(w, x, depth + 1) < 0) {
        goto out_of_memory;
      }
    }
  }
  return AD_OK;

out_of_memory:
  return ad_set_error(w->ctx, AD_ERR_MEMORY, "ad_graph_dot: out of memory for the list of nodes");
}

static bool wants_gradient(const dot_walk *w, const ad_tensor *t) {
  return requires_grad(t) && t->numel <= w->value_limit;
}

/* Fills in the gradient each node shows. */
static ad_status collect_gradients(dot_walk *w) {
  ad_ctx *ctx = w->ctx;
  if (!(w->options->flags & AD_DOT_GRADIENTS)) {
    for (int k = 0; k < w->count; k++) {
      ad_tensor *t = (ad_tensor *)w->nodes[k].t;
      if (t->op == OP_LEAF && t->numel <= w->value_limit) w->nodes[k].grad = ad_grad(t);
    }
    return AD_OK;
  }
  ad_tensor *output = (ad_tensor *)w->nodes[0].t;
  if (!requires_grad(output)) return AD_OK;
  if (output->numel != 1)
    return ad_set_error(ctx, AD_ERR_SHAPE,
                        "ad_graph_dot: AD_DOT_GRADIENTS needs an output with one element, but "
                        "the output has shape %s; reduce it first (ad_sum_all) or drop the flag",
                        tshape(output).s);

  int ntargets = 0;
  for (int k = 0; k < w->count; k++) ntargets += wants_gradient(w, w->nodes[k].t);
  if (ntargets == 0) return AD_OK;
  size_t bytes = (size_t)ntargets * sizeof(ad_tensor *);
  ad_tensor **targets = ad_malloc(ctx, bytes);
  ad_tensor **grads = ad_malloc(ctx, bytes);
  ad_status st = AD_ERR_MEMORY;
  if (targets && grads) {
    int j = 0;
    for (int k = 0; k < w->count; k++)
      if (wants_gradient(w, w->nodes[k].t)) targets[j++] = (ad_tensor *)w->nodes[k].t;
    /* The export's own sweep is not part of the caller's computation, so a
       trace hook must not report it. */
    trace_hook *saved_trace = ctx->trace;
    ctx->trace = NULL;
    st = ad_gradients(ctx, 1, &output, NULL, ntargets, targets, grads, 0);
    ctx->trace = saved_trace;
    for (int k = 0, i = 0; st == AD_OK && k < w->count; k++)
      if (wants_gradient(w, w->nodes[k].t)) w->nodes[k].grad = grads[i++];
  }
  ad_free(ctx, targets, targets ? bytes : 0);
  ad_free(ctx, grads, grads ? bytes : 0);
  return st;
}

/* ---- Writing ---------------------------------------------------------- */

static void write_header(text_out *o, const dot_walk *w) {
  const ad_dot_options *opt = w->options;
  out_printf(o, "digraph autodiff {\n");
  out_printf(o, "  graph [rankdir=%s, fontname=\"Helvetica\", nodesep=0.3, ranksep=0.4",
             (opt->flags & AD_DOT_LEFT_TO_RIGHT) ? "LR" : "TB");
  if (opt->title) {
    out_printf(o, ", labelloc=t, fontsize=16, label=\"");
    out_dot_escaped(o, opt->title);
    out_printf(o, "\"");
  }
  out_printf(o, "];\n");
  out_printf(o, "  node [fontname=\"Helvetica\", fontsize=10, penwidth=1.2];\n");
  out_printf(o, "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];\n");
}

/* Writes one label line "prefix values", or nothing for a tensor too large. */
static void write_values_line(text_out *o, const dot_walk *w, const char *prefix,
                              const ad_tensor *t) {
  if (!t || t->numel > w->value_limit || t->numel == 0) return;
  out_printf(o, "\\n%s ", prefix);
  out_values(o, t, LABEL_PRECISION, "\\n");
}

/* Writes "prefix: 2 NaN, 1 inf", leaving out a zero count. */
static void write_nonfinite_line(text_out *o, const char *prefix, int64_t nans, int64_t infs) {
  if (nans + infs == 0) return;
  out_printf(o, "\\n%s: ", prefix);
  if (nans > 0) out_printf(o, "%lld NaN%s", (long long)nans, infs > 0 ? ", " : "");
  if (infs > 0) out_printf(o, "%lld inf", (long long)infs);
}

static void write_node(text_out *o, const dot_walk *w, int k) {
  const dot_node *node = &w->nodes[k];
  const ad_tensor *t = node->t;
  const char *name = ad_tensor_names_find(w->options->names, t);
  bool is_op = t->op != OP_LEAF;
  int64_t nans, infs, grad_nans = 0, grad_infs = 0;
  count_nonfinite(t, &nans, &infs);
  if (node->grad) count_nonfinite(node->grad, &grad_nans, &grad_infs);
  bool nonfinite = nans + infs + grad_nans + grad_infs > 0;

  out_printf(o, "  n%d [label=\"", k);
  if (name) {
    out_dot_escaped(o, name);
    if (is_op) out_printf(o, " = %s", op_table[t->op].name);
  } else {
    out_printf(o, "%s", is_op ? op_table[t->op].name : requires_grad(t) ? "parameter" : "constant");
  }
  out_printf(o, "\\n%s %s", t->ndim == 0 ? "scalar" : tshape(t).s,
             ad_dtype_name((ad_dtype)t->dtype));
  write_values_line(o, w, "value", t);
  write_values_line(o, w, "grad", node->grad);
  write_nonfinite_line(o, "value", nans, infs);
  write_nonfinite_line(o, "grad", grad_nans, grad_infs);
  out_printf(o, "\"");

  if (is_op) out_printf(o, ", shape=box, style=\"rounded,filled\"");
  else if (requires_grad(t)) out_printf(o, ", shape=box, style=filled");
  else out_printf(o, ", shape=ellipse, style=filled");
  if (nonfinite) out_printf(o, ", fillcolor=\"#f4a3a3\", color=\"#c00000\", penwidth=2.5");
  else if (is_op) out_printf(o, ", fillcolor=\"#d6e6f5\", color=\"#3b6ea5\"");
  else if (requires_grad(t)) out_printf(o, ", fillcolor=\"#fbe3a0\", color=\"#a87b00\"");
  else out_printf(o, ", fillcolor=\"#e8e8e8\", color=\"#777777\"");
  if (k == 0) out_printf(o, ", peripheries=2");
  out_printf(o, "];\n");
}

static void write_edges(text_out *o, dot_walk *w, int k) {
  const ad_tensor *t = w->nodes[k].t;
  if (t->op == OP_LEAF) return;
  int n = input_count(t);
  for (int i = 0; i < n; i++) {
    int j = lookup_node(w, input_at(t, i));
    if (j < 0) continue;
    out_printf(o, "  n%d -> n%d [", j, k);
    if (n > 1) out_printf(o, "label=\" %d\"", i);
    if (op_table[t->op].constant_inputs & (1u << i))
      out_printf(o, "%sstyle=dashed", n > 1 ? ", " : "");
    out_printf(o, "];\n");
  }
  if (w->nodes[k].hidden_inputs > 0) {
    int hidden = w->nodes[k].hidden_inputs;
    out_printf(o,
               "  cut%d [label=\"... %d input%s not shown\", shape=box, style=dashed, "
               "color=\"#888888\", fontcolor=\"#555555\"];\n",
               k, hidden, hidden == 1 ? "" : "s");
    out_printf(o, "  cut%d -> n%d [style=dashed, color=\"#888888\"];\n", k, k);
  }
}

/* The legend is one node with an HTML-like table, so it takes one rank. */
static void write_legend(text_out *o, const dot_walk *w) {
  out_printf(o, "  legend [shape=plaintext, fontsize=9, label=<<table border=\"0\" "
                "cellborder=\"1\" cellspacing=\"3\" cellpadding=\"3\">\n");
  out_printf(o, "    <tr><td border=\"0\"><b>legend</b></td></tr>\n");
  out_printf(o, "    <tr><td style=\"rounded\" bgcolor=\"#d6e6f5\" color=\"#3b6ea5\">"
                "operation</td></tr>\n");
  out_printf(o, "    <tr><td bgcolor=\"#fbe3a0\" color=\"#a87b00\">parameter "
                "(requires grad)</td></tr>\n");
  out_printf(o, "    <tr><td style=\"rounded\" bgcolor=\"#e8e8e8\" color=\"#777777\">"
                "constant or input (ellipse)</td></tr>\n");
  out_printf(o, "    <tr><td bgcolor=\"#f4a3a3\" color=\"#c00000\">NaN or inf</td></tr>\n");
  if (w->cut_by_depth || w->cut_by_nodes)
    out_printf(o, "    <tr><td style=\"dashed\" color=\"#888888\">graph cut at the %s "
                  "limit</td></tr>\n",
               w->cut_by_depth ? "depth" : "node");
  out_printf(o, "  </table>>];\n");
}

static ad_status write_graph(text_out *o, dot_walk *w) {
  write_header(o, w);
  for (int k = 0; k < w->count; k++) write_node(o, w, k);
  for (int k = 0; k < w->count; k++) write_edges(o, w, k);
  if (w->options->flags & AD_DOT_LEGEND) write_legend(o, w);
  out_printf(o, "}\n");
  if (!o->failed && fflush(o->stream) == EOF) o->failed = true;
  if (o->failed || ferror(o->stream))
    return ad_set_error(w->ctx, AD_ERR_IO, "ad_graph_dot: writing the DOT text failed (%d nodes)",
                        w->count);
  return AD_OK;
}

static ad_status check_arguments(ad_ctx *ctx, const ad_tensor *output, FILE *stream,
                                 const ad_dot_options *opt) {
  if (!output || !stream)
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "ad_graph_dot: the %s is NULL",
                        output ? "stream" : "output tensor");
  if (output->ctx != ctx)
    return ad_set_error(ctx, AD_ERR_CONTEXT,
                        "ad_graph_dot: the output tensor belongs to another context");
  if (opt->max_depth < 0 || opt->max_nodes < 0)
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "ad_graph_dot: max_depth (%d) and max_nodes (%d) must be 0 (no limit) "
                        "or positive",
                        opt->max_depth, opt->max_nodes);
  if (opt->flags & ~(unsigned)(AD_DOT_GRADIENTS | AD_DOT_LEFT_TO_RIGHT | AD_DOT_LEGEND))
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "ad_graph_dot: unknown flags 0x%x; combine AD_DOT_GRADIENTS, "
                        "AD_DOT_LEFT_TO_RIGHT and AD_DOT_LEGEND",
                        opt->flags);
  return AD_OK;
}

ad_status ad_graph_dot(ad_ctx *ctx, const ad_tensor *output, FILE *stream,
                       const ad_dot_options *options) {
  if (!ctx) return AD_ERR_ARGUMENT;
  static const ad_dot_options defaults = {0};
  const ad_dot_options *opt = options ? options : &defaults;
  ad_status st = check_arguments(ctx, output, stream, opt);
  if (st != AD_OK) return st;

  dot_walk w = {.ctx = ctx, .options = opt};
  w.value_limit = opt->value_limit == 0 ? DEFAULT_VALUE_LIMIT : opt->value_limit;
  if (w.value_limit < 0) w.value_limit = -1;
  st = walk_graph(&w, output);
  if (st == AD_OK) st = collect_gradients(&w);
  if (st == AD_OK) {
    text_out o = {.stream = stream};
    st = write_graph(&o, &w);
  }
  ad_free(ctx, w.nodes, (size_t)w.capacity * sizeof *w.nodes);
  ad_free(ctx, w.slots, (size_t)w.slot_count * sizeof *w.slots);
  return st;
}
