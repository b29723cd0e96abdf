/*
 * Errors: each mistake in the table must return NULL or a status, record the
 * right status and a message that names the function and the shapes or
 * values involved, and leave the context usable. NULL results propagate
 * through later calls without replacing the first error.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adtest.h"

/* Tensors every row can use; other_ctx is a second context. */
typedef struct fixture {
  ad_ctx *ctx, *other_ctx;
  ad_tensor *m23;   /* float64 [2, 3] */
  ad_tensor *v4;    /* float64 [4] */
  ad_tensor *m45;   /* float64 [4, 5] */
  ad_tensor *f23;   /* float32 [2, 3] */
  ad_tensor *idx;   /* int64 [3] = {0, 5, 1} */
  ad_tensor *s;     /* float64 0-d */
  ad_tensor *other; /* float64 [2, 3] of other_ctx */
} fixture;

static fixture make_fixture(void) {
  fixture f;
  f.ctx = ad_ctx_new(NULL);
  f.other_ctx = ad_ctx_new(NULL);
  ck_assert_ptr_nonnull(f.ctx);
  ck_assert_ptr_nonnull(f.other_ctx);
  f.m23 = ad_ones(f.ctx, AD_F64, 2, (int64_t[]){2, 3});
  f.v4 = ad_ones(f.ctx, AD_F64, 1, (int64_t[]){4});
  f.m45 = ad_ones(f.ctx, AD_F64, 2, (int64_t[]){4, 5});
  f.f23 = ad_ones(f.ctx, AD_F32, 2, (int64_t[]){2, 3});
  f.idx = ad_from_i64(f.ctx, 1, (int64_t[]){3}, (const int64_t[]){0, 5, 1});
  f.s = ad_scalar(f.ctx, AD_F64, 2);
  f.other = ad_ones(f.other_ctx, AD_F64, 2, (int64_t[]){2, 3});
  ck_assert_ptr_nonnull(f.other);
  ck_assert_int_eq(ad_errcode(f.ctx), AD_OK);
  return f;
}

/* A row's call: returns true when the call reported failure (a NULL
   result or a status other than AD_OK). */
typedef bool (*error_call)(fixture *f);

typedef struct error_row {
  const char *name;
  error_call call;
  ad_status status;
  const char *parts[5]; /* substrings of the message; NULL ends */
} error_row;

static bool null_result(const void *p) { return p == NULL; }

/* ---- Shapes ------------------------------------------------------------ */

