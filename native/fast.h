/* tcpstack C fast path: Internet checksums, IPv4+TCP and IPv6+TCP parse/build, batched fd I/O and TUN offloads. */
#ifndef TCPSTACK_FAST_H
#define TCPSTACK_FAST_H

#include <stddef.h>
#include <stdint.h>

/* Why a packet was rejected; 0 means accepted. FAST_FRAGMENT is the one non-zero code that is not a
 * rejection. The others are mirrored by stack.wire.reasons.DropReason. */
enum fast_reason {
    FAST_OK = 0,
    FAST_TOO_SHORT = 1,        /* shorter than an IPv4 (IPv6) header */
    FAST_BAD_VERSION = 2,      /* neither IPv4 nor IPv6 */
    FAST_BAD_IHL = 3,          /* IHL < 5 or header longer than the packet */
    FAST_BAD_TOTAL_LENGTH = 4, /* total length < IHL or > bytes received (IPv6: 40 + payload length) */
    FAST_BAD_IP_CHECKSUM = 5,
    FAST_FRAGMENT = 6,         /* not a rejection: MF set or offset != 0; the IP fields (frag_off,
                                  more_frags) are filled and the payload goes to reassembly */
    FAST_TCP_TOO_SHORT = 7,    /* fewer than 20 bytes of TCP header */
    FAST_BAD_TCP_OFFSET = 8,   /* data offset < 5 or beyond the IP payload */
    FAST_BAD_TCP_CHECKSUM = 9,
    FAST_BAD_IP_OPTION = 10,   /* an IPv4 option Linux's ip_options_compile refuses: length 0/1 or
                                  past the header, a bad pointer, a repeated option, CIPSO */
    FAST_IP_SOURCE_ROUTE = 11, /* LSRR/SSRR: a host drops them (Linux accept_source_route=0) */
};

#define FAST_MAX_SACK 4

/* A whole IPv4 or IPv6 (+TCP) packet, flattened. Addresses and numbers are in host byte order.
 * IPv4 uses src/dst; IPv6 the 64-bit halves src6_hi..dst6_lo, with ttl the hop limit, tos the traffic
 * class, proto the next header, ihl_bytes 40 and ident 0. The IPv6 parser does not walk extension
 * headers: a packet whose next header is not TCP is returned whole for the caller to walk. */
struct fast_seg {
    uint32_t src;
    uint32_t dst;
    uint8_t version; /* 4 or 6 */
    uint32_t flow;   /* IPv6 flow label, 20 bits (RFC 6437) */
    uint64_t src6_hi;
    uint64_t src6_lo;
    uint64_t dst6_hi;
    uint64_t dst6_lo;
    uint16_t ident;
    uint16_t total_len;
    uint8_t ttl;
    uint8_t tos;
    uint8_t proto;
    uint8_t ihl_bytes;
    uint16_t sport;
    uint16_t dport;
    uint32_t seq;
    uint32_t ack;
    uint8_t flags;
    uint8_t doff_bytes;
    uint16_t window;
    uint16_t urgent;
    uint16_t mss;
    uint8_t has_mss;
    uint8_t has_wscale;
    uint8_t wscale;
    uint8_t sack_permitted;
    uint8_t has_ts;
    uint8_t sack_count;
    uint32_t ts_val;
    uint32_t ts_ecr;
    uint32_t sack[8]; /* left, right pairs */
    uint32_t payload_off;
    uint32_t payload_len;
    uint16_t frag_off; /* fragment offset in bytes (RFC 791: the field times 8) */
    uint8_t more_frags; /* MF */
    uint8_t dont_fragment; /* built IPv4 TCP: the DF flag (0 when IP_MTU_DISCOVER lets routers fragment) */
    /* TCP Fast Open (RFC 7413 §4.1.1), on a SYN only: fo_kind 34, or 254 for the experimental form with
     * magic 0xF989 (RFC 6994), 0 for none; the cookie's fo_len bytes, big-endian from fo_hi's top byte */
    uint8_t fo_kind;
    uint8_t fo_len;
    uint64_t fo_hi;
    uint64_t fo_lo;
};

uint16_t fast_checksum(const char *buf, size_t len, uint32_t initial);
uint16_t fast_checksum_update16(uint16_t checksum, uint16_t old_word, uint16_t new_word);
uint16_t fast_tcp_checksum(uint32_t src, uint32_t dst, const char *tcp, size_t len);
int fast_parse(const char *buf, size_t len, struct fast_seg *out);
int fast_build_tcp(char *buf, size_t cap, const struct fast_seg *seg, const char *payload, size_t plen);
int fast_build_ipv4(char *buf, size_t cap, uint32_t src, uint32_t dst, uint8_t proto, uint8_t ttl,
                    uint16_t ident, const char *payload, size_t plen);
int fast_build_ipv6(char *buf, size_t cap, const struct fast_seg *hdr, const char *payload, size_t plen);
uint16_t fast_checksum6(const struct fast_seg *hdr, uint8_t proto, const char *buf, size_t len);

/* Whole batches and TUN offloads (batch.c). With IFF_VNET_HDR every TUN read and write starts with a
 * struct virtio_net_hdr of FAST_VNET_HDR_LEN bytes in host byte order. */
#define FAST_VNET_HDR_LEN 10
#define FAST_VNET_NEEDS_CSUM 1
#define FAST_VNET_DATA_VALID 2
#define FAST_VNET_GSO_NONE 0
#define FAST_VNET_GSO_TCPV4 1
#define FAST_VNET_GSO_TCPV6 4
#define FAST_VNET_GSO_ECN 128

struct fast_vnet_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
};

int fast_parse_csum(const char *buf, size_t len, struct fast_seg *out, int verify_tcp);
int fast_read_arena(int fd, char *buf, size_t cap, size_t start, size_t room, int max_packets, uint32_t *offs,
                    uint32_t *lens);
void fast_parse_batch(const char *buf, const uint32_t *offs, const uint32_t *lens, int n, int vnet,
                      struct fast_seg *segs, uint8_t *reasons, uint16_t *gso_sizes);
int fast_gro_batch(char *buf, const uint32_t *offs, int n, struct fast_seg *segs, const uint8_t *reasons,
                   uint16_t *gso_sizes, int *keep, int *acks_superseded);
int fast_build_batch(char *buf, size_t cap, const struct fast_seg *segs, const char **payloads,
                     const uint32_t *plens, const uint16_t *gso_sizes, const uint8_t *raw, int n, int vnet, int gso,
                     uint32_t *offs, uint32_t *lens, int max_records);
int fast_send_batch(int fd, char *scratch, size_t cap, const struct fast_seg *segs, const char **payloads,
                    const uint32_t *plens, const uint16_t *gso_sizes, const uint8_t *raw, int n, int vnet, int gso,
                    int *items);
int fast_write_records(int fd, const char *buf, const uint32_t *offs, const uint32_t *lens, int n);
int fast_vnet_complete_csum(char *rec, size_t len);

#endif
