/*
 * emit.c: source-to-source differentiation. Writes an expression as a C
 * function: one statement per node in evaluation order, then a reverse
 * sweep that accumulates adjoints with the engine's backward formulas.
 *
 * Names in the generated code: each variable is a parameter of its own
 * name, node i's value is t<i> and its adjoint d<i>, and the gradient array
 * is grad. When a variable would clash with those, every generated name gets
 * the prefix "ad_" (repeated until nothing clashes). A variable named like a
 * macro that compilers predefine (linux, unix) becomes the parameter v<k>,
 * k its index, because the preprocessor would replace its name.
 */
#include <stdio.h>
#include <string.h>

#include "expr_internal.h"
#include "text.h"

typedef struct emitter {
  const ad_expr *e;
  FILE *out;
  char prefix[64];
  uint8_t *propagates; /* node i sends its adjoint to an operand */
} emitter;

/* True for the lower-case macros that GCC and Clang predefine in their GNU
   modes on common systems. NOTE: other systems may predefine others. */
static bool is_predefined_macro(const char *name) {
  static const char *const macros[] = {"linux", "unix", "i386", "sun", "sparc", "mips", "vax"};
  for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
    if (strcmp(name, macros[i]) == 0) return true;
  return false;
}

/* True when variable name could be a generated name with this prefix. */
static bool clashes(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  if (strncmp(name, prefix, n) != 0) return false;
  const char *rest = name + n;
  if (strcmp(rest, "grad") == 0) return true;
  if (rest[0] != 't' && rest[0] != 'd' && rest[0] != 'v') return false;
  if (rest[1] == '\0') return false;
  for (const char *s = rest + 1; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}

static void choose_prefix(emitter *em) {
  em->prefix[0] = '\0';
  for (;;) {
    bool clash = false;
    for (int v = 0; v < em->e->var_count && !clash; v++)
      clash = clashes(ad_expr_var_name(em->e, v), em->prefix);
    if (!clash || strlen(em->prefix) + 4 >= sizeof em->prefix) return;
    strcat(em->prefix, "ad_");
  }
}

/* Whether operand k of node n receives a derivative. */
static bool differentiable_operand(const ad_expr *e, const expr_node *n, int k) {
  if (n->arg[k] < 0 || e->nodes[n->arg[k]].is_const) return false;
  if (n->op == EXPR_COND) return k > 0;
  return k < 2 && expr_ops[n->op].c_deriv[k] != NULL;
}

/* Marks the nodes whose adjoint reaches an operand: a node propagates when
   the gradient reaches it and it has an operand with a derivative. */
static void mark_propagation(emitter *em) {
  const ad_expr *e = em->e;
  uint8_t *reached = em->propagates;
  memset(reached, 0, (size_t)e->node_count);
  int32_t root = e->node_count - 1;
  reached[root] = 1;
  for (int32_t i = root; i >= 0; i--) {
    const expr_node *n = &e->nodes[i];
    bool any = false;
    if (reached[i] && !n->is_const && n->op != EXPR_VAR)
      for (int k = 0; k < 3; k++)
        if (differentiable_operand(e, n, k)) reached[n->arg[k]] = 1, any = true;
    reached[i] = any ? 1 : 0;
  }
}

/* Writes a double constant as a C literal that reads back exactly. */
static void write_literal(emitter *em, double v) {
  if (v != v) {
    fputs("NAN", em->out);
    return;
  }
  char text[40];
  expr_format_double(v, text, sizeof text);
  if (strcmp(text, "inf") == 0) strcpy(text, "INFINITY");
  if (strcmp(text, "-inf") == 0) strcpy(text, "-INFINITY");
  bool is_double = strpbrk(text, ".eN") != NULL || strstr(text, "INFINITY") != NULL;
  bool negative = text[0] == '-' || (v == 0 && 1 / v < 0);
  if (v == 0 && negative) strcpy(text, "-0");
  fprintf(em->out, negative ? "(%s%s)" : "%s%s", text, is_double ? "" : ".0");
}

/* Writes the parameter of variable var. */
static void write_parameter(emitter *em, int var) {
  const char *name = ad_expr_var_name(em->e, var);
  if (is_predefined_macro(name)) fprintf(em->out, "%sv%d", em->prefix, var);
  else fputs(name, em->out);
}

/* Writes a reference to node i's value: a parameter, a literal or t<i>. */
static void write_value(emitter *em, int32_t i) {
  const expr_node *n = &em->e->nodes[i];
  if (n->is_const) write_literal(em, n->value);
  else if (n->op == EXPR_VAR) write_parameter(em, n->var);
  else fprintf(em->out, "%st%d", em->prefix, (int)i);
}

/* Writes a reference to node i's adjoint: grad[var] or d<i>. */
static void write_adjoint(emitter *em, int32_t i) {
  const expr_node *n = &em->e->nodes[i];
  if (n->op == EXPR_VAR) fprintf(em->out, "%sgrad[%d]", em->prefix, (int)n->var);
  else fprintf(em->out, "%sd%d", em->prefix, (int)i);
}

/* Writes template with %0, %1, %2 replaced by node i's operands and %y by
   its value. */
static void write_template(emitter *em, int32_t i, const char *template) {
  const expr_node *n = &em->e->nodes[i];
  for (const char *s = template; *s; s++) {
    if (s[0] == '%' && s[1] >= '0' && s[1] <= '2') {
      write_value(em, n->arg[s[1] - '0']);
      s++;
    } else if (s[0] == '%' && s[1] == 'y') {
      write_value(em, i);
      s++;
    } else {
      fputc(*s, em->out);
    }
  }
}

static void write_forward(emitter *em) {
  const ad_expr *e = em->e;
  for (int32_t i = 0; i < e->node_count; i++) {
    const expr_node *n = &e->nodes[i];
    if (!n->needed || n->is_const || n->op == EXPR_VAR) continue;
    fprintf(em->out, "  const double %st%d = ", em->prefix, (int)i);
    write_template(em, i, expr_ops[n->op].c_value);
    fputs(";\n", em->out);
  }
}

/* adjoint(operand k) += the contribution of node i. */
static void write_contribution(emitter *em, int32_t i, int k) {
  const expr_node *n = &em->e->nodes[i];
  int32_t x = n->arg[k];
  if (em->e->nodes[x].op != EXPR_VAR && !em->propagates[x]) return;
  fputs("    ", em->out);
  if (n->op == EXPR_COND) {
    fputs(k == 1 ? "if (" : "if (!(", em->out);
    write_value(em, n->arg[0]);
    fputs(k == 1 ? " != 0) " : " != 0)) ", em->out);
  }
  write_adjoint(em, x);
  if (n->op == EXPR_ADD || n->op == EXPR_SUB || n->op == EXPR_COND) {
    fputs(n->op == EXPR_SUB && k == 1 ? " -= " : " += ", em->out);
    write_adjoint(em, i);
    fputs(";\n", em->out);
    return;
  }
  /* A zero adjoint contributes zero even where the derivative is not
     finite, as in the engine. */
  fputs(" += ", em->out);
  write_adjoint(em, i);
  fputs(" == 0 ? 0 : ", em->out);
  write_adjoint(em, i);
  fputs(" * (", em->out);
  write_template(em, i, expr_ops[n->op].c_deriv[k]);
  fputs(");\n", em->out);
}

static void write_reverse(emitter *em) {
  const ad_expr *e = em->e;
  int32_t root = e->node_count - 1;
  fprintf(em->out, "  if (%sgrad) {\n", em->prefix);
  for (int v = 0; v < e->var_count; v++) fprintf(em->out, "    %sgrad[%d] = 0;\n", em->prefix, v);
  for (int32_t i = 0; i < e->node_count; i++)
    if (em->propagates[i] && e->nodes[i].op != EXPR_VAR)
      fprintf(em->out, "    double %sd%d = %s;\n", em->prefix, (int)i, i == root ? "1" : "0");
  if (e->nodes[root].op == EXPR_VAR) fprintf(em->out, "    %sgrad[%d] = 1;\n", em->prefix, (int)e->nodes[root].var);
  for (int32_t i = root; i >= 0; i--) {
    if (!em->propagates[i]) continue;
    for (int k = 0; k < 3; k++)
      if (differentiable_operand(e, &e->nodes[i], k)) write_contribution(em, i, k);
  }
  fputs("  }\n", em->out);
}

/* The header comment, with the text made safe inside a C comment. */
static void write_header(emitter *em, const char *name) {
  const ad_expr *e = em->e;
  char text[200];
  expr_excerpt(e->text, 0, e->text_length, text, sizeof text);
  for (char *s = text; *s; s++) {
    if (s[0] == '*' && s[1] == '/') s[1] = '|';
    if ((unsigned char)*s >= 0x80) *s = '?';
  }
  fprintf(em->out, "/* %s = %s\n", name, text);
  fprintf(em->out, " * Returns the value and, when %sgrad is not NULL, stores the gradient in it:\n",
          em->prefix);
  for (int v = 0; v < e->var_count; v++) {
    const char *variable = ad_expr_var_name(e, v);
    fprintf(em->out, " *   %sgrad[%d] = d%s/d%s", em->prefix, v, name, variable);
    if (is_predefined_macro(variable))
      fprintf(em->out, ", where %s is the parameter %sv%d", variable, em->prefix, v);
    fputs("\n", em->out);
  }
  fputs(" * Generated by ad_expr_emit_c. Needs only <math.h> (link with -lm); compile it\n"
        " * without -ffast-math, which would change NaN and infinity handling.\n */\n",
        em->out);
}

static void write_function(emitter *em, const char *name) {
  const ad_expr *e = em->e;
  write_header(em, name);
  fputs("#include <math.h>\n\n", em->out);
  fprintf(em->out, "double %s(", name);
  for (int v = 0; v < e->var_count; v++) {
    fputs("double ", em->out);
    write_parameter(em, v);
    fputs(", ", em->out);
  }
  fprintf(em->out, "double *%sgrad) {\n", em->prefix);
  write_forward(em);
  if (e->var_count > 0) write_reverse(em);
  else fprintf(em->out, "  (void)%sgrad;\n", em->prefix);
  fputs("  return ", em->out);
  write_value(em, e->node_count - 1);
  fputs(";\n}\n", em->out);
}

/* Whether name can be the generated function's name. */
static bool valid_function_name(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 255) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return !expr_is_reserved_name(name, n) && expr_find_function(name, n) < 0;
}

ad_status ad_expr_emit_c(ad_ctx *ctx, const ad_expr *e, const char *name, FILE *stream) {
  if (!ctx) return AD_ERR_ARGUMENT;
  if (!e || !name || !stream)
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "ad_expr_emit_c: the expression, the name or the stream is NULL");
  if (!valid_function_name(name))
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "ad_expr_emit_c: '%.64s' cannot name a C function: it must be an "
                        "identifier of at most 255 characters that is neither a keyword nor "
                        "a <math.h> name",
                        name);
  emitter em;
  memset(&em, 0, sizeof em);
  em.e = e;
  em.out = stream;
  em.propagates = ad_malloc(ctx, (size_t)e->node_count);
  if (!em.propagates) return AD_ERR_MEMORY;
  choose_prefix(&em);
  mark_propagation(&em);
  write_function(&em, name);
  ad_free(ctx, em.propagates, (size_t)e->node_count);
  if (fflush(stream) != 0 || ferror(stream))
    return ad_set_error(ctx, AD_ERR_IO, "ad_expr_emit_c: writing the C function failed");
  return AD_OK;
}
