#!/bin/bash
# tests/bench/run.sh: `make bench`, libaesql against PyTorch on this machine.
#
# The job is the tutorial (sql/tutorial.sql): MNIST, 784 -> 32 ReLU -> 784,
# MSE, Adam, batch 256, 50 epochs, the last 20% held out, then the per-class
# reconstruction error of the test set. Measured, all in this one run:
#   1. the whole job as ONE process on each side: libaesql is one sqlite3
#      process (import the IDX files into stored tables, ae_train, per-class
#      ae_error); PyTorch is one python3 process (tests/bench/torch_tutorial.py:
#      import torch, read the IDX files, train, per-class errors). Wall time
#      and peak RSS from /usr/bin/time -v. Against the sgemm floor too:
#      OpenBLAS alone doing the job's matrix products (tests/bench/sgemm_floor.c).
#      Default threads on both sides, then both sides pinned to 1 thread.
#   2. scoring, rows/s over the 60000 stored training rows:
#      SELECT avg(ae_error(m, pixels)) FROM train, and ae_scores(m, 'train'),
#      against PyTorch's batched inference + per-row error.
#   3. scaling: seconds per epoch and peak RSS at 60k/240k/600k rows (MNIST
#      repeated) and at hidden 32/128/512, both sides.
#   4. libaesql inside Python (tests/bench/numpy_train.py): ae_train on the
#      first 20000 MNIST rows, 5 epochs, in a plain python3 process and in
#      one that imported numpy first (numpy's OpenBLAS loaded, its threads
#      running), the two in turns; the numpy process's training time
#      against the plain one's, and whether the two models are the same bits.
#   5. one-class MNIST (tests/bench/torch_oneclass.py against the same in SQL):
#      the AUROC of a model per digit, libaesql and PyTorch (its own
#      torch.optim.Adam), over seeds; libaesql's Adam as BENCH_ONECLASS_ADAM
#      says (ae_train's "adam" option).
#   7. a model of numeric columns (below part 6 in the code, 11 in the
#      summary): rows/s of ae_error with the 30 columns of the breast-cancer
#      data (data/breast_cancer.csv, repeated to BENCH_COLUMNS_ROWS rows) as
#      arguments, REAL and as the CSV import's TEXT, against ae_error on a
#      prebuilt vector of the same rows (ae_vector), and ae_scores reading the
#      columns by name; the same model, 30 -> 16 -> 30, in one process.
#   6. the deep model: part 1's whole job (default threads) with the stack
#      784 -> 128 -> 32 -> 128 -> 784 (ReLU after every layer but the last),
#      ae_train('train', '[128, 32]', ...) in one sqlite3 process against
#      torch_tutorial.py --hidden 128,32, in turns. A libaesql that cannot
#      train it yet (its error) is reported as "not run: <error>", and the
#      rest of the bench goes on.
# Against the hardware limit: tests/bench/peak_flops.c measures the CPU's
# peak float32 multiply-add rate for each instruction set it has (SSE2,
# AVX2+FMA, AVX-512F), 1 thread and every online CPU, best of BENCH_REPS
# runs. Each training of parts 1 and 6 is reported as achieved GFLOP/s: the
# flops of the matrix products of its epochs (tests/bench/flops.py, from the
# layer widths and the rows trained and validated; libaesql's first layer
# over the non-zero pixels only, and a stack's last layer the Gram way
# where it takes it, as it runs them; PyTorch's all dense) over
# its training seconds, and as a fraction of the best instruction set's
# peak on as many threads (default threads: every CPU; 1 thread: one).
# Every figure is a median over BENCH_REPS runs (processes) and comes with
# its ratio against the PyTorch figure measured in this run; in parts 1 and
# 2 the two sides take turns, run by run, so that a slow spell of a shared
# machine falls on both alike. The machine may
# be shared: each run records how much of it other processes took, and
# timings are medians over the runs that were left alone (other processes
# <= 10% of the machine), over all runs when none was; the summary counts
# the disturbed runs. Targets
# (PASS/MISS, never a failure): whole-job peak RSS <= 120 MB, ae_error >= 2x
# PyTorch's scoring rows/s, ae_scores >= 1M rows/s; training after
# import numpy <= 1.3x a plain process's; the deep model's whole job >= 3x
# faster than PyTorch's and its peak RSS <= 1/4 of PyTorch's. The tutorial's
# job must not get slower: part 1's ratio to PyTorch is printed next to the
# previous run's (build/bench/summary.txt of that run, when there is one).
#
# Environment (defaults in brackets):
#   BENCH_REPS [5]             runs of the whole job and scoring (medians)
#   BENCH_EPOCHS [50]          epochs of the whole job
#   BENCH_SCORE_REPS [5]       timed repeats of each scoring query per process
#   BENCH_SCALE_EPOCHS [3]     epochs of each scaling run
#   BENCH_SCALE_REPS [3]       runs of each scaling point
#   BENCH_SCALE_ROWS ["60000 240000 600000"]  BENCH_SCALE_HIDDEN ["32 128 512"]
#   BENCH_NUMPY_REPS [BENCH_REPS]  runs of each side of part 4
#   BENCH_NUMPY_ROWS [20000]   BENCH_NUMPY_EPOCHS [5]
#   BENCH_SKIP=""              parts to leave out, any of:
#                              peak floor torch aesql threads1 scoring scaling
#                              numpy oneclass deep columns
#   BENCH_ONECLASS_SEEDS ["1 2 3"]  seeds of part 5
#   BENCH_ONECLASS_ADAM [""]   part 5's libaesql side: ae_train's "adam"
#                              option, "keras" or "torch" (where Adam adds
#                              epsilon); empty: not given, the library's
#                              default. The PyTorch side is always torch's.
#   BENCH_DEEP_HIDDEN ["128 32"]  the deep model's encoder widths (part 6)
#   BENCH_DEEP_REPS [BENCH_REPS]  runs of each side of part 6
#   BENCH_COLUMNS_ROWS [56900] rows of part 7 (the data's 569, repeated)
#   BENCH_CORETYPE [SkylakeX]  OPENBLAS_CORETYPE for the sgemm floor
#   BENCH_QUIET_WAIT [120]     seconds, in all, to wait for other processes
#                              to go quiet before runs (5 s at most a run)
#   PYTHON [/usr/bin/python3]  SQLITE3 [sqlite3]
# Output: progress while it runs, then the summary. Logs of every run in
# build/bench/ (*.out, *.time); key=value figures in build/bench/summary.txt
# (the previous run's kept as build/bench/summary.prev.txt); the summary as
# a markdown section in build/bench/README-section.md.
set -eu
cd "$(dirname "$0")/../.."

PY=${PYTHON:-/usr/bin/python3}
SQLITE=${SQLITE3:-sqlite3}
SQL="$SQLITE -batch -init /dev/null"   # no ~/.sqliterc settings
REPS=${BENCH_REPS:-5}
EPOCHS=${BENCH_EPOCHS:-50}
SCORE_REPS=${BENCH_SCORE_REPS:-5}
SCALE_EPOCHS=${BENCH_SCALE_EPOCHS:-3}
SCALE_REPS=${BENCH_SCALE_REPS:-3}
SCALE_ROWS=${BENCH_SCALE_ROWS:-60000 240000 600000}
SCALE_HIDDEN=${BENCH_SCALE_HIDDEN:-32 128 512}
SKIP=" ${BENCH_SKIP:-} "
CORETYPE=${BENCH_CORETYPE:-SkylakeX}
OUT=build/bench
SUMMARY=$OUT/summary.txt
MD=$OUT/README-section.md
DATA=data/mnist
TORCH=tests/bench/torch_tutorial.py
NPROC=$(nproc 2>/dev/null || echo 1)
MODEL=train_32            # ae_train('train', 32, ...) names its model so
T_START=$(date +%s)

