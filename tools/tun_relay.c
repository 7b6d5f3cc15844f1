/* tun_relay: the ceiling for any userspace program that moves packets through TUN.
 *
 *     tun_relay NETNS_A TUN_A NETNS_B TUN_B READY_FILE
 *
 * Opens TUN_A inside network namespace NETNS_A and TUN_B inside NETNS_B (names from `ip netns`), then
 * copies every packet read from one device into the other until SIGINT/SIGTERM. Reads are drained in a
 * loop per wake-up, one read() and one write() per packet: what the kernel's TUN interface costs, with
 * no protocol work at all. The caller configures addresses and brings the devices up once READY_FILE
 * exists. tools/bench compiles and runs it; nothing here touches any other namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static int enter_netns(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/var/run/netns/%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "tun_relay: cannot enter network namespace %s: %s\n", name, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int open_tun(const char *netns, const char *name) {
    if (enter_netns(netns) < 0)
        return -1;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "tun_relay: /dev/net/tun: %s\n", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "tun_relay: TUNSETIFF %s: %s\n", name, strerror(errno));
        return -1;
    }
    return fd;
}

/* Move every packet that is ready from `from` to `to`; returns -1 on a hard error. */
static int drain(int from, int to, unsigned long *count) {
    static unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        if (write(to, buf, (size_t)n) == n)
            (*count)++; /* a full queue on the other side drops the packet, like a wire */
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: tun_relay NETNS_A TUN_A NETNS_B TUN_B READY_FILE\n");
        return 2;
    }
    int a = open_tun(argv[1], argv[2]);
    int b = a < 0 ? -1 : open_tun(argv[3], argv[4]);
    if (a < 0 || b < 0)
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *ready = fopen(argv[5], "w");
    if (ready)
        fclose(ready);
    unsigned long a_to_b = 0, b_to_a = 0;
    struct pollfd fds[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
    while (!stop) {
        if (poll(fds, 2, 200) < 0) {
            if (errno == EINTR)
                continue;
            perror("tun_relay: poll");
            return 1;
        }
        if ((fds[0].revents & POLLIN) && drain(a, b, &a_to_b) < 0)
            break;
        if ((fds[1].revents & POLLIN) && drain(b, a, &b_to_a) < 0)
            break;
    }
    printf("relayed %lu packets a->b, %lu b->a\n", a_to_b, b_to_a);
    return 0;
}
