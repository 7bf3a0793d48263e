"""The MLflow UI as a user opens it (the link `rnnbench ui` prints), in headless chromium: the
experiment opens on its runs table (model training, not the GenAI overview), each row named for
what it is, with its Dataset and Source; the screenshot is kept in test-artifacts/. Slow (the UI
server takes some 20 s to start): `pytest -m slow`."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.test_report_browser import ARTIFACTS, chromium, headless  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_ui_opens_on_named_runs_with_dataset_and_source(chromium, tmp_path):  # noqa: F811
    from rnnbench.store import tracking_uri
    from rnnbench.tracking import Tracker, ui_url

    for model, tags in (("rnn", {}), ("rnn", {"study": "sigma", "variant": "σ=1.5"})):
        from rnnbench.tracking import run_name

        with Tracker("ui-test", run_name(model, "adding", 0, tags), {"task": "adding", **tags},
                     {"seed": 0}, source="study@sigma" if tags else "train@rnn-adding-0") as t:
            t.log_dataset("adding", "ab" * 32, {"path": "data/adding"}, {"sizes": {"train": 8}})
            t.log_metrics({"test_mse": 0.1})
    port = free_port()
    server = subprocess.Popen(["mlflow", "ui", "--backend-store-uri", tracking_uri(),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no UI"
                time.sleep(1)
        url = ui_url(port, "1")  # the link `rnnbench ui` prints
        dom = headless(chromium, tmp_path, "--dump-dom", "--window-size=1600,900", url).stdout
        assert "<title>Runs - Experiment 1 - MLflow</title>" in dom  # model training: runs
        plain = headless(chromium, tmp_path, "--dump-dom", url.split("?")[0]).stdout
        assert "<title>Overview - Experiment 1" in plain  # without it: the GenAI overview
        text = re.sub(r"<[^>]+>", " ", dom)
        assert "rnn/adding/seed0" in text and "sigma: σ=1.5 · rnn/adding/seed0" in text
        assert "adding (abababab" in text  # the Dataset column: name (digest)
        assert "study@sigma" in text or "study@sig" in text  # the Source column
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "mlflow-runs.png"
        headless(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1600,900",
                 "--hide-scrollbars", url)
        assert shot.stat().st_size > 10_000
        print(f"\nscreenshot of the MLflow UI's runs table: {shot}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the UI and the workers it started
        server.wait(timeout=60)
