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
          over the non-zero pixels only (ext/core/ae_net_pass.c), so nIn of
          the first layer is each row's count of non-zero pixels, read from
          the IDX file here; dense when the data are denser than
          AESQL_NN_SPARSE_MAX (ext/core/ae_data.h: 25% of the pixels), as
          libaesql then is. And where libaesql takes the last layer by its
          Gram matrix (ext/core/ae_net.h; the rule of fit_gram_new in
          ext/core/ae_fit.c, below), that layer's products are the Gram
          way's, with h = nIn, d = nOut, nnz the row's non-zero pixels:
            per batch (and once more before the validation pass)
                                     h^2 d   G = W W' (its upper triangle)
            per batch                2 h^2 d the step's S W
            per training row         2 h^2   A G
                                     h^2     S = A'A (its upper triangle)
                                     2 nnz h X W'
                                     2 nnz h X'A
            per validation row       2 h^2 + 2 nnz h   (A G, X W')
          instead of the three dense products of every training row and the
          forward one of every validation row.
  dense   every product dense, as PyTorch does them.
The rows: the first --train-rows of the IDX file trained, the next
--val-rows validated (the tutorial's split: the last 20% held out).

Output, key=value lines: layers, train_rows, val_rows, nnz_train_mean,
nnz_val_mean, sparse, gram, flops_epoch_aesql, flops_epoch_dense.
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


def gram_on(widths, sparse, batch, nnz_mean):
    """Does libaesql take the last layer by its Gram matrix? As
    fit_gram_new (ext/core/ae_fit.c) decides: indexed rows and a stack
    whose first layer's X' dH goes by pixel (more than NN_XTDH_ROWS_MAX, 32,
    units: the deferred first layer), a linear last layer (the default
    output) no wider in than out, batches of at most 8 parts of 128 rows,
    and fewer multiply-adds than the direct way at that batch: 2 h^2 d +
    B (2 h^2 + 3 * 2 nnz h) < 3 B h d."""
    h, d = widths[-2], widths[-1]
    if not sparse or len(widths) <= 3 or widths[1] <= 32 or h > d or batch > 8 * 128:
        return False
    return 2.0 * h * h * d + batch * (2.0 * h * h + 6.0 * nnz_mean * h) < 3.0 * batch * h * d


def epoch_flops(widths, n_train, n_val, nnz_train, nnz_val, gram=False, batch=256):
    """Flops of one epoch: nnz_train and nnz_val are the total counts of
    the first layer's inputs over the training and the validation rows
    (n_train * 784 and n_val * 784 for dense products); with gram, the last
    layer the Gram way (above), batches of `batch` rows."""
    f = 0
    last = len(widths) - 2
    for l, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
        if l == 0:
            f += 2 * 2 * nnz_train * o   # forward, weight gradient
            f += 2 * nnz_val * o         # validation forward
        elif l == last and gram:
            batches = -(-n_train // batch)
            f += (batches + 1) * i * i * o + batches * 2 * i * i * o
            f += n_train * 3 * i * i + 2 * 2 * nnz_train * i
            f += n_val * 2 * i * i + 2 * nnz_val * i
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
    # the same the Gram way, batches of 256 (188 a 48000-row epoch), by hand:
    #   layers 1-3 as above: 48000*(2*2*150*128 + 3*2*128*32 + 3*2*32*128)
    #     + 12000*(2*150*128 + 2*128*32 + 2*32*128)
    #     = 48000*125952 + 12000*54784 = 6045696000 + 657408000
    #   layer 4: (188+1)*128*128*784 + 188*2*128*128*784
    #     + 48000*(3*128*128 + 4*150*128) + 12000*(2*128*128 + 2*150*128)
    #     = 2427715584 + 4829741056 + 48000*125952 + 12000*71168
    #     = 2427715584 + 4829741056 + 6045696000 + 854016000
    #   in all 6703104000 + 14157168640                   = 20860272640
    w4 = widths_of([128, 32])
    deep_gram = epoch_flops(w4, 48000, 12000, 48000 * 150, 12000 * 150, True, 256)
    print("check_flops_epoch_aesql_deep_gram=%d (by hand 20860272640)" % deep_gram)
    rule = gram_on(w4, True, 256, 150) and not gram_on(w4, True, 128, 150) \
        and not gram_on(widths_of([32]), True, 256, 150)
    print("check_layers=%s" % "-".join(map(str, w)))
    print("check_flops_epoch_aesql=%d (by hand 8864256000)" % sparse)
    print("check_flops_epoch_dense=%d (by hand 13246464000)" % dense)
    print("check_flops_epoch_aesql_deep=%d (784-128-32-128-784, nnz 150)" % deep)
    ok = sparse == 8864256000 and dense == 13246464000 and w == [784, 32, 784] \
        and widths_of([128, 32]) == [784, 128, 32, 128, 784] \
        and deep_gram == 20860272640 and rule
    print("check=%s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mnist", help="directory of the IDX files")
    p.add_argument("--images", default="train-images-idx3-ubyte")
    p.add_argument("--hidden", default="32", help="widths of the encoder's layers: 32, or 128,32")
    p.add_argument("--train-rows", type=int, default=0, help="default: 80%% of the file's rows")
    p.add_argument("--val-rows", type=int, default=-1, help="default: the rest of the file's rows")
    p.add_argument("--batch", type=int, default=256, help="rows a batch (the tutorial's 256)")
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
    gram = gram_on(w, sparse, a.batch, (nz_train + nz_val) / max(n_train + n_val, 1))
    print("gram=%s" % ("yes" if gram else "no"))
    if sparse:
        print("flops_epoch_aesql=%d" % epoch_flops(w, n_train, n_val, nz_train, nz_val,
                                                   gram, a.batch))
    else:
        print("flops_epoch_aesql=%d" % epoch_flops(w, n_train, n_val, n_train * d, n_val * d))
    print("flops_epoch_dense=%d" % epoch_flops(w, n_train, n_val, n_train * d, n_val * d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
