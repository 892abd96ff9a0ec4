"""Reading IDX files (MNIST's format) into numpy arrays, for the PyTorch
peers of the bench (torch_tutorial.py, torch_oneclass.py)."""
import numpy as np


def read_idx(path):
    """An IDX file as a numpy array: magic 0x0000TTDD (type, dims), then
    `dims` big-endian uint32 sizes, then the data (only ubyte, 0x08, here)."""
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) != 4 or head[0] != 0 or head[1] != 0:
            raise ValueError("%s: not an IDX file" % path)
        if head[2] != 0x08:
            raise ValueError("%s: IDX type 0x%02x, expected ubyte" % (path, head[2]))
        ndim = head[3]
        dims = tuple(int(d) for d in np.frombuffer(f.read(4 * ndim), dtype=">u4"))
        data = np.fromfile(f, dtype=np.uint8)  # writable, unlike frombuffer
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for shape %s" % (path, data.size, dims))
    return data.reshape(dims)
