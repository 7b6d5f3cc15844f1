"""The only place that touches the event loop, the TUN fd and clocks."""
