/* tcpstack C fast path: Internet checksums, IPv4+TCP parse/build, batched fd I/O. */
#ifndef TCPSTACK_FAST_H
#define TCPSTACK_FAST_H

#include <stddef.h>
#include <stdint.h>

/* Why a packet was rejected; 0 means accepted. FAST_FRAGMENT is the one non-zero code that is not a
 * rejection. The others are mirrored by stack.wire.reasons.DropReason. */
enum fast_reason {
    FAST_OK = 0,
    FAST_TOO_SHORT = 1,        /* shorter than an IPv4 header */
    FAST_BAD_VERSION = 2,      /* not IPv4 */
    FAST_BAD_IHL = 3,          /* IHL < 5 or header longer than the packet */
    FAST_BAD_TOTAL_LENGTH = 4, /* total length < IHL or > bytes received */
    FAST_BAD_IP_CHECKSUM = 5,
    FAST_FRAGMENT = 6,         /* not a rejection: MF set or offset != 0; the IP fields (frag_off,
                                  more_frags) are filled and the payload goes to reassembly */
    FAST_TCP_TOO_SHORT = 7,    /* fewer than 20 bytes of TCP header */
    FAST_BAD_TCP_OFFSET = 8,   /* data offset < 5 or beyond the IP payload */
    FAST_BAD_TCP_CHECKSUM = 9,
    FAST_BAD_OPTION = 10,      /* option length 0/1 or running past the header */
};

#define FAST_MAX_SACK 4

/* A whole IPv4(+TCP) packet, flattened. Addresses and numbers are in host byte order. */
struct fast_seg {
    uint32_t src;
    uint32_t dst;
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
};

uint16_t fast_checksum(const char *buf, size_t len, uint32_t initial);
uint16_t fast_checksum_update16(uint16_t checksum, uint16_t old_word, uint16_t new_word);
uint16_t fast_tcp_checksum(uint32_t src, uint32_t dst, const char *tcp, size_t len);
int fast_parse(const char *buf, size_t len, struct fast_seg *out);
int fast_build_tcp(char *buf, size_t cap, const struct fast_seg *seg, const char *payload, size_t plen);
int fast_build_ipv4(char *buf, size_t cap, uint32_t src, uint32_t dst, uint8_t proto, uint8_t ttl,
                    uint16_t ident, const char *payload, size_t plen);
int fast_read_batch(int fd, char *buf, size_t slot, int max_packets, uint32_t *lens);
int fast_write_batch(int fd, const char *buf, const uint32_t *lens, int n);

#endif
