/* layer.c: named tensor lists, the layer tree and the sequential container. */
#include <stdint.h>
#include <time.h>

#include "nn_internal.h"

bool grow_array(ad_ctx *ctx, void **items, int64_t count, int64_t *capacity, size_t size) {
  if (count < *capacity) return true;
  int64_t wanted = *capacity ? 2 * *capacity : 8;
  if (wanted > (int64_t)(SIZE_MAX / 2 / size)) {
    ad_set_error(ctx, AD_ERR_MEMORY, "nn: a list of %lld entries is too large",
                 (long long)wanted);
    return false;
  }
  void *grown = ad_malloc(ctx, (size_t)wanted * size);
  if (!grown) return false;
  if (count) memcpy(grown, *items, (size_t)count * size);
  if (*items) ad_free(ctx, *items, (size_t)*capacity * size);
  *items = grown;
  *capacity = wanted;
  return true;
}

double monotonic_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- Named tensor lists --------------------------------------------- */

nn_tensor_list *nn_tensor_list_new(ad_ctx *ctx) {
  if (!ctx) return NULL;
  nn_tensor_list *list = ad_malloc(ctx, sizeof *list);
  if (!list) return NULL;
  memset(list, 0, sizeof *list);
  list->ctx = ctx;
  return list;
}

void nn_tensor_list_free(nn_tensor_list *list) {
  if (!list) return;
  ad_ctx *ctx = list->ctx;
  if (list->items) ad_free(ctx, list->items, (size_t)list->capacity * sizeof *list->items);
  ad_free(ctx, list, sizeof *list);
}

ad_tensor *nn_tensor_list_find(const nn_tensor_list *list, const char *name) {
  if (!list || !name) return NULL;
  for (int64_t i = 0; i < list->count; i++)
    if (strcmp(list->items[i].name, name) == 0) return list->items[i].tensor;
  return NULL;
}

ad_status nn_tensor_list_add(nn_tensor_list *list, const char *name, ad_tensor *tensor) {
  const char *fn = "nn_tensor_list_add";
  if (!list) return AD_ERR_ARGUMENT;
  ad_ctx *ctx = list->ctx;
  if (!tensor) return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the tensor for \"%s\" is NULL", fn,
                                   name ? name : "(null)");
  if (!name || !name[0])
    return ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the name is empty; give every tensor a name",
                        fn);
  if (strlen(name) >= NN_NAME_MAX)
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "%s: the name \"%.40s...\" has %zu bytes; the maximum is %d", fn, name,
                        strlen(name), NN_NAME_MAX - 1);
  if (nn_tensor_list_find(list, name))
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "%s: the name \"%s\" is already in the list; names must be unique", fn,
                        name);
  if (!grow_array(ctx, (void **)&list->items, list->count, &list->capacity, sizeof *list->items))
    return ad_errcode(ctx) != AD_OK ? ad_errcode(ctx) : AD_ERR_MEMORY;
  nn_named_tensor *item = &list->items[list->count++];
  copy_name(item->name, name);
  item->tensor = tensor;
  return AD_OK;
}

/* ---- Layers ---------------------------------------------------------- */

nn_layer *nn_layer_new(ad_ctx *ctx, const char *kind, nn_forward_fn forward, size_t state_size) {
  if (!ctx) return NULL;
  if (!kind || !forward) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_layer_new: the %s is NULL",
                 kind ? "forward function" : "kind");
    return NULL;
  }
  /* The state starts at an offset aligned for any scalar type. */
  size_t head = (sizeof(nn_layer) + 15) & ~(size_t)15;
  if (state_size > SIZE_MAX - head) {
    ad_set_error(ctx, AD_ERR_MEMORY, "nn_layer_new: a state of %zu bytes is too large",
                 state_size);
    return NULL;
  }
  nn_layer *layer = ad_malloc(ctx, head + state_size);
  if (!layer) return NULL;
  memset(layer, 0, head + state_size);
  layer->ctx = ctx;
  layer->kind = kind;
  layer->forward = forward;
  layer->state = state_size ? (char *)layer + head : NULL;
  layer->alloc_size = head + state_size;
  layer->training = true;
  return layer;
}

