"""Job consumers and periodic jobs of the `worker` role."""
