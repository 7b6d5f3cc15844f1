/* tcpstack C fast path, whole batches: a read batch parsed in one call, a flush built in one call,
 * and the TUN offloads (virtio_net_hdr: checksum offload both ways, TSO super-segments out, the kernel's
 * coalesced super-segments in). Every function is bounds-checked against the caller's lengths. */
#define _DEFAULT_SOURCE
#include "fast.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define IP_HDR 20
#define IP6_HDR 40
#define TCP_CSUM_OFFSET 16
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_ACK 0x10
#define TCP_FLAG_ECE 0x40
#define TCP_FLAG_CWR 0x80
#define MAX_IP_TOTAL 65535
#define IPPROTO_TCP_NUM 6

static inline void store16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Read packets into buf from `start` on, each at an 8-byte aligned offset with at least `room` bytes
 * free, until EAGAIN, max_packets, or too little room. Bytes before `start` are never written again,
 * so earlier batches' payload views stay valid. Returns the count, or -errno if the first read failed. */
int fast_read_arena(int fd, char *buf, size_t cap, size_t start, size_t room, int max_packets, uint32_t *offs,
                    uint32_t *lens)
{
    int n = 0;
    size_t pos = align8(start);
    while (n < max_packets && pos + room <= cap) {
        ssize_t r = read(fd, buf + pos, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0)
                break;
            return -errno;
        }
        if (r == 0)
            break;
        offs[n] = (uint32_t)pos;
        lens[n++] = (uint32_t)r;
        pos = align8(pos + (size_t)r);
    }
    return n;
}

/* Parse n records of a batch. A record is an IP packet, after a virtio_net_hdr when vnet != 0: its
 * NEEDS_CSUM (checksum still partial) and DATA_VALID (verified) flags skip the TCP checksum check, and
 * gso_sizes[i] gets the kernel's segment size of a coalesced super-segment (0 for a plain packet).
 * reasons[i] is fast_parse's result; payload_off stays relative to the IP header. */
void fast_parse_batch(const char *buf, const uint32_t *offs, const uint32_t *lens, int n, int vnet,
                      struct fast_seg *segs, uint8_t *reasons, uint16_t *gso_sizes)
{
    for (int i = 0; i < n; i++) {
        const char *p = buf + offs[i];
        size_t len = lens[i];
        int verify = 1;
        gso_sizes[i] = 0;
        if (vnet) {
            struct fast_vnet_hdr h;
            if (len < (size_t)vnet) {
                memset(&segs[i], 0, sizeof(segs[i]));
                reasons[i] = FAST_TOO_SHORT;
                continue;
            }
            memcpy(&h, p, sizeof(h));
            verify = !(h.flags & (FAST_VNET_NEEDS_CSUM | FAST_VNET_DATA_VALID));
            if ((h.gso_type & ~FAST_VNET_GSO_ECN) != FAST_VNET_GSO_NONE)
                gso_sizes[i] = h.gso_size;
            p += vnet;
            len -= (size_t)vnet;
        }
        reasons[i] = (uint8_t)fast_parse_csum(p, len, &segs[i], verify);
    }
}

static const uint8_t *record_ip(const char *buf, const uint32_t *offs, int i)
{
    return (const uint8_t *)buf + offs[i];
}

static int gro_can_lead(const struct fast_seg *s)
{
    return s->payload_len > 0 && s->flags == TCP_FLAG_ACK && s->proto == IPPROTO_TCP_NUM &&
           s->ihl_bytes == (s->version == 6 ? IP6_HDR : IP_HDR);
}

