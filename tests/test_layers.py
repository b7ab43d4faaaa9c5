"""The layering, kept: mprt's imports read with ast.

Layers, bottom up (a module may import its own layer or lower ones, never a higher one):
  0  leaves: mprt.errors, mprt.settings, mprt.panic, mprt.codeclass, mprt.cluster (the package's
     own module: cluster mode's settings and this node's id; mprt.cluster.* is the face)
  1  mprt.shm     the heap arena, the allocator, pointers, the write barrier
  2  mprt.sched   Ms, Ps, Gs, channels, the scheduler's profiles and traces
  3  mprt.gc      the collector
  4  the face     mprt (package), mprt.boot, mprt.runtime, mprt.sync, cli, bench

Run as a script it prints the figures: python tests/test_layers.py
"""
import ast
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mprt")

LEAVES = {"mprt.errors", "mprt.settings", "mprt.panic", "mprt.codeclass", "mprt.cluster"}
PACKAGES = {"mprt.shm": 1, "mprt.sched": 2, "mprt.gc": 3}


def layer(mod):
    if mod in LEAVES:
        return 0
    for pkg, n in PACKAGES.items():
        if mod == pkg or mod.startswith(pkg + "."):
            return n
    return 4


def modules(root=ROOT):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, os.path.dirname(root))[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[: -len(".__init__")]
                out[rel] = path
    return out


def _resolve(mod, is_pkg, level, name):
    parts = mod.split(".")
    base = parts if is_pkg else parts[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports(mods):
    """(importer, imported module, names taken, top_level) for every import of an mprt module."""
    out = []
    for mod, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        tree = ast.parse(open(path).read(), path)
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mprt"):
                        out.append((mod, a.name, (), id(node) in top))
            elif isinstance(node, ast.ImportFrom):
                src = _resolve(mod, is_pkg, node.level, node.module) if node.level else node.module
                if not src or not src.startswith("mprt"):
                    continue
                for a in node.names:
                    sub = src + "." + a.name
                    if sub in mods:                     # from pkg import module
                        out.append((mod, sub, (), id(node) in top))
                    else:
                        out.append((mod, src, (a.name,), id(node) in top))
    return out


def upward(edges):
    return [(a, b) for a, b, _, _ in edges if layer(b) > layer(a)]


def private_from_imports(edges, mods):
    """`from m import _name` where m is another module (a package's own __init__ re-exports count)."""
    bad = []
    for a, b, names, _ in edges:
        for n in names:
            if n.startswith("_") and not n.startswith("__") and b != a and b in mods:
                bad.append((a, b, n))
    return bad


def cycles(edges, below=4):
    """Strongly connected components of more than one module among modules below layer `below`."""
    g = {}
    for a, b, _, _ in edges:
        if a != b and layer(a) < below and layer(b) < below:
            g.setdefault(a, set()).add(b)
            g.setdefault(b, set())
    index, low, stack, on, comps, i = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = i[0]
        i[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in list(g):
        if v not in index:
            visit(v)
    return comps


def _package(mod):
    for pkg in PACKAGES:
        if mod == pkg or mod.startswith(pkg + "."):
            return pkg
    return mod


def test_no_module_imports_a_higher_layer():
    assert upward(imports(modules())) == []


def test_no_import_cycle_across_packages_below_the_face():
    mods = modules()
    for comp in cycles(imports(mods)):
        assert len({_package(m) for m in comp}) == 1, f"import cycle across packages: {comp}"


def test_no_private_name_taken_from_another_module():
    mods = modules()
    assert private_from_imports(imports(mods), mods) == []


def test_below_the_face_imports_are_at_top_level():
    """A lower layer reaches a higher one only through a hook the higher one registers at import, so
    no function-level import is needed to break a cycle."""
    late = [(a, b) for a, b, _, top in imports(modules()) if not top and layer(a) < 4]
    assert late == []


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else ROOT
    mods = modules(root)
    edges = imports(mods)
    comps = cycles(edges)
    sizes = {m: sum(1 for _ in open(p)) for m, p in mods.items()}
    big = max(sizes, key=sizes.get)
    print(f"modules: {len(mods)}")
    print(f"upward imports: {len(upward(edges))}")
    for a, b in upward(edges):
        print(f"  {a} -> {b}")
    print(f"cycles below the face: {[len(c) for c in comps]}")
    for c in comps:
        print("  " + " ".join(c))
    priv = private_from_imports(edges, mods)
    print(f"private from-imports across modules: {len(priv)}")
    for a, b, n in priv:
        print(f"  {a}: from {b} import {n}")
    print(f"function-level imports: {sum(1 for e in edges if not e[3])} "
          f"(below the face: {sum(1 for e in edges if not e[3] and layer(e[0]) < 4)})")
    print(f"largest module: {big} {sizes[big]} lines")
