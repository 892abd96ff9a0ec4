#!/usr/bin/python3
"""The reference for tests/sql/test_columns.c's acceptance run: anomaly
detection on the Wisconsin breast-cancer data (data/breast_cancer.csv,
`make data`) by PCA and by the same autoencoder in PyTorch, on the same
split, so that libaesql's AUROC can be read against them. Not part of the
test suite (it needs python3-torch and python3-numpy).

The protocol, as the acceptance run's:
  - normal: the benign rows; the first 80% of them in file order train
    (285 of 357), of which the last validation_split are held out as
    ae_train holds them out (Keras' rule: the last rows, before shuffling);
  - the scaling (z-score, population std, a std of 0 read as 1) is fitted
    to the rows trained on, as ae_train fits it;
  - test: the remaining 72 benign rows against all 212 malignant rows;
    the score is the sum of squared errors in the scaled units; AUROC as
    ae_auroc computes it (Mann-Whitney U, ties one half).
PCA keeps the k = 8 leading components of the rows trained on (as many as
the autoencoder's code units). The autoencoder is 30 -> 8 ReLU -> 30
linear, glorot-uniform weights and zero biases (Keras' Dense), MSE, Adam
(lr 0.001, Keras' epsilon 1e-7), batch 32, 200 epochs, reshuffled every
epoch, one model per seed.

  /usr/bin/python3 tests/bench/columns_reference.py [--seeds 1,2,3]
        [--validation-split 0.2] [--epochs 200] [--batch 32] [--hidden 8]
Prints key=value lines: pca_auroc, torch_auroc_<seed>, torch_auroc_mean.
"""
import argparse
import csv
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def auroc(score, positive):
    """Mann-Whitney U / (n+ n-), ranks averaged over ties (ae_auroc's)."""
    score = np.asarray(score, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    order = np.argsort(score, kind='mergesort')
    s = score[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1
        i = j + 1
    r = np.empty(len(s))
    r[order] = ranks
    npos, nneg = positive.sum(), (~positive).sum()
    return (r[positive].sum() - npos * (npos + 1) / 2.0) / (npos * nneg)


def load(path):
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    x = np.array([[float(v) for v in r[:-1]] for r in body])
    malignant = np.array([r[-1] == 'malignant' for r in body])
    return header[:-1], x, malignant


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seeds', default='1,2,3')
    ap.add_argument('--validation-split', type=float, default=0.2)
    ap.add_argument('--epochs', type=int, default=200)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--hidden', type=int, default=8)
    a = ap.parse_args()
    path = os.path.join(ROOT, 'data', 'breast_cancer.csv')
    if not os.path.exists(path):
        print('columns_reference.py: %s missing (run make data)' % path, file=sys.stderr)
        return 1
    _, x, malignant = load(path)
    benign = np.flatnonzero(~malignant)
    n_normal = int(len(benign) * 0.8)                 # 285: trained (and validated) on
    n_fit = int(np.floor(n_normal * (1 - a.validation_split)))
    fit_rows = x[benign[:n_normal]][:n_fit]
    test = np.concatenate([benign[n_normal:], np.flatnonzero(malignant)])
    mean = fit_rows.mean(axis=0)
    std = fit_rows.std(axis=0)
    scale = np.where(std == 0, 1.0, 1.0 / np.where(std == 0, 1.0, std))
    z = lambda v: (v - mean) * scale
    zt, zf = z(x[test]), z(fit_rows)
    # PCA: reconstruction from the k leading components of the fitted rows
    mu = zf.mean(axis=0)
    _, _, vt = np.linalg.svd(zf - mu, full_matrices=False)
    p = vt[:a.hidden]
    rec = (zt - mu) @ p.T @ p + mu
    print('pca_auroc=%.4f' % auroc(((rec - zt) ** 2).sum(axis=1), malignant[test]))
    print('rows_fit=%d rows_val=%d rows_test=%d' % (n_fit, n_normal - n_fit, len(test)))
    try:
        import torch
    except ImportError:
        print('columns_reference.py: no torch; the autoencoder is skipped', file=sys.stderr)
        return 0
    torch.set_num_threads(1)
    res = []
    for seed in [int(s) for s in a.seeds.split(',')]:
        torch.manual_seed(seed)
        g = np.random.default_rng(seed)
        enc = torch.nn.Linear(x.shape[1], a.hidden)
        dec = torch.nn.Linear(a.hidden, x.shape[1])
        for layer in (enc, dec):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
        model = torch.nn.Sequential(enc, torch.nn.ReLU(), dec)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        xt = torch.tensor(zf, dtype=torch.float32)
        for _ in range(a.epochs):
            perm = g.permutation(len(xt))
            for i in range(0, len(xt), a.batch):
                b = xt[perm[i:i + a.batch]]
                opt.zero_grad()
                loss = ((model(b) - b) ** 2).mean()
                loss.backward()
                opt.step()
        with torch.no_grad():
            tt = torch.tensor(zt, dtype=torch.float32)
            err = ((model(tt) - tt) ** 2).sum(dim=1).double().numpy()
        res.append(auroc(err, malignant[test]))
        print('torch_auroc_%d=%.4f' % (seed, res[-1]))
    print('torch_auroc_mean=%.4f' % (sum(res) / len(res)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
