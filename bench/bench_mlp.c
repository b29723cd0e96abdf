/*
 * bench_mlp.c: the MLP training epoch (time, peak memory, allocations per
 * step) and the check that 1 and 2 threads give bitwise-identical results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mlp.h"

static const mlp_options mlp_defaults = {
    .data_dir = MLP_DEFAULT_DATA,
    .samples = 0,
    .batch = 64,
    .threads = 2,
    .epochs = 5,
    .warmup = 1,
    .steps = 100,
    .api = MLP_API_NN,
    .seed = 42,
    .lr = 0.01,
    .momentum = 0.9,
};

/* The training set and its batches, in a context of their own so that the
   model's context contains only the model. */
typedef struct training_data {
  ad_ctx *ctx;
  nn_image_set set;
  nn_batcher *batcher;
} training_data;

static void load_training_data(training_data *data, const mlp_options *o) {
  data->ctx = ad_ctx_new(NULL);
  if (!data->ctx) {
    fprintf(stderr, "ad-bench: out of memory creating a context\n");
    exit(1);
  }
  mlp_load_data(&data->set, data->ctx, o);
  data->batcher = nn_batcher_new(data->ctx, data->set.count, o->batch, false);
  if (!data->batcher) die_on_engine_error(data->ctx, "creating the batcher");
}

static void free_training_data(training_data *data) {
  nn_batcher_free(data->batcher);
  mlp_release_data(&data->set);
  ad_ctx_free(data->ctx);
}

/* Shuffles the batches with a generator seeded by seed. */
static void shuffle(training_data *data, uint64_t seed) {
  ad_rng rng;
  ad_rng_seed(&rng, seed);
  nn_batcher_shuffle(data->batcher, &rng);
}

/* Allocator calls counted over the steps of a run. */
typedef struct step_allocs {
  uint64_t first_step;  /* during the process's first step */
  uint64_t after_first; /* during every later step, all epochs */
  uint64_t max_in_step; /* the maximum in one later step */
  int64_t steps_after_first;
} step_allocs;

/* Trains one epoch from the initial parameters and returns the mean loss
   over its samples. Counts allocator calls per step into allocs. */
static double run_epoch(mlp *model, training_data *data, uint64_t seed,
                        const alloc_counter *counter, step_allocs *allocs) {
  mlp_restore(model);
  shuffle(data, seed);
  double loss_sum = 0;
  int64_t batches = nn_batcher_batches(data->batcher);
  for (int64_t b = 0; b < batches; b++) {
    const int64_t *indices;
    int64_t n = nn_batcher_batch(data->batcher, b, &indices);
    uint64_t before = counter->allocs;
    loss_sum += mlp_step(model, &data->set, indices, n) * (double)n;
    uint64_t calls = counter->allocs - before;
    if (allocs->steps_after_first < 0) {
      allocs->first_step = calls;
    } else {
      allocs->after_first += calls;
      if (calls > allocs->max_in_step) allocs->max_in_step = calls;
    }
    allocs->steps_after_first++;
  }
  return loss_sum / (double)data->set.count;
}

int bench_mlp(int argc, char **argv) {
  mlp_options o = mlp_defaults;
  mlp_parse_options(&o, argc, argv,
                    "ad-bench mlp [--api nn|engine] [--data DIR] [--samples N] [--batch N] "
                    "[--threads N] [--epochs N] [--warmup N] [--seed N] [--synthetic] "
                    "[--lockstep]");
  double t0 = now_seconds();
  training_data data;
  load_training_data(&data, &o);
  double load_seconds = now_seconds() - t0;
  double *seconds = calloc((size_t)o.epochs, sizeof *seconds);
  if (!seconds) {
    fprintf(stderr, "ad-bench: out of memory\n");
    return 1;
  }

  alloc_counter counter = {0};
  ad_allocator allocator = counting_allocator(&counter);
  ad_ctx *ctx = ad_ctx_new(&allocator);
  if (!ctx || ad_ctx_set_threads(ctx, o.threads) != AD_OK) die_on_engine_error(ctx, "setup");
  mlp model;
  mlp_init(&model, ctx, o.api, o.seed, o.lr, o.momentum);

  step_allocs allocs = {.steps_after_first = -1};
  double first_loss = 0, loss = 0;
  bool losses_identical = true;
  int timed = 0;
  for (int e = 0; e < o.warmup + o.epochs; e++) {
    if (e == o.warmup) lockstep_ready(o.lockstep);
    if (e >= o.warmup && !lockstep_wait(o.lockstep)) break;
    double start = now_seconds();
    loss = run_epoch(&model, &data, o.seed, &counter, &allocs);
    double elapsed = now_seconds() - start;
    if (e == 0) first_loss = loss;
    if (memcmp(&loss, &first_loss, sizeof loss) != 0) losses_identical = false;
    if (e >= o.warmup) {
      seconds[timed++] = elapsed;
      lockstep_done(o.lockstep, elapsed);
    }
    fprintf(stderr, "mlp: %s epoch %d: %.4f s, mean loss %.6f\n",
            e < o.warmup ? "warm-up" : "timed", e + 1, elapsed, loss);
  }

  ad_memory_stats stats;
  ad_ctx_memory(ctx, &stats);
  result_begin("mlp");
  result_string("api", o.api == MLP_API_NN ? "nn" : "engine");
  result_string("data", data.set.image_file.ctx ? "fashion-mnist" : "synthetic");
  result_int("samples", data.set.count);
  result_int("batch", o.batch);
  result_int("threads", o.threads);
  result_int("steps_per_epoch", nn_batcher_batches(data.batcher));
  result_samples("seconds", seconds, timed);
  result_number("epoch_loss", loss);
  result_bool("losses_identical", losses_identical);
  result_int("first_step_allocs", (int64_t)allocs.first_step);
  result_int("allocs_after_first_step", (int64_t)allocs.after_first);
  result_int("steps_after_first", allocs.steps_after_first);
  result_int("max_allocs_in_step", (int64_t)allocs.max_in_step);
  result_int("arena_reserved_bytes", (int64_t)stats.arena_reserved);
  result_int("allocator_peak_bytes", (int64_t)stats.allocator_peak);
  result_int("peak_rss_bytes", peak_rss_bytes());
  result_number("load_seconds", load_seconds);
  result_end();

  mlp_free(&model);
  ad_ctx_free(ctx);
  free_training_data(&data);
  free(seconds);
  return 0;
}

