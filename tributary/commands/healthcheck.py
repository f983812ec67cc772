"""``tributary healthcheck web|worker``: one line and exit 0 (healthy) or 1, for container
healthchecks (docker-compose.yml); the checks are in tributary/health.py."""

from __future__ import annotations

import socket
import sys

import click

from tributary.command_context import Context, config_option
from tributary.health import check_web, check_worker


def register(main: click.Group) -> None:
    @main.command()
    @config_option
    @click.argument("role", type=click.Choice(["web", "worker"]))
    @click.option("--host", default=None, help="worker: whose heartbeat counts (default: this host's name)")
    @click.option("--timeout", type=float, default=3.0, show_default=True, help="seconds to wait for an answer")
    @click.pass_obj
    def healthcheck(obj: Context, role: str, host: str | None, timeout: float) -> None:
        """Exit 0 if this host's web server answers /healthz (web) or its worker beat lately (worker)."""
        settings = obj.settings()
        if role == "web":
            ok, line = check_web(settings, timeout)
        else:
            ok, line = check_worker(settings, host or socket.gethostname(), timeout)
        click.echo(line)
        sys.exit(0 if ok else 1)
