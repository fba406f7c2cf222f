"""Bus port (fan-out between nodes, presence) and its adapters."""
