"""A non-editable install (the wheel) must carry its templates and example config."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = dist.glob("leadprep-*.whl")
    return path


def test_wheel_contains_templates_and_example_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("questions.yaml", "packet.html.j2", "packet.md.j2", "index.html.j2", "sheet.css"):
        assert f"leadprep/templates/{name}" in names
    assert "leadprep/config.example.yaml" in names


def test_installed_wheel_renders_the_demo(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "LEADPREP_STATE": str(tmp_path / "s.db")}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import leadprep.render as r; print(r.__file__); print(r.packaged_templates())",
        ],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert where[0].startswith(str(target)) and where[1] == str(target / "leadprep" / "templates")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "leadprep",
            "prep",
            "--demo",
            "--out",
            "sheets",
            "--as-of",
            "2026-11-30",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (work / "sheets" / "index.html").is_file() and (
        work / "sheets" / "priya-shah.html"
    ).is_file()
    init = subprocess.run(
        [sys.executable, "-m", "leadprep", "init"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, init.stderr
    assert "kind: file" in (work / "leadprep.yaml").read_text()
