"""cffi API-mode build of the C fast path into `stack._fast` (used by setup.py's cffi_modules).

The declarations given to cdef() come from native/fast.h itself, minus the preprocessor lines cdef()
does not accept (include guard and #include), so the header is the single source of truth.
"""

import re
from pathlib import Path

from cffi import FFI

_HERE = Path(__file__).resolve().parent


def cdef_source(header: str) -> str:
    """fast.h without #include/#ifndef/#endif and the guard's #define; other #define constants stay."""
    kept = []
    for line in header.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not re.match(r"#define\s+\w+\s+\d+\s*$", stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


ffibuilder = FFI()
ffibuilder.cdef(cdef_source((_HERE / "fast.h").read_text()))
ffibuilder.set_source(
    "stack._fast",
    '#include "fast.h"',
    sources=["native/fast.c", "native/batch.c"],
    include_dirs=["native"],
    extra_compile_args=["-O2", "-std=c11", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