skipped() { case "$SKIP" in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- setup ----
need=""
pkgs="time sqlite3 gcc libopenblas-dev"
skipped torch || pkgs="$pkgs python3-torch python3-numpy"
skipped numpy || pkgs="$pkgs python3-numpy"
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || need="$need $p"
done
if [ -n "$need" ]; then
  echo "bench: installing$need"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
fi
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$DATA/$f" ] || { echo "bench: $DATA/$f missing (run make data)" >&2; exit 1; }
done
[ -f libaesql.so ] || { echo "bench: ./libaesql.so not built (run make)" >&2; exit 1; }
if ! skipped torch; then
  "$PY" -c 'import torch, numpy' 2>/dev/null || { echo "bench: $PY cannot import torch and numpy" >&2; exit 1; }
fi
mkdir -p "$OUT"
# the logs of an earlier run must not leak into this one's medians
rm -f "$OUT"/*.out "$OUT"/*.time "$OUT"/*.noise "$OUT"/*.sql "$OUT"/*.db "$OUT"/*.db-journal "$OUT/sgemm_floor" "$OUT/peak_flops"
# the previous run's figures, for "the tutorial's job must not get slower"
[ -s "$SUMMARY" ] && cp -p "$SUMMARY" "$OUT/summary.prev.txt"
: > "$SUMMARY"
# Every run loads a snapshot of ./libaesql.so taken now, so that a rebuild
# during the bench cannot mix two builds into one set of figures.
cp libaesql.so "$OUT/libaesql.so"
EXT=$OUT/libaesql
EXT_ID="$(sha256sum "$OUT/libaesql.so" | cut -c1-12), built $(date -u -r libaesql.so '+%Y-%m-%d %H:%M:%S UTC')"

# ------------------------------------------------------------- helpers ----
# timed NAME CMD...: runs CMD, output in $OUT/NAME.out, /usr/bin/time -v
# report in $OUT/NAME.time; returns CMD's status.
# Also $OUT/NAME.noise: the share of the machine other processes used
# during the run (the machine's busy time minus the run's own CPU time).
# Before each run, waits (0.5 s samples, at most 5 s a run and
# BENCH_QUIET_WAIT seconds in all) for other processes to leave the machine
# alone: on a shared 2-core machine one busy neighbour halves a 2-thread run.
QUIET_TRIES=$(( ${BENCH_QUIET_WAIT:-120} * 2 ))
quiet_wait() {
  local n=0 b0 b1
  while [ "$QUIET_TRIES" -gt 0 ] && [ "$n" -lt 10 ]; do
    b0=$(busy_jiffies); sleep 0.5; b1=$(busy_jiffies)
    [ $(( (b1 - b0) * 200 / (HZ * NPROC) )) -le 10 ] && return 0
    QUIET_TRIES=$((QUIET_TRIES - 1)); n=$((n + 1))
  done
}
timed() {
  local name=$1 b0 rc=0; shift
  quiet_wait
  b0=$(busy_jiffies)
  /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2>&1 || rc=$?
  awk -F': ' -v b0="$b0" -v b1="$(busy_jiffies)" -v hz="$HZ" -v n="$NPROC" '
    /User time|System time/ { own += $2 }
    /Elapsed \(wall clock\)/ { k = split($2, a, ":"); w = 0; for (i = 1; i <= k; i++) w = w * 60 + a[i] }
    END { o = (b1 - b0) / hz - own; if (o < 0 || w <= 0) o = 0; printf "%.0f\n", (w > 0) ? 100 * o / (w * n) : 0 }' \
    "$OUT/$name.time" > "$OUT/$name.noise" 2>/dev/null || echo 0 > "$OUT/$name.noise"
  return $rc
}
# use_runs PREFIX N: the runs PREFIX_1..N that timing medians are taken
# over: those other processes left alone (<= 10% of the machine), or all of
# them when none was. Peak RSS, losses and errors use all runs.
use_runs() {
  local r q="" all=""
  for r in $(seq 1 "$2"); do
    all="$all $1_$r"
    [ "$(cat "$OUT/$1_$r.noise" 2>/dev/null || echo 100)" -gt 10 ] || q="$q $1_$r"
  done
  echo ${q:-$all}
}
busy_tag() {  # busy_tag NAME: " [busy: other processes N% of the machine]" when > 10%
  local v; v=$(cat "$OUT/$1.noise" 2>/dev/null || echo 0)
  [ "$v" -le 10 ] || echo " [busy: other processes used $v% of the machine]"
}
wall_of() {  # seconds of wall clock of run NAME
  [ -f "$OUT/$1.time" ] || return 0
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0;
    for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s }' "$OUT/$1.time"
}
rss_of() {  # peak RSS of run NAME, MB
  [ -f "$OUT/$1.time" ] || return 0
  awk -F': ' '/Maximum resident set size/ { printf "%.1f\n", $2 / 1024 }' "$OUT/$1.time"
}
kv() {  # kv NAME KEY: last "KEY=value" line of run NAME's output
  [ -f "$OUT/$1.out" ] || return 0
  sed -n "s/^$2=//p" "$OUT/$1.out" | tail -n 1
}
rate() {  # rate ROWS SECONDS: rows/s, "" when unknown
  awk -v n="$1" -v s="$2" 'BEGIN { if (n > 0 && s > 0) printf "%.0f", n / s }'
}
median() {  # median of the numbers on stdin (other lines ignored); "" if none
  { grep -E '^-?[0-9.]+([eE][-+]?[0-9]+)?$' || true; } | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2];
    else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
fmt() {  # fmt VALUE [PRINTF-FORMAT]: "n/a" for empty
  if [ -z "$1" ]; then echo "n/a"; else awk -v v="$1" -v f="${2:-%.2f}" 'BEGIN { printf f, v }'; fi
}
div() {  # div A B [FORMAT]: A / B, "" when either is missing
  awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a != "" && b != "" && b + 0 != 0) printf f, a / b }'
}
# ratio OURS THEIRS lower|higher [WORD-BETTER WORD-WORSE]: "3.10x faster"
ratio() {
  awk -v a="$1" -v b="$2" -v m="$3" -v good="${4:-faster}" -v bad="${5:-slower}" 'BEGIN {
    if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print "n/a"; exit }
    r = (m == "lower") ? b / a : a / b;
    if (r >= 1) printf "%.2fx %s", r, good; else printf "%.2fx %s", 1 / r, bad }'
}
# verdict VALUE OP LIMIT: PASS / MISS / n/a
verdict() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { if (v == "") { print "n/a"; exit }
    ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0); print ok ? "PASS" : "MISS" }'
}
record() { echo "$1=$2" >> "$SUMMARY"; }
section() { printf '\n-- %s\n' "$1"; }
say() { echo "   $*"; }   # progress lines

# ------------------------------------------------------------- machine ----
CPU=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
MEM=$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo)
AVX512=no; grep -qw avx512f /proc/cpuinfo && AVX512=yes
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD0=$(cut -d' ' -f1 /proc/loadavg)
sqlq() { $SQL :memory: ".load $EXT" "$1" 2>&1; }
AE_INFO=$(sqlq "SELECT ae_info();") || true
AE_CORE=$(sqlq "SELECT json_extract(ae_info(), '\$.blas_core');") || true
AE_CORE_CHOSEN=$(sqlq "SELECT json_extract(ae_info(), '\$.blas_core_chosen');") || true
AE_THREADS=$(sqlq "SELECT json_extract(ae_info(), '\$.blas_threads');") || true
AE_POOL=$(sqlq "SELECT json_extract(ae_info(), '\$.threads');") || true
AE_VERSION=$(sqlq "SELECT json_extract(ae_info(), '\$.version');") || true
SQLITE_VERSION=$(sqlq "SELECT sqlite_version();") || true
OPENBLAS=$(dpkg-query -W -f='${Version}' libopenblas0 2>/dev/null || echo "?")
OPENBLAS_CFG=$(sqlq "SELECT json_extract(ae_info(), '\$.blas_config');" | awk '{ print $1, $2 }') || true
TORCH_VERSION=$(dpkg-query -W -f='${Version}' python3-torch 2>/dev/null | sed 's/+.*//' || true)
[ -n "$TORCH_VERSION" ] || TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo "n/a")
CPU_ID="family $(grep -m1 '^cpu family' /proc/cpuinfo | sed 's/.*: //') model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | sed 's/.*: //')"
grep -qw hypervisor /proc/cpuinfo && CPU_ID="$CPU_ID, virtual machine"
# CPU time used by other processes during the bench (a noise indicator):
# the machine's busy time from /proc/stat minus this script's children's.
busy_jiffies() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
steal_jiffies() { awk '/^cpu / { print $9 }' /proc/stat; }
children_seconds() { times | tail -n 1 | awk '{ s = 0; for (i = 1; i <= 2; i++) {
  split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }'; }
BUSY0=$(busy_jiffies); STEAL0=$(steal_jiffies); HZ=$(getconf CLK_TCK)
echo "bench: $CPU, $NPROC cores, $MEM; reps $REPS, $EPOCHS epochs; logs in $OUT/"
awk -v l="$LOAD0" 'BEGIN { if (l > 0.5) print "bench: WARNING: the machine is busy (load " l "); figures will be noisy" }'

# ---------------------------------------------------------------- peak ----
# The hardware limit: the CPU's peak float32 multiply-add rate for each
# instruction set it has, on 1 thread and on every online CPU. A peak is a
# maximum (a busy neighbour only lowers a run): the best of all runs.
declare -A P
PEAK_ISA=""; PEAK_MT=""; PEAK_1=""
if ! skipped peak; then
  section "peak float32 GFLOP/s of the CPU (tests/bench/peak_flops.c, best of $REPS runs)"
  if cc -O2 -pthread -o "$OUT/peak_flops" tests/bench/peak_flops.c > "$OUT/peak_cc.out" 2>&1; then
    for r in $(seq 1 "$REPS"); do
      timed "peak_$r" "$OUT/peak_flops" 1 $([ "$NPROC" -gt 1 ] && echo "$NPROC") \
        || { say "peak_flops failed:"; tail -n 5 "$OUT/peak_$r.out" | sed 's/^/     /'; }
      say "run $r: $(awk '/^peak / { printf "%s%s %s thread(s) %s", sep, substr($2, 5), substr($3, 9), substr($4, 8); sep = ", " }' "$OUT/peak_$r.out") GFLOP/s$(busy_tag "peak_$r")"
    done
    # "ISA THREADS GFLOPS", the best of the runs for each pair
    while read -r isa thr g; do
      P[${isa}_$thr]=$g; record "peak_gflops_${isa}_t$thr" "$g"
    done < <(awk '/^peak / { k = substr($2, 5) " " substr($3, 9); g = substr($4, 8) + 0;
                             if (!(k in b) || g > b[k]) b[k] = g }
                  END { for (k in b) print k, b[k] }' "$OUT"/peak_*.out | sort)
    # the best instruction set: the highest figure on every CPU
    for isa in sse2 avx2 avx512 generic; do
      g=${P[${isa}_$NPROC]:-}
      [ -n "$g" ] && awk -v a="$g" -v b="$PEAK_MT" 'BEGIN { exit !(b == "" || a + 0 > b + 0) }' \
        && { PEAK_ISA=$isa; PEAK_MT=$g; PEAK_1=${P[${isa}_1]:-}; }
    done
    record peak_isa "$PEAK_ISA"; record peak_gflops_mt "$PEAK_MT"; record peak_gflops_t1 "$PEAK_1"
    say "best: $PEAK_ISA, ${PEAK_1:-?} GFLOP/s on 1 thread, ${PEAK_MT:-?} on $NPROC"
  else
    say "cannot compile tests/bench/peak_flops.c:"; tail -n 5 "$OUT/peak_cc.out" | sed 's/^/     /'
  fi
fi

# --------------------------------------------------------- sgemm floor ----
FLOOR1=""; FLOOR2=""; FLOOR=""
if ! skipped floor; then
  section "sgemm floor (OpenBLAS alone, OPENBLAS_CORETYPE=$CORETYPE, $REPS runs)"
  if cc -O2 -o "$OUT/sgemm_floor" tests/bench/sgemm_floor.c -lopenblas > "$OUT/floor_cc.out" 2>&1; then
    for r in $(seq 1 "$REPS"); do
      timed "floor_$r" env OPENBLAS_CORETYPE="$CORETYPE" FLOOR_EPOCHS="$EPOCHS" "$OUT/sgemm_floor" 1 2 \
        || { say "sgemm_floor failed:"; tail -n 5 "$OUT/floor_$r.out" | sed 's/^/     /'; }
      say "run $r: 1 thread $(kv "floor_$r" floor_seconds_t1) s, 2 threads $(kv "floor_$r" floor_seconds_t2) s$(busy_tag "floor_$r")"
    done
    # a floor is a minimum: the best of all runs (2-thread timings of small
    # products on this VM vary a lot from process to process)
    FLOOR1=$(for r in $(seq 1 "$REPS"); do kv "floor_$r" floor_seconds_t1; done | sort -g | head -n 1)
    FLOOR2=$(for r in $(seq 1 "$REPS"); do kv "floor_$r" floor_seconds_t2; done | sort -g | head -n 1)
    FLOOR=$(printf '%s\n%s\n' "$FLOOR1" "$FLOOR2" | grep . | sort -g | head -n 1 || true)
    record floor_seconds_t1 "$FLOOR1"; record floor_seconds_t2 "$FLOOR2"
  else
    say "cannot compile tests/bench/sgemm_floor.c:"; tail -n 5 "$OUT/floor_cc.out" | sed 's/^/     /'
  fi
fi

CFGS="default"; skipped threads1 || CFGS="default 1"

