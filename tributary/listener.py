"""The web server's listening socket, opened before anything else starts.

``tributary run`` opens it itself and hands it to its web server child (``TRIBUTARY_LISTEN_FD``):
a busy port is one line before Redis or any child starts, and a restarted web server takes the
same socket over, so connections wait in its backlog rather than being refused meanwhile.
"""

from __future__ import annotations

import errno
import os
import socket

from service.errors import TributaryError

LISTEN_FD_ENV = "TRIBUTARY_LISTEN_FD"
BACKLOG = 512


class ListenError(TributaryError):
    pass


def bind_listener(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror} ([server] host)") from None
    family, _, _, _, address = infos[0]
    dualstack = family == socket.AF_INET6 and host in ("::", "") and socket.has_dualstack_ipv6()
    try:
        return socket.create_server(address, family=family, backlog=BACKLOG, dualstack_ipv6=dualstack)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"port {port} on {host} is already in use: stop what uses it, or pick another port "
                f"([server] port, e.g. TRIBUTARY_SERVER__PORT={port + 1})"
            ) from None
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def inherited_listener() -> socket.socket | None:
    """The socket a supervising ``tributary run`` opened for us, if any."""
    fd = os.environ.get(LISTEN_FD_ENV)
    if not fd or not fd.isdigit():
        return None
    return socket.socket(fileno=int(fd))
