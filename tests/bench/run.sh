#!/bin/bash
# tests/bench/run.sh: `make bench`, libaesql against PyTorch on this machine.
#
# The job is the tutorial (/work/shared/seed-autoencoders-mnist.txt): MNIST,
# 784 -> 32 ReLU -> 784, MSE, Adam, batch 256, 50 epochs, last 20% held out,
# then the per-class reconstruction error of the test set. Measured:
#   1. the sgemm floor: OpenBLAS alone doing the job's matrix products
#      (tests/bench/sgemm_floor.c), 1 and 2 threads;
#   2. the PyTorch peer (tests/bench/torch_tutorial.py, Debian's torch) with
#      torch's default threads and with 1 thread, each as a whole process;
#   3. libaesql: the same job as ONE sqlite3 process, default threads and
#      "threads": 1; then scoring speed (ae_error, ae_scores) in rows/s;
#   4. scaling: seconds per epoch and peak RSS at 60k/240k/600k rows and at
#      hidden 32/128/512, both sides.
# Whole processes are timed with /usr/bin/time -v (wall, peak RSS). Every
# figure is a median over BENCH_REPS runs and is printed with its ratio
# against the PyTorch peer measured in the same run. If the extension cannot
# train yet (ae_train fails), the libaesql side is skipped with a message.
#
# Environment (defaults in brackets):
#   BENCH_REPS [3]            runs of each whole job (medians reported)
#   BENCH_EPOCHS [50]         epochs of the whole job
#   BENCH_SCORE_REPS [5]      repeats of each scoring query (median)
#   BENCH_SCALE_EPOCHS [2]    epochs of each scaling run
#   BENCH_SCALE_REPS [1]      runs of each scaling point (median)
#   BENCH_SCALE_ROWS ["60000 240000 600000"]  BENCH_SCALE_HIDDEN ["32 128 512"]
#   BENCH_SKIP="floor torch aesql scaling"    parts to leave out
#   BENCH_CORETYPE [SkylakeX] OPENBLAS_CORETYPE for the sgemm floor
#   PYTHON [/usr/bin/python3] SQLITE3 [sqlite3]
# Logs of every run: build/bench/*.out, *.time; key=value summary:
# build/bench/summary.txt.
set -eu
cd "$(dirname "$0")/../.."

PY=${PYTHON:-/usr/bin/python3}
SQLITE=${SQLITE3:-sqlite3}
SQL="$SQLITE -batch -init /dev/null"   # no ~/.sqliterc settings
REPS=${BENCH_REPS:-3}
EPOCHS=${BENCH_EPOCHS:-50}
SCORE_REPS=${BENCH_SCORE_REPS:-5}
SCALE_EPOCHS=${BENCH_SCALE_EPOCHS:-2}
SCALE_REPS=${BENCH_SCALE_REPS:-1}
SCALE_ROWS=${BENCH_SCALE_ROWS:-60000 240000 600000}
SCALE_HIDDEN=${BENCH_SCALE_HIDDEN:-32 128 512}
SKIP=" ${BENCH_SKIP:-} "
CORETYPE=${BENCH_CORETYPE:-SkylakeX}
OUT=build/bench
SUMMARY=$OUT/summary.txt
DATA=data/mnist
TORCH=tests/bench/torch_tutorial.py
NPROC=$(nproc 2>/dev/null || echo 1)

skipped() { case "$SKIP" in *" $1 "*) return 0 ;; esac; return 1; }

# ---------------------------------------------------------------- setup ----
need=""
for p in python3-torch python3-numpy time sqlite3 gcc libopenblas-dev; do
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
mkdir -p "$OUT"
: > "$SUMMARY"

