#!/usr/bin/env python3
"""Write a Fashion-MNIST subset in the IDX format the fashion-mnist plugin
reads, a dataset directory for its `path`: the first TRAIN training images
and the first TEST test images of Debian's dataset-fashion-mnist (both
splits keep the dataset's own order, which is class-balanced to within a few
percent); a split asked for more than the source holds gets all of it.

usage: fmnist_subset.py OUTDIR [TRAIN [TEST [SRC]]]   (defaults: 10000 10000
       /usr/share/datasets/fashion-mnist), e.g.
    python3 bench/fmnist_subset.py data/fmnist-5k 5000 10000"""
import gzip, os, struct, sys

def subset(src, dst, n):
    with gzip.open(src, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    dims = (magic & 0xFF) - 1  # dimensions after the count
    head = 8 + 4 * dims
    per = 1
    for i in range(dims):
        per *= struct.unpack(">I", data[8 + 4 * i:12 + 4 * i])[0]
    n = min(n, count)
    out = data[:4] + struct.pack(">I", n) + data[8:head] + data[head:head + n * per]
    tmp = dst + ".tmp"
    with gzip.open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, dst)
    return n

def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    ntrain = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    ntest = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    src = sys.argv[4] if len(sys.argv) > 4 else "/usr/share/datasets/fashion-mnist"
    os.makedirs(out, exist_ok=True)
    written = {}
    for split, n in (("train", ntrain), ("t10k", ntest)):
        for kind in ("images-idx3", "labels-idx1"):
            name = "%s-%s-ubyte.gz" % (split, kind)
            written[split] = subset(os.path.join(src, name), os.path.join(out, name), n)
    print("%s: %d train, %d test images" % (out, written["train"], written["t10k"]))

if __name__ == "__main__":
    main()
