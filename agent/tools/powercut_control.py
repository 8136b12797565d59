"""The harness's side of the power-cut filesystem: start it as a process of its own over the
state directory, tell it when to cut, and unmount it at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MOUNT_TIMEOUT_S = 20.0


class CutFs:
    def __init__(self, control: Path, mountpoint: Path, seed: int) -> None:
        self.control = control
        self.mountpoint = mountpoint
        self.seed = seed
        self.process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._stream: Any = None

    def start(self) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        log = (self.control.parent / "powercut-fs.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent.tools.powercut_fuse",
                    str(self.mountpoint),
                    "--control",
                    str(self.control),
                    "--seed",
                    str(self.seed),
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not (os.path.ismount(self.mountpoint) and self.control.exists()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the power-cut filesystem did not mount; see {log.name}")
            time.sleep(0.02)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(str(self.control))
        self._stream = self._socket.makefile("rwb")

    def request(self, **body: Any) -> dict[str, Any]:
        assert self._stream is not None, "the filesystem is not started"
        self._stream.write(json.dumps(body).encode() + b"\n")
        self._stream.flush()
        answer: dict[str, Any] = json.loads(self._stream.readline())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def state(self) -> dict[str, Any]:
        return self.request(op="state")

    def arm(self, after: int, *, torn: bool, victims: list[int]) -> None:
        self.request(op="arm", after=after, torn=torn, victims=victims)

    def disarm(self) -> None:
        self.request(op="disarm")

    def victims_also(self, victims: list[int]) -> None:
        self.request(op="victims", victims=victims)

    def cut(self, *, torn: bool, victims: list[int]) -> dict[str, Any]:
        return self.request(op="cut", torn=torn, victims=victims)

    def resume(self) -> None:
        self.request(op="resume")

    def stop(self) -> None:
        if self._socket is not None:
            self._stream.close()
            self._socket.close()
            self._socket = None
        subprocess.run(["umount", "-l", str(self.mountpoint)], check=False, capture_output=True)
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
