"""The only place that touches the event loop, the TUN fd and clocks."""

from stack.core_build import extend_path

extend_path(__path__, "aio")  # the compiled build of the per-packet glue, when current (stack/core_build.py)