# -------------------------------------------------------------- PyTorch ----
declare -A T
torch_job_run() {  # torch_job_run CFG R: whole job number R
  local cfg=$1 r=$2 args=() name
  [ "$cfg" = default ] || args=(--threads "$cfg")
  name=torch_${cfg}_$r
  if timed "$name" "$PY" "$TORCH" --epochs "$EPOCHS" --quiet --no-score "${args[@]}"; then
    say "PyTorch  run $r: wall $(wall_of "$name") s, train $(kv "$name" train_seconds) s, peak RSS $(rss_of "$name") MB, loss $(kv "$name" final_loss) / val $(kv "$name" final_val_loss)$(busy_tag "$name")"
  else
    say "PyTorch  run $r FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/     /'
  fi
}
torch_job_sum() {  # torch_job_sum CFG: medians of the runs; sets T[<field>_<CFG>]
  local cfg=$1 k
  T[wall_$cfg]=$(for n in $(use_runs "torch_${cfg}" "$REPS"); do [ -n "$(kv "$n" class_error_0)" ] && wall_of "$n"; done | median)
  T[train_seconds_$cfg]=$(for n in $(use_runs "torch_${cfg}" "$REPS"); do kv "$n" train_seconds; done | median)
  T[rss_$cfg]=$(for r in $(seq 1 "$REPS"); do [ -n "$(kv "torch_${cfg}_$r" class_error_0)" ] && rss_of "torch_${cfg}_$r"; done | median)
  for k in final_loss final_val_loss class_error_{0..9}; do
    T[${k}_$cfg]=$(for r in $(seq 1 "$REPS"); do kv "torch_${cfg}_$r" "$k"; done | median)
  done
  T[threads_$cfg]=$(kv "torch_${cfg}_1" threads)
  T[blas_threads_$cfg]=$(kv "torch_${cfg}_1" blas_threads)
  T[blas_core]=$(kv "torch_${cfg}_1" blas_core)
  for k in wall rss train_seconds final_loss final_val_loss; do record "torch_${k}_$cfg" "${T[${k}_$cfg]}"; done
}
torch_score_run() {  # torch_score_run CFG R [whole]: one process of 1 epoch, then the scoring benchmark
  local cfg=$1 r=$2 args=() name tag=score lbl
  [ "$cfg" = default ] || args=(--threads "$cfg")
  lbl="chunks of 1024, $([ "$cfg" = default ] && echo "default threads" || echo "--threads $cfg")"
  # whole: one forward pass over all the rows at once, as the issue measured it
  if [ "${3:-}" = whole ]; then args+=(--score-chunk 0); tag=scorewhole; lbl="one pass"; fi
  name=torch_${tag}_${cfg}_$r
  if timed "$name" "$PY" "$TORCH" --epochs 1 --quiet --no-class --score-reps "$SCORE_REPS" "${args[@]}"; then
    say "PyTorch  run $r ($lbl): $(kv "$name" score_rows_per_s) rows/s$(busy_tag "$name")"
  else
    say "PyTorch  run $r ($lbl) FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/     /'
  fi
}
torch_score_sum() {  # torch_score_sum CFG [whole]: sets T[score_CFG] or T[scorewhole_CFG]
  local cfg=$1 tag=score
  [ "${2:-}" = whole ] && tag=scorewhole
  T[${tag}_$cfg]=$(for n in $(use_runs "torch_${tag}_${cfg}" "$REPS"); do kv "$n" score_rows_per_s; done | median)
  record "torch_${tag}_rows_per_s_$cfg" "${T[${tag}_$cfg]}"
}

# ------------------------------------------------------------- libaesql ----
declare -A A
IDX_TABLES="CREATE VIRTUAL TABLE temp.mnist_train USING idx(images='$DATA/train-images-idx3-ubyte', labels='$DATA/train-labels-idx1-ubyte');
CREATE VIRTUAL TABLE temp.mnist_test USING idx(images='$DATA/t10k-images-idx3-ubyte', labels='$DATA/t10k-labels-idx1-ubyte');"

# aesql_job_sql OPTIONS-JSON [HIDDEN-SQL MODEL]: the whole tutorial job;
# HIDDEN-SQL is ae_train's second argument as SQL (32, or '[128, 32]'), the
# model then named MODEL by OPTIONS-JSON.
aesql_job_sql() {
  local hidden=${2:-32} model=${3:-$MODEL}
  cat <<EOF
.bail on
.headers off
.mode list
.load $EXT
-- import: the IDX files into stored tables
$IDX_TABLES
CREATE TABLE train AS SELECT class, pixels FROM mnist_train;
CREATE TABLE test AS SELECT class, pixels FROM mnist_test;
-- train
SELECT 'model=' || ae_train('train', $hidden, '$1');
SELECT 'train_seconds=' || sum(seconds) FROM ae_history WHERE model = '$model';
SELECT 'epochs=' || count(*) FROM ae_history WHERE model = '$model';
SELECT 'final_loss=' || loss FROM ae_history WHERE model = '$model' ORDER BY epoch DESC LIMIT 1;
SELECT 'final_val_loss=' || val_loss FROM ae_history WHERE model = '$model' ORDER BY epoch DESC LIMIT 1;
-- the rows trained and validated, for the flop count
SELECT 'rows_train=' || rows_train FROM ae_models WHERE name = '$model';
SELECT 'rows_val=' || rows_val FROM ae_models WHERE name = '$model';
-- the tutorial's table: average reconstruction error per test class
SELECT 'class_error_' || class || '=' || avg(ae_error('$model', pixels)) FROM test GROUP BY class;
EOF
}
aesql_job_run() {  # aesql_job_run CFG R: whole job number R
  local cfg=$1 r=$2 opts name db
  if [ "$cfg" = default ]; then opts="{\"seed\": 1, \"epochs\": $EPOCHS}"
  else opts="{\"seed\": 1, \"epochs\": $EPOCHS, \"threads\": $cfg}"; fi
  name=aesql_${cfg}_$r; db=$OUT/$name.db
  rm -f "$db" "$db-journal" "$db-wal"
  aesql_job_sql "$opts" > "$OUT/$name.sql"
  if timed "$name" $SQL "$db" < "$OUT/$name.sql" && [ -n "$(kv "$name" class_error_9)" ]; then
    say "libaesql run $r: wall $(wall_of "$name") s, train $(fmt "$(kv "$name" train_seconds)") s, peak RSS $(rss_of "$name") MB, loss $(fmt "$(kv "$name" final_loss)" %.6f) / val $(fmt "$(kv "$name" final_val_loss)" %.6f)$(busy_tag "$name")"
  else
    say "libaesql run $r FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/     /'
  fi
}
aesql_job_sum() {  # aesql_job_sum CFG: medians of the runs; sets A[<field>_<CFG>]
  local cfg=$1 k
  A[wall_$cfg]=$(for n in $(use_runs "aesql_${cfg}" "$REPS"); do [ -n "$(kv "$n" class_error_9)" ] && wall_of "$n"; done | median)
  A[train_seconds_$cfg]=$(for n in $(use_runs "aesql_${cfg}" "$REPS"); do kv "$n" train_seconds; done | median)
  A[rss_$cfg]=$(for r in $(seq 1 "$REPS"); do [ -n "$(kv "aesql_${cfg}_$r" class_error_9)" ] && rss_of "aesql_${cfg}_$r"; done | median)
  for k in final_loss final_val_loss class_error_{0..9}; do
    A[${k}_$cfg]=$(for r in $(seq 1 "$REPS"); do kv "aesql_${cfg}_$r" "$k"; done | median)
  done
  for k in wall rss train_seconds final_loss final_val_loss; do record "aesql_${k}_$cfg" "${A[${k}_$cfg]}"; done
}
# score_query NAME DB QUERY: median seconds of QUERY over BENCH_SCORE_REPS
# repeats in one process (after one warm-up), from sqlite3's .timer; "" on error.
score_query() {
  local name=$1 db=$2 q=$3
  {
    echo ".load $EXT"
    echo ".timer on"
    for _ in $(seq 0 "$SCORE_REPS"); do echo "$q"; done
  } > "$OUT/$name.sql"
  if timed "$name" $SQL -bail "$db" < "$OUT/$name.sql"; then
    sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p' "$OUT/$name.out" | tail -n +2 | median
  else
    say "$name failed: $(grep -m1 -i error "$OUT/$name.out")" >&2
  fi
}

# ------------------------------------------------------ runs, in turns ----
# PyTorch and libaesql take turns, run by run, so that a slow spell of this
# shared machine falls on both sides alike rather than on one.
AE_OK=0
for cfg in $CFGS; do
  if [ "$cfg" = default ]; then lbl="default threads"; else lbl="$cfg thread"; fi
  section "whole job, $lbl: PyTorch (one python3 process) and libaesql (one sqlite3 process) in turn, $REPS runs each"
  for r in $(seq 1 "$REPS"); do
    skipped torch || torch_job_run "$cfg" "$r"
    skipped aesql || aesql_job_run "$cfg" "$r"
  done
  skipped torch || torch_job_sum "$cfg"
  skipped aesql || aesql_job_sum "$cfg"
done
[ -n "${A[wall_default]:-}" ] && AE_OK=1

NSCORE=""
aesql_score_run() {  # aesql_score_run R: ae_error and ae_scores over the stored table train
  local r=$1 s1 s2
  s1=$(score_query "score_error_$r" "$SDB" "SELECT avg(ae_error('$MODEL', pixels)) FROM train;")
  s2=$(score_query "score_scores_$r" "$SDB" "SELECT avg(error) FROM ae_scores('$MODEL', 'train');")
  echo "rows_per_s=$(rate "$NSCORE" "$s1")" >> "$OUT/score_error_$r.out"
  echo "rows_per_s=$(rate "$NSCORE" "$s2")" >> "$OUT/score_scores_$r.out"
  say "libaesql run $r: ae_error $(rate "$NSCORE" "$s1") rows/s$(busy_tag "score_error_$r"), ae_scores $(rate "$NSCORE" "$s2") rows/s$(busy_tag "score_scores_$r")"
}
if ! skipped scoring; then
  SDB=""   # the database of the first successful default-threads job
  if [ "$AE_OK" = 1 ]; then
    for r in $(seq 1 "$REPS"); do
      [ -n "$(kv "aesql_default_$r" class_error_9)" ] && { SDB=$OUT/aesql_default_$r.db; break; }
    done
    NSCORE=$($SQL "$SDB" "SELECT count(*) FROM train" 2>/dev/null || true)
  fi
  section "scoring 60000 stored rows, in turn: PyTorch (a process of 1 epoch then inference + per-row error, median of $SCORE_REPS each) and libaesql (median of $SCORE_REPS queries each), $REPS runs each"
  for r in $(seq 1 "$REPS"); do
    if ! skipped torch; then
      for cfg in $CFGS; do torch_score_run "$cfg" "$r"; done
      torch_score_run default "$r" whole
    fi
    [ -n "$SDB" ] && aesql_score_run "$r"
  done
  if ! skipped torch; then
    for cfg in $CFGS; do torch_score_sum "$cfg"; done
    torch_score_sum default whole
  fi
  if [ -n "$SDB" ]; then
    A[score_error]=$(for n in $(use_runs score_error "$REPS"); do kv "$n" rows_per_s; done | median)
    A[score_scores]=$(for n in $(use_runs score_scores "$REPS"); do kv "$n" rows_per_s; done | median)
    record aesql_score_rows "$NSCORE"
    record aesql_score_error_rows_per_s "${A[score_error]}"
    record aesql_score_scores_rows_per_s "${A[score_scores]}"
  fi
fi

