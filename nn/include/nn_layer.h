/*
 * nn_layer.h: layers, containers and named tensor lists.
 *
 * A layer is a node with a forward function, its own parameters and its
 * children. Parameters are persistent tensors that require a gradient; the
 * layer owns them and frees them in nn_layer_free(), together with its
 * children. Every layer belongs to one context and allocates through it.
 *
 * Errors follow the engine's model (ad_core.h): a function that fails
 * returns NULL or an ad_status and records a message on the context, and a
 * NULL layer or tensor argument makes it fail without overwriting the first
 * error. So a model can be built with a chain of calls and checked once
 * with ad_errcode(ctx).
 *
 * A new layer takes a forward function built from graph operations (this
 * example is compiled and run by tests/nn/test_readme_example.c):
 *
 *     static ad_tensor *scale_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
 *       return ad_mul(ctx, x, nn_layer_param(self, 0));
 *     }
 *
 *     static nn_layer *scale_new(ad_ctx *ctx, int64_t features) {
 *       nn_layer *layer = nn_layer_new(ctx, "Scale", scale_forward, 0);
 *       if (!nn_layer_add_param(layer, "weight", ad_ones(ctx, AD_F32, 1, &features))) {
 *         nn_layer_free(layer);
 *         return NULL;
 *       }
 *       return layer;
 *     }
 */
#ifndef NN_LAYER_H
#define NN_LAYER_H

#include "autodiff.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The maximum length of a parameter or tensor name, terminator included.
   Full names join the names of the enclosing layers with dots ("0.weight"). */
#define NN_NAME_MAX 128

/* ---- Named tensor lists --------------------------------------------- */

/* A tensor with a name, as in a PyTorch state_dict. */
typedef struct nn_named_tensor {
  char name[NN_NAME_MAX];
  ad_tensor *tensor; /* borrowed: the list never frees it */
} nn_named_tensor;

/* A growable list of named tensors: a model's parameters, an optimizer's
   state, or everything a checkpoint holds. Names are unique in a list. */
typedef struct nn_tensor_list {
  ad_ctx *ctx;
  int64_t count;
  int64_t capacity;
  nn_named_tensor *items; /* count entries, in the order they were added */
} nn_tensor_list;

/* Creates an empty list. Returns NULL on failure. Free with
   nn_tensor_list_free(). */
nn_tensor_list *nn_tensor_list_new(ad_ctx *ctx);

/* Frees the list, not the tensors it names. Accepts NULL. */
void nn_tensor_list_free(nn_tensor_list *list);

/* Appends tensor under name. Fails with AD_ERR_ARGUMENT when the name is
   empty, too long or already in the list; the list is unchanged then. */
ad_status nn_tensor_list_add(nn_tensor_list *list, const char *name, ad_tensor *tensor);

/* The tensor named name, or NULL when there is none (no error recorded). */
ad_tensor *nn_tensor_list_find(const nn_tensor_list *list, const char *name);

/* ---- Layers ---------------------------------------------------------- */

typedef struct nn_layer nn_layer;

/* Computes a layer's output from x with graph operations. Returns NULL after
   recording an error. The layer's mode is nn_layer_training(self). */
typedef ad_tensor *(*nn_forward_fn)(ad_ctx *ctx, nn_layer *self, ad_tensor *x);

/* Releases resources that a layer's state refers to; the state block itself,
   the parameters and the children are freed by nn_layer_free(). */
typedef void (*nn_destroy_fn)(nn_layer *self);

/* Creates a layer of kind (a static string such as "Linear", used in
   messages) with state_size zeroed bytes of state for the forward function
   (see nn_layer_state). The layer starts in training mode. Returns NULL on
   failure. Free with nn_layer_free(). */
nn_layer *nn_layer_new(ad_ctx *ctx, const char *kind, nn_forward_fn forward, size_t state_size);

/* Frees the layer, its state, its parameters and its children. Accepts NULL.
   A layer added as a child belongs to its parent: freeing it records
   AD_ERR_ARGUMENT and frees nothing, so free the outermost layer instead.
   The parameters belong to the layer too, so never pass them to
   ad_tensor_free. */
void nn_layer_free(nn_layer *layer);

/* Installs a function that nn_layer_free() calls before freeing the state. */
void nn_layer_set_destroy(nn_layer *layer, nn_destroy_fn destroy);

/* Adds a parameter: a persistent float copy of init (any tensor, usually
   from the arena) that requires a gradient and that the layer owns. Returns
   the parameter, or NULL when layer or init is NULL, init is not floating
   point, or the name is empty, contains a dot, or is taken. */
ad_tensor *nn_layer_add_param(nn_layer *layer, const char *name, ad_tensor *init);

