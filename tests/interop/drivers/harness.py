"""What the drivers share (stdlib only: they run in the official clients' own venvs).

A driver is given a JSON config file, runs one capability after another, and prints one JSON line
per capability: `{"capability", "status": "pass"|"fail", "detail", "paid": <paid requests made>,
"payments": [the payment hashes the client reported]}`.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import Any


def config() -> dict[str, Any]:
    """The run's settings, from the JSON file named on the command line."""
    with open(sys.argv[1], encoding="utf-8") as handle:
        return dict(json.load(handle))


class Payments:
    """The paid requests a capability made and the payment hashes the client reported for them."""

    def __init__(self) -> None:
        self.requests = 0
        self.hashes: list[str] = []

    def note(self, payment_hash: object) -> None:
        """One paid request; its hash when the client reports one."""
        self.requests += 1
        if payment_hash:
            self.hashes.append(str(payment_hash))


def check(capability: str, run: Callable[[Payments], str]) -> None:
    """Run one capability; `run` notes its paid requests and returns a detail, or raises."""
    payments = Payments()
    try:
        record = {"capability": capability, "status": "pass", "detail": run(payments)}
    except Exception as exc:  # a failure is a result to report, not a crash
        last = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
        record = {"capability": capability, "status": "fail",
                  "detail": f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]} (at {where})"}
    record.update(paid=payments.requests, payments=payments.hashes)
    print(json.dumps(record), flush=True)


def expect(condition: bool, what: str) -> None:
    """Raise with `what` unless `condition` holds."""
    if not condition:
        raise AssertionError(what)
