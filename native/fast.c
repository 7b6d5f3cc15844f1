/* tcpstack C fast path. Every function is bounds-checked against the caller's length. */
#define _DEFAULT_SOURCE
#include "fast.h"

#include <string.h>

#define IPPROTO_TCP_NUM 6
#define IP_HDR_LEN 20
#define IP6_HDR_LEN 40
#define TCP_HDR_LEN 20

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* RFC 1071: one's-complement sum of 16-bit big-endian words, accumulated 32 bits at a time. */
static uint64_t sum_words(const uint8_t *p, size_t len, uint64_t acc)
{
    while (len >= 4) {
        acc += get32(p);
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        acc += get16(p);
        p += 2;
        len -= 2;
    }
    if (len)
        acc += (uint32_t)p[0] << 8; /* odd byte padded with zero */
    return acc;
}

static uint16_t fold(uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

uint16_t fast_checksum(const char *buf, size_t len, uint32_t initial)
{
    return fold(sum_words((const uint8_t *)buf, len, initial));
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). */
uint16_t fast_checksum_update16(uint16_t checksum, uint16_t old_word, uint16_t new_word)
{
    uint32_t acc = (uint16_t)~checksum + (uint32_t)(uint16_t)~old_word + new_word;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)~acc;
}

static uint64_t pseudo_header(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
    return (uint64_t)(src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

uint16_t fast_tcp_checksum(uint32_t src, uint32_t dst, const char *tcp, size_t len)
{
    return fold(sum_words((const uint8_t *)tcp, len, pseudo_header(src, dst, IPPROTO_TCP_NUM, len)));
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint64_t sum64(uint64_t v) { return (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff); }

/* RFC 8200 §8.1: source, destination, upper-layer length (32 bits) and next header. */
static uint64_t pseudo_header6(const struct fast_seg *s, uint8_t proto, size_t len)
{
    return sum64(s->src6_hi) + sum64(s->src6_lo) + sum64(s->dst6_hi) + sum64(s->dst6_lo) + (len >> 16) +
           (len & 0xffff) + proto;
}

uint16_t fast_checksum6(const struct fast_seg *hdr, uint8_t proto, const char *buf, size_t len)
{
    return fold(sum_words((const uint8_t *)buf, len, pseudo_header6(hdr, proto, len)));
}

/* A fast open option as Linux's tcp_parse_fastopen_option takes it: on a SYN only, a cookie of 4 to 16
 * bytes of even length or an empty request; an odd length is ignored, another even one undoes an
 * earlier option (the last one counts). */
static void take_fast_open(struct fast_seg *s, uint8_t kind, const uint8_t *cookie, size_t len)
{
    if (!(s->flags & 0x02) || (len & 1))
        return;
    if (len != 0 && (len < 4 || len > 16)) {
        s->fo_kind = s->fo_len = 0;
        s->fo_hi = s->fo_lo = 0;
        return;
    }
    uint8_t padded[16] = {0};
    memcpy(padded, cookie, len);
    s->fo_kind = kind;
    s->fo_len = (uint8_t)len;
    s->fo_hi = get64(padded);
    s->fo_lo = get64(padded + 8);
}

static int parse_options(const uint8_t *p, size_t len, struct fast_seg *s)
{
    size_t i = 0;
    while (i < len) {
        uint8_t kind = p[i];
        if (kind == 0) /* EOL */
            break;
        if (kind == 1) { /* NOP */
            i++;
            continue;
        }
        /* a silly length or an option running past the header ends parsing; what was parsed before
         * it stays (Linux tcp_parse_options) */
        if (i + 1 >= len)
            break;
        uint8_t olen = p[i + 1];
        if (olen < 2 || i + olen > len)
            break;
        const uint8_t *v = p + i + 2;
        switch (kind) {
        case 2:
            if (olen == 4) {
                s->has_mss = 1;
                s->mss = get16(v);
            }
            break;
        case 3:
            if (olen == 3) {
                s->has_wscale = 1;
                s->wscale = v[0];
            }
            break;
        case 4:
            if (olen == 2)
                s->sack_permitted = 1;
            break;
        case 5:
            if (olen >= 10 && (olen - 2) % 8 == 0) {
                int n = (olen - 2) / 8;
                if (n > FAST_MAX_SACK)
                    n = FAST_MAX_SACK;
                for (int b = 0; b < n; b++) {
                    s->sack[2 * b] = get32(v + 8 * b);
                    s->sack[2 * b + 1] = get32(v + 8 * b + 4);
                }
                s->sack_count = (uint8_t)n;
            }
            break;
        case 8:
            if (olen == 10) {
                s->has_ts = 1;
                s->ts_val = get32(v);
                s->ts_ecr = get32(v + 4);
            }
            break;
        case 34: /* fast open cookie, or an empty one: a request */
            take_fast_open(s, 34, v, olen - 2);
            break;
        case 254: /* experimental (RFC 6994): fast open's when it starts with its magic */
            if (olen >= 4 && get16(v) == 0xF989)
                take_fast_open(s, 254, v + 2, olen - 4);
            break;
        default: /* unknown: skipped by its length */
            break;
        }
        i += olen;
    }
    return FAST_OK;
}

/* RFC 791 §3.1 options, refused where Linux's ip_options_compile refuses them on input (it also sends
 * an ICMP parameter problem; we drop silently). o/len: the option bytes between 20 and IHL*4. */
static int check_ip_options(const uint8_t *o, size_t len)
{
    int seen_rr = 0, seen_ts = 0, seen_srr = 0;
    size_t i = 0;
    while (i < len) {
        uint8_t type = o[i];
        if (type == 0) /* end of option list: the rest is padding */
            break;
        if (type == 1) { /* no-operation */
            i++;
            continue;
        }
        if (len - i < 2)
            return FAST_BAD_IP_OPTION;
        size_t olen = o[i + 1];
        if (olen < 2 || olen > len - i)
            return FAST_BAD_IP_OPTION;
        size_t ptr = olen > 2 ? o[i + 2] : 0;
        switch (type) {
        case 131: /* loose source route */
        case 137: /* strict source route */
            if (olen < 3 || ptr < 4 || seen_srr++)
                return FAST_BAD_IP_OPTION;
            return FAST_IP_SOURCE_ROUTE;
        case 7: /* record route */
            if (seen_rr++ || olen < 3 || ptr < 4 || (ptr <= olen && ptr + 3 > olen))
                return FAST_BAD_IP_OPTION;
            break;
        case 68: /* internet timestamp */
            if (seen_ts++ || olen < 4 || ptr < 5)
                return FAST_BAD_IP_OPTION;
            if (ptr <= olen) {
                uint8_t flag = o[i + 3] & 0x0f;
                size_t need = flag == 0 ? 3 : (flag == 1 || flag == 3) ? 7 : 0;
                if (ptr + need > olen)
                    return FAST_BAD_IP_OPTION;
            } else if ((o[i + 3] & 0xf0) == 0xf0) { /* full, and the overflow count too */
                return FAST_BAD_IP_OPTION;
            }
            break;
        case 148: /* router alert */
            if (olen < 4)
                return FAST_BAD_IP_OPTION;
            break;
        case 134: /* CIPSO: refused without a configured domain of interpretation */
            return FAST_BAD_IP_OPTION;
        default: /* others are skipped by their length */
            break;
        }
        i += olen;
    }
    return FAST_OK;
}

/* The TCP header at t (tlen bytes up to the end of the IP payload), checksum already verified. */
static int parse_tcp(const uint8_t *t, size_t tlen, size_t ip_hdr, struct fast_seg *s)
{
    size_t doff = (size_t)(t[12] >> 4) * 4;
    s->sport = get16(t);
    s->dport = get16(t + 2);
    s->seq = get32(t + 4);
    s->ack = get32(t + 8);
    s->flags = t[13];
    s->window = get16(t + 14);
    s->urgent = get16(t + 18);
    s->doff_bytes = (uint8_t)doff;
    s->payload_off = (uint32_t)(ip_hdr + doff);
    s->payload_len = (uint32_t)(tlen - doff);
    return parse_options(t + TCP_HDR_LEN, doff - TCP_HDR_LEN, s);
}

/* Length and data offset checks shared by both IP versions. */
static int check_tcp_lengths(const uint8_t *t, size_t tlen)
{
    if (tlen < TCP_HDR_LEN)
        return FAST_TCP_TOO_SHORT;
    size_t doff = (size_t)(t[12] >> 4) * 4;
    if (doff < TCP_HDR_LEN || doff > tlen)
        return FAST_BAD_TCP_OFFSET;
    return FAST_OK;
}

/* RFC 8200 §3: the fixed header. Extension headers are left to the caller (proto is the first next
 * header); bytes beyond 40 + payload length are link padding, as beyond an IPv4 total length. */
static int parse_ipv6(const uint8_t *p, size_t len, struct fast_seg *s, int verify_tcp)
{
    if (len < IP6_HDR_LEN)
        return FAST_TOO_SHORT;
    size_t plen = get16(p + 4);
    if (IP6_HDR_LEN + plen > len)
        return FAST_BAD_TOTAL_LENGTH;
    uint32_t first = get32(p);
    s->version = 6;
    s->tos = (uint8_t)(first >> 20);
    s->flow = first & 0xfffff;
    s->total_len = (uint16_t)(plen < 0xffff - IP6_HDR_LEN ? IP6_HDR_LEN + plen : 0xffff);
    s->proto = p[6];
    s->ttl = p[7];
    s->src6_hi = get64(p + 8);
    s->src6_lo = get64(p + 16);
    s->dst6_hi = get64(p + 24);
    s->dst6_lo = get64(p + 32);
    s->ihl_bytes = IP6_HDR_LEN;
    s->payload_off = IP6_HDR_LEN;
    s->payload_len = (uint32_t)plen;
    if (s->proto != IPPROTO_TCP_NUM)
        return FAST_OK;
    const uint8_t *t = p + IP6_HDR_LEN;
    int rc = check_tcp_lengths(t, plen);
    if (rc)
        return rc;
    if (verify_tcp && fast_checksum6(s, IPPROTO_TCP_NUM, (const char *)t, plen) != 0)
        return FAST_BAD_TCP_CHECKSUM;
    return parse_tcp(t, plen, IP6_HDR_LEN, s);
}

int fast_parse(const char *cbuf, size_t len, struct fast_seg *s) { return fast_parse_csum(cbuf, len, s, 1); }

/* verify_tcp = 0: the TCP checksum is not checked (the device vouched for it, or it is still partial). */
int fast_parse_csum(const char *cbuf, size_t len, struct fast_seg *s, int verify_tcp)
{
    const uint8_t *p = (const uint8_t *)cbuf;
    memset(s, 0, sizeof(*s));
    if (len >= 1 && (p[0] >> 4) == 6)
        return parse_ipv6(p, len, s, verify_tcp);
    if (len < IP_HDR_LEN)
        return FAST_TOO_SHORT;
    if ((p[0] >> 4) != 4)
        return FAST_BAD_VERSION;
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    if (ihl < IP_HDR_LEN || ihl > len)
        return FAST_BAD_IHL;
    size_t total = get16(p + 2);
    if (total < ihl || total > len)
        return FAST_BAD_TOTAL_LENGTH;
    if (fold(sum_words(p, ihl, 0)) != 0)
        return FAST_BAD_IP_CHECKSUM;
    if (ihl > IP_HDR_LEN) {
        int rc = check_ip_options(p + IP_HDR_LEN, ihl - IP_HDR_LEN);
        if (rc)
            return rc;
    }
    uint16_t frag = get16(p + 6);
    s->version = 4;
    s->tos = p[1];
    s->total_len = (uint16_t)total;
    s->ident = get16(p + 4);
    s->ttl = p[8];
    s->proto = p[9];
    s->src = get32(p + 12);
    s->dst = get32(p + 16);
    s->ihl_bytes = (uint8_t)ihl;
    s->payload_off = (uint32_t)ihl;
    s->payload_len = (uint32_t)(total - ihl);
    if ((frag & 0x2000) || (frag & 0x1fff)) { /* a fragment: its transport header waits for reassembly */
        s->frag_off = (uint16_t)((frag & 0x1fff) << 3);
        s->more_frags = (frag & 0x2000) != 0;
        return FAST_FRAGMENT;
    }
    if (s->proto != IPPROTO_TCP_NUM)
        return FAST_OK;

    const uint8_t *t = p + ihl;
    size_t tlen = total - ihl;
    int rc = check_tcp_lengths(t, tlen);
    if (rc)
        return rc;
    if (verify_tcp && fast_tcp_checksum(s->src, s->dst, (const char *)t, tlen) != 0)
        return FAST_BAD_TCP_CHECKSUM;
    return parse_tcp(t, tlen, ihl, s);
}

static void write_ipv4_header(uint8_t *p, size_t total, uint32_t src, uint32_t dst, uint8_t proto,
                              uint8_t ttl, uint16_t ident, uint8_t tos, int df)
{
    p[0] = 0x45;
    p[1] = tos;
    put16(p + 2, (uint16_t)total);
    put16(p + 4, ident);
    put16(p + 6, df ? 0x4000 : 0); /* DF */
    p[8] = ttl;
    p[9] = proto;
    put16(p + 10, 0);
    put32(p + 12, src);
    put32(p + 16, dst);
    put16(p + 10, fold(sum_words(p, IP_HDR_LEN, 0)));
}

/* RFC 8200 §3: version 6, traffic class, flow label, payload length, next header, hop limit. */
static void write_ipv6_header(uint8_t *p, size_t plen, const struct fast_seg *s, uint8_t proto)
{
    put32(p, (6u << 28) | ((uint32_t)s->tos << 20) | (s->flow & 0xfffff));
    put16(p + 4, (uint16_t)plen);
    p[6] = proto;
    p[7] = s->ttl;
    put64(p + 8, s->src6_hi);
    put64(p + 16, s->src6_lo);
    put64(p + 24, s->dst6_hi);
    put64(p + 32, s->dst6_lo);
}

/* Options in Linux's layout; returns their length (a multiple of 4). */
static size_t write_options(uint8_t *o, const struct fast_seg *s)
{
    size_t n = 0;
    int syn = s->flags & 0x02;
    if (syn) {
        if (s->has_mss) {
            o[n++] = 2, o[n++] = 4;
            put16(o + n, s->mss), n += 2;
        }
        if (s->has_ts) { /* mss,sackOK,TS,nop,wscale  (or nop,nop,TS without sackOK) */
            if (s->sack_permitted)
                o[n++] = 4, o[n++] = 2;
            else
                o[n++] = 1, o[n++] = 1;
            o[n++] = 8, o[n++] = 10;
            put32(o + n, s->ts_val), n += 4;
            put32(o + n, s->ts_ecr), n += 4;
        } else if (s->sack_permitted) { /* mss,nop,nop,sackOK */
            o[n++] = 1, o[n++] = 1, o[n++] = 4, o[n++] = 2;
        }
        if (s->has_wscale) {
            o[n++] = 1, o[n++] = 3, o[n++] = 3, o[n++] = s->wscale;
        }
        if (s->fo_kind && s->fo_len <= 16) { /* last, padded with NOPs to a word (Linux tcp_options_write) */
            uint8_t cookie[16];
            put64(cookie, s->fo_hi);
            put64(cookie + 8, s->fo_lo);
            size_t base = s->fo_kind == 254 ? 4 : 2;
            if (n + ((base + s->fo_len + 3) & ~(size_t)3) > 40)
                return n; /* no room: left out, as Linux leaves it out */
            o[n++] = s->fo_kind, o[n++] = (uint8_t)(base + s->fo_len);
            if (s->fo_kind == 254)
                put16(o + n, 0xF989), n += 2;
            memcpy(o + n, cookie, s->fo_len), n += s->fo_len;
            while (n & 3)
                o[n++] = 1;
        }
        return n;
    }
    if (s->has_ts) {
        o[n++] = 1, o[n++] = 1, o[n++] = 8, o[n++] = 10;
        put32(o + n, s->ts_val), n += 4;
        put32(o + n, s->ts_ecr), n += 4;
    }
    int blocks = s->sack_count > FAST_MAX_SACK ? FAST_MAX_SACK : s->sack_count;
    if (s->has_ts && blocks > 3)
        blocks = 3; /* 40 bytes of option space */
    if (blocks) {
        o[n++] = 1, o[n++] = 1, o[n++] = 5, o[n++] = (uint8_t)(2 + 8 * blocks);
        for (int b = 0; b < blocks; b++) {
            put32(o + n, s->sack[2 * b]), n += 4;
            put32(o + n, s->sack[2 * b + 1]), n += 4;
        }
    }
    return n;
}

int fast_build_tcp(char *cbuf, size_t cap, const struct fast_seg *s, const char *payload, size_t plen)
{
    uint8_t opts[40];
    size_t olen = write_options(opts, s);
    size_t tlen = TCP_HDR_LEN + olen + plen;
    int v6 = s->version == 6;
    size_t ip_hdr = v6 ? IP6_HDR_LEN : IP_HDR_LEN;
    size_t total = ip_hdr + tlen;
    if (total > cap || (v6 ? tlen : total) > 0xffff)
        return -1;
    uint8_t *p = (uint8_t *)cbuf;
    if (v6)
        write_ipv6_header(p, tlen, s, IPPROTO_TCP_NUM);
    else
        write_ipv4_header(p, total, s->src, s->dst, IPPROTO_TCP_NUM, s->ttl, s->ident, s->tos, s->dont_fragment);
    uint8_t *t = p + ip_hdr;
    put16(t, s->sport);
    put16(t + 2, s->dport);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)(((TCP_HDR_LEN + olen) / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, s->window);
    put16(t + 16, 0);
    put16(t + 18, s->urgent);
    memcpy(t + TCP_HDR_LEN, opts, olen);
    if (plen)
        memcpy(t + TCP_HDR_LEN + olen, payload, plen);
    uint16_t csum = v6 ? fast_checksum6(s, IPPROTO_TCP_NUM, (const char *)t, tlen)
                       : fast_tcp_checksum(s->src, s->dst, (const char *)t, tlen);
    put16(t + 16, csum);
    return (int)total;
}

/* An IPv6 packet around an upper-layer payload already complete (checksum included): hdr gives the
 * addresses, hop limit (ttl), traffic class (tos), flow label and next header (proto). */
int fast_build_ipv6(char *cbuf, size_t cap, const struct fast_seg *hdr, const char *payload, size_t plen)
{
    size_t total = IP6_HDR_LEN + plen;
    if (total > cap || plen > 0xffff)
        return -1;
    uint8_t *p = (uint8_t *)cbuf;
    write_ipv6_header(p, plen, hdr, hdr->proto);
    if (plen)
        memcpy(p + IP6_HDR_LEN, payload, plen);
    return (int)total;
}

int fast_build_ipv4(char *cbuf, size_t cap, uint32_t src, uint32_t dst, uint8_t proto, uint8_t ttl,
                    uint16_t ident, const char *payload, size_t plen)
{
    size_t total = IP_HDR_LEN + plen;
    if (total > cap || total > 0xffff)
        return -1;
    uint8_t *p = (uint8_t *)cbuf;
    write_ipv4_header(p, total, src, dst, proto, ttl, ident, 0, 1);
    if (plen)
        memcpy(p + IP_HDR_LEN, payload, plen);
    return (int)total;
}
