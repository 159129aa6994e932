"""Command line: ``python -m prefopt.train recipe=NAME [key=value ...]`` (also the ``prefopt`` console script).

With no ``model``/``data`` the recipe runs on the tiny embedded world and reports the reward before and after.
"""

from __future__ import annotations

import sys

from losses import LOSSES

USAGE = """usage: python -m prefopt.train recipe=NAME [key=value ...]

Train a language model with a preference loss. Every key of the recipe can be overridden with key=value
(dotted keys, OmegaConf syntax), e.g.:
  python -m prefopt.train recipe=lipo
  python -m prefopt.train recipe=dpo model=Qwen/Qwen2.5-0.5B-Instruct data.train=trl-lib/ultrafeedback_binarized \\
      train.max_steps=1000 loss.beta=0.1 output_dir=runs/qwen-dpo
"""


def help_text() -> str:
    from prefopt.config import list_recipes, valid_keys

    losses = "\n".join(f"  {name:6s} {spec.paper}  hyper-parameters: "
                       + ", ".join(f"{k}={v}" for k, v in spec.defaults.items()) for name, spec in LOSSES.items())
    return (f"{USAGE}\nrecipes:\n  " + "\n  ".join(list_recipes()) + f"\n\nlosses (loss.name=...):\n{losses}\n\n"
            "keys:\n  " + "\n  ".join(valid_keys()) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(help_text())
        return 0
    bad = [a for a in argv if "=" not in a]
    if bad:
        print(f"error: arguments must be key=value, got {bad}\n\n{USAGE}", file=sys.stderr)
        return 2
    from prefopt.config import load_config
    from prefopt.run import run

    try:
        cfg = load_config(argv)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    if cfg.smoke:
        from prefopt.smoke import apply_smoke

        cfg = apply_smoke(cfg)
    from prefopt.validate import RunConfigError

    try:
        run(cfg)
    except RunConfigError as err:  # found before anything was written: one line per mistake
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
