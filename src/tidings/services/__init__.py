"""Use cases. The only layer that writes, publishes and enqueues."""