# ------------------------------------------------------------- helpers ----
# timed NAME CMD...: runs CMD, output in $OUT/NAME.out, /usr/bin/time -v
# report in $OUT/NAME.time; returns CMD's status.
timed() {
  local name=$1; shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2>&1
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
median() {  # median of the numbers on stdin (empty lines ignored); "" if none
  grep -E '^-?[0-9.eE+-]+$' | sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) exit; if (NR % 2) print a[(NR + 1) / 2];
    else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }' || true
}
fmt() {  # fmt VALUE [PRINTF-FORMAT]: "n/a" for empty
  if [ -z "$1" ]; then echo "n/a"; else awk -v v="$1" -v f="${2:-%.2f}" 'BEGIN { printf f, v }'; fi
}
# ratio OURS THEIRS lower|higher [WORD-BETTER WORD-WORSE]
ratio() {
  awk -v a="$1" -v b="$2" -v m="$3" -v good="${4:-faster}" -v bad="${5:-slower}" 'BEGIN {
    if (a == "" || b == "" || a + 0 <= 0 || b + 0 <= 0) { print "no ratio"; exit }
    r = (m == "lower") ? b / a : a / b;
    if (r >= 1) printf "%.2fx %s", r, good; else printf "%.2fx %s", 1 / r, bad }'
}
# compare LABEL OURS THEIRS UNIT lower|higher [FORMAT] [WORD-BETTER WORD-WORSE]
compare() {
  local u=${4:+ $4}
  printf '  %-34s libaesql %s%s, PyTorch %s%s -> %s\n' "$1" \
    "$(fmt "$2" "${6:-%.2f}")" "$u" "$(fmt "$3" "${6:-%.2f}")" "$u" \
    "$(ratio "$2" "$3" "$5" "${7:-faster}" "${8:-slower}")"
}
record() { echo "$1=$2" >> "$SUMMARY"; }
section() { printf '\n== %s ==\n' "$1"; }

# ------------------------------------------------------------- machine ----
section "machine"
echo "  $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $NPROC cores," \
     "$(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo);" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
grep -qw avx512f /proc/cpuinfo && echo "  AVX-512: yes" || echo "  AVX-512: no"
awk '{ if ($1 > 0.5) print "  WARNING: the machine is busy (load " $1 "); figures will be noisy" }' /proc/loadavg
echo "  reps $REPS, epochs $EPOCHS, scaling epochs $SCALE_EPOCHS; logs in $OUT/"
AE_OK=0; AE_INFO=""
if [ -f libaesql.so ]; then
  AE_INFO=$($SQL :memory: ".load ./libaesql" "SELECT ae_info();" 2>&1) || true
  echo "  libaesql: $AE_INFO"
else
  echo "  libaesql: ./libaesql.so not built"
fi

# --------------------------------------------------------- sgemm floor ----
FLOOR1=""; FLOOR2=""
if ! skipped floor; then
  section "sgemm floor (OpenBLAS alone, OPENBLAS_CORETYPE=$CORETYPE, best of $REPS runs)"
  if cc -O2 -o "$OUT/sgemm_floor" tests/bench/sgemm_floor.c -lopenblas > "$OUT/floor_cc.out" 2>&1; then
    for r in $(seq 1 "$REPS"); do
      OPENBLAS_CORETYPE=$CORETYPE FLOOR_EPOCHS=$EPOCHS "$OUT/sgemm_floor" 1 2 > "$OUT/floor_$r.out" 2>&1 \
        || { echo "  sgemm_floor failed:"; tail -n 5 "$OUT/floor_$r.out" | sed 's/^/  /'; }
    done
    # the products of the first run, then the best of all runs (a floor is a minimum:
    # 2-thread timings on this VM vary a lot from process to process)
    grep -v '^floor_' "$OUT/floor_1.out" | sed 's/^/  /'
    FLOOR1=$(cat "$OUT"/floor_*.out | sed -n 's/^floor_seconds_t1=//p' | sort -g | head -n 1)
    FLOOR2=$(cat "$OUT"/floor_*.out | sed -n 's/^floor_seconds_t2=//p' | sort -g | head -n 1)
    echo "  floor for $EPOCHS epochs, best of $REPS runs: 1 thread $(fmt "$FLOOR1") s, 2 threads $(fmt "$FLOOR2") s" \
         "(all runs, 1 thread: $(cat "$OUT"/floor_*.out | sed -n 's/^floor_seconds_t1=//p' | tr '\n' ' ')s;" \
         "2 threads: $(cat "$OUT"/floor_*.out | sed -n 's/^floor_seconds_t2=//p' | tr '\n' ' ')s)"
    record floor_seconds_t1 "$FLOOR1"; record floor_seconds_t2 "$FLOOR2"
  else
    echo "  cannot compile tests/bench/sgemm_floor.c:"; tail -n 5 "$OUT/floor_cc.out" | sed 's/^/  /'
  fi