/* ---- Determinism ------------------------------------------------------ */

/* The state after a number of training steps with one thread setting. */
typedef struct trained_state {
  double *losses; /* one per step */
  float *params;  /* every parameter, concatenated in mlp.params order */
} trained_state;

static void train_steps(const mlp_options *o, training_data *data, int threads,
                        trained_state *out) {
  ad_ctx *ctx = ad_ctx_new(NULL);
  if (!ctx || ad_ctx_set_threads(ctx, threads) != AD_OK) die_on_engine_error(ctx, "setup");
  mlp model;
  mlp_init(&model, ctx, o->api, o->seed, o->lr, o->momentum);
  int64_t batches = nn_batcher_batches(data->batcher);
  for (int64_t s = 0; s < o->steps; s++) {
    if (s % batches == 0) shuffle(data, o->seed + (uint64_t)(s / batches));
    const int64_t *indices;
    int64_t n = nn_batcher_batch(data->batcher, s % batches, &indices);
    out->losses[s] = mlp_step(&model, &data->set, indices, n);
  }
  int64_t k = 0;
  for (int i = 0; i < MLP_PARAMS; i++) {
    int64_t n = ad_numel(model.params[i]);
    memcpy(out->params + k, ad_data_f32(model.params[i]), (size_t)n * sizeof(float));
    k += n;
  }
  mlp_free(&model);
  ad_ctx_free(ctx);
}

static int64_t total_param_count(void) {
  int64_t total = 0;
  for (int l = 0; l < MLP_LAYERS; l++) total += mlp_widths[l + 1] * (mlp_widths[l] + 1);
  return total;
}

int bench_determinism(int argc, char **argv) {
  mlp_options o = mlp_defaults;
  mlp_parse_options(&o, argc, argv,
                    "ad-bench determinism [--api nn|engine] [--data DIR] [--samples N] "
                    "[--batch N] [--steps N] [--seed N] [--synthetic]");
  training_data data;
  load_training_data(&data, &o);
  int64_t count = total_param_count();
  trained_state runs[2];
  for (int r = 0; r < 2; r++) {
    runs[r].losses = malloc((size_t)o.steps * sizeof(double));
    runs[r].params = malloc((size_t)count * sizeof(float));
    if (!runs[r].losses || !runs[r].params) {
      fprintf(stderr, "ad-bench: out of memory\n");
      return 1;
    }
  }
  const int thread_counts[2] = {1, 2};
  for (int r = 0; r < 2; r++) train_steps(&o, &data, thread_counts[r], &runs[r]);

  int64_t first_loss_diff = -1, params_differing = 0;
  for (int64_t s = 0; s < o.steps && first_loss_diff < 0; s++)
    if (memcmp(&runs[0].losses[s], &runs[1].losses[s], sizeof(double)) != 0) first_loss_diff = s;
  for (int64_t i = 0; i < count; i++)
    if (memcmp(&runs[0].params[i], &runs[1].params[i], sizeof(float)) != 0) params_differing++;
  bool identical = first_loss_diff < 0 && params_differing == 0;
  fprintf(stderr, "determinism: %lld steps; final loss %.9g (1 thread) and %.9g (2 threads); "
          "%lld of %lld parameters differ\n", (long long)o.steps, runs[0].losses[o.steps - 1],
          runs[1].losses[o.steps - 1], (long long)params_differing, (long long)count);

  result_begin("determinism");
  result_string("api", o.api == MLP_API_NN ? "nn" : "engine");
  result_string("data", data.set.image_file.ctx ? "fashion-mnist" : "synthetic");
  result_int("steps", o.steps);
  result_int("batch", o.batch);
  result_bool("identical", identical);
  result_int("first_differing_step", first_loss_diff);
  result_int("params_differing", params_differing);
  result_int("param_count", count);
  result_number("final_loss_1_thread", runs[0].losses[o.steps - 1]);
  result_number("final_loss_2_threads", runs[1].losses[o.steps - 1]);
  result_end();

  for (int r = 0; r < 2; r++) {
    free(runs[r].losses);
    free(runs[r].params);
  }
  free_training_data(&data);
  return 0;
}
