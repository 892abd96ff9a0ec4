#!/bin/sh
# The Python package (python/): pip builds it from source, offline and without
# build isolation, into fresh virtual environments of Debian's python3, once
# from the repository and once from an sdist unpacked elsewhere. In each,
# aesql.load(con) trains and scores a small model on real MNIST, and every
# number equals, to the last bit, what the extension `make` built gives for
# the same statements in the sqlite3 shell. Run from the repository's root
# after `make` and `make data` (tests/run.sh does).
ok()  { echo "ok - $1"; }
bad() { echo "not ok - $1"; }
py=/usr/bin/python3
root=$(pwd)
tmp=$(mktemp -d /tmp/aesql-pypkg-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^#define AESQL_VERSION "\(.*\)"/\1/p' include/aesql.h)

make -s client-deps > "$tmp/deps.out" 2>&1 || { bad "make client-deps"; cat "$tmp/deps.out"; }
n=$(git ls-files python | grep -c '\.[ch]$')
[ "$n" = 0 ] && ok "python/ holds no copy of the C sources" || bad "python/ holds no copy of the C sources ($n files)"

# The statements both sides run, one a line: a model of 2,000 training
# images (1,600 trained, 400 held out), 3 epochs, fixed seed.
cat > "$tmp/model.sql" <<SQL
CREATE VIRTUAL TABLE temp.tr USING idx(images='$root/data/mnist/train-images-idx3-ubyte');
CREATE VIRTUAL TABLE temp.te USING idx(images='$root/data/mnist/t10k-images-idx3-ubyte', labels='$root/data/mnist/t10k-labels-idx1-ubyte');
SELECT ae_train('SELECT pixels FROM tr WHERE rowid <= 2000', 16, '{"epochs": 3, "seed": 7, "name": "tiny"}');
SELECT n_input, n_hidden, rows_train, rows_val, epochs FROM ae_models WHERE name = 'tiny';
SELECT epoch, printf('%.17g', loss), printf('%.17g', val_loss) FROM ae_history WHERE model = 'tiny' ORDER BY epoch;
SELECT printf('%.17g', ae_error('tiny', pixels)) FROM te WHERE rowid = 1;
SELECT count(*), printf('%.17g', sum(error)) FROM ae_scores('tiny', 'te');
SELECT class, printf('%.6f', avg(ae_error('tiny', pixels))) FROM te GROUP BY class;
SQL
{ echo ".load $root/libaesql"; cat "$tmp/model.sql"; } | sqlite3 :memory: > "$tmp/shell.out" 2>&1
grep -qx tiny "$tmp/shell.out" || { bad "the shell trains the reference model"; cat "$tmp/shell.out"; }

# Run inside a venv from a directory outside the repository, so that nothing
# but the installed package can be imported. Prints the rows to $2 and
# ok/not ok lines for what it checks.
cat > "$tmp/check.py" <<'PY'
import math, os, sqlite3, sys
import aesql

sql_file, rows_file, version, venv = sys.argv[1:5]
def check(cond, name):
    print(('ok - ' if cond else 'not ok - ') + name)

here = os.path.dirname(aesql.__file__)
check(os.path.realpath(here).startswith(os.path.realpath(venv)), 'aesql is imported from the venv (%s)' % here)
check(aesql.__version__ == version, 'aesql.__version__ is %s (got %s)' % (version, aesql.__version__))
path = aesql.loadable_path()
check(path == os.path.join(here, 'libaesql') and os.path.isfile(path + '.so'),
      'aesql.loadable_path() is the installed libaesql, without .so (%s)' % path)

con = sqlite3.connect(':memory:')
con.enable_load_extension(True)
aesql.load(con)
con.enable_load_extension(False)
got = con.execute("SELECT json_extract(ae_info(), '$.version')").fetchone()[0]
check(got == version, 'aesql.load(con) registers the functions (ae_info version %s)' % got)

rows = []
for stmt in open(sql_file).read().splitlines():
    for r in con.execute(stmt):
        rows.append('|'.join(str(v) for v in r))
open(rows_file, 'w').write('\n'.join(rows) + '\n')

check(rows[0] == 'tiny', 'ae_train returns the model name')
check(rows[1] == '784|16|1600|400|3', 'the model: 784 inputs, 16 hidden, 1600 + 400 rows, 3 epochs (%s)' % rows[1])
hist = [[float(x) for x in r.split('|')[1:]] for r in rows[2:5]]
loss = [h[0] for h in hist]
check(all(math.isfinite(x) and 0 < x < 0.2 for h in hist for x in h) and loss[0] > loss[1] > loss[2],
      'three epochs of finite, falling loss (%s)' % ', '.join('%.4f' % x for x in loss))
err = float(rows[5])
check(0 < err < 200, "ae_error of test image 1 is finite and sane (%.3f)" % err)
n, total = rows[6].split('|')
check(n == '10000' and 0 < float(total) / 10000 < 200, 'ae_scores scores 10000 test images (mean %.3f)' % (float(total) / 10000))
check(len(rows) == 17 and [r.split('|')[0] for r in rows[7:]] == [str(c) for c in range(10)],
      'the per-class table has classes 0 to 9')

# The two ways load() can fail get a message that says what to do.
class Off:
    def load_extension(self, path):
        raise sqlite3.OperationalError('not authorized')
try:
    aesql.load(Off()); check(False, 'load() on a connection with extension loading off raises')
except sqlite3.OperationalError as e:
    check('enable_load_extension(True)' in str(e), 'load() with extension loading off says to enable it: %s' % e)
try:
    aesql.load(object()); check(False, "load() where sqlite3 cannot load extensions raises")
except RuntimeError as e:
    check('without extension loading' in str(e), "load() where sqlite3 cannot load extensions says so: %s" % e)
PY

# $1: label, $2: what pip installs; creates the venv $tmp/$1.
install_and_check() {
  label=$1; what=$2
  "$py" -m venv --system-site-packages "$tmp/$label" || { bad "$label: python3 -m venv"; return; }
  start=$(date +%s)
  if (cd "$tmp" && "$tmp/$label/bin/pip" install --no-build-isolation --no-index --quiet "$what") \
       > "$tmp/$label.pip" 2>&1; then
    ok "$label: pip install --no-build-isolation --no-index $what ($(($(date +%s) - start)) s)"
  else
    bad "$label: pip install --no-build-isolation --no-index $what"; cat "$tmp/$label.pip"; return
  fi
  (cd "$tmp" && "$tmp/$label/bin/python" "$tmp/check.py" "$tmp/model.sql" "$tmp/$label.rows" \
     "$version" "$tmp/$label") > "$tmp/$label.check" 2>&1
  sed "s/^\(ok - \|not ok - \)/\1$label: /" "$tmp/$label.check"
  grep -q '^ok - ' "$tmp/$label.check" || { bad "$label: check.py ran"; cat "$tmp/$label.check"; }
  if [ -s "$tmp/$label.rows" ] && cmp -s "$tmp/$label.rows" "$tmp/shell.out"; then
    ok "$label: every number equals the shell's with ./libaesql.so ($(wc -l < "$tmp/shell.out") rows, %.17g)"
  else
    bad "$label: every number equals the shell's with ./libaesql.so"
    diff "$tmp/$label.rows" "$tmp/shell.out"
  fi
}

# 1. From the repository: the package builds ../ext in place.
install_and_check repo "$root/python"

# 2. From an sdist: it carries ext/ and include/, and builds where pip
#    unpacks it, away from the repository.
if (cd python && "$py" setup.py -q sdist -d "$tmp/dist") > "$tmp/sdist.out" 2>&1; then
  ok "python3 setup.py sdist"
else
  bad "python3 setup.py sdist"; cat "$tmp/sdist.out"
fi
sdist=$tmp/dist/aesql-$version.tar.gz
tar tzf "$sdist" > "$tmp/sdist.list" 2>/dev/null
want=$(cd ext && ls *.c *.h | sed "s|^|aesql-$version/ext/|"; echo "aesql-$version/include/aesql.h")
missing=$(echo "$want" | while read -r f; do grep -qx "$f" "$tmp/sdist.list" || echo "$f"; done)
[ -s "$tmp/sdist.list" ] && [ -z "$missing" ] && ! grep -q '\.\./' "$tmp/sdist.list" \
  && ok "the sdist carries ext/ and include/aesql.h, nothing outside itself" \
  || bad "the sdist carries ext/ and include/aesql.h, nothing outside itself (missing: $missing)"
install_and_check sdist "$sdist"

# 3. README.md's ```py blocks (```python ones are readme_test.py's, run with
#    the system's python3, where this package is not installed) in the venv.
mkdir "$tmp/readme"
[ -x "$tmp/repo/bin/python" ] && "$py" tests/readme_blocks.py py "$tmp/readme" "$tmp/repo/bin/python"
