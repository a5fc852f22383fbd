"""leadprep installed as a user installs it, every command run once against local fakes.

Builds the wheel, installs it *with its dependencies* (and the pdf extra, as the README says) into
a fresh virtualenv that has none of the dev extra, then runs the installed ``leadprep`` as a
separate process: every module imports, ``prep --demo`` writes HTML and PDF, ``send`` delivers to
a real SMTP server and posts to a Slack webhook fake, ``history``, ``commitments``, ``doctor``
and ``state info`` answer, a closed pipe is quiet, ``review`` starts, serves and stops, ``serve``
signs a manager in by access link and serves a PDF, and
``sync`` writes a commitment back to the fake HubSpot as a task.

    python -m tests.smoke            (what `make smoke` and CI run)
    python -m tests.smoke --keep     (leave the virtualenv and files to look at)

The fakes run here, in the dev environment; only leadprep runs in the clean one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fakes.smtp_server import SMTPServer
from tests.fakes.webhooks import FakeWebhooks

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-30"


class SmokeFailure(Exception):
    pass


def run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None, ok=(0,)):
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    if result.returncode not in ok:
        raise SmokeFailure(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result


def step(name: str) -> None:
    print(f"smoke: {name}", flush=True)


def install(work: Path) -> Path:
    """Build the wheel and install it with its dependencies into a new virtualenv; its bin/."""
    step("building the wheel")
    dist = work / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", dist, ROOT)  # fmt: skip
    (wheel,) = dist.glob("leadprep-*.whl")
    step(f"installing {wheel.name}[pdf] with its dependencies into a clean virtualenv")
    venv = work / "venv"
    # From the base interpreter, so nothing of the dev virtualenv is visible in the new one.
    base = getattr(sys, "_base_executable", sys.executable)
    run(base, "-m", "venv", venv)
    bin_ = venv / "bin"
    run(bin_ / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
        f"{wheel}[pdf]")  # fmt: skip
    dev_only = run(bin_ / "python", "-c", "import importlib.util as u; print("
                   "[m for m in ('pytest', 'aiosmtpd', 'hypothesis') if u.find_spec(m)])")  # fmt: skip
    if dev_only.stdout.strip() != "[]":
        raise SmokeFailure(f"the clean virtualenv has dev packages: {dev_only.stdout}")
    return bin_


def imports_everything(bin_: Path) -> None:
    step("every module of the package imports")
    run(bin_ / "python", "-c",
        "import importlib, pkgutil, leadprep\n"
        "names = [m.name for m in pkgutil.walk_packages(leadprep.__path__, 'leadprep.')\n"
        "         if not m.name.endswith('__main__')]  # that one runs the command line\n"
        "for name in names: importlib.import_module(name)\n"
        "assert len(names) > 30, names\n",
        cwd=Path(tempfile.gettempdir()))  # fmt: skip


def demo(bin_: Path, work: Path, env: dict[str, str]) -> None:
    step("prep --demo, HTML and PDF")
    out = work / "demo-sheets"
    result = run(bin_ / "leadprep", "prep", "--demo", "--as-of", AS_OF, "--out", out,
                 "--format", "html,pdf", env=env, cwd=work)  # fmt: skip
    pdfs = sorted(out.glob("*.pdf"))
    if (out / "packets.pdf") not in pdfs or len(pdfs) < 2:
        raise SmokeFailure(f"the demo wrote no PDFs: {sorted(p.name for p in out.iterdir())}")
    if not all(p.read_bytes().startswith(b"%PDF") for p in pdfs):
        raise SmokeFailure("a PDF of the demo is not a PDF")
    if "To print:" not in result.stdout:
        raise SmokeFailure(f"prep did not say where the PDFs are:\n{result.stdout}")


def org(work: Path, smtp_port: int) -> Path:
    """A file-export setup: two reps under one manager, email and Slack delivery."""
    (work / "deals.csv").write_text(
        "deal_id,deal_name,account,owner_email,owner_name,stage,amount,close_date,next_step\n"
        "D-1,Acme rollout,Acme,alex@example.com,Alex Morgan,Proposal,50000,2027-01-15,Pricing\n"
        "D-2,Globex pilot,Globex,sam@example.com,Sam Rivera,Discovery,,,\n",
        encoding="utf-8",
    )
    config = work / "leadprep.yaml"
    config.write_text(
        "crm: {kind: file, file: {path: deals.csv}}\n"
        "state: {path: state.db}\n"
        "teams: [{manager: {name: Dana Kim, email: dana@example.com},"
        " reps: [alex@example.com, sam@example.com]}]\n"
        f"email:\n  smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, timeout: 5}}\n"
        '  from: "Pipeline prep <prep@example.com>"\n'
        'chat:\n  slack: "${SLACK_WEBHOOK}"\n',
        encoding="utf-8",
    )
    return config


def send(bin_: Path, work: Path, env: dict[str, str]) -> None:
    step("send: email to a local SMTP server, a post to a local Slack webhook")
    smtp = SMTPServer()
    smtp.start()
    try:
        with FakeWebhooks() as hooks:
            config = org(work, smtp.port)
            env = {**env, "SLACK_WEBHOOK": hooks.url("/slack/T000/B000/smoke")}
            run(bin_ / "leadprep", "send", "-c", config, "--as-of", AS_OF, env=env, cwd=work)
            if [rcpts for rcpts, _ in smtp.inbox.messages] != [["dana@example.com"]]:
                raise SmokeFailure(f"the SMTP server got {smtp.inbox.messages}")
            if len(hooks.posts) != 1:
                raise SmokeFailure(f"the webhook got {len(hooks.posts)} posts")
    finally:
        smtp.stop()


def reads(bin_: Path, work: Path, env: dict[str, str]) -> None:
    config = work / "leadprep.yaml"
    step("commit, commitments, history, doctor, state info")
    run(bin_ / "leadprep", "commit", "-c", config, "D-1", "Bring the CFO to the pricing call",
        "--as-of", AS_OF, env=env, cwd=work)  # fmt: skip
    listed = run(bin_ / "leadprep", "commitments", "-c", config, env=env, cwd=work)
    if "Bring the CFO" not in listed.stdout:
        raise SmokeFailure(f"commitments does not list the commitment:\n{listed.stdout}")
    for args in (
        ("history", "-c", config, "--as-of", AS_OF),
        ("history", "-c", config, "--as-of", AS_OF, "--format", "csv"),
        ("state", "info", "-c", config),
    ):
        run(bin_ / "leadprep", *args, env=env, cwd=work)
    run(bin_ / "leadprep", "doctor", "-c", config, env=env, cwd=work, ok=(0, 2))
    step("a closed pipe: history --format csv | true")
    piped = subprocess.run(
        f"'{bin_}/leadprep' history -c '{config}' --as-of {AS_OF} --format csv | true;"
        " exit ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, env=env, cwd=work,
    )  # fmt: skip
    if piped.returncode not in (0, 141) or piped.stderr:
        raise SmokeFailure(f"exit {piped.returncode}, stderr: {piped.stderr}")


@contextmanager
def server(
    bin_: Path, work: Path, env: dict[str, str], *args: str | Path, ready: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The installed ``leadprep *args --port <free port>`` running, once ``ready`` (a path) answers;
    yields the process and its base URL, and kills it if the block leaves it running."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [bin_ / "leadprep", *args, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=work,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}{ready}", timeout=5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SmokeFailure(
                        f"{args[0]} did not serve: {process.communicate()}"
                    ) from None
                time.sleep(0.3)
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()


def stopped(process: subprocess.Popen[str], signum: int) -> tuple[str, str]:
    """Send ``signum``; the process must exit 0 saying it stopped. Its stdout and stderr."""
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode != 0 or "Stopped." not in stdout:
        raise SmokeFailure(f"{process.args[1]} stopped with {process.returncode}: {stdout}{stderr}")
    return stdout, stderr


def review(bin_: Path, work: Path, env: dict[str, str]) -> None:
    step("review: starts, serves the page, stops on Ctrl-C")
    config = work / "leadprep.yaml"
    with server(bin_, work, env, "review", "-c", config, "--as-of", AS_OF, "--no-browser",
                ready="/") as (process, base):  # fmt: skip
        with urllib.request.urlopen(f"{base}/", timeout=5) as page:
            if "Alex Morgan" not in page.read().decode():
                raise SmokeFailure("the review page does not list the team")
        stopped(process, signal.SIGINT)


def serve(bin_: Path, work: Path, env: dict[str, str]) -> None:
    step("serve: an access link signs Dana in, a sheet's PDF, stops on SIGTERM")
    config = work / "leadprep.yaml"
    made = run(bin_ / "leadprep", "access", "add", "dana@example.com", "-c", config,
               env=env, cwd=work)  # fmt: skip
    link = made.stdout.strip()
    with server(bin_, work, env, "serve", "-c", config, "--as-of", AS_OF,
                ready="/health") as (process, base):  # fmt: skip
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with browser.open(f"{base}{link}", timeout=30) as page:
            body = page.read().decode()
        if "Signed in as <b>Dana Kim (dana@example.com)" not in body or "Alex Morgan" not in body:
            raise SmokeFailure(f"the access link did not sign Dana in: {body[:500]}")
        with browser.open(f"{base}/rep/alex-morgan/sheet.pdf", timeout=120) as pdf:
            if not pdf.read(5).startswith(b"%PDF"):
                raise SmokeFailure("the served sheet is not a PDF")
        stdout, stderr = stopped(process, signal.SIGTERM)
        if link in stdout + stderr:
            raise SmokeFailure("serve wrote the access link to its output")


def write_back(bin_: Path, work: Path, env: dict[str, str]) -> None:
    step("write-back: prep, commit and sync against the fake HubSpot write one task")
    from tests.fakes.hubspot_server import TOKEN, FakeHubSpot, build_portal

    portal = build_portal([3], seed=4)
    deal_id = next(iter(portal.deals))
    folder = work / "hubspot"
    folder.mkdir()
    with FakeHubSpot(portal) as fake:
        config = folder / "leadprep.yaml"
        config.write_text(
            "crm:\n  kind: hubspot\n  hubspot:\n"
            f'    access_token: "${{HUBSPOT_ACCESS_TOKEN}}"\n    base_url: "{fake.url}"\n'
            "    write_back: {tasks: true}\nstate: {path: state.db}\n"
        )
        hub_env = {**env, "HUBSPOT_ACCESS_TOKEN": TOKEN}
        run(bin_ / "leadprep", "prep", "-c", config, "--as-of", AS_OF, "-o", folder / "out",
            env=hub_env, cwd=folder)  # fmt: skip
        run(bin_ / "leadprep", "commit", "-c", config, deal_id, "Book the CFO call by Friday",
            "--as-of", AS_OF, env=hub_env, cwd=folder)  # fmt: skip
        run(bin_ / "leadprep", "sync", "-c", config, env=hub_env, cwd=folder)
        subjects = [t["properties"]["hs_task_subject"] for t in fake.task_api.tasks.values()]
    if len(subjects) != 1 or not subjects[0].startswith("Book the CFO call by Friday"):
        raise SmokeFailure(f"expected one task, HubSpot holds {subjects}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    keep = parser.parse_args().keep
    work = Path(tempfile.mkdtemp(prefix="leadprep-smoke-"))
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADPREP_", "VIRTUAL_ENV"))}
    try:
        bin_ = install(work)
        env["PATH"] = f"{bin_}{os.pathsep}{env.get('PATH', '')}"
        imports_everything(bin_)
        demo(bin_, work, env)
        send(bin_, work, env)
        reads(bin_, work, env)
        review(bin_, work, env)
        serve(bin_, work, env)
        write_back(bin_, work, env)
    except SmokeFailure as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"smoke: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"smoke: the installed package passed every check in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
