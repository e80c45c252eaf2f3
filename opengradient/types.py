"""Enums and result types of the public API (names and values as in SDK 0.7.4).

Results are plain dataclasses: cheap to import, easy to print, and typed for editors and mypy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    import numpy as np

    from opengradient.proof import Proof


class InferenceMode(IntEnum):
    """How the Alpha chain runs an ONNX model; the value is the `uint8` sent on chain."""

    VANILLA = 0
    ZKML = 1
    TEE = 2


class LlmInferenceMode(IntEnum):
    """Execution mode of the legacy LLM API (`llm_chat`/`llm_completion`)."""

    VANILLA = 0
    TEE = 1


class TEE_LLM(StrEnum):  # noqa: N801 - the public name of 0.7.4
    """LLMs served through the TEE gateway; the value is the `provider/model` name sent on the wire.

    Both generations of names: those of SDK 0.7.4 (all kept) and the newer families today's network
    serves (GPT-4.1 mini/nano, o3, GPT-5.x, Claude 4.5+, Gemini 3.x, Grok 4.x, ByteDance Seed,
    DeepSeek, Hermes, GLM, and the image-generation models). Any
    other `provider/model` string works as well; the enum is a convenience, not a limit.
    """

    # SDK 0.7.4
    CLAUDE_3_5_HAIKU = "anthropic/claude-3.5-haiku"
    CLAUDE_3_7_SONNET = "anthropic/claude-3.7-sonnet"
    CLAUDE_4_0_SONNET = "anthropic/claude-4.0-sonnet"
    GEMINI_2_0_FLASH = "google/gemini-2.0-flash"
    GEMINI_2_5_FLASH = "google/gemini-2.5-flash"
    GEMINI_2_5_FLASH_LITE = "google/gemini-2.5-flash-lite"
    GEMINI_2_5_PRO = "google/gemini-2.5-pro"
    GPT_4O = "openai/gpt-4o"
    GPT_4_1_2025_04_14 = "openai/gpt-4.1-2025-04-14"
    GROK_2_1212 = "x-ai/grok-2-1212"
    GROK_2_VISION_LATEST = "x-ai/grok-2-vision-latest"
    GROK_3_BETA = "x-ai/grok-3-beta"
    GROK_3_MINI_BETA = "x-ai/grok-3-mini-beta"
    GROK_4_1_FAST = "x-ai/grok-4-1-fast"
    GROK_4_1_FAST_NON_REASONING = "x-ai/grok-4-1-fast-non-reasoning"
    O4_MINI = "openai/o4-mini"
    # today's network
    GPT_4_1_MINI = "openai/gpt-4.1-mini"
    GPT_4_1_NANO = "openai/gpt-4.1-nano"
    O3 = "openai/o3"
    GPT_5 = "openai/gpt-5"
    GPT_5_MINI = "openai/gpt-5-mini"
    GPT_5_2 = "openai/gpt-5.2"
    GPT_5_4 = "openai/gpt-5.4"
    GPT_5_4_MINI = "openai/gpt-5.4-mini"
    GPT_5_4_NANO = "openai/gpt-5.4-nano"
    GPT_5_5 = "openai/gpt-5.5"
    CLAUDE_SONNET_4_5 = "anthropic/claude-sonnet-4-5"
    CLAUDE_SONNET_4_6 = "anthropic/claude-sonnet-4-6"
    CLAUDE_HAIKU_4_5 = "anthropic/claude-haiku-4-5"
    CLAUDE_OPUS_4_5 = "anthropic/claude-opus-4-5"
    CLAUDE_OPUS_4_6 = "anthropic/claude-opus-4-6"
    CLAUDE_OPUS_4_7 = "anthropic/claude-opus-4-7"
    CLAUDE_OPUS_4_8 = "anthropic/claude-opus-4-8"
    GEMINI_3_FLASH = "google/gemini-3-flash-preview"
    GEMINI_3_1_PRO_PREVIEW = "google/gemini-3.1-pro-preview"
    GEMINI_3_1_FLASH_LITE_PREVIEW = "google/gemini-3.1-flash-lite-preview"
    GEMINI_3_5_FLASH = "google/gemini-3.5-flash"
    GROK_4 = "x-ai/grok-4"
    GROK_4_FAST = "x-ai/grok-4-fast"
    GROK_4_20_REASONING = "x-ai/grok-4.20-reasoning"
    GROK_4_20_NON_REASONING = "x-ai/grok-4.20-non-reasoning"
    GROK_CODE_FAST_1 = "x-ai/grok-code-fast-1"
    SEED_1_6 = "bytedance/seed-1.6"
    SEED_1_8 = "bytedance/seed-1.8"
    SEED_2_0_LITE = "bytedance/seed-2.0-lite"
    DEEPSEEK_V4_FLASH = "bytedance/deepseek-v4-flash"
    DEEPSEEK_V4_PRO = "bytedance/deepseek-v4-pro"
    HERMES_4_405B = "nous/hermes-4-405b"
    HERMES_4_70B = "nous/hermes-4-70b"
    GLM_5_2 = "zai/glm-5.2"
    # today's image-generation models: their images come back on `TextGenerationOutput.images`
    GPT_IMAGE_2 = "openai/gpt-image-2"
    GEMINI_2_5_FLASH_IMAGE = "google/gemini-2.5-flash-image"
    GEMINI_3_1_FLASH_IMAGE = "google/gemini-3.1-flash-image"
    GROK_2_IMAGE = "x-ai/grok-2-image"
    SEEDREAM_4_0 = "bytedance/seedream-4.0"
    SEEDANCE_4_5 = "bytedance/seedance-4.5"
    GLM_IMAGE = "zai/glm-image"


class LLM(StrEnum):
    """Open models of the legacy API that the network runs itself (`og.LLM`)."""

    META_LLAMA_3_8B_INSTRUCT = "meta-llama/Meta-Llama-3-8B-Instruct"
    LLAMA_3_2_3B_INSTRUCT = "meta-llama/Llama-3.2-3B-Instruct"
    QWEN_2_5_72B_INSTRUCT = "Qwen/Qwen2.5-72B-Instruct"
    MISTRAL_7B_INSTRUCT_V3 = "mistralai/Mistral-7B-Instruct-v0.3"


class x402SettlementMode(StrEnum):  # noqa: N801 - the public name of 0.7.4
    """How much of an LLM request is recorded on chain when its payment settles; the value is what
    is sent in `X-SETTLEMENT-TYPE`.

    0.7.4's values: `settle` (hashes), `settle-metadata` (input, output and model), `settle-batch`
    (a Merkle batch of hashes). Today's: `private` (the payment only), `batch` (a Merkle batch of
    hashes and signatures, with the request's batch data stored off chain), and `individual`, which
    one release in between used (everything on chain, like `settle-metadata`). Gateways map
    settle → private, settle-metadata → individual, settle-batch → batch.
    """

    SETTLE = "settle"
    SETTLE_METADATA = "settle-metadata"
    SETTLE_BATCH = "settle-batch"
    SETTLE_INDIVIDUAL = "settle"
    SETTLE_INDIVIDUAL_WITH_METADATA = "settle-metadata"
    PRIVATE = "private"
    BATCH_HASHED = "batch"
    INDIVIDUAL = "individual"


class CandleType(IntEnum):
    """Which value of a price candle a workflow feeds to its model."""

    HIGH = 0
    LOW = 1
    OPEN = 2
    CLOSE = 3
    VOLUME = 4


class CandleOrder(IntEnum):
    """Order of candles in a workflow's input tensor."""

    ASCENDING = 0
    DESCENDING = 1


