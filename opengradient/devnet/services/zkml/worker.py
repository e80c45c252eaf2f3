"""The proving process: every ezkl call the devnet makes runs here, never in the node's process.

ezkl's setup and `prove` hold the GIL for their whole run (seconds for larger circuits), so the
devnet starts this module as a child process (`python -m opengradient.devnet.services.zkml.worker`) and
talks to it over its standard input and output: one JSON request per line in, one JSON reply per
line out. Anything ezkl prints (calibration reports, Rust diagnostics) goes to standard error,
which the parent sends to a log file, so it can never corrupt the replies.

Requests are ``{"id": n, "op": "setup" | "witness" | "prove" | "ping", "args": {...}}``; replies
are ``{"id": n, "ok": true, "result": {...}}`` or ``{"id": n, "ok": false, "kind": ..., "error":
...}`` where ``kind`` is ``"too_large"`` or ``"unsupported"`` (the model cannot be proven: a
permanent refusal), ``"input"`` (this input cannot be proven) or ``"internal"``.

This module imports nothing from the devnet (only the standard library, ezkl and onnx), so the
child starts in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

#: Settings every devnet circuit uses: small decomposition parameters keep circuits (and proving
#: times) small; parameters are baked into the circuit ("fixed"), inputs and outputs are public.
DECOMP_BASE = 128
DECOMP_LEGS = 4

# File names inside a circuit directory.
MODEL_FILE = "model.onnx"
SETTINGS_FILE = "settings.json"
CALIBRATION_FILE = "calibration.json"
COMPILED_FILE = "model.compiled"
PK_FILE = "pk.key"
VK_FILE = "vk.key"
VKA_FILE = "vka.bin"


class WorkerError(Exception):
    """A request failed; `kind` says whether the model, the input or the worker is at fault."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def ezkl_module() -> Any:
    """The ezkl module, untyped: its stubs mark arguments required that have defaults."""
    import importlib

    return importlib.import_module("ezkl")


def _ezkl_message(exc: BaseException) -> str:
    """ezkl's error text without its "Failed to run …:" prefixes, on one line."""
    text = " ".join(str(exc).split())
    return text[:400]


_DIAGNOSTIC = re.compile(r"(?i)unknown op|unsupported|not supported|too large|decomposition error|"
                         r"out of range|failed")


@contextmanager
def _captured(lines: list[str]) -> Iterator[None]:
    """Collect what ezkl prints during a request (and still pass it on to the log)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        os.dup2(tmp.fileno(), 1)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read()
            os.write(2, text)
            lines.extend(text.decode("utf-8", "replace").splitlines())


def _diagnostics(lines: list[str]) -> str:
    """The lines of ezkl's output that say what went wrong, deduplicated, at most three."""
    found: list[str] = []
    for line in lines:
        line = " ".join(line.split())
        if line and not line.startswith(("|", "+")) and _DIAGNOSTIC.search(line) and line not in found:
            found.append(line)
    return "; ".join(found[:3])