/* Frees layer and everything below it, whether or not it has a parent. */
static void free_tree(nn_layer *layer) {
  ad_ctx *ctx = layer->ctx;
  if (layer->destroy) layer->destroy(layer);
  for (int64_t i = 0; i < layer->nchildren; i++) free_tree(layer->children[i].layer);
  for (int64_t i = 0; i < layer->nparams; i++) ad_tensor_free(layer->params[i].tensor);
  if (layer->children)
    ad_free(ctx, layer->children, (size_t)layer->children_capacity * sizeof *layer->children);
  if (layer->params)
    ad_free(ctx, layer->params, (size_t)layer->params_capacity * sizeof *layer->params);
  ad_free(ctx, layer, layer->alloc_size);
}

void nn_layer_free(nn_layer *layer) {
  if (!layer) return;
  const nn_layer *parent = layer->parent;
  if (parent) {
    /* Freeing a child would leave its parent with a dangling pointer, so
       the parent alone frees it. */
    const char *name = "?";
    for (int64_t i = 0; i < parent->nchildren; i++)
      if (parent->children[i].layer == layer) name = parent->children[i].name;
    ad_set_error(layer->ctx, AD_ERR_ARGUMENT, "nn_layer_free: the %s layer \"%s\" belongs to a "
                 "parent %s layer, which frees it; free the parent instead", layer->kind, name,
                 parent->kind);
    return;
  }
  free_tree(layer);
}

void nn_layer_set_destroy(nn_layer *layer, nn_destroy_fn destroy) {
  if (layer) layer->destroy = destroy;
}

/* Checks a local name: not empty, no dot, fits NN_NAME_MAX. */
static bool valid_local_name(ad_ctx *ctx, const char *fn, const char *kind, const char *name) {
  const char *problem = NULL;
  if (!name || !name[0]) problem = "is empty";
  else if (strchr(name, '.')) problem = "contains a dot, which separates the parts of full names";
  else if (strlen(name) >= NN_NAME_MAX) problem = "is too long";
  if (!problem) return true;
  ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the name \"%.40s\" of a %s layer %s", fn,
               name ? name : "(null)", kind, problem);
  return false;
}

static bool param_name_taken(const nn_layer *layer, const char *name) {
  for (int64_t i = 0; i < layer->nparams; i++)
    if (strcmp(layer->params[i].name, name) == 0) return true;
  for (int64_t i = 0; i < layer->nchildren; i++)
    if (strcmp(layer->children[i].name, name) == 0) return true;
  return false;
}

ad_tensor *nn_layer_add_param(nn_layer *layer, const char *name, ad_tensor *init) {
  const char *fn = "nn_layer_add_param";
  if (!layer) return NULL;
  ad_ctx *ctx = layer->ctx;
  if (!init) {
    layer->broken = true;
    return NULL;
  }
  if (ad_tensor_ctx(init) != ctx) {
    layer->broken = true;
    ad_set_error(ctx, AD_ERR_CONTEXT, "%s: the initial value of parameter \"%s\" of a %s layer "
                 "belongs to another context", fn, name ? name : "(null)", layer->kind);
    return NULL;
  }

  ad_dtype dtype = ad_tensor_dtype(init);
  if (dtype != AD_F32 && dtype != AD_F64) {
    layer->broken = true;
    ad_set_error(ctx, AD_ERR_DTYPE, "%s: parameter \"%s\" of a %s layer has dtype %s; "
                 "parameters must be float32 or float64", fn, name ? name : "(null)",
                 layer->kind, ad_dtype_name(dtype));
    return NULL;
  }
  if (!valid_local_name(ctx, fn, layer->kind, name)) {
    layer->broken = true;
    return NULL;
  }
  if (param_name_taken(layer, name)) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: a %s layer already has a member named \"%s\"", fn,
                 layer->kind, name);
    layer->broken = true;
    return NULL;
  }

  if (!grow_array(ctx, (void **)&layer->params, layer->nparams, &layer->params_capacity,
                  sizeof *layer->params)) {
    layer->broken = true;
    return NULL;
  }
  ad_tensor *param = ad_persist(init);
  if (!param || ad_set_requires_grad(param, true) != AD_OK) {
    ad_tensor_free(param);
    layer->broken = true;
    return NULL;
  }
  nn_named_tensor *slot = &layer->params[layer->nparams++];
  copy_name(slot->name, name);
  slot->tensor = param;
  return param;
}

