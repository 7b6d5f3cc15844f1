"""A packetdrill-format script runner that drives the sans-I/O core in virtual time."""
