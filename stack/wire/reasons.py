"""Why an inbound packet was dropped before reaching TCP; values mirror `enum fast_reason` in native/fast.h.

Code 6 (FAST_FRAGMENT) is missing on purpose: a fragment is not dropped but handed to stack/fragments.py.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class DropReason(IntEnum):
    TOO_SHORT = 1
    BAD_VERSION = 2
    BAD_IHL = 3
    BAD_TOTAL_LENGTH = 4
    BAD_IP_CHECKSUM = 5
    TCP_TOO_SHORT = 7
    BAD_TCP_OFFSET = 8
    BAD_TCP_CHECKSUM = 9
    BAD_IP_OPTION = 10  # Linux ip_options_compile refuses it (InHdrErrors there)
    IP_SOURCE_ROUTE = 11  # LSRR/SSRR: Linux drops them on a host (accept_source_route=0)


COUNTERS: Final = tuple(f"Drop{reason.name}" for reason in DropReason)  # `tcpstack stats` names, shown at 0 too
