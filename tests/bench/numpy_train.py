#!/usr/bin/python3
"""libaesql's training inside a Python process, with or without numpy.

The issue's case: a Python program that imported numpy before loading
libaesql (Debian's numpy has OpenBLAS loaded then, with its own threads)
trained 20-100x slower than a plain one, and to other bits. `make bench`
runs this both ways, in turns, and compares the training times.

  /usr/bin/python3 tests/bench/numpy_train.py [--numpy] [--rows 20000] [--epochs 5]

Reads the first --rows MNIST training images into a table, trains
784 -> 32 -> 784 (seed 1, default threads) and prints key=value lines:
train_seconds (the ae_train call alone), blas_instance, blas_core,
host_blas_threads (numpy's OpenBLAS, before and after), weights_sha256.
"""
import argparse
import hashlib
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--numpy", action="store_true", help="import numpy first, and use it")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--ext", default="./libaesql")
    a = p.parse_args()
    host = None
    if a.numpy:
        import ctypes
        import numpy
        m = numpy.ones((400, 400))
        m @ m                                   # its OpenBLAS threads start
        host = ctypes.CDLL("libopenblas.so.0")  # the instance numpy loaded
        print("host_blas_threads_before=%d" % host.openblas_get_num_threads())
    import sqlite3
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    db.load_extension(a.ext)
    db.execute("CREATE VIRTUAL TABLE temp.src USING idx(images='%s/train-images-idx3-ubyte')"
               % a.data)
    db.execute("CREATE TABLE t AS SELECT pixels FROM src LIMIT %d" % a.rows)
    t0 = time.perf_counter()
    name = db.execute("SELECT ae_train('t', 32, '{\"epochs\": %d, \"seed\": 1}')"
                      % a.epochs).fetchone()[0]
    t = time.perf_counter() - t0
    w = db.execute("SELECT weights FROM ae_models WHERE name = ?", (name,)).fetchone()[0]
    info = dict(db.execute("SELECT key, value FROM json_each(ae_info())").fetchall())
    print("train_seconds=%.4f" % t)
    print("blas_instance=%s" % info.get("blas_instance"))
    print("blas_core=%s" % info.get("blas_core"))
    print("threads=%s" % info.get("threads"))
    if host is not None:
        print("host_blas_threads_after=%d" % host.openblas_get_num_threads())
    print("weights_sha256=%s" % hashlib.sha256(w).hexdigest())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
