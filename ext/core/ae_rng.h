#ifndef AE_RNG_H
#define AE_RNG_H

#include <stdint.h>

/*
** Random numbers of the numeric core: xoshiro256** seeded through
** splitmix64; every draw of a training comes from one, so a seed gives
** one model.
*/
typedef struct aesql_rng { uint64_t s[4]; } aesql_rng;
void     aesql_rng_seed(aesql_rng *r, uint64_t seed);
uint64_t aesql_rng_next(aesql_rng *r);
double   aesql_rng_uniform(aesql_rng *r);              /* [0, 1)          */
uint32_t aesql_rng_below(aesql_rng *r, uint32_t n);    /* [0, n), unbiased */
void     aesql_rng_shuffle(aesql_rng *r, uint32_t *a, uint32_t n); /* Fisher-Yates */

#endif /* AE_RNG_H */