static bool add_shapes(fixture *f) { return null_result(ad_add(f->ctx, f->m23, f->v4)); }
static bool where_shapes(fixture *f) {
  return null_result(ad_where(f->ctx, f->v4, f->m23, f->m23));
}
static bool matmul_inner(fixture *f) { return null_result(ad_matmul(f->ctx, f->m23, f->m45)); }
static bool matmul_scalar(fixture *f) { return null_result(ad_matmul(f->ctx, f->s, f->m23)); }
static bool dot_lengths(fixture *f) {
  return null_result(ad_dot(f->ctx, f->v4, ad_ones(f->ctx, AD_F64, 1, (int64_t[]){3})));
}
static bool linear_shapes(fixture *f) {
  return null_result(ad_linear(f->ctx, f->m23, f->m45, NULL));
}
static bool linear_bias(fixture *f) {
  ad_tensor *w = ad_ones(f->ctx, AD_F64, 2, (int64_t[]){4, 3});
  ad_tensor *b = ad_ones(f->ctx, AD_F64, 1, (int64_t[]){5});
  return null_result(ad_linear(f->ctx, f->m23, w, b));
}
static bool reshape_count(fixture *f) {
  return null_result(ad_reshape(f->ctx, f->m23, 2, (int64_t[]){4, 2}));
}
static bool reshape_two_inferred(fixture *f) {
  return null_result(ad_reshape(f->ctx, f->m23, 2, (int64_t[]){-1, -1}));
}
static bool expand_shape(fixture *f) {
  return null_result(ad_expand(f->ctx, f->m23, 2, (int64_t[]){4, 3}));
}
static bool squeeze_size(fixture *f) { return null_result(ad_squeeze(f->ctx, f->m23, 1)); }
static bool concat_shapes(fixture *f) {
  ad_tensor *parts[2] = {f->m23, f->m45};
  return null_result(ad_concat(f->ctx, 2, parts, 0));
}
static bool stack_shapes(fixture *f) {
  ad_tensor *parts[2] = {f->m23, f->v4};
  return null_result(ad_stack(f->ctx, 2, parts, 0));
}
static bool mse_shapes(fixture *f) {
  return null_result(ad_mse(f->ctx, f->m23, f->m45, AD_REDUCE_MEAN));
}
static bool cross_entropy_target_shape(fixture *f) {
  return null_result(ad_cross_entropy(f->ctx, f->m23, f->idx, AD_REDUCE_MEAN));
}
static bool max_of_empty(fixture *f) {
  ad_tensor *e = ad_zeros(f->ctx, AD_F64, 2, (int64_t[]){0, 3});
  return null_result(ad_max(f->ctx, e, 1, (const int[]){0}, false));
}
static bool too_many_dims(fixture *f) {
  int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  return null_result(ad_zeros(f->ctx, AD_F64, 9, shape));
}
static bool negative_dim(fixture *f) {
  return null_result(ad_zeros(f->ctx, AD_F64, 2, (int64_t[]){2, -3}));
}
static bool item_of_many(fixture *f) {
  double v;
  return ad_item(f->m23, &v) != AD_OK;
}
static bool copy_shapes(fixture *f) { return ad_copy_into(f->m23, f->v4) != AD_OK; }
static bool hvp_vector_shape(fixture *f);

/* ---- Dtypes ------------------------------------------------------------ */

static bool add_dtypes(fixture *f) { return null_result(ad_add(f->ctx, f->m23, f->f23)); }
static bool exp_of_int(fixture *f) { return null_result(ad_exp(f->ctx, f->idx)); }
static bool indices_float(fixture *f) {
  return null_result(ad_index_select(f->ctx, f->m23, 0, f->v4));
}
static bool target_float(fixture *f) {
  return null_result(ad_cross_entropy(f->ctx, f->m23, f->m23, AD_REDUCE_MEAN));
}
static bool data_wrong_dtype(fixture *f) { return null_result(ad_data_f32(f->m23)); }
static bool random_int(fixture *f) {
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  return null_result(ad_rand_uniform(f->ctx, &rng, AD_I64, 1, (int64_t[]){2}, 0, 1));
}
static bool invalid_dtype(fixture *f) {
  return null_result(ad_zeros(f->ctx, (ad_dtype)7, 1, (int64_t[]){2}));
}

/* ---- Axes -------------------------------------------------------------- */

static bool sum_axis(fixture *f) {
  return null_result(ad_sum(f->ctx, f->m23, 1, (const int[]){2}, false));
}
static bool softmax_axis(fixture *f) { return null_result(ad_softmax(f->ctx, f->m23, -3)); }
static bool argmax_scalar(fixture *f) { return null_result(ad_argmax(f->ctx, f->s, 0, false)); }
static bool repeated_axes(fixture *f) {
  return null_result(ad_mean(f->ctx, f->m23, 2, (const int[]){1, -1}, false));
}
static bool permute_repeated(fixture *f) {
  return null_result(ad_permute(f->ctx, f->m23, (const int[]){0, 0}));
}
static bool transpose_axis(fixture *f) { return null_result(ad_transpose(f->ctx, f->m23, 0, 5)); }
static bool dim_axis(fixture *f) { return ad_dim(f->m23, 3) == -1; }

/* ---- Indices ------------------------------------------------------------ */

