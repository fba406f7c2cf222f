"""The wire protocol without IO: JSON shapes of objects, client frames, server frames."""
