/* tiny_network.c: the 2-2-1 network with fixed weights. */
#include "tiny_network.h"

const double tiny_x[2] = {0.5, -1.0};
const double tiny_w1[4] = {0.8, -0.4, 0.3, 0.6};
const double tiny_b1[2] = {0.1, -0.2};
const double tiny_w2[2] = {1.2, -0.7};
const double tiny_b2[1] = {0.05};
const double tiny_target[1] = {1.0};

static ad_tensor *parameter(ad_ctx *ctx, int ndim, const int64_t *shape, const double *values) {
  ad_tensor *t = ad_from_f64(ctx, ndim, shape, values);
  if (t && ad_set_requires_grad(t, true) != AD_OK) return NULL;
  return t;
}

ad_status tiny_network_build(ad_ctx *ctx, tiny_network *net) {
  const int64_t two[1] = {2}, one[1] = {1}, w1_shape[2] = {2, 2}, w2_shape[2] = {1, 2};
  net->x = ad_from_f64(ctx, 1, two, tiny_x);
  net->target = ad_from_f64(ctx, 1, one, tiny_target);
  net->w1 = parameter(ctx, 2, w1_shape, tiny_w1);
  net->b1 = parameter(ctx, 1, two, tiny_b1);
  net->w2 = parameter(ctx, 2, w2_shape, tiny_w2);
  net->b2 = parameter(ctx, 1, one, tiny_b2);

  net->z1 = ad_linear(ctx, net->x, net->w1, net->b1);
  net->h = ad_sigmoid(ctx, net->z1);
  net->y = ad_linear(ctx, net->h, net->w2, net->b2);
  net->loss = ad_mse(ctx, net->y, net->target, AD_REDUCE_MEAN);
  if (!net->loss) return ad_errcode(ctx);

  const ad_tensor *tensors[TINY_NETWORK_TENSORS] = {net->x,  net->w1, net->b1, net->w2,
                                                    net->b2, net->target, net->z1, net->h,
                                                    net->y,  net->loss};
  static const char *const labels[TINY_NETWORK_TENSORS] = {"x",      "W1", "b1", "W2", "b2",
                                                           "target", "z1", "h",  "y",  "L"};
  for (int i = 0; i < TINY_NETWORK_TENSORS; i++) {
    net->tensors[i] = tensors[i];
    net->labels[i] = labels[i];
  }
  net->names = (ad_tensor_names){TINY_NETWORK_TENSORS, net->tensors, net->labels};
  return AD_OK;
}