# ------------------------------------------------------------- scaling ----
declare -A S
torch_scale() {  # torch_scale ROWS HIDDEN
  local r name
  for r in $(seq 1 "$SCALE_REPS"); do
    name=scale_torch_r$1_h$2_$r
    timed "$name" "$PY" "$TORCH" --epochs "$SCALE_EPOCHS" --rows "$1" --hidden "$2" --no-eval --quiet \
      || say "PyTorch rows $1 hidden $2 FAILED (see $OUT/$name.out)"
  done
  S[t_ep_$1_$2]=$(for n in $(use_runs "scale_torch_r$1_h$2" "$SCALE_REPS"); do kv "$n" epoch_seconds_median; done | median)
  S[t_rss_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do [ -n "$(kv "scale_torch_r$1_h$2_$r" epoch_seconds_median)" ] && rss_of "scale_torch_r$1_h$2_$r"; done | median)
}
aesql_scale() {  # aesql_scale ROWS HIDDEN: MNIST train repeated, read through a query
  local r name k
  k=$(( ($1 + 59999) / 60000 ))
  for r in $(seq 1 "$SCALE_REPS"); do
    name=scale_aesql_r$1_h$2_$r
    cat > "$OUT/$name.sql" <<EOF
.bail on
.headers off
.mode list
.load $EXT
$IDX_TABLES
SELECT 'model=' || ae_train('WITH RECURSIVE r(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < $k)
  SELECT pixels FROM r CROSS JOIN mnist_train LIMIT $1', $2,
  '{"seed": 1, "epochs": $SCALE_EPOCHS, "name": "scale"}');
SELECT 'epoch_seconds=' || seconds FROM ae_history WHERE model = 'scale'   -- the median epoch
  ORDER BY seconds LIMIT 1 OFFSET (SELECT (count(*) - 1) / 2 FROM ae_history WHERE model = 'scale');
SELECT 'rows=' || (rows_train + rows_val) FROM ae_models WHERE name = 'scale';
EOF
    rm -f "$OUT/$name.db"
    timed "$name" $SQL "$OUT/$name.db" < "$OUT/$name.sql" \
      || say "libaesql rows $1 hidden $2 FAILED (see $OUT/$name.out)"
    rm -f "$OUT/$name.db"
  done
  S[a_ep_$1_$2]=$(for n in $(use_runs "scale_aesql_r$1_h$2" "$SCALE_REPS"); do kv "$n" epoch_seconds; done | median)
  S[a_rss_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do [ -n "$(kv "scale_aesql_r$1_h$2_$r" epoch_seconds)" ] && rss_of "scale_aesql_r$1_h$2_$r"; done | median)
}
POINTS=""
for rows in $SCALE_ROWS; do POINTS="$POINTS $rows:32"; done
for h in $SCALE_HIDDEN; do
  case " $POINTS " in *" 60000:$h "*) ;; *) POINTS="$POINTS 60000:$h" ;; esac
done
if ! skipped scaling; then
  section "scaling ($SCALE_EPOCHS epochs per run, default threads, $SCALE_REPS run(s) per point)"
  for p in $POINTS; do
    rows=${p%:*}; h=${p#*:}
    skipped torch || torch_scale "$rows" "$h"
    skipped aesql || aesql_scale "$rows" "$h"
    tag=""; for f in "$OUT"/scale_*_r${rows}_h${h}_*.noise; do [ "$(cat "$f")" -le 10 ] || tag=" [busy]"; done
    say "rows $rows hidden $h:$tag libaesql $(fmt "${S[a_ep_${rows}_$h]:-}" %.3f) s/epoch $(fmt "${S[a_rss_${rows}_$h]:-}" %.0f) MB, PyTorch $(fmt "${S[t_ep_${rows}_$h]:-}" %.3f) s/epoch $(fmt "${S[t_rss_${rows}_$h]:-}" %.0f) MB"
    record "scale_aesql_epoch_seconds_r${rows}_h$h" "${S[a_ep_${rows}_$h]:-}"; record "scale_aesql_rss_mb_r${rows}_h$h" "${S[a_rss_${rows}_$h]:-}"
    record "scale_torch_epoch_seconds_r${rows}_h$h" "${S[t_ep_${rows}_$h]:-}"; record "scale_torch_rss_mb_r${rows}_h$h" "${S[t_rss_${rows}_$h]:-}"
  done
fi

# --------------------------------------------- inside Python, numpy ----
# The issue's case: a Python program that imported numpy before loading
# libaesql. Plain and numpy processes take turns, run by run.
declare -A N
NUMPY_REPS=${BENCH_NUMPY_REPS:-$REPS}
NUMPY_ROWS=${BENCH_NUMPY_ROWS:-20000}
NUMPY_EPOCHS=${BENCH_NUMPY_EPOCHS:-5}
if ! skipped numpy; then
  if "$PY" -c 'import numpy' 2>/dev/null; then
    section "libaesql inside python3: a plain process and one that imported numpy first, in turn ($NUMPY_ROWS rows, $NUMPY_EPOCHS epochs, $NUMPY_REPS runs each)"
    for r in $(seq 1 "$NUMPY_REPS"); do
      for side in plain numpy; do
        name=numpy_${side}_$r
        args=(--rows "$NUMPY_ROWS" --epochs "$NUMPY_EPOCHS" --data "$DATA" --ext "$EXT")
        [ "$side" = numpy ] && args+=(--numpy)
        if timed "$name" "$PY" tests/bench/numpy_train.py "${args[@]}" && [ -n "$(kv "$name" train_seconds)" ]; then
          say "$side run $r: train $(kv "$name" train_seconds) s, $(kv "$name" blas_instance) OpenBLAS ($(kv "$name" blas_core))$( [ "$side" = numpy ] && echo ", numpy's OpenBLAS threads $(kv "$name" host_blas_threads_before) -> $(kv "$name" host_blas_threads_after)")$(busy_tag "$name")"
        else
          say "$side run $r FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/     /'
        fi
      done
    done
    for side in plain numpy; do
      N[$side]=$(for n in $(use_runs "numpy_$side" "$NUMPY_REPS"); do kv "$n" train_seconds; done | median)
      record "numpy_train_seconds_$side" "${N[$side]}"
    done
    N[ratio]=$(div "${N[numpy]}" "${N[plain]}" %.3f)
    # the same model, bit for bit, in every run of both sides?
    N[shas]=$(for r in $(seq 1 "$NUMPY_REPS"); do for side in plain numpy; do kv "numpy_${side}_$r" weights_sha256; done; done | sort -u | grep -c . || true)
    N[host]=$(for r in $(seq 1 "$NUMPY_REPS"); do b=$(kv "numpy_numpy_$r" host_blas_threads_before); a=$(kv "numpy_numpy_$r" host_blas_threads_after); [ -n "$b" ] && [ "$a" = "$b" ] && echo same || echo changed; done | sort -u | tr '\n' ' ')
    record numpy_ratio "${N[ratio]}"
    record numpy_distinct_models "${N[shas]}"
  else
    section "libaesql inside python3 with numpy: skipped ($PY cannot import numpy)"
  fi
fi

# ----------------------------------------------------------- one-class ----
# One-class MNIST (the README's "Finding anomalies"): a model of each
# digit's training images, 30 epochs, for each seed; the AUROC of the test
# set, the other digits being the anomalies; libaesql in SQL, PyTorch in
# tests/bench/torch_oneclass.py, the same protocol. Targets: the mean over
# the digits within 0.003 of PyTorch's, every digit within 0.005.
declare -A O
ONECLASS_SEEDS=${BENCH_ONECLASS_SEEDS:-1 2 3}
ONECLASS_ADAM=${BENCH_ONECLASS_ADAM:-}
case "$ONECLASS_ADAM" in
  ""|keras|torch) ;;
  *) echo "bench: BENCH_ONECLASS_ADAM must be keras, torch or empty, not '$ONECLASS_ADAM'" >&2; exit 1 ;;
esac
if ! skipped oneclass; then
  seeds_json="[$(echo $ONECLASS_SEEDS | tr ' ' ',')]"
  adam_opt=""; adam_say=""
  if [ -n "$ONECLASS_ADAM" ]; then
    adam_opt=", 'adam', '$ONECLASS_ADAM'"; adam_say="; libaesql's adam: $ONECLASS_ADAM"
  fi
  section "one-class MNIST: a model per digit, 30 epochs, seeds $ONECLASS_SEEDS; AUROC against the other digits of the test set$adam_say"
  cat > "$OUT/oneclass.sql" <<SQL
.load $EXT
CREATE VIRTUAL TABLE temp.tr USING idx(images='$DATA/train-images-idx3-ubyte', labels='$DATA/train-labels-idx1-ubyte');
CREATE VIRTUAL TABLE temp.te USING idx(images='$DATA/t10k-images-idx3-ubyte', labels='$DATA/t10k-labels-idx1-ubyte');
SELECT count(ae_train('SELECT pixels FROM tr WHERE class = ' || d.value, 32,
         json_object('name', 'oc_' || d.value || '_' || s.value, 'epochs', 30, 'seed', s.value$adam_opt)))
  FROM json_each('[0,1,2,3,4,5,6,7,8,9]') AS d, json_each('$seeds_json') AS s;
CREATE TEMP TABLE oc AS
  SELECT d.value AS digit, s.value AS seed, ae_auroc(sc.error, t.class <> d.value) AS a
    FROM json_each('[0,1,2,3,4,5,6,7,8,9]') AS d, json_each('$seeds_json') AS s,
         ae_scores('oc_' || d.value || '_' || s.value, 'te') AS sc
    JOIN te AS t ON t.rowid = sc.key
   GROUP BY d.value, s.value;
SELECT 'adam=' || json_extract(options, '\$.adam') FROM ae_models LIMIT 1;
SELECT 'auroc_' || digit || '_seed' || seed || '=' || a FROM oc ORDER BY digit, seed;
SELECT 'auroc_' || digit || '=' || avg(a) FROM oc GROUP BY digit;
SQL
  if timed oneclass_aesql $SQL ":memory:" ".read $OUT/oneclass.sql"; then
    say "libaesql: done ($(awk '/Elapsed/ { print $NF }' "$OUT/oneclass_aesql.time"))"
  else
    say "libaesql FAILED (see $OUT/oneclass_aesql.out)"
  fi
  if skipped torch; then
    say "PyTorch: skipped (BENCH_SKIP has torch)"
  elif timed oneclass_torch env OPENBLAS_NUM_THREADS=1 "$PY" tests/bench/torch_oneclass.py \
         --data "$DATA" --seeds "$(echo $ONECLASS_SEEDS | tr ' ' ',')"; then
    say "PyTorch: done ($(awk '/Elapsed/ { print $NF }' "$OUT/oneclass_torch.time"))"
  else
    say "PyTorch FAILED (see $OUT/oneclass_torch.out)"
  fi
  for d in 0 1 2 3 4 5 6 7 8 9; do
    O[a$d]=$(kv oneclass_aesql "auroc_$d"); O[t$d]=$(kv oneclass_torch "auroc_$d")
    record "oneclass_auroc_${d}_aesql" "${O[a$d]}"; record "oneclass_auroc_${d}_torch" "${O[t$d]}"
  done
  O[am]=$(for d in 0 1 2 3 4 5 6 7 8 9; do echo "${O[a$d]}"; done | awk 'NF { s += $1; n++ } END { if (n == 10) printf "%.5f", s / n }')
  O[tm]=$(for d in 0 1 2 3 4 5 6 7 8 9; do echo "${O[t$d]}"; done | awk 'NF { s += $1; n++ } END { if (n == 10) printf "%.5f", s / n }')
  O[worst]=$(for d in 0 1 2 3 4 5 6 7 8 9; do echo "${O[a$d]} ${O[t$d]}"; done | awk 'NF == 2 { x = $2 - $1; if (x < 0) x = -x; if (x > w) w = x; n++ } END { if (n == 10) printf "%.5f", w }')
  O[gap]=$(awk -v a="${O[am]}" -v t="${O[tm]}" 'BEGIN { if (a != "" && t != "") { x = t - a; if (x < 0) x = -x; printf "%.5f", x } }')
  record oneclass_mean_aesql "${O[am]}"; record oneclass_mean_torch "${O[tm]}"
  O[adam]=$(kv oneclass_aesql adam); record oneclass_adam_aesql "${O[adam]}"
