"""`ProverProcess`: the node's handle on the proving child process (see `worker`).

One child, started on first use and kept for the devnet's life (ezkl is imported once). Calls are
serialised; each has a timeout after which the child is killed (a runaway proof never outlives its
deadline) and a fresh one is started by the next call. The child's standard error (ezkl's
reports) goes to a log file next to the circuits.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("opengradient.devnet.services.zkml")


class ProverError(Exception):
    """A request the child refused or could not complete; `kind` as in `worker`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class ProverTimeoutError(ProverError):
    """The child did not answer in time and was killed."""


class ProverProcess:
    """A child process running `opengradient.devnet.services.zkml.worker`."""

    def __init__(self, log_path: Path, *, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._extra_env = dict(env or {})
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._log_file: IO[bytes] | None = None
        self._next_id = 0
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> subprocess.Popen[str]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's life)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self._extra_env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "opengradient.devnet.services.zkml.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file,
            text=True, encoding="utf-8", bufsize=1, env=env, close_fds=True)
        replies: queue.Queue[str | None] = queue.Queue()
        stdout = proc.stdout
        assert stdout is not None

        def read() -> None:
            for line in stdout:
                replies.put(line)
            replies.put(None)  # the child exited

        threading.Thread(target=read, name=f"og-zkml-reader-{proc.pid}", daemon=True).start()
        self._proc, self._replies = proc, replies
        log.info("ZKML prover process %d started (log: %s)", proc.pid, self.log_path)
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill that did not take
            log.warning("ZKML prover process %d did not exit after kill", proc.pid)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass

    def call(self, op: str, args: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        """Run one request in the child; raises `ProverError` (or `ProverTimeoutError`)."""
        with self._lock:
            if self._closed:
                raise ProverError("internal", "the ZKML prover is closed")
            proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
            self._next_id += 1
            request_id = self._next_id
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
                proc.stdin.flush()
            except OSError as exc:
                self._kill()
                raise ProverError("internal", f"the ZKML prover process is gone ({exc})") from exc
            try:
                line = self._replies.get(timeout=timeout)
            except queue.Empty:
                self._kill()
                raise ProverTimeoutError("timeout", f"{op} took longer than {timeout:g} s; the prover was "
                                               "stopped") from None
            if line is None:
                code = proc.wait()
                self._proc = None
                raise ProverError("internal", f"the ZKML prover process exited with code {code} during "
                                              f"{op}; see {self.log_path}")
            reply = json.loads(line)
            if reply.get("id") != request_id:  # pragma: no cover - the protocol is strictly in order
                self._kill()
                raise ProverError("internal", "the ZKML prover answered out of order")
            if not reply.get("ok"):
                raise ProverError(str(reply.get("kind", "internal")), str(reply.get("error", "failed")))
            result: dict[str, Any] = reply.get("result") or {}
            return result

    def close(self) -> None:
        """Stop the child: closing its input lets an idle child exit on its own; a busy one (or one
        that does not exit within 5 s) is killed, and the call waiting on it fails."""
        self._closed = True
        if not self._lock.acquire(blocking=False):
            proc = self._proc
            if proc is not None and proc.poll() is None:
                proc.kill()
            return
        try:
            proc = self._proc
            if proc is not None and proc.poll() is None and proc.stdin is not None:
                try:
                    proc.stdin.close()
                    proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            self._kill()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
        finally:
            self._lock.release()
