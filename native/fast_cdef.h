enum fast_reason {
    FAST_OK = 0,
    FAST_TOO_SHORT = 1,
    FAST_BAD_VERSION = 2,
    FAST_BAD_IHL = 3,
    FAST_BAD_TOTAL_LENGTH = 4,
    FAST_BAD_IP_CHECKSUM = 5,
    FAST_FRAGMENT = 6,
    FAST_TCP_TOO_SHORT = 7,
    FAST_BAD_TCP_OFFSET = 8,
    FAST_BAD_TCP_CHECKSUM = 9,
    FAST_BAD_OPTION = 10,
};

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
    uint32_t sack[8];
    uint32_t payload_off;
    uint32_t payload_len;
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
