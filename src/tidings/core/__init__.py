"""Domain values, rules, permissions, event types and errors. No IO at all."""
