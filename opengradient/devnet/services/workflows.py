"""Workflows on the devnet: the scheduler and the seven forecast workflows, fed by the price feed.

Candles come from the price-history precompile at `0x…F5` (`opengradient.devnet.chain.precompiles.price_history`),
which the workflow contract asks to run its model, exactly as on the public network.
`install_workflows(chain, hub, price_feed, accounts)` sets up a devnet's Alpha chain:

* the `WorkflowScheduler` at the scheduler address of the public network;
* the seven `PriceHistoryInference` workflows at their public addresses, each running one of
  the fitted forecast models (`opengradient.devnet.services.models.forecasts`, published to the Model Hub)
  and run once, so every reader has a value at once; each is registered with the scheduler to run
  again whenever a candle of its series closes;
* a scheduler loop (a daemon thread) that, every `poll_interval` seconds, advances the price feed
  to the candles that have closed and calls `run()` on every registered workflow that is due
  (every `frequency` seconds after its registration, until its end time; the loop's clock
  decides), from dev account 7. Failed runs are logged and retried at the next period.

The workflows are placed as runtime code and set up with `initialize(...)` (no constructor).
`handle.scheduler.tick()` does one pass of the loop at once; tests construct the handle with
`start_thread=False` and their own clock, so they advance time without sleeping.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from opengradient.client.workflows import RUN_SELECTOR
from opengradient.devnet.chain.deploy import Deployer, DeployerError, runtime_code
from opengradient.devnet.chain.keys import DevAccount, dev_accounts
from opengradient.devnet.chain.precompiles.price_history import PRICE_HISTORY_PRECOMPILE_ADDRESS, PriceFeed
from opengradient.devnet.services.models.forecasts import (
    BTC_RETURN,
    ETH_RETURN,
    ETH_VOLATILITY,
    SOL_RETURN,
    SUI_6H_RETURN,
    SUI_30M_RETURN,
    SUI_RETURN,
    ForecastModel,
)
from opengradient.networks import SCHEDULER_ADDRESS
from opengradient.workflow_models import (
    BTC_1_HOUR_PRICE_FORECAST,
    ETH_1_HOUR_PRICE_FORECAST,
    ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST,
    SOL_1_HOUR_PRICE_FORECAST,
    SUI_1_HOUR_PRICE_FORECAST,
    SUI_USDT_6_HOUR_PRICE_FORECAST,
    SUI_USDT_30_MIN_PRICE_FORECAST,
    WorkflowModel,
)

if TYPE_CHECKING:
    from opengradient.devnet.chain.evm import DevChain
    from opengradient.devnet.services.hub import HubService

log = logging.getLogger("opengradient.devnet.services.workflows")

#: The dev account that makes the scheduler's calls.
SCHEDULER_ACCOUNT = 7
#: Genesis workflows stay scheduled this long.
GENESIS_SCHEDULE_SECONDS = 10 * 365 * 24 * 3600
_RUN_GAS = 10_000_000


@dataclass(frozen=True)
class GenesisWorkflow:
    """A workflow the devnet installs: its reader's descriptor and the model it runs."""

    reader: WorkflowModel
    model: ForecastModel

    @property
    def address(self) -> str:
        """The workflow's contract address (the public one for the hard-coded workflows)."""
        return self.reader.contract_address


GENESIS_WORKFLOWS: tuple[GenesisWorkflow, ...] = (
    GenesisWorkflow(ETH_USDT_ONE_HOUR_VOLATILITY_FORECAST, ETH_VOLATILITY),
    GenesisWorkflow(BTC_1_HOUR_PRICE_FORECAST, BTC_RETURN),
    GenesisWorkflow(ETH_1_HOUR_PRICE_FORECAST, ETH_RETURN),
    GenesisWorkflow(SOL_1_HOUR_PRICE_FORECAST, SOL_RETURN),
    GenesisWorkflow(SUI_1_HOUR_PRICE_FORECAST, SUI_RETURN),
    GenesisWorkflow(SUI_USDT_30_MIN_PRICE_FORECAST, SUI_30M_RETURN),
    GenesisWorkflow(SUI_USDT_6_HOUR_PRICE_FORECAST, SUI_6H_RETURN),
)


@dataclass
class _Task:
    """What the loop knows of one registered task."""

    task_id: int
    address: str
    end_time: int
    frequency: int
    next_due: int
    cancelled: bool = False


