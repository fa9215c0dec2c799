"""`make lab` starts JupyterLab as root too (containers, CI images) and makes the project kernel the
default for new notebooks: the server's kernelspec API names ``ecrm-research`` as the default."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_starts_as_this_user_with_the_project_kernel_as_default(tmp_path):
    if not (ROOT / ".venv" / ".installed-stamp").is_file():
        pytest.skip("make lab needs the project's .venv (make install)")
    port, token = _free_port(), "ecrm-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    args = f"--no-browser --ServerApp.port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    proc = subprocess.Popen(["make", "-s", "lab", f"LAB_ARGS={args}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        spec, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:  # as root without --allow-root, jupyter exits at once
                out = proc.stdout.read().decode(errors="replace")
                pytest.fail(f"make lab exited with {proc.returncode}:\n{out[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=2) as r:
                    spec = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert spec is not None, "JupyterLab did not answer within 90 s"
        assert spec["default"] == "ecrm-research"
        assert "ecrm-research" in spec["kernelspecs"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
