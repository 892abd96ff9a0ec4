#!/usr/bin/python3
"""The MNIST autoencoder tutorial (seed-autoencoders-mnist.txt) in PyTorch.

This is the peer that `make bench` measures libaesql against, so it is
written the way a competent PyTorch user would write it: the whole data set
as one float32 tensor in memory, a plain training loop (no DataLoader, whose
worker/collate overhead would only slow a 784-float-per-row job down), the
gradients of the whole model handled by autograd and Adam.

  784 -> hidden ReLU -> 784 linear, MSE, Adam(lr 0.001, betas 0.9/0.999,
  eps 1e-7 as in Keras), batch 256, validation_split 0.2 (the LAST 20% of the
  rows held out, as Keras does), training rows reshuffled every epoch,
  validation loss every epoch; weights initialised as Keras does (Glorot
  uniform, zero biases; --torch-init for PyTorch's own defaults).
  --hidden 128,32: a stack, 784 -> 128 -> 32 -> 128 -> 784, the decoder
  mirroring the encoder, ReLU after every layer but the last (the model
  `ae_train(..., '[128, 32]')` trains); the default, 32, is the tutorial's.

Then the per-class average reconstruction error on the test set (sum over the
784 pixels of the squared error, per row; averaged per class), and a scoring
benchmark: batch inference + per-row error over the 60000 training images,
median of --score-reps repeats.

Run it with /usr/bin/python3 (Debian's python3-torch and python3-numpy).
Human-readable lines go to stdout together with machine-readable key=value
lines (train_seconds=..., final_loss=..., class_error_3=..., ...).
"""
import argparse
import os
import resource
import time

T0 = time.perf_counter()  # process_seconds counts from here (after python starts)


def hidden_list(text):
    """'128,32' -> [128, 32]"""
    try:
        widths = [int(w) for w in text.replace(" ", "").split(",")]
    except ValueError:
        widths = []
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError("expected widths like 32 or 128,32, got %r" % text)
    return widths


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mnist", help="directory of the IDX files")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--hidden", type=hidden_list, default=[32],
                   help="widths of the encoder's layers, e.g. 32 (the "
                        "tutorial) or 128,32 (784-128-32-128-784)")
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--rows", type=int, default=0,
                   help="train on this many rows: MNIST train repeated "
                        "(60000, 240000, 600000...); default: 60000")
    p.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads(N), and the same for the BLAS "
                        "torch calls (OpenBLAS); default: torch's own default")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--score-reps", type=int, default=5,
                   help="repeats of the scoring benchmark (median reported)")
    p.add_argument("--score-chunk", type=int, default=1024,
                   help="rows per inference call when scoring (1024 measured "
                        "fastest here: 0.9M rows/s vs 0.22M all at once); "
                        "0 = all at once")
    p.add_argument("--no-eval", action="store_true",
                   help="train only: skip the per-class table and the scoring "
                        "benchmark (scaling runs); --no-class --no-score")
    p.add_argument("--no-class", action="store_true",
                   help="skip the per-class table of the test set")
    p.add_argument("--no-score", action="store_true",
                   help="skip the scoring benchmark (the whole-job runs: the "
                        "job is import, training and the per-class table)")
    p.add_argument("--torch-init", action="store_true",
                   help="keep PyTorch's default init instead of Keras' Glorot")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p.parse_args()


ARGS = parse_args()
if ARGS.threads > 0:
    # Must be set before torch (and the OpenBLAS it links) is loaded:
    # torch.set_num_threads() alone does not reach Debian's OpenBLAS
    # (pthreads build), which would otherwise still run every sgemm on all
    # the cores.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    if ARGS.threads > 1:
        # Spinning OpenMP workers fight OpenBLAS' own threads for the cores:
        # measured on the 2-core bench machine, torch.set_num_threads(2) made
        # training ~6x slower with the default (active) wait policy.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Note: Debian's torch 1.13 defaults to ONE intra-op (OpenMP) thread on the
# 2-core bench machine, while its OpenBLAS uses both cores for every sgemm;
# that default was measured as the fastest setting there (2 epochs: 0.63 s,
# vs 0.75-0.9 s for --threads 1 and 0.9-1.0 s for --threads 2).

import ctypes  # noqa: E402
import sys  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx_read import read_idx  # noqa: E402


def load_images(name):
    x = read_idx(os.path.join(ARGS.data, name))
    return x.reshape(x.shape[0], -1)  # 28x28 -> 784


def to_float(x_u8):
    # bytes / 255 as float32, like X_train / 255 in the tutorial
    return torch.from_numpy(x_u8).to(torch.float32).div_(255.0)


