"""Map-reduce over one large shared numpy array: the data is made once in the shared heap; each
map goroutine reads its chunk zero-copy (nothing is pickled or copied to the workers) and writes
a histogram into a heap slice of its own; main reduces the histograms and checks them with numpy.

    mprt run examples/mapreduce.py [MILLIONS]      (default 20 million float64, 160 MB)
"""
import sys
import time

import numpy as np

import mprt
from mprt import runtime

BINS = 16


def mapper(data, lo, hi, hist, done):
    x = data.np[lo:hi]                                  # a view of the shared bytes
    h, _ = np.histogram(x, bins=BINS, range=(0.0, 1.0))
    hist.np[:] = h
    done.send(hi - lo)


def main(millions=20):
    n = int(millions * 1_000_000)
    t = time.perf_counter()
    data = mprt.make(np.float64, n)
    rng = np.random.default_rng(1)
    data.np[:] = rng.random(n)
    made = time.perf_counter() - t
    chunks = 4 * runtime.GOMAXPROCS(0)
    done = mprt.chan(chunks)
    hists = []
    t = time.perf_counter()
    for k in range(chunks):
        lo, hi = k * n // chunks, (k + 1) * n // chunks
        h = mprt.make(np.int64, BINS)
        hists.append(h)
        mprt.go(mapper, data, lo, hi, h, done)
    seen = sum(done.recv() for _ in range(chunks))
    total = np.sum([h.np for h in hists], axis=0)
    took = time.perf_counter() - t
    want, _ = np.histogram(data.np, bins=BINS, range=(0.0, 1.0))
    print(f"{n:,} float64 ({n * 8 >> 20} MiB) in the shared heap, made in {made:.2f} s")
    print(f"map over {chunks} chunks on {runtime.GOMAXPROCS(0)} Ps, reduce in main: {took:.2f} s, "
          f"{seen:,} values seen")
    print("histogram: " + " ".join(str(int(c)) for c in total))
    print("matches numpy on the whole array:", bool((total == want).all()))


if __name__ == "__main__":
    mprt.run(main, float(sys.argv[1]) if len(sys.argv) > 1 else 20)