def count_parameters(model_path: Path) -> int:
    """Numbers stored in the model: initializers and Constant nodes (weights, biases, tables)."""
    import onnx

    def size(dims: Any) -> int:
        total = 1
        for d in dims:
            total *= int(d)
        return total

    model = onnx.load(str(model_path), load_external_data=False)
    count = sum(size(t.dims) for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                count += size(attr.t.dims) if attr.name == "value" else len(attr.floats) + len(attr.ints)
    return count


def run_args(max_logrows: int) -> Any:
    ezkl = ezkl_module()

    args = ezkl.PyRunArgs()
    args.decomp_base = DECOMP_BASE
    args.decomp_legs = DECOMP_LEGS
    args.input_visibility = "public"
    args.output_visibility = "public"
    args.param_visibility = "fixed"
    args.logrows = max_logrows
    return args


def _instance_sizes(settings: dict[str, Any], n_inputs: int) -> list[int]:
    sizes = []
    for shape in settings["model_instance_shapes"][:n_inputs]:
        size = 1
        for d in shape:
            size *= int(d)
        sizes.append(size)
    return sizes


def _check_sample(sample: list[list[float]], sizes: list[int]) -> None:
    if len(sample) != len(sizes):
        raise WorkerError("input", f"the circuit has {len(sizes)} inputs, got {len(sample)}")
    for i, (values, size) in enumerate(zip(sample, sizes, strict=True)):
        if len(values) != size:
            raise WorkerError("input", f"input {i} has {len(values)} values; the circuit was built "
                                       f"for {size}")


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _srs(srs_dir: Path, logrows: int) -> Path:
    """The testing SRS for `logrows`, generated once per devnet data directory.

    Never `ezkl.get_srs` here: it tries to download and deletes a local SRS it does not know.
    """
    ezkl = ezkl_module()

    path = srs_dir / f"kzg{logrows}.srs"
    if not path.exists():
        srs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=srs_dir, prefix=f".kzg{logrows}-")
        os.close(fd)
        try:
            ezkl.gen_srs(tmp, logrows)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def _check_rows(settings: dict[str, Any], max_rows: int) -> None:
    """The circuit's area (rows of its layout, before folding into columns) bounds proving time."""
    rows = int(settings.get("num_rows") or 0)
    if rows > max_rows:
        raise WorkerError("too_large", f"its circuit has {rows:,} rows; the devnet proves circuits of at most "
                                       f"{max_rows:,}")


def setup(args: dict[str, Any]) -> dict[str, Any]:
    """Settings, calibration, compiled circuit, SRS, keys and EVM key artifact for one model."""
    ezkl = ezkl_module()

    directory = Path(args["circuit_dir"])
    model = directory / MODEL_FILE
    max_logrows = int(args["max_logrows"])
    max_parameters = int(args["max_parameters"])
    max_rows = int(args["max_rows"])
    samples: list[list[list[float]]] = args["calibration"]
    started = time.perf_counter()

    try:
        parameters = count_parameters(model)
    except Exception as exc:
        raise WorkerError("unsupported", f"the model could not be read: {_ezkl_message(exc)}") from exc
    if parameters > max_parameters:
        raise WorkerError("too_large", f"it has {parameters:,} parameters; the devnet proves models with "
                                       f"at most {max_parameters:,}")

    settings_path = directory / SETTINGS_FILE
    try:
        ezkl.gen_settings(str(model), str(settings_path), run_args(max_logrows))
    except Exception as exc:
        raise WorkerError("unsupported", f"ezkl cannot build a circuit for it: {_ezkl_message(exc)}") from exc
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    _check_rows(settings, max_rows)
    n_inputs = len(samples[0])
    sizes = _instance_sizes(settings, n_inputs)
    for sample in samples:
        _check_sample(sample, sizes)
    columns = [[v for sample in samples for v in sample[i]] for i in range(n_inputs)]
    calibration = directory / CALIBRATION_FILE
    _write_json(calibration, {"input_data": columns})
    try:
        ezkl.calibrate_settings(str(calibration), str(model), str(settings_path), "resources",
                                max_logrows=max_logrows)
    except Exception as exc:
        raise WorkerError("too_large", f"ezkl found no circuit of at most 2^{max_logrows} rows that "
                                       f"represents it on its inputs ({_ezkl_message(exc)})") from exc
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    _check_rows(settings, max_rows)
    logrows = int(settings["run_args"]["logrows"])
    if logrows > max_logrows:
        raise WorkerError("too_large", f"its circuit needs 2^{logrows} rows (logrows {logrows}); the devnet "
                                       f"proves circuits of at most 2^{max_logrows} rows")
    compiled = directory / COMPILED_FILE
    try:
        ezkl.compile_circuit(str(model), str(compiled), str(settings_path))
        srs = _srs(Path(args["srs_dir"]), logrows)
        ezkl.setup(str(compiled), str(directory / VK_FILE), str(directory / PK_FILE), str(srs))
    except Exception as exc:
        raise WorkerError("unsupported", f"ezkl could not set up its circuit: {_ezkl_message(exc)}") from exc

    async def vka() -> None:
        await ezkl.create_evm_vka(str(directory / VK_FILE), str(settings_path), str(directory / VKA_FILE),
                                  str(srs))

    asyncio.run(vka())
    return {"logrows": logrows, "rows": int(settings.get("num_rows") or 0), "parameters": parameters,
            "srs": srs.name,
            "seconds": round(time.perf_counter() - started, 3)}


