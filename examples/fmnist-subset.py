#!/usr/bin/python3
"""Write the first N training images of Fashion-MNIST (Debian's
dataset-fashion-mnist) as a dataset directory for the fashion-mnist plugin's
`path`, with the whole test split: a training subset for short benchmark
runs.

    python3 examples/fmnist-subset.py 6000 results/fmnist-6k
"""
import gzip
import os
import struct
import sys

SRC = "/usr/share/datasets/fashion-mnist"


def copy_idx(src, dst, n):
    with gzip.open(src, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    if n > count:
        sys.exit("%s holds %d items, fewer than %d" % (src, count, n))
    item = 1
    for d in dims[1:]:
        item *= d
    head = struct.pack(">I", magic) + struct.pack(">I", n) + data[8:4 + 4 * ndim]
    body = data[4 + 4 * ndim: 4 + 4 * ndim + n * item]
    tmp = dst + ".tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(head + body)
    os.replace(tmp, dst)


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.exit("usage: fmnist-subset.py N_TRAIN OUT_DIR")
    n, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for kind in ("images-idx3", "labels-idx1"):
        copy_idx("%s/train-%s-ubyte.gz" % (SRC, kind), "%s/train-%s-ubyte.gz" % (out, kind), n)
        copy_idx("%s/t10k-%s-ubyte.gz" % (SRC, kind), "%s/t10k-%s-ubyte.gz" % (out, kind), 10000)


if __name__ == "__main__":
    main()
