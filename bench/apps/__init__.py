"""The benchmark's task modules: one per system, each a no-op task and a pickup probe."""