static bool index_select_range(fixture *f) {
  return null_result(ad_index_select(f->ctx, f->m23, 1, f->idx));
}
static bool gather_range(fixture *f) {
  ad_tensor *index = ad_from_i64(f->ctx, 2, (int64_t[]){1, 1}, (const int64_t[]){-4});
  return null_result(ad_gather(f->ctx, f->m23, 1, index));
}
static bool cross_entropy_class(fixture *f) {
  ad_tensor *target = ad_from_i64(f->ctx, 1, (int64_t[]){2}, (const int64_t[]){0, 3});
  return null_result(ad_cross_entropy(f->ctx, f->m23, target, AD_REDUCE_MEAN));
}
static bool cross_entropy_negative(fixture *f) {
  ad_tensor *target = ad_from_i64(f->ctx, 1, (int64_t[]){2}, (const int64_t[]){-1, 0});
  return null_result(ad_cross_entropy(f->ctx, f->m23, target, AD_REDUCE_MEAN));
}
static bool one_hot_range(fixture *f) { return null_result(ad_one_hot(f->ctx, f->idx, 3, AD_F64)); }
static bool get_range(fixture *f) {
  double v;
  return ad_get(f->m23, (const int64_t[]){1, 3}, &v) != AD_OK;
}

/* ---- Arguments --------------------------------------------------------- */

static bool add_null(fixture *f) { return null_result(ad_add(f->ctx, NULL, f->m23)); }
static bool from_null_data(fixture *f) {
  return null_result(ad_from_f64(f->ctx, 1, (int64_t[]){3}, NULL));
}
static bool shape_null(fixture *f) { return null_result(ad_zeros(f->ctx, AD_F64, 2, NULL)); }
static bool gradients_null(fixture *f) {
  return ad_gradients(f->ctx, 1, NULL, NULL, 1, &f->m23, NULL, 0) != AD_OK;
}
static bool gradients_flags(fixture *f) {
  ad_tensor *x = variable(ad_scalar(f->ctx, AD_F64, 1)), *g;
  return ad_gradients(f->ctx, 1, &x, NULL, 1, &x, &g, 0x10) != AD_OK;
}
static bool clamp_bounds(fixture *f) { return null_result(ad_clamp(f->ctx, f->m23, 2, 1)); }
static bool clamp_nan(fixture *f) { return null_result(ad_clamp(f->ctx, f->m23, NAN, 1)); }
static bool var_correction(fixture *f) {
  return null_result(ad_var(f->ctx, f->m23, 0, NULL, -1, false));
}
static bool slice_step(fixture *f) { return null_result(ad_slice(f->ctx, f->m23, 1, 0, 2, 0)); }
static bool arange_step(fixture *f) { return null_result(ad_arange(f->ctx, AD_F64, 0, 1, 0)); }
static bool linspace_count(fixture *f) {
  return null_result(ad_linspace(f->ctx, AD_F64, 0, 1, -1));
}
static bool full_int_fraction(fixture *f) {
  return null_result(ad_full(f->ctx, AD_I64, 1, (int64_t[]){2}, 1.5));
}
static bool cast_nan_to_int(fixture *f) {
  ad_tensor *t = tensor_of(f->ctx, "2", (const double[]){1, NAN});
  return null_result(ad_cast(f->ctx, t, AD_I64));
}
static bool rng_null(fixture *f) {
  return null_result(ad_rand_normal(f->ctx, NULL, AD_F64, 1, (int64_t[]){2}, 0, 1));
}
static bool normal_stddev(fixture *f) {
  ad_rng rng;
  ad_rng_seed(&rng, 1);
  return null_result(ad_rand_normal(f->ctx, &rng, AD_F64, 1, (int64_t[]){2}, 0, -1));
}
static bool threads_zero(fixture *f) { return ad_ctx_set_threads(f->ctx, 0) != AD_OK; }
static bool reduction_code(fixture *f) {
  return null_result(ad_mse(f->ctx, f->m23, f->m23, (ad_reduction)9));
}
static bool print_null_stream(fixture *f) { return ad_print(f->m23, NULL) != AD_OK; }
static bool jacobian_null(fixture *f) { return null_result(ad_jacobian(f->ctx, NULL, NULL, f->s)); }
static bool concat_none(fixture *f) { return null_result(ad_concat(f->ctx, 0, NULL, 0)); }

