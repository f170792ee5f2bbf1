"""Docker cannot run here, so test what can be: fly.toml and the Dockerfile name commands and
routes that exist, and the image's commands work from a plain (non-editable) venv laid out
like the image's /app."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from service.cli import cli
from service.dev.ports import free_port, wait_for_port
from service.web.app import create_app, create_metrics_app
from tests.support.commands import env
from tests.support.settings import make_settings

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {c.name or (c.callback.__name__ if c.callback else "") for c in cli.registered_commands}


def fly() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "fly.toml").read_text())


def dockerfile() -> list[str]:
    return [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]


def web_app_as_fly_runs_it() -> Starlette:
    """The web app with fly.toml's METRICS_ settings; building it connects to nothing (the
    URLs are never used)."""
    metrics = {k.lower(): v for k, v in fly()["env"].items() if k.startswith("METRICS_")}
    return create_app(make_settings("sqlite:///unused.db", "redis://unused", **metrics))


def paths(app: Starlette) -> dict[str, set[str] | None]:
    return {r.path: r.methods for r in app.routes if isinstance(r, Route)}


def build_installs() -> list[str]:
    """The build stage's RUN commands that install into /venv, in order."""
    lines = dockerfile()
    runtime_stage = [i for i, line in enumerate(lines) if line.startswith("FROM ")][1]
    return [line.removeprefix("RUN ") for line in lines[:runtime_stage] if "/venv/bin/" in line]


def subcommand(command: str) -> str:
    argv = shlex.split(command)
    assert argv[0] == "clerk-replica", command
    return argv[1]


def test_fly_processes_and_release_command_exist() -> None:
    config = fly()
    assert set(config["processes"]) == {"web", "worker"}
    for command in [*config["processes"].values(), config["deploy"]["release_command"]]:
        assert subcommand(command) in COMMANDS
    assert subcommand(config["deploy"]["release_command"]) == "migrate"
    assert subcommand(config["processes"]["web"]) == "serve"
    assert subcommand(config["processes"]["worker"]) == "worker"


def test_fly_http_service_is_the_web_group_only() -> None:
    config = fly()
    service = config["http_service"]
    assert service["processes"] == ["web"]
    assert service["internal_port"] == int(config["env"]["PORT"])
    assert service["concurrency"]["hard_limit"] >= service["concurrency"]["soft_limit"]
    routes = paths(web_app_as_fly_runs_it())
    for check in service["checks"]:
        assert check["method"] in (routes[check["path"]] or set())
    assert "/metrics" not in routes  # the public service does not expose metrics


def test_fly_scrapes_metrics_on_private_ports_it_can_reach() -> None:
    config = fly()
    variables, public = config["env"], config["http_service"]["internal_port"]
    metrics = {tuple(m["processes"]): m for m in config["metrics"]}
    assert metrics[("web",)]["port"] == int(variables["METRICS_PORT"]) != public
    assert metrics[("worker",)]["port"] == int(variables["WORKER_METRICS_PORT"]) != public
    served = paths(create_metrics_app(web_app_as_fly_runs_it()))
    assert "GET" in (served[metrics[("web",)]["path"]] or set())
    # Fly's scraper is not on the machine: loopback, the default, would never answer it.
    assert variables["METRICS_HOST"] == variables["WORKER_METRICS_HOST"] == "0.0.0.0"
    # [[metrics]] sends no Authorization header: a token in fly.toml would refuse the scraper.
    assert "METRICS_TOKEN" not in variables


def test_both_stages_start_from_one_base_image_pinned_by_digest() -> None:
    bases = {line.split()[1] for line in dockerfile() if line.startswith("FROM ")}
    assert len(bases) == 1, bases
    image, _, digest = bases.pop().partition("@")
    assert image.startswith("python:") and digest.startswith("sha256:")
    assert len(digest.removeprefix("sha256:")) == 64


def test_dockerfile_is_multistage_non_root_and_runs_a_command() -> None:
    lines = dockerfile()
    assert sum(line.startswith("FROM ") for line in lines) == 2
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user and user[-1] not in ("root", "0")
    cmd = next(line for line in lines if line.startswith("CMD "))
    argv = [part.strip('" ') for part in cmd[4:].strip("[]").split(",")]
    assert argv[0] == "clerk-replica" and argv[1] in COMMANDS
    assert "COPY --chown=app:app migrations ./migrations" in lines
    port = next(p for line in lines for p in line.split() if p.startswith("PORT="))
    assert port == f"PORT={fly()['http_service']['internal_port']}"


@pytest.mark.slow
def test_image_commands_work_from_a_plain_venv(tmp_path: Path, redis_url: str) -> None:
    """Mirror the Dockerfile: its build stage's own install commands (the hash-checked build
    backend and runtime locks, then the package built without build isolation and with no
    dependencies of its own, then pip check) into a fresh venv,
    /app holding only pyproject.toml and migrations/, then release, web and worker commands."""
    venv, app = tmp_path / "venv", tmp_path / "app"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "service", source / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in (
        "pyproject.toml",
        "README.md",
        "requirements/build.txt",
        "requirements/runtime.txt",
    ):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    commands = build_installs()
    assert len(commands) == 3, commands
    for command in commands:
        install = subprocess.run(
            command.replace("/venv/", f"{venv}/"),
            shell=True,
            cwd=source,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert install.returncode == 0, f"{command}\n{install.stderr[-3000:]}"
    app.mkdir()
    shutil.copy(ROOT / "pyproject.toml", app / "pyproject.toml")
    shutil.copytree(
        ROOT / "migrations", app / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    binary = str(venv / "bin" / "clerk-replica")
    database = f"sqlite:///{tmp_path}/replica.db"
    values = {"database_url": database, "redis_url": redis_url, "log_format": "json"}

    release = subprocess.run(
        [binary, "migrate"], cwd=app, env=env(**values), capture_output=True, text=True, timeout=120
    )
    assert release.returncode == 0, release.stderr

    port = free_port()
    web = subprocess.Popen(
        [binary, "serve"],
        cwd=app,
        env=env(
            **values,
            host="127.0.0.1",
            port=str(port),
            clerk_webhook_signing_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json()["ready"] is True
    finally:
        web.terminate()
        web.wait(20)
    worker = subprocess.run(
        [binary, "worker", "--burst"],
        cwd=app,
        env=env(**values, queue_prefix=f"deploy-{port}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
