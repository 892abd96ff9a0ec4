/*
** sgemm_floor: the time OpenBLAS alone needs for the matrix products of the
** tutorial's training, i.e. the floor under any implementation that trains
** 784 -> H ReLU -> 784 with sgemm (libaesql, or PyTorch on this machine,
** whose CPU matmul goes to the same Debian OpenBLAS).
**
** One training step on a batch of B rows (row-major):
**   fwd    H[B x h]     = X[B x 784]  * W1[784 x h]
**          Y[B x 784]   = H[B x h]    * W2[h x 784]
**   bwd    dW2[h x 784] = H'[h x B]   * dY[B x 784]
**          dH[B x h]    = dY[B x 784] * W2'[784 x h]
**          dW1[784 x h] = X'[784 x B] * dH[B x h]
** and per epoch the two forward products over the validation rows.
** Floor for E epochs of N rows: E * (full * t(256) + t(last) + t(val)),
** with 48000 training rows = 187 batches of 256 + 1 of 128, 12000 validation
** rows per epoch for MNIST.
**
** Everything else (bias, ReLU, loss, Adam, the shuffle) is left out on
** purpose: this is a lower bound, not a model.
**
**   cc -O2 -o sgemm_floor sgemm_floor.c -lopenblas
**   OPENBLAS_CORETYPE=SkylakeX ./sgemm_floor [threads...]   (default: 1 2)
** Options via environment: FLOOR_HIDDEN (32), FLOOR_EPOCHS (50),
** FLOOR_ROWS (60000), FLOOR_BATCH (256), FLOOR_VAL_CHUNK (0 = all val rows
** in one product; e.g. 256 to time it batch by batch as Keras does).
** Output: human lines, plus key=value lines (floor_seconds_t1=...).
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void){
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int envint(const char *name, int dflt){
  const char *v = getenv(name);
  return (v && *v) ? atoi(v) : dflt;
}

static float *mat(size_t n){
  float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
  if( !p ){ perror("aligned_alloc"); exit(1); }
  for(size_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX - 0.5f;
  return p;
}

static int cmpd(const void *a, const void *b){
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { D = 784 };
static int h;
static float *X, *W1, *W2, *Hm, *Y, *dW1, *dW2, *dH, *dY;

/* The five products of one step on B rows. */
static void step(int B){
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, h, D,
              1.f, X, D, W1, h, 0.f, Hm, h);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, D, h,
              1.f, Hm, h, W2, D, 0.f, Y, D);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, D, B,
              1.f, Hm, h, dY, D, 0.f, dW2, D);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, h, D,
              1.f, dY, D, W2, D, 0.f, dH, h);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, h, B,
              1.f, X, D, dH, h, 0.f, dW1, h);
}

/* The two forward products over nval rows, chunk rows at a time. */
static void valpass(int nval, int chunk){
  for(int i = 0; i < nval; i += chunk){
    int b = nval - i < chunk ? nval - i : chunk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, h, D,
                1.f, X + (size_t)i * D, D, W1, h, 0.f, Hm + (size_t)i * h, h);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, D, h,
                1.f, Hm + (size_t)i * h, h, W2, D, 0.f, Y + (size_t)i * D, D);
  }
}

/* Seconds of one call: best and median over `reps` timed blocks of `inner`
** calls each, after a warm-up block. The floor uses the best block (this is
** a lower bound; 2-thread times on a shared VM are noisy); the median is
** printed too. */
#define TIME_CALL(best, med, inner, reps, call) do { \
    double ts_[64]; int r_; \
    for(int i_ = 0; i_ < (inner); i_++){ call; } \
    for(r_ = 0; r_ < (reps) && r_ < 64; r_++){ \
      double t0_ = now(); \
      for(int i_ = 0; i_ < (inner); i_++){ call; } \
      ts_[r_] = (now() - t0_) / (inner); \
    } \
    qsort(ts_, r_, sizeof(double), cmpd); \
    (best) = ts_[0]; (med) = ts_[r_ / 2]; \
  } while(0)

