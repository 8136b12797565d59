"""A TCP ESC/POS printer on 127.0.0.1 for tests: records what it would print, answers DLE EOT.

Status answers follow the Epson real-time status bytes: DLE EOT 1 (printer: bit 3 offline),
DLE EOT 2 (offline cause: bit 2 cover open, bit 5 stopped by paper end), DLE EOT 4 (roll paper
sensor: bits 2-3 near end, bits 5-6 paper end). DLE EOT is recognised anywhere in the stream,
so tests use native QR (no raster data that could contain those bytes by chance).
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

DLE_EOT = b"\x10\x04"


class PrinterEmulator:
    def __init__(self) -> None:
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.silent = False
        self.queries: list[int] = []
        self.connections = 0
        self._printed = bytearray()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.host, self.port = self._server.getsockname()[:2]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="printer-emulator", daemon=True)

    @property
    def printed(self) -> bytes:
        """Everything received except the status queries: what reached the print head."""
        with self._lock:
            return bytes(self._printed)

    def start(self) -> PrinterEmulator:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)
        self._server.close()

    def __enter__(self) -> PrinterEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def status_byte(self, function: int) -> int:
        offline = self.paper_out or self.cover_open
        if function == 1:
            return 0x12 | (0x08 if offline else 0)
        if function == 2:
            return 0x12 | (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
        if function == 4:
            near_end = 0x0C if self.paper_near_end else 0
            return 0x12 | (0x60 if self.paper_out else 0) | near_end
        return 0x12

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(0.2)
        pending = b""
        with client:
            while not self._stopping.is_set():
                try:
                    chunk = client.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    break
                pending = self._consume(client, pending + chunk)
        with self._lock:
            self._printed += pending

    def _consume(self, client: socket.socket, data: bytes) -> bytes:
        """Print everything up to each DLE EOT n, answer it; keep a possibly split tail."""
        while True:
            index = data.find(DLE_EOT)
            if index < 0 or index + 2 >= len(data):
                keep = len(data) - index if index >= 0 else (1 if data.endswith(b"\x10") else 0)
                with self._lock:
                    self._printed += data[: len(data) - keep]
                return data[len(data) - keep :]
            function = data[index + 2]
            with self._lock:
                self._printed += data[:index]
            self.queries.append(function)
            if not self.silent:
                client.sendall(bytes((self.status_byte(function),)))
            data = data[index + 3 :]
