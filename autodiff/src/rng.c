/* rng.c: the caller-owned random generator and random tensors. */
#include <math.h>

#include "internal.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void ad_rng_seed(ad_rng *rng, uint64_t seed) {
  if (!rng) return;
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) rng->state[i] = splitmix64(&x);
  rng->has_spare = false;
  rng->spare = 0;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** by Blackman and Vigna. */
uint64_t ad_rng_next(ad_rng *rng) {
  if (!rng) return 0;
  uint64_t *s = rng->state;
  /* xoshiro's all-zero state never changes, so a generator that was never
     seeded ({0}) would return 0 forever and the loops of ad_rng_normal and
     ad_rng_below would never end. ad_rng_seed never produces that state;
     treat it as seed 0. */
  if ((s[0] | s[1] | s[2] | s[3]) == 0) ad_rng_seed(rng, 0);
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Lemire's multiply-and-reject method. */
uint64_t ad_rng_below(ad_rng *rng, uint64_t bound) {
  if (!rng || bound == 0) return 0;
  unsigned __int128 m = (unsigned __int128)ad_rng_next(rng) * bound;
  uint64_t low = (uint64_t)m;
  if (low < bound) {
    uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = (unsigned __int128)ad_rng_next(rng) * bound;
      low = (uint64_t)m;
    }
  }
  return (uint64_t)(m >> 64);
}

double ad_rng_uniform(ad_rng *rng) { return (double)(ad_rng_next(rng) >> 11) * 0x1.0p-53; }

/* The natural logarithm of x in (0, 1] from +, -, *, / and frexp only, so it
   gives the same bits on every IEEE machine (the C library's log may differ
   in the last bit between versions). Accurate to about 1 ulp. */
static double portable_log(double x) {
  int e;
  double m = frexp(x, &e); /* x = m 2^e, m in [0.5, 1) */
  if (m < 0.70710678118654752440) {
    m *= 2;
    e -= 1;
  }
  double f = m - 1; /* in [-0.293, 0.414] */
  double s = f / (2 + f);
  double s2 = s * s;
  /* log(1 + f) = 2 (s + s^3/3 + s^5/5 + ...), |s| <= 0.172 */
  double term = s, sum = 0;
  for (int k = 1; k <= 41; k += 2) {
    sum += term / k;
    term *= s2;
  }
  return 2 * sum + e * 0.69314718055994530942;
}

/* Marsaglia's polar method: needs only sqrt, which IEEE 754 rounds exactly. */
double ad_rng_normal(ad_rng *rng) {
  if (!rng) return 0;
  if (rng->has_spare) {
    rng->has_spare = false;
    return rng->spare;
  }
  double u, v, s;
  do {
    u = 2 * ad_rng_uniform(rng) - 1;
    v = 2 * ad_rng_uniform(rng) - 1;
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  double factor = sqrt(-2 * portable_log(s) / s);
  rng->spare = v * factor;
  rng->has_spare = true;
  return u * factor;
}

static ad_tensor *random_tensor(ad_ctx *ctx, const char *op, ad_rng *rng, ad_dtype dtype, int ndim,
                                const int64_t *shape, double a, double b) {
  if (!ctx) return NULL;
  if (!rng) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: rng is NULL; seed an ad_rng with ad_rng_seed and pass it", op);
    return NULL;
  }
  if (!is_float(dtype)) {
    fail(ctx, AD_ERR_DTYPE, "%s: dtype %s is not float32 or float64", op, ad_dtype_name(dtype));
    return NULL;
  }
  if (!isfinite(a) || !isfinite(b)) {
    fail(ctx, AD_ERR_ARGUMENT, "%s: parameters %g and %g must be finite", op, a, b);
    return NULL;
  }
  return tensor_new(ctx, op, dtype, ndim, shape);
}

/* A uniform value in [low, high) as stored in dtype. low + (high - low) u
   rounds up to high for u near 1 (always in float32 for u = 1 - 2^-53), so
   such a value is replaced by the largest one of dtype below high. */
static double uniform_below(ad_rng *rng, ad_dtype dtype, double low, double high) {
  double v = low + (high - low) * ad_rng_uniform(rng);
  if (dtype == AD_F32) {
    float f = (float)v;
    while (low < high && (double)f >= high) f = nextafterf(f, -INFINITY);
    return f;
  }
  return low < high && v >= high ? nextafter(high, -INFINITY) : v;
}

ad_tensor *ad_rand_uniform(ad_ctx *ctx, ad_rng *rng, ad_dtype dtype, int ndim,
                           const int64_t *shape, double low, double high) {
  ad_tensor *t = random_tensor(ctx, "ad_rand_uniform", rng, dtype, ndim, shape, low, high);
  if (!t) return NULL;
  if (!(low <= high)) {
    fail(ctx, AD_ERR_ARGUMENT, "ad_rand_uniform: low %g is greater than high %g", low, high);
    return NULL;
  }
  for (int64_t i = 0; i < t->numel; i++) store(t, i, uniform_below(rng, dtype, low, high));
  return t;
}

ad_tensor *ad_rand_normal(ad_ctx *ctx, ad_rng *rng, ad_dtype dtype, int ndim,
                          const int64_t *shape, double mean, double stddev) {
  ad_tensor *t = random_tensor(ctx, "ad_rand_normal", rng, dtype, ndim, shape, mean, stddev);
  if (!t) return NULL;
  if (stddev < 0) {
    fail(ctx, AD_ERR_ARGUMENT, "ad_rand_normal: standard deviation %g is negative", stddev);
    return NULL;
  }
  for (int64_t i = 0; i < t->numel; i++) store(t, i, mean + stddev * ad_rng_normal(rng));
  return t;
}
