"""The chaos run's first daemon start is tried again as its restarts are: a start that fails
before any fault was injected (on a loaded machine, not READY in time) does not end the run."""

from __future__ import annotations

from pathlib import Path

from agent.tools.chaos import Chaos


def test_a_first_start_that_fails_is_tried_again(tmp_path: Path) -> None:
    """The first start fails for real (the daemon exits on a database file that is not one);
    the harness's log line about it is where the fault is taken away, so the retry is the
    one the harness makes, with no timing involved."""
    messages: list[str] = []

    def log(message: str) -> None:
        messages.append(message)
        chaos.stack.database_path.unlink(missing_ok=True)

    chaos = Chaos(tmp_path, receipts=1, kills=0, seed=1, log=log, storage_faults=False)
    chaos.stack.database_path.parent.mkdir(parents=True, exist_ok=True)
    chaos.stack.database_path.write_bytes(b"not a database" * 100)
    try:
        chaos.start()
        assert chaos.stack.daemon is not None and chaos.stack.daemon.poll() is None
        assert chaos.tally.failed_starts == 1
        assert len(messages) == 1 and "file is not a database" in messages[0], messages
        with chaos.stack.client() as client:
            assert client.get("/v1/health").status_code == 200
    finally:
        chaos.stack.stop()
