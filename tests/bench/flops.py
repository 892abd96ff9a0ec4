#!/usr/bin/python3
"""The flops of one epoch of training, for run.sh's achieved GFLOP/s.

The model is a stack of dense layers, widths 784 - hidden... - mirrored -
784 (--hidden 32: 784-32-784; --hidden 128,32: 784-128-32-128-784). Per
training row and layer l of nIn x nOut:
  forward                  2 nIn nOut
  backward, weights        2 nIn nOut
  backward, input          2 nIn nOut, except for the first layer, whose
                           input gradient nobody needs (PyTorch's autograd
                           does not compute it either: the input does not
                           require a gradient)
and per validation row the forward products only. Elementwise work (bias,
ReLU, the loss and its gradient) and Adam are left out: they are O(width)
per row or O(parameters) per batch, a few percent at most of the products.

Two counts:
  aesql   libaesql's: over byte inputs its first layer's two products run
          over the non-zero pixels only (ext/core/ae_nn.c), so nIn of the
          first layer is each row's count of non-zero pixels, read from the
          IDX file here; dense when the data are denser than
          AESQL_NN_SPARSE_MAX (ext/core/ae_data.h: 25% of the pixels), as
          libaesql then is.
  dense   every product dense, as PyTorch does them.
The rows: the first --train-rows of the IDX file trained, the next
--val-rows validated (the tutorial's split: the last 20% held out).

Output, key=value lines: layers, train_rows, val_rows, nnz_train_mean,
nnz_val_mean, sparse, flops_epoch_aesql, flops_epoch_dense.
--check: the hand computation of the reply's example (784-32-784, 150
non-zero pixels a row, 48000 + 12000 rows) against this code; exit 1 if
they differ.

Run it with /usr/bin/python3 (Debian's python3-numpy).
"""
import argparse
import os
import sys

SPARSE_MAX = 0.25   # AESQL_NN_SPARSE_MAX in ext/core/ae_data.h


def widths_of(hidden, n_in=784):
    """784 - hidden... - hidden reversed without the code layer - 784."""
    return [n_in] + hidden + hidden[-2::-1] + [n_in]


def epoch_flops(widths, n_train, n_val, nnz_train, nnz_val):
    """Flops of one epoch: nnz_train and nnz_val are the total counts of
    the first layer's inputs over the training and the validation rows
    (n_train * 784 and n_val * 784 for dense products)."""
    f = 0
    for l, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        if l == 0:
            f += 2 * 2 * nnz_train * o   # forward, weight gradient
            f += 2 * nnz_val * o         # validation forward
        else:
            f += 3 * 2 * n_train * i * o  # forward, weight and input gradients
            f += 2 * n_val * i * o
    return f


def check():
    # 784-32-784, nnz 150, 48000 training + 12000 validation rows, by hand:
    #   training row: layer 1  2*150*32 + 2*150*32        =  19200
    #                 layer 2  3 * 2*32*784               = 150528
    #                 together                              169728
    #   validation row: 2*150*32 + 2*32*784 = 9600 + 50176 =  59776
    #   epoch: 48000*169728 + 12000*59776
    #        = 8146944000 + 717312000                     = 8864256000
    #   dense (nnz = 784): training row 2*2*784*32 + 150528 = 250880,
    #   validation row 2*784*32 + 2*32*784 = 100352; epoch
    #   48000*250880 + 12000*100352 = 12042240000 + 1204224000 = 13246464000
    w = widths_of([32])
    sparse = epoch_flops(w, 48000, 12000, 48000 * 150, 12000 * 150)
    dense = epoch_flops(w, 48000, 12000, 48000 * 784, 12000 * 784)
    deep = epoch_flops(widths_of([128, 32]), 48000, 12000, 48000 * 150, 12000 * 150)
    print("check_layers=%s" % "-".join(map(str, w)))
    print("check_flops_epoch_aesql=%d (by hand 8864256000)" % sparse)
    print("check_flops_epoch_dense=%d (by hand 13246464000)" % dense)
    print("check_flops_epoch_aesql_deep=%d (784-128-32-128-784, nnz 150)" % deep)
    ok = sparse == 8864256000 and dense == 13246464000 and w == [784, 32, 784] \
        and widths_of([128, 32]) == [784, 128, 32, 128, 784]
    print("check=%s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mnist", help="directory of the IDX files")
    p.add_argument("--images", default="train-images-idx3-ubyte")
    p.add_argument("--hidden", default="32", help="widths of the encoder's layers: 32, or 128,32")
    p.add_argument("--train-rows", type=int, default=0, help="default: 80%% of the file's rows")
    p.add_argument("--val-rows", type=int, default=-1, help="default: the rest of the file's rows")
    p.add_argument("--check", action="store_true", help="the hand computation, then exit")
    a = p.parse_args()
    if a.check:
        return check()

    import numpy as np
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from idx_read import read_idx

    x = read_idx(os.path.join(a.data, a.images))
    x = x.reshape(x.shape[0], -1)
    n, d = x.shape
    n_val = a.val_rows if a.val_rows >= 0 else int(n * 0.2)   # Keras: int(rows * split)
    n_train = a.train_rows or n - n_val
    if n_train + n_val > n:
        sys.exit("flops.py: %d + %d rows asked, the file has %d" % (n_train, n_val, n))
    nnz = np.count_nonzero(x[:n_train + n_val], axis=1).astype(np.int64)
    nz_train, nz_val = int(nnz[:n_train].sum()), int(nnz[n_train:].sum())
    # libaesql decides over all the rows it was given, training and validation
    sparse = nz_train + nz_val <= SPARSE_MAX * (n_train + n_val) * d
    w = widths_of([int(h) for h in a.hidden.replace(" ", "").split(",") if h], d)
    print("layers=%s" % "-".join(map(str, w)))
    print("train_rows=%d" % n_train)
    print("val_rows=%d" % n_val)
    print("nnz_train_mean=%.2f" % (nz_train / max(n_train, 1)))
    print("nnz_val_mean=%.2f" % (nz_val / max(n_val, 1)))
    print("sparse=%s" % ("yes" if sparse else "no"))
    if sparse:
        print("flops_epoch_aesql=%d" % epoch_flops(w, n_train, n_val, nz_train, nz_val))
    else:
        print("flops_epoch_aesql=%d" % epoch_flops(w, n_train, n_val, n_train * d, n_val * d))
    print("flops_epoch_dense=%d" % epoch_flops(w, n_train, n_val, n_train * d, n_val * d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
