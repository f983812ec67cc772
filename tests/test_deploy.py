"""The container deployment's contract, read from docker-compose.yml and the Dockerfile (docker
itself is not needed): one image built once, durable Redis that never evicts, web and scalable
workers with healthchecks and restarts, the config mounted read-only where the image reads it,
and the public base URL given to every process."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from service.config import Settings
from tests.conftest import REPO_ROOT

APP_SERVICES = ("web", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def test_one_image_built_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    built = [name for name, s in services.items() if "build" in s]
    assert built == ["web"]
    assert {services[name]["image"] for name in APP_SERVICES} == {"tributary:local"}
    assert command_of(services["web"])[-1] == "serve" and command_of(services["worker"])[-1] == "worker"


def test_redis_keeps_writes_and_never_evicts(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(command_of(redis))
    assert re.search(r"--appendonly\s+yes", command)
    assert re.search(r"--maxmemory-policy\s+noeviction", command)
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert redis["healthcheck"]["test"]


def test_the_worker_scales(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # `--scale worker=N` refuses a fixed container name or a published host port.
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_restart_check_health_and_wait_for_redis(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"] == ["CMD", "tributary", "healthcheck", name]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert env_of(service)["REDIS_URL"].startswith("redis://redis:6379/")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_config_is_mounted_read_only_where_the_app_reads_it(
    compose: dict[str, Any], dockerfile: str, name: str
) -> None:
    service = compose["services"][name]
    config_file = env_of(service)["TRIBUTARY_CONFIG"]
    assert f"ENV TRIBUTARY_CONFIG={config_file}" in dockerfile
    mounts = [v.split(":") for v in service["volumes"]]
    assert any(
        source.rstrip("/") in ("./config", "config")
        and config_file.startswith(target.rstrip("/") + "/")
        and mode == "ro"
        for source, target, mode in mounts
    ), mounts
    assert (REPO_ROOT / "config" / config_file.rsplit("/", 1)[-1]).is_file()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_process_gets_the_public_base_url(compose: dict[str, Any], name: str) -> None:
    # The worker renders hub payloads with [server] base_url, so it needs it as much as the web.
    env = env_of(compose["services"][name])
    key = f"{Settings.model_config['env_prefix']}SERVER{Settings.model_config['env_nested_delimiter']}BASE_URL"
    assert key in env and "TRIBUTARY_BASE_URL" in env[key]


def test_web_listens_beyond_the_container(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert env_of(web)["TRIBUTARY_SERVER__HOST"] == "0.0.0.0"
    assert any(str(p).endswith(":8080") for p in web["ports"])


def test_the_image_runs_as_a_user_not_root(dockerfile: str) -> None:
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