fi

# ---------------------------------------------------------------- deep ----
# Part 1's whole job, default threads, with a stack of layers: 784 -> 128
# -> 32 -> 128 -> 784. The libaesql side runs only once the library trains
# such a stack: a run that fails says why, once, and its figures are
# "not run" (the rest of the bench does not depend on them).
declare -A D
DEEP_HIDDEN=$(echo ${BENCH_DEEP_HIDDEN:-128 32} | tr ',' ' ')
DEEP_REPS=${BENCH_DEEP_REPS:-$REPS}
DEEP_JSON="[$(echo $DEEP_HIDDEN | sed 's/ /, /g')]"   # ae_train's '[128, 32]'
DEEP_CSV=$(echo $DEEP_HIDDEN | tr ' ' ',')            # torch_tutorial.py --hidden 128,32
DEEP_LAYERS=$(echo 784 $DEEP_HIDDEN | awk '{ s = $1; for (i = 2; i <= NF; i++) s = s "-" $i;
  for (i = NF - 1; i >= 1; i--) s = s "-" $i; print s }')
DEEP_MODEL=deep
D[a_error]=""
sql_error() {  # sql_error NAME: the first error sqlite3 printed in run NAME, without its "Error: near line N:"
  grep -m1 -i 'error' "$OUT/$1.out" 2>/dev/null \
    | sed -E 's/^(Parse |Runtime )?[Ee]rror:? *(near line [0-9]+: *)?(stepping, *)?//' | cut -c1-200
}
torch_deep_run() {  # torch_deep_run R
  local name=deep_torch_$1
  if timed "$name" "$PY" "$TORCH" --epochs "$EPOCHS" --hidden "$DEEP_CSV" --quiet --no-score; then
    say "PyTorch  run $1: wall $(wall_of "$name") s, train $(kv "$name" train_seconds) s, peak RSS $(rss_of "$name") MB, loss $(kv "$name" final_loss) / val $(kv "$name" final_val_loss)$(busy_tag "$name")"
  else
    say "PyTorch  run $1 FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/     /'
  fi
}
aesql_deep_run() {  # aesql_deep_run R: sets D[a_error] when the job fails
  local name=deep_aesql_$1 db
  db=$OUT/$name.db
  rm -f "$db" "$db-journal" "$db-wal"
  aesql_job_sql "{\"seed\": 1, \"epochs\": $EPOCHS, \"name\": \"$DEEP_MODEL\"}" "'$DEEP_JSON'" "$DEEP_MODEL" > "$OUT/$name.sql"
  if timed "$name" $SQL "$db" < "$OUT/$name.sql" && [ -n "$(kv "$name" class_error_9)" ]; then
    say "libaesql run $1: wall $(wall_of "$name") s, train $(fmt "$(kv "$name" train_seconds)") s, peak RSS $(rss_of "$name") MB, loss $(fmt "$(kv "$name" final_loss)" %.6f) / val $(fmt "$(kv "$name" final_val_loss)" %.6f)$(busy_tag "$name")"
  else
    D[a_error]=$(sql_error "$name")
    D[a_error]=${D[a_error]:-failed, see $OUT/$name.out}
    say "libaesql run $1: not run: ${D[a_error]}"
  fi
  rm -f "$db" "$db-journal" "$db-wal"   # 55 MB a run, and nothing reads it again
}
if ! skipped deep; then
  section "deep model $DEEP_LAYERS, the whole job, default threads: PyTorch and libaesql in turn, $DEEP_REPS runs each"
  for r in $(seq 1 "$DEEP_REPS"); do
    skipped torch || torch_deep_run "$r"
    # one failure tells why; the same SQL would fail the same way again
    skipped aesql || [ -n "${D[a_error]}" ] || aesql_deep_run "$r"
  done
  for side in torch aesql; do
    sd=${side:0:1}
    D[${sd}_wall]=$(for n in $(use_runs "deep_$side" "$DEEP_REPS"); do [ -n "$(kv "$n" class_error_9)" ] && wall_of "$n"; done | median)
    D[${sd}_train]=$(for n in $(use_runs "deep_$side" "$DEEP_REPS"); do [ -n "$(kv "$n" class_error_9)" ] && kv "$n" train_seconds; done | median)
    D[${sd}_rss]=$(for r in $(seq 1 "$DEEP_REPS"); do [ -n "$(kv "deep_${side}_$r" class_error_9)" ] && rss_of "deep_${side}_$r"; done | median)
    for k in final_loss final_val_loss; do
      D[${sd}_$k]=$(for r in $(seq 1 "$DEEP_REPS"); do kv "deep_${side}_$r" "$k"; done | median)
    done
    for k in wall rss train final_loss final_val_loss; do record "deep_${side}_$k" "${D[${sd}_$k]}"; done
  done
  D[speed]=$(div "${D[t_wall]}" "${D[a_wall]}" %.3f)   # PyTorch's wall / ours: >= 3
  D[mem]=$(div "${D[a_rss]}" "${D[t_rss]}" %.3f)       # our peak RSS / PyTorch's: <= 0.25
  record deep_layers "$DEEP_LAYERS"; record deep_speedup "${D[speed]}"; record deep_rss_ratio "${D[mem]}"
  [ -n "${D[a_error]}" ] && record deep_aesql_status "not run: ${D[a_error]}"
fi
# deep_verdict VALUE OP LIMIT: verdict, or "not run" when libaesql's side failed
deep_verdict() {
  if [ -n "${D[a_error]:-}" ]; then echo "not run"; else verdict "$@"; fi
}

