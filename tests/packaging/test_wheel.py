"""The wheel as a user gets it: built from the sources, installed without extras in a fresh venv.

No network: the base dependencies come from `.venv/wheelhouse`, which `make test` fills.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.test_extras import PROBE, check_missing_extras

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
SOURCES = ("opengradient", "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in")
KEY = "0x" + "11" * 32
USER_CODE = '''\
import opengradient as og

client: og.Client = og.init(private_key="0x" + "11" * 32)
result: og.InferenceResult = client.alpha.infer("cid", og.InferenceMode.VANILLA, {"X": [[1.0]]})
wrong: int = client.address
'''


def _run(*command: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, the python of a fresh venv that has it installed without extras)."""
    if not (WHEELHOUSE / ".ready").exists():
        pytest.skip("no wheelhouse: `make test` downloads the base dependencies to .venv/wheelhouse first")
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    offline = ("--no-index", "--find-links", WHEELHOUSE)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", tmp / "dist", source)
    (wheel,) = (tmp / "dist").glob("opengradient-*.whl")
    _run(sys.executable, "-m", "venv", tmp / "venv")
    python = tmp / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", *offline, wheel)
    yield wheel, python


def test_the_wheel_carries_py_typed_license_and_metadata(installed: tuple[Path, Path]) -> None:
    wheel, python = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    assert "opengradient/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in text and "Classifier: Typing :: Typed" in text and "Project-URL: " in text
    import opengradient

    assert f"Version: {opengradient.__version__}\n" in text
    site = _run(python, "-c", "import opengradient, pathlib; print(pathlib.Path(opengradient.__file__).parent)")
    assert (Path(site.stdout.strip()) / "py.typed").exists()
    version = _run(python.parent / "opengradient", "--version")
    assert version.stdout == f"opengradient {opengradient.__version__}\n"


def test_mypy_sees_the_installed_types(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, python = installed
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    checked = subprocess.run([sys.executable, "-m", "mypy", "--python-executable", str(python), "--no-incremental",
                              "--cache-dir", str(tmp_path / "cache"), "--strict", user.name],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert "py.typed" not in checked.stdout and "missing library stubs" not in checked.stdout, checked.stdout
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert errors == ['user.py:5: error: Incompatible types in assignment (expression has type "str | None", '
                      'variable has type "int")  [assignment]'], checked.stdout


def test_every_missing_extra_names_its_pip_command(installed: tuple[Path, Path]) -> None:
    _, python = installed
    check_missing_extras(json.loads(_run(python, PROBE).stdout))


def test_init_reads_og_private_key(installed: tuple[Path, Path], tmp_path: Path) -> None:
    _, python = installed
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "OG_PRIVATE_KEY": KEY,
           "OG_CONFIG_FILE": str(tmp_path / "none.json")}
    done = _run(python, "-c", "import opengradient as og; print(og.init().address)", env=env)
    from opengradient import Client

    assert done.stdout.strip() == Client(KEY).address


def test_the_sdist_holds_the_package_and_no_tests(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in (*SOURCES, "tests"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    _run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", tmp_path / "dist", source)
    (sdist,) = (tmp_path / "dist").glob("opengradient-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "opengradient/py.typed", "opengradient/cli.py"} <= names
    assert not [name for name in names if name.startswith("tests")], "the test suite stays in the repository"
