"""A page opened in headless Chromium over the DevTools protocol: what it loaded, what it logged.

The websocket client is the few lines of RFC 6455 the protocol needs (text frames, client-side
masking), so the tests need nothing beyond the standard library and Debian's `chromium`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120  # a hung browser fails the test instead of holding it forever; no speed is asserted


def find_chromium() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """One websocket to a DevTools target: calls, with the events that arrive meanwhile kept."""

    def __init__(self, url: str):
        parts = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                           f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            reply += chunk
        head, self.buffer = reply.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise ConnectionError(f"DevTools refused the websocket: {head[:200]!r}")
        self.last_id = 0
        self.events: list[dict] = []

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def send(self, method: str, params: dict | None = None) -> int:
        self.last_id += 1
        data = json.dumps({"id": self.last_id, "method": method, "params": params or {}}).encode()
        header = bytearray([0x81])  # one text frame
        if len(data) < 126:
            header.append(0x80 | len(data))
        elif len(data) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        mask = os.urandom(4)  # a client masks every frame it sends
        self.sock.sendall(bytes(header) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        return self.last_id

    def receive(self) -> dict:
        message = b""
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(length)
            opcode = first & 0x0F
            if opcode == 8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode in (9, 10):  # ping, pong
                continue
            message += payload
            if first & 0x80:
                return json.loads(message)

    def call(self, method: str, params: dict | None = None) -> dict:
        wanted = self.send(method, params)
        while True:
            message = self.receive()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str) -> dict:
        for i, message in enumerate(self.events):
            if message.get("method") == event:
                return self.events.pop(i)
        while True:
            message = self.receive()
            if message.get("method") == event:
                return message
            self.events.append(message)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Page:
    """What the browser made of a page: `found` is the value of the script run once it loaded,
    `errors` every exception, console error and error log entry."""
    found: dict
    errors: list[str] = field(default_factory=list)


def _errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            out.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
    return out


def open_page(chromium: str, path: Path, script: str, profile: Path, width: int = 1280, height: int = 900,
              screenshot: Path | None = None) -> Page:
    """Load `path` in a fresh headless Chromium of the given window size and evaluate `script` (an
    expression whose value is JSON) once the page has loaded."""
    browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                "--remote-debugging-port=0", f"--user-data-dir={profile}",
                                f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT_S
        while not (port_file.is_file() and port_file.read_text().strip()):
            if browser.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{chromium} did not open its DevTools port (exit {browser.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S) as reply:
            targets = json.load(reply)
        page = next(t for t in targets if t.get("type") == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        try:
            for domain in ("Page", "Runtime", "Log"):
                tools.call(f"{domain}.enable")
            # The viewport itself is width × height (a headless window's size counts its frame too).
            tools.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                              "deviceScaleFactor": 1, "mobile": False})
            tools.call("Page.navigate", {"url": path.resolve().as_uri()})
            tools.wait_for("Page.loadEventFired")
            value = tools.call("Runtime.evaluate", {"expression": script, "returnByValue": True,
                                                    "awaitPromise": True})
            if "exceptionDetails" in value:
                raise RuntimeError(f"the test's script failed: {value['exceptionDetails']}")
            if screenshot is not None:
                shot = tools.call("Page.captureScreenshot", {"format": "png"})
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            return Page(json.loads(value["result"]["value"]), _errors(tools.events))
        finally:
            tools.close()
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=30)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()


# What a report page is checked for: every figure decoded, the links inside the page resolve, and
# where the summary and its verdict matrix end against the first screen.
REPORT_SCRIPT = """JSON.stringify({
  title: document.title,
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
  h2: [...document.querySelectorAll('h2')].map(h => h.id),
  toc: [...document.querySelectorAll('nav.toc a')].map(a => a.getAttribute('href')),
  unresolved: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href'))
              .filter(h => !document.getElementById(h.slice(1))),
  details: document.querySelectorAll('details').length,
  summaryTop: document.getElementById('summary') ? document.getElementById('summary').getBoundingClientRect().top : -1,
  matrixBottom: document.querySelector('table.matrix') ?
                document.querySelector('table.matrix').getBoundingClientRect().bottom : -1,
  matrixRows: document.querySelectorAll('table.matrix tbody tr').length,
  coloured: [...document.querySelectorAll('table.matrix td.v')].map(td => getComputedStyle(td).backgroundColor),
  screen: window.innerHeight
})"""
