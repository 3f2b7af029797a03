"""Headless chromium driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages ending in a NUL byte on file descriptors 3 and 4; no websocket library needed), for
browser tests that need real input events (a mouse move that the page's hit-testing resolves).

>>> with Chromium("/usr/bin/chromium", "/tmp/profile") as browser:   # doctest: +SKIP
...     page = browser.open("file:///tmp/index.html", width=390)
...     page.eval("window.innerWidth")
390
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

_TRAMPOLINE = """import os, sys
os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4)
os.close(int(sys.argv[1])); os.close(int(sys.argv[2]))
os.execv(sys.argv[3], sys.argv[3:])"""


class Chromium:
    """One headless chromium process; ``open`` gives a :class:`Tab` on a page at a given width."""

    def __init__(self, binary: str, profile: Path):
        to_read, to_write = os.pipe()  # commands: we write, chromium reads its fd 3
        from_read, from_write = os.pipe()  # replies and events: chromium writes its fd 4
        fd3, fd4 = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_read, from_write))  # never 3 or 4 already
        self.proc = subprocess.Popen(  # a python trampoline moves them to 3 and 4 and execs chromium
            [sys.executable, "-c", _TRAMPOLINE, str(fd3), str(fd4), binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--allow-file-access-from-files", "about:blank"],
            pass_fds=(fd3, fd4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for fd in (to_read, from_write, fd3, fd4):
            os.close(fd)
        self._out, self._in = os.fdopen(to_write, "wb", buffering=0), os.fdopen(from_read, "rb", buffering=0)
        self._buffer, self._id, self.events = b"", 0, []

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = self._in.read(1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe: " + self.proc.stderr.read().decode()[-2000:])
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        self._out.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 120.0) -> dict:
        """The first event named ``method`` (already received or the next to come)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._message())
        raise TimeoutError(f"no {method} event within {timeout} s")

    def open(self, url: str, width: int, height: int = 900) -> Tab:
        """A new tab showing ``url`` in a ``width`` x ``height`` CSS-pixel viewport, loaded."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session)
        self.send("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                  deviceScaleFactor=1, mobile=width < 500)
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired")
        return Tab(self, session)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._in.close()
        self.proc.stderr.close()


class Tab:
    """A page in a :class:`Chromium`: evaluate JavaScript, move the mouse, take a screenshot."""

    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session

    def eval(self, expression: str):
        """The value of a JavaScript expression (JSON-serialisable results only)."""
        result = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def mouse_move(self, x: float, y: float) -> None:
        """A real mouse move to viewport coordinates (the browser hit-tests and fires the events)."""
        self.browser.send("Input.dispatchMouseEvent", self.session, type="mouseMoved", x=x, y=y)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.browser.send("Page.captureScreenshot", self.session)["data"]))
        return path