static ad_tensor *square_sum(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_sum_all(ctx, ad_mul(ctx, in[0], in[0]));
}
static bool hvp_vector_shape(fixture *f) {
  return null_result(ad_hvp(f->ctx, square_sum, NULL, f->m23, f->v4));
}

static ad_tensor *square(ad_ctx *ctx, ad_tensor *const *in, void *user) {
  (void)user;
  return ad_mul(ctx, in[0], in[0]);
}
static bool hessian_non_scalar(fixture *f) {
  return null_result(ad_hessian(f->ctx, square, NULL, f->m23));
}
static bool jacobian_too_many_dims(fixture *f) {
  int64_t shape[5] = {1, 1, 1, 1, 2};
  return null_result(ad_jacobian(f->ctx, square, NULL, ad_ones(f->ctx, AD_F64, 5, shape)));
}
static bool unsqueeze_eight_dims(fixture *f) {
  int64_t shape[8] = {1, 1, 1, 1, 1, 1, 1, 2};
  return null_result(ad_unsqueeze(f->ctx, ad_ones(f->ctx, AD_F64, 8, shape), 0));
}
static bool backward_int_output(fixture *f) { return ad_backward(f->ctx, f->idx, NULL) != AD_OK; }

/* ---- Contexts ----------------------------------------------------------- */

static bool add_contexts(fixture *f) { return null_result(ad_add(f->ctx, f->m23, f->other)); }
static bool matmul_contexts(fixture *f) {
  return null_result(ad_matmul(f->ctx, f->other, f->m23));
}
static bool concat_contexts(fixture *f) {
  ad_tensor *parts[2] = {f->m23, f->other};
  return null_result(ad_concat(f->ctx, 2, parts, 0));
}
static bool backward_contexts(fixture *f) {
  ad_tensor *x = variable(ad_ones(f->other_ctx, AD_F64, 0, NULL));
  return ad_backward(f->ctx, ad_mul(f->other_ctx, x, x), NULL) != AD_OK;
}

#define PARTS(...) {__VA_ARGS__, NULL}

static bool reshape_overflow(fixture *f) {
  /* 2^62 + 3 times 4 wraps around to 12 in int64 arithmetic. */
  return null_result(ad_reshape(f->ctx, f->m23, 2, (int64_t[]){((int64_t)1 << 62) + 3, 4}));
}
static bool concat_null_entry(fixture *f) {
  ad_tensor *list[3] = {f->m23, f->m23, NULL};
  return null_result(ad_concat(f->ctx, 3, list, 0));
}

