/*
** peak_flops: the hardware limit, the CPU's peak rate of float32 multiply-
** adds, for each instruction set it has, on 1 thread and on every online
** CPU. run.sh divides the achieved rate of each training by it: a training
** that does F flops in S seconds runs at F/S, a fraction of this peak.
**
** Each FMA kernel is a loop of ACC = 12 independent accumulators,
** acc = fma(acc, a, b): enough chains in flight to hide the multiply-add's
** latency (4 cycles on current x86 with 2 FMA units a core: 8 chains; 12
** leave room for the loop's own instructions). With a = 1 - 2^-20 and
** b = 2^-20 every chain converges to 1: no overflow, no denormals (which
** would slow some CPUs down 100-fold).
**   sse2     128-bit mulps + addps in chains of their own (see
**            kernel_sse2): 4 lanes x 2 flops per mul+add pair
**   avx2     256-bit vfmadd (AVX2 + FMA): 8 lanes x 2 flops
**   avx512   512-bit vfmadd (AVX-512F): 16 lanes x 2 flops, only when
**            the CPU has it
** Each kernel is compiled for its own instruction set with GCC's target
** attribute and run only when __builtin_cpu_supports says the CPU has it,
** so one binary, built with plain -O2, measures all of them.
**
** Multi-thread: one pthread per CPU, each running its own loop, started
** together at a barrier; the aggregate rate is all threads' flops over the
** wall time from the barrier to the last thread's end. Every figure is the
** best of PEAK_RUNS runs (a peak is a maximum: a busy neighbour on a shared
** machine only ever lowers a run).
**
**   cc -O2 -pthread -o peak_flops peak_flops.c
**   ./peak_flops [threads...]          (default: 1 and every online CPU)
** Environment: PEAK_RUNS (5) runs of each figure, PEAK_MS (200) the length
** of one run in milliseconds.
** Output, one line per figure, machine-readable:
**   cpu model="AMD EPYC" online=2
**   isa sse2=yes avx2=yes avx512=no
**   peak isa=avx2 threads=2 gflops=123.45
**   best isa=avx2 threads=2 gflops=123.45    (the highest of all)
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define X86 1
#else
#define X86 0
#endif

enum { ACC = 12 };
#define A_MUL (1.0f - 1.0f / 1048576.0f)
#define B_ADD (1.0f / 1048576.0f)

static double now(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int envint(const char *name, int dflt){
  const char *v = getenv(name);
  return (v && *v && atoi(v) > 0) ? atoi(v) : dflt;
}

/* A kernel runs n iterations of ACC multiply-adds and returns a sum of its
** accumulators, which the caller stores: the work cannot be left out. */
typedef float (*kernel_fn)(long n);

/* The ACC = 12 chains written out: -O2 keeps an array of accumulators in
** memory (complete unrolling of a 12-step loop is -O3's), and a store and
** load in every chain would measure the cache, not the multiply-adds.
** Each kernel defines KT (the vector type), KSET1 (a broadcast), KSTEP
** (x*a + b) and KFIRST (lane 0 as a float) before KERNEL_BODY. */
#define REP12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define KB_DECL(k) KT c##k = KSET1(0.5f + 0.01f * k);
#define KB_STEP(k) c##k = KSTEP(c##k, a, b);
#define KB_SUM(k) s = KSTEP(s, a, c##k);
#define KERNEL_BODY                                                          \
  _Static_assert(ACC == 12, "REP12 writes 12 chains");                       \
  KT a = KSET1(A_MUL), b = KSET1(B_ADD);                                     \
  REP12(KB_DECL)                                                             \
  for(long i = 0; i < n; i++){ REP12(KB_STEP) }                              \
  KT s = KSET1(0.0f);                                                        \
  REP12(KB_SUM)                                                              \
  return KFIRST(s);

