/* libFuzzer target for the C fast path (native/fast.c), built by test_libfuzzer.py with
 * -fsanitize=fuzzer,address,undefined.
 *
 * Each input is one raw IPv4 or IPv6 packet. It goes through fast_parse twice: as it is (the checksum
 * and header checks) and with the checksums made valid (so mutations reach the TCP header and option
 * parser instead of dying at a checksum). Whatever parses as TCP must survive the round trip
 * fast_build_tcp -> fast_parse with every field the builder writes unchanged. The checksum code is
 * compared against a plain RFC 1071 sum, and the RFC 1624 incremental update against a recompute.
 * A mismatch calls abort(), which libFuzzer reports as a crash with the input saved. */
#include "fast.h"

#include <stdlib.h>
#include <string.h>

#define MAX_PACKET 65535

static uint8_t work[MAX_PACKET];
static uint8_t rebuilt[MAX_PACKET];

#define CHECK(cond)                                                                                     \
    do {                                                                                                \
        if (!(cond))                                                                                    \
            abort();                                                                                    \
    } while (0)

static uint16_t rd16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* RFC 1071 the slow way: 16-bit words, end-around carry after each addition. */
static uint16_t reference_checksum(const uint8_t *p, size_t len, uint32_t initial)
{
    uint64_t acc = initial;
    for (size_t i = 0; i + 1 < len; i += 2) {
        acc += rd16(p + i);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if (len & 1) {
        acc += (uint32_t)p[len - 1] << 8;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

/* IPv6: the TCP checksum over the pseudo-header of RFC 8200 §8.1, if the lengths allow it. */
static void fix_checksum6(uint8_t *p, size_t len)
{
    if (len < 40 || p[6] != 6)
        return;
    size_t plen = rd16(p + 4);
    if (40 + plen > len || plen < 20)
        return;
    struct fast_seg hdr;
    CHECK(fast_parse((const char *)p, len, &hdr) != FAST_TOO_SHORT); /* only for the addresses */
    uint8_t *t = p + 40;
    wr16(t + 16, 0);
    wr16(t + 16, fast_checksum6(&hdr, 6, (const char *)t, plen));
}

/* Make the IP header checksum and, for TCP, the TCP checksum valid, if the lengths allow it. */
static void fix_checksums(uint8_t *p, size_t len)
{
    if (len >= 1 && p[0] >> 4 == 6) {
        fix_checksum6(p, len);
        return;
    }
    if (len < 20)
        return;
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > len)
        return;
    wr16(p + 10, 0);
    wr16(p + 10, fast_checksum((const char *)p, ihl, 0));
    size_t total = rd16(p + 2);
    if (p[9] != 6 || total > len || total < ihl + 20)
        return;
    uint8_t *t = p + ihl;
    uint32_t src = ((uint32_t)rd16(p + 12) << 16) | rd16(p + 14);
    uint32_t dst = ((uint32_t)rd16(p + 16) << 16) | rd16(p + 18);
    wr16(t + 16, 0);
    wr16(t + 16, fast_tcp_checksum(src, dst, (const char *)t, total - ihl));
}

/* What fast_build_tcp writes must read back the same (options only in the Linux layout it emits). */
static void check_round_trip(const uint8_t *packet, const struct fast_seg *in)
{
    struct fast_seg seg = *in;
    size_t plen = in->payload_len;
    const char *payload = (const char *)packet + in->payload_off;
    int n = fast_build_tcp((char *)rebuilt, sizeof(rebuilt), &seg, payload, plen);
    size_t ip_hdr = in->version == 6 ? 40 : 20;
    if (n < 0) { /* only a packet whose options grow past 65535 bytes may not fit */
        CHECK(ip_hdr + 20 + 40 + plen > MAX_PACKET);
        return;
    }
    /* one byte less room than needed must be refused; exactly enough (on the heap, so ASan would
     * see an overrun) must give the same bytes */
    CHECK(fast_build_tcp((char *)rebuilt, (size_t)n - 1, &seg, payload, plen) == -1);
    char *exact = malloc((size_t)n);
    CHECK(exact != NULL);
    CHECK(fast_build_tcp(exact, (size_t)n, &seg, payload, plen) == n);
    CHECK(memcmp(exact, rebuilt, (size_t)n) == 0);
    free(exact);

    struct fast_seg out;
    CHECK(fast_parse((const char *)rebuilt, (size_t)n, &out) == FAST_OK);
    CHECK(out.proto == 6 && out.src == in->src && out.dst == in->dst && out.ttl == in->ttl);
    CHECK(out.ident == in->ident && out.total_len == n && out.ihl_bytes == ip_hdr && out.version == in->version);
    CHECK(out.src6_hi == in->src6_hi && out.src6_lo == in->src6_lo && out.dst6_hi == in->dst6_hi);
    CHECK(out.dst6_lo == in->dst6_lo && out.flow == in->flow && out.tos == in->tos);
    CHECK(out.sport == in->sport && out.dport == in->dport && out.seq == in->seq && out.ack == in->ack);
    CHECK(out.flags == in->flags && out.window == in->window && out.urgent == in->urgent);
    CHECK(out.payload_len == plen && memcmp(rebuilt + out.payload_off, payload, plen) == 0);
    CHECK(out.doff_bytes % 4 == 0 && out.doff_bytes <= 60);
    CHECK(out.has_ts == in->has_ts);
    if (in->has_ts)
        CHECK(out.ts_val == in->ts_val && out.ts_ecr == in->ts_ecr);
    if (in->flags & 0x02) { /* SYN: mss, sackOK, wscale; never SACK blocks */
        CHECK(out.has_mss == in->has_mss && out.has_wscale == in->has_wscale);
        CHECK(out.sack_permitted == in->sack_permitted && out.sack_count == 0);
        if (in->has_mss)
            CHECK(out.mss == in->mss);
        if (in->has_wscale)
            CHECK(out.wscale == in->wscale);
    } else { /* other segments: TS and up to 4 SACK blocks (3 beside TS), nothing else */
        int blocks = in->sack_count > (in->has_ts ? 3 : 4) ? (in->has_ts ? 3 : 4) : in->sack_count;
        CHECK(!out.has_mss && !out.has_wscale && !out.sack_permitted && out.sack_count == blocks);
        CHECK(memcmp(out.sack, in->sack, sizeof(uint32_t) * 2 * (size_t)blocks) == 0);
    }
}

static void check_parse(const uint8_t *p, size_t len)
{
    struct fast_seg seg;
    int rc = fast_parse((const char *)p, len, &seg);
    CHECK(rc >= FAST_OK && rc <= FAST_IP_SOURCE_ROUTE);
    if (rc != FAST_OK)
        return;
    CHECK(seg.version == 4 || seg.version == 6);
    CHECK(seg.ihl_bytes >= 20 && seg.total_len <= len && seg.total_len >= seg.ihl_bytes);
    CHECK(seg.version == 4 || (seg.ihl_bytes == 40 && seg.flow <= 0xfffff && seg.src == 0 && seg.ident == 0));
    CHECK((size_t)seg.payload_off + seg.payload_len == seg.total_len); /* payload inside the packet */
    if (seg.proto != 6)
        return;
    CHECK(seg.doff_bytes >= 20 && seg.sack_count <= FAST_MAX_SACK);
    CHECK(seg.payload_off == (uint32_t)seg.ihl_bytes + seg.doff_bytes);
    check_round_trip(p, &seg);
}

static void check_checksums(const uint8_t *p, size_t len)
{
    uint32_t initial = len >= 2 ? rd16(p) : 0;
    CHECK(fast_checksum((const char *)p, len, initial) == reference_checksum(p, len, initial));
    if (len < 4)
        return;
    /* RFC 1624: changing one aligned word and updating incrementally equals a full recompute.
     * Both sides of eqn. 3 are taken modulo the one's-complement zero (0x0000 vs 0xffff). */
    size_t words = len / 2;
    size_t at = (rd16(p + 2) % words) * 2;
    uint16_t before = fast_checksum((const char *)p, words * 2, 0);
    uint16_t old_word = rd16(p + at);
    uint16_t new_word = (uint16_t)(old_word ^ rd16(p));
    memcpy(work, p, words * 2);
    wr16(work + at, new_word);
    uint16_t after = fast_checksum((const char *)work, words * 2, 0);
    uint16_t updated = fast_checksum_update16(before, old_word, new_word);
    CHECK(updated == after || ((uint16_t)~updated == 0 && after == 0) || (updated == 0 && (uint16_t)~after == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_PACKET)
        return 0;
    check_checksums(data, size);
    check_parse(data, size);
    /* an exactly sized heap copy, so that ASan sees a read one byte past the end */
    uint8_t *fixed = malloc(size ? size : 1);
    CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    fix_checksums(fixed, size);
    check_parse(fixed, size);
    free(fixed);
    /* fast_build_ipv4 carries any other protocol: it must read back as that protocol, payload intact */
    if (size >= 1 && size <= MAX_PACKET - 20) {
        uint8_t proto = data[0] == 6 ? 17 : data[0];
        int n = fast_build_ipv4((char *)rebuilt, sizeof(rebuilt), 0x0a000001, 0x0a000002, proto, 64, 7,
                                (const char *)data, size);
        CHECK(n == (int)size + 20);
        struct fast_seg seg;
        CHECK(fast_parse((const char *)rebuilt, (size_t)n, &seg) == FAST_OK && seg.proto == proto);
        CHECK(seg.payload_len == size && memcmp(rebuilt + seg.payload_off, data, size) == 0);
    }
    /* fast_build_ipv6 likewise, with the input's first bytes as the header fields */
    if (size >= 1 && size <= MAX_PACKET - 40) {
        struct fast_seg hdr;
        memset(&hdr, 0, sizeof(hdr));
        hdr.src6_hi = 0xfd3dfa7bd17d0000ull;
        hdr.src6_lo = 1;
        hdr.dst6_hi = 0xfd3dfa7bd17d0000ull;
        hdr.dst6_lo = data[0];
        hdr.proto = data[0] == 6 ? 17 : data[0];
        hdr.ttl = data[size - 1];
        hdr.tos = data[size / 2];
        hdr.flow = (uint32_t)size * 2654435761u;
        int n = fast_build_ipv6((char *)rebuilt, sizeof(rebuilt), &hdr, (const char *)data, size);
        CHECK(n == (int)size + 40);
        CHECK(fast_build_ipv6((char *)rebuilt, (size_t)n - 1, &hdr, (const char *)data, size) == -1);
        struct fast_seg seg;
        CHECK(fast_parse((const char *)rebuilt, (size_t)n, &seg) == FAST_OK && seg.version == 6);
        CHECK(seg.proto == hdr.proto && seg.ttl == hdr.ttl && seg.tos == hdr.tos && seg.flow == (hdr.flow & 0xfffff));
        CHECK(seg.src6_hi == hdr.src6_hi && seg.src6_lo == 1 && seg.dst6_lo == hdr.dst6_lo);
        CHECK(seg.payload_len == size && memcmp(rebuilt + seg.payload_off, data, size) == 0);
    }
    return 0;
}
