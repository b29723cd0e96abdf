/*
 * pool.c: the context's worker threads, behind ad_parallel_for.
 *
 * A job is a count of independent tasks. The calling thread and the workers
 * claim tasks one at a time from a shared counter until none is left, and
 * the caller then waits only for tasks that a worker has claimed and not
 * yet finished. A worker that the operating system has not scheduled
 * (because another process is running on the core) claims nothing, so the caller
 * does not wait for it, except when it was preempted inside a job's claim
 * loop. With a team barrier, as OpenMP's static schedules have, every job
 * would wait for such a worker, and on a loaded machine each job would
 * take a scheduler time slice.
 *
 * Between jobs a worker spins for 2 ms, because a training step starts a
 * new job every few hundred microseconds and waking a sleeping thread costs
 * tens of microseconds. After that it sleeps on a condition variable, so an
 * idle context costs no CPU.
 *
 * Jobs alternate between two descriptors, chosen by the parity of the
 * generation. The caller writes the next job only when no worker is inside
 * a job, and a worker registers as inside before it reads the generation.
 * So a worker either works on the current descriptor or finds the previous
 * one exhausted: it never claims from a descriptor being written.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

/* How long a waiting worker spins before it sleeps, in nanoseconds. Time,
   not an iteration count, because a pause instruction takes from a few
   cycles to over a hundred depending on the processor. */
#define SPIN_NANOSECONDS 2000000
/* Spin iterations of a waiting caller between yields of its core. */
#define YIELD_INTERVAL 1000

typedef struct pool_job {
  ad_task_fn fn;
  void *user;
  int64_t count;
  atomic_int_fast64_t next; /* the next unclaimed task */
  atomic_int_fast64_t done; /* tasks finished */
} pool_job;

