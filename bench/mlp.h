/*
 * mlp.h: the 784-256-128-10 multilayer perceptron that the MLP benchmarks
 * train on Fashion-MNIST.
 *
 * The model is built with the nn module: Sequential(Linear(784, 256), ReLU,
 * Linear(256, 128), ReLU, Linear(128, 10)), Kaiming-uniform weights and zero
 * biases. A training step runs in one of two ways:
 *   MLP_API_NN      nn_forward, nn_cross_entropy_loss, ad_backward and
 *                   nn_optimizer_step (SGD with momentum), as a user of the
 *                   nn module writes it; this is the benchmarked form
 *   MLP_API_ENGINE  ad_linear, ad_relu, ad_cross_entropy, ad_backward and a
 *                   float32 loop v = momentum v + grad; p -= lr v, on the
 *                   same parameters, to show what the nn layer costs
 * Both take their batches from nn_image_set_batch, which keeps the images as
 * bytes and converts one batch at a time to float32.
 */
#ifndef MLP_H
#define MLP_H

#include <stdbool.h>
#include <stdint.h>

#include "nn.h"

#define MLP_LAYERS 3
#define MLP_PARAMS (2 * MLP_LAYERS)

/* The directory that Debian's dataset-fashion-mnist package installs. */
#define MLP_DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

/* Layer widths from input to output. */
extern const int64_t mlp_widths[MLP_LAYERS + 1];

typedef enum mlp_api { MLP_API_NN = 0, MLP_API_ENGINE } mlp_api;

typedef struct mlp {
  ad_ctx *ctx;
  mlp_api api;
  nn_layer *model;
  nn_optimizer *optimizer;      /* MLP_API_NN */
  nn_tensor_list *state;        /* the optimizer's state, zeroed by mlp_restore */
  ad_tensor *params[MLP_PARAMS]; /* weight and bias of each Linear, in order */
  ad_tensor *velocity[MLP_PARAMS]; /* MLP_API_ENGINE: persistent momentum buffers */
  float *initial[MLP_PARAMS];   /* malloc'd copies of the initial parameters */
  double lr;
  double momentum;
} mlp;

/* Builds the model in ctx with weights drawn from seed, and the optimizer
   that api uses. Exits with a message on failure. */
void mlp_init(mlp *model, ad_ctx *ctx, mlp_api api, uint64_t seed, double lr, double momentum);

/* Restores the initial parameters and zeroes the optimizer state, so that
   every epoch starting from it repeats the same computation. Allocates
   nothing. */
void mlp_restore(mlp *model);

/* Frees the model, the optimizer and the copies. */
void mlp_free(mlp *model);

/* Runs one training step on the samples indices[0..count) of set and
   returns the batch's mean loss. Exits with a message on an engine error. */
double mlp_step(mlp *model, nn_image_set *set, const int64_t *indices, int64_t count);

/* Options shared by the MLP subcommands. */
typedef struct mlp_options {
  const char *data_dir;
  int64_t samples;   /* samples per epoch; 0 means the whole training set */
  int64_t batch;
  int threads;
  int epochs;        /* timed epochs */
  int warmup;        /* untimed epochs before them */
  int64_t steps;     /* steps of the determinism check */
  mlp_api api;
  bool synthetic;    /* random data instead of the dataset */
  bool lockstep;     /* wait for bench.py before each timed epoch */
  uint64_t seed;
  double lr;
  double momentum;
} mlp_options;

/* Parses the options of an MLP subcommand into options, which contains the
   defaults on entry. Exits with a usage message on an unknown option. */
void mlp_parse_options(mlp_options *options, int argc, char **argv, const char *usage);

/* Loads the training set that options name into set, through ctx, with
   Fashion-MNIST's normalisation. Exits with a message on failure. Release
   with mlp_release_data. */
void mlp_load_data(nn_image_set *set, ad_ctx *ctx, const mlp_options *options);
void mlp_release_data(nn_image_set *set);

#endif /* MLP_H */
