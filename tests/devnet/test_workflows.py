"""Workflows on the devnet: deployment, scheduling, runs, reads, the price feed and the genesis forecasts.

The scheduler loop is driven with `tick()` and a fake clock: nothing here sleeps or times anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

import opengradient as og
import opengradient.devnet.chain.evm as chain_module
from opengradient.client.alpha import Alpha
from opengradient.client.workflows import INFERENCE_RESULT_EMITTED_TOPIC, TASK_REGISTERED_TOPIC
from opengradient.devnet.chain.deploy import DeployerError
from opengradient.devnet.chain.precompiles.candles import MARKETS, SyntheticSeries, market
from opengradient.devnet.chain.precompiles.price_history import HISTORY_CANDLES, PRICE_HISTORY_PRECOMPILE_ADDRESS
from opengradient.devnet.node import Devnet
from opengradient.devnet.services.models import fit_forecasts
from opengradient.devnet.services.models.forecasts import FORECAST_MODELS, ForecastModel
from opengradient.devnet.services.workflows import (
    GENESIS_WORKFLOWS,
    SCHEDULER_ACCOUNT,
    WorkflowsHandle,
    install_workflows,
)
from opengradient.networks import SCHEDULER_ADDRESS
from opengradient.workflow_models import WORKFLOW_MODELS

PERCENT = re.compile(r"^-?\d+\.\d{10}%$")
#: Schedules of tests on the shared devnet outlast the hours its fake clock is moved ahead.
LONG_HOURS = 240
ETH_QUERY = og.HistoricalInputQuery("ETH", "USDT", 12, 60, og.CandleOrder.ASCENDING, [og.CandleType.CLOSE])


class FakeClock:
    """The scheduler loop's time, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    net: Devnet
    handle: WorkflowsHandle
    clock: FakeClock

    @property
    def alpha(self) -> Alpha:
        return self.net.client.alpha

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        assert isinstance(response, dict) and "error" not in response, response
        return response["result"]

    def call(self, address: str, contract: str, function: str, *args: Any) -> Any:
        return self.handle.scheduler.deployer.call(address, contract, function, *args)

    def result_count(self, address: str) -> int:
        return int(self.call(address, "PriceHistoryInference", "resultCount"))

    def nonce(self) -> int:
        return int(self.rpc("eth_getTransactionCount", self.net.client.alpha_address, "latest"), 16)

    def cid(self, model: ForecastModel) -> str:
        return self.handle.models[model.name]


def _workflows(net: Devnet, clock: FakeClock) -> WorkflowsHandle:
    """This devnet's workflows, driven by `clock` and explicit ticks (installed here unless the devnet
    already installed them, in which case its background loop is stopped and its clock replaced)."""
    handle: WorkflowsHandle | None = getattr(net, "workflows", None)
    if handle is None:
        return install_workflows(net.alpha_chain, net.hub, net.price_feed, net.accounts, clock=clock,
                                 start_thread=False)
    handle.close()
    handle.scheduler.clock = clock
    return handle


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    clock = FakeClock()
    with og.devnet.start() as net:
        handle = _workflows(net, clock)
        try:
            yield Env(net, handle, clock)
        finally:
            handle.close()


@pytest.fixture
def fresh() -> Iterator[Env]:
    """A devnet of its own, for tests that move the chain's clock."""
    clock = FakeClock()
    with og.devnet.start() as net:
        handle = _workflows(net, clock)
        try:
            yield Env(net, handle, clock)
        finally:
            handle.close()


def _feed_index(env: Env, model: ForecastModel) -> int:
    """How many candles the price feed has closed for a model's series."""
    return env.net.price_feed.available(model.base, model.quote, model.duration_mins)