/* True when candidate is layer itself or one of its ancestors. */
static bool is_self_or_ancestor(const nn_layer *layer, const nn_layer *candidate) {
  for (const nn_layer *l = layer; l; l = l->parent)
    if (l == candidate) return true;
  return false;
}

ad_status nn_layer_add_child(nn_layer *layer, const char *name, nn_layer *child) {
  const char *fn = "nn_layer_add_child";
  if (!layer) {
    nn_layer_free(child);
    return AD_ERR_ARGUMENT;
  }
  ad_ctx *ctx = layer->ctx;
  /* A child that already has an owner, or that would contain its own
     parent, is left alone: freeing it would free a layer still in use. */
  if (child && (child->parent || is_self_or_ancestor(layer, child))) {
    layer->broken = true;
    return ad_set_error(ctx, AD_ERR_ARGUMENT,
                        "%s: the %s layer given as child \"%s\" %s; a layer can have one "
                        "parent and cannot contain itself",
                        fn, child->kind, name ? name : "(null)",
                        child->parent ? "already belongs to another layer"
                                      : "is this layer or one of its ancestors");
  }
  ad_status status = AD_OK;
  if (!child) {
    status = ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: the child \"%s\" of a %s layer is NULL "
                          "because creating it failed", fn, name ? name : "(null)", layer->kind);
  } else if (child->ctx != ctx) {
    status = ad_set_error(ctx, AD_ERR_CONTEXT, "%s: the child \"%s\" belongs to another context",
                          fn, name ? name : "(null)");
  } else if (!valid_local_name(ctx, fn, layer->kind, name)) {
    status = AD_ERR_ARGUMENT;
  } else if (param_name_taken(layer, name)) {
    status = ad_set_error(ctx, AD_ERR_ARGUMENT, "%s: a %s layer already has a member named "
                          "\"%s\"", fn, layer->kind, name);
  } else if (!grow_array(ctx, (void **)&layer->children, layer->nchildren,
                         &layer->children_capacity, sizeof *layer->children)) {
    status = AD_ERR_MEMORY;
  }
  if (status != AD_OK) {
    layer->broken = true;
    nn_layer_free(child);
    return status;
  }
  nn_child *slot = &layer->children[layer->nchildren++];
  copy_name(slot->name, name);
  slot->layer = child;
  child->parent = layer;
  child->training = layer->training;
  return AD_OK;
}

/* True when the layer or a descendant failed to build. */
static bool tree_broken(const nn_layer *layer) {
  if (layer->broken) return true;
  for (int64_t i = 0; i < layer->nchildren; i++)
    if (tree_broken(layer->children[i].layer)) return true;
  return false;
}

ad_tensor *nn_forward(ad_ctx *ctx, nn_layer *layer, ad_tensor *x) {
  if (!ctx) return NULL;
  if (!layer) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_forward: the layer is NULL");
    return NULL;
  }
  if (!x) return NULL;
  if (layer->ctx != ctx || ad_tensor_ctx(x) != ctx) {
    ad_set_error(ctx, AD_ERR_CONTEXT, "nn_forward: the %s layer and its input must belong to the "
                 "context passed in", layer->kind);
    return NULL;
  }
  if (layer->broken) {
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_forward: the %s layer is incomplete because adding "
                 "one of its parameters or children failed; rebuild it", layer->kind);
    return NULL;
  }
  ad_tensor *y = layer->forward(ctx, layer, x);
  if (!y && ad_errcode(ctx) == AD_OK)
    ad_set_error(ctx, AD_ERR_ARGUMENT, "nn_forward: the forward function of the %s layer returned "
                 "NULL without recording an error", layer->kind);
  return y;
}

/* ---- Queries --------------------------------------------------------- */

const char *nn_layer_kind(const nn_layer *layer) { return layer ? layer->kind : NULL; }
ad_ctx *nn_layer_ctx(const nn_layer *layer) { return layer ? layer->ctx : NULL; }
void *nn_layer_state(nn_layer *layer) { return layer ? layer->state : NULL; }
int nn_layer_param_count(const nn_layer *layer) { return layer ? (int)layer->nparams : 0; }
int nn_layer_child_count(const nn_layer *layer) { return layer ? (int)layer->nchildren : 0; }

