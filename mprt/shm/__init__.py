"""mprt/shm: shared memory.  Segments and their cleanup (segment.py), the heap segment's layout
(layout.py), Go's allocator over the arena (malloc.py: read it first; then mheap.py, mcentral.py,
mcache.py, sizeclasses.py, and mobject.py for address queries), object types (types.py), Ptr
handles and root tables (ptr.py), and the statistics behind MemStats (mstats.py)."""
from .malloc import attach, create, current
from .mheap import OutOfMemory

__all__ = ["attach", "create", "current", "OutOfMemory"]
