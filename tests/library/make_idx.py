"""A small MNIST-shaped data set as the four gzip IDX files, for the library tests.

Image i of label k = i mod 10 is a bright bar at a row and a column that depend on k, over faint
noise: something an autoencoder can learn in a few epochs. Usage: make_idx.py DIR [TRAIN] [TEST]
"""
import gzip
import os
import struct
import sys

import numpy as np


def images(n, seed):
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for i in range(n):
        k = i % 10
        out[i, 4 + 2 * k : 6 + 2 * k, 4:24] = 255
        out[i, 4:24, 22 - 2 * k : 24 - 2 * k] = 200
    return out


def write(path, magic, array):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_folder(folder, train_n=600, test_n=200):
    os.makedirs(folder, exist_ok=True)
    for stem, n, seed in (("train", train_n, 1), ("t10k", test_n, 2)):
        write(os.path.join(folder, f"{stem}-images-idx3-ubyte.gz"), 0x803, images(n, seed))
        write(os.path.join(folder, f"{stem}-labels-idx1-ubyte.gz"), 0x801, (np.arange(n) % 10).astype(np.uint8))


if __name__ == "__main__":
    write_folder(sys.argv[1], *(int(a) for a in sys.argv[2:4]))