static int gro_joins(const char *buf, const uint32_t *offs, int h, int i, const struct fast_seg *head,
                     const struct fast_seg *s, uint32_t total, uint16_t count)
{
    if (s->version != head->version || s->proto != head->proto || s->ihl_bytes != head->ihl_bytes ||
        s->ttl != head->ttl || s->tos != head->tos || s->sport != head->sport || s->dport != head->dport ||
        s->ack != head->ack || s->window != head->window || s->doff_bytes != head->doff_bytes ||
        (s->flags & ~TCP_FLAG_PSH) != TCP_FLAG_ACK || s->payload_len == 0 || s->payload_len > head->payload_len ||
        s->seq != head->seq + total ||
        (size_t)head->ihl_bytes + head->doff_bytes + total + s->payload_len > MAX_IP_TOTAL)
        return 0;
    const uint8_t *a = record_ip(buf, offs, h), *b = record_ip(buf, offs, i);
    if (s->version == 6) {
        if (s->flow != head->flow || s->src6_hi != head->src6_hi || s->src6_lo != head->src6_lo ||
            s->dst6_hi != head->dst6_hi || s->dst6_lo != head->dst6_lo)
            return 0;
    } else {
        int df = b[6] & 0x40;
        if (s->src != head->src || s->dst != head->dst || df != (a[6] & 0x40))
            return 0;
        if (s->ident != (uint16_t)(head->ident + count) && !(df && s->ident == head->ident))
            return 0;
    }
    size_t opts = (size_t)s->doff_bytes - 20;
    return memcmp(a + head->ihl_bytes + 20, b + s->ihl_bytes + 20, opts) == 0;
}

/* A pure ACK that only moves the earlier one's cumulative ACK forward: ACK alone (no data, SYN, FIN,
 * RST, URG, ECE or CWR), no option but timestamps, neither of them older, the same connection, IP
 * header fields and SEQ. */
static int pure_ack(const struct fast_seg *s)
{
    return s->payload_len == 0 && s->flags == TCP_FLAG_ACK && s->proto == IPPROTO_TCP_NUM && s->sack_count == 0 &&
           !s->has_mss && !s->has_wscale && !s->sack_permitted && s->urgent == 0;
}

static int supersedes(const struct fast_seg *b, const struct fast_seg *a)
{
    return pure_ack(b) && pure_ack(a) && (int32_t)(b->ack - a->ack) > 0 && b->seq == a->seq &&
           b->has_ts == a->has_ts && (!b->has_ts || (int32_t)(b->ts_val - a->ts_val) >= 0) &&
           b->version == a->version && b->sport == a->sport && b->dport == a->dport && b->src == a->src &&
           b->dst == a->dst && b->src6_hi == a->src6_hi && b->src6_lo == a->src6_lo && b->dst6_hi == a->dst6_hi &&
           b->dst6_lo == a->dst6_lo && b->ttl == a->ttl && b->tos == a->tos;
}

/* Software GRO: where a device hands over wire-sized packets, adjacent ones that Linux's GRO
 * (inet_gro_receive, tcp_gro_receive) would coalesce become one super-segment, as a device with
 * offloads hands it over. A run starts at a segment with data and ACK alone, and takes the next while:
 *   - IP: the same version, addresses, TTL (hop limit), TOS (traffic class) and DF, no IPv4 options
 *     and no IPv6 extension header, the IPv4 ID incremented per segment (or, with DF, fixed);
 *     IPv6: the same flow label;
 *   - TCP: the same ports, ACK, window and header length, its options byte for byte the same
 *     (timestamps included), SEQ right after the run, flags ACK (PSH allowed: it ends the run);
 *   - size: at most the first segment's (the run's gso_size); a shorter one ends the run; the whole
 *     stays one IP packet of at most 64 KB.
 * A segment with SYN, FIN, RST, URG, ECE or CWR neither starts nor joins one (Linux lets FIN and PSH
 * end a run and ECE runs coalesce; a subset of what it merges is merged here).
 * Payloads are moved in place behind the run's first (the headers between them are dropped), so the
 * run's payload is contiguous in buf; segs[head] then describes the whole run and gso_sizes[head] its
 * segment size. keep gets the indices of the records left to deliver, in order; returns their count. */
