/*
 * tiny_network.h: the 2-2-1 network of the backpropagation lesson, with
 * fixed weights, shared by the examples and their tests.
 *
 *   z1 = W1 x + b1        W1 [2, 2], b1 [2], x [2]
 *   h  = sigmoid(z1)
 *   y  = W2 h + b2        W2 [1, 2], b2 [1]
 *   L  = (y - target)^2   mean squared error over the one output
 */
#ifndef TINY_NETWORK_H
#define TINY_NETWORK_H

#include "autodiff.h"

#define TINY_NETWORK_TENSORS 10

typedef struct tiny_network {
  /* leaves: the parameters require a gradient, x and target do not */
  ad_tensor *x, *w1, *b1, *w2, *b2, *target;
  /* recorded results of the forward pass */
  ad_tensor *z1, *h, *y, *loss;
  /* names of all ten tensors, for ad_tensor_names */
  const ad_tensor *tensors[TINY_NETWORK_TENSORS];
  const char *labels[TINY_NETWORK_TENSORS];
  ad_tensor_names names;
} tiny_network;

/* The fixed values, float64, row-major. */
extern const double tiny_x[2], tiny_w1[4], tiny_b1[2], tiny_w2[2], tiny_b2[1], tiny_target[1];

/* Creates the leaves in ctx's arena and records the forward pass. Returns
   the first error; net is then partly filled. */
ad_status tiny_network_build(ad_ctx *ctx, tiny_network *net);

#endif /* TINY_NETWORK_H */
