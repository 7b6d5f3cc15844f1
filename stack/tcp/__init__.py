"""The sans-I/O TCP core: segments and `now` in, segments, events and deadlines out."""
