"""Member commands: one handler each, in a unit of work, calling the domain."""
