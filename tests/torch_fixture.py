#!/usr/bin/python3
"""Writes tests/fixtures/nn_torch.txt, the numbers tests/core/test_fit.c checks.

    /usr/bin/python3 tests/torch_fixture.py      (torch 1.13, numpy)

The same d-h-d autoencoder as ext/core/ae_net.c, in PyTorch (float32,
autograd for the gradients) from IDENTICAL initial weights and data: this
script reimplements the C random generator (xoshiro256** seeded through
splitmix64, Lemire's bounded integers, Fisher-Yates), so both sides draw the
same glorot kernels, the same data and the same batch order without shipping
them. The fixture records a few initial values (to show the two generators
agree), the loss of each mini-batch before its step, and the final weights'
sums and first values. Adam is written out as Keras / TF 2 computes it
(ResourceApplyAdam), which is not torch.optim.Adam: Keras adds epsilon to
sqrt(v) without correcting v's bias, and folds both corrections into the
step size.

A second, smaller trace runs Adam alone on six parameters with given
gradients, for a check of the optimizer that does not depend on sgemm.
"""
import math
import os
import sys

import numpy as np
import torch

M64 = (1 << 64) - 1


class Rng:
    """xoshiro256**, as aesql_rng in ext/ae_nn.c."""

    def __init__(self, seed):
        x, self.s = seed & M64, []
        for _ in range(4):  # splitmix64
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & M64

    def next(self):
        s = self.s
        r = (self._rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return r

    def uniform(self):  # [0, 1) from the top 53 bits
        return (self.next() >> 11) * 2.0**-53

    def below(self, n):  # Lemire's multiply-shift with rejection
        m = (self.next() >> 32) * n
        lo = m & 0xFFFFFFFF
        if lo < n:
            t = ((1 << 32) - n) % n
            while lo < t:
                m = (self.next() >> 32) * n
                lo = m & 0xFFFFFFFF
        return m >> 32

    def shuffle(self, a):  # Fisher-Yates, from the end
        for i in range(len(a) - 1, 0, -1):
            j = self.below(i + 1)
            a[i], a[j] = a[j], a[i]


def glorot(rng, rows, cols, limit):
    # (2u-1)*limit in double, then rounded to float32, as the C code does
    w = [(2.0 * rng.uniform() - 1.0) * limit for _ in range(rows * cols)]
    return torch.tensor(np.array(w, dtype=np.float32).reshape(rows, cols))


class KerasAdam:
    """Adam as TF 2's ResourceApplyAdam computes it, in float32."""

    def __init__(self, params, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7):
        f32 = np.float32
        self.params, self.t = params, 0
        self.lr, self.b1, self.b2 = float(f32(lr)), float(f32(beta1)), float(f32(beta2))
        self.c1 = torch.tensor(f32(1) - f32(beta1))  # 1-beta1 in float32
        self.c2 = torch.tensor(f32(1) - f32(beta2))
        self.eps = torch.tensor(f32(eps))
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self, grads):
        self.t += 1
        # lr_t in double from the float32 hyperparameters, then float32
        lr_t = torch.tensor(np.float32(
            self.lr * (math.sqrt(1.0 - self.b2**self.t) / (1.0 - self.b1**self.t))))
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.add_((g - m) * self.c1)
                v.add_((g * g - v) * self.c2)
                p.sub_(m * lr_t / (v.sqrt() + self.eps))


def hexf(x):
    return float(x).hex()


def main():
    torch.set_num_threads(1)
    out = []
    seed, d, h, n, batch, epochs = 20240611, 64, 8, 32, 16, 3
    out.append("# written by tests/torch_fixture.py (torch %s, numpy %s); "
               "read by tests/core/test_fit.c" % (torch.__version__, np.__version__))
    out.append("model %d %d %d %d %d %d" % (seed, d, h, n, batch, epochs))

    rng = Rng(seed)
    limit = math.sqrt(6.0 / (d + h))
    w1 = glorot(rng, d, h, limit).requires_grad_()
    w2 = glorot(rng, h, d, limit).requires_grad_()
    b1 = torch.zeros(h, requires_grad=True)
    b2 = torch.zeros(d, requires_grad=True)
    X = torch.tensor(np.array([rng.uniform() for _ in range(n * d)],
                              dtype=np.float32).reshape(n, d))
    out.append("init_w1 " + " ".join(hexf(x) for x in w1.detach().flatten()[:4]))
    out.append("init_w2 " + " ".join(hexf(x) for x in w2.detach().flatten()[-4:]))
    out.append("init_x " + " ".join(hexf(x) for x in X.flatten()[-4:]))

    params = [w1, b1, w2, b2]  # the order of aesql_nn's one buffer
    opt = KerasAdam(params)
    step = 0
    for _ in range(epochs):
        perm = list(range(n))
        rng.shuffle(perm)
        for b0 in range(0, n, batch):
            xb = X[perm[b0:b0 + batch]]
            hid = torch.relu(xb @ w1 + b1)
            y = hid @ w2 + b2
            loss = ((y - xb) ** 2).mean()
            grads = torch.autograd.grad(loss, params)
            out.append("loss %d %.9g" % (step, loss.item()))
            opt.step(grads)
            step += 1
    with torch.no_grad():
        full = ((torch.relu(X @ w1 + b1) @ w2 + b2 - X) ** 2).mean().item()
    out.append("final_loss %.9g" % full)
    for name, p in zip(("w1", "b1", "w2", "b2"), params):
        a = p.detach().double()
        out.append("final %s %.12g %.12g %s" % (
            name, a.sum().item(), (a * a).sum().item(),
            " ".join(hexf(x) for x in p.detach().flatten()[:4])))

    # Adam alone: 6 parameters, 3 steps, lr 0.01; one gradient is tiny
    # (1e-6), where Keras' epsilon placement differs most from torch's.
    p = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.25, -0.125])
    opt = KerasAdam([p], lr=0.01)
    gs = [[0.1, -0.2, 0.0, 3.0, 1e-6, -0.5],
          [0.05, 0.3, -0.01, -3.0, 1e-6, -0.5],
          [-0.2, 0.1, 0.02, 1.0, 1e-6, 0.25]]
    out.append("adam_p0 " + " ".join(hexf(x) for x in p))
    for t, g in enumerate(gs):
        g = torch.tensor(g)
        out.append("adam_g%d " % t + " ".join(hexf(x) for x in g))
        opt.step([g])
        out.append("adam_p%d " % (t + 1) + " ".join(hexf(x) for x in p))

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures", "nn_torch.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (path, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