static const error_row rows[] = {
    {"reshape overflow", reshape_overflow, AD_ERR_SHAPE,
     PARTS("ad_reshape", "more elements than an int64", "[2, 3]")},
    {"concat NULL entry", concat_null_entry, AD_ERR_ARGUMENT,
     PARTS("ad_concat", "tensors[2] of 3", "NULL")},
    {"add shapes", add_shapes, AD_ERR_SHAPE, PARTS("ad_add", "[2, 3]", "[4]", "broadcast")},
    {"where shapes", where_shapes, AD_ERR_SHAPE, PARTS("ad_where", "[4]", "[2, 3]")},
    {"matmul inner", matmul_inner, AD_ERR_SHAPE, PARTS("ad_matmul", "[2, 3]", "[4, 5]", "K = 3")},
    {"matmul scalar", matmul_scalar, AD_ERR_SHAPE, PARTS("ad_matmul", "0-d", "ad_mul")},
    {"dot lengths", dot_lengths, AD_ERR_SHAPE, PARTS("ad_dot", "[4]", "[3]")},
    {"linear shapes", linear_shapes, AD_ERR_SHAPE, PARTS("ad_linear", "[2, 3]", "[4, 5]")},
    {"linear bias", linear_bias, AD_ERR_SHAPE, PARTS("ad_linear", "bias", "[5]", "[4]")},
    {"reshape count", reshape_count, AD_ERR_SHAPE, PARTS("ad_reshape", "[2, 3]", "[4, 2]", "6")},
    {"reshape two -1", reshape_two_inferred, AD_ERR_SHAPE, PARTS("ad_reshape", "-1")},
    {"expand shape", expand_shape, AD_ERR_SHAPE, PARTS("ad_expand", "[2, 3]", "[4, 3]")},
    {"squeeze size", squeeze_size, AD_ERR_SHAPE, PARTS("ad_squeeze", "[2, 3]", "not 1")},
    {"concat shapes", concat_shapes, AD_ERR_SHAPE, PARTS("ad_concat", "[4, 5]", "[2, 3]")},
    {"stack shapes", stack_shapes, AD_ERR_SHAPE, PARTS("ad_stack", "[4]", "[2, 3]")},
    {"mse shapes", mse_shapes, AD_ERR_SHAPE, PARTS("ad_mse", "[2, 3]", "[4, 5]")},
    {"cross-entropy target shape", cross_entropy_target_shape, AD_ERR_SHAPE,
     PARTS("ad_cross_entropy", "[2, 3]", "[3]")},
    {"max of empty", max_of_empty, AD_ERR_SHAPE, PARTS("ad_max", "[0, 3]", "zero elements")},
    {"too many dims", too_many_dims, AD_ERR_SHAPE, PARTS("ad_zeros", "9", "8")},
    {"negative dim", negative_dim, AD_ERR_SHAPE, PARTS("ad_zeros", "[2, -3]", "negative")},
    {"item of many", item_of_many, AD_ERR_SHAPE, PARTS("ad_item", "[2, 3]", "6 elements")},
    {"copy shapes", copy_shapes, AD_ERR_SHAPE, PARTS("ad_copy_into", "[2, 3]", "[4]")},
    {"hvp vector", hvp_vector_shape, AD_ERR_SHAPE, PARTS("ad_hvp", "[4]", "[2, 3]")},
    {"hessian non-scalar", hessian_non_scalar, AD_ERR_SHAPE,
     PARTS("ad_hessian", "one element", "[2, 3]")},
    {"jacobian dims", jacobian_too_many_dims, AD_ERR_SHAPE,
     PARTS("ad_jacobian", "[1, 1, 1, 1, 2]", "8 dimensions")},
    {"unsqueeze 8-d", unsqueeze_eight_dims, AD_ERR_SHAPE, PARTS("ad_unsqueeze", "8")},
    {"backward int output", backward_int_output, AD_ERR_DTYPE, PARTS("ad_backward", "int64")},

    {"add dtypes", add_dtypes, AD_ERR_DTYPE, PARTS("ad_add", "float64", "float32", "ad_cast")},
    {"exp of int", exp_of_int, AD_ERR_DTYPE, PARTS("ad_exp", "int64", "ad_cast")},
    {"float indices", indices_float, AD_ERR_DTYPE, PARTS("ad_index_select", "float64", "int64")},
    {"float target", target_float, AD_ERR_DTYPE, PARTS("ad_cross_entropy", "float64", "int64")},
    {"data dtype", data_wrong_dtype, AD_ERR_DTYPE, PARTS("ad_data_f32", "float64", "float32")},
    {"random int", random_int, AD_ERR_DTYPE, PARTS("ad_rand_uniform", "int64")},
    {"invalid dtype", invalid_dtype, AD_ERR_DTYPE, PARTS("ad_zeros", "7")},

    {"sum axis", sum_axis, AD_ERR_AXIS, PARTS("ad_sum", "axis 2", "-2 to 1")},
    {"softmax axis", softmax_axis, AD_ERR_AXIS, PARTS("ad_softmax", "axis -3", "2 dimensions")},
    {"argmax of 0-d", argmax_scalar, AD_ERR_AXIS, PARTS("ad_argmax", "0-d")},
    {"repeated axes", repeated_axes, AD_ERR_AXIS, PARTS("ad_mean", "axis -1", "twice")},
    {"permute repeated", permute_repeated, AD_ERR_AXIS, PARTS("ad_permute", "axis 0", "twice")},
    {"transpose axis", transpose_axis, AD_ERR_AXIS, PARTS("ad_transpose", "axis 5")},
    {"dim axis", dim_axis, AD_ERR_AXIS, PARTS("ad_dim", "axis 3")},

    {"index_select range", index_select_range, AD_ERR_INDEX,
     PARTS("ad_index_select", "index 5", "size 3", "-3 to 2")},
    {"gather range", gather_range, AD_ERR_INDEX, PARTS("ad_gather", "index -4", "size 3")},
    {"cross-entropy class", cross_entropy_class, AD_ERR_INDEX,
     PARTS("ad_cross_entropy", "target 3", "position 1", "[0, 3)")},
    {"cross-entropy negative", cross_entropy_negative, AD_ERR_INDEX,
     PARTS("ad_cross_entropy", "target -1", "[0, 3)")},
    {"one_hot range", one_hot_range, AD_ERR_INDEX, PARTS("ad_one_hot", "index 5", "[0, 3)")},
    {"get range", get_range, AD_ERR_INDEX, PARTS("ad_get", "index 3", "dimension 1", "size 3")},

    {"add NULL", add_null, AD_ERR_ARGUMENT, PARTS("ad_add", "'a'", "NULL")},
    {"from NULL data", from_null_data, AD_ERR_ARGUMENT, PARTS("ad_from_f64", "NULL", "3")},
    {"NULL shape", shape_null, AD_ERR_ARGUMENT, PARTS("ad_zeros", "NULL")},
    {"gradients NULL", gradients_null, AD_ERR_ARGUMENT, PARTS("ad_gradients", "NULL")},
    {"gradients flags", gradients_flags, AD_ERR_ARGUMENT, PARTS("ad_gradients", "0x10")},
    {"clamp bounds", clamp_bounds, AD_ERR_ARGUMENT, PARTS("ad_clamp", "[2, 1]", "low")},
    {"clamp NaN", clamp_nan, AD_ERR_ARGUMENT, PARTS("ad_clamp", "nan")},
    {"var correction", var_correction, AD_ERR_ARGUMENT, PARTS("ad_var", "-1")},
    {"slice step", slice_step, AD_ERR_ARGUMENT, PARTS("ad_slice", "step 0")},
    {"arange step", arange_step, AD_ERR_ARGUMENT, PARTS("ad_arange", "step 0")},
    {"linspace count", linspace_count, AD_ERR_ARGUMENT, PARTS("ad_linspace", "count -1")},
    {"full fraction", full_int_fraction, AD_ERR_ARGUMENT, PARTS("ad_full", "1.5", "int64")},
    {"cast NaN", cast_nan_to_int, AD_ERR_ARGUMENT, PARTS("ad_cast", "element 1", "nan")},
    {"rng NULL", rng_null, AD_ERR_ARGUMENT, PARTS("ad_rand_normal", "rng", "ad_rng_seed")},
    {"stddev", normal_stddev, AD_ERR_ARGUMENT, PARTS("ad_rand_normal", "-1")},
    {"threads", threads_zero, AD_ERR_ARGUMENT, PARTS("ad_ctx_set_threads", "0")},
    {"reduction code", reduction_code, AD_ERR_ARGUMENT, PARTS("ad_mse", "reduction 9")},
    {"print stream", print_null_stream, AD_ERR_ARGUMENT, PARTS("ad_print", "stream")},
    {"jacobian function", jacobian_null, AD_ERR_ARGUMENT, PARTS("ad_jacobian", "NULL")},
    {"concat none", concat_none, AD_ERR_ARGUMENT, PARTS("ad_concat", "at least one")},

    {"add contexts", add_contexts, AD_ERR_CONTEXT, PARTS("ad_add", "'b'", "another context")},
    {"matmul contexts", matmul_contexts, AD_ERR_CONTEXT, PARTS("ad_matmul", "another context")},
    {"concat contexts", concat_contexts, AD_ERR_CONTEXT, PARTS("ad_concat", "another context")},
    {"backward contexts", backward_contexts, AD_ERR_CONTEXT,
     PARTS("ad_backward", "another context")},
};