@dataclass(frozen=True)
class ScheduledRun:
    """One call the loop made: the task, the workflow, and the transaction (or the failure)."""

    task_id: int
    contract_address: str
    transaction_hash: str | None = None
    error: str | None = None


@dataclass
class TickReport:
    """What one pass of the scheduler loop did."""

    now: float
    candles_added: int = 0
    runs: list[ScheduledRun] = field(default_factory=list)
    failures: list[ScheduledRun] = field(default_factory=list)


class WorkflowScheduler:
    """The devnet side of the scheduler: advances the price feed and runs due tasks, one pass per
    `tick()`."""

    def __init__(self, chain: DevChain, operator: DevAccount, clock: Callable[[], float],
                 price_feed: PriceFeed) -> None:
        self.chain = chain
        self.operator = operator
        self.clock = clock
        self.price_feed = price_feed
        #: The one sender of the operator's transactions (it keeps the account's nonce).
        self.deployer = Deployer(chain, operator, estimate_gas=False)
        self._tasks: dict[int, _Task] = {}
        self._first_runs: dict[str, int] = {}
        self._lock = threading.RLock()

    def first_run_at(self, contract_address: str, when: int) -> None:
        """Run the task of `contract_address` first at `when` rather than one period after its
        registration (the genesis workflows run when their candles close)."""
        with self._lock:
            self._first_runs[to_checksum_address(contract_address)] = when

    @property
    def address(self) -> str:
        """The account that makes the scheduler's calls."""
        return self.deployer.address

    def tick(self, now: float | None = None) -> TickReport:
        """Advance the price feed to `now` (default: the clock), then run every due task once."""
        with self._lock:
            moment = self.clock() if now is None else now
            report = TickReport(now=moment)
            report.candles_added = self.feed(moment)
            self._refresh_tasks(moment)
            for task in sorted(self._tasks.values(), key=lambda t: t.task_id):
                if task.cancelled or moment > task.end_time or moment < task.next_due:
                    continue
                periods = math.floor((moment - task.next_due) / task.frequency) + 1
                task.next_due += periods * task.frequency
                try:
                    receipt = self.deployer.send(task.address, RUN_SELECTOR, gas=_RUN_GAS,
                                                  what=f"run() of workflow {task.address}")
                except DeployerError as exc:
                    log.warning("scheduled run of %s (task %d) failed: %s", task.address, task.task_id, exc)
                    report.failures.append(ScheduledRun(task.task_id, task.address, error=str(exc)))
                else:
                    report.runs.append(ScheduledRun(task.task_id, task.address, receipt["transactionHash"]))
            return report

    def feed(self, now: float) -> int:
        """Make the candles closed by `now` available at the price feed; returns how many."""
        return self.price_feed.advance(now)

    def _refresh_tasks(self, now: float) -> None:
        count = int(self.deployer.call(SCHEDULER_ADDRESS, "WorkflowScheduler", "taskCount"))
        if count == 0:
            return
        for task_id, raw in enumerate(self.deployer.call(SCHEDULER_ADDRESS, "WorkflowScheduler",
                                                          "getTasks", 0, count)):
            address, _owner, end_time, frequency, registered_at, cancelled = raw
            known = self._tasks.get(task_id)
            if known is None:
                # The first run is one period after the loop learns of the task (at once, with the
                # real clock), and never earlier than one period after registration: setting up
                # the workflow already ran it once.
                address = to_checksum_address(address)
                first = self._first_runs.pop(address, max(int(registered_at), math.floor(now)) + int(frequency))
                self._tasks[task_id] = _Task(task_id, address, int(end_time), int(frequency), first,
                                             bool(cancelled))
            else:
                known.cancelled = bool(cancelled)

    def tasks(self) -> list[dict[str, Any]]:
        """The registered tasks as the loop sees them (after the last tick)."""
        with self._lock:
            return [{"task_id": t.task_id, "contract_address": t.address, "end_time": t.end_time,
                     "frequency": t.frequency, "next_due": t.next_due, "cancelled": t.cancelled}
                    for t in sorted(self._tasks.values(), key=lambda t: t.task_id)]


