/*
 * trace_print.c: a trace function that prints the reverse sweep as text.
 *
 * One entry reads:
 *
 *   step 2: linear -> y [1]
 *     received  dL/dy  = [0.1906]
 *     sent      dL/dh  = [0.0762, 0.0858]
 *               dL/dW2 = [[0.1285, 0.1383]]
 *
 * so a student can check each line against the chain rule by hand.
 */
#include <math.h>

#include "inspect_internal.h"

#define DEFAULT_VALUE_LIMIT 16
#define DEFAULT_PRECISION 6
#define LABEL_SIZE 256

/* Writes into label the name a derivative uses for t: its name from the
   table, or a description when it has none. */
static void describe(const ad_trace_printer *p, const ad_tensor *t, char *label) {
  const char *name = ad_tensor_names_find(p->names, t);
  if (name) snprintf(label, LABEL_SIZE, "%s", name);
  else if (t->op != OP_LEAF) snprintf(label, LABEL_SIZE, "(%s result)", op_table[t->op].name);
  else snprintf(label, LABEL_SIZE, "(%s %.200s)", requires_grad(t) ? "parameter" : "constant",
                tshape(t).s);
}

static double l2_norm(const ad_tensor *t) {
  double sum = 0;
  for (int64_t i = 0; i < t->numel; i++) {
    double v = load(t, i);
    sum += v * v;
  }
  return sqrt(sum);
}

/* Writes "<lead>dL/d<label> = <values>\n" with the rows of a matrix under
   each other. */
static void write_derivative(text_out *o, const ad_trace_printer *p, const char *lead,
                             const char *label, int label_width, const ad_tensor *g) {
  char prefix[2 * LABEL_SIZE + 64];
  int n = snprintf(prefix, sizeof prefix, "%sd%s/d%-*s = ", lead, p->loss_name ? p->loss_name : "L",
                   label_width, label);
  out_printf(o, "%s", prefix);
  int limit = p->value_limit == 0 ? DEFAULT_VALUE_LIMIT : p->value_limit;
  if (g->numel > limit || g->numel == 0) {
    out_printf(o, "%s tensor, norm %.*g\n", tshape(g).s,
               p->precision ? p->precision : DEFAULT_PRECISION, l2_norm(g));
    return;
  }
  char separator[sizeof prefix + 2];
  int indent = n < 0 ? 0 : n + 1;
  if (indent > (int)sizeof prefix) indent = (int)sizeof prefix;
  separator[0] = '\n';
  memset(separator + 1, ' ', (size_t)indent);
  separator[indent + 1] = '\0';
  out_values(o, g, p->precision ? p->precision : DEFAULT_PRECISION, separator);
  out_printf(o, "\n");
}

/* The chain rule of common operations, with %o for the output's label, %0
   to %2 for the inputs' and %L for the loss name. */
typedef struct rule_text {
  op_kind op;
  const char *text;
} rule_text;