fi

# -------------------------------------------------------------- PyTorch ----
# torch_run CFG: BENCH_REPS whole jobs; sets T_<field>_<CFG> medians.
declare -A T
torch_run() {
  local cfg=$1 args=() r name
  [ "$cfg" = default ] || args=(--threads "$cfg")
  for r in $(seq 1 "$REPS"); do
    name=torch_${cfg}_$r
    if timed "$name" "$PY" "$TORCH" --epochs "$EPOCHS" --quiet "${args[@]}"; then
      printf '  run %d: wall %s s, train %s s, peak RSS %s MB, score %s rows/s, loss %s, val_loss %s\n' \
        "$r" "$(wall_of "$name")" "$(kv "$name" train_seconds)" "$(rss_of "$name")" \
        "$(kv "$name" score_rows_per_s)" "$(kv "$name" final_loss)" "$(kv "$name" final_val_loss)"
    else
      echo "  run $r FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/    /'
    fi
  done
  T[wall_$cfg]=$(for r in $(seq 1 "$REPS"); do wall_of "torch_${cfg}_$r"; done | median)
  T[rss_$cfg]=$(for r in $(seq 1 "$REPS"); do rss_of "torch_${cfg}_$r"; done | median)
  local k
  for k in train_seconds process_seconds score_rows_per_s final_loss final_val_loss \
           threads blas_threads blas_core class_error_{0..9}; do
    T[${k}_$cfg]=$(for r in $(seq 1 "$REPS"); do kv "torch_${cfg}_$r" "$k"; done | median)
  done
  T[blas_core_$cfg]=$(kv "torch_${cfg}_1" blas_core)
  for k in wall rss train_seconds process_seconds score_rows_per_s final_loss final_val_loss; do
    record "torch_${k}_$cfg" "${T[${k}_$cfg]}"
  done
  printf '  median: wall %s s, train %s s (%s s/epoch), in-process %s s, peak RSS %s MB, score %s rows/s\n' \
    "$(fmt "${T[wall_$cfg]}")" "$(fmt "${T[train_seconds_$cfg]}")" \
    "$(fmt "$(awk -v t="${T[train_seconds_$cfg]:-0}" -v e="$EPOCHS" 'BEGIN { print t / e }')" %.3f)" \
    "$(fmt "${T[process_seconds_$cfg]}")" "$(fmt "${T[rss_$cfg]}" %.0f)" \
    "$(fmt "${T[score_rows_per_s_$cfg]}" %.0f)"
}
TORCH_CFGS="default 1"
if ! skipped torch; then
  "$PY" -c 'import torch, numpy' 2>/dev/null || { echo "bench: $PY cannot import torch and numpy" >&2; exit 1; }
  for cfg in $TORCH_CFGS; do
    if [ "$cfg" = default ]; then
      section "PyTorch peer, torch's default threads ($REPS runs of $EPOCHS epochs)"
    else
      section "PyTorch peer, --threads $cfg ($REPS runs of $EPOCHS epochs)"
    fi
    torch_run "$cfg"
    echo "  torch intra-op threads ${T[threads_$cfg]:-?}, OpenBLAS ${T[blas_core_$cfg]:-?} with ${T[blas_threads_$cfg]:-?} threads"
  done
fi

# ------------------------------------------------------------- libaesql ----
declare -A A
IDX_TABLES="CREATE VIRTUAL TABLE mnist_train USING idx(images='$DATA/train-images-idx3-ubyte', labels='$DATA/train-labels-idx1-ubyte');
CREATE VIRTUAL TABLE mnist_test USING idx(images='$DATA/t10k-images-idx3-ubyte', labels='$DATA/t10k-labels-idx1-ubyte');"
MODEL=mnist_train_32