def _expected(env: Env, model: ForecastModel) -> float:
    """What onnxruntime gives for the model on the feed's latest candles, computed off chain."""
    end = _feed_index(env, model)
    columns = SyntheticSeries(market(model.base, model.quote), model.duration_mins).floats(
        end - model.total_candles, end)
    names = {og.CandleType.OPEN: "open", og.CandleType.HIGH: "high", og.CandleType.LOW: "low",
             og.CandleType.CLOSE: "close", og.CandleType.VOLUME: "volume"}
    x = np.stack([np.array(columns[names[t]]) for t in model.candle_types], axis=1)[None]
    session = ort.InferenceSession(str(model.path))
    return float(session.run(None, {model.input_name: x})[0].reshape(()))


# ---------------------------------------------------------------------------------------------
# Genesis: scheduler, the seven forecast workflows
# ---------------------------------------------------------------------------------------------


def test_genesis_contracts_are_installed(env: Env) -> None:
    for address in [SCHEDULER_ADDRESS] + [w.address for w in GENESIS_WORKFLOWS]:
        assert env.rpc("eth_getCode", address, "latest") not in ("0x", None)
    assert [w.address for w in GENESIS_WORKFLOWS] == [m.contract_address for m in WORKFLOW_MODELS]
    operator = env.net.accounts[SCHEDULER_ACCOUNT].address
    assert env.handle.scheduler.address == operator
    assert env.net.info()["alpha"]["price_history_precompile"] == PRICE_HISTORY_PRECOMPILE_ADDRESS
    assert env.handle.install_seconds > 0
    info = env.handle.info()
    assert [w["address"] for w in info["workflows"]] == [w.address for w in GENESIS_WORKFLOWS]


def test_genesis_workflows_describe_themselves(env: Env) -> None:
    for workflow in GENESIS_WORKFLOWS:
        model = workflow.model
        assert workflow.reader.output_tensor == model.output_name
        assert env.call(workflow.address, "PriceHistoryInference", "modelId") == env.cid(model)
        assert env.call(workflow.address, "PriceHistoryInference", "inputName") == model.input_name
        assert env.call(workflow.address, "PriceHistoryInference", "historicalContract") == \
            PRICE_HISTORY_PRECOMPILE_ADDRESS
        query = env.call(workflow.address, "PriceHistoryInference", "inputQuery")
        assert tuple(query) == (model.base, model.quote, model.total_candles, model.duration_mins,
                                int(og.CandleOrder.ASCENDING))
        assert env.call(workflow.address, "PriceHistoryInference", "candleTypes") == \
            tuple(int(t) for t in model.candle_types)
        assert env.rpc("eth_getCode", workflow.address, "latest") == env.rpc(
            "eth_getCode", GENESIS_WORKFLOWS[0].address, "latest")


def test_genesis_workflows_are_scheduled_every_candle(env: Env) -> None:
    tasks = env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "getTasks", 0, 7)
    assert [t[0].lower() for t in tasks] == [w.address.lower() for w in GENESIS_WORKFLOWS]
    assert [int(t[3]) for t in tasks] == [w.model.duration_mins * 60 for w in GENESIS_WORKFLOWS]


def test_every_reader_returns_a_percentage_and_a_link(env: Env) -> None:
    for model in WORKFLOW_MODELS:
        output = model.reader(env.alpha)
        assert PERCENT.match(output.result), output
        assert output.block_explorer_link == f"{env.net.network.explorer_url}/address/{model.contract_address}"
        value = float(output.result.rstrip("%")) / 100
        if model.output_tensor == "Y":
            assert 0.003 < value < 0.06  # an hourly volatility
        else:
            assert -0.05 < value < 0.05  # a return


