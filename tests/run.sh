#!/bin/sh
# Runs the whole test suite and ends with "N passed, N failed".
#  1. every tests/test_*.c program, built normally (build/tests/);
#  2. the same programs built with AddressSanitizer and UBSan
#     (build/asan-tests/), with AESQL_SANITIZE=1: checks that train on the
#     full MNIST set for 50 epochs are skipped there, being too slow;
#  3. the scripts tests/test_*.sh (README examples, Python, C embedding...).
# Each part prints "ok - NAME" / "not ok - NAME: why" lines; we count them.
cd "$(dirname "$0")/.." || exit 2
mkdir -p build/out
pass=0; fail=0
count() {  # $1: log file
  p=$(grep -c '^ok - ' "$1"); f=$(grep -c '^not ok - ' "$1")
  pass=$((pass + p)); fail=$((fail + f))
}
run() {  # $1: label, rest: command
  label=$1; shift
  log=build/out/$(echo "$label" | tr '/ ' '__').log
  "$@" > "$log" 2>&1
  rc=$?
  grep '^not ok - ' "$log"
  if [ $rc -ne 0 ] && ! grep -q '^not ok - ' "$log"; then
    echo "not ok - $label: exited with status $rc" >> "$log"
    tail -n 20 "$log"
  fi
  count "$log"
  echo "$label: $(grep -c '^ok - ' "$log") passed, $(grep -c '^not ok - ' "$log") failed"
}
for t in build/tests/test_*; do
  run "$t" "$t"
done
for t in build/asan-tests/test_*; do
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    AESQL_SANITIZE=1 run "$t" "$t"
done
for t in tests/test_*.sh; do
  [ -f "$t" ] && run "$t" sh "$t"
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