#if X86
/* SSE2 has no fused multiply-add: its peak is a multiplier and an adder
** each busy every cycle. A chain acc*a + b would make each add wait for
** its multiply (measured on a Zen 3: 12 such chains reach 3/4 of the 46.7
** GFLOP/s below), so the multiplies and the adds run in chains of their
** own, 6 of each: m = m*a then m*(1/a) (bounded, never denormal), s += b.
** One iteration: 12 mulps + 12 addps, 12 pairs of 4 lanes x 2 flops. */
#define REP6(M) M(0) M(1) M(2) M(3) M(4) M(5)
#define KS_DECL(k) __m128 m##k = _mm_set1_ps(0.5f + 0.01f * k), s##k = m##k;
#define KS_STEP(k, A) m##k = _mm_mul_ps(m##k, A); s##k = _mm_add_ps(s##k, b);
#define KS_STEPA(k) KS_STEP(k, a)
#define KS_STEPI(k) KS_STEP(k, ai)
#define KS_SUM(k) t = _mm_add_ps(t, _mm_add_ps(m##k, s##k));
__attribute__((target("sse2"))) static float kernel_sse2(long n){
  __m128 a = _mm_set1_ps(A_MUL), ai = _mm_set1_ps(1.0f / A_MUL), b = _mm_set1_ps(B_ADD);
  REP6(KS_DECL)
  for(long i = 0; i < n; i++){ REP6(KS_STEPA) REP6(KS_STEPI) }
  __m128 t = _mm_setzero_ps();
  REP6(KS_SUM)
  return _mm_cvtss_f32(t);
}

#define KT __m256
#define KSET1 _mm256_set1_ps
#define KSTEP(x, a, b) _mm256_fmadd_ps(x, a, b)
#define KFIRST _mm256_cvtss_f32
__attribute__((target("avx2,fma"))) static float kernel_avx2(long n){ KERNEL_BODY }
#undef KT
#undef KSET1
#undef KSTEP
#undef KFIRST

#define KT __m512
#define KSET1 _mm512_set1_ps
#define KSTEP(x, a, b) _mm512_fmadd_ps(x, a, b)
#define KFIRST _mm512_cvtss_f32
__attribute__((target("avx512f"))) static float kernel_avx512(long n){ KERNEL_BODY }
#undef KT
#undef KSET1
#undef KSTEP
#undef KFIRST
#else
/* Elsewhere: GCC's generic 4-lane vectors, mul + add (whatever the
** compiler makes of them), so that the bench still has a figure. */
typedef float v4 __attribute__((vector_size(16)));
static v4 v4_set1(float x){ v4 v = { x, x, x, x }; return v; }
static float v4_first(v4 s){ return s[0]; }
#define KT v4
#define KSET1 v4_set1
#define KSTEP(x, a, b) ((x) * (a) + (b))
#define KFIRST v4_first
static float kernel_generic(long n){ KERNEL_BODY }
#endif

typedef struct isa {
  const char *name;
  kernel_fn fn;
  int flops_per_iter;   /* flops of one iteration of its loop */
  int have;
} isa;

static isa isas[] = {
#if X86
  { "sse2", kernel_sse2, 12 * 4 * 2, 0 },         /* 12 mul+add pairs */
  { "avx2", kernel_avx2, ACC * 8 * 2, 0 },        /* ACC 8-lane FMAs */
  { "avx512", kernel_avx512, ACC * 16 * 2, 0 },   /* ACC 16-lane FMAs */
#else
  { "generic", kernel_generic, ACC * 4 * 2, 0 },
#endif
};
enum { NISA = sizeof(isas) / sizeof(isas[0]) };

static void detect(void){
#if X86
  __builtin_cpu_init();
  isas[0].have = __builtin_cpu_supports("sse2");
  isas[1].have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  isas[2].have = __builtin_cpu_supports("avx512f");
#else
  isas[0].have = 1;
#endif
}

/* ---- threads ------------------------------------------------------- */
typedef struct job {
  kernel_fn fn;
  long n;
  pthread_barrier_t *start;
  double t_end;
  float sink;
} job;

static void *worker(void *p){
  job *j = p;
  pthread_barrier_wait(j->start);
  j->sink = j->fn(j->n);
  j->t_end = now();
  return NULL;
}

