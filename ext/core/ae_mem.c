/*
** The core's memory (declared in ae_mem.h): 64-byte aligned blocks from
** the allocator the embedder names, the C library's by default.
*/
#include "ae_mem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MEM_ALIGN 64   /* bytes: a cache line, an AVX-512 register */

/* A block is MEM_ALIGN-aligned inside a larger one
** from the allocator; the two words before it hold the larger block's
** address and the free function to give it back to. */

static void *mem_libc_malloc(unsigned long long n){
  return n>SIZE_MAX ? 0 : malloc((size_t)n);
}

static struct {
  pthread_mutex_t mu;
  void *(*xMalloc)(unsigned long long);
  void (*xFree)(void*);
} mem_cfg = { PTHREAD_MUTEX_INITIALIZER, mem_libc_malloc, free };

void aesql_nn_config_mem(void *(*xMalloc)(unsigned long long),
                         void (*xFree)(void*)){
  pthread_mutex_lock(&mem_cfg.mu);
  mem_cfg.xMalloc = xMalloc ? xMalloc : mem_libc_malloc;
  mem_cfg.xFree = xMalloc ? xFree : free;
  pthread_mutex_unlock(&mem_cfg.mu);
}

#define MEM_HEAD (2*sizeof(void*))   /* the raw address, the free function */

/* Under AddressSanitizer the slack around a block is poisoned, so that a
** read or write past its end is caught as with a block of its own. */
#if defined(__SANITIZE_ADDRESS__)
# define MEM_ASAN 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define MEM_ASAN 1
# endif
#endif
#ifdef MEM_ASAN
# include <sanitizer/asan_interface.h>
# define MEM_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
# define MEM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
# define MEM_POISON(p, n)   ((void)0)
# define MEM_UNPOISON(p, n) ((void)0)
#endif

void *aesql_nn_malloc(size_t nByte){
  void *(*xMalloc)(unsigned long long);
  void (*xFree)(void*);
  unsigned char *raw, *p;
  if( nByte > SIZE_MAX - MEM_HEAD - MEM_ALIGN ) return 0;
  pthread_mutex_lock(&mem_cfg.mu);
  xMalloc = mem_cfg.xMalloc;
  xFree = mem_cfg.xFree;
  pthread_mutex_unlock(&mem_cfg.mu);
  raw = xMalloc((unsigned long long)(nByte + MEM_HEAD + MEM_ALIGN));
  if( raw==0 ) return 0;
  p = (unsigned char*)(((uintptr_t)raw + MEM_HEAD + MEM_ALIGN - 1)
                       & ~(uintptr_t)(MEM_ALIGN - 1));
  memcpy(p - MEM_HEAD, &raw, sizeof(raw));
  memcpy(p - sizeof(void*), &xFree, sizeof(xFree));
  MEM_POISON(raw, (size_t)(p - MEM_HEAD - raw));
  MEM_POISON(p + nByte, (size_t)(raw + nByte + MEM_HEAD + MEM_ALIGN - (p + nByte)));
  return p;
}

void *aesql_nn_calloc(size_t n, size_t size){
  void *p;
  if( size && n > SIZE_MAX/size ) return 0;
  p = aesql_nn_malloc(n*size);
  if( p ) memset(p, 0, n*size);
  return p;
}

void aesql_nn_mfree(void *pBlock){
  unsigned char *p = pBlock, *raw;
  void (*xFree)(void*);
  if( p==0 ) return;
  memcpy(&raw, p - MEM_HEAD, sizeof(raw));
  memcpy(&xFree, p - sizeof(void*), sizeof(xFree));
  MEM_UNPOISON(raw, (size_t)(p - raw));
  xFree(raw);
}
