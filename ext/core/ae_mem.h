#ifndef AE_MEM_H
#define AE_MEM_H

#include <stddef.h>

/*
** Memory of the numeric core. Every block the core allocates comes from
** aesql_nn_malloc(): 64-byte aligned (for the vector loops and OpenBLAS),
** taken from the C library's malloc() unless aesql_nn_config_mem() names
** another allocator. The SQLite layer names sqlite3_malloc64() and
** sqlite3_free() (sqlite3_aesql_init), so that SQLite's memory limits and
** statistics, and fault injection (tests/sql/test_fault.c), see this memory
** too; this code still knows nothing of SQLite. Each block remembers the
** free function of the allocator that made it, so blocks made before a
** change go back to the right one. Thread-safe. */
void  aesql_nn_config_mem(void *(*xMalloc)(unsigned long long),
                          void (*xFree)(void*));
void *aesql_nn_malloc(size_t nByte);     /* NULL when out of memory */
void *aesql_nn_calloc(size_t n, size_t size);   /* zeroed, overflow checked */
void  aesql_nn_mfree(void *p);           /* NULL is harmless */

#endif /* AE_MEM_H */
