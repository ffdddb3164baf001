"""Headless Chromium for the tests that look at pages as a person would: the rendered DOM and screenshots.

Chromium is Debian's `chromium` package (`.ci/run` installs it). It runs with a fresh profile in a temporary folder,
and with every host but 127.0.0.1 unresolvable and its background services (updates, sync, autofill) off, so that
it opens nothing but the page under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest

WINDOW = "1280,900"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-pings",
    "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,Translate,SpellCheck",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return path


def run_chromium(
    url: str, *extra: str, budget_ms: int | None = None, window: str = WINDOW, timeout: float = 120
) -> bytes:
    """Load `url` in headless Chromium with `extra` flags (`--dump-dom`, `--screenshot=FILE`); its stdout.

    `budget_ms`: virtual time the page's scripts get before the DOM is read or the picture taken (a page that
    builds itself with JavaScript, as Gradio's does). `window`: "width,height" in CSS pixels.
    """
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={window}"]
        if budget_ms is not None:
            command.append(f"--virtual-time-budget={budget_ms}")
        result = subprocess.run(
            [*command, *extra, url],
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "HOME": profile},
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout


def dump_dom(url: str, budget_ms: int | None = None) -> str:
    """The page's DOM after it loaded (and its scripts ran for `budget_ms` of virtual time), as HTML."""
    return run_chromium(url, "--dump-dom", budget_ms=budget_ms).decode("utf-8")


def screenshot(url: str, path: str | os.PathLike, budget_ms: int | None = None) -> None:
    """A PNG of the first screen of the page (1280 x 900)."""
    run_chromium(url, f"--screenshot={os.fspath(path)}", budget_ms=budget_ms)
    assert os.path.getsize(path) > 0


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: fd 3 in, fd 4 out,
    NUL-terminated JSON), for pages that build themselves from a server in real time (Gradio's): wait until the
    page shows something, read its DOM, take a screenshot. No package beyond the standard library."""

    def __init__(self, window: str = WINDOW, timeout: float = 120):
        binary = require_chromium()
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser, self._commands = os.pipe()
        self._results, from_browser = os.pipe()

        def as_fds_3_and_4():  # the child's ends where Chromium looks for them (out of the way first)
            import fcntl

            reading, writing = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser))
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile.name}", f"--window-size={window}"]
            + ["--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "HOME": self._profile.name},
            preexec_fn=as_fds_3_and_4,  # noqa: PLW1509 - only dup2 in the child
            pass_fds=(3, 4),
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.requested: list[str] = []  # every URL the pages asked for (Network.requestWillBeSent)
        width, height = (int(v) for v in window.split(","))
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, session: bool = True, **params) -> dict:
        import json
        import select

        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session and getattr(self, "session", None):
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("method") == "Network.requestWillBeSent":
                    self.requested.append(reply["params"]["request"]["url"])
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._results], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer {method} within {self.timeout} s")
            chunk = os.read(self._results, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited (code {self.process.poll()}) during {method}")
            self._buffer += chunk

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def open(self, url: str, until: str = "true", timeout: float = 60, settle: float = 0.5) -> str:
        """Go to `url`, wait (real time, at most `timeout` s) until the JavaScript `until` is true, then `settle`
        seconds for the page to finish drawing; the page's DOM as HTML."""
        self.call("Page.enable")
        self.call("Network.enable")
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"document.readyState === 'complete' && !!({until})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: {until} not true within {timeout} s")
            time.sleep(0.25)
        time.sleep(settle)
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: str | os.PathLike) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as handle:
            handle.write(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        for fd in (self._commands, self._results):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
