#!/usr/bin/python3
"""The tutorial's workflow from Python's standard sqlite3 module.

    /usr/bin/python3 examples/python/tutorial.py [--epochs N] [--db FILE]

Run from the repository's root after `make` and `make data`. Imports MNIST,
trains the tutorial's autoencoder (784 -> 32 -> 784) in SQLite, prints the
training history and the per-class average reconstruction error, then the
five test digits the model finds most unusual: the anomalies.
"""
import argparse
import sqlite3

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=50)
    ap.add_argument('--db', default=':memory:')
    ap.add_argument('--lib', default='./libaesql')
    args = ap.parse_args()

    con = sqlite3.connect(args.db)
    con.enable_load_extension(True)
    con.load_extension(args.lib)
    con.enable_load_extension(False)

    con.executescript("""
        CREATE VIRTUAL TABLE temp.mnist_train USING idx(
          images='data/mnist/train-images-idx3-ubyte',
          labels='data/mnist/train-labels-idx1-ubyte');
        CREATE VIRTUAL TABLE temp.mnist_test USING idx(
          images='data/mnist/t10k-images-idx3-ubyte',
          labels='data/mnist/t10k-labels-idx1-ubyte');
    """)
    opts = '{"epochs": %d, "seed": 42, "replace": true, "name": "py_model"}' % args.epochs
    (model,) = con.execute("SELECT ae_train('mnist_train', 32, ?)", (opts,)).fetchone()
    print('model', model)
    for epoch, loss, val_loss in con.execute(
            "SELECT epoch, loss, val_loss FROM ae_history WHERE model = ? ORDER BY epoch",
            (model,)):
        print('epoch %2d  loss %.5f  val_loss %.5f' % (epoch, loss, val_loss))
    print('class avg_error')
    for cls, err in con.execute(
            "SELECT class, avg(ae_error(?, pixels)) FROM mnist_test GROUP BY class",
            (model,)):
        print('%5d %9.4f' % (cls, err))
    print('most unusual test digits')
    for key, err in con.execute(
            "SELECT key, error FROM ae_scores(?, 'mnist_test') ORDER BY error DESC LIMIT 5",
            (model,)):
        (cls,) = con.execute("SELECT class FROM mnist_test WHERE rowid = ?", (key,)).fetchone()
        print('row %5d  class %d  error %.2f' % (key, cls, err))
    con.commit()
    con.close()

if __name__ == '__main__':
    main()
