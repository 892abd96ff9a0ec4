/*
** What the core's elementwise loops share: their block width and the
** attribute that compiles a function for several instruction sets.
**
** The loops work on blocks of NN_LANES (16) consecutive floats with a
** scalar tail: GCC's -O2 vectorises a loop only when its trip count is a
** known multiple of the vector width, and never reorders a float sum, so
** sums run in 16 explicit lanes. NN_CLONES compiles a function for
** AVX-512, AVX2 and SSE2, the CPU's best picked at load time
** (target_clones, an ifunc). The lanes do not depend on the vector width,
** but the AVX-512 variant may fuse a multiply and an add (FMA), so
** results can differ in the last bit from one CPU to another, as
** OpenBLAS's do; on one machine they are deterministic. (The first
** layer's products and the output sweeps are compiled per instruction
** set instead, at the register's width: ae_net_kern.h.) Internal to
** ext/core.
*/
#ifndef AE_SIMD_H
#define AE_SIMD_H

#include <stddef.h>
#include <string.h>

#define NN_LANES 16   /* floats per block of the elementwise loops */
#define NN_ALIGN 64   /* bytes: a cache line, an AVX-512 register  */

/* ifuncs need GNU C on an ELF system with glibc; -DNN_CLONES= turns
** them off (the baseline ISA only). */
#ifndef NN_CLONES
# if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute) \
     && defined(__GLIBC__)
#  if __has_attribute(target_clones)
#   define NN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#   define NN_MULTI 1
#  endif
# endif
#endif
#ifndef NN_CLONES
# define NN_CLONES
#endif

/* The loops that a clone would not keep in registers (ae_net_kern.h) are
** instead compiled once per instruction set, at its register's width,
** with NN_V4 and NN_V3 (the clones' targets, so the same arithmetic),
** and picked with nn_isa(), which tests what the clones' resolver tests.
** NN_MULTI is 0 where NN_CLONES is off: the baseline alone. */
#ifndef NN_MULTI
# define NN_MULTI 0
#endif
#define NN_ISA_BASE   0
#define NN_ISA_AVX2   1
#define NN_ISA_AVX512 2
#if NN_MULTI
# define NN_V4 __attribute__((target("avx512f")))
# define NN_V3 __attribute__((target("avx2")))
static inline int nn_isa(void){
  static int isa = -1;     /* every thread computes the same value */
  int i = __atomic_load_n(&isa, __ATOMIC_RELAXED);
  if( i<0 ){
    __builtin_cpu_init();
    i = __builtin_cpu_supports("avx512f") ? NN_ISA_AVX512
      : __builtin_cpu_supports("avx2") ? NN_ISA_AVX2 : NN_ISA_BASE;
    __atomic_store_n(&isa, i, __ATOMIC_RELAXED);
  }
  return i;
}
#else
static inline int nn_isa(void){ return NN_ISA_BASE; }
#endif

/* Floats rounded up to a whole number of NN_ALIGN-byte lines. */
static inline size_t nn_round(size_t nFloat){
  size_t k = NN_ALIGN/sizeof(float);
  return (nFloat + k - 1)/k*k;
}

#endif /* AE_SIMD_H */
