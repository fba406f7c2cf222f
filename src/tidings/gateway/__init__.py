"""WebSocket transport: auth, resume, bus subscription, bounded per-connection queues."""
