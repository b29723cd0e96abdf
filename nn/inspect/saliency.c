/* saliency.c: gradients of class scores with respect to the input. */
#include "nn_image.h"

/* Checks the output and the classes; records an error and returns false. */
static bool check_scores(ad_ctx *ctx, const ad_tensor *out, const ad_tensor *classes, int64_t n) {
  const char *fn = "nn_saliency";
  if (ad_ndim(out) != 2 || ad_dim(out, 0) != n) {
    ad_set_error(ctx, AD_ERR_SHAPE, "%s: the model's output has %d dimensions; it must be "
                 "[N, C] with N = %lld, one row of class scores per sample",
                 fn, ad_ndim(out), (long long)n);
    return false;
  }
  int64_t c = ad_dim(out, 1);
  const int64_t *labels = ad_data_i64(classes);
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= c) {
      ad_set_error(ctx, AD_ERR_INDEX, "%s: class %lld of sample %lld is outside [0, %lld)", fn,
                   (long long)labels[i], (long long)i, (long long)c);
      return false;
    }
  return true;
}

/* The sum over samples of output[n, classes[n]] and the input leaf it
   depends on, recorded. */
static ad_tensor *class_score(ad_ctx *ctx, nn_layer *model, ad_tensor *x, ad_tensor *classes,
                              ad_tensor **input) {
  *input = ad_detach(ctx, x);
  if (!*input || ad_set_requires_grad(*input, true) != AD_OK) return NULL;
  ad_tensor *out = nn_forward(ctx, model, *input);
  if (!out || !check_scores(ctx, out, classes, ad_dim(x, 0))) return NULL;
  ad_tensor *mask = ad_one_hot(ctx, classes, ad_dim(out, 1), ad_tensor_dtype(out));
  return ad_sum_all(ctx, ad_mul(ctx, out, mask));
}

ad_tensor *nn_saliency(ad_ctx *ctx, nn_layer *model, ad_tensor *x, ad_tensor *classes) {
  const char *fn = "nn_saliency";
  if (!ctx) return NULL;
  if (!model || !x || !classes) {
    const char *missing = "class tensor";
    if (!model) missing = "model";
    else if (!x) missing = "input";
    ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the %s is NULL", fn, missing);
    return NULL;
  }
  if (ad_ndim(x) < 1 || ad_tensor_dtype(classes) != AD_I64 || ad_ndim(classes) != 1 ||
      ad_dim(classes, 0) != ad_dim(x, 0)) {
    ad_set_error(ctx, AD_ERR_SHAPE, "%s: needs x [N, ...] and int64 classes [N]; got x with %d "
                 "dimensions and classes of dtype %s with %d dimensions",
                 fn, ad_ndim(x), ad_dtype_name(ad_tensor_dtype(classes)), ad_ndim(classes));
    return NULL;
  }
  bool recording = ad_set_grad_enabled(ctx, true);
  ad_tensor *input = NULL, *grad = NULL;
  ad_tensor *score = class_score(ctx, model, x, classes, &input);
  if (score) ad_gradients(ctx, 1, &score, NULL, 1, &input, &grad, 0);
  ad_set_grad_enabled(ctx, recording);
  return grad;
}