aesql_probe() {  # can the extension train at all? (1 epoch on the test set)
  [ -f libaesql.so ] || { echo "./libaesql.so not built"; return 1; }
  $SQL -bail :memory: > "$OUT/aesql_probe.out" 2>&1 <<EOF || { grep -m1 . "$OUT/aesql_probe.out"; return 1; }
.load ./libaesql
$IDX_TABLES
SELECT ae_train('mnist_test', 32, '{"seed": 1, "epochs": 1}');
EOF
}

aesql_job_sql() {  # aesql_job_sql OPTIONS-JSON: the whole tutorial job
  cat <<EOF
.bail on
.headers off
.mode list
.load ./libaesql
$IDX_TABLES
SELECT 'model=' || ae_train('mnist_train', 32, '$1');
SELECT 'train_seconds=' || sum(seconds) FROM ae_history WHERE model = '$MODEL';
SELECT 'epochs=' || count(*) FROM ae_history WHERE model = '$MODEL';
SELECT 'final_loss=' || loss FROM ae_history WHERE model = '$MODEL' ORDER BY epoch DESC LIMIT 1;
SELECT 'final_val_loss=' || val_loss FROM ae_history WHERE model = '$MODEL' ORDER BY epoch DESC LIMIT 1;
SELECT 'class_error_' || class || '=' || avg(ae_error('$MODEL', pixels)) FROM mnist_test GROUP BY class;
EOF
}

aesql_run() {  # aesql_run CFG: BENCH_REPS whole jobs; sets A[...] medians
  local cfg=$1 opts r name db k
  if [ "$cfg" = default ]; then opts="{\"seed\": 1, \"epochs\": $EPOCHS}"
  else opts="{\"seed\": 1, \"epochs\": $EPOCHS, \"threads\": $cfg}"; fi
  for r in $(seq 1 "$REPS"); do
    name=aesql_${cfg}_$r; db=$OUT/$name.db
    rm -f "$db" "$db-journal" "$db-wal"
    aesql_job_sql "$opts" > "$OUT/$name.sql"
    if timed "$name" $SQL "$db" < "$OUT/$name.sql"; then
      printf '  run %d: wall %s s, train %s s, peak RSS %s MB, loss %s, val_loss %s\n' \
        "$r" "$(wall_of "$name")" "$(kv "$name" train_seconds)" "$(rss_of "$name")" \
        "$(kv "$name" final_loss)" "$(kv "$name" final_val_loss)"
    else
      echo "  run $r FAILED (see $OUT/$name.out):"; tail -n 5 "$OUT/$name.out" | sed 's/^/    /'
    fi
  done
  A[wall_$cfg]=$(for r in $(seq 1 "$REPS"); do [ -n "$(kv "aesql_${cfg}_$r" train_seconds)" ] && wall_of "aesql_${cfg}_$r"; done | median)
  A[rss_$cfg]=$(for r in $(seq 1 "$REPS"); do [ -n "$(kv "aesql_${cfg}_$r" train_seconds)" ] && rss_of "aesql_${cfg}_$r"; done | median)
  for k in train_seconds final_loss final_val_loss class_error_{0..9}; do
    A[${k}_$cfg]=$(for r in $(seq 1 "$REPS"); do kv "aesql_${cfg}_$r" "$k"; done | median)
  done
  for k in wall rss train_seconds final_loss final_val_loss; do
    record "aesql_${k}_$cfg" "${A[${k}_$cfg]}"
  done
  printf '  median: wall %s s, train %s s (%s s/epoch), peak RSS %s MB\n' \
    "$(fmt "${A[wall_$cfg]}")" "$(fmt "${A[train_seconds_$cfg]}")" \
    "$(fmt "$(awk -v t="${A[train_seconds_$cfg]:-0}" -v e="$EPOCHS" 'BEGIN { print t / e }')" %.3f)" \
    "$(fmt "${A[rss_$cfg]}" %.0f)"
}

