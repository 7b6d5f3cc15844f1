"""The config a connection takes on its path: the stack's own over IPv4, 20 bytes less MSS over IPv6
(RFC 8200's 40-byte header), lo's MSS with the stack itself."""

from __future__ import annotations

from dataclasses import replace

from stack.tcp.config import LOOPBACK_MSS, LOOPBACK_MSS6, PathConfigs, TcpConfig
from stack.wire import addr

V4, PEER4, LO4 = addr.parse("10.0.0.2"), addr.parse("10.0.0.1"), addr.parse("127.0.0.1")
V6, PEER6, LO6 = addr.parse("fd00::2"), addr.parse("fd00::1"), addr.parse("::1")


def test_path_configs_ipv4_to_a_peer_is_the_config_itself():
    config = TcpConfig(mss=1460)
    assert PathConfigs().of(config, V4, PEER4) is config


def test_path_configs_ipv6_takes_twenty_bytes_off_the_mss():
    assert PathConfigs().of(TcpConfig(mss=1460), V6, PEER6).mss == 1440


def test_path_configs_loopback_takes_los_mss_in_each_family():
    configs, config = PathConfigs(), TcpConfig(mss=1460)
    assert configs.of(config, LO4, LO4).mss == LOOPBACK_MSS
    assert configs.of(config, LO6, LO6).mss == LOOPBACK_MSS6


def test_path_configs_follow_a_replaced_config_and_keep_the_rest_of_it():
    """A script's sysctl replaces the config: the IPv6 variant is of the new one, made once."""
    configs = PathConfigs()
    old = TcpConfig(mss=1460)
    assert configs.of(old, V6, PEER6).nodelay is False
    new = replace(old, nodelay=True)
    ipv6 = configs.of(new, V6, PEER6)
    assert ipv6.nodelay is True and ipv6.mss == 1440
    assert configs.of(new, V6, PEER6) is ipv6


def test_path_configs_learned_path_mtu_lowers_the_mss_as_linuxs_route_advmss():
    """A path MTU an ICMP error taught lowers the MSS offered (Linux ipv4_default_advmss: MTU - 40, at
    least 256; ip6_default_advmss: MTU - 60, at least 1220); one larger than the link's changes nothing."""
    configs, config = PathConfigs(), TcpConfig(mss=1460)
    assert configs.of(config, V4, PEER4, 1000).mss == 960
    assert configs.of(config, V4, PEER4, 1000) is configs.of(config, V4, PEER4, 1000)
    assert configs.of(config, V4, PEER4, 68).mss == 256
    assert configs.of(config, V6, PEER6, 1280).mss == 1220
    assert configs.of(config, V4, PEER4, 9000) is config
