"""The deployment files agree with each other and with the code: the container and the systemd
unit run a `leadprep serve` the CLI accepts, keep the state where it is backed up, and the
compose file's oauth2-proxy is the one address the example config believes. (The image build
itself needs a Docker daemon and a registry, which CI does not have.)"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from typer.main import get_command

from leadprep.cli import app
from leadprep.config import parse_config
from leadprep.signin import ProxyHeader

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def serve_accepts(args: list[str]) -> None:
    """Fail unless ``leadprep serve`` takes these arguments (Click parses them as the CLI does)."""
    assert args[:2] == ["leadprep", "serve"], args
    command = get_command(app).commands["serve"]  # type: ignore[attr-defined]
    command.make_context("serve", list(args[2:]))


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def dockerfile() -> dict[str, list[str]]:
    """Each instruction's lines (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.setdefault(word.upper(), []).append(rest.strip())
    return found


def test_the_container_runs_serve_as_a_user_with_its_state_on_the_volume():
    docker = dockerfile()
    cmd = json.loads(docker["CMD"][-1])
    serve_accepts(cmd)
    port = option(cmd, "--port")
    assert docker["EXPOSE"] == [port]
    assert f"127.0.0.1:{port}/health" in docker["HEALTHCHECK"][0]
    assert docker["USER"] == ["leadprep"]
    env = dict(shlex.split(part)[0].split("=", 1) for part in shlex.split(docker["ENV"][0]))
    volume = json.loads(docker["VOLUME"][0])
    assert PurePosixPath(env["LEADPREP_STATE"]).parent.as_posix() in volume
    assert any("[pdf]" in line for line in docker["RUN"])  # the PDFs work in the image
    assert docker["STOPSIGNAL"] == ["SIGTERM"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "*.db", ".env"} <= set(ignored)  # no state or secret in the image


def test_compose_puts_oauth2_proxy_in_front_and_the_config_believes_only_it(monkeypatch):
    for name in ("HUBSPOT_ACCESS_TOKEN", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "set-in-the-env-file")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    proxy, server = compose["services"]["oauth2-proxy"], compose["services"]["leadprep"]
    assert "ports" not in server  # reachable only through the proxy
    serve_accepts(server["command"])
    proxy_ip = proxy["networks"]["internal"]["ipv4_address"]
    server_ip = server["networks"]["internal"]["ipv4_address"]
    config = parse_config(yaml.safe_load((DEPLOY / "leadprep.example.yaml").read_text()))
    assert config.server.sign_in == "proxy" and config.server.proxy is not None
    policy = ProxyHeader(config.server.proxy)
    assert policy.trusts(proxy_ip)
    gateway = proxy_ip.rsplit(".", 1)[0] + ".1"  # what the host's published ports come from
    assert not policy.trusts(server_ip) and not policy.trusts(gateway)

    cfg = {}
    for line in (DEPLOY / "oauth2-proxy.cfg").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            cfg[key.strip()] = yaml.safe_load(value.strip())
    port = option(server["command"], "--port")
    assert cfg["upstreams"] == [f"http://{server_ip}:{port}/"]
    # oauth2-proxy's pass_user_headers sends X-Forwarded-Email: the header the config reads
    assert cfg["pass_user_headers"] is True
    assert config.server.proxy.header == "X-Forwarded-Email"
    assert cfg["pass_access_token"] is False  # the IdP's token stays in the proxy

    data = next(v for v in server["volumes"] if v.endswith(":/data"))
    assert data.split(":")[0] in compose["volumes"]
    assert str(config.state.path).startswith("/data/")
    assert str(config.output.dir).startswith("/data/")
    assert "${" not in (DEPLOY / "compose.yaml").read_text()  # secrets come from .env only


def unit() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "leadprep.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_systemd_unit_runs_serve_behind_a_proxy_and_writes_only_its_state_directory():
    service = unit()
    command = shlex.split(service["ExecStart"][0])
    assert command[0].endswith("/leadprep")
    serve_accepts(["leadprep", *command[1:]])
    assert option(command, "--host") == "127.0.0.1"  # the proxy in front is the way in
    env = dict(v.split("=", 1) for v in service["Environment"])
    state_dir = "/var/lib/" + service["StateDirectory"][0]
    assert env["LEADPREP_STATE"].startswith(state_dir + "/")
    assert service["ReadWritePaths"] == [state_dir]
    assert service["ProtectSystem"] == ["strict"] and service["NoNewPrivileges"] == ["yes"]
    assert service["User"] == ["leadprep"]
    assert int(service["TimeoutStopSec"][0]) >= 600  # a scheduled run finishes before it stops


def test_systemd_analyze_accepts_the_unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    leadprep = Path(sys.executable).parent / "leadprep"
    text = (DEPLOY / "leadprep.service").read_text()
    (tmp_path / "leadprep.service").write_text(
        text.replace("/opt/leadprep/bin/leadprep", str(leadprep))
    )
    done = subprocess.run(
        [analyze, "verify", str(tmp_path / "leadprep.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        # this machine has no such user or secrets file: the unit is for the server
        if line.strip() and "leadprep.env" not in line and "User" not in line
    ]
    assert problems == [], problems


def test_every_deployment_file_is_in_the_repository():
    """A file the .gitignore hides (a `leadprep.yaml`) would pass here and be missing on a clone."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "Dockerfile", ".dockerignore", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wanted = ["Dockerfile", ".dockerignore"] + [
        f"deploy/{p.name}" for p in sorted(DEPLOY.iterdir()) if p.is_file()
    ]
    assert sorted(wanted) == sorted(tracked)
