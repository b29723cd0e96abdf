/* loss.c: loss functions on top of the engine's fused loss operations. */
#include "nn_internal.h"

/* Checks the arguments every loss shares. */
static bool check_loss_args(ad_ctx *ctx, const char *fn, ad_tensor *output, ad_tensor *target,
                            ad_reduction reduction) {
  if (!ctx || !output || !target) return false;
  if (reduction != AD_REDUCE_MEAN && reduction != AD_REDUCE_SUM && reduction != AD_REDUCE_NONE) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: reduction %d is not AD_REDUCE_MEAN, AD_REDUCE_SUM or "
                 "AD_REDUCE_NONE", fn, (int)reduction);
    return false;
  }
  return true;
}

/* Checks that two tensors have the same shape. */
static bool check_same_shape(ad_ctx *ctx, const char *fn, ad_tensor *a, ad_tensor *b) {
  bool same = ad_ndim(a) == ad_ndim(b);
  for (int d = 0; same && d < ad_ndim(a); d++) same = ad_shape(a)[d] == ad_shape(b)[d];
  if (same) return true;
  char sa[96], sb[96];
  int na = 0, nb = 0;
  sa[0] = sb[0] = '\0';
  for (int d = 0; d < ad_ndim(a) && na < 80; d++)
    na += snprintf(sa + na, sizeof sa - (size_t)na, d ? ", %lld" : "%lld", (long long)ad_shape(a)[d]);
  for (int d = 0; d < ad_ndim(b) && nb < 80; d++)
    nb += snprintf(sb + nb, sizeof sb - (size_t)nb, d ? ", %lld" : "%lld", (long long)ad_shape(b)[d]);
  ad_set_error(ctx, AD_ERR_SHAPE, "%s: the output has shape [%s] and the target [%s]; they must "
               "be equal", fn, sa, sb);
  return false;
}

ad_tensor *nn_mse_loss(ad_ctx *ctx, ad_tensor *prediction, ad_tensor *target,
                       ad_reduction reduction) {
  const char *fn = "nn_mse_loss";
  if (!check_loss_args(ctx, fn, prediction, target, reduction) ||
      !check_same_shape(ctx, fn, prediction, target))
    return NULL;
  return ad_mse(ctx, prediction, target, reduction);
}

ad_tensor *nn_cross_entropy_loss(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                                 ad_reduction reduction) {
  const char *fn = "nn_cross_entropy_loss";
  if (!check_loss_args(ctx, fn, logits, target, reduction)) return NULL;
  if (ad_tensor_dtype(target) != AD_I64) {
    ad_set_error(ctx, AD_ERR_DTYPE, "nn_cross_entropy_loss: the target has dtype %s; pass int64 "
                 "class indices", ad_dtype_name(ad_tensor_dtype(target)));
    return NULL;
  }
  return ad_cross_entropy(ctx, logits, target, reduction);
}

ad_tensor *nn_bce_with_logits_loss(ad_ctx *ctx, ad_tensor *logits, ad_tensor *target,
                                   ad_reduction reduction) {
  const char *fn = "nn_bce_with_logits_loss";
  if (!check_loss_args(ctx, fn, logits, target, reduction) ||
      !check_same_shape(ctx, fn, logits, target))
    return NULL;
  return ad_bce_with_logits(ctx, logits, target, reduction);
}