# ------------------------------------------------------------- columns ----
# Part 7: a model of numeric columns scored by its 30 column arguments
# against the same model on a prebuilt vector of the same rows: what reading
# and scaling 30 SQL values a row costs over one BLOB. Both go through the
# same per-row kernel (f32, dense); ae_scores reads the columns by name.
declare -A C
COL_ROWS=${BENCH_COLUMNS_ROWS:-56900}
BC_COLS="radius_mean, texture_mean, perimeter_mean, area_mean, smoothness_mean, compactness_mean, concavity_mean, concave_points_mean, symmetry_mean, fractal_dimension_mean, radius_se, texture_se, perimeter_se, area_se, smoothness_se, compactness_se, concavity_se, concave_points_se, symmetry_se, fractal_dimension_se, radius_worst, texture_worst, perimeter_worst, area_worst, smoothness_worst, compactness_worst, concavity_worst, concave_points_worst, symmetry_worst, fractal_dimension_worst"
if ! skipped columns; then
  section "a model of numeric columns: ae_error with 30 column arguments against a prebuilt vector, $COL_ROWS rows, $REPS runs (median of $SCORE_REPS queries each)"
  CDB=$OUT/columns.db
  if [ ! -f data/breast_cancer.csv ]; then
    say "skipped: data/breast_cancer.csv missing (make data)"
  elif ! $SQL "$CDB" ".load $EXT" ".import --csv data/breast_cancer.csv cells" \
      "CREATE TABLE text_rows AS WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ($COL_ROWS + 568) / 569) SELECT $BC_COLS FROM k, cells LIMIT $COL_ROWS" \
      "CREATE TABLE real_rows AS SELECT $(echo "$BC_COLS" | sed 's/\([a-z_][a-z_]*\)/CAST(\1 AS REAL) AS \1/g') FROM text_rows" \
      "CREATE TABLE vecs AS SELECT ae_vector($BC_COLS) AS v FROM real_rows" \
      "SELECT ae_train('SELECT * FROM real_rows LIMIT 5690', 16, '{\"epochs\": 5, \"batch_size\": 32, \"seed\": 1, \"name\": \"cols\"}')" \
      > "$OUT/columns_setup.out" 2>&1 || grep -qi error "$OUT/columns_setup.out"; then
    say "setup failed: $(grep -m1 -i error "$OUT/columns_setup.out")"
  else
    for r in $(seq 1 "$REPS"); do
      s1=$(score_query "col_args_$r" "$CDB" "SELECT avg(ae_error('cols', $BC_COLS)) FROM real_rows;")
      s2=$(score_query "col_text_$r" "$CDB" "SELECT avg(ae_error('cols', $BC_COLS)) FROM text_rows;")
      s3=$(score_query "col_vec_$r" "$CDB" "SELECT avg(ae_error('cols', v)) FROM vecs;")
      s4=$(score_query "col_scores_$r" "$CDB" "SELECT avg(error) FROM ae_scores('cols', 'real_rows');")
      for t in args:$s1 text:$s2 vec:$s3 scores:$s4; do
        echo "rows_per_s=$(rate "$COL_ROWS" "${t#*:}")" >> "$OUT/col_${t%%:*}_$r.out"
      done
      say "run $r: 30 REAL arguments $(rate "$COL_ROWS" "$s1") rows/s, 30 TEXT arguments $(rate "$COL_ROWS" "$s2"), a vector $(rate "$COL_ROWS" "$s3"), ae_scores by name $(rate "$COL_ROWS" "$s4")$(busy_tag "col_args_$r")"
    done
    for t in args text vec scores; do
      C[$t]=$(for n in $(use_runs "col_$t" "$REPS"); do kv "$n" rows_per_s; done | median)
      record "columns_${t}_rows_per_s" "${C[$t]}"
    done
    record columns_rows "$COL_ROWS"
  fi
  rm -f "$CDB"
fi

# ---------------------------------------------------- achieved GFLOP/s ----
# The flops of one epoch of each job (tests/bench/flops.py: the products
# only, libaesql's first layer over the non-zero pixels and a stack's last
# layer the Gram way where it takes it), for the rows the
# runs trained and validated (libaesql's ae_models, else PyTorch's output).
declare -A F
flops_of() {  # flops_of NAME HIDDEN-CSV RUN...: flops.py for the first RUN that reported its rows
  local name=$1 hidden=$2 n tr="" va="" args=(); shift 2
  for n in "$@"; do
    tr=$(kv "$n" rows_train); va=$(kv "$n" rows_val)
    [ -n "$tr" ] || { tr=$(kv "$n" train_rows); va=$(kv "$n" val_rows); }
    [ -n "$tr" ] && [ -n "$va" ] && break
  done
  [ -n "$tr" ] && [ -n "$va" ] && args=(--train-rows "$tr" --val-rows "$va")
  "$PY" tests/bench/flops.py --data "$DATA" --hidden "$hidden" "${args[@]}" > "$OUT/$name.out" 2>&1 \
    || say "tests/bench/flops.py failed (see $OUT/$name.out)"
}
gflops() {  # gflops FLOPS-PER-EPOCH SECONDS: GFLOP/s over EPOCHS epochs, "" when unknown
  awk -v f="$1" -v s="$2" -v e="$EPOCHS" 'BEGIN { if (f > 0 && s > 0) printf "%.2f", f * e / s / 1e9 }'
}
pct() {  # pct GFLOPS PEAK: "23%" of the peak, "" when unknown
  awk -v g="$1" -v p="$2" 'BEGIN { if (g > 0 && p > 0) printf "%.0f%%", 100 * g / p }'
}
GF_JOBS="tutorial"; skipped deep || GF_JOBS="tutorial deep"
if "$PY" -c 'import numpy' 2>/dev/null; then
  flops_of flops_tutorial 32 $(for r in $(seq 1 "$REPS"); do echo "aesql_default_$r torch_default_$r"; done)
  skipped deep || flops_of flops_deep "$DEEP_CSV" $(for r in $(seq 1 "$DEEP_REPS"); do echo "deep_aesql_$r deep_torch_$r"; done)
else
  say "no flop counts: $PY cannot import numpy (tests/bench/flops.py reads the IDX file with it)"
fi
for job in $GF_JOBS; do
  F[${job}_layers]=$(kv "flops_$job" layers)
  for k in flops_epoch_aesql flops_epoch_dense nnz_train_mean train_rows val_rows gram; do
    F[${job}_$k]=$(kv "flops_$job" "$k"); record "${job}_$k" "${F[${job}_$k]}"
  done
done
# the runs: JOB CFG SECONDS-OF-LIBAESQL SECONDS-OF-PYTORCH PEAK
GF_RUNS=""
for cfg in $CFGS; do
  pk=$PEAK_MT; [ "$cfg" = 1 ] && pk=$PEAK_1
  GF_RUNS="$GF_RUNS tutorial:$cfg:${A[train_seconds_$cfg]:-}:${T[train_seconds_$cfg]:-}:$pk"
done
skipped deep || GF_RUNS="$GF_RUNS deep:default:${D[a_train]:-}:${D[t_train]:-}:$PEAK_MT"
for run in $GF_RUNS; do
  IFS=: read -r job cfg sa st pk <<< "$run"
  F[a_${job}_$cfg]=$(gflops "${F[${job}_flops_epoch_aesql]}" "$sa")         # libaesql, its own work
  F[t_${job}_$cfg]=$(gflops "${F[${job}_flops_epoch_dense]}" "$st")         # PyTorch, its own (dense) work
  F[ta_${job}_$cfg]=$(gflops "${F[${job}_flops_epoch_aesql]}" "$st")        # PyTorch on libaesql's count
  for w in a t ta; do
    record "gflops_${w}_${job}_$cfg" "${F[${w}_${job}_$cfg]}"
    record "peak_share_${w}_${job}_$cfg" "$(div "${F[${w}_${job}_$cfg]}" "$pk" %.4f)"
  done
done

# ------------------------------------------------------------- summary ----
T_END=$(date +%s)
LOAD1=$(cut -d' ' -f1 /proc/loadavg)
OTHERS=$(awk -v b0="$BUSY0" -v b1="$(busy_jiffies)" -v hz="$HZ" -v own="$(children_seconds)" \
  -v el="$((T_END - T_START))" -v n="$NPROC" 'BEGIN { o = (b1 - b0) / hz - own; if (o < 0) o = 0;
  printf "%.0f CPU-seconds (%.0f%% of the machine)", o, (el > 0) ? 100 * o / (el * n) : 0 }')
STEAL=$(awk -v s0="$STEAL0" -v s1="$(steal_jiffies)" -v hz="$HZ" 'BEGIN { printf "%.0f", (s1 - s0) / hz }')
: > "$MD"
out() { echo "$*"; }          # the summary, on stdout
md() { echo "$*" >> "$MD"; }  # the markdown section
row() {  # row LABEL AESQL TORCH RATIO [NOTE]: one line of both tables
  printf '  %-38s %18s %18s   %s%s\n' "$1" "$2" "$3" "$4" "${5:+  $5}"
  md "| $1 | $2 | $3 | $4${5:+ ($5)} |"
}
G() { local v; eval "v=\${$1[$2]:-}"; echo "$v"; }   # G ARRAY KEY: value or ""

echo
echo "=============================================================================="
echo " libaesql vs PyTorch: summary (medians of $REPS runs, timings over the undisturbed"
echo " ones; ratios against PyTorch measured in this same run)"
echo "=============================================================================="
out "  machine: $CPU ($CPU_ID), $NPROC cores, $MEM, AVX-512 $AVX512"
out "  noise: load $LOAD0 at start, $LOAD1 at end; other processes used $OTHERS"
out "         during the bench; hypervisor steal ${STEAL} s"
out "  software: libaesql $AE_VERSION, SQLite $SQLITE_VERSION, $OPENBLAS_CFG (Debian $OPENBLAS),"
out "            PyTorch $TORCH_VERSION (same OpenBLAS, core ${T[blas_core]:-?}); $DATE"
out "  ae_info(): $AE_INFO"
out "  libaesql.so: sha256 $EXT_ID (snapshot in $OUT/)"

md "### Benchmark: libaesql vs PyTorch"
md ""
md "The tutorial's job (MNIST, 784 -> 32 ReLU -> 784, Adam, batch 256, $EPOCHS epochs,"
md "20% held out, then the per-class error of the test set), measured by \`make bench\`"
md "(\`tests/bench/run.sh\`) against the same model in PyTorch on the same machine, in the"
md "same run, the two sides taking turns run by run. Medians of $REPS runs (timings: of the runs no other process disturbed, when any); each side runs as one whole process (wall time and"
md "peak RSS from \`/usr/bin/time -v\`)."
md ""
md "Machine: $CPU ($CPU_ID; $NPROC cores, $MEM, AVX-512 $AVX512), $OPENBLAS_CFG (Debian $OPENBLAS;"
md "core $AE_CORE for libaesql, $AE_THREADS OpenBLAS thread(s) a call on its ${AE_POOL:-?} training threads, ${T[blas_core]:-?} for PyTorch),"
md "SQLite $SQLITE_VERSION, PyTorch $TORCH_VERSION, libaesql $AE_VERSION; $DATE. Other processes"
md "used $OTHERS during the run."
md ""
md "| | libaesql | PyTorch | libaesql vs PyTorch |"
md "|---|---:|---:|---|"

echo
out "  1. the whole job, one process ($EPOCHS epochs; libaesql: import into tables, ae_train, per-class ae_error)"
printf '  %-38s %18s %18s   %s\n' "" libaesql PyTorch "libaesql vs PyTorch"
for cfg in $CFGS; do
  if [ "$cfg" = default ]; then lbl="default threads"; else lbl="$cfg thread"; fi
  row "whole job, wall ($lbl)" "$(fmt "$(G A wall_$cfg)" %.1f) s" "$(fmt "$(G T wall_$cfg)" %.1f) s" "$(ratio "$(G A wall_$cfg)" "$(G T wall_$cfg)" lower)"
  row "  of which training ($lbl)" "$(fmt "$(G A train_seconds_$cfg)" %.1f) s" "$(fmt "$(G T train_seconds_$cfg)" %.1f) s" "$(ratio "$(G A train_seconds_$cfg)" "$(G T train_seconds_$cfg)" lower)"
done
if [ -n "$FLOOR" ]; then
  fl="sgemm floor ${FLOOR1} s (1 thread) / ${FLOOR2} s (2 threads)"
  row "whole job / sgemm floor ($FLOOR s)" "$(div "$(G A wall_default)" "$FLOOR")x" "$(div "$(G T wall_default)" "$FLOOR")x" "(lower is closer to the floor)"
  row "training / sgemm floor ($FLOOR s)" "$(div "$(G A train_seconds_default)" "$FLOOR")x" "$(div "$(G T train_seconds_default)" "$FLOOR")x" "(default threads)"
  case " $CFGS " in *" 1 "*)
    row "training / 1-thread floor ($FLOOR1 s)" "$(div "$(G A train_seconds_1)" "$FLOOR1")x" "$(div "$(G T train_seconds_1)" "$FLOOR1")x" "(1 thread)" ;;
  esac
  out "     ($fl: OpenBLAS alone doing the five dense products per"
  out "      batch and the validation forward pass, best of $REPS runs. libaesql skips the zero input"
  out "      pixels (MNIST is ~80% zeros), so its training can run below this dense floor.)"
fi
row "final loss / val_loss" "$(fmt "$(G A final_loss_default)" %.5f) / $(fmt "$(G A final_val_loss_default)" %.5f)" \
    "$(fmt "$(G T final_loss_default)" %.5f) / $(fmt "$(G T final_val_loss_default)" %.5f)" \
    "$(ratio "$(G A final_val_loss_default)" "$(G T final_val_loss_default)" lower "lower" "higher") val_loss"
# The tutorial's job must not get slower: this run's ratio to PyTorch next
# to the previous run's (no target: PyTorch's own figure moves with the
# machine's noise; read the two walls too).
record bench_date "$DATE"; record bench_epochs "$EPOCHS"; record bench_reps "$REPS"
record tutorial_speedup_default "$(div "$(G T wall_default)" "$(G A wall_default)" %.3f)"
PREV=$OUT/summary.prev.txt
pv() { [ -s "$PREV" ] || return 0; sed -n "s/^$1=//p" "$PREV" | tail -n 1; }   # pv KEY: the previous run's
NOW_LINE="$(ratio "$(G A wall_default)" "$(G T wall_default)" lower) now ($(fmt "$(G A wall_default)" %.1f) s / $(fmt "$(G T wall_default)" %.1f) s, $EPOCHS epochs)"
if [ -n "$(pv aesql_wall_default)" ]; then
  PREV_WHEN=$(pv bench_date); [ -n "$PREV_WHEN" ] || PREV_WHEN=$(date -u -r "$PREV" '+%Y-%m-%d %H:%M UTC')
  PREV_LINE="$(ratio "$(pv aesql_wall_default)" "$(pv torch_wall_default)" lower) in the previous run ($(fmt "$(pv aesql_wall_default)" %.1f) s / $(fmt "$(pv torch_wall_default)" %.1f) s, $(pv bench_epochs | grep . || echo "?") epochs, $PREV_WHEN)"
else
  PREV_LINE="no previous run's figures ($PREV)"
fi
out "     the tutorial's job against PyTorch, whole process, default threads: $NOW_LINE;"
out "       $PREV_LINE"

echo
out "  2. memory: peak RSS of the whole-job process"
for cfg in $CFGS; do
  if [ "$cfg" = default ]; then lbl="default threads"; else lbl="$cfg thread"; fi
  v=$(G A rss_$cfg)
  row "peak RSS, whole job ($lbl)" "$(fmt "$v" %.0f) MB" "$(fmt "$(G T rss_$cfg)" %.0f) MB" \
      "$(ratio "$v" "$(G T rss_$cfg)" lower "less" "more")" "$([ "$cfg" = default ] && echo "target <= 120 MB: $(verdict "$v" "<=" 120)")"
done

