"""The workflow scheduler follows the chain's clock: `evm_increaseTime` makes a day of scheduled
runs due at once, with no sleeping and no fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import opengradient as og
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.workflows import GENESIS_WORKFLOWS

DAY = 24 * 3600


@pytest.fixture
def net() -> Iterator[Devnet]:
    """A devnet of its own: moving its clock a day ahead would expire other tests' payments."""
    with og.devnet.start() as dev:
        dev.workflows.close()  # ticks are explicit here, so nothing races the test
        yield dev


def rpc(net: Devnet, method: str, *params: Any) -> Any:
    response = net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    assert isinstance(response, dict) and "error" not in response, response
    return response["result"]


def result_count(net: Devnet, address: str) -> int:
    return int(net.workflows.scheduler.deployer.call(address, "PriceHistoryInference", "resultCount"))


def test_increase_time_runs_every_workflow_a_day_later(net: Devnet) -> None:
    scheduler = net.workflows.scheduler
    assert scheduler.clock == net.alpha_chain.now
    scheduler.tick()  # whatever is due at start
    before = {w.address: result_count(net, w.address) for w in GENESIS_WORKFLOWS}
    assert scheduler.tick().runs == []  # nothing more is due without time passing
    t0 = net.alpha_chain.now()
    rpc(net, "evm_increaseTime", DAY)
    report = scheduler.tick()
    assert report.now >= t0 + DAY
    assert sorted(r.contract_address for r in report.runs) == sorted(w.address for w in GENESIS_WORKFLOWS)
    assert not report.failures
    for workflow in GENESIS_WORKFLOWS:
        assert result_count(net, workflow.address) == before[workflow.address] + 1
    receipt = rpc(net, "eth_getTransactionReceipt", report.runs[0].transaction_hash)
    block = rpc(net, "eth_getBlockByNumber", receipt["blockNumber"], False)
    assert int(block["timestamp"], 16) >= net.alpha_chain.now() - 5  # the runs happened at chain time
    assert int(block["timestamp"], 16) >= int(report.now) - 1


def test_hourly_steps_run_hourly_workflows_each_hour(net: Devnet) -> None:
    scheduler = net.workflows.scheduler
    scheduler.tick()
    hourly = [w.address for w in GENESIS_WORKFLOWS if w.model.duration_mins == 60]
    assert hourly
    start = {a: result_count(net, a) for a in hourly}
    for _ in range(3):
        rpc(net, "evm_increaseTime", 3600)
        scheduler.tick()
    assert {a: result_count(net, a) - start[a] for a in hourly} == {a: 3 for a in hourly}