def blas_info():
    """Core name and thread count of the OpenBLAS torch's sgemm goes to."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode(), lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return "unknown", 0


def main():
    torch.manual_seed(ARGS.seed)
    np.random.seed(ARGS.seed)
    if ARGS.threads > 0:
        torch.set_num_threads(ARGS.threads)
    core, blas_threads = blas_info()
    print("torch=%s numpy=%s" % (torch.__version__, np.__version__))
    print("threads=%d" % torch.get_num_threads())
    print("blas_core=%s" % core)
    print("blas_threads=%d" % blas_threads)

    # ---- data ---------------------------------------------------------
    t = time.perf_counter()
    train_u8 = load_images("train-images-idx3-ubyte")
    n_mnist = train_u8.shape[0]
    rows = ARGS.rows or n_mnist
    if rows == n_mnist:
        X = to_float(train_u8)
    else:   # MNIST train repeated (cut) to `rows` rows, converted block by block
        X = torch.empty((rows, train_u8.shape[1]), dtype=torch.float32)
        for i in range(0, rows, n_mnist):
            j = min(i + n_mnist, rows)
            X[i:j].copy_(torch.from_numpy(train_u8[:j - i])).div_(255.0)
    del train_u8
    n_val = int(rows * ARGS.validation_split)   # Keras: the last 20% of rows
    n_train = rows - n_val
    X_train, X_val = X[:n_train], X[n_train:]
    print("rows=%d" % rows)
    print("train_rows=%d" % n_train)
    print("val_rows=%d" % n_val)
    print("load_seconds=%.3f" % (time.perf_counter() - t))

    # ---- model --------------------------------------------------------
    # 784 -> hidden... -> the same widths back -> 784; for --hidden 32 the
    # modules (and so the initialisation's random draws) are the tutorial's
    widths = [784] + ARGS.hidden + ARGS.hidden[-2::-1] + [784]
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])   # the output layer is linear
    if not ARGS.torch_init:
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr,
                           betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.MSELoss()
    bs = ARGS.batch_size

    # ---- training -----------------------------------------------------
    loss = val_loss = float("nan")
    t_train = time.perf_counter()
    epoch_times = []
    for epoch in range(1, ARGS.epochs + 1):
        t_ep = time.perf_counter()
        model.train()
        perm = torch.randperm(n_train)
        total = torch.zeros((), dtype=torch.float64)
        for i in range(0, n_train, bs):
            xb = X_train[perm[i:i + bs]]
            out = model(xb)
            batch_loss = loss_fn(out, xb)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            opt.step()
            total += batch_loss.detach() * xb.shape[0]
        loss = total.item() / n_train          # Keras' epoch loss: row-weighted mean
        model.eval()
        with torch.inference_mode():
            if n_val:
                s = 0.0
                for i in range(0, n_val, 8192):  # chunks keep memory flat for 600k rows
                    xv = X_val[i:i + 8192]
                    s += torch.nn.functional.mse_loss(model(xv), xv, reduction="sum").item()
                val_loss = s / (n_val * 784)
        epoch_times.append(time.perf_counter() - t_ep)
        if not ARGS.quiet:
            print("epoch %d/%d loss=%.6f val_loss=%.6f seconds=%.3f"
                  % (epoch, ARGS.epochs, loss, val_loss, time.perf_counter() - t_ep))
    train_seconds = time.perf_counter() - t_train
    print("epochs=%d" % ARGS.epochs)
    print("hidden=%s" % ",".join(map(str, ARGS.hidden)))
    print("layers=%s" % "-".join(map(str, widths)))
    print("train_seconds=%.3f" % train_seconds)
    print("epoch_seconds=%.4f" % (train_seconds / max(ARGS.epochs, 1)))
    if epoch_times:
        print("epoch_seconds_median=%.4f" % float(np.median(epoch_times)))
    print("final_loss=%.6f" % loss)
    print("final_val_loss=%.6f" % val_loss)

    model.eval()
    if not (ARGS.no_eval or ARGS.no_class):
        # ---- per-class reconstruction error on the test set ------------
        t = time.perf_counter()
        X_test = to_float(load_images("t10k-images-idx3-ubyte"))
        y_test = torch.from_numpy(read_idx(os.path.join(ARGS.data, "t10k-labels-idx1-ubyte")).astype(np.int64))
        with torch.inference_mode():
            err = (model(X_test) - X_test).pow_(2).sum(dim=1)
            counts = torch.bincount(y_test, minlength=10)
            sums = torch.zeros(10, dtype=torch.float64).index_add_(0, y_test, err.double())
            means = (sums / counts).tolist()
        print("class_seconds=%.3f" % (time.perf_counter() - t))
        print("")
        print("class  rows  avg_error")
        for c in range(10):
            print("%5d %5d %10.4f" % (c, counts[c], means[c]))
        print("")
        for c in range(10):
            print("class_error_%d=%.6f" % (c, means[c]))

    if not (ARGS.no_eval or ARGS.no_score):
        # ---- scoring: inference + per-row error, 60000 train images ----
        X_score = X[:n_mnist]   # the 60000 MNIST training images (rows repeat them)
        n = X_score.shape[0]
        chunk = ARGS.score_chunk or n
        times = []
        with torch.inference_mode():
            for _ in range(ARGS.score_reps + 1):   # first one is a warm-up
                t = time.perf_counter()
                parts = []
                for i in range(0, n, chunk):
                    xs = X_score[i:i + chunk]
                    parts.append((model(xs) - xs).pow_(2).sum(dim=1))
                errs = parts[0] if len(parts) == 1 else torch.cat(parts)
                avg = errs.mean().item()
                times.append(time.perf_counter() - t)
        med = float(np.median(times[1:]))
        print("score_rows=%d" % n)
        print("score_avg_error=%.6f" % avg)
        print("score_seconds=%.5f" % med)
        print("score_rows_per_s=%.0f" % (n / med))

    print("peak_rss_kb_inproc=%d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print("process_seconds=%.3f" % (time.perf_counter() - T0))


if __name__ == "__main__":
    main()