@dataclass(frozen=True)
class HistoricalInputQuery:
    """The price history a workflow's model runs on (served by the chain's price-history precompile)."""

    base: str
    quote: str
    total_candles: int
    candle_duration_in_mins: int
    order: CandleOrder
    candle_types: list[CandleType]

    def to_abi(self) -> tuple[str, str, int, int, int, list[int]]:
        """The tuple the workflow contract's constructor takes."""
        return (self.base, self.quote, self.total_candles, self.candle_duration_in_mins,
                int(self.order), [int(t) for t in self.candle_types])


@dataclass(frozen=True)
class SchedulerParams:
    """Run a workflow every `frequency` seconds for `duration_hours` hours."""

    frequency: int
    duration_hours: int

    @property
    def end_time(self) -> int:
        """Unix time after which the scheduler stops calling the workflow."""
        return int(time.time()) + self.duration_hours * 3600

    @staticmethod
    def from_dict(data: dict[str, int] | None) -> SchedulerParams | None:
        """Accept the `{"frequency": …, "duration_hours": …}` dicts older code passes."""
        if data is None:
            return None
        return SchedulerParams(frequency=int(data.get("frequency", 600)),
                               duration_hours=int(data.get("duration_hours", 2)))


@dataclass
class ModelOutput:
    """A model's raw on-chain output, decoded: tensors by name plus JSON scalars."""

    numbers: dict[str, np.ndarray] = field(default_factory=dict)
    strings: dict[str, np.ndarray] = field(default_factory=dict)
    jsons: dict[str, Any] = field(default_factory=dict)
    is_simulation_result: bool = False


@dataclass
class InferenceResult:
    """The result of `alpha.infer`: the transaction, the output tensors by name, and its proof."""

    transaction_hash: str
    model_output: dict[str, np.ndarray]
    proof: Proof | None = None


