"""Packet representation: parse/emit, sequence arithmetic, options. No protocol logic."""

from stack.core_build import extend_path

extend_path(__path__, "wire")  # the compiled build, when current
