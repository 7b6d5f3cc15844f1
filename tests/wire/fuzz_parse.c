/* Sanitizer driver for the C fast path: mutated valid packets and pure garbage through parse and build.
 * Built by test_sanitizers.py with -fsanitize=address,undefined; any report aborts with non-zero status. */
#include "fast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint32_t next_random(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 300000;
    struct fast_seg seg;
    char valid[1600], valid6[1600], buf[1600], out[70000];
    memset(&seg, 0, sizeof(seg));
    seg.src = 0x0a000001;
    seg.dst = 0x0a000002;
    seg.ttl = 64;
    seg.flags = 0x12;
    seg.has_mss = 1;
    seg.mss = 1460;
    seg.has_wscale = 1;
    seg.wscale = 7;
    seg.sack_permitted = 1;
    seg.has_ts = 1;
    int valid_len = fast_build_tcp(valid, sizeof(valid), &seg, "payload", 7);
    if (valid_len <= 0)
        return 2;
    seg.version = 6; /* the same segment over IPv6 (RFC 8200), with a flow label */
    seg.src6_hi = seg.dst6_hi = 0xfd3dfa7bd17d0000ull;
    seg.src6_lo = 1;
    seg.dst6_lo = 2;
    seg.flow = 0xabcde;
    int valid6_len = fast_build_tcp(valid6, sizeof(valid6), &seg, "payload", 7);
    if (valid6_len != valid_len + 20)
        return 2;
    long accepted = 0;
    for (long i = 0; i < rounds; i++) {
        size_t len;
        if (i % 2) { /* garbage of random length */
            len = next_random() % sizeof(buf);
            for (size_t k = 0; k < len; k++)
                buf[k] = (char)next_random();
        } else { /* a valid packet with a few random bytes changed, maybe truncated or extended */
            int v6 = i % 4 == 0;
            memcpy(buf, v6 ? valid6 : valid, (size_t)(v6 ? valid6_len : valid_len));
            len = (size_t)(v6 ? valid6_len : valid_len);
            int flips = 1 + next_random() % 4;
            for (int f = 0; f < flips; f++)
                buf[next_random() % len] = (char)next_random();
            if (next_random() % 4 == 0)
                len = next_random() % (len + 1);
        }
        if (fast_parse(buf, len, &seg) == FAST_OK) {
            accepted++;
            /* whatever parsed must build back within bounds */
            seg.sack_count = seg.sack_count > 4 ? 4 : seg.sack_count;
            size_t plen = seg.proto == 6 ? seg.payload_len : 0;
            if (fast_build_tcp(out, sizeof(out), &seg, buf + seg.payload_off, plen) < 0)
                return 3;
        }
        fast_checksum(buf, len, next_random());
    }
    printf("%ld rounds, %ld accepted\n", rounds, accepted);
    return 0;
}
