#!/usr/bin/python3
"""One-class MNIST in PyTorch: the reference for libaesql's one-class AUROC.

The protocol of the README's "Finding anomalies" (Ruff et al. 2018): for each
digit, a model of that digit's training images, with the tutorial's model
and settings (784 -> 32 ReLU -> 784 linear, MSE, Adam lr 0.001, betas
0.9/0.999, eps 1e-7 as Keras, batch 256, Glorot-uniform weights and zero
biases, the last 20% of the digit's rows held out as Keras' validation_split
does, the training rows reshuffled every epoch), 30 epochs; then the AUROC
of the reconstruction error (sum over pixels of the squared error) of the
whole test set, the other nine digits being the anomalies. AUROC is the
Mann-Whitney statistic with ranks averaged over ties, as ae_auroc computes it.

Prints a line per digit and seed, key=value lines (auroc_<digit>=<mean over
seeds>, auroc_<digit>_sd=..., mean_auroc=...), and the mean. Run with Debian's
/usr/bin/python3 (python3-torch, python3-numpy); one OpenBLAS thread per
process is the default here, as the bench runs it.

  /usr/bin/python3 tests/bench/torch_oneclass.py [--seeds 1,2,3] [--digits 0,2,8]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx_read import read_idx  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mnist", help="directory of the IDX files")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="1", help="comma-separated seeds")
    p.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--eps", type=float, default=1e-7, help="Adam's epsilon (Keras: 1e-7)")
    p.add_argument("--keras-adam", action="store_true",
                   help="Adam in Keras' (TF2) formulation, as libaesql has it: "
                        "lr_t = lr sqrt(1-b2^t)/(1-b1^t), p -= lr_t m/(sqrt(v)+eps); "
                        "default: PyTorch's, eps added to sqrt(v_hat)")
    return p.parse_args()


def auroc(score, positive):
    """Mann-Whitney U / (n+ n-), ranks averaged over ties."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + 1 + j) / 2.0
        i = j
    r = np.empty_like(ranks)
    r[order] = ranks
    n_pos = int(positive.sum())
    n_neg = len(score) - n_pos
    return (r[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def main():
    args = parse_args()
    import torch
    from torch import nn
    train = read_idx(os.path.join(args.data, "train-images-idx3-ubyte")).reshape(60000, -1)
    train_y = read_idx(os.path.join(args.data, "train-labels-idx1-ubyte"))
    test = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte")).reshape(10000, -1)
    test_y = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte"))
    X_test = torch.from_numpy(test).to(torch.float32).div_(255.0)
    seeds = [int(s) for s in args.seeds.split(",")]
    digits = [int(d) for d in args.digits.split(",")]
    print("torch=%s epochs=%d seeds=%s eps=%g adam=%s" % (torch.__version__, args.epochs,
          seeds, args.eps, "keras" if args.keras_adam else "torch"))
    means = []
    t0 = time.perf_counter()
    for d in digits:
        X = torch.from_numpy(train[train_y == d]).to(torch.float32).div_(255.0)
        n_train = X.shape[0] - int(X.shape[0] * 0.2)   # Keras: the last 20% held out
        X_train = X[:n_train]
        aucs = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784))
            for m in model:
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
            params = list(model.parameters())
            opt = torch.optim.Adam(params, lr=0.001, betas=(0.9, 0.999), eps=args.eps)
            state = [(torch.zeros_like(q), torch.zeros_like(q)) for q in params]
            step = [0]

            def keras_step():
                step[0] += 1
                t = step[0]
                lr_t = 0.001 * (1 - 0.999 ** t) ** 0.5 / (1 - 0.9 ** t)
                with torch.no_grad():
                    for q, (m, v) in zip(params, state):
                        g = q.grad
                        m.mul_(0.9).add_(g, alpha=0.1)
                        v.mul_(0.999).addcmul_(g, g, value=0.001)
                        q.sub_(lr_t * m / (v.sqrt() + args.eps))
            loss_fn = nn.MSELoss()
            for _ in range(args.epochs):
                perm = torch.randperm(n_train)
                for i in range(0, n_train, 256):
                    xb = X_train[perm[i:i + 256]]
                    loss = loss_fn(model(xb), xb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if args.keras_adam:
                        keras_step()
                    else:
                        opt.step()
            with torch.inference_mode():
                err = ((model(X_test) - X_test) ** 2).sum(dim=1).double().numpy()
            a = auroc(err, test_y != d)
            aucs.append(a)
            print("digit %d seed %d: AUROC %.6f" % (d, seed, a), flush=True)
        m = float(np.mean(aucs))
        means.append(m)
        print("auroc_%d=%.5f" % (d, m))
        print("auroc_%d_sd=%.5f" % (d, float(np.std(aucs))))
    print("mean_auroc=%.5f" % float(np.mean(means)))
    print("seconds=%.1f" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
