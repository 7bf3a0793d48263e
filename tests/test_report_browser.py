"""The HTML report opened in a real browser: Debian's chromium, headless. Where it is missing,
a run that asks for these tests (`pytest -m browser`, `make test-browser`, `make test-all`, or
RNNBENCH_INSTALL_BROWSER=1) installs it with apt-get when running as root; otherwise they skip,
saying why (the default run stays fast: no download).
The page renders, every image loads (naturalWidth > 0), nothing is logged to the console and no
error is raised; a screenshot is kept as the test's artifact (test-artifacts/, printed).
Deselect with `-m 'not browser'`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.report_fixture import build_fixture_report

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("RNNBENCH_TEST_ARTIFACTS", ROOT / "test-artifacts"))

# Put first in <head>: records every error event (a script's, or an image that fails to load:
# captured, as those do not bubble) and every console message; after load, writes the results
# and each image's natural width into <body data-check>, which --dump-dom then prints.
PROBE = """<script>
window.__log = [];
addEventListener("error", e => __log.push("error: " + (e.message || (e.target && e.target.src
  || "").slice(0, 60))), true);
for (const k of ["error", "warn", "log", "info"]) {
  const f = console[k]; console[k] = (...a) => { __log.push(k + ": " + a.join(" ")); f(...a); };
}
addEventListener("load", () => document.body.setAttribute("data-check", JSON.stringify({
  log: __log, widths: [...document.images].map(i => i.complete ? i.naturalWidth : 0),
  h2: [...document.querySelectorAll("h2")].map(h => h.textContent),
  height: document.body.scrollHeight})));
</script>"""


@pytest.fixture(scope="session")
def chromium(request) -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    asked = "browser" in (request.config.getoption("markexpr") or "") or \
        os.environ.get("RNNBENCH_INSTALL_BROWSER") == "1"
    if not asked:
        pytest.skip("chromium is not installed; `make test-browser` (pytest -m browser) "
                    "installs Debian's chromium as root and runs these tests")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed, and installing Debian's chromium needs root "
                    "and apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:  # a stale package list: refresh it once
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        proc = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    found = shutil.which("chromium")
    if not found:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"apt-get could not install chromium: {last}")
    return found


def headless(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def check_page(exe: str, page: Path, tmp: Path) -> dict:
    """What the browser saw on `page` (a copy with PROBE added), and the console lines it
    logged to stderr."""
    probed = tmp / f"probed-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1),
                      encoding="utf-8")
    proc = headless(exe, tmp, "--dump-dom", probed.as_uri())
    m = re.search(r'data-check="([^"]*)"', proc.stdout)
    assert m, f"the page did not finish loading: {proc.stderr[-500:]}"
    import html

    seen = json.loads(html.unescape(m.group(1)))
    seen["console"] = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line
                       and "probed-" in line]
    return seen


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build_fixture_report(tmp_path_factory.mktemp("browser")).with_suffix(".html")


def test_the_report_renders_with_every_image_and_no_console_error(chromium, report, tmp_path):
    seen = check_page(chromium, report, tmp_path)
    assert seen["log"] == [] and seen["console"] == []
    assert len(seen["widths"]) >= 3 and all(w > 0 for w in seen["widths"]), seen["widths"]
    assert seen["h2"][:3] == ["Summary", "Environment", "Claims from the lecture notes, tested"]
    assert seen["height"] > 2000  # laid out: the summary's table alone is taller
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report-screenshot.png"
    proc = headless(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,2000",
                    "--hide-scrollbars", report.as_uri())
    assert shot.exists(), proc.stderr[-500:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280) and pixels.std() > 0.05  # not a blank page
    print(f"\nscreenshot of the report: {shot}")


def test_the_check_fails_on_a_broken_image_and_a_script_error(chromium, report, tmp_path):
    broken = tmp_path / "broken.html"
    text = report.read_text(encoding="utf-8")
    text = re.sub(r'src="data:image/png;base64,[^"]{16}', 'src="data:image/png;base64,AAAA',
                  text, count=1)
    broken.write_text(text.replace("</body>", "<script>undefinedCall()</script></body>"),
                      encoding="utf-8")
    seen = check_page(chromium, broken, tmp_path)
    assert seen["widths"].count(0) == 1
    assert any("undefinedCall" in line for line in seen["log"])