ad_tensor *nn_layer_param(const nn_layer *layer, int index) {
  if (!layer || index < 0 || index >= layer->nparams) return NULL;
  return layer->params[index].tensor;
}

const char *nn_layer_param_name(const nn_layer *layer, int index) {
  if (!layer || index < 0 || index >= layer->nparams) return NULL;
  return layer->params[index].name;
}

nn_layer *nn_layer_child(const nn_layer *layer, int index) {
  if (!layer || index < 0 || index >= layer->nchildren) return NULL;
  return layer->children[index].layer;
}

void nn_layer_set_training(nn_layer *layer, bool training) {
  if (!layer) return;
  layer->training = training;
  for (int64_t i = 0; i < layer->nchildren; i++)
    nn_layer_set_training(layer->children[i].layer, training);
}

bool nn_layer_training(const nn_layer *layer) { return layer && layer->training; }

int64_t nn_layer_param_numel(const nn_layer *layer) {
  if (!layer) return 0;
  int64_t total = 0;
  for (int64_t i = 0; i < layer->nparams; i++) total += ad_numel(layer->params[i].tensor);
  for (int64_t i = 0; i < layer->nchildren; i++)
    total += nn_layer_param_numel(layer->children[i].layer);
  return total;
}

/* Writes prefix + "." + name (or name alone for an empty prefix) into out. */
static bool join_name(char *out, const char *prefix, const char *name) {
  int n = prefix && prefix[0] ? snprintf(out, NN_NAME_MAX, "%s.%s", prefix, name)
                              : snprintf(out, NN_NAME_MAX, "%s", name);
  return n >= 0 && n < NN_NAME_MAX;
}

ad_status nn_layer_collect_params(nn_layer *layer, const char *prefix, nn_tensor_list *list) {
  const char *fn = "nn_layer_collect_params";
  if (!list) return AD_ERR_ARGUMENT;
  if (!layer) return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "%s: the layer is NULL", fn);
  if (tree_broken(layer))
    return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "%s: the %s layer is incomplete because "
                        "adding one of its parameters or children failed", fn, layer->kind);
  char full[NN_NAME_MAX];
  for (int64_t i = 0; i < layer->nparams; i++) {
    if (!join_name(full, prefix, layer->params[i].name))
      return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "%s: the full name of parameter \"%s\" "
                          "under \"%s\" is longer than %d bytes", fn, layer->params[i].name,
                          prefix ? prefix : "", NN_NAME_MAX - 1);
    ad_status status = nn_tensor_list_add(list, full, layer->params[i].tensor);
    if (status != AD_OK) return status;
  }
  for (int64_t i = 0; i < layer->nchildren; i++) {
    if (!join_name(full, prefix, layer->children[i].name))
      return ad_set_error(list->ctx, AD_ERR_ARGUMENT, "%s: the full name of child \"%s\" under "
                          "\"%s\" is longer than %d bytes", fn, layer->children[i].name,
                          prefix ? prefix : "", NN_NAME_MAX - 1);
    ad_status status = nn_layer_collect_params(layer->children[i].layer, full, list);
    if (status != AD_OK) return status;
  }
  return AD_OK;
}

/* ---- Sequential ------------------------------------------------------ */

static ad_tensor *sequential_forward(ad_ctx *ctx, nn_layer *self, ad_tensor *x) {
  for (int64_t i = 0; i < self->nchildren && x; i++)
    x = nn_forward(ctx, self->children[i].layer, x);
  return x;
}

nn_layer *nn_sequential(ad_ctx *ctx) {
  return nn_layer_new(ctx, "Sequential", sequential_forward, 0);
}

ad_status nn_sequential_add(nn_layer *sequential, nn_layer *layer) {
  if (!sequential) {
    nn_layer_free(layer);
    return AD_ERR_ARGUMENT;
  }
  if (sequential->forward != sequential_forward) {
    nn_layer_free(layer);
    return ad_set_error(sequential->ctx, AD_ERR_ARGUMENT, "nn_sequential_add: the container is "
                        "a %s layer, not a Sequential one", sequential->kind);
  }
  char name[32];
  snprintf(name, sizeof name, "%lld", (long long)sequential->nchildren);
  return nn_layer_add_child(sequential, name, layer);
}
