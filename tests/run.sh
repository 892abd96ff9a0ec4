#!/bin/sh
# Runs the whole test suite and ends with "N passed, N failed".
#  1. every tests/core/ and tests/sql/ test_*.c program, built normally (build/tests/) and
#     linked with the system's SQLite (-lsqlite3);
#  2. the same programs built with AddressSanitizer and UBSan
#     (build/asan-tests/), with AESQL_SANITIZE=1: checks that train on the
#     full MNIST set for 50 epochs are skipped there, being too slow;
#  3. the scripts tests/clients/test_*.sh (README examples, Python, C embedding...),
#     with the system's sqlite3 shell;
#  4. against a current SQLite built from source (make test builds it once,
#     in $SQLITE_NEW_DIR, by default build/sqlite-autoconf-*): the C
#     programs that test through SQL, linked with its sqlite3.o
#     (build/new-sqlite-tests/), and the README's sql blocks in its shell.
# Each part prints "ok - NAME" / "not ok - NAME: why" lines; we count them,
# and every label says which SQLite the part used. A "not ok - ... # TODO"
# line (TAP's TODO: a known failure, owned elsewhere) is listed and counted
# apart, not as a failure: $known below names those of the C programs
# against the current SQLite.
cd "$(dirname "$0")/.." || exit 2
mkdir -p build/out
: > build/out/failures   # every "not ok" line, repeated at the end
pass=0; fail=0; todo=0
count() {  # $1: log file
  p=$(grep -c '^ok - ' "$1")
  f=$(grep '^not ok - ' "$1" | grep -vc ' # TODO')
  t=$(grep -c '^not ok - .* # TODO' "$1")
  pass=$((pass + p)); fail=$((fail + f)); todo=$((todo + t))
}
run() {  # $1: label, rest: command
  label=$1; shift
  log=build/out/$(echo "$label" | tr -c 'A-Za-z0-9.\n-' '_').log
  "$@" > "$log" 2>&1
  rc=$?
  [ -z "$known" ] || mark_known "$log"
  if [ $rc -ne 0 ] && ! grep -q '^not ok - ' "$log"; then
    tail -n 20 "$log"
    echo "not ok - $label: exited with status $rc" >> "$log"
  fi
  grep '^not ok - ' "$log" | while IFS= read -r l; do echo "$label: $l"; done \
    | tee -a build/out/failures
  count "$log"
  echo "$label: $p passed, $f failed$( [ "$t" = 0 ] || echo ", $t todo")"
}
# $known: lines "NAME|why"; a "not ok - NAME..." line gets " # TODO why".
known=
mark_known() {  # $1: log file
  awk -v known="$known" '
    BEGIN { n = split(known, k, "\n") }
    /^not ok - / && !/ # TODO/ {
      for (i = 1; i <= n; i++) {
        j = index(k[i], "|")
        if (j > 1 && index($0, "not ok - " substr(k[i], 1, j - 1)) == 1) {
          $0 = $0 " # TODO " substr(k[i], j + 1); break
        }
      }
    }
    { print }' "$1" > "$1.tmp" && mv "$1.tmp" "$1"
}
version() {  # $1: a sqlite3 shell; its SQLite's version
  "$1" --version 2>/dev/null | cut -d' ' -f1
}

sys="SQLite $(version sqlite3)"
# The scripts use the system's SQLite (its shell, Python's sqlite3 module),
# but for test_node.sh's better-sqlite3, which carries its own.
script_sqlite() {  # $1: a tests/test_*.sh
  case "$1" in
    */test_node.sh)
      v=$(NODE_PATH=build/node/node_modules node -e \
        "const D = require('better-sqlite3'); console.log(new D(':memory:').prepare('SELECT sqlite_version()').pluck().get())" 2>/dev/null)
      echo "better-sqlite3's SQLite ${v:-(not built yet)}; shell $sys" ;;
    *) echo "$sys" ;;
  esac
}
# 0. The layers: the numeric core (ext/core) includes no SQLite header and
# nothing of ext/sql or ext/io, and its tests (tests/core) link no SQLite.
layers() {
  bad=$(grep -ln '#include *[<"]\(sqlite3\|\.\./sql/\|\.\./io/\)' ext/core/*.[ch])
  [ -z "$bad" ] && echo "ok - ext/core includes no SQLite header and nothing of ext/sql, ext/io" \
    || echo "not ok - ext/core includes no SQLite header and nothing of ext/sql, ext/io: $bad"
  for c in tests/core/test_*.c; do
    t=build/tests/$(basename "$c" .c)
    if [ -x "$t" ] && ! readelf -d "$t" | grep -q 'NEEDED.*sqlite'; then
      echo "ok - $t links no SQLite"
    else
      echo "not ok - $t links no SQLite"
    fi
  done
}
run "layers" layers
for t in build/tests/test_*; do
  run "$t ($sys)" "$t"
done
for t in build/asan-tests/test_*; do
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    AESQL_SANITIZE=1 run "$t ($sys)" "$t"
done
for t in tests/clients/test_*.sh; do
  [ -f "$t" ] && run "$t ($(script_sqlite "$t"))" sh "$t"
done

# 4. The current SQLite.
dir=${SQLITE_NEW_DIR:-$(ls -d build/sqlite-autoconf-* 2>/dev/null | tail -n 1)}
shell=$dir/sqlite3
v=$(version "$shell"); new="SQLite ${v:-(none built)}"
linked_in() {  # the C programs carry the current SQLite, not libsqlite3.so
  if [ ! -x "$shell" ] || [ ! -f "$dir/sqlite3.h" ]; then
    echo "not ok - a current SQLite is built in '${dir:-build/sqlite-autoconf-*}' (make test builds it)"
    return
  fi
  echo "ok - a current SQLite is built in $dir: $new"
  grep -q '^SHELL_OPT.*-DSQLITE_STRICT_SUBTYPE=1' "$dir/Makefile" \
    && echo "ok - its shell is built with -DSQLITE_STRICT_SUBTYPE=1" \
    || echo "not ok - its shell is built with -DSQLITE_STRICT_SUBTYPE=1 (SHELL_OPT in $dir/Makefile)"
  id=$(sed -n 's/^#define SQLITE_SOURCE_ID *"\(.*\)"/\1/p' "$dir/sqlite3.h")
  n=0
  for t in build/new-sqlite-tests/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    if readelf -d "$t" | grep -q 'NEEDED.*libsqlite3'; then
      echo "not ok - $t does not load libsqlite3.so"
    else
      echo "ok - $t does not load libsqlite3.so"
    fi
    grep -qF "$id" "$t" && echo "ok - $t has $new linked in" \
      || echo "not ok - $t has $new linked in (no source id '$id')"
  done
  [ $n -gt 0 ] && echo "ok - $n C programs built against $new" \
    || echo "not ok - C programs built against $new in build/new-sqlite-tests/"
}
run "build/new-sqlite-tests ($new)" linked_in
for t in build/new-sqlite-tests/test_*; do
  [ -x "$t" ] && run "$t ($new)" "$t"
done
# Only the sql blocks: the python ones use the system's SQLite, run in 3.
[ -x "$shell" ] && run "tests/readme_test.py ($new shell)" \
  /usr/bin/python3 tests/readme_test.py --sqlite3 "$shell" --no-python

[ $todo -eq 0 ] || echo "$todo known failure(s) (TODO, listed above), not counted"
# The failures again, last, where a log's tail shows them.
if grep -qv ' # TODO' build/out/failures; then
  echo "Failures:"; grep -v ' # TODO' build/out/failures
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
