"""The C accelerators (pyproject.toml has everything else).  Each is optional: where it cannot be
built, the runtime runs its pure-Python path (which MPRT_ACCEL=0 also selects)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension(name, [src], optional=True, extra_compile_args=["-O2"])
                   for name, src in [("mprt.gc.cmark", "mprt/gc/cmark.c"), ("mprt.shm.cptr", "mprt/shm/cptr.c"),
                                     ("mprt.sched.csched", "mprt/sched/csched.c"),
                                     ("mprt.sched.ctrace", "mprt/sched/ctrace.c")]])
