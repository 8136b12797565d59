"""The receipt printer of `pos-agent powercut`: an ESC/POS printer on 127.0.0.1 that keeps all
it printed in one file, as paper keeps it (the cut does not take back a printed receipt).

A process of its own, outside the power-cut filesystem: a receipt printed before a cut stays
printed, so the end audit can count every ticket (`powercut_audit.audit_end`). Real-time status
queries (DLE EOT n) are answered "online, paper present" and are not printed.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

DLE_EOT = b"\x10\x04"
ONLINE = b"\x12"


def serve(output: Path, ready: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(server, selectors.EVENT_READ)
    tails: dict[socket.socket, bytes] = {}
    with output.open("ab", buffering=0) as paper:
        ready.write_text(str(server.getsockname()[1]))
        while True:
            for key, _ in selector.select():
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is server:
                    client, _ = server.accept()
                    client.setblocking(False)
                    selector.register(client, selectors.EVENT_READ)
                    tails[client] = b""
                    continue
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    paper.write(tails.pop(sock, b""))
                    selector.unregister(sock)
                    sock.close()
                    continue
                tails[sock] = _consume(sock, tails[sock] + chunk, paper)


def _consume(client: socket.socket, data: bytes, paper: BinaryIO) -> bytes:
    """Print up to each DLE EOT n and answer it; keep a tail that may be a split query."""
    while True:
        index = data.find(DLE_EOT)
        if index < 0 or index + 2 >= len(data):
            keep = len(data) - index if index >= 0 else (1 if data.endswith(b"\x10") else 0)
            paper.write(data[: len(data) - keep])
            return data[len(data) - keep :]
        paper.write(data[:index])
        with contextlib.suppress(OSError):
            client.sendall(ONLINE)
        data = data[index + 3 :]


def start_printer(paper: Path, ready: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The printer as a process of its own, printing on `paper`; it and its port once listening."""
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "agent.tools.powercut_printer", str(paper)]
    process = subprocess.Popen([*command, "--ready", str(ready)])
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the printer emulator did not start")
        time.sleep(0.02)
    return process, int(ready.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the paper: every printed byte, appended")
    parser.add_argument("--ready", type=Path, required=True, help="gets the port once listening")
    args = parser.parse_args(argv)
    serve(args.output, args.ready)
    return 0


if __name__ == "__main__":
    sys.exit(main())