class WorkflowsHandle:
    """What `install_workflows` set up; `close()` stops the scheduler loop."""

    def __init__(self, scheduler: WorkflowScheduler, models: dict[str, str], poll_interval: float,
                 start_thread: bool, seconds: float) -> None:
        self.scheduler = scheduler
        #: Forecast model CIDs by hub name.
        self.models = models
        self.price_history_address = PRICE_HISTORY_PRECOMPILE_ADDRESS
        self.scheduler_address = SCHEDULER_ADDRESS
        self.workflows = {w.address: w for w in GENESIS_WORKFLOWS}
        #: How long `install_workflows` took.
        self.install_seconds = seconds
        self.poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start_thread:
            self._thread = threading.Thread(target=self._loop, name="og-devnet-scheduler", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.scheduler.tick()
            except Exception:  # the loop must outlive any one bad pass
                log.exception("scheduler pass failed")

    @property
    def running(self) -> bool:
        """True while the background loop runs."""
        return self._thread is not None and self._thread.is_alive()

    def info(self) -> dict[str, Any]:
        """What is installed, for the devnet's info page."""
        return {"price_history": self.price_history_address, "scheduler": self.scheduler_address,
                "scheduler_account": self.scheduler.address,
                "workflows": [{"name": w.reader.name, "address": w.address, "output_tensor": w.reader.output_tensor,
                               "model": w.model.name, "model_cid": self.models[w.model.name]}
                              for w in GENESIS_WORKFLOWS]}

    def close(self) -> None:
        """Stop the scheduler loop (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> WorkflowsHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _operator(chain: DevChain, accounts: Sequence[DevAccount]) -> DevAccount:
    if len(accounts) > SCHEDULER_ACCOUNT:
        return accounts[SCHEDULER_ACCOUNT]
    account = dev_accounts(SCHEDULER_ACCOUNT + 1)[SCHEDULER_ACCOUNT]
    chain.set_balance(account.address, 10_000 * 10**18)
    return account


def install_workflows(chain: DevChain, hub: HubService, price_feed: PriceFeed, accounts: Sequence[DevAccount], *,
                      clock: Callable[[], float] = time.time, start_thread: bool = True,
                      poll_interval: float = 1.0) -> WorkflowsHandle:
    """Install the scheduler and the seven workflows on the Alpha `chain` (their models published
    to `hub`, candles from `price_feed`, the scheduler's calls made by a dev account); start the loop.

    `clock` is the loop's time (Unix seconds); `start_thread=False` leaves the loop to explicit
    `handle.scheduler.tick()` calls.
    """
    started = time.perf_counter()
    existing = chain.rpc({"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": [SCHEDULER_ADDRESS, "latest"]})
    if isinstance(existing, dict) and existing.get("result") not in (None, "0x"):
        raise RuntimeError("workflows are already installed on this devnet (see net.workflows)")
    operator = _operator(chain, accounts)
    chain.set_code(SCHEDULER_ADDRESS, runtime_code("WorkflowScheduler"))
    workflow_code = runtime_code("PriceHistoryInference")
    for workflow in GENESIS_WORKFLOWS:
        chain.set_code(workflow.address, workflow_code)

    scheduler = WorkflowScheduler(chain, operator, clock, price_feed)
    deployer = scheduler.deployer
    now = clock()
    scheduler.feed(now)

    models = {}
    for workflow in GENESIS_WORKFLOWS:
        spec = workflow.model
        if spec.name not in models:
            models[spec.name] = hub.publish(spec.name, spec.path, description=spec.description)
        query = (spec.base, spec.quote, spec.total_candles, spec.duration_mins, int(spec.order),
                 [int(t) for t in spec.candle_types])
        deployer.transact(workflow.address, "PriceHistoryInference", "initialize", models[spec.name],
                          spec.input_name, query, gas=_RUN_GAS)
        period = spec.duration_mins * 60
        deployer.transact(SCHEDULER_ADDRESS, "WorkflowScheduler", "registerTask", workflow.address,
                          int(now) + GENESIS_SCHEDULE_SECONDS, period)
        scheduler.first_run_at(workflow.address, (math.floor(now / period) + 1) * period)
    seconds = time.perf_counter() - started
    log.info("workflows installed in %.2f s: scheduler %s, %d workflows", seconds, SCHEDULER_ADDRESS,
             len(GENESIS_WORKFLOWS))
    return WorkflowsHandle(scheduler, models, poll_interval, start_thread, seconds)
