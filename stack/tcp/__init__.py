"""The sans-I/O TCP core: segments and `now` in, segments, events and deadlines out."""

from stack.core_build import extend_path

extend_path(__path__, "tcp")  # the compiled build, when current
