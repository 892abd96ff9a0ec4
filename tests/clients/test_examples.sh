#!/bin/sh
# The README's examples, the Python and C embedding examples, and
# `make install` into a temporary DESTDIR with pkg-config. Run from the
# repository's root by tests/run.sh after `make`, `make static`, `make data`.
ok()  { echo "ok - $1"; }
bad() { echo "not ok - $1"; }
tmp=$(mktemp -d /tmp/aesql-examples-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 1. README.md: every sql and python block, outputs compared.
/usr/bin/python3 tests/readme_test.py || bad "tests/readme_test.py ran to its end"

# 2. Python's sqlite3 module runs the workflow (2 epochs to stay quick).
if /usr/bin/python3 examples/python/tutorial.py --epochs 2 > "$tmp/py.out" 2>&1; then
  ok "examples/python/tutorial.py runs"
else
  bad "examples/python/tutorial.py runs"; cat "$tmp/py.out"
fi
n=$(grep -cE '^ +[0-9] +[0-9]+\.[0-9]{4}$' "$tmp/py.out")
[ "$n" = 10 ] && ok "python example prints ten per-class errors" \
              || bad "python example prints ten per-class errors (got $n)"
n=$(grep -c '^row ' "$tmp/py.out")
[ "$n" = 5 ] && ok "python example lists five anomalies" || bad "python example lists five anomalies (got $n)"

# 3. Only deps, data, test, demo and bench may install packages: the plain
#    build, static and install must not even check for them.
if make -n -B libaesql.so libaesql.a install DESTDIR="$tmp/dry" 2>&1 | grep -E 'apt-get|dpkg-query'; then
  bad "make, make static and make install run no apt-get or dpkg-query"
else
  ok "make, make static and make install run no apt-get or dpkg-query"
fi
make -n -B test 2>&1 | grep -q 'dpkg-query' && ok "make test checks the Debian packages" \
  || bad "make test checks the Debian packages"

# 4. make install into a DESTDIR; pkg-config finds it; the C example builds
#    against the installed static library and runs.
if make -s install DESTDIR="$tmp/root" PREFIX=/usr/local > "$tmp/install.out" 2>&1; then
  ok "make install into DESTDIR"
else
  bad "make install into DESTDIR"; cat "$tmp/install.out"
fi
for f in lib/libaesql.so lib/libaesql.a include/aesql.h lib/pkgconfig/aesql.pc; do
  [ -f "$tmp/root/usr/local/$f" ] && ok "installed $f" || bad "installed $f"
done
export PKG_CONFIG_SYSROOT_DIR="$tmp/root" PKG_CONFIG_PATH="$tmp/root/usr/local/lib/pkgconfig"
if cc -o "$tmp/detector" examples/c/detector.c $(pkg-config --cflags --libs --static aesql) \
     > "$tmp/cc.out" 2>&1; then
  ok "examples/c/detector.c builds with pkg-config --static aesql"
else
  bad "examples/c/detector.c builds with pkg-config --static aesql"; cat "$tmp/cc.out"
fi
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH

# 4b. aesql.pc is relocatable: its paths hang on ${prefix}, so a copy of
#     the installed tree elsewhere is found there with --define-prefix
#     (prefix taken from where the .pc file lies).
pc="$tmp/root/usr/local/lib/pkgconfig/aesql.pc"
grep -qx 'libdir=${prefix}/lib' "$pc" && grep -qx 'includedir=${prefix}/include' "$pc" \
  && ok 'aesql.pc has libdir=${prefix}/lib and includedir=${prefix}/include' \
  || { bad 'aesql.pc has libdir=${prefix}/lib and includedir=${prefix}/include'; cat "$pc"; }
cp -a "$tmp/root/usr/local" "$tmp/moved"
pcr() { PKG_CONFIG_PATH="$tmp/moved/lib/pkgconfig" pkg-config --define-prefix "$@" aesql; }
for v in libdir:lib includedir:include; do
  got=$(pcr --variable="${v%%:*}")
  [ "$got" = "$tmp/moved/${v#*:}" ] && ok "moved tree: pkg-config --define-prefix gives ${v%%:*} $got" \
    || bad "moved tree: pkg-config --define-prefix gives ${v%%:*} '$got', want $tmp/moved/${v#*:}"
done
flags=$(pcr --cflags --libs --static)
case "$flags" in
  *"-I$tmp/moved/include"*"-L$tmp/moved/lib"*) ok "moved tree: flags name the moved tree" ;;
  *) bad "moved tree: flags name the moved tree: $flags" ;;