int fast_gro_batch(char *buf, const uint32_t *offs, int n, struct fast_seg *segs, const uint8_t *reasons,
                   uint16_t *gso_sizes, int *keep, int *acks_superseded)
{
    int kept = 0;
    int h = -1;          /* the open run's first record, or -1 */
    uint32_t total = 0;  /* its payload so far */
    uint16_t count = 0;  /* its segments so far */
    *acks_superseded = 0;
    for (int i = 0; i < n; i++) {
        struct fast_seg *s = &segs[i];
        if (kept > 0 && reasons[i] == FAST_OK && reasons[keep[kept - 1]] == FAST_OK &&
            supersedes(s, &segs[keep[kept - 1]])) {
            keep[kept - 1] = i; /* the later ACK says all the earlier one did */
            (*acks_superseded)++;
            continue;
        }
        if (h >= 0 && reasons[i] == FAST_OK && gro_joins(buf, offs, h, i, &segs[h], s, total, count)) {
            char *head_payload = buf + offs[h] + segs[h].payload_off;
            memmove(head_payload + total, buf + offs[i] + s->payload_off, s->payload_len);
            gso_sizes[h] = (uint16_t)segs[h].payload_len;
            total += s->payload_len;
            count++;
            if ((s->flags & TCP_FLAG_PSH) || s->payload_len < gso_sizes[h]) {
                segs[h].flags |= s->flags;
                segs[h].payload_len = total;
                h = -1;
            }
            continue;
        }
        if (h >= 0) {
            segs[h].payload_len = total;
            h = -1;
        }
        keep[kept++] = i;
        if (reasons[i] == FAST_OK && gro_can_lead(s)) {
            h = i;
            total = s->payload_len;
            count = 1;
        }
    }
    if (h >= 0)
        segs[h].payload_len = total;
    return kept;
}

/* The TCP checksum field of a packet whose checksum the device completes (NEEDS_CSUM): the pseudo-header
 * sum, folded but not complemented, as Linux's tcp_v4_send_check leaves it. */
