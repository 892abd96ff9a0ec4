/*
** The core's random numbers (declared in ae_rng.h).
*/
#include "ae_rng.h"

/* Random numbers: xoshiro256** (Blackman and Vigna), seeded with four
** outputs of splitmix64 so that any 64-bit seed, 0 included, is fine.  */

static uint64_t nn_splitmix64(uint64_t *x){
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline uint64_t nn_rotl(uint64_t x, int k){
  return (x << k) | (x >> (64 - k));
}

void aesql_rng_seed(aesql_rng *r, uint64_t seed){
  int i;
  for(i=0; i<4; i++) r->s[i] = nn_splitmix64(&seed);
}

uint64_t aesql_rng_next(aesql_rng *r){
  uint64_t *s = r->s;
  uint64_t res = nn_rotl(s[1]*5, 7)*9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = nn_rotl(s[3], 45);
  return res;
}

/* The top 53 bits, scaled: every double k*2^-53, k < 2^53, equally likely. */
double aesql_rng_uniform(aesql_rng *r){
  return (double)(aesql_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Lemire's multiply-shift on the top 32 bits, rejecting the few low
** products that would bias it; one draw almost always. 0 when n is 0. */
uint32_t aesql_rng_below(aesql_rng *r, uint32_t n){
  uint64_t m = (aesql_rng_next(r) >> 32) * (uint64_t)n;
  uint32_t lo = (uint32_t)m;
  if( lo<n ){
    uint32_t t = (uint32_t)(-n) % n;    /* 2^32 mod n */
    while( lo<t ){
      m = (aesql_rng_next(r) >> 32) * (uint64_t)n;
      lo = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void aesql_rng_shuffle(aesql_rng *r, uint32_t *a, uint32_t n){
  uint32_t i;
  for(i=n; i>1; i--){
    uint32_t j = aesql_rng_below(r, i);
    uint32_t x = a[i-1]; a[i-1] = a[j]; a[j] = x;
  }
}
