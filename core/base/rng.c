/* xoshiro256** (Blackman & Vigna) seeded through splitmix64. */
#include <math.h>

#include <dlas/rng.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void dlas_rng_seed(struct dlas_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

struct dlas_rng dlas_rng_derive(const struct dlas_rng *r, uint64_t stream)
{
    struct dlas_rng d;
    uint64_t x = r->s[0] ^ rotl(r->s[1], 17) ^ rotl(r->s[2], 31) ^ rotl(r->s[3], 47);
    x ^= splitmix64(&stream);
    dlas_rng_seed(&d, x);
    return d;
}

uint64_t dlas_rng_u64(struct dlas_rng *r)
{
    uint64_t *s = r->s;
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

double dlas_rng_uniform(struct dlas_rng *r) { return (dlas_rng_u64(r) >> 11) * 0x1.0p-53; }

uint64_t dlas_rng_below(struct dlas_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    /* Rejection keeps the result unbiased for any n. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = dlas_rng_u64(r);
    while (x >= limit);
    return x % n;
}

float dlas_rng_normal(struct dlas_rng *r)
{
    /* Box-Muller; one value per call keeps the stream position simple. */
    double u1 = dlas_rng_uniform(r), u2 = dlas_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint64_t dlas_rng_hash(const char *name)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *name; name++) {
        h ^= (unsigned char)*name;
        h *= 1099511628211ull;
    }
    return h;
}
