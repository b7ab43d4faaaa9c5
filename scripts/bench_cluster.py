"""Cluster mode (MPRT_CLUSTER) against Ray and Dask on the same split of this machine, peers in the
same run (the machine is shared and noisy: compare the ratios).

    python scripts/bench_cluster.py [--json FILE] [--rounds N] [only ...]

    rtt      a channel round trip across nodes (main sends on a channel, a goroutine on node 1
             receives it and answers on another; both channels are main's, so each round trip is
             two requests from node 1 to node 0), against a Ray actor method call's round trip
             from the driver to an actor on the other node
    fanout   20k goroutines `go(work, wg, i)` (a little arithmetic each) over 2 nodes of 1 CPU,
             against 20k Ray tasks on the same 2-node Ray cluster (the rate, from the first go or
             .remote() to the last result)
    pool     16 CPU-bound jobs (~60 ms of pure Python each) on 1 node and on 2 nodes of 1 CPU each:
             mprt goroutines (local:1 pinned to one CPU, local:2), Ray tasks (1 and 2 Ray nodes of
             1 CPU, the SPREAD strategy), Dask (a LocalCluster of 1 and 2 single-threaded worker processes): the speedup
    local1   the same program (the fan-out) with MPRT_CLUSTER unset and with local:1

mprt's figures time main's work, not the cluster's start (reported apart: `start`).  Each mprt
figure comes from a fresh program (a subprocess).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)
POOL_JOBS, POOL_ITERS = 16, 600_000


def spin(n):
    s = 0
    for i in range(n):
        s += i * i % 7
    return s


# ---- the mprt programs (bench_cluster.py --child CASE ARG...) ----

def _child(case, args):
    import mprt
    from mprt import sched

    t_boot = time.perf_counter()

    def candidate(tok, fn, a):
        t = time.perf_counter() + 0.03
        while time.perf_counter() < t:
            pass
        if sched.current().node == 1 and mprt.select(tok.recv, mprt.default)[0] == 0:
            fn(*a)

    def on_node1(fn, *a):
        tok = mprt.chan(1)
        tok.send(True)
        while len(tok):
            for _ in range(8):
                mprt.go(candidate, tok, fn, a)
            mprt.sleep(0.3)

    def echo(ping, pong):
        for v in ping:
            pong.send(v)

    def work(wg, i):
        s = 0
        for k in range(50):
            s += k * i
        wg.done()

    def job(wg, res, n):
        res.send(spin(n))
        wg.done()

    def main():
        start = time.perf_counter() - t_boot
        out = {"start": start}
        if case == "rtt":
            n = int(args[0])
            ping, pong = mprt.chan(), mprt.chan()
            on_node1(echo, ping, pong)
            for i in range(20):
                ping.send(i)
                pong.recv()
            t = time.perf_counter()
            for i in range(n):
                ping.send(i)
                pong.recv()
            out["rtt_us"] = (time.perf_counter() - t) / n * 1e6
            ping.close()
        elif case in ("fanout", "local1"):
            n = int(args[0])
            wg = mprt.sync.WaitGroup()
            t = time.perf_counter()
            wg.add(n)
            for i in range(n):
                mprt.go(work, wg, i)
            wg.wait()
            out["rate"] = n / (time.perf_counter() - t)
        elif case == "pool":
            wg = mprt.sync.WaitGroup()
            res = mprt.chan(POOL_JOBS)
            t = time.perf_counter()
            wg.add(POOL_JOBS)
            for _ in range(POOL_JOBS):
                mprt.go(job, wg, res, POOL_ITERS)
            wg.wait()
            out["secs"] = time.perf_counter() - t
        print(json.dumps(out), flush=True)

    mprt.run(main)


def mprt_run(case, *args, cluster="local:2", cpus=None):
    env = dict(os.environ)
    env.pop("GOMAXPROCS", None)
    if cluster:
        env["MPRT_CLUSTER"] = cluster
    else:
        env.pop("MPRT_CLUSTER", None)
    cmd = [sys.executable, HERE, "--child", case, *map(str, args)]
    if cpus is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cpus))] + cmd
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if p.returncode:
        raise RuntimeError(f"{case} under {cluster}: exit status {p.returncode}\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall"] = time.perf_counter() - t
    return r


# ---- the peers ----

class RayCluster:
    def __init__(self, nodes):
        import ray
        from ray.cluster_utils import Cluster
        self.ray = ray
        self.c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                              "object_store_memory": 80 << 20})
        for _ in range(nodes - 1):
            self.c.add_node(num_cpus=1, object_store_memory=80 << 20)
        ray.init(address=self.c.address, logging_level="ERROR", log_to_driver=False)
        self.c.wait_for_nodes()

    def close(self):
        self.ray.shutdown()
        self.c.shutdown()


def ray_rtt(n):
    rc = RayCluster(2)
    ray = rc.ray
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        me = ray.get_runtime_context().get_node_id()
        other = next(x["NodeID"] for x in ray.nodes() if x["NodeID"] != me)

        @ray.remote(num_cpus=0)
        class Echo:
            def echo(self, v):
                return v
        a = Echo.options(scheduling_strategy=NodeAffinitySchedulingStrategy(other, soft=False)).remote()
        for i in range(20):
            ray.get(a.echo.remote(i))
        t = time.perf_counter()
        for i in range(n):
            ray.get(a.echo.remote(i))
        return (time.perf_counter() - t) / n * 1e6
    finally:
        rc.close()


def _rwork(i):
    s = 0
    for k in range(50):
        s += k * i
    return s


def ray_fanout(n):
    rc = RayCluster(2)
    ray = rc.ray
    try:
        f = ray.remote(num_cpus=1)(_rwork)
        ray.get([f.remote(i) for i in range(200)])        # workers up
        t = time.perf_counter()
        ray.get([f.remote(i) for i in range(n)])
        return n / (time.perf_counter() - t)
    finally:
        rc.close()


def ray_pool(nodes):
    rc = RayCluster(nodes)
    ray = rc.ray
    try:
        f = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(spin)     # its best setup: one per node
        ray.get([f.remote(10) for _ in range(4 * nodes)])
        t = time.perf_counter()
        ray.get([f.remote(POOL_ITERS) for _ in range(POOL_JOBS)])
        return time.perf_counter() - t
    finally:
        rc.close()


def dask_pool(workers):
    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as c, \
            Client(c) as cl:
        cl.gather(cl.map(spin, [10] * (4 * workers), pure=False))
        t = time.perf_counter()
        cl.gather(cl.map(spin, [POOL_ITERS] * POOL_JOBS, pure=False))
        return time.perf_counter() - t


# ---- the table ----

def bench(only, rounds):
    res = {}
    med = statistics.median
    cpus = sorted(os.sched_getaffinity(0))
    if "rtt" in only:
        m = [mprt_run("rtt", 200) for _ in range(rounds)]
        r = [ray_rtt(200) for _ in range(rounds)]
        res["rtt"] = {"mprt_us": med(x["rtt_us"] for x in m), "ray_us": med(r), "start_s": med(x["start"] for x in m)}
    if "fanout" in only:
        m = [mprt_run("fanout", 20000) for _ in range(rounds)]
        r = [ray_fanout(20000) for _ in range(rounds)]
        res["fanout"] = {"mprt_per_s": med(x["rate"] for x in m), "ray_per_s": med(r)}
    if "pool" in only:
        m1 = [mprt_run("pool", cluster="local:1", cpus=cpus[:1])["secs"] for _ in range(rounds)]
        m2 = [mprt_run("pool", cluster="local:2")["secs"] for _ in range(rounds)]
        r1 = [ray_pool(1) for _ in range(rounds)]
        r2 = [ray_pool(2) for _ in range(rounds)]
        d1 = [dask_pool(1) for _ in range(rounds)]
        d2 = [dask_pool(2) for _ in range(rounds)]
        res["pool"] = {k: {"1": med(a), "2": med(b), "speedup": med(a) / med(b)}
                       for k, a, b in (("mprt", m1, m2), ("ray", r1, r2), ("dask", d1, d2))}
    if "local1" in only:
        u, l1 = [], []
        for _ in range(rounds):          # alternating, so that the machine's drift hits both alike
            u.append(mprt_run("local1", 20000, cluster=None)["rate"])
            l1.append(mprt_run("local1", 20000, cluster="local:1")["rate"])
        res["local1"] = {"unset_per_s": med(u), "local1_per_s": med(l1), "ratio": med(u) / med(l1)}
    return res


def show(res):
    if "rtt" in res:
        r = res["rtt"]
        print("Cross-node round trip (main <-> a goroutine on node 1; Ray: driver <-> an actor on node 1)")
        print(f"  mprt channel round trip  {r['mprt_us']:9.0f} us   (2 requests node 1 -> node 0)")
        print(f"  Ray actor call           {r['ray_us']:9.0f} us   ratio {r['mprt_us'] / r['ray_us']:.2f}x")
        print(f"  mprt cluster start (local:2, until main runs): {r['start_s']:.1f} s")
    if "fanout" in res:
        r = res["fanout"]
        print("20k-way fan-out over 2 nodes of 1 CPU (first go / .remote() to the last done)")
        print(f"  mprt go(work, wg, i)  {r['mprt_per_s']:10.0f}/s")
        print(f"  Ray tasks             {r['ray_per_s']:10.0f}/s   mprt/Ray {r['mprt_per_s'] / r['ray_per_s']:.2f}x")
    if "pool" in res:
        print(f"{POOL_JOBS} CPU-bound jobs, 1 node vs 2 nodes of 1 CPU (seconds, speedup)")
        for k, r in res["pool"].items():
            print(f"  {k:5}  1 node {r['1']:6.2f}   2 nodes {r['2']:6.2f}   speedup {r['speedup']:.2f}x")
    if "local1" in res:
        r = res["local1"]
        print("The same fan-out, MPRT_CLUSTER unset vs local:1 (goroutines/s)")
        print(f"  unset {r['unset_per_s']:10.0f}   local:1 {r['local1_per_s']:10.0f}   ratio {r['ratio']:.2f}x")


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        return _child(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    only = set(a.only or ["rtt", "fanout", "pool", "local1"])
    res = bench(only, a.rounds)
    show(res)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
