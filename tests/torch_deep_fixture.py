#!/usr/bin/python3
"""Writes tests/fixtures/deep_torch.txt, PyTorch's numbers for the deep
model, which tests/core/test_torch_deep.c checks libaesql against.

    /usr/bin/python3 tests/torch_deep_fixture.py      (torch 1.13, numpy)

The model is the issue's: 784-128-32-128-784, ELU on the three hidden
layers, a sigmoid output, mean squared error over every element of the
batch, built here from torch.nn.Linear, torch.nn.ELU, torch.nn.Sigmoid and
torch.nn.MSELoss in float32, with autograd for the gradients: an
implementation of the forward and backward passes that shares no code
with ext/core. Adam is Keras' (tests/torch_fixture.py's KerasAdam: eps
added to sqrt(v) uncorrected, both bias corrections folded into lr_t), as
ext/core/ae_adam.c computes it; torch.optim.Adam would differ.

Nothing is shipped but the results: the weights and the data come from
libaesql's own generator (tests/torch_fixture.py's Rng, xoshiro256**
seeded through splitmix64), drawn in this order, which the C test repeats:

  1. the kernels, as aesql_net_glorot draws them: layer by layer, each
     row-major (W[i*nOut + k] joins input i to unit k), each weight
     (2u - 1) * sqrt(6/(nIn + nOut)) in double, rounded to float;
  2. the biases (aesql_net_glorot leaves them zero; nonzero ones make the
     forward pass use them): layer by layer, each b[k] = (2u - 1) * 0.1
     in double, rounded to float;
  3. the data, ROWS rows of 784 bytes, row-major, each pixel one
     below(1275) draw k: the byte k + 1 when k < 255, else 0 (so 20% of
     the pixels are non-zero, uniform over 1..255, MNIST's density); the
     float of byte b is b/255 in float32, libaesql's rule (ae_data.h).

Step t (0-based) trains on rows [64t, 64t + 64), no shuffle. For every
step the fixture has the loss before the step, then, after it, the sum
and the sum of squares (in double) of all parameters and the values at a
few fixed offsets of libaesql's parameter buffer; for step 0 also the
gradient's sum of squares and largest magnitude per block (W and b of
each layer) and its values at the same offsets; after the last step, the
loss on all ROWS rows. torch.nn.Linear keeps W transposed (out x in): the
values are written in libaesql's layout.

Floats are written as hexadecimal (exact); the losses, which are float32
here, with 9 significant digits (exact for a float); the sums, in double,
with 17.
"""
import math
import os
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # no tests/__pycache__ from the import below
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fixture import KerasAdam, Rng  # noqa: E402  (same generator, same Adam)

SEED = 20250301
WIDTHS = [784, 128, 32, 128, 784]
ACTS = ["elu", "elu", "elu", "sigmoid"]
ROWS, BATCH, STEPS = 320, 64, 5
BIAS = 0.1
LR, BETA1, BETA2, EPS = 0.001, 0.9, 0.999, 1e-7


def hexf(x):
    return float(x).hex()