#define ROW_COUNT ((int)(sizeof rows / sizeof *rows))

START_TEST(test_error_row) {
  const error_row *row = &rows[_i];
  fixture f = make_fixture();
  ck_assert_msg(row->call(&f), "%s: the call did not report a failure", row->name);
  ck_assert_msg(ad_errcode(f.ctx) == row->status, "%s: status %s, expected %s (message: %s)",
                row->name, ad_status_name(ad_errcode(f.ctx)), ad_status_name(row->status),
                ad_errmsg(f.ctx));
  for (int k = 0; row->parts[k]; k++)
    ck_assert_msg(strstr(ad_errmsg(f.ctx), row->parts[k]) != NULL,
                  "%s: the message '%s' does not contain '%s'", row->name, ad_errmsg(f.ctx),
                  row->parts[k]);

  /* The program goes on: the context still computes after the error is
     cleared, and the tensors created before are intact. */
  ad_clear_error(f.ctx);
  ck_assert_int_eq(ad_errcode(f.ctx), AD_OK);
  ck_assert_str_eq(ad_errmsg(f.ctx), "");
  ad_tensor *y = ad_add(f.ctx, f.m23, f.m23);
  ck_assert_msg(y != NULL, "%s: the context no longer computes: %s", row->name, ad_errmsg(f.ctx));
  assert_values(row->name, y, (const double[]){2, 2, 2, 2, 2, 2}, 6, 0, 0);
  ad_ctx_free(f.ctx);
  ad_ctx_free(f.other_ctx);
}
END_TEST

