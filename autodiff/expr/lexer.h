/*
 * lexer.h: tokens of C expressions, and the conversion of numeric constants
 * with C11's rules (6.4.4.1 and 6.4.4.2).
 */
#ifndef AD_EXPR_LEXER_H
#define AD_EXPR_LEXER_H

#include <stddef.h>
#include <stdint.h>

#include "expr_internal.h"

/* Internal to libautodiff: these symbols are not exported. */
#pragma GCC visibility push(hidden)

typedef enum tok_kind {
  TOK_END,
  TOK_NUMBER,
  TOK_NAME,
  TOK_PLUS,
  TOK_MINUS,
  TOK_STAR,
  TOK_SLASH,
  TOK_LPAREN,
  TOK_RPAREN,
  TOK_COMMA,
  TOK_QUESTION,
  TOK_COLON,
  TOK_LT,
  TOK_LE,
  TOK_GT,
  TOK_GE,
  TOK_EQ,
  TOK_NE,
  TOK_AND,
  TOK_OR,
  TOK_NOT,
  /* A C punctuator the language does not have: % ^ & | ~ << = ++ [ . ... */
  TOK_UNSUPPORTED,
  /* Text that is no C token: an invalid byte, or an unterminated comment,
     string or character constant; problem names which. */
  TOK_INVALID
} tok_kind;

typedef struct token {
  tok_kind kind;
  size_t offset, length;
  const char *problem; /* TOK_INVALID: what is wrong, as a sentence fragment */
} token;

/* The token that starts at or after pos, skipping spaces and comments. */
token lex_token(const char *text, size_t length, size_t pos);

/* A numeric constant with its C type. */
typedef struct number {
  c_type type;
  uint64_t bits; /* integers: the value in two's complement */
  double value;  /* the value converted to double (a float's value is exact) */
} number;

/* Converts the numeric token text[0, length) as C does. Returns AD_OK, or
   AD_ERR_FORMAT with a reason in message (capacity bytes), or
   AD_ERR_MEMORY when a long constant's buffer cannot be allocated. */
ad_status convert_number(ad_ctx *ctx, const char *text, size_t length, number *out,
                         char *message, size_t capacity);

#pragma GCC visibility pop

#endif /* AD_EXPR_LEXER_H */
