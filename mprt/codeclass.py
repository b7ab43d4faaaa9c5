"""Code known by what it is: which Python code a signal may stop or preempt.

A signal handler (SIGURG: a stop of the world, or a preemption) runs between two bytecodes of
whatever frame was executing.  Whether it may act there depends on every frame on the stack, at
any depth, not on where the code sits:

    HEAP      the allocator's books, the write barrier, pointer handles, heap messages: code that
              holds raw heap addresses in Python locals or updates the heap's shared books.  Never
              stopped (a whole GC cycle could sweep an address it holds) and never preempted.
    RUNTIME   the scheduler, channels, sync, the collector's side of each process, the facade.
              May be stopped for the world (it holds no raw address across a safe point and its
              locks are counted) but never preempted: it keeps process-local state (run queues,
              G-slot caches, id batches) that another goroutine of the same M would see half done.
    LOCKING   code of the standard library that holds a Python-level lock while it runs (the import
              machinery, logging, threading).  Stopping is fine; preempting would switch to another
              goroutine of the same OS thread that may take the same lock: a deadlock.
    BASE      the frame a goroutine's own code is called from (the goroutine's entry).  The walk
              ends there: frames further out belong to the scheduler, not to the goroutine.
    USER      everything else: preemptible.

Each module of the runtime says what its code is with `mark(__name__, KIND)` at its end; every
code object defined in it (functions, methods, properties, nested functions and closures, found
through co_consts) is entered in one table keyed by the code object's identity (id(): hashing a
code object hashes its constants and names, 2-7 us a frame on a cold cache, which made a stop's
walk cost ~15 us; and two code objects of equal content are still two codes).  The table keeps
every code it names alive, so an id is never reused while it is entered.  `mark_base(fn)` overrides one
function; `mark_root(fn)` names mprt.run, where M0's walk ends.  Nothing here depends on a file name
or a call depth, so code can move.  The standard library's LOCKING code is entered on first use (`_stdlib`).  A test checks
that every runtime module is marked (tests/test_trust.py).
"""
import sys
import types

USER, BASE, LOCKING, RUNTIME, HEAP = 0, 1, 2, 3, 4

_kind = {}                 # id(code object) -> kind; absent: USER
_alive = {}                # id(code object) -> the code object: entered ids stay unique
_marked_modules = set()    # names of the modules that called mark()
_roots = set()             # ids of the code objects of mprt.run (mark_root)

_LOCKING_MODULES = ("importlib._bootstrap", "importlib._bootstrap_external", "logging", "threading",
                    "queue", "concurrent.futures._base")


def _codes(obj, seen):
    """Every code object reachable from obj: its own, and nested ones through co_consts."""
    out = []
    stack = []
    if isinstance(obj, types.CodeType):
        stack.append(obj)
    elif isinstance(obj, (staticmethod, classmethod)):
        stack.extend(_codes(obj.__func__, seen))
    elif isinstance(obj, property):
        for f in (obj.fget, obj.fset, obj.fdel):
            if f is not None:
                stack.extend(_codes(f, seen))
    elif isinstance(obj, types.FunctionType):
        stack.append(obj.__code__)
    while stack:
        c = stack.pop()
        if id(c) in seen:
            continue
        seen.add(id(c))
        out.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return out


def _module_codes(mod):
    seen = set()
    out = []
    g = vars(mod)
    names = {mod.__name__, g.get("__name__")}
    # a function belongs to the module whose globals it runs in (the frozen import machinery's
    # functions say "_frozen_importlib" in __module__ but live in importlib._bootstrap)
    for v in list(g.values()):
        if isinstance(v, type) and (v.__module__ in names or any(
                getattr(f, "__globals__", None) is g for f in vars(v).values())):
            for a in list(vars(v).values()):
                out.extend(_codes(a, seen))
        elif isinstance(v, types.FunctionType) and v.__globals__ is g:
            out.extend(_codes(v, seen))
    return out


def _enter(code, kind):
    _alive[id(code)] = code
    _kind[id(code)] = kind


def mark(modname, kind):
    """Enter every code object defined in module modname as `kind` (call it at the module's end)."""
    for c in _module_codes(sys.modules[modname]):
        if _kind.get(id(c)) != BASE:
            _enter(c, kind)
    _marked_modules.add(modname)


def mark_base(fn):
    """fn calls a goroutine's own code; the walk of a goroutine's frames ends at it."""
    _enter(fn.__code__, BASE)
    return fn


def mark_root(fn):
    """fn is where the runtime starts on M0 (mprt.run): a walk of M0's goroutine frames ends there,
    so the frames that called mprt.run are not the goroutine's."""
    _alive[id(fn.__code__)] = fn.__code__
    _roots.add(id(fn.__code__))
    return fn


def is_root(code):
    return id(code) in _roots


def marked_modules():
    return frozenset(_marked_modules)


def kind_of(code):
    return _kind.get(id(code), USER)


_stdlib_done = set()
_nmodules = [0]        # len(sys.modules) at the last look: nothing new imported, nothing to enter


def _stdlib():
    """Enter the standard library's LOCKING code (modules imported since the last look)."""
    _nmodules[0] = len(sys.modules)
    for name in _LOCKING_MODULES:
        if name not in _stdlib_done:
            mod = sys.modules.get(name)
            if mod is not None:
                _stdlib_done.add(name)
                for c in _module_codes(mod):
                    if id(c) not in _kind:
                        _enter(c, LOCKING)


def prime():
    """Enter the standard library's LOCKING code imported so far (~15 ms the first time): done at
    boot, so a signal handler pays only for modules imported later."""
    _stdlib()


def in_heap_code(frame):
    """The outermost frame of heap code on the stack, or None (the stop waits for it to return)."""
    found = None
    get = _kind.get
    while frame is not None:
        if get(id(frame.f_code), USER) == HEAP:
            found = frame
        frame = frame.f_back
    return found


def program_frame(frame):
    """The innermost frame at or outwards from `frame` whose code is not the runtime's (RUNTIME or
    HEAP): where the program called into the runtime, however many runtime frames lie between.
    None if there is none."""
    get = _kind.get
    while frame is not None and get(id(frame.f_code), USER) in (RUNTIME, HEAP):
        frame = frame.f_back
    return frame


def stale():
    """Modules were imported since the last look and some LOCKING module's code is not entered yet."""
    return len(_stdlib_done) < len(_LOCKING_MODULES) and len(sys.modules) != _nmodules[0]


def classify(frame):
    """(kind, outermost heap frame) of the stack whose innermost frame is `frame`: the highest kind
    among the frames down to the goroutine's BASE frame, walked whole.  A stack with no BASE frame
    (the scheduler's own greenlet, M0 outside main) or whose innermost frame is the BASE frame itself
    is RUNTIME.  USER: may be stopped and preempted; LOCKING: stopped only; RUNTIME: neither (it
    reaches a safe point of its own); HEAP: neither, and the stop waits for that frame to return."""
    if stale():
        _stdlib()
    get = _kind.get
    top = USER
    heap = None
    user = False
    while frame is not None:
        k = get(id(frame.f_code), USER)
        if k == BASE:
            return (top if user or top > RUNTIME else RUNTIME), heap
        if k == HEAP:
            heap = frame
        if k > top:
            top = k
        user = True
        frame = frame.f_back
    return max(top, RUNTIME), heap


def preemptible(frame):
    """Whether the goroutine whose innermost frame is `frame` may be switched out right here."""
    return classify(frame)[0] == USER
