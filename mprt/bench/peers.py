"""The peers mprt is measured against, behind one small interface.

    pool   multiprocessing.Pool (fork)           ppe    concurrent.futures.ProcessPoolExecutor (fork)
    loky   loky's reusable executor              ray    Ray tasks (ray.remote), a local cluster
    dask   dask.distributed, a LocalCluster of processes, one thread each

Every peer is started with `workers` worker processes and warmed (each worker has run a task)
before anything is timed, as mprt's Ms are.  `map` hands out every task at once, the way each
library is meant to be fed; `each` submits tasks one call at a time (Pool: map with chunksize=1, the
closest it has); `call` is one task's round trip; `share` makes a large object available to tasks
the library's own way (Ray's object store, Dask's scatter; the others pickle it into each task);
`chunks` gives each task of a split array what it needs: the pickling peers send each task its own
chunk only, Ray and Dask the shared whole with the bounds.
"""
import importlib.util
import multiprocessing as mp

ALL = ("pool", "ppe", "loky", "ray", "dask")
_MODULE = {"loky": "loky", "ray": "ray", "dask": "distributed"}


def missing(name):
    """Why a peer cannot run here, or None."""
    mod = _MODULE.get(name)
    if mod and importlib.util.find_spec(mod) is None:
        return f"{name}: not installed (pip install -e '.[bench]' adds loky, ray and dask)"
    return None


def start(name, workers):
    cls = {"pool": _Pool, "ppe": _PPE, "loky": _Loky, "ray": _Ray, "dask": _Dask}[name]
    p = cls(workers)
    p.map(_warm, [()] * (2 * workers))
    return p


def _warm():
    return 0


class _Pool:
    def __init__(self, workers):
        self.pool = mp.get_context("fork").Pool(workers)

    def map(self, fn, args):
        return self.pool.starmap(fn, args)

    def each(self, fn, args):
        return self.pool.starmap(fn, args, chunksize=1)

    def call(self, fn, *a):
        return self.pool.apply(fn, a)

    def share(self, obj):
        return obj

    def chunks(self, arr, bounds):
        return [(arr[lo:hi], 0, hi - lo) for lo, hi in bounds]

    def close(self):
        self.pool.close()
        self.pool.join()


class _PPE:
    def __init__(self, workers):
        from concurrent.futures import ProcessPoolExecutor
        self.ex = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))

    def map(self, fn, args):
        return [f.result() for f in [self.ex.submit(fn, *a) for a in args]]

    each = map

    def call(self, fn, *a):
        return self.ex.submit(fn, *a).result()

    def share(self, obj):
        return obj

    chunks = _Pool.chunks

    def close(self):
        self.ex.shutdown()


class _Loky(_PPE):
    def __init__(self, workers):
        from loky import get_reusable_executor
        self.ex = get_reusable_executor(max_workers=workers, reuse=False)


class _Ray:
    def __init__(self, workers):
        import logging

        import ray
        self.ray = ray
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=False)
        self.fns = {}

    def _remote(self, fn):
        r = self.fns.get(fn)
        if r is None:
            r = self.fns[fn] = self.ray.remote(fn)
        return r

    def map(self, fn, args):
        r = self._remote(fn)
        return self.ray.get([r.remote(*a) for a in args])

    each = map

    def call(self, fn, *a):
        return self.ray.get(self._remote(fn).remote(*a))

    def share(self, obj):
        return self.ray.put(obj)       # tasks get it zero-copy from the object store

    def chunks(self, arr, bounds):
        ref = self.share(arr)
        return [(ref, lo, hi) for lo, hi in bounds]

    def close(self):
        self.ray.shutdown()


class _Dask:
    def __init__(self, workers):
        from distributed import Client, LocalCluster
        self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, silence_logs=50)
        self.client = Client(self.cluster)

    def map(self, fn, args):
        return self.client.gather([self.client.submit(fn, *a, pure=False) for a in args])

    each = map

    def call(self, fn, *a):
        return self.client.submit(fn, *a, pure=False).result()

    def share(self, obj):
        return self.client.scatter(obj, broadcast=True)

    def chunks(self, arr, bounds):
        fut = self.share(arr)
        return [(fut, lo, hi) for lo, hi in bounds]

    def close(self):
        self.client.close()
        self.cluster.close()