# score_query NAME DB QUERY: median seconds of QUERY over BENCH_SCORE_REPS
# (after one warm-up), from sqlite3's .timer; "" on error.
score_query() {
  local name=$1 db=$2 q=$3 i
  {
    echo ".load ./libaesql"
    echo ".timer on"
    for i in $(seq 0 "$SCORE_REPS"); do echo "$q"; done
  } > "$OUT/$name.sql"
  if $SQL -bail "$db" < "$OUT/$name.sql" > "$OUT/$name.out" 2>&1; then
    sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p' "$OUT/$name.out" | tail -n +2 | median
  else
    echo "  $name failed: $(grep -m1 -i error "$OUT/$name.out")" >&2
  fi
}

if ! skipped aesql; then
  if why=$(aesql_probe); then
    AE_OK=1
  else
    section "libaesql, the same job in one sqlite3 process"
    echo "  SKIPPED: the extension cannot train yet (SELECT ae_train failed: $why)"
  fi
fi
if [ "$AE_OK" = 1 ]; then
  for cfg in $TORCH_CFGS; do
    if [ "$cfg" = default ]; then
      section "libaesql, one sqlite3 process, default threads ($REPS runs of $EPOCHS epochs)"
    else
      section "libaesql, one sqlite3 process, \"threads\": $cfg ($REPS runs of $EPOCHS epochs)"
    fi
    aesql_run "$cfg"
  done

  section "libaesql scoring (60000 training images, median of $SCORE_REPS)"
  SDB=""   # the database of the first successful default-threads job
  for r in $(seq 1 "$REPS"); do
    [ -n "$(kv "aesql_default_$r" train_seconds)" ] && { SDB=$OUT/aesql_default_$r.db; break; }
  done
  if [ -z "$SDB" ]; then
    echo "  no successful job to score with"
  else
    $SQL "$SDB" ".load ./libaesql" "DROP TABLE IF EXISTS train; CREATE TABLE train AS SELECT pixels FROM mnist_train;" \
      > "$OUT/score_setup.out" 2>&1 || echo "  could not create table train: $(cat "$OUT/score_setup.out")"
    NSCORE=$($SQL "$SDB" "SELECT count(*) FROM train" 2>/dev/null || echo 0)
    s=$(score_query score_error "$SDB" "SELECT avg(ae_error('$MODEL', pixels)) FROM train;")
    A[score_error]=$(rate "$NSCORE" "$s")
    s=$(score_query score_scores "$SDB" "SELECT avg(error) FROM ae_scores('$MODEL', 'train');")
    A[score_scores]=$(rate "$NSCORE" "$s")
    record aesql_score_error_rows_per_s "${A[score_error]}"
    record aesql_score_scores_rows_per_s "${A[score_scores]}"
    echo "  ae_error (scalar, per row):  $(fmt "${A[score_error]}" %.0f) rows/s"
    echo "  ae_scores (batched):         $(fmt "${A[score_scores]}" %.0f) rows/s (target >= 1000000: $(
      awk -v v="${A[score_scores]:-0}" 'BEGIN { print (v >= 1e6) ? "met" : "NOT met" }'))"
  fi
fi