/* ---- The first error is kept ------------------------------------------ */

START_TEST(test_null_propagation_keeps_first_error) {
  fixture f = make_fixture();
  ad_tensor *y = ad_sin(f.ctx, ad_add(f.ctx, f.m23, f.v4));
  ck_assert_ptr_null(y);
  y = ad_sum_all(f.ctx, ad_matmul(f.ctx, y, f.m45));
  ck_assert_ptr_null(y);
  /* A NULL output returns the recorded status. */
  ck_assert_int_eq(ad_backward(f.ctx, y, NULL), AD_ERR_SHAPE);
  /* A later, different mistake does not replace the first error either. */
  ck_assert_ptr_null(ad_exp(f.ctx, f.idx));
  assert_error("first error kept", f.ctx, AD_ERR_SHAPE, "ad_add", "[2, 3]", "[4]", NULL);
  ad_clear_error(f.ctx);
  ck_assert_ptr_null(ad_exp(f.ctx, f.idx));
  assert_error("error after clearing", f.ctx, AD_ERR_DTYPE, "ad_exp", NULL);
  ad_ctx_free(f.ctx);
  ad_ctx_free(f.other_ctx);
}
END_TEST

START_TEST(test_null_context) {
  ck_assert_ptr_null(ad_add(NULL, NULL, NULL));
  ck_assert_ptr_null(ad_zeros(NULL, AD_F64, 0, NULL));
  ck_assert_ptr_null(ad_sum(NULL, NULL, 0, NULL, false));
  ck_assert_int_eq(ad_backward(NULL, NULL, NULL), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_errcode(NULL), AD_ERR_ARGUMENT);
  ck_assert_str_eq(ad_errmsg(NULL), "context is NULL");
  ck_assert_int_eq(ad_item(NULL, NULL), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_fill(NULL, 1), AD_ERR_ARGUMENT);
  ck_assert_int_eq(ad_numel(NULL), 0);
  ck_assert_ptr_null(ad_shape(NULL));
  ck_assert_int_eq(ad_dim(NULL, 0), -1);
  ck_assert_ptr_null(ad_persist(NULL));
  ck_assert_int_eq(ad_format(NULL, NULL, 0), -1);
  ad_ctx_reset(NULL);
  ad_ctx_free(NULL);
  ad_clear_error(NULL);
  ad_rng_seed(NULL, 1);
}
END_TEST

/* ---- Handler and ad_set_error ---------------------------------------- */

typedef struct handler_log {
  int calls;
  ad_status status;
  char message[256];
} handler_log;

static void log_error(void *user, ad_status status, const char *message) {
  handler_log *log = user;
  log->calls++;
  log->status = status;
  snprintf(log->message, sizeof log->message, "%s", message);
}