echo
out "  3. scoring, rows/s over ${NSCORE:-60000} stored rows (PyTorch: batched inference + per-row error)"
# the peer: PyTorch's better configuration (default threads or 1 thread)
TS=$(G T score_default); TSL="default threads"
if [ -n "$(G T score_1)" ] && awk -v a="$(G T score_1)" -v b="$TS" 'BEGIN { exit !(b == "" || a + 0 > b + 0) }'; then
  TS=$(G T score_1); TSL="1 thread"
fi
[ -n "$(G T score_1)" ] && out "     (PyTorch: $(fmt "$(G T score_default)" %.0f) rows/s with default threads, $(fmt "$(G T score_1)" %.0f) with 1 thread; the better, $TSL, is the peer)"
row "avg(ae_error(m, pixels)) FROM train" "$(fmt "$(G A score_error)" %.0f) rows/s" "$(fmt "$TS" %.0f) rows/s" "$(ratio "$(G A score_error)" "$TS" higher)" \
    "target >= 2x PyTorch: $(verdict "$(div "$(G A score_error)" "$TS" %.4f)" ">=" 2)"
TW=$(G T scorewhole_default)
[ -n "$TW" ] && row "avg(ae_error(m, pixels)), vs PyTorch in one pass" "$(fmt "$(G A score_error)" %.0f) rows/s" "$(fmt "$TW" %.0f) rows/s" "$(ratio "$(G A score_error)" "$TW" higher)" \
    "the issue's way: model(X) on all rows at once"
row "ae_scores(m, 'train'), batched" "$(fmt "$(G A score_scores)" %.0f) rows/s" "$(fmt "$TS" %.0f) rows/s" "$(ratio "$(G A score_scores)" "$TS" higher)" \
    "target >= 1M rows/s: $(verdict "$(G A score_scores)" ">=" 1000000)"

md ""
[ -n "$(G T score_1)" ] && md "Scoring peer: PyTorch's better configuration, $TSL ($(fmt "$(G T score_default)" %.0f) rows/s with default threads, $(fmt "$(G T score_1)" %.0f) with 1 thread); chunks of 1024 rows, inference + per-row error (the fastest chunk size measured). In one pass over all 60000 rows at once, as the issue measured it, PyTorch scores $(fmt "$(G T scorewhole_default)" %.0f) rows/s."
md "The tutorial's job against PyTorch, whole process, default threads: $NOW_LINE; $PREV_LINE."
md "The sgemm floor is OpenBLAS alone doing the job's matrix products as dense sgemm (five per batch, plus the validation forward pass), best of $REPS runs: $(fmt "$FLOOR1" %.2f) s with 1 thread, $(fmt "$FLOOR2" %.2f) s with 2. libaesql skips the zero input pixels (MNIST is ~80% zeros), so its training can run below this dense floor."
md ""
md "\`ae_info()\`: \`$AE_INFO\`"
echo
out "  4. ae_info(): blas_core $AE_CORE, blas_threads $AE_THREADS (PyTorch: OpenBLAS ${T[blas_core]:-?},"
out "     ${T[blas_threads_default]:-?} BLAS threads, ${T[threads_default]:-?} intra-op thread(s) by default)"