struct worker_pool {
  int workers;     /* threads started besides the caller */
  int capacity;    /* entries of threads */
  pthread_t *threads;
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  atomic_uint_fast64_t generation; /* bumped to announce a job or shutdown */
  atomic_int sleepers; /* workers waiting on wake */
  atomic_int inside;   /* workers between registering and leaving a job */
  atomic_bool stopping;
  atomic_bool busy;    /* a job is running; a nested call runs inline */
  pool_job jobs[2];    /* the job of generation g is jobs[g % 2] */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Claims and runs tasks of job until none is left. */
static void run_tasks(pool_job *job) {
  for (;;) {
    int64_t i = atomic_fetch_add(&job->next, 1);
    if (i >= job->count) return;
    job->fn(job->user, i);
    atomic_fetch_add(&job->done, 1);
  }
}

static uint64_t now_nanoseconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Waits until the generation differs from seen. */
static void wait_for_job(worker_pool *pool, uint_fast64_t seen) {
  uint64_t start = now_nanoseconds();
  for (uint32_t i = 1;; i++) {
    if (atomic_load(&pool->generation) != seen) return;
    cpu_relax();
    /* Reading the clock costs tens of nanoseconds; do it now and then. */
    if (i % 256 == 0 && now_nanoseconds() - start > SPIN_NANOSECONDS) break;
  }
  pthread_mutex_lock(&pool->mutex);
  atomic_fetch_add(&pool->sleepers, 1);
  while (atomic_load(&pool->generation) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
  atomic_fetch_sub(&pool->sleepers, 1);
  pthread_mutex_unlock(&pool->mutex);
}

static void *worker_main(void *arg) {
  worker_pool *pool = arg;
  uint_fast64_t seen = 0;
  for (;;) {
    wait_for_job(pool, seen);
    atomic_fetch_add(&pool->inside, 1);
    seen = atomic_load(&pool->generation);
    if (atomic_load(&pool->stopping)) {
      atomic_fetch_sub(&pool->inside, 1);
      return NULL;
    }
    run_tasks(&pool->jobs[seen % 2]);
    atomic_fetch_sub(&pool->inside, 1);
  }
}

/* Announces a new generation to spinning and sleeping workers. */
static void announce(worker_pool *pool) {
  atomic_fetch_add(&pool->generation, 1);
  if (atomic_load(&pool->sleepers) > 0) {
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
  }
}

/* Spins until value reaches target, yielding the core now and then so that
   a preempted thread can finish. */
static void spin_until(atomic_int_fast64_t *value, int64_t target) {
  for (int spins = 1; atomic_load(value) < target; spins++) {
    if (spins % YIELD_INTERVAL == 0) sched_yield();
    else cpu_relax();
  }
}

static void release_pool(ad_ctx *ctx, worker_pool *pool) {
  pthread_cond_destroy(&pool->wake);
  pthread_mutex_destroy(&pool->mutex);
  ctx_free(ctx, pool->threads, (size_t)pool->capacity * sizeof *pool->threads);
  ctx_free(ctx, pool, sizeof *pool);
}

void pool_free(ad_ctx *ctx, worker_pool *pool) {
  if (!pool) return;
  atomic_store(&pool->stopping, true);
  announce(pool);
  for (int i = 0; i < pool->workers; i++) pthread_join(pool->threads[i], NULL);
  release_pool(ctx, pool);
}

worker_pool *pool_new(ad_ctx *ctx, int workers) {
  worker_pool *pool = ctx_alloc(ctx, sizeof *pool);
  if (!pool) return NULL;
  memset(pool, 0, sizeof *pool);
  pool->capacity = workers;
  pool->threads = ctx_alloc(ctx, (size_t)workers * sizeof *pool->threads);
  if (!pool->threads) {
    ctx_free(ctx, pool, sizeof *pool);
    return NULL;
  }
  if (pthread_mutex_init(&pool->mutex, NULL) != 0) {
    ctx_free(ctx, pool->threads, (size_t)workers * sizeof *pool->threads);
    ctx_free(ctx, pool, sizeof *pool);
    return NULL;
  }
  if (pthread_cond_init(&pool->wake, NULL) != 0) {
    pthread_mutex_destroy(&pool->mutex);
    ctx_free(ctx, pool->threads, (size_t)workers * sizeof *pool->threads);
    ctx_free(ctx, pool, sizeof *pool);
    return NULL;
  }
  atomic_init(&pool->generation, 0);
  atomic_init(&pool->sleepers, 0);
  atomic_init(&pool->inside, 0);
  atomic_init(&pool->stopping, false);
  atomic_init(&pool->busy, false);
  for (int j = 0; j < 2; j++) {
    atomic_init(&pool->jobs[j].next, 0);
    atomic_init(&pool->jobs[j].done, 0);
  }
  /* A pool with fewer workers than asked for is still correct, so the
     threads that did start are kept. */
  while (pool->workers < workers &&
         pthread_create(&pool->threads[pool->workers], NULL, worker_main, pool) == 0)
    pool->workers++;
  if (pool->workers == 0) {
    release_pool(ctx, pool);
    return NULL;
  }
  return pool;
}

int pool_workers(const worker_pool *pool) { return pool ? pool->workers : 0; }

void ad_parallel_for(ad_ctx *ctx, int64_t count, ad_task_fn fn, void *user) {
  if (!ctx || !fn || count <= 0) return;
  worker_pool *pool = ctx->pool;
  bool idle = false;
  if (!pool || count == 1 || !atomic_compare_exchange_strong(&pool->busy, &idle, true)) {
    for (int64_t i = 0; i < count; i++) fn(user, i);
    return;
  }
  /* No worker may still be reading the descriptor about to be written. */
  for (int spins = 1; atomic_load(&pool->inside) > 0; spins++) {
    if (spins % YIELD_INTERVAL == 0) sched_yield();
    else cpu_relax();
  }
  pool_job *job = &pool->jobs[(atomic_load(&pool->generation) + 1) % 2];
  job->fn = fn;
  job->user = user;
  job->count = count;
  atomic_store(&job->done, 0);
  atomic_store(&job->next, 0);
  announce(pool);
  run_tasks(job);
  spin_until(&job->done, count);
  atomic_store(&pool->busy, false);
}