int main(int argc, char **argv){
  h = envint("FLOOR_HIDDEN", 32);
  int epochs = envint("FLOOR_EPOCHS", 50);
  int rows = envint("FLOOR_ROWS", 60000);
  int batch = envint("FLOOR_BATCH", 256);
  int nval = rows / 5;                 /* validation_split 0.2 */
  int ntrain = rows - nval;
  int full = ntrain / batch, last = ntrain % batch;
  int vchunk = envint("FLOOR_VAL_CHUNK", 0);
  if( vchunk <= 0 ) vchunk = nval;
  int big = nval > batch ? nval : batch;

  X = mat((size_t)big * D); Y = mat((size_t)big * D); dY = mat((size_t)batch * D);
  Hm = mat((size_t)big * h); dH = mat((size_t)batch * h);
  W1 = mat((size_t)D * h); W2 = mat((size_t)h * D);
  dW1 = mat((size_t)D * h); dW2 = mat((size_t)h * D);

  int nthr = argc > 1 ? argc - 1 : 2;
  int thr[16] = {1, 2};
  for(int i = 1; i < argc && i <= 16; i++) thr[i - 1] = atoi(argv[i]);
  if( nthr > 16 ) nthr = 16;

  printf("openblas: %s\n", openblas_get_config());
  printf("floor_core=%s\n", openblas_get_corename());
  printf("sgemm floor: hidden %d, %d epochs, %d train rows = %d batches of %d"
         "%s, %d validation rows per epoch (%s)\n",
         h, epochs, ntrain, full, batch, last ? " + 1 short" : "", nval,
         vchunk == nval ? "one product" : "batched");
  if( last ) printf("  (last batch: %d rows)\n", last);
  for(int k = 0; k < nthr; k++){
    int t = thr[k];
    openblas_set_num_threads(t);
    double tstep, tlast = 0, tval, mstep, mlast = 0, mval, one[5], dummy;
    TIME_CALL(tstep, mstep, 50, 21, step(batch));
    if( last ) TIME_CALL(tlast, mlast, 50, 21, step(last));
    TIME_CALL(tval, mval, 2, 11, valpass(nval, vchunk));
    /* each product alone, for the record */
    TIME_CALL(one[0], dummy, 200, 9, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, h, D, 1.f, X, D, W1, h, 0.f, Hm, h));
    TIME_CALL(one[1], dummy, 200, 9, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, D, h, 1.f, Hm, h, W2, D, 0.f, Y, D));
    TIME_CALL(one[2], dummy, 200, 9, cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, D, batch, 1.f, Hm, h, dY, D, 0.f, dW2, D));
    TIME_CALL(one[3], dummy, 200, 9, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, h, D, 1.f, dY, D, W2, D, 0.f, dH, h));
    TIME_CALL(one[4], dummy, 200, 9, cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, h, batch, 1.f, X, D, dH, h, 0.f, dW1, h));
    (void)dummy;
    double epoch = full * tstep + tlast + tval;
    double mepoch = full * mstep + mlast + mval;
    double flops = 2.0 * D * h * 5 * ntrain + 2.0 * D * h * 2 * nval;
    printf("threads %d: step(%d) %.1f us [X*W1 %.1f, H*W2 %.1f, H'*dY %.1f, "
           "dY*W2' %.1f, X'*dH %.1f], step(%d) %.1f us, validation %.2f ms\n"
           "  epoch %.1f ms (%.1f GFLOP/s), %d epochs %.2f s"
           " (median blocks: %.2f s)\n",
           t, batch, tstep * 1e6, one[0] * 1e6, one[1] * 1e6, one[2] * 1e6,
           one[3] * 1e6, one[4] * 1e6, last, tlast * 1e6, tval * 1e3,
           epoch * 1e3, flops / epoch * 1e-9, epochs, epoch * epochs,
           mepoch * epochs);
    printf("floor_step_us_t%d=%.2f\n", t, tstep * 1e6);
    printf("floor_val_ms_t%d=%.3f\n", t, tval * 1e3);
    printf("floor_epoch_seconds_t%d=%.5f\n", t, epoch);
    printf("floor_seconds_t%d=%.3f\n", t, epoch * epochs);
    printf("floor_median_seconds_t%d=%.3f\n", t, mepoch * epochs);
  }
  return 0;
}
