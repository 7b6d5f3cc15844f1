"""cffi API-mode build of the C fast path into `stack._fast` (used by setup.py's cffi_modules)."""

from pathlib import Path

from cffi import FFI

_HERE = Path(__file__).resolve().parent

ffibuilder = FFI()
ffibuilder.cdef((_HERE / "fast_cdef.h").read_text())
ffibuilder.set_source(
    "stack._fast",
    '#include "fast.h"',
    sources=["native/fast.c"],
    include_dirs=["native"],
    extra_compile_args=["-O2", "-std=c11", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