esac
if cc -o "$tmp/detector-moved" examples/c/detector.c $flags > "$tmp/cc-moved.out" 2>&1; then
  ok "examples/c/detector.c builds against the moved tree"
else
  bad "examples/c/detector.c builds against the moved tree"; cat "$tmp/cc-moved.out"
fi

# 5. The detector on real data: a model of normal images (digit 1 only)
#    flags other digits. Its scores must equal ae_error's.
sqlite3 "$tmp/m.db" > "$tmp/train.out" 2>&1 <<SQL
.load ./libaesql
CREATE VIRTUAL TABLE temp.tr USING idx(images='data/mnist/train-images-idx3-ubyte', labels='data/mnist/train-labels-idx1-ubyte');
SELECT ae_train('SELECT pixels FROM tr WHERE class = 1', 32, '{"epochs": 3, "seed": 1, "name": "ones"}');
SQL
grep -qx ones "$tmp/train.out" && ok "trained a model of ones" || { bad "trained a model of ones"; cat "$tmp/train.out"; }
if "$tmp/detector" "$tmp/m.db" ones data/mnist/t10k-images-idx3-ubyte > "$tmp/det.out" 2>&1; then
  ok "detector runs"
else
  bad "detector runs"; cat "$tmp/det.out"
fi
summary=$(tail -n 1 "$tmp/det.out")
case "$summary" in
  *" of 10000 images flagged"*) ok "detector scored 10000 images" ;;
  *) bad "detector scored 10000 images: $summary" ;;
esac
# The threshold is the model's calibrated one, and so are the flags.
want=$(sqlite3 "$tmp/m.db" ".load ./libaesql" \
  "CREATE VIRTUAL TABLE temp.te USING idx(images='data/mnist/t10k-images-idx3-ubyte')" \
  "SELECT (SELECT count(*) FROM te WHERE ae_error('ones', pixels) > ae_threshold('ones')) || ' of 10000 images flagged (threshold ' || printf('%.4f', ae_threshold('ones')) || ')'")
[ "$summary" = "$want" ] && ok "detector flags by the calibrated threshold ($want)" \
  || bad "detector flags by the calibrated threshold: got '$summary', want '$want'"
first=$(grep -m1 '^flagged image' "$tmp/det.out" | sed 's/flagged image \([0-9]*\): error \(.*\)/\1 \2/')
row=${first% *}; err=${first#* }
want=$(sqlite3 "$tmp/m.db" ".load ./libaesql" \
  "CREATE VIRTUAL TABLE temp.te USING idx(images='data/mnist/t10k-images-idx3-ubyte')" \
  "SELECT printf('%.4f', ae_error('ones', pixels)) FROM te WHERE rowid = $row")
[ -n "$row" ] && [ "$err" = "$want" ] && ok "detector's score of image $row equals ae_error ($want)" \
  || bad "detector's score of image '$row' ($err) equals ae_error ($want)"
"$tmp/detector" "$tmp/m.db" nosuch data/mnist/t10k-images-idx3-ubyte > "$tmp/bad.out" 2>&1
[ $? = 1 ] && grep -q "unknown model 'nosuch'" "$tmp/bad.out" && ok "detector reports an unknown model" \
  || { bad "detector reports an unknown model"; cat "$tmp/bad.out"; }
