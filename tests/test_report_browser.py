"""The HTML report of ``snn2hw verify --report DIR`` opened in a real browser: headless
Chromium (Debian's ``chromium``; ``make test`` installs it when missing and run as root),
driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4, so no client package).

The page must load without a console error, log error or uncaught exception, and every
image must decode with a non-zero size. A full-page screenshot is kept under the test's
tmp folder and its path printed. Without Chromium the test is skipped, saying so.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_cli import _model

from snn2hw.cli import main

TIMEOUT = 30.0


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_child, self._out = os.pipe()            # we write commands, Chromium reads fd 3
        self._in, from_child = os.pipe()           # Chromium writes fd 4, we read

        def fds() -> None:                          # in the child: the pipe ends as 3 and 4
            a, b = os.dup(to_child), os.dup(from_child)   # (either may already be 3 or 4)
            os.dup2(a, 3)                              # dup2 makes them inheritable
            os.dup2(b, 4)

        args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                f"--user-data-dir={profile}", "--window-size=1280,1024", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,  # noqa: PLW1509
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.events = b"", 0, []
        self.deadline = time.monotonic() + TIMEOUT
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {TIMEOUT:.0f} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.proc.poll()})")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read())

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, log errors and uncaught exceptions the page produced."""
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
    return out


_IMAGES = """Promise.all(Array.from(document.images).map(img => img.decode().then(
    () => [img.alt, img.naturalWidth, img.naturalHeight],
    err => [img.alt, -1, String(err)])))"""


def test_report_opens_in_chromium_without_errors(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  record_property: Any) -> None:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("not run: Chromium is not installed (`make test` installs Debian's "
                    "chromium when run as root; else apt-get install chromium)")
    rng = np.random.default_rng(3)
    np.save(tmp_path / "x.npy", (rng.random((4, 12, 20)) < 0.3).astype(np.int8))
    out = tmp_path / "rep"
    assert main(["verify", str(_model(tmp_path)), "--target", "tiny", "--data",
                 str(tmp_path / "x.npy"), "--report", str(out)]) == 0
    page = out / "report.html"
    n_img = page.read_text().count("<img ")
    assert n_img >= 4

    browser = Browser(exe, tmp_path / "profile")
    try:
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=True)
        browser.call("Page.navigate", session=True, url=page.as_uri())
        browser.wait_for("Page.loadEventFired")
        images = browser.call("Runtime.evaluate", session=True, expression=_IMAGES,
                              awaitPromise=True, returnByValue=True)["result"]["value"]
        shot = browser.call("Page.captureScreenshot", session=True, format="png",
                            captureBeyondViewport=True)["data"]
        errors = _errors(browser.events)
    finally:
        browser.close()

    screenshot = tmp_path / "report-screenshot.png"
    screenshot.write_bytes(base64.b64decode(shot))
    record_property("screenshot", str(screenshot))     # in --junitxml reports too
    with capsys.disabled():
        print(f"\nreport screenshot: {screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 1000
    assert not errors, errors
    assert len(images) == n_img, images                 # every <img> was seen by the browser
    for alt, width, height in images:
        assert width > 0 and height > 0, (alt, width, height)