if ! skipped scaling; then
  echo
  out "  5. scaling: training seconds per epoch (median epoch of $SCALE_EPOCHS per run, default threads) and peak RSS"
  md ""
  md "Scaling: seconds per epoch (median of $SCALE_EPOCHS epochs, median of $SCALE_REPS runs) and the process's peak RSS;"
  md "MNIST's training set repeated to the row count, pixels $((784)) bytes a row."
  md ""
  md "| rows | hidden | pixel data | libaesql s/epoch | libaesql RSS | PyTorch s/epoch | PyTorch RSS | time | memory |"
  md "|---:|---:|---:|---:|---:|---:|---:|---|---|"
  printf '  %7s %6s %9s | %9s %8s | %9s %8s | %s\n' rows hidden "data MB" "s/epoch" "RSS MB" "s/epoch" "RSS MB" "libaesql vs PyTorch"
  printf '  %7s %6s %9s | %18s | %18s |\n' "" "" "" "------ libaesql" "------- PyTorch"
  for p in $POINTS; do
    rows=${p%:*}; h=${p#*:}
    a=$(G S a_ep_${rows}_$h); ar=$(G S a_rss_${rows}_$h); t=$(G S t_ep_${rows}_$h); tr=$(G S t_rss_${rows}_$h)
    dmb=$(awk -v n="$rows" 'BEGIN { printf "%.0f", n * 784 / 1048576 }')
    printf '  %7s %6s %9s | %9s %8s | %9s %8s | %s, %s\n' "$rows" "$h" "$dmb" \
      "$(fmt "$a" %.3f)" "$(fmt "$ar" %.0f)" "$(fmt "$t" %.3f)" "$(fmt "$tr" %.0f)" \
      "$(ratio "$a" "$t" lower)" "$(ratio "$ar" "$tr" lower "less memory" "more memory")"
    md "| $rows | $h | $dmb MB | $(fmt "$a" %.3f) | $(fmt "$ar" %.0f) MB | $(fmt "$t" %.3f) | $(fmt "$tr" %.0f) MB | $(ratio "$a" "$t" lower) | $(ratio "$ar" "$tr" lower "less" "more") |"
  done
  # linearity and memory against data size (hidden 32)
  b_a=$(G S a_ep_60000_32); b_t=$(G S t_ep_60000_32)
  lin=""
  for rows in $SCALE_ROWS; do
    [ "$rows" = 60000 ] && continue
    k=$(awk -v n="$rows" 'BEGIN { printf "%g", n / 60000 }')
    lin="$lin  ${rows}/60000 (ideal ${k}): libaesql $(div "$(G S a_ep_${rows}_32)" "$b_a")x, PyTorch $(div "$(G S t_ep_${rows}_32)" "$b_t")x;"
  done
  if [ -n "$lin" ]; then
    out "     per-epoch time vs rows (linear = the row ratio):${lin%;}"
    md ""
    md "Per-epoch time against rows (linear = the row ratio):${lin%;}."
  fi
  last=$(echo $SCALE_ROWS | awk '{ print $NF }')
  if [ "$last" != 60000 ]; then
    extra=$(( (last - 60000) * 784 ))
    ba=$(awk -v a="$(G S a_rss_${last}_32)" -v b="$(G S a_rss_60000_32)" -v d="$extra" 'BEGIN { if (a != "" && b != "") printf "%.2f", (a - b) * 1048576 / d }')
    bt=$(awk -v a="$(G S t_rss_${last}_32)" -v b="$(G S t_rss_60000_32)" -v d="$extra" 'BEGIN { if (a != "" && b != "") printf "%.2f", (a - b) * 1048576 / d }')
    out "     memory vs data, 60000 -> $last rows (+$(awk -v d="$extra" 'BEGIN { printf "%.0f", d / 1048576 }') MB of pixel bytes): peak RSS grows by $(fmt "$ba") bytes per pixel byte (libaesql), $(fmt "$bt") (PyTorch)"
    md "Memory against data, 60000 -> $last rows (+$(awk -v d="$extra" 'BEGIN { printf "%.0f", d / 1048576 }') MB of pixel bytes): peak RSS grows by $(fmt "$ba") bytes per pixel byte for libaesql, $(fmt "$bt") for PyTorch."
  fi
  hl=""
  for h in $SCALE_HIDDEN; do
    [ "$h" = 32 ] && continue
    hl="$hl  hidden $h/32: libaesql $(div "$(G S a_ep_60000_$h)" "$b_a")x, PyTorch $(div "$(G S t_ep_60000_$h)" "$b_t")x;"
  done
  [ -n "$hl" ] && out "     per-epoch time vs hidden (60000 rows):${hl%;}"
fi

echo
out "  6. per-class average reconstruction error of the test set (sum of squared errors per row)"
out "     class: $(printf '%7s' 0 1 2 3 4 5 6 7 8 9)"
out "  libaesql: $(for c in 0 1 2 3 4 5 6 7 8 9; do printf '%7s' "$(fmt "$(G A class_error_${c}_default)" %.2f)"; done)"
out "   PyTorch: $(for c in 0 1 2 3 4 5 6 7 8 9; do printf '%7s' "$(fmt "$(G T class_error_${c}_default)" %.2f)"; done)"

if [ -n "${N[ratio]:-}" ]; then
  echo
  out "  7. libaesql inside python3 ($NUMPY_ROWS MNIST rows, $NUMPY_EPOCHS epochs, default threads; medians of $NUMPY_REPS runs, in turns)"
  out "     training, plain process: $(fmt "${N[plain]}" %.2f) s;  after import numpy: $(fmt "${N[numpy]}" %.2f) s;  numpy / plain: ${N[ratio]}x (target <= 1.3x: $(verdict "${N[ratio]}" "<=" 1.3))"
  out "     models: $([ "${N[shas]}" = 1 ] && echo "the same bits in all $((2 * NUMPY_REPS)) runs" || echo "${N[shas]} different ones over $((2 * NUMPY_REPS)) runs");  numpy's OpenBLAS thread count before -> after training: ${N[host]}"
  md ""
  md "libaesql inside python3 ($NUMPY_ROWS MNIST rows, $NUMPY_EPOCHS epochs; medians of $NUMPY_REPS runs, the two kinds of process in turns): training takes $(fmt "${N[plain]}" %.2f) s in a plain process and $(fmt "${N[numpy]}" %.2f) s in one that imported numpy first, **${N[ratio]}x** (target <= 1.3x: **$(verdict "${N[ratio]}" "<=" 1.3)**); $([ "${N[shas]}" = 1 ] && echo "the same model, bit for bit, in every run" || echo "${N[shas]} different models over the runs")."
fi

if [ -n "${O[am]:-}" ]; then
  echo
  out "  8. one-class MNIST, AUROC per digit (mean over seeds $ONECLASS_SEEDS), libaesql (adam ${O[adam]:-?}) / PyTorch"
  out "     digit:    $(printf '%7s' 0 1 2 3 4 5 6 7 8 9)   mean"
  out "  libaesql:   $(for d in 0 1 2 3 4 5 6 7 8 9; do printf '%7s' "$(fmt "${O[a$d]}" %.4f)"; done)  $(fmt "${O[am]}" %.4f)"
  out "   PyTorch:   $(for d in 0 1 2 3 4 5 6 7 8 9; do printf '%7s' "$(fmt "${O[t$d]}" %.4f)"; done)  $(fmt "${O[tm]}" %.4f)"
  out "     mean within 0.003 of PyTorch's: $(verdict "${O[gap]}" "<=" 0.003) ($(fmt "${O[gap]}" %.4f));  every digit within 0.005: $(verdict "${O[worst]}" "<=" 0.005) (worst $(fmt "${O[worst]}" %.4f))"
  md ""
  md "One-class MNIST (a model per digit, 30 epochs, seeds $ONECLASS_SEEDS; libaesql's Adam: ${O[adam]:-?}): mean AUROC $(fmt "${O[am]}" %.4f) for libaesql, $(fmt "${O[tm]}" %.4f) for PyTorch; mean within 0.003: **$(verdict "${O[gap]}" "<=" 0.003)**, every digit within 0.005: **$(verdict "${O[worst]}" "<=" 0.005)** (worst $(fmt "${O[worst]}" %.4f))."
fi

gf_cell() {  # gf_cell GFLOPS PEAK: "21.60 (22%)", the share of the peak when known
  local p
  [ -n "$1" ] || { echo "n/a"; return; }
  p=$(pct "$1" "$2"); echo "$1${p:+ ($p)}"
}
if ! skipped deep; then
  echo
  out "  9. the deep model, $DEEP_LAYERS: the whole job, one process, default threads ($EPOCHS epochs, medians of $DEEP_REPS runs)"
  [ -n "${D[a_error]}" ] && out "     libaesql: not run: ${D[a_error]}"
  printf '  %-38s %18s %18s   %s\n' "" libaesql PyTorch "libaesql vs PyTorch"
  md ""
  md "The deep model, $DEEP_LAYERS (ReLU after every layer but the last), the same whole job, default threads, medians of $DEEP_REPS runs$([ -n "${D[a_error]}" ] && echo "; libaesql: not run: ${D[a_error]}"):"
  md ""
  md "| | libaesql | PyTorch | libaesql vs PyTorch |"
  md "|---|---:|---:|---|"
  na() { if [ -n "${D[a_error]}" ]; then echo "not run"; else echo "$1"; fi; }   # libaesql's cell
  row "whole job, wall" "$(na "$(fmt "${D[a_wall]}" %.1f) s")" "$(fmt "${D[t_wall]}" %.1f) s" \
      "$(ratio "${D[a_wall]}" "${D[t_wall]}" lower)" "target >= 3x faster: $(deep_verdict "${D[speed]}" ">=" 3)"
  row "  of which training" "$(na "$(fmt "${D[a_train]}" %.1f) s")" "$(fmt "${D[t_train]}" %.1f) s" \
      "$(ratio "${D[a_train]}" "${D[t_train]}" lower)"
  row "peak RSS, whole job" "$(na "$(fmt "${D[a_rss]}" %.0f) MB")" "$(fmt "${D[t_rss]}" %.0f) MB" \
      "$(ratio "${D[a_rss]}" "${D[t_rss]}" lower "less" "more")" "target <= 1/4 of PyTorch's: $(deep_verdict "${D[mem]}" "<=" 0.25)"
  row "final loss / val_loss" "$(na "$(fmt "${D[a_final_loss]}" %.5f) / $(fmt "${D[a_final_val_loss]}" %.5f)")" \
      "$(fmt "${D[t_final_loss]}" %.5f) / $(fmt "${D[t_final_val_loss]}" %.5f)" \
      "$(ratio "${D[a_final_val_loss]}" "${D[t_final_val_loss]}" lower "lower" "higher") val_loss"
fi

echo
TORCH_CORE=${T[blas_core]:-$(kv deep_torch_1 blas_core)}
out "  10. achieved GFLOP/s: the flops of each training's matrix products over its training seconds"
out "     (libaesql: its epochs' seconds, = ae_models.train_seconds; PyTorch: its train_seconds; both with the validation passes)"
out "     CPU: $CPU ($CPU_ID), $NPROC cores; peak float32 multiply-add GFLOP/s (tests/bench/peak_flops.c, best of $REPS runs):"
if [ -n "$PEAK_ISA" ]; then
  out "       $(for isa in sse2 avx2 avx512 generic; do [ -n "${P[${isa}_1]:-}" ] && printf '%s %s (1 thread) / %s (%s), ' "$isa" "${P[${isa}_1]}" "${P[${isa}_$NPROC]:-?}" "$NPROC"; done | sed 's/, $//');"
  out "       the best, $PEAK_ISA, is the 100% below: $PEAK_MT GFLOP/s for default threads, $PEAK_1 for 1 thread"
  # each core has its own multiply-add units: a peak on N threads well under
  # N times the 1-thread one means other processes had part of the machine
  awk -v m="$PEAK_MT" -v o="$PEAK_1" -v n="$NPROC" 'BEGIN { exit !(n > 1 && m + 0 < 0.9 * n * o) }' \
    && out "       (WARNING: $NPROC threads reached $(div "$PEAK_MT" "$PEAK_1")x the 1-thread peak: other processes had part of the machine; the shares below are too high)"
else
  out "       not measured$(skipped peak && echo " (BENCH_SKIP has peak)"); no shares of the peak"
fi
out "     OpenBLAS kernels: libaesql $AE_CORE ($AE_CORE_CHOSEN), PyTorch ${TORCH_CORE:-?};"
out "       OPENBLAS_CORETYPE in the bench's environment: ${OPENBLAS_CORETYPE:-unset} (the sgemm floor runs with $CORETYPE)"
out "     flops per epoch: forward, weight gradients, input gradients but the first layer's; validation rows forward"
out "     only; elementwise work (bias, ReLU, loss) and Adam left out (tests/bench/flops.py):"
for job in $GF_JOBS; do
  [ -n "${F[${job}_layers]}" ] || continue
  out "       $(printf '%-20s' "${F[${job}_layers]}:") libaesql $(awk -v f="${F[${job}_flops_epoch_aesql]}" 'BEGIN { printf "%.2f", f / 1e9 }') GFLOP, dense (PyTorch) $(awk -v f="${F[${job}_flops_epoch_dense]}" 'BEGIN { printf "%.2f", f / 1e9 }') GFLOP"
done
[ -n "${F[tutorial_nnz_train_mean]}" ] && out "       (${F[tutorial_train_rows]} rows trained, ${F[tutorial_val_rows]} validated; libaesql's first layer runs over the non-zero pixels, ${F[tutorial_nnz_train_mean]} of 784 a training row on average)"
[ "${F[deep_gram]}" = yes ] && out "       (the deep model's last layer by its Gram matrix, as libaesql takes it: its products as tests/bench/flops.py counts them)"
printf '  %-38s %18s %18s   %s\n' "GFLOP/s (share of the peak)" libaesql PyTorch "PyTorch on libaesql's count"
md ""
md "Achieved GFLOP/s: the flops of each training's matrix products (forward, weight and input gradients; elementwise work and Adam left out; libaesql's first layer over the non-zero pixels only and a stack's last layer the Gram way where it takes it, PyTorch's all dense) over its training seconds, and the share of the CPU's peak float32 multiply-add rate on as many threads ($([ -n "$PEAK_ISA" ] && echo "$PEAK_ISA, $PEAK_MT GFLOP/s on $NPROC threads, $PEAK_1 on 1, measured by \`tests/bench/peak_flops.c\`" || echo "not measured")). OpenBLAS kernels: $AE_CORE for libaesql, ${TORCH_CORE:-?} for PyTorch; OPENBLAS_CORETYPE ${OPENBLAS_CORETYPE:-unset}."
md ""
md "| GFLOP/s (share of the peak) | libaesql | PyTorch | PyTorch on libaesql's count |"
md "|---|---:|---:|---:|"
for run in $GF_RUNS; do
  IFS=: read -r job cfg sa st pk <<< "$run"
  if [ "$cfg" = default ]; then lbl="default threads"; else lbl="$cfg thread"; fi
  a=$(gf_cell "${F[a_${job}_$cfg]}" "$pk")
  [ "$job" = deep ] && [ -n "${D[a_error]}" ] && a="not run"
  printf '  %-38s %18s %18s   %s\n' "${F[${job}_layers]:-$job}, $lbl" "$a" "$(gf_cell "${F[t_${job}_$cfg]}" "$pk")" "$(gf_cell "${F[ta_${job}_$cfg]}" "$pk")"
  md "| ${F[${job}_layers]:-$job}, $lbl | $a | $(gf_cell "${F[t_${job}_$cfg]}" "$pk") | $(gf_cell "${F[ta_${job}_$cfg]}" "$pk") |"
done
out "     (PyTorch does every product dense: its own count is larger; on libaesql's count it is credited"
out "      only with the work libaesql does, which is the rate that compares the two trainings' speed)"

if [ -n "${C[args]:-}" ]; then
  echo
  out "  11. a model of numeric columns (30 -> 16 -> 30, $COL_ROWS rows of the breast-cancer data), rows/s of ae_error"
  out "     30 REAL column arguments: $(fmt "${C[args]}" %.0f);  30 TEXT arguments (as .import makes them): $(fmt "${C[text]}" %.0f)"
  out "     a prebuilt vector (ae_vector) of the same rows: $(fmt "${C[vec]}" %.0f);  arguments / vector: $(div "${C[args]}" "${C[vec]}")x"
  out "     ae_scores(m, 'rows'), the columns by name: $(fmt "${C[scores]}" %.0f)"
  md ""
  md "A model of numeric columns (30 -> 16 -> 30, $COL_ROWS rows of the breast-cancer data): \`ae_error\` with its 30 columns as REAL arguments scores $(fmt "${C[args]}" %.0f) rows/s ($(fmt "${C[text]}" %.0f) with the TEXT cells of \`.import --csv\`), on a prebuilt vector of the same rows $(fmt "${C[vec]}" %.0f) rows/s ($(div "${C[args]}" "${C[vec]}")x); \`ae_scores\`, reading the columns by name, $(fmt "${C[scores]}" %.0f) rows/s."
fi

echo
R=$(verdict "$(G A rss_default)" "<=" 120)
E=$(verdict "$(div "$(G A score_error)" "$TS" %.4f)" ">=" 2)
B=$(verdict "$(G A score_scores)" ">=" 1000000)
RUNS=$(ls "$OUT"/*.noise 2>/dev/null | wc -l)
NOISY=$(cat "$OUT"/*.noise 2>/dev/null | awk '$1 > 10' | wc -l)
out "  runs disturbed by other processes (> 10% of the machine): $NOISY of $RUNS"
NP=$(verdict "${N[ratio]:-}" "<=" 1.3)
out "  targets: peak RSS <= 120 MB: $R;  ae_error >= 2x PyTorch: $E;  ae_scores >= 1M rows/s: $B;  numpy process <= 1.3x plain: $NP"
DS=n/a; DM=n/a
if ! skipped deep; then
  DS=$(deep_verdict "${D[speed]}" ">=" 3); DM=$(deep_verdict "${D[mem]}" "<=" 0.25)
  out "           deep model >= 3x faster than PyTorch: $DS;  deep model peak RSS <= 1/4 of PyTorch's: $DM"
fi
out "  bench took $(( (T_END - T_START) / 60 )) min $(( (T_END - T_START) % 60 )) s; key=value figures in $SUMMARY, markdown in $MD"
record bench_seconds $((T_END - T_START))
md ""
md "Runs disturbed by other processes (> 10% of the machine during the run): $NOISY of $RUNS."
md ""
md "Targets: whole-job peak RSS <= 120 MB: **$R**; \`ae_error\` >= 2x PyTorch's rows/s: **$E**;"
md "\`ae_scores\` >= 1M rows/s: **$B**; training after import numpy <= 1.3x a plain process's: **$NP**; the deep model's whole job >= 3x faster than PyTorch's: **$DS**, its peak RSS <= 1/4 of PyTorch's: **$DM**. \`make bench\` took $(( (T_END - T_START) / 60 )) min $(( (T_END - T_START) % 60 )) s."
exit 0
