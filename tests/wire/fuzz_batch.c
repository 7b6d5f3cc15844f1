/* Sanitizer driver for batch.c: garbage records with random virtio_net_hdrs through the batch parser and
 * the checksum completion, random segment runs through the batch builder at exactly the size it needs
 * and one byte less. Built by test_sanitizers.py with -fsanitize=address,undefined. */
#include "fast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS 8

static uint64_t state = 0x2545f4914f6cdd1dull;

static uint32_t next_random(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

static void parse_round(void)
{
    static char buf[RECORDS * 2048];
    uint32_t offs[RECORDS], lens[RECORDS];
    struct fast_seg segs[RECORDS];
    uint8_t reasons[RECORDS];
    uint16_t gso[RECORDS];
    size_t pos = 0;
    for (int i = 0; i < RECORDS; i++) {
        uint32_t len = next_random() % 2048;
        offs[i] = (uint32_t)pos;
        lens[i] = len;
        for (uint32_t k = 0; k < len; k++)
            buf[pos + k] = (char)next_random();
        if (len > FAST_VNET_HDR_LEN + 20 && next_random() % 2)
            buf[pos + FAST_VNET_HDR_LEN] = 0x45; /* often an IPv4 header after the vnet header */
        pos += len;
    }
    int vnet = next_random() % 2 ? FAST_VNET_HDR_LEN : 0;
    fast_parse_batch(buf, offs, lens, RECORDS, vnet, segs, reasons, gso);
    if (!vnet) {
        int keep[RECORDS], acks;
        int kept = fast_gro_batch(buf, offs, RECORDS, segs, reasons, gso, keep, &acks);
        if (kept < 0 || kept > RECORDS) {
            printf("gro kept %d of %d records\n", kept, RECORDS);
            exit(1);
        }
    }
    for (int i = 0; i < RECORDS; i++) {
        char *copy = malloc(lens[i] ? lens[i] : 1);
        memcpy(copy, buf + offs[i], lens[i]);
        fast_vnet_complete_csum(copy, lens[i]);
        free(copy);
    }
}

static void build_round(void)
{
    struct fast_seg segs[RECORDS];
    const char *payloads[RECORDS];
    uint32_t plens[RECORDS];
    static uint32_t offs[RECORDS * 9000], lens[RECORDS * 9000]; /* a piece per payload byte at most */
    uint16_t gso[RECORDS];
    uint8_t raw[RECORDS];
    static char data[70000];
    size_t need = 0;
    int records = 0;
    uint32_t seq = next_random();
    int vnet = next_random() % 2 ? FAST_VNET_HDR_LEN : 0;
    for (int i = 0; i < RECORDS; i++) {
        memset(&segs[i], 0, sizeof(segs[i]));
        segs[i].version = 4;
        segs[i].src = 0x0a000001;
        segs[i].dst = 0x0a000002;
        segs[i].ttl = 64;
        segs[i].flags = (uint8_t)(next_random() % 4 ? 0x10 : next_random());
        segs[i].has_ts = next_random() % 2;
        segs[i].sack_count = (uint8_t)(next_random() % 5);
        segs[i].seq = seq;
        raw[i] = next_random() % 8 == 0;
        plens[i] = next_random() % 3 ? 1448 : next_random() % 9000;
        gso[i] = (uint16_t)(!raw[i] && next_random() % 4 == 0 ? 1 + next_random() % 1448 : 0);
        payloads[i] = data;
        seq += plens[i];
        /* without vnet a super-segment is cut here: a record, and its headers, per piece */
        int pieces = !vnet && gso[i] && plens[i] > gso[i] ? (int)((plens[i] + gso[i] - 1) / gso[i]) : 1;
        records += pieces;
        need += (size_t)pieces * (FAST_VNET_HDR_LEN + 20 + 60) + plens[i];
    }
    static char out[RECORDS * 9000 * 80 + 70000];
    int n = fast_build_batch(out, need, segs, payloads, plens, gso, raw, RECORDS, vnet, vnet != 0, offs, lens,
                             records);
    if (n > 0) {
        size_t end = offs[n - 1] + lens[n - 1];
        if (end > need) {
            printf("build wrote past its capacity: %zu > %zu\n", end, need);
            exit(1);
        }
    } else {
        printf("build failed with room enough: %zu bytes, %d records\n", need, records);
        exit(1);
    }
    fast_build_batch(out, next_random() % (need + 1), segs, payloads, plens, gso, raw, RECORDS, vnet, vnet != 0,
                     offs, lens, (int)(next_random() % (unsigned)(records + 1)));
}

/* Runs of valid segments of one flow (sizes, flags, IDs and bytes now and then disturbed) through the
 * parser and software GRO: a merged payload must stay inside the records it was moved from. */
static void gro_round(void)
{
    struct fast_seg segs[RECORDS];
    const char *payloads[RECORDS];
    uint32_t plens[RECORDS], offs[RECORDS], lens[RECORDS];
    uint16_t gso[RECORDS];
    uint8_t raw[RECORDS], reasons[RECORDS];
    static char data[2000];
    static char out[RECORDS * 2100];
    uint32_t seq = next_random();
    for (int i = 0; i < RECORDS; i++) {
        memset(&segs[i], 0, sizeof(segs[i]));
        segs[i].version = 4;
        segs[i].src = 0x0a000001;
        segs[i].dst = 0x0a000002;
        segs[i].ttl = 64;
        segs[i].flags = (uint8_t)(next_random() % 4 ? 0x10 : next_random());
        segs[i].has_ts = 1;
        segs[i].ident = (uint16_t)(next_random() % 4 ? i : next_random());
        segs[i].seq = seq;
        raw[i] = 0;
        gso[i] = 0;
        plens[i] = next_random() % 3 ? 1448 : next_random() % 2000;
        payloads[i] = data;
        seq += plens[i];
    }
    int n = fast_build_batch(out, sizeof(out), segs, payloads, plens, gso, raw, RECORDS, 0, 0, offs, lens, RECORDS);
    if (n != RECORDS) {
        printf("gro round: built %d records\n", n);
        exit(1);
    }
    if (next_random() % 4 == 0)
        out[next_random() % (offs[n - 1] + lens[n - 1])] ^= (char)(1 + next_random() % 255);
    fast_parse_batch(out, offs, lens, n, 0, segs, reasons, gso);
    int keep[RECORDS], acks;
    int kept = fast_gro_batch(out, offs, n, segs, reasons, gso, keep, &acks);
    for (int k = 0; k < kept; k++) {
        int i = keep[k];
        int next = k + 1 < kept ? keep[k + 1] : n;
        uint32_t end = offs[next - 1] + lens[next - 1];
        if (reasons[i] == FAST_OK && offs[i] + segs[i].payload_off + segs[i].payload_len > end) {
            printf("gro: record %d's payload runs past the records it merged\n", i);
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    for (long r = 0; r < rounds; r++) {
        parse_round();
        build_round();
        gro_round();
    }
    printf("%ld rounds\n", rounds);
    return 0;
}
