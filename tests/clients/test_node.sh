#!/bin/sh
# examples/node/tutorial.js on real MNIST with better-sqlite3 12, which
# `make node` builds from source into build/node/ once. Checks the install is
# cached, that the example prints the per-class table (ten classes, finite
# errors in a sane range), and that its numbers equal the sqlite3 shell's
# for the same queries on the model it stored. Run from the repository's root
# after `make` and `make data` (tests/run.sh does).
ok()  { echo "ok - $1"; }
bad() { echo "not ok - $1"; }
tmp=$(mktemp -d /tmp/aesql-node-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
addon=build/node/node_modules/better-sqlite3/build/Release/better_sqlite3.node

# 1. The install, and that a second one does nothing.
if make -s node > "$tmp/make.out" 2>&1 && [ -f "$addon" ]; then
  ok "make node builds better-sqlite3 into build/node"
else
  bad "make node builds better-sqlite3 into build/node"; cat "$tmp/make.out"; exit 1
fi
v=$(NODE_PATH=build/node/node_modules node -p "require('better-sqlite3/package.json').version")
case "$v" in
  12.*) ok "better-sqlite3 is version 12 ($v)" ;;
  *) bad "better-sqlite3 is version 12 (got '$v')" ;;
esac
before=$(stat -c %Y "$addon" build/node/.ok)
out=$(make -s node 2>&1)
[ -z "$out" ] && [ "$(stat -c %Y "$addon" build/node/.ok)" = "$before" ] \
  && ok "a second make node reinstalls nothing" \
  || bad "a second make node reinstalls nothing: '$out'"

# 2. The example, two epochs to stay quick, storing its model in a file.
start=$(date +%s)
if NODE_PATH=build/node/node_modules node examples/node/tutorial.js --epochs 2 \
     --db "$tmp/node.db" > "$tmp/node.out" 2>&1; then
  ok "examples/node/tutorial.js runs ($(($(date +%s) - start)) s)"
else
  bad "examples/node/tutorial.js runs"; cat "$tmp/node.out"; exit 1
fi
grep -qx 'model node_model' "$tmp/node.out" && ok "node example names its model" \
  || bad "node example names its model"
n=$(grep -cE '^epoch  [12]  loss 0\.0[0-9]{4}  val_loss 0\.0[0-9]{4}$' "$tmp/node.out")
[ "$n" = 2 ] && ok "node example prints two epochs of history" \
  || bad "node example prints two epochs of history (got $n)"

# The per-class table: classes 0..9 once each, in order, every error a
# finite number of a sane size (two epochs give 8 to 24; the tutorial 6 to 18).
grep -E '^ +[0-9] +[0-9]+\.[0-9]{4}$' "$tmp/node.out" | awk '{print $1 "|" $2}' > "$tmp/classes"
if [ "$(cut -d'|' -f1 "$tmp/classes" | paste -sd,)" = "0,1,2,3,4,5,6,7,8,9" ]; then
  ok "node example prints ten classes, 0 to 9"
else
  bad "node example prints ten classes, 0 to 9"; cat "$tmp/node.out"
fi
awk -F'|' '$2 > 2 && $2 < 60 { n++ } END { exit n != 10 }' "$tmp/classes" \
  && ok "every class error is between 2 and 60 ($(cut -d'|' -f2 "$tmp/classes" | paste -sd' '))" \
  || bad "every class error is between 2 and 60: $(cut -d'|' -f2 "$tmp/classes" | paste -sd' ')"
# Class 1 is the easiest digit to reconstruct, as in the tutorial.
min=$(sort -t'|' -k2 -g "$tmp/classes" | head -n 1 | cut -d'|' -f1)
[ "$min" = 1 ] && ok "class 1 has the lowest error" || bad "class 1 has the lowest error (got class $min)"

# 3. Cross-client agreement: the sqlite3 shell (the system's SQLite, not the
#    one better-sqlite3 bundles) on the model the example stored.
sqlite3 "$tmp/node.db" > "$tmp/shell.out" 2>&1 <<'SQL'
.load ./libaesql
CREATE VIRTUAL TABLE temp.te USING idx(images='data/mnist/t10k-images-idx3-ubyte',
                                       labels='data/mnist/t10k-labels-idx1-ubyte');
SELECT class, printf('%.4f', avg(ae_error('node_model', pixels))) FROM te GROUP BY class;
SQL
if cmp -s "$tmp/classes" "$tmp/shell.out"; then
  ok "the shell's per-class table equals node's, to the printed 4 decimals"
else
  bad "the shell's per-class table equals node's"; paste "$tmp/classes" "$tmp/shell.out"
fi
row=$(grep -m1 '^row ' "$tmp/node.out" | awk '{print $2}')
err=$(grep -m1 '^row ' "$tmp/node.out" | awk '{print $6}')
want=$(sqlite3 "$tmp/node.db" ".load ./libaesql" \
  "CREATE VIRTUAL TABLE temp.te USING idx(images='data/mnist/t10k-images-idx3-ubyte')" \
  "SELECT printf('%.6f', ae_error('node_model', pixels)) FROM te WHERE rowid = ${row:-0}")
[ -n "$row" ] && [ "$err" = "$want" ] \
  && ok "node's most unusual digit, row $row, has the shell's ae_error ($want)" \
  || bad "node's most unusual digit, row '$row', has the shell's ae_error ($err against '$want')"

# 4. README.md's ```js blocks, in a directory laid out as the repository's
#    root, with the modules of `make node`.
mkdir "$tmp/readme" && ln -s "$(pwd)/data" "$tmp/readme/data" && ln -s "$(pwd)/libaesql.so" "$tmp/readme/"
NODE_PATH=$(pwd)/build/node/node_modules /usr/bin/python3 tests/readme_blocks.py js "$tmp/readme" node
