"""The benchmarks game's mandelbrot, a CPU-bound parallel kernel over shared-heap slices: the
N x N bitmap is one heap slice; GOMAXPROCS goroutines take rows from a channel and write their
bits straight into it (zero-copy numpy views of the same bytes in every process); main writes the
PBM image, or its checksum.

    mprt run examples/mandelbrot.py [N] [--out FILE.pbm]      (default N=1000)
"""
import hashlib
import sys

import numpy as np

import mprt
from mprt import runtime, sched

ITER = 50
LIMIT2 = 4.0


def row_bits(y, n):
    """One row of the set, 8 pixels to a byte, most significant first (the game's PBM rows)."""
    ci = 2.0 * y / n - 1.0
    cr = 2.0 * np.arange(n) / n - 1.5
    zr = np.zeros(n)
    zi = np.zeros(n)
    inside = np.ones(n, dtype=bool)
    for _ in range(ITER):
        zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
        inside &= zr * zr + zi * zi <= LIMIT2
        np.clip(zr, -4, 4, out=zr)             # escaped points stay escaped, without overflow
        np.clip(zi, -4, 4, out=zi)
    return np.packbits(inside)


def worker(rows, bitmap, n, done):
    bpr = (n + 7) // 8
    img = bitmap.np
    count = 0
    for y in rows:
        img[y * bpr:(y + 1) * bpr] = row_bits(y, n)
        count += 1
    done.send((sched.current().mid, count))


def main(n=1000, out=None):
    bpr = (n + 7) // 8
    bitmap = mprt.make(np.uint8, n * bpr)
    rows = mprt.chan(n)
    for y in range(n):
        rows.send(y)
    rows.close()
    done = mprt.chan()
    k = runtime.GOMAXPROCS(0)
    for _ in range(k):
        mprt.go(worker, rows, bitmap, n, done)
    per_m = {}
    for _ in range(k):
        mid, c = done.recv()
        per_m[mid] = per_m.get(mid, 0) + c
    data = bytes(bitmap.np)
    if out:
        with open(out, "wb") as f:
            f.write(b"P4\n%d %d\n" % (n, n) + data)
    inside = int(np.unpackbits(bitmap.np).sum())
    print(f"mandelbrot {n}x{n}: {inside} points inside, md5 {hashlib.md5(data).hexdigest()}")
    print("rows by M: " + ", ".join(f"M{m}: {c}" for m, c in sorted(per_m.items())))


if __name__ == "__main__":
    args = sys.argv[1:]
    path = None
    if "--out" in args:
        i = args.index("--out")
        path = args[i + 1]
        del args[i:i + 2]
    mprt.run(main, int(args[0]) if args else 1000, path)