static const rule_text rules[] = {
    {OP_ADD, "d%L/d%0 = d%L/d%o,  d%L/d%1 = d%L/d%o (summed over broadcast dimensions)"},
    {OP_SUB, "d%L/d%0 = d%L/d%o,  d%L/d%1 = -d%L/d%o"},
    {OP_MUL, "d%L/d%0 = d%L/d%o * %1,  d%L/d%1 = d%L/d%o * %0"},
    {OP_DIV, "d%L/d%0 = d%L/d%o / %1,  d%L/d%1 = -d%L/d%o * %0 / %1^2"},
    {OP_ADD_SCALAR, "d%L/d%0 = d%L/d%o"},
    {OP_MUL_SCALAR, "d%L/d%0 = d%L/d%o * c"},
    {OP_POW_SCALAR, "d%L/d%0 = d%L/d%o * p %0^(p - 1)"},
    {OP_NEG, "d%L/d%0 = -d%L/d%o"},
    {OP_EXP, "d%L/d%0 = d%L/d%o * %o"},
    {OP_LOG, "d%L/d%0 = d%L/d%o / %0"},
    {OP_SIGMOID, "d%L/d%0 = d%L/d%o * %o * (1 - %o)"},
    {OP_TANH, "d%L/d%0 = d%L/d%o * (1 - %o^2)"},
    {OP_RELU, "d%L/d%0 = d%L/d%o where %0 > 0, else 0"},
    {OP_SUM, "d%L/d%0 = d%L/d%o copied to every summed element"},
    {OP_MEAN, "d%L/d%0 = d%L/d%o / n for every averaged element"},
    {OP_MATMUL, "d%L/d%0 = d%L/d%o %1^T,  d%L/d%1 = %0^T d%L/d%o"},
    {OP_LINEAR, "%o = %0 %1^T + %2:  d%L/d%0 = d%L/d%o %1,  d%L/d%1 = (d%L/d%o)^T %0,  "
                "d%L/d%2 = d%L/d%o summed over the batch"},
    {OP_MSE, "%o = mean((%0 - %1)^2):  d%L/d%0 = d%L/d%o * 2 (%0 - %1) / n"},
    {OP_CROSS_ENTROPY, "d%L/d%0 = d%L/d%o * (softmax(%0) - one_hot(%1)) / N"},
    {OP_SOFTMAX, "d%L/d%0 = %o * (d%L/d%o - sum(d%L/d%o * %o))"},
    {OP_LOG_SOFTMAX, "d%L/d%0 = d%L/d%o - softmax(%0) * sum(d%L/d%o)"},
};

/* Writes the rule of step's operation with the labels filled in, or
   nothing for an operation without one. */
static void write_rule(text_out *o, const ad_trace_printer *p, const ad_trace_step *step,
                       char labels[][LABEL_SIZE]) {
  const char *text = NULL;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if ((int)rules[i].op == step->op + 1) text = rules[i].text;
  if (!text) return;
  out_printf(o, "  rule      ");
  for (const char *c = text; *c; c++) {
    if (c[0] == '%' && c[1] == 'o') out_printf(o, "%s", labels[0]);
    else if (c[0] == '%' && c[1] == 'L') out_printf(o, "%s", p->loss_name ? p->loss_name : "L");
    else if (c[0] == '%' && c[1] >= '0' && c[1] < '0' + step->ninputs && c[1] <= '2')
      out_printf(o, "%s", labels[1 + (c[1] - '0')]);
    else {
      out_printf(o, "%c", *c);
      continue;
    }
    c++;
  }
  out_printf(o, "\n");
}

static void write_step(text_out *o, ad_trace_printer *p, const ad_trace_step *step) {
  char labels[1 + 3][LABEL_SIZE];
  describe(p, step->output, labels[0]);
  int width = (int)strlen(labels[0]);
  for (int i = 0; i < step->ninputs; i++) {
    char label[LABEL_SIZE];
    describe(p, step->inputs[i], label);
    if (i < 3) memcpy(labels[1 + i], label, LABEL_SIZE);
    int len = (int)strlen(label);
    if (step->input_grads[i] && len > width) width = len;
  }

  out_printf(o, "step %d: %s -> %s %s\n", p->steps, step->op_name, labels[0],
             tshape(step->output).s);
  write_rule(o, p, step, labels);
  write_derivative(o, p, "  received  ", labels[0], width, step->upstream);
  bool first = true;
  for (int i = 0; i < step->ninputs; i++) {
    if (!step->input_grads[i]) continue;
    char label[LABEL_SIZE];
    describe(p, step->inputs[i], label);
    write_derivative(o, p, first ? "  sent      " : "            ", label, width,
                     step->input_grads[i]);
    first = false;
  }
  for (int i = 0; i < step->ninputs; i++) {
    if (step->input_grads[i]) continue;
    char label[LABEL_SIZE];
    describe(p, step->inputs[i], label);
    out_printf(o, "  no gradient for input %d (%s): it does not require one\n", i, label);
  }
}

void ad_trace_print(void *user, const ad_trace_step *step) {
  ad_trace_printer *p = user;
  if (!p || !step || !p->stream || p->status != AD_OK) return;
  p->steps++;
  text_out o = {.stream = p->stream};
  write_step(&o, p, step);
  if (o.failed || ferror(p->stream)) p->status = AD_ERR_IO;
}
