"""tcpstack: a userspace TCP/IP stack in Python over a Linux TUN device."""