# ------------------------------------------------------------- scaling ----
declare -A S
torch_scale() {  # torch_scale ROWS HIDDEN
  local r name
  for r in $(seq 1 "$SCALE_REPS"); do
    name=scale_torch_r$1_h$2_$r
    timed "$name" "$PY" "$TORCH" --epochs "$SCALE_EPOCHS" --rows "$1" --hidden "$2" --no-eval --quiet \
      || echo "  PyTorch rows $1 hidden $2 FAILED (see $OUT/$name.out)" >&2
  done
  S[t_ep_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do kv "scale_torch_r$1_h$2_$r" epoch_seconds; done | median)
  S[t_rss_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do rss_of "scale_torch_r$1_h$2_$r"; done | median)
}
aesql_scale() {  # aesql_scale ROWS HIDDEN: MNIST train repeated through a view
  local r name k
  k=$(( ($1 + 59999) / 60000 ))
  for r in $(seq 1 "$SCALE_REPS"); do
    name=scale_aesql_r$1_h$2_$r
    cat > "$OUT/$name.sql" <<EOF
.bail on
.headers off
.mode list
.load ./libaesql
$IDX_TABLES
CREATE VIEW src AS
  WITH RECURSIVE r(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM r WHERE k < $k)
  SELECT pixels FROM r CROSS JOIN mnist_train LIMIT $1;
SELECT 'model=' || ae_train('src', $2, '{"seed": 1, "epochs": $SCALE_EPOCHS}');
SELECT 'epoch_seconds=' || avg(seconds) FROM ae_history;   -- a fresh database: one model
EOF
    rm -f "$OUT/$name.db"
    timed "$name" $SQL "$OUT/$name.db" < "$OUT/$name.sql" \
      || echo "  libaesql rows $1 hidden $2 FAILED (see $OUT/$name.out)" >&2
    rm -f "$OUT/$name.db"
  done
  S[a_ep_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do kv "scale_aesql_r$1_h$2_$r" epoch_seconds; done | median)
  S[a_rss_$1_$2]=$(for r in $(seq 1 "$SCALE_REPS"); do [ -n "$(kv "scale_aesql_r$1_h$2_$r" epoch_seconds)" ] && rss_of "scale_aesql_r$1_h$2_$r"; done | median)
}
POINTS=""
for rows in $SCALE_ROWS; do POINTS="$POINTS $rows:32"; done
for h in $SCALE_HIDDEN; do
  case " $POINTS " in *" 60000:$h "*) ;; *) POINTS="$POINTS 60000:$h" ;; esac
