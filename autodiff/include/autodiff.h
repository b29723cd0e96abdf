/*
 * autodiff.h: the whole public interface of the engine.
 *
 *   ad_core.h     status codes, contexts, memory, tensors, random numbers
 *   ad_ops.h      differentiable operations
 *   ad_grad.h     backward, gradients, Jacobians, Hessians, gradient checks
 *   ad_inspect.h  tracing the backward sweep, graph export (DOT)
 *   ad_expr.h     C expressions given as text, evaluated and differentiated
 */
#ifndef AUTODIFF_H
#define AUTODIFF_H

#include "ad_core.h"
#include "ad_expr.h"
#include "ad_grad.h"
#include "ad_inspect.h"
#include "ad_ops.h"

#endif /* AUTODIFF_H */