def test_readers_use_the_global_client(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(og, "global_client", env.net.client)
    output = og.workflow_models.read_sui_usdt_6_hour_price_forecast()
    assert PERCENT.match(output.result)


async def test_async_readers(env: Env) -> None:
    for model in WORKFLOW_MODELS:
        output = await model.async_reader(env.alpha)
        assert output == model.reader(env.alpha)


def test_genesis_results_are_the_models_output_on_the_feeds_candles(env: Env) -> None:
    """End to end: feed candles -> 0x…F5 -> input tensor -> ONNX model -> stored result."""
    for workflow in GENESIS_WORKFLOWS:
        result = env.alpha.read_workflow_result(workflow.address)
        tensor = result.numbers[workflow.model.output_name]
        assert tensor.shape == (1, 1)
        assert float(tensor.reshape(())) == _expected(env, workflow.model)


def test_forecasts_change_as_the_scheduler_runs(env: Env) -> None:
    reader = GENESIS_WORKFLOWS[0].reader
    before = reader.reader(env.alpha).result
    count = env.result_count(reader.contract_address)
    env.clock.advance(3600)
    report = env.handle.scheduler.tick()
    assert report.candles_added >= 12  # one hour: at least one candle in every series
    assert not report.failures
    assert reader.contract_address in {r.contract_address for r in report.runs}
    assert env.result_count(reader.contract_address) == count + 1
    after = reader.reader(env.alpha).result
    assert after != before
    assert float(env.alpha.read_workflow_result(reader.contract_address).numbers["Y"].reshape(())) == \
        _expected(env, GENESIS_WORKFLOWS[0].model)


# ---------------------------------------------------------------------------------------------
# The price-history precompile (0x…F5), called as the public contract calls it
# ---------------------------------------------------------------------------------------------

QUERY = "(string,string,uint32,uint32,uint8,uint8[])"


def _price_history(env: Env, selector: str, types: list[str], args: list[Any]) -> bytes:
    """A raw eth_call to the precompile; a revert raises DeployerError with the reason."""
    from eth_abi import encode

    data = "0x" + selector + encode(types, args).hex()
    response = env.net.alpha_chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                        "params": [{"to": PRICE_HISTORY_PRECOMPILE_ADDRESS, "data": data}, "latest"]})
    assert isinstance(response, dict)
    if "error" in response:
        raise DeployerError(response["error"]["message"], reason=response["error"]["message"])
    return bytes.fromhex(response["result"][2:])


def _candles(env: Env, query: tuple[Any, ...]) -> list[tuple[int, int]]:
    from eth_abi import decode

    raw = _price_history(env, "f2f08e63", [QUERY], [query])
    return [tuple(n) for n in decode(["(int128,int128)[]"], raw)[0]]


def test_the_price_history_precompile_serves_the_synthetic_candles(env: Env) -> None:
    end = _feed_index(env, FORECAST_MODELS[0])
    assert end >= HISTORY_CANDLES
    series = SyntheticSeries(market("ETH", "USDT"), 60)
    candles = series.candles(end - 3, end)
    types = [og.CandleType.HIGH, og.CandleType.LOW, og.CandleType.OPEN, og.CandleType.CLOSE, og.CandleType.VOLUME]
    ascending = _candles(env, ("eth", "usdt", 3, 60, 0, [int(t) for t in types]))
    expected = [v for c in candles for v in ((c.high, 5), (c.low, 5), (c.open, 5), (c.close, 5), (c.volume, 2))]
    assert ascending == expected
    descending = _candles(env, ("ETH", "USDT", 3, 60, 1, [3]))
    assert descending == [(c.close, 5) for c in reversed(candles)]


def test_run_inference_on_price_feed_is_the_model_on_those_candles(env: Env) -> None:
    """`runInferenceOnPriceFeed(modelId, inputName, query)` (0xa192a0f9), what the public
    PriceHistoryInference calls: tensor [1, total, types] of the latest candles, run by the model."""
    from eth_abi import decode

    from opengradient.client.codec import MODEL_OUTPUT, decode_model_output
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    model = ETH_RETURN
    query = (model.base, model.quote, model.total_candles, model.duration_mins, int(model.order),
             [int(t) for t in model.candle_types])
    raw = _price_history(env, "a192a0f9", ["string", "string", QUERY], [env.cid(model), model.input_name, query])
    (output,) = decode([MODEL_OUTPUT], raw)
    assert output[3] is True  # an eth_call is a simulation
    value = decode_model_output(output)[model.output_name]
    assert float(value.reshape(())) == _expected(env, model)