done
if ! skipped scaling; then
  section "scaling ($SCALE_EPOCHS epochs, default threads, $SCALE_REPS run(s) per point)"
  printf '  %-8s %-6s | %-24s | %-24s | %s\n' rows hidden "libaesql s/epoch, RSS" "PyTorch s/epoch, RSS" "libaesql vs PyTorch"
  for p in $POINTS; do
    rows=${p%:*}; h=${p#*:}
    skipped torch || torch_scale "$rows" "$h"
    [ "$AE_OK" = 1 ] && aesql_scale "$rows" "$h"
    a=${S[a_ep_${rows}_$h]:-}; ar=${S[a_rss_${rows}_$h]:-}
    t=${S[t_ep_${rows}_$h]:-}; tr=${S[t_rss_${rows}_$h]:-}
    printf '  %-8s %-6s | %8s s  %8s MB | %8s s  %8s MB | %s, %s\n' "$rows" "$h" \
      "$(fmt "$a" %.3f)" "$(fmt "$ar" %.0f)" "$(fmt "$t" %.3f)" "$(fmt "$tr" %.0f)" \
      "$(ratio "$a" "$t" lower faster slower)" "$(ratio "$ar" "$tr" lower "less memory" "more memory")"
    record "scale_aesql_epoch_seconds_r${rows}_h$h" "$a"; record "scale_aesql_rss_mb_r${rows}_h$h" "$ar"
    record "scale_torch_epoch_seconds_r${rows}_h$h" "$t"; record "scale_torch_rss_mb_r${rows}_h$h" "$tr"
  done
fi

# ------------------------------------------------------------- summary ----
section "summary (medians of $REPS runs; ratios against PyTorch measured above)"
if skipped torch; then
  echo "  PyTorch skipped (BENCH_SKIP)"
elif [ "$AE_OK" != 1 ]; then
  echo "  libaesql side not available yet: PyTorch figures only"
  for cfg in $TORCH_CFGS; do
    printf '  PyTorch %-8s whole job %s s, train %s s, peak RSS %s MB, score %s rows/s, loss %s / val %s\n' \
      "$cfg:" "$(fmt "${T[wall_$cfg]}")" "$(fmt "${T[train_seconds_$cfg]}")" "$(fmt "${T[rss_$cfg]}" %.0f)" \
      "$(fmt "${T[score_rows_per_s_$cfg]}" %.0f)" "$(fmt "${T[final_loss_$cfg]}" %.5f)" "$(fmt "${T[final_val_loss_$cfg]}" %.5f)"
  done
  if [ -n "$FLOOR1" ]; then
    best=$(printf '%s\n%s\n' "$FLOOR1" "$FLOOR2" | grep . | sort -g | head -n 1)
    echo "  -- sgemm floor ($EPOCHS epochs, OpenBLAS $CORETYPE): 1 thread $FLOOR1 s, 2 threads $FLOOR2 s"
    echo "  PyTorch training, default threads: $(ratio "$best" "${T[train_seconds_default]:-}" lower "above" "below") the best floor; 1 thread: $(ratio "$FLOOR1" "${T[train_seconds_1]:-}" lower "above" "below") the 1-thread floor"
  fi
else
  for cfg in $TORCH_CFGS; do
    if [ "$cfg" = default ]; then echo "  -- default threads (both sides)"; else echo "  -- $cfg thread(s) (both sides)"; fi
    compare "whole job (wall):" "${A[wall_$cfg]}" "${T[wall_$cfg]}" s lower %.1f
    compare "training (sum of epochs):" "${A[train_seconds_$cfg]}" "${T[train_seconds_$cfg]}" s lower %.2f
    compare "peak RSS, whole job:" "${A[rss_$cfg]}" "${T[rss_$cfg]}" MB lower %.0f "less memory" "more memory"
    compare "final loss (lower is better):" "${A[final_loss_$cfg]}" "${T[final_loss_$cfg]}" "" lower %.5f "lower" "higher"
    compare "final val_loss:" "${A[final_val_loss_$cfg]}" "${T[final_val_loss_$cfg]}" "" lower %.5f "lower" "higher"
  done
  echo "  -- scoring, 60000 training images (PyTorch: batched inference + per-row error)"
  compare "ae_error vs PyTorch default:" "${A[score_error]:-}" "${T[score_rows_per_s_default]:-}" rows/s higher %.0f
  compare "ae_scores vs PyTorch default:" "${A[score_scores]:-}" "${T[score_rows_per_s_default]:-}" rows/s higher %.0f
  compare "ae_scores vs PyTorch 1 thread:" "${A[score_scores]:-}" "${T[score_rows_per_s_1]:-}" rows/s higher %.0f
  if [ -n "$FLOOR1" ]; then
    echo "  -- sgemm floor ($EPOCHS epochs, OpenBLAS $CORETYPE): 1 thread $FLOOR1 s, 2 threads $FLOOR2 s"
    best=$(printf '%s\n%s\n' "$FLOOR1" "$FLOOR2" | grep . | sort -g | head -n 1)
    echo "  libaesql training, default threads: $(ratio "$best" "${A[train_seconds_default]:-}" lower "above" "below") the best floor; 1 thread: $(ratio "$FLOOR1" "${A[train_seconds_1]:-}" lower "above" "below") the 1-thread floor"
    echo "  PyTorch  training, default threads: $(ratio "$best" "${T[train_seconds_default]:-}" lower "above" "below") the best floor; 1 thread: $(ratio "$FLOOR1" "${T[train_seconds_1]:-}" lower "above" "below") the 1-thread floor"
  fi
fi

# per-class table, side by side
if ! skipped torch || [ "$AE_OK" = 1 ]; then
  echo "  -- average reconstruction error per test class (sum of squared errors per row)"
  printf '  %5s  %10s  %10s\n' class libaesql PyTorch
  for c in 0 1 2 3 4 5 6 7 8 9; do
    printf '  %5s  %10s  %10s\n' "$c" "$(fmt "${A[class_error_${c}_default]:-}" %.3f)" \
      "$(fmt "${T[class_error_${c}_default]:-}" %.3f)"
  done
fi
echo
echo "bench: done; key=value figures in $SUMMARY"
