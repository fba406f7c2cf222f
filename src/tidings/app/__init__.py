"""Settings, logging, and the container that wires adapters for the roles a process runs."""