START_TEST(test_error_handler) {
  fixture f = make_fixture();
  handler_log log = {0};
  ad_set_error_handler(f.ctx, log_error, &log);
  ck_assert_ptr_null(ad_add(f.ctx, f.m23, f.v4));
  ck_assert_int_eq(log.calls, 1);
  ck_assert_int_eq(log.status, AD_ERR_SHAPE);
  ck_assert_str_eq(log.message, ad_errmsg(f.ctx));
  /* Only recorded errors reach the handler; a kept first error stays. */
  ck_assert_ptr_null(ad_exp(f.ctx, f.idx));
  ck_assert_int_eq(log.calls, 1);
  ad_set_error_handler(f.ctx, NULL, NULL);
  ad_clear_error(f.ctx);
  ck_assert_ptr_null(ad_exp(f.ctx, f.idx));
  ck_assert_int_eq(log.calls, 1);
  ad_ctx_free(f.ctx);
  ad_ctx_free(f.other_ctx);
}
END_TEST

START_TEST(test_set_error) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  ck_assert_int_eq(ad_set_error(ctx, AD_OK, "nothing %d", 1), AD_OK);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ck_assert_int_eq(ad_set_error(ctx, AD_ERR_IO, "nn_load: cannot open '%s'", "w.bin"),
                   AD_ERR_IO);
  assert_error("ad_set_error", ctx, AD_ERR_IO, "nn_load: cannot open 'w.bin'", NULL);
  ck_assert_int_eq(ad_set_error(ctx, AD_ERR_FORMAT, "second"), AD_ERR_FORMAT);
  assert_error("ad_set_error keeps the first", ctx, AD_ERR_IO, "w.bin", NULL);
  ad_ctx_reset(ctx);
  ck_assert_int_eq(ad_errcode(ctx), AD_OK);
  ck_assert_int_eq(ad_set_error(ctx, AD_ERR_FORMAT, NULL), AD_ERR_FORMAT);
  ck_assert_int_eq(ad_errcode(ctx), AD_ERR_FORMAT);
  ad_ctx_free(ctx);
  ck_assert_int_eq(ad_set_error(NULL, AD_ERR_IO, "x"), AD_ERR_IO);
}
END_TEST

START_TEST(test_status_names) {
  const char *names[] = {"AD_OK",          "AD_ERR_ARGUMENT", "AD_ERR_SHAPE",
                         "AD_ERR_DTYPE",   "AD_ERR_AXIS",     "AD_ERR_INDEX",
                         "AD_ERR_MEMORY",  "AD_ERR_GRAPH",    "AD_ERR_CONTEXT",
                         "AD_ERR_IO",      "AD_ERR_FORMAT",   "AD_ERR_NOT_IMPLEMENTED"};
  ck_assert_int_eq((int)(sizeof names / sizeof *names), AD_STATUS_COUNT);
  for (int i = 0; i < AD_STATUS_COUNT; i++) ck_assert_str_eq(ad_status_name((ad_status)i), names[i]);
  ck_assert_str_eq(ad_status_name(AD_STATUS_COUNT), "AD_ERR_UNKNOWN");
  ck_assert_str_eq(ad_status_name((ad_status)-1), "AD_ERR_UNKNOWN");
  ck_assert_str_eq(ad_dtype_name(AD_F32), "float32");
  ck_assert_str_eq(ad_dtype_name(AD_F64), "float64");
  ck_assert_str_eq(ad_dtype_name(AD_I64), "int64");
  ck_assert_uint_eq(ad_dtype_size((ad_dtype)5), 0);
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("error_table");
  tcase_add_loop_test(tc, test_error_row, 0, ROW_COUNT);
  suite_add_tcase(s, tc);
  tc = tcase_create("error_model");
  tcase_add_test(tc, test_null_propagation_keeps_first_error);
  tcase_add_test(tc, test_null_context);
  tcase_add_test(tc, test_error_handler);
  tcase_add_test(tc, test_set_error);
  tcase_add_test(tc, test_status_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(errors_suite()); }
