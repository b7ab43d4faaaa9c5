"""mprt/gc: the coordinator process and Go 1.9's collector over the shared heap (to come)."""