def _witness(directory: Path, values: list[list[float]], out: Path) -> dict[str, Any]:
    ezkl = ezkl_module()

    settings = json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
    _check_sample(values, _instance_sizes(settings, len(values)))
    data = out.with_name("input.json")
    _write_json(data, {"input_data": values})
    try:
        witness = ezkl.gen_witness(str(data), str(directory / COMPILED_FILE), str(out))
    except Exception as exc:
        raise WorkerError("input", "the input (or a value computed from it) is outside the range the "
                                   f"model's circuit represents ({_ezkl_message(exc)})") from exc
    return {"outputs": witness["outputs"]}


def witness(args: dict[str, Any]) -> dict[str, Any]:
    """The circuit's outputs for one input, without a proof (for simulations)."""
    with tempfile.TemporaryDirectory(prefix="og-zkml-") as tmp:
        return _witness(Path(args["circuit_dir"]), args["input"], Path(tmp) / "witness.json")


def prove(args: dict[str, Any]) -> dict[str, Any]:
    """Witness and proof for one input; the proof JSON is written to `proof_path`."""
    ezkl = ezkl_module()

    directory = Path(args["circuit_dir"])
    proof_path = Path(args["proof_path"])
    with tempfile.TemporaryDirectory(prefix="og-zkml-") as tmp:
        wit = Path(tmp) / "witness.json"
        result = _witness(directory, args["input"], wit)
        started = time.perf_counter()
        try:
            ezkl.prove(str(wit), str(directory / COMPILED_FILE), str(directory / PK_FILE), str(proof_path),
                       str(args["srs_path"]))
        except Exception as exc:
            raise WorkerError("input", f"proving failed: {_ezkl_message(exc)}") from exc
        result["prove_seconds"] = round(time.perf_counter() - started, 4)
    return result


_OPS = {"setup": setup, "witness": witness, "prove": prove,
        "ping": lambda args: {"pid": os.getpid()}}


def _reply(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def serve(requests: TextIO, replies: TextIO) -> None:
    """Answer requests until standard input closes."""
    for line in requests:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            op = _OPS.get(request.get("op"))
            if op is None:
                raise WorkerError("internal", f"unknown op {request.get('op')!r}")
            printed: list[str] = []
            try:
                with _captured(printed):
                    result = op(request.get("args") or {})
            except WorkerError as exc:
                said = _diagnostics(printed)
                exc.message += f" [ezkl: {said}]" if said and said not in exc.message else ""
                raise
            _reply(replies, {"id": request_id, "ok": True, "result": result})
        except WorkerError as exc:
            _reply(replies, {"id": request_id, "ok": False, "kind": exc.kind, "error": exc.message})
        except Exception as exc:  # a bug or an ezkl failure nobody anticipated: report, keep serving
            _reply(replies, {"id": request_id, "ok": False, "kind": "internal",
                             "error": f"{type(exc).__name__}: {_ezkl_message(exc)}"})


def main() -> None:
    """Entry point of the child process: replies on a private copy of stdout, prints to stderr."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever ezkl prints goes to the log
    sys.stdout = sys.stderr
    serve(sys.stdin, replies)
    replies.flush()
    sys.stderr.flush()
    # ezkl's async calls leave a runtime behind that can crash the interpreter's teardown: skip it.
    os._exit(0)


if __name__ == "__main__":
    main()