@pytest.mark.parametrize(("args", "reason"), [
    (("DOGE", "USDT", 3, 60, 0, [3]), "no price history for DOGE/USDT at 60 minutes"),
    (("ETH", "USDT", 3, 45, 0, [3]), "no price history for ETH/USDT at 45 minutes"),
    (("ETH", "USDT", 10_000, 60, 0, [3]), "asked for 10000"),
    (("ETH", "USDT", 0, 60, 0, [3]), "total_candles must be positive"),
    (("ETH", "USDT", 3, 60, 2, [3]), "order must be 0"),
    (("ETH", "USDT", 3, 60, 0, [5]), "unknown candle type"),
    (("ETH", "USDT", 3, 60, 0, []), "candle_types is empty"),
])
def test_the_price_history_precompile_refuses_bad_queries(env: Env, args: tuple[Any, ...], reason: str) -> None:
    with pytest.raises(DeployerError) as info:
        _candles(env, args)
    assert reason in str(info.value.reason)


def test_the_price_history_precompile_refuses_unknown_calls(env: Env) -> None:
    with pytest.raises(DeployerError, match="queryHistoricalCandles and runInferenceOnPriceFeed"):
        _price_history(env, "12345678", [], [])
    with pytest.raises(DeployerError, match="malformed call data"):
        _price_history(env, "f2f08e63", ["uint256"], [1])


def test_synthetic_candles_are_reproducible() -> None:
    for m in MARKETS:
        whole = SyntheticSeries(m, 30).candles(0, 300)
        again = SyntheticSeries(m, 30)
        assert again.candles(250, 300) == whole[250:]
        assert again.candles(0, 10) == whole[:10]
    # Pinned, so a change to the generator is a deliberate one (the fitted models depend on it).
    first = SyntheticSeries(market("BTC", "USDT"), 60).candles(0, 1)[0]
    assert first.open == 650_000_000
    assert SyntheticSeries(market("SUI", "USDT"), 360).candles(99, 100)[0] == \
        SyntheticSeries(market("sui", "usdt"), 360).candles(0, 100)[99]


def test_fitted_models_are_reproducible_byte_for_byte() -> None:
    for model in FORECAST_MODELS:
        assert fit_forecasts.model_bytes(model) == model.path.read_bytes(), (
            f"{model.filename} is stale: run python -m opengradient.devnet.services.models.fit_forecasts")


# ---------------------------------------------------------------------------------------------
# new_workflow / run_workflow / read_workflow_result / read_workflow_history
# ---------------------------------------------------------------------------------------------