/* Seconds for `threads` threads to run n iterations each: from the
** barrier's release (taken by the main thread, which waits at it too) to
** the last thread's end. */
static double run_threads(kernel_fn fn, long n, int threads){
  pthread_t *tid = calloc(threads, sizeof *tid);
  job *jobs = calloc(threads, sizeof *jobs);
  pthread_barrier_t start;
  double t0, t1 = 0;
  float sink = 0;
  if( !tid || !jobs ){ perror("calloc"); exit(1); }
  pthread_barrier_init(&start, NULL, threads + 1);
  for(int t = 0; t < threads; t++){
    jobs[t].fn = fn; jobs[t].n = n; jobs[t].start = &start;
    if( pthread_create(&tid[t], NULL, worker, &jobs[t]) ){ perror("pthread_create"); exit(1); }
  }
  pthread_barrier_wait(&start);
  t0 = now();
  for(int t = 0; t < threads; t++){
    pthread_join(tid[t], NULL);
    if( jobs[t].t_end > t1 ) t1 = jobs[t].t_end;
    sink += jobs[t].sink;
  }
  pthread_barrier_destroy(&start);
  free(tid); free(jobs);
  if( sink == 12345.678f ) fprintf(stderr, "\n");  /* keeps the results live */
  return t1 - t0;
}

/* Best GFLOP/s of `runs` runs of about ms milliseconds each. */
static double peak(const isa *k, int threads, int runs, int ms){
  long n = 1 << 16;
  double best = 0, s;
  /* calibrate on 1 thread: n iterations that take about ms */
  while( (s = run_threads(k->fn, n, 1)) < 0.02 ) n *= 2;
  n = (long)(n * (ms / 1000.0) / s) + 1;
  for(int r = 0; r < runs; r++){
    s = run_threads(k->fn, n, threads);
    double g = (double)n * k->flops_per_iter * threads / s / 1e9;
    if( g > best ) best = g;
  }
  return best;
}

static void cpu_model(char *buf, size_t len){
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  snprintf(buf, len, "unknown");
  if( !f ) return;
  while( fgets(line, sizeof line, f) ){
    if( strncmp(line, "model name", 10) == 0 ){
      char *v = strchr(line, ':');
      if( v ){
        v++;
        while( *v == ' ' || *v == '\t' ) v++;
        v[strcspn(v, "\n")] = 0;
        for(char *q = v; *q; q++) if( *q == '"' ) *q = '\'';
        snprintf(buf, len, "%s", v);
      }
      break;
    }
  }
  fclose(f);
}

int main(int argc, char **argv){
  int runs = envint("PEAK_RUNS", 5), ms = envint("PEAK_MS", 200);
  int online = (int)sysconf(_SC_NPROCESSORS_ONLN);
  int nthr = 0, thr[64];
  char model[256];
  const char *best_isa = NULL;
  int best_thr = 0;
  double best = 0;

  if( online < 1 ) online = 1;
  for(int i = 1; i < argc && nthr < 64; i++) if( atoi(argv[i]) > 0 ) thr[nthr++] = atoi(argv[i]);
  if( nthr == 0 ){ thr[nthr++] = 1; if( online > 1 ) thr[nthr++] = online; }

  detect();
  cpu_model(model, sizeof model);
  printf("cpu model=\"%s\" online=%d\n", model, online);
  printf("isa");
  for(int i = 0; i < NISA; i++) printf(" %s=%s", isas[i].name, isas[i].have ? "yes" : "no");
  printf("\n");
  fflush(stdout);
  for(int i = 0; i < NISA; i++){
    if( !isas[i].have ) continue;
    for(int t = 0; t < nthr; t++){
      double g = peak(&isas[i], thr[t], runs, ms);
      printf("peak isa=%s threads=%d gflops=%.2f\n", isas[i].name, thr[t], g);
      fflush(stdout);
      if( g > best ){ best = g; best_isa = isas[i].name; best_thr = thr[t]; }
    }
  }
  if( best_isa ) printf("best isa=%s threads=%d gflops=%.2f\n", best_isa, best_thr, best);
  return best_isa ? 0 : 1;
}
