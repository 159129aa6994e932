"""Command line: ``prefopt recipe=NAME [key=value ...]``, the same as ``python -m prefopt.train ...``.

With no ``model``/``data`` the recipe runs on the tiny embedded world and reports the reward before and after.
``prefopt --help`` lists every key with its default and description (see prefopt/cli_help.py).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

HELP_FLAGS = ("-h", "--help", "help")
# ``prefopt NAME key=value ...``: a subcommand's ``main(argv) -> exit status``, imported only when named
SUBCOMMANDS = {"eval": "prefopt.evaluate_cli:main", "models": "prefopt.models:main"}
# Libraries whose deprecation notices are about their own internals (a Trainer calling a renamed property), which a
# user of prefopt can do nothing about. Warnings raised from prefopt's or the user's code, and every other category
# (UserWarning, RuntimeWarning ...), still show.
THIRD_PARTY = r"(transformers|trl|peft|accelerate|datasets|huggingface_hub|torch|wandb|tensorboard|matplotlib)(\.|$)"


def quiet_third_party_deprecations() -> None:
    """Hide deprecation warnings attributed to a third-party module, unless the user set ``-W``/``PYTHONWARNINGS``."""
    if sys.warnoptions:
        return
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)


def _help(argv: list[str]) -> int:
    from prefopt.cli_help import block_help, full_help
    from prefopt.config import resolve_config

    overrides = [a for a in argv if "=" in a]
    names = [a for a in argv if "=" not in a and a not in HELP_FLAGS]
    cfg = resolve_config(overrides) if overrides else None
    print("\n\n".join(block_help(n, cfg) for n in names) + "\n" if names else full_help(cfg), end="")
    return 0


def _main(argv: list[str]) -> int:
    from prefopt.cli_help import short_usage

    if not argv:
        print(short_usage(), end="")
        return 0
    if argv[0] in SUBCOMMANDS:
        import importlib

        module, name = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), name)(argv[1:])
    try:
        if any(a in HELP_FLAGS for a in argv):
            return _help(argv)
        bad = [a for a in argv if "=" not in a]
        if bad:
            raise ValueError(f"arguments must be key=value, got {bad} (prefopt --help lists the keys)")
        from prefopt.config import load_config

        cfg = load_config(argv)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    if cfg.smoke:
        from prefopt.smoke import apply_smoke

        cfg = apply_smoke(cfg)
    from prefopt.hub import HubPushError
    from prefopt.run import run
    from prefopt.validate import RunConfigError, output_dir

    try:
        run(cfg, argv)
    except RunConfigError as err:  # found before anything was written: one line per mistake
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except HubPushError as err:  # the run itself finished and is on disk
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # after the start: one line, the traceback only on request
        sys.stdout.flush()
        if cfg.debug:
            traceback.print_exc()
        print(failure_line(err, output_dir(cfg)), file=sys.stderr)
        return 1
    return 0


def failure_line(err: BaseException, root: str) -> str:
    """The one ``error:`` line of a run that failed after the start: the stage, what went wrong (the message names
    the item: the prompt's global index and text, the file and line) and whether ``resume=true`` continues."""
    from prefopt.run_folder import RunFolder
    from prefopt.stages import failed_in

    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or "(no message)"
    if not type(err).__module__.startswith("prefopt"):  # a library's or the user's exception: say which
        text = f"{type(err).__name__}: {text}"
    return f"error: {failed_in(err) or 'the run'} failed: {text}; {RunFolder(root).resume_hint()}"


def main(argv: list[str] | None = None) -> int:
    """The ``prefopt`` console script and ``python -m prefopt.train``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    # `python -m` puts the working directory on sys.path and a console script does not: add it, so that
    # `reward=mymodule:fn` imports from the working directory either way.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    quiet_third_party_deprecations()
    if argv and argv[0] in SUBCOMMANDS:
        module, func = SUBCOMMANDS[argv[0]].split(":")
        return getattr(importlib.import_module(module), func)(argv[1:])
    finished = False
    try:
        with sigterm_interrupts():
            status = _main(argv)
        sys.stdout.flush()
        finished = True
        return status
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (Terminated)
        signal_name = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        print(f"\n[prefopt] {signal_name}: finished rounds and saved checkpoints are kept; run the same command "
              "with resume=true to continue", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(err, Terminated) else 130  # the shell's statuses
    except BrokenPipeError:
        # `prefopt --help | head`: the reader left; stop quietly (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        close_process_group(wait=finished)  # after a failure on one rank, a barrier could wait forever


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill, ``kill PID``), raised like Ctrl-C: every ``finally`` runs (the run lock is
    released) and the run stays resumable."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``Terminated`` in the main thread (Python's default is to die at
    once, with no cleanup and no message); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def close_process_group(wait: bool = True) -> None:
    """Under `accelerate launch`, leave the process group before the interpreter exits: a gloo group still alive
    at exit can abort a process ("terminate called without an active exception", SIGABRT) after a good run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