@dataclass(frozen=True)
class ModelRepository:
    """A Model Hub repository and the version created with it."""

    name: str
    initialVersion: str  # noqa: N815 - the public name of 0.7.4


@dataclass(frozen=True)
class FileUploadResult:
    """An uploaded model file; `modelCid` is what `alpha.infer(model_cid=…)` runs."""

    modelCid: str  # noqa: N815 - the public name of 0.7.4
    size: int


class ModelVersion(TypedDict):
    """A Model Hub version as the hub returns it; a dict so 0.7.4 code doing
    `result["versionString"]` keeps working."""

    versionString: str  # noqa: N815 - the wire name
    notes: str
    is_major: bool


class ModelFileInfo(TypedDict):
    """One file of a Model Hub version, as `list_files` returns it (the hub's own keys)."""

    name: str
    size: int
    ipfsCid: str  # noqa: N815 - the wire name
    createdAt: str  # noqa: N815 - the wire name


@dataclass(frozen=True)
class Usage:
    """Token counts of one LLM response."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @staticmethod
    def from_dict(data: Any) -> Usage | None:
        """Parse OpenAI's `usage` object; None when absent or malformed."""
        if not isinstance(data, dict):
            return None
        try:
            prompt = int(data.get("prompt_tokens") or 0)
            completion = int(data.get("completion_tokens") or 0)
            total = int(data.get("total_tokens") or prompt + completion)
        except (TypeError, ValueError, OverflowError):
            return None
        return Usage(prompt, completion, total)


@dataclass
class TextGenerationOutput:
    """The result of an LLM chat or completion.

    `chat_output` is the assistant message (`role`, `content`, `tool_calls`); `completion_output`
    the text of a completion. `payment_hash` is the transaction that settled the x402 payment
    (also in `transaction_hash`, for 0.7.4 code). `tee_verified` says the enclave signature
    checked out against the trusted key; `proof` carries the evidence.

    With `payment_scheme="upto"`, `upto_session` names the gateway session the request was
    charged to and `amount_paid` is its price; `payment_hash` is None then, because the session
    settles later in one transaction for all its requests (`client.llm.close_sessions()`).

    `tee_endpoint` is where the request went (the enclave's registered endpoint, or the pinned
    gateway's URL); `tee_payment_address` the enclave's registered payment address (None for a
    pinned gateway, which the registry does not describe). `data_settlement_transaction_hash` is the
    transaction that recorded the request's data on chain and `data_settlement_blob_id` where the
    batch data of a `batch` request is stored, when the gateway reports them.
    """

    transaction_hash: str = ""
    finish_reason: str | None = None
    chat_output: dict[str, Any] | None = None
    completion_output: str | None = None
    payment_hash: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: str | None = None
    amount_paid: int | None = None
    tee_signature: str | None = None
    tee_request_hash: str | None = None
    tee_output_hash: str | None = None
    tee_timestamp: int | None = None
    tee_id: str | None = None
    tee_verified: bool = False
    proof: Proof | None = None
    upto_session: str | None = None
    tee_endpoint: str | None = None
    tee_payment_address: str | None = None
    data_settlement_transaction_hash: str | None = None
    data_settlement_blob_id: str | None = None
    #: Images an image-generation model returned, as `data:image/…;base64,…` URIs. Not covered by
    #: the enclave's signature: today's service signs the text of the answer only.
    images: list[str] | None = None


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed tool call; pieces with the same `index` form one call."""

    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str | None = None

    @property
    def function(self) -> dict[str, str | None]:
        """OpenAI-style access: `delta.tool_calls[i].function["arguments"]`."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class StreamDelta:
    """What one chunk adds to the message."""

    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] = field(default_factory=list)


@dataclass(frozen=True)
class StreamChoice:
    """One choice of a chunk (the SDK always asks for one)."""

    index: int = 0
    delta: StreamDelta = field(default_factory=StreamDelta)
    finish_reason: str | None = None


@dataclass(frozen=True)
class StreamChunk:
    """One streamed event. Every chunk has at least one choice, so `chunk.choices[0].delta` is
    always safe; a usage-only chunk has an empty delta and `usage` set."""

    choices: list[StreamChoice]
    id: str | None = None
    model: str | None = None
    usage: Usage | None = None
    is_final: bool = False
    #: Generated images (data: URIs) on the final chunk of an image-generation model; not signed.
    images: list[str] | None = None


@dataclass(frozen=True)
class ApprovalResult:
    """What `llm.ensure_opg_approval` found and did (amounts in OPG base units)."""

    allowance_before: int
    allowance_after: int
    transaction_hash: str | None