/* Adds child under name and takes ownership of it, also on failure (the
   child is then freed). A NULL child fails and marks the layer as broken:
   its forward pass then fails with AD_ERR_ARGUMENT. Two cases fail without
   freeing the child, because it is still in use: a child that already
   belongs to a layer, and the layer itself or one of its ancestors (a
   cycle). */
ad_status nn_layer_add_child(nn_layer *layer, const char *name, nn_layer *child);

/* Runs the layer's forward function on x. Returns NULL when x is NULL,
   when the layer or one of its children failed to build, or when the forward
   function fails. */
ad_tensor *nn_forward(ad_ctx *ctx, nn_layer *layer, ad_tensor *x);

/* Queries. Out-of-range indices and NULL layers give NULL or 0. */
const char *nn_layer_kind(const nn_layer *layer);
ad_ctx *nn_layer_ctx(const nn_layer *layer);
void *nn_layer_state(nn_layer *layer);
int nn_layer_param_count(const nn_layer *layer);
ad_tensor *nn_layer_param(const nn_layer *layer, int index);
const char *nn_layer_param_name(const nn_layer *layer, int index);
int nn_layer_child_count(const nn_layer *layer);
nn_layer *nn_layer_child(const nn_layer *layer, int index);

/* Sets training (true) or evaluation (false) mode on the layer and all its
   descendants; dropout is active in training mode only. */
void nn_layer_set_training(nn_layer *layer, bool training);
bool nn_layer_training(const nn_layer *layer);

/* Appends every parameter of the layer and its descendants to list, named
   with prefix (may be NULL or "") and the names of the enclosing children,
   as PyTorch's state_dict names them ("0.weight", "0.bias", "2.weight").
   On failure (a broken layer, a name taken, no memory) the entries appended
   before the failure stay in list. */
ad_status nn_layer_collect_params(nn_layer *layer, const char *prefix, nn_tensor_list *list);

/* The total number of parameter elements of the layer and its descendants. */
int64_t nn_layer_param_numel(const nn_layer *layer);

/* ---- Built-in layers ------------------------------------------------- */

/* Weight initialisation schemes (PyTorch's torch.nn.init), each with the
   gain of ReLU, sqrt(2), for Kaiming and a gain of 1 for Xavier:
   Xavier uniform U(-a, a) with a = sqrt(6 / (in + out)), Xavier normal
   N(0, 2 / (in + out)), Kaiming uniform U(-b, b) with b = sqrt(6 / in),
   Kaiming normal N(0, 2 / in). */
typedef enum nn_init {
  NN_INIT_XAVIER_UNIFORM = 0,
  NN_INIT_XAVIER_NORMAL,
  NN_INIT_KAIMING_UNIFORM,
  NN_INIT_KAIMING_NORMAL
} nn_init;

/* y = x w^T + b with float32 parameters "weight" [out, in], drawn from rng
   with init, and "bias" [out], zero. Uses ad_linear. */
nn_layer *nn_linear(ad_ctx *ctx, int64_t in, int64_t out, nn_init init, ad_rng *rng);

/* Activation layers without parameters, applied elementwise. */
nn_layer *nn_relu(ad_ctx *ctx);
/* x where x > 0, else slope x. */
nn_layer *nn_leaky_relu(ad_ctx *ctx, double slope);
nn_layer *nn_sigmoid(ad_ctx *ctx);
nn_layer *nn_tanh(ad_ctx *ctx);
/* x Phi(x) with the exact normal CDF, as PyTorch's default GELU. */
nn_layer *nn_gelu(ad_ctx *ctx);
/* Softmax along axis (negative counts from the end). */
nn_layer *nn_softmax(ad_ctx *ctx, int axis);

/* Inverted dropout. In training mode each element is kept with probability
   1 - p and scaled by 1 / (1 - p), or zeroed, by a fresh mask drawn from rng
   on every forward pass. The caller owns rng and keeps it alive as long as
   the layer. In evaluation mode the input passes unchanged. Requires
   0 <= p <= 1, and p == 1 zeroes every element. */
nn_layer *nn_dropout(ad_ctx *ctx, double p, ad_rng *rng);

/* Reshapes [N, d1, d2, ...] to [N, d1 * d2 * ...]; storage is shared. */
nn_layer *nn_flatten(ad_ctx *ctx);

/* A container that applies its children in the order they were added; the
   children are named "0", "1", ... Its forward pass of zero children returns
   its input. */
nn_layer *nn_sequential(ad_ctx *ctx);

/* Appends layer to a sequential container and takes ownership of it, also on
   failure (see nn_layer_add_child). */
ad_status nn_sequential_add(nn_layer *sequential, nn_layer *layer);

#ifdef __cplusplus
}
#endif

#endif /* NN_LAYER_H */
