/*
 * nn.h: the whole public interface of the network module, built on the
 * autodiff engine's public interface (autodiff.h).
 *
 *   nn_layer.h       layers, containers, parameters and named tensor lists
 *   nn_loss.h        loss functions
 *   nn_optim.h       optimizers, gradient clipping, learning-rate schedules
 *   nn_train.h       mini-batches, evaluation and progress reports
 *   nn_data.h        IDX files (MNIST, Fashion-MNIST) and image sets
 *   nn_checkpoint.h  safetensors checkpoints
 */
#ifndef NN_H
#define NN_H

#include "autodiff.h"
#include "nn_checkpoint.h"
#include "nn_data.h"
#include "nn_layer.h"
#include "nn_loss.h"
#include "nn_optim.h"
#include "nn_train.h"

#endif /* NN_H */
