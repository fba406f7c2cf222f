"""REST transport: parse, one service call, serialize. No SQL here."""
