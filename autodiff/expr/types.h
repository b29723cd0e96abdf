/*
 * types.h: C's types for expression nodes, and constant folding.
 */
#ifndef AD_EXPR_TYPES_H
#define AD_EXPR_TYPES_H

#include <stddef.h>

#include "expr_internal.h"

/* Internal to libautodiff: these symbols are not exported. */
#pragma GCC visibility push(hidden)

/* The type of a op b after C's usual arithmetic conversions. */
c_type common_type(c_type a, c_type b);

/* Makes n a constant of integer type type with the given bits. */
void set_integer_constant(expr_node *n, c_type type, uint64_t bits);

/* Sets the type of nodes[index] from its operator and operands, and folds
   it when no operand depends on a variable. May convert constant branches
   of ?: to the result type in place. Returns AD_OK, or AD_ERR_FORMAT for
   what C leaves undefined (integer overflow, integer division by zero in a
   constant) and AD_ERR_NOT_IMPLEMENTED for what the tensor evaluation
   cannot reproduce, with the reason in message. */
ad_status type_node(expr_node *nodes, int32_t index, char *message, size_t capacity);

#pragma GCC visibility pop

#endif /* AD_EXPR_TYPES_H */