def sample_offsets():
    """Offsets into libaesql's buffer: per layer the first, a middle and
    the last weight, the first and the last bias."""
    out, off = [], 0
    for l in range(len(WIDTHS) - 1):
        nin, nout = WIDTHS[l], WIDTHS[l + 1]
        nw = nin * nout
        out += [off, off + (nw // 2 + 37) % nw, off + nw - 1, off + nw, off + nw + nout - 1]
        off += nw + nout
    return out


def main():
    torch.set_num_threads(1)
    rng = Rng(SEED)
    nl = len(WIDTHS) - 1

    # 1, 2: kernels then biases, in libaesql's layout (nIn x nOut)
    W = []
    for l in range(nl):
        nin, nout = WIDTHS[l], WIDTHS[l + 1]
        limit = math.sqrt(6.0 / (nin + nout))
        w = [(2.0 * rng.uniform() - 1.0) * limit for _ in range(nin * nout)]
        W.append(np.array(w, dtype=np.float32).reshape(nin, nout))
    B = []
    for l in range(nl):
        B.append(np.array([(2.0 * rng.uniform() - 1.0) * BIAS
                           for _ in range(WIDTHS[l + 1])], dtype=np.float32))
    # 3: the data
    px = []
    for _ in range(ROWS * WIDTHS[0]):
        k = rng.below(1275)
        px.append(k + 1 if k < 255 else 0)
    X8 = np.array(px, dtype=np.uint8).reshape(ROWS, WIDTHS[0])
    X = torch.tensor(X8.astype(np.float32) / np.float32(255))  # float32 b/255

    mods, lins = [], []
    for l in range(nl):
        lin = torch.nn.Linear(WIDTHS[l], WIDTHS[l + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W[l].T))  # torch: out x in
            lin.bias.copy_(torch.tensor(B[l]))
        lins.append(lin)
        mods += [lin, torch.nn.ELU() if ACTS[l] == "elu" else torch.nn.Sigmoid()]
    net = torch.nn.Sequential(*mods)
    mse = torch.nn.MSELoss()  # mean over all n*d elements
    params = []
    for lin in lins:
        params += [lin.weight, lin.bias]

    def flat(ts):
        """Weight-and-bias tensors (torch's layout) as libaesql's buffer."""
        parts = []
        for l in range(nl):
            parts += [ts[2 * l].detach().t().contiguous().flatten(),
                      ts[2 * l + 1].detach().flatten()]
        return torch.cat(parts)

    offs = sample_offsets()
    out = ["# written by tests/torch_deep_fixture.py (torch %s, numpy %s, "
           "python %s); read by tests/core/test_torch_deep.c"
           % (torch.__version__, np.__version__, sys.version.split()[0]),
           "# weights and data from libaesql's generator (see the script); "
           "float32 torch.nn.Linear/ELU/Sigmoid/MSELoss, autograd, Keras' Adam",
           "model %d %d %d %d %.17g %d" % (SEED, ROWS, BATCH, STEPS, BIAS, 1275),
           "widths " + " ".join(str(w) for w in WIDTHS),
           "acts " + " ".join(ACTS),
           "adam %.9g %.9g %.9g %.9g" % (LR, BETA1, BETA2, EPS)]
    p0 = flat(params)
    out.append("nparam %d" % p0.numel())
    out.append("init_sum %.17g %.17g" % (p0.double().sum().item(),
                                         (p0.double() ** 2).sum().item()))
    out.append("init_w " + " ".join(hexf(x) for x in W[0].flatten()[:4]))
    out.append("init_b " + " ".join(hexf(x) for x in B[nl - 1][-4:]))
    out.append("init_x " + " ".join(str(int(b)) for b in X8.flatten()[-8:]))
    out.append("init_nz %d" % int((X8 != 0).sum()))
    out.append("samples " + " ".join(str(o) for o in offs))
    out.append("init_samples " + " ".join(hexf(p0[o]) for o in offs))

    opt = KerasAdam(params, lr=LR, beta1=BETA1, beta2=BETA2, eps=EPS)
    for t in range(STEPS):
        xb = X[t * BATCH:(t + 1) * BATCH]
        loss = mse(net(xb), xb)
        grads = torch.autograd.grad(loss, params)
        if t == 0:
            g = flat(grads)
            off = 0
            for l in range(nl):
                nw, nb = WIDTHS[l] * WIDTHS[l + 1], WIDTHS[l + 1]
                for name, a in (("w", g[off:off + nw]), ("b", g[off + nw:off + nw + nb])):
                    a = a.double()
                    out.append("grad0 %d %s %.17g %.17g" % (
                        l, name, (a * a).sum().item(), a.abs().max().item()))
                off += nw + nb
            out.append("grad0_samples " + " ".join(hexf(g[o]) for o in offs))
        opt.step(grads)
        p = flat(params).double()
        out.append("step %d %.9g %.17g %.17g %s" % (
            t, loss.item(), p.sum().item(), (p * p).sum().item(),
            " ".join(hexf(p[o]) for o in offs)))
    with torch.no_grad():
        out.append("final_loss %.9g" % mse(net(X), X).item())

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures", "deep_torch.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d lines)" % (path, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
