#!/bin/sh
# tests/clients/test_numpy.sh: libaesql in a Python process that imported numpy
# first (Debian's numpy has OpenBLAS loaded: libblas.so.3 of openblas-pthread,
# then libopenblas.so.0). libaesql must train with an OpenBLAS of its own:
#  - the model is a plain process's (no numpy), bit for bit;
#  - numpy's OpenBLAS keeps its kernels and thread count, before, during
#    and after the training, and still computes;
#  - ae_info() says the instance is private and names the host's.
# Skipped (one "ok - ... (skipped: no numpy)" line) only when numpy is not
# installed: the project does not need it.
cd "$(dirname "$0")/../.." || exit 2
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import numpy' 2>/dev/null; then
  echo "ok - numpy: training after import numpy (skipped: no numpy)"
  exit 0
fi
if [ ! -f libaesql.so ]; then
  echo "not ok - numpy: ./libaesql.so is not built (make)"
  exit 1
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/train.py" <<'EOF'
import sys, threading, time
numpy_first = sys.argv[1] == "numpy"
checks = []
def check(name, ok, why=""):
    print(("ok - %s" % name) if ok else ("not ok - %s: %s" % (name, why)))
    sys.stdout.flush()
if numpy_first:
    import ctypes, numpy
    a = numpy.arange(250000, dtype=numpy.float64).reshape(500, 500) / 250000.0
    before = a @ a                         # numpy's OpenBLAS at work
    host = ctypes.CDLL("libopenblas.so.0") # the instance numpy loaded
    host.openblas_get_corename.restype = ctypes.c_char_p
    core0 = host.openblas_get_corename()
    threads0 = host.openblas_get_num_threads()
    print("# numpy's OpenBLAS: %s kernels, %d threads" % (core0.decode(), threads0))
import sqlite3
db = sqlite3.connect(":memory:", check_same_thread=False)
db.enable_load_extension(True)
db.load_extension("./libaesql")
db.execute("CREATE TABLE t(pixels BLOB)")
db.executemany("INSERT INTO t VALUES(?)",
               [(bytes((i*7 + j*j*3 + (i*j) % 13) & 0xff if (i + j) % 5 else 0
                       for j in range(784)),) for i in range(2000)])
result = {}
def train():
    try:
        result["name"] = db.execute("SELECT ae_train('t', 32, '{\"epochs\": 5, "
            "\"seed\": 7, \"threads\": 2, \"batch_size\": 128}')").fetchone()[0]
    except Exception as e:
        result["error"] = str(e)
th = threading.Thread(target=train)
seen = set()
th.start()
while th.is_alive():                       # sqlite3 releases the GIL
    if numpy_first:
        seen.add(host.openblas_get_num_threads())
    time.sleep(0.0005)
th.join()
if "error" in result:
    check("numpy: ae_train", False, result["error"])
    sys.exit(0)
w = db.execute("SELECT hex(weights) FROM ae_models WHERE name = ?",
               (result["name"],)).fetchone()[0]
info = dict(db.execute("SELECT key, value FROM json_each(ae_info())").fetchall())
print("weights=" + w)
print("# ae_info: %s" % info)
if numpy_first:
    check("numpy first: libaesql's OpenBLAS is private",
          info.get("blas_instance") == "private", info.get("blas_instance"))
    check("numpy first: ae_info names numpy's OpenBLAS as the host's",
          "libopenblas" in str(info.get("blas_host")), info.get("blas_host"))
    check("numpy first: libaesql's OpenBLAS runs one thread a call",
          info.get("blas_threads") == 1, info.get("blas_threads"))
    check("numpy first: numpy's OpenBLAS thread count never changes during training",
          seen == {threads0} and len(seen) > 0, "saw %s, want {%d}" % (seen, threads0))
    check("numpy first: numpy's OpenBLAS keeps its thread count after training",
          host.openblas_get_num_threads() == threads0,
          "%d, want %d" % (host.openblas_get_num_threads(), threads0))
    check("numpy first: numpy's OpenBLAS keeps its kernels",
          host.openblas_get_corename() == core0, host.openblas_get_corename())
    after = a @ a
    check("numpy first: numpy still computes, and the same bits",
          numpy.array_equal(before, after), "products differ")
EOF

"$PY" "$tmp/train.py" plain > "$tmp/plain.out" 2>&1
"$PY" "$tmp/train.py" numpy > "$tmp/numpy.out" 2>&1
grep -v '^weights=' "$tmp/numpy.out"
wp=$(sed -n 's/^weights=//p' "$tmp/plain.out")
wn=$(sed -n 's/^weights=//p' "$tmp/numpy.out")
if [ -z "$wp" ]; then
  echo "not ok - numpy: a plain process trains: $(tail -n 3 "$tmp/plain.out" | tr '\n' ' ')"
elif [ -z "$wn" ]; then
  echo "not ok - numpy: a process that imported numpy trains: $(tail -n 3 "$tmp/numpy.out" | tr '\n' ' ')"
elif [ "$wp" = "$wn" ]; then
  echo "ok - numpy first: the model is a plain process's, bit for bit (${#wp} hex digits)"
else
  echo "not ok - numpy first: the model is a plain process's, bit for bit: the weights differ"
fi
