"""Where webhooks may post: http(s) URLs whose host resolves to public addresses only.

A URL naming a loopback, private, link-local or otherwise non-global address would let any
client make the service call into its own network (cloud metadata at 169.254.169.254, a
database on 10.0.0.5): refused unless the deployment allows it. The check runs when a job is
created and again at each delivery, and the delivery connects to the address it checked, so
a name that resolves elsewhere between the two (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class WebhookUrl:
    """The parts of a webhook URL a delivery needs."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line


def parse_networks(text: str) -> list[Network]:
    """`10.0.0.0/8, 127.0.0.1` as networks; ValueError names an entry that isn't one."""
    networks = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"DYNGEN_WEBHOOK_ALLOWED_NETWORKS: {entry!r} is not an IP address or CIDR"
            ) from None
    return networks


def split_url(url: str) -> WebhookUrl:
    """The URL's parts; ValueError says why it can't be a webhook."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"a webhook URL may be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise ValueError(f"not a valid URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a webhook URL may not carry a user name or password")
    default = 443 if parts.scheme == "https" else 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookUrl(parts.scheme, parts.hostname, port or default, target)


def _plain(address: IPAddress) -> IPAddress:
    """An IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class WebhookPolicy:
    """Which addresses webhooks may reach, from the settings."""

    def __init__(self, allow_private: bool, allowed_networks: str) -> None:
        self.allow_private = allow_private
        self.allowed = parse_networks(allowed_networks)

    def permits(self, address: IPAddress) -> bool:
        """Public addresses, and any other the settings allow."""
        address = _plain(address)
        if self.allow_private or any(address in network for network in self.allowed):
            return True
        return address.is_global and not address.is_multicast

    def addresses(self, url: str) -> tuple[WebhookUrl, list[IPAddress]]:
        """The URL's parts and the addresses its host resolves to, all of them permitted;
        Invalid (422 `webhook_url_forbidden` / `webhook_url_unresolvable`) otherwise."""
        try:
            parts = split_url(url)
        except ValueError as err:
            raise _invalid("webhook_url_invalid", f"webhook.url: {err}", url) from None
        found = _resolve(parts, url)
        refused = [str(a) for a in found if not self.permits(a)]
        if refused:
            message = (
                f"webhook.url: {parts.host} resolves to {', '.join(refused)}, a loopback, "
                "private or link-local address this server does not post to"
            )
            raise _invalid("webhook_url_forbidden", message, url)
        return parts, found


def _resolve(parts: WebhookUrl, url: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(parts.host, parts.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        message = f"webhook.url: the host {parts.host!r} does not resolve ({err})"
        raise _invalid("webhook_url_unresolvable", message, url) from None
    # scope ids (fe80::1%eth0) are dropped: the address alone decides
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )


def _invalid(code: str, message: str, url: str) -> Invalid:
    return Invalid(message, code=code, details=[{"field": "webhook.url", "url": url[:200]}])