def test_new_workflow_without_scheduler(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    tasks_before = int(env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount"))
    address = env.alpha.new_workflow(env.cid(ETH_RETURN), ETH_QUERY, "price_history")
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", address)
    assert env.call(address, "PriceHistoryInference", "modelId") == env.cid(ETH_RETURN)
    assert env.call(address, "PriceHistoryInference", "inputName") == "price_history"
    assert int(env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount")) == tasks_before
    # Setting up ran the model once: there is a result at once.
    first = env.alpha.read_workflow_result(address)
    assert float(first.numbers["regression_output"].reshape(())) == _expected(env, ETH_RETURN)
    ran = env.alpha.run_workflow(address)
    assert ran.numbers.keys() == {"regression_output"}
    np.testing.assert_array_equal(ran.numbers["regression_output"], first.numbers["regression_output"])
    assert env.result_count(address) == 2


def test_history_is_newest_first(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    address = env.alpha.new_workflow(env.cid(ETH_RETURN), ETH_QUERY, "price_history")
    values = [float(env.alpha.read_workflow_result(address).numbers["regression_output"].reshape(()))]
    for _ in range(2):
        env.clock.advance(3600)
        env.handle.scheduler.feed(env.clock())  # new candles only; no scheduled runs
        values.append(float(env.alpha.run_workflow(address).numbers["regression_output"].reshape(())))
    assert len(set(values)) == 3
    history = env.alpha.read_workflow_history(address, 10)
    assert [float(o.numbers["regression_output"].reshape(())) for o in history] == values[::-1]
    assert [float(o.numbers["regression_output"].reshape(())) for o in
            env.alpha.read_workflow_history(address, 2)] == values[:0:-1]
    latest = env.alpha.read_workflow_result(address)
    assert float(latest.numbers["regression_output"].reshape(())) == values[-1]


def test_new_workflow_with_scheduler_registers_and_the_scheduler_runs_it(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import SOL_RETURN

    query = og.HistoricalInputQuery("SOL", "USDT", 12, 60, og.CandleOrder.ASCENDING, [og.CandleType.CLOSE])
    block = int(env.rpc("eth_blockNumber"), 16)
    started = int(time.time())
    address = env.alpha.new_workflow(env.cid(SOL_RETURN), query, "price_history",
                                     og.SchedulerParams(frequency=600, duration_hours=LONG_HOURS))
    logs = env.rpc("eth_getLogs", {"address": SCHEDULER_ADDRESS, "fromBlock": hex(block + 1),
                                   "topics": [TASK_REGISTERED_TOPIC]})
    assert len(logs) == 1
    assert logs[0]["topics"][2][-40:] == address[2:].lower()
    sender = env.net.client.alpha_address
    assert sender is not None and logs[0]["topics"][3][-40:] == sender[2:].lower()
    data = bytes.fromhex(logs[0]["data"][2:])
    end_time, frequency = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")
    assert frequency == 600
    assert started + LONG_HOURS * 3600 <= end_time <= int(time.time()) + LONG_HOURS * 3600 + 1

    assert env.result_count(address) == 1
    env.handle.scheduler.tick()  # registered just now: not due yet
    assert env.result_count(address) == 1
    env.clock.advance(600)
    report = env.handle.scheduler.tick()
    [run] = [r for r in report.runs if r.contract_address == address]
    assert run.transaction_hash is not None and not report.failures
    assert env.result_count(address) == 2  # nobody called run()
    receipt = env.rpc("eth_getTransactionReceipt", run.transaction_hash)
    [event] = [log for log in receipt["logs"] if log["topics"][0] == INFERENCE_RESULT_EMITTED_TOPIC]
    assert event["topics"][1][-40:] == env.handle.scheduler.address[2:].lower()
    env.clock.advance(300)  # half a period: nothing due
    assert address not in {r.contract_address for r in env.handle.scheduler.tick().runs}
    env.clock.advance(300)
    assert address in {r.contract_address for r in env.handle.scheduler.tick().runs}
    assert env.result_count(address) == 3


def test_the_scheduler_stops_at_the_end_time(fresh: Env) -> None:
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    address = fresh.alpha.new_workflow(fresh.cid(ETH_RETURN), ETH_QUERY, "price_history",
                                       og.SchedulerParams(frequency=1200, duration_hours=1))
    fresh.handle.scheduler.tick()
    runs = 0
    for _ in range(6):  # two hours in 20-minute steps: due at 20, 40, 60 minutes only
        fresh.clock.advance(1200)
        runs += address in {r.contract_address for r in fresh.handle.scheduler.tick().runs}
    assert runs in (2, 3)  # the last period ends within a second of the end time
    assert fresh.result_count(address) == 1 + runs
    # After a long pause the loop catches up: every candle of the pause, then one run each.
    before = {(m.base, d): fresh.net.price_feed.available(m.base, m.quote, d) for m in MARKETS for d in (30, 60, 360)}
    fresh.clock.advance(5 * 86400)
    report = fresh.handle.scheduler.tick()
    assert not report.failures
    assert report.candles_added == 4 * (240 + 120 + 20)  # five days of 30 min, 1 h and 6 h candles
    assert address not in {r.contract_address for r in report.runs}
    assert {r.contract_address for r in report.runs} == {w.address for w in GENESIS_WORKFLOWS}
    for m in MARKETS:
        for duration in (30, 60, 360):
            last_close = fresh.net.price_feed.last_close(m.base, m.quote, duration)
            assert fresh.clock() - duration * 60 < last_close <= fresh.clock()
            assert fresh.net.price_feed.available(m.base, m.quote, duration) == \
                before[(m.base, duration)] + 5 * 86400 // (duration * 60)


def test_cancelled_tasks_are_not_run(env: Env) -> None:
    from opengradient.devnet.chain.deploy import Deployer
    from opengradient.devnet.services.models.forecasts import BTC_RETURN

    query = og.HistoricalInputQuery("BTC", "USDT", 12, 60, og.CandleOrder.ASCENDING, [og.CandleType.CLOSE])
    address = env.alpha.new_workflow(env.cid(BTC_RETURN), query, "price_history",
                                     og.SchedulerParams(frequency=60, duration_hours=LONG_HOURS))
    env.handle.scheduler.tick()
    task_id = int(env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount")) - 1
    stranger = Deployer(env.net.alpha_chain, env.net.accounts[4])
    with pytest.raises(DeployerError, match="only the task's owner"):
        stranger.transact(SCHEDULER_ADDRESS, "WorkflowScheduler", "cancelTask", task_id)
    Deployer(env.net.alpha_chain, env.net.accounts[0]).transact(SCHEDULER_ADDRESS, "WorkflowScheduler",
                                                                "cancelTask", task_id)
    env.clock.advance(120)
    assert address not in {r.contract_address for r in env.handle.scheduler.tick().runs}


def test_schedule_workflow_later(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    address = env.alpha.new_workflow(env.cid(ETH_RETURN), ETH_QUERY, "price_history")
    count = int(env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount"))
    tx_hash = env.alpha.schedule_workflow(address, {"frequency": 60, "duration_hours": 1})
    assert env.rpc("eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
    task = env.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "getTask", count)
    assert task[0].lower() == address.lower() and int(task[3]) == 60


async def test_async_twins(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    address = await env.alpha.anew_workflow(env.cid(ETH_RETURN), ETH_QUERY, "price_history",
                                            og.SchedulerParams(frequency=3600, duration_hours=1))
    first = await env.alpha.aread_workflow_result(address)
    ran = await env.alpha.arun_workflow(address)
    np.testing.assert_array_equal(ran.numbers["regression_output"], first.numbers["regression_output"])
    history = await env.alpha.aread_workflow_history(address, 5)
    assert len(history) == 2
    assert (await env.alpha.aschedule_workflow(address, og.SchedulerParams(60, 1))).startswith("0x")


def test_workflow_with_several_candle_types(env: Env) -> None:
    from opengradient.devnet.services.models.forecasts import SUI_30M_RETURN

    query = og.HistoricalInputQuery("SUI", "USDT", 16, 30, og.CandleOrder.ASCENDING,
                                    [og.CandleType.OPEN, og.CandleType.HIGH, og.CandleType.LOW, og.CandleType.CLOSE])
    address = env.alpha.new_workflow(env.cid(SUI_30M_RETURN), query, "price_data")
    output = env.alpha.read_workflow_result(address)
    assert float(output.numbers["destandardized_prediction"].reshape(())) == _expected(env, SUI_30M_RETURN)
    assert output == env.alpha.read_workflow_history(address, 1)[0]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"model_cid": ""}, "model_cid"),
    ({"model_cid": "   "}, "model_cid"),
    ({"input_tensor_name": ""}, "input_tensor_name"),
    ({"input_tensor_name": None}, "input_tensor_name"),
    ({"input_query": og.HistoricalInputQuery("ETH", "USDT", 0, 60, og.CandleOrder.ASCENDING,
                                             [og.CandleType.CLOSE])}, "total_candles"),
    ({"input_query": og.HistoricalInputQuery("ETH", "USDT", 12, 60, og.CandleOrder.ASCENDING, [])},
     "candle_types"),
    ({"input_query": og.HistoricalInputQuery("ETH", "USDT", 12, 60, og.CandleOrder.ASCENDING,
                                             [9])}, "candle type"),  # type: ignore[list-item]
    ({"input_query": og.HistoricalInputQuery("ETH", "", 12, 60, og.CandleOrder.ASCENDING,
                                             [og.CandleType.CLOSE])}, "quote"),
    ({"input_query": {"base": "ETH"}}, "missing fields"),
    ({"input_query": "ETH/USDT"}, "HistoricalInputQuery"),
    ({"scheduler_params": og.SchedulerParams(frequency=0, duration_hours=1)}, "frequency"),
    ({"scheduler_params": og.SchedulerParams(frequency=60, duration_hours=-1)}, "duration_hours"),
])
def test_bad_input_fails_before_anything_is_sent(env: Env, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"model_cid": env.cid(FORECAST_MODELS[2]), "input_query": ETH_QUERY,
                            "input_tensor_name": "price_history", "scheduler_params": None}
    args.update(kwargs)
    nonce = env.nonce()
    with pytest.raises(og.InvalidInputError, match=match):
        env.alpha.new_workflow(**args)
    assert env.nonce() == nonce


@pytest.mark.parametrize(("model_cid", "tensor", "query", "error", "match"), [
    (None, "no_such_input", ETH_QUERY, og.ContractRevertError, "unknown input 'no_such_input'"),
    ("QmNoSuchModel", "price_history", ETH_QUERY, og.ModelNotFoundError, "model not found"),
    (None, "price_history", og.HistoricalInputQuery("DOGE", "USDT", 12, 60, og.CandleOrder.ASCENDING,
                                                    [og.CandleType.CLOSE]),
     og.ContractRevertError, "no price history for DOGE/USDT"),
    (None, "price_history", og.HistoricalInputQuery("ETH", "USDT", 10_000, 60, og.CandleOrder.ASCENDING,
                                                    [og.CandleType.CLOSE]),
     og.ContractRevertError, "asked for 10000"),
])
def test_chain_side_errors_are_typed_and_nothing_is_sent(env: Env, model_cid: str | None, tensor: str,
                                                         query: og.HistoricalInputQuery,
                                                         error: type[Exception], match: str) -> None:
    nonce = env.nonce()
    with pytest.raises(error, match=match):
        env.alpha.new_workflow(model_cid or env.cid(FORECAST_MODELS[2]), query, tensor)
    assert env.nonce() == nonce  # the revert surfaced at gas estimation


def test_bad_addresses_and_counts(env: Env) -> None:
    address = GENESIS_WORKFLOWS[0].address
    for bad in ("", "0x1234", "not an address", None, address.lower().replace("0x", "0y")):
        with pytest.raises(og.InvalidInputError):
            env.alpha.read_workflow_result(bad)  # type: ignore[arg-type]
    mangled = address[:2] + address[2:].swapcase()
    with pytest.raises(og.InvalidInputError, match="checksum"):
        env.alpha.run_workflow(mangled)
    for n in (0, -1, 1001, 1.5, True):
        with pytest.raises(og.InvalidInputError, match="num_results"):
            env.alpha.read_workflow_history(address, n)  # type: ignore[arg-type]
    assert len(env.alpha.read_workflow_history(address.lower(), 1)) == 1


def test_reading_what_is_not_a_workflow(env: Env) -> None:
    nobody = "0x000000000000000000000000000000000000dEaD"
    with pytest.raises(og.InferenceError, match="no contract"):
        env.alpha.read_workflow_result(nobody)
    with pytest.raises(og.InferenceError, match="no contract"):
        env.alpha.read_workflow_history(nobody, 3)
    with pytest.raises(og.ContractRevertError):
        env.alpha.read_workflow_result(SCHEDULER_ADDRESS)
    with pytest.raises(og.ContractRevertError):
        env.alpha.run_workflow(SCHEDULER_ADDRESS)


def test_an_uninitialised_workflow_has_no_result(env: Env) -> None:
    from opengradient.devnet.chain.deploy import runtime_code

    address = "0x00000000000000000000000000000000000F10A7"
    env.net.alpha_chain.set_code(address, runtime_code("PriceHistoryInference"))
    with pytest.raises(og.InferenceError, match="no result yet"):
        env.alpha.read_workflow_result(address)
    assert env.alpha.read_workflow_history(address, 5) == []
    with pytest.raises(og.ContractRevertError, match="not initialized"):
        env.alpha.run_workflow(address)
    with pytest.raises(og.InferenceError, match="no result yet"):
        og.workflow_models.read_workflow_scalar(address, "Y", env.alpha)


def test_genesis_workflows_cannot_be_initialised_again(env: Env) -> None:
    workflow = GENESIS_WORKFLOWS[0]
    with pytest.raises(DeployerError, match="already initialized"):
        env.handle.scheduler.deployer.transact(
            workflow.address, "PriceHistoryInference", "initialize", "QmOther", "X",
            ("ETH", "USDT", 24, 60, 0, [3]))


def test_reader_errors(env: Env) -> None:
    with pytest.raises(og.InferenceError, match="no output tensor 'nope'"):
        og.workflow_models.read_workflow_scalar(GENESIS_WORKFLOWS[0].address, "nope", env.alpha)
    with pytest.raises(og.InvalidInputError, match="output_tensor"):
        og.workflow_models.read_workflow_scalar(GENESIS_WORKFLOWS[0].address, "", env.alpha)


def test_without_a_key_reads_work_and_writes_fail_before_sending(env: Env) -> None:
    from opengradient.client.client import Client

    bridge = env.net._bridge
    keyless = Client(network=env.net.network, transport=bridge.transport, async_transport=bridge.async_transport)
    try:
        assert PERCENT.match(WORKFLOW_MODELS[1].read(keyless).result)
        with pytest.raises(og.ConfigurationError, match="private key"):
            keyless.alpha.new_workflow(env.cid(FORECAST_MODELS[2]), ETH_QUERY, "price_history")
        with pytest.raises(og.ConfigurationError, match="private key"):
            keyless.alpha.run_workflow(GENESIS_WORKFLOWS[0].address)
    finally:
        keyless.close()


def test_a_failed_registration_raises(fresh: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain's clock is two hours ahead: a one-hour schedule ends in the chain's past."""
    from opengradient.devnet.services.models.forecasts import ETH_RETURN

    ahead = int(time.time()) + 2 * 3600
    monkeypatch.setattr(chain_module, "_now", lambda: ahead)
    with pytest.raises(og.WorkflowSchedulingError) as info:
        fresh.alpha.new_workflow(fresh.cid(ETH_RETURN), ETH_QUERY, "price_history",
                                 og.SchedulerParams(frequency=60, duration_hours=1))
    error = info.value
    assert "end time is in the past" in error.reason
    assert isinstance(error.__cause__, og.ContractRevertError)
    assert "schedule_workflow" in str(error)
    # The workflow itself was deployed and works; it just is not scheduled.
    assert fresh.rpc("eth_getCode", error.contract_address, "latest") != "0x"
    assert fresh.alpha.read_workflow_result(error.contract_address).numbers
    assert int(fresh.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount")) == len(GENESIS_WORKFLOWS)
    with pytest.raises(og.WorkflowSchedulingError, match="end time is in the past"):
        fresh.alpha.schedule_workflow(error.contract_address, og.SchedulerParams(60, 1))


def test_the_loop_thread_starts_and_stops(fresh: Env) -> None:
    handle = WorkflowsHandle(fresh.handle.scheduler, fresh.handle.models, poll_interval=0.01, start_thread=True,
                             seconds=0.0)
    assert handle.running
    handle.close()
    assert not handle.running
    handle.close()  # idempotent
    with pytest.raises(RuntimeError, match="already installed"):
        install_workflows(fresh.net.alpha_chain, fresh.net.hub, fresh.net.price_feed, fresh.net.accounts,
                          start_thread=False)
