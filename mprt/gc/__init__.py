"""mprt/gc: the collector.  mgc.py is the essay (the cycle, the pacer, the coordinator's part);
mgcmark.py roots and the
vectorised mark; mfinal.py finalizers and the finalizer goroutine.  Sweeping frees through the
allocator's own free path (mprt/shm/mcentral.py sweep_span_locked).  The mark bytes, shading and the
write barrier are mprt/shm/mbarrier.py: every process runs them, on heap words alone."""