static uint16_t partial_csum(uint32_t src, uint32_t dst, size_t tcp_len)
{
    uint32_t acc = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + 6 + (uint32_t)tcp_len;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

static uint64_t words64(uint64_t v) { return (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff); }

/* The same for IPv6 (RFC 8200 §8.1 pseudo-header), as Linux's tcp_v6_send_check leaves it. */
static uint16_t partial_csum6(const struct fast_seg *s, size_t tcp_len)
{
    uint64_t acc = words64(s->src6_hi) + words64(s->src6_lo) + words64(s->dst6_hi) + words64(s->dst6_lo) +
                   (tcp_len >> 16) + (tcp_len & 0xffff) + 6;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* Segment b may follow a in one super-segment headed by h: the same connection and header, contiguous,
 * and every segment but the last full-sized (the kernel cuts at gso_size, copies the header, and keeps
 * PSH and FIN for the last piece only, as tcp_gso_segment does). */
static int continues(const struct fast_seg *h, const struct fast_seg *a, const struct fast_seg *b, uint32_t hlen,
                     uint32_t alen, uint32_t blen)
{
    return b->version == h->version && alen == hlen && blen > 0 && blen <= hlen && a->flags == h->flags &&
           (b->flags & ~(TCP_FLAG_PSH | TCP_FLAG_FIN)) == h->flags && b->seq == a->seq + alen &&
           b->src == h->src && b->dst == h->dst && b->sport == h->sport && b->dport == h->dport &&
           b->ack == h->ack && b->window == h->window && b->tos == h->tos && b->ttl == h->ttl &&
           b->urgent == 0 && b->has_ts == h->has_ts && b->ts_val == h->ts_val && b->ts_ecr == h->ts_ecr &&
           b->sack_count == 0 && !b->has_mss && !b->has_wscale && !b->sack_permitted;
}

/* A run may start at segment h: data, plain ACK (or ACK+ECE) flags, no SACK blocks or SYN options. */
static int can_lead(const struct fast_seg *h, uint32_t hlen)
{
    return hlen > 0 && (h->flags & ~TCP_FLAG_ECE) == TCP_FLAG_ACK && h->urgent == 0 && h->sack_count == 0 &&
           !h->has_mss && !h->has_wscale && !h->sack_permitted;
}

/* Software GSO, for a device without offloads: the super-segment s (payload plen bytes) cut into
 * packets of gso_size payload bytes, the last maybe shorter, as Linux's tcp_gso_segment and
 * inet_gso_segment cut one: the header copied, SEQ advanced by each piece, the IP ID incremented
 * per piece, CWR on the first piece only, PSH and FIN on the last only; checksums complete. Each piece
 * is one record at *pos on; returns how many, or -1 if cap or room (records left) is too small. */
static int cut_segment(uint8_t *buf, size_t cap, size_t *pos, const struct fast_seg *s, const char *payload,
                       uint32_t plen, uint32_t gso_size, uint32_t *offs, uint32_t *lens, int room)
{
    struct fast_seg piece = *s;
    int k = 0;
    for (uint32_t off = 0; off < plen; off += gso_size, k++) {
        uint32_t size = plen - off < gso_size ? plen - off : gso_size;
        if (k == room)
            return -1;
        piece.seq = s->seq + off;
        piece.ident = (uint16_t)(s->ident + k);
        piece.flags = s->flags;
        if (off + size < plen)
            piece.flags &= (uint8_t)~(TCP_FLAG_PSH | TCP_FLAG_FIN);
        if (k > 0)
            piece.flags &= (uint8_t)~TCP_FLAG_CWR;
        int len = fast_build_tcp((char *)buf + *pos, cap - *pos, &piece, payload + off, size);
        if (len < 0)
            return -1;
        offs[k] = (uint32_t)*pos;
        lens[k] = (uint32_t)len;
        *pos += (size_t)len;
    }
    return k;
}

/* The headers of the record that item i starts when offloads are on (vnet), at out: the virtio_net_hdr
 * and the IP and TCP headers of items i..*end-1, which go out as one super-segment (with gso, the
 * run of at most max_run segments that `continues` allows; an item that is already a super-segment
 * alone). Their payloads, *total bytes, follow the headers; the lengths and the partial checksum
 * count them. Returns the header bytes written, or -1 if cap is too small or the run too large. */
static int vnet_run_headers(uint8_t *out, size_t cap, const struct fast_seg *segs, const uint32_t *plens,
                            const uint16_t *gso_sizes, const uint8_t *raw, int n, int i, int vnet, int gso,
                            int max_run, int *end, size_t *total_out)
{
    const struct fast_seg *head = &segs[i];
    int v6 = head->version == 6;
    size_t ip_hdr = v6 ? IP6_HDR : IP_HDR;
    uint32_t gso_size = plens[i];
    int j = i + 1;
    size_t total = plens[i];
    if (gso && gso_sizes[i]) {
        gso_size = gso_sizes[i]; /* a run the caller already made one segment */
    } else if (gso && can_lead(head, gso_size)) {
        while (j < n && j - i < max_run && !raw[j] && !gso_sizes[j] &&
               continues(head, &segs[j - 1], &segs[j], gso_size, plens[j - 1], plens[j]) &&
               IP_HDR + 60 + total + plens[j] <= MAX_IP_TOTAL) {
            total += plens[j];
            j++;
        }
    }
    if ((size_t)vnet > cap)
        return -1;
    /* the headers of the run's last segment (its PSH/FIN), the first one's sequence number */
    uint8_t *ip = out + vnet;
    int hlen = fast_build_tcp((char *)ip, cap - (size_t)vnet, &segs[j - 1], NULL, 0);
    if (hlen < 0 || (size_t)hlen + total > MAX_IP_TOTAL)
        return -1;
    uint8_t *tcp = ip + ip_hdr;
    size_t ip_len = (size_t)hlen + total;
    store16(tcp + 4, (uint16_t)(head->seq >> 16));
    store16(tcp + 6, (uint16_t)head->seq);
    if (v6) {
        store16(ip + 4, (uint16_t)(ip_len - IP6_HDR)); /* payload length */
        store16(tcp + TCP_CSUM_OFFSET, partial_csum6(head, ip_len - IP6_HDR));
    } else {
        store16(ip + 2, (uint16_t)ip_len);
        store16(ip + 10, 0);
        store16(ip + 10, fast_checksum((const char *)ip, IP_HDR, 0));
        store16(tcp + TCP_CSUM_OFFSET, partial_csum(head->src, head->dst, ip_len - IP_HDR));
    }
    struct fast_vnet_hdr h;
    memset(&h, 0, sizeof(h));
    h.flags = FAST_VNET_NEEDS_CSUM;
    h.csum_start = (uint16_t)ip_hdr;
    h.csum_offset = TCP_CSUM_OFFSET;
    h.hdr_len = (uint16_t)hlen;
    if (total > gso_size) {
        h.gso_type = v6 ? FAST_VNET_GSO_TCPV6 : FAST_VNET_GSO_TCPV4;
        h.gso_size = (uint16_t)gso_size;
    }
    memcpy(out, &h, sizeof(h));
    *end = j;
    *total_out = total;
    return vnet + hlen;
}

/* An item that goes out as an IP packet of its own, built whole with its checksums: a segment when
 * offloads are off, or an IPv6 segment that the caller did not make a super-segment. */
static int built_whole(const struct fast_seg *segs, const uint16_t *gso_sizes, int i, int vnet, int gso)
{
    return !vnet || (segs[i].version == 6 && !(gso && gso_sizes[i]));
}

/* Build n items into buf, one record each (or one per run of segments with gso), end to end from
 * offset 0; offs/lens (max_records long) get each record's place. Item i is a TCP segment segs[i] with
 * payloads[i] of plens[i] bytes, or when raw[i] a whole IP packet in payloads[i] copied as it is.
 * gso_sizes[i] != 0: the segment is already a super-segment of pieces that size, never merged further;
 * with vnet and gso it goes out whole for the kernel to cut, without vnet it is cut here (cut_segment).
 * vnet: each record starts with a virtio_net_hdr; TCP checksums are left to the kernel (NEEDS_CSUM).
 * gso (needs vnet): runs of segments that `continues` allows go out as one super-segment that the
 * kernel cuts back into exactly those segments (IPv4; an IPv6 segment is a super-segment only when the
 * caller made it one: TSO6). Returns the record count, or -1 if cap or max_records is too small. */
int fast_build_batch(char *cbuf, size_t cap, const struct fast_seg *segs, const char **payloads,
                     const uint32_t *plens, const uint16_t *gso_sizes, const uint8_t *raw, int n, int vnet, int gso,
                     uint32_t *offs, uint32_t *lens, int max_records)
{
    uint8_t *buf = (uint8_t *)cbuf;
    size_t pos = 0;
    int records = 0;
    int i = 0;
    while (i < n) {
        size_t rec = pos;
        if (records == max_records || pos + (size_t)vnet > cap)
            return -1;
        if (!vnet && !raw[i] && gso_sizes[i] && plens[i] > gso_sizes[i]) {
            int pieces = cut_segment(buf, cap, &pos, &segs[i], payloads[i], plens[i], gso_sizes[i], offs + records,
                                     lens + records, max_records - records);
            if (pieces < 0)
                return -1;
            records += pieces;
            i++;
            continue;
        }
        if (raw[i] || built_whole(segs, gso_sizes, i, vnet, gso)) {
            memset(buf + pos, 0, (size_t)vnet); /* no offload asked of the kernel */
            pos += (size_t)vnet;
            if (raw[i]) {
                if (pos + plens[i] > cap)
                    return -1;
                memcpy(buf + pos, payloads[i], plens[i]);
                pos += plens[i];
            } else {
                int len = fast_build_tcp((char *)buf + pos, cap - pos, &segs[i], payloads[i], plens[i]);
                if (len < 0)
                    return -1;
                pos += (size_t)len;
            }
            i++;
        } else {
            int j;
            size_t total;
            int head = vnet_run_headers(buf + pos, cap - pos, segs, plens, gso_sizes, raw, n, i, vnet, gso, n, &j,
                                        &total);
            if (head < 0 || pos + (size_t)head + total > cap)
                return -1;
            pos += (size_t)head;
            for (int k = i; k < j; k++) {
                memcpy(buf + pos, payloads[k], plens[k]);
                pos += plens[k];
            }
            i = j;
        }
        offs[records] = (uint32_t)rec;
        lens[records++] = (uint32_t)(pos - rec);
    }
    return records;
}

/* A write that failed: keep going after EINTR (0), stop quietly at a full queue or after the first
 * record (1: a NIC drops what does not fit), or report the error (-errno). */
static int write_failed(int written)
{
    if (errno == EINTR)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || written > 0)
        return 1;
    return -errno;
}

/* What fast_build_batch would build with vnet, written to fd record by record without laying the
 * records out: each record's headers go into scratch (cap bytes, reused) and its payloads are written
 * from where they are, with one writev (the TUN device copies them into its skb: one copy less).
 * A run of segments takes at most SEND_IOV - 1 payloads. *items gets the items the written records
 * hold. Returns the records written, -errno if the first write failed, or -EMSGSIZE if scratch is too
 * small. */
#define SEND_IOV 64
int fast_send_batch(int fd, char *scratch, size_t cap, const struct fast_seg *segs, const char **payloads,
                    const uint32_t *plens, const uint16_t *gso_sizes, const uint8_t *raw, int n, int vnet, int gso,
                    int *items)
{
    uint8_t *out = (uint8_t *)scratch;
    struct iovec iov[SEND_IOV];
    int records = 0;
    int i = 0;
    *items = 0;
    if (vnet <= 0 || (size_t)vnet > cap)
        return -EINVAL;
    while (i < n) {
        int j = i + 1;
        int iovcnt = 1;
        if (raw[i]) {
            memset(out, 0, (size_t)vnet);
            iov[0].iov_base = out;
            iov[0].iov_len = (size_t)vnet;
            iov[1].iov_base = (void *)payloads[i];
            iov[1].iov_len = plens[i];
            iovcnt = 2;
        } else if (built_whole(segs, gso_sizes, i, vnet, gso)) {
            memset(out, 0, (size_t)vnet);
            int len = fast_build_tcp((char *)out + vnet, cap - (size_t)vnet, &segs[i], payloads[i], plens[i]);
            if (len < 0)
                return -EMSGSIZE;
            iov[0].iov_base = out;
            iov[0].iov_len = (size_t)vnet + (size_t)len;
        } else {
            size_t total;
            int head = vnet_run_headers(out, cap, segs, plens, gso_sizes, raw, n, i, vnet, gso, SEND_IOV - 1, &j,
                                        &total);
            if (head < 0)
                return -EMSGSIZE;
            iov[0].iov_base = out;
            iov[0].iov_len = (size_t)head;
            for (int k = i; k < j; k++, iovcnt++) {
                iov[iovcnt].iov_base = (void *)payloads[k];
                iov[iovcnt].iov_len = plens[k];
            }
        }
        if (writev(fd, iov, iovcnt) < 0) {
            int r = write_failed(records);
            if (r == 0)
                continue;
            return r < 0 ? r : records;
        }
        records++;
        i = *items = j;
    }
    return records;
}

/* Write n records, one write each (TUN takes one packet per write). Returns how many were written, or
 * -errno if the first failed with anything but EAGAIN (a full queue drops the rest, as a NIC would). */
int fast_write_records(int fd, const char *buf, const uint32_t *offs, const uint32_t *lens, int n)
{
    int i = 0;
    while (i < n) {
        if (write(fd, buf + offs[i], lens[i]) < 0) {
            int r = write_failed(i);
            if (r == 0)
                continue;
            return r < 0 ? r : i;
        }
        i++;
    }
    return i;
}

/* Fill in the checksum that a NEEDS_CSUM record leaves to the device (for a capture file): the sum
 * from csum_start to the end, over the pseudo-header sum already in the field. rec starts with the
 * virtio_net_hdr. Returns 1 if it completed one, 0 if there was none to complete, -1 if malformed. */
int fast_vnet_complete_csum(char *rec, size_t len)
{
    struct fast_vnet_hdr h;
    if (len < FAST_VNET_HDR_LEN)
        return -1;
    memcpy(&h, rec, sizeof(h));
    if (!(h.flags & FAST_VNET_NEEDS_CSUM))
        return 0;
    size_t pkt = len - FAST_VNET_HDR_LEN;
    uint8_t *p = (uint8_t *)rec + FAST_VNET_HDR_LEN;
    if ((size_t)h.csum_start + h.csum_offset + 2 > pkt)
        return -1;
    uint16_t sum = fast_checksum((const char *)p + h.csum_start, pkt - h.csum_start, 0);
    store16(p + h.csum_start + h.csum_offset, sum);
    return 1;
}
