"""Score a preference dataset by CHES and write it back filtered.

    python -m prefopt.ches model=MODEL data=DATA output=DIR [keep_fraction=0.05 | drop_fraction=F | threshold=T]
                           [length_normalize=true] [batch_size=16] [split=train] [dtype=auto] [device=auto]
                           [overwrite=false]

    model      HF hub id or local path (AutoModelForCausalLM / AutoTokenizer); omitted: the tiny world's base policy
    data       local .jsonl/.json/.parquet or hub dataset id, TRL pairs or preference lists; omitted: the tiny-world
               demo pairs (some near-identical, some distinct; see prefopt.ches.demo)
    output     folder for scored.jsonl (every record, meta.ches set), filtered.jsonl (the kept records, readable by
               prefopt.data.sources.load_records), ches_report.json, ches_hist.png and config.yaml;
               a non-empty folder is refused unless overwrite=true. A cut that keeps no pair still writes every
               file (filtered.jsonl empty), warns, and exits 0; a missing file is a one-line error (exit 2)
    keep_fraction | drop_fraction | threshold
               the cut, at most one (none given: keep_fraction=0.05, the paper's 5%)
    length_normalize  LN-CHES (default, as the paper filters) or plain CHES
    dtype      auto (the checkpoint's) | float32 | bfloat16 | float16; scores accumulate in float32 regardless
    device     auto (cuda when available) | cpu | cuda | cuda:1 ...

Razin et al., 2024, "Unintentional Unalignment", arXiv 2410.08847. See docs/ches.md.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from prefopt.ches.filter import check_rule, score_and_select, write_outputs
from prefopt.data.records import PreferenceDataError

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class ChesCLIConfig:
    model: str | None = None
    data: str | None = None
    output: str = "outputs/ches"
    keep_fraction: float | None = None
    drop_fraction: float | None = None
    threshold: float | None = None
    length_normalize: bool = True
    batch_size: int = 16
    split: str = "train"
    dtype: str = "auto"
    device: str = "auto"
    overwrite: bool = False


class UsageError(ValueError):
    """A bad command line; printed with a pointer to --help, exit status 2."""


def parse_args(argv: list[str]) -> ChesCLIConfig:
    """``key=value`` arguments merged onto the defaults; unknown keys and bad values raise UsageError."""
    valid = [f.name for f in fields(ChesCLIConfig)]
    loose = [a for a in argv if "=" not in a]
    if loose:
        raise UsageError(f"arguments must be key=value, got: {' '.join(loose)}; valid keys: {', '.join(valid)}")
    try:
        cli = OmegaConf.from_cli(argv)
    except OmegaConfBaseException as err:
        raise UsageError(f"cannot parse the command line: {err}") from None
    unknown = sorted(set(cli.keys()) - set(valid))
    if unknown:
        raise UsageError(f"unknown key(s): {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(ChesCLIConfig), cli)
    except OmegaConfBaseException as err:
        raise UsageError(f"bad value: {str(err).splitlines()[0]}") from None
    cfg = ChesCLIConfig(**OmegaConf.to_container(cfg))
    if cfg.keep_fraction is None and cfg.drop_fraction is None and cfg.threshold is None:
        cfg.keep_fraction = 0.05  # the paper keeps the 5% lowest LN-CHES pairs (Section 6)
    if cfg.dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {cfg.dtype!r}")
    if cfg.batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {cfg.batch_size}")
    try:
        check_rule(cfg.keep_fraction, cfg.drop_fraction, cfg.threshold)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return cfg


def check_output(cfg: ChesCLIConfig) -> Path:
    """The output folder, refused when it holds anything and overwrite is off (checked before any model time)."""
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output={cfg.output} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise UsageError(f"output folder {cfg.output} is not empty; choose another or pass overwrite=true")
    return out


def load_model(cfg: ChesCLIConfig):
    """(model, tokenizer): a hub id or local path, or the tiny world's base policy when ``model`` is omitted."""
    import torch

    if cfg.model is None:
        from prefopt.world import load_base_policy

        model, tokenizer = load_base_policy()
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(cfg.model).expanduser()
        if not path.exists() and (path.is_absolute() or cfg.model.startswith((".", "~")) or cfg.model.count("/") > 1):
            raise FileNotFoundError(f"model folder not found: {cfg.model}")  # a path, not a hub id (org/name)
        dtype = cfg.dtype if cfg.dtype == "auto" else getattr(torch, cfg.dtype)
        tokenizer = AutoTokenizer.from_pretrained(cfg.model)
        model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype)
    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tokenizer


def load_data(cfg: ChesCLIConfig) -> list[dict]:
    if cfg.data is None:
        from prefopt.ches.demo import demo_records

        return demo_records()
    from prefopt.data.sources import load_records

    records, report = load_records(cfg.data, split=cfg.split)
    if report.dropped_ties:
        print(f"ches: {report.dropped_ties} of {report.rows} rows have all scores tied (no pair) and are skipped",
              file=sys.stderr)
    return records


def run(cfg: ChesCLIConfig) -> dict:
    """Score, cut and write; returns the report (with the written paths under ``files``)."""
    out = check_output(cfg)
    records = load_data(cfg)  # data errors surface before the model is loaded
    model, tokenizer = load_model(cfg)
    scored, keep, scores, report = score_and_select(
        records, model, tokenizer, keep_fraction=cfg.keep_fraction, drop_fraction=cfg.drop_fraction,
        threshold=cfg.threshold, length_normalize=cfg.length_normalize, batch_size=cfg.batch_size)
    report["model"] = cfg.model or "prefopt.world base policy"
    report["data"] = cfg.data or "prefopt.ches.demo pairs"
    report["files"] = write_outputs(out, scored, keep, scores, report, scored_name="scored.jsonl",
                                    filtered_name="filtered.jsonl")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(asdict(cfg))))
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in argv):
        print(__doc__)
        return 0
    try:
        cfg = parse_args(argv)
        report = run(cfg)
    except UsageError as err:
        print(f"error: {err}\n(python -m prefopt.ches --help for usage)", file=sys.stderr)
        return 2
    except (OSError, PreferenceDataError) as err:  # a missing data file or model folder, a malformed row
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    q = report["quantiles"]
    print(f"{report['score']}: kept {report['kept']} of {report['n']} pairs ({report['rule']}, cut {report['cut']}); "
          f"median {q.get('p50')}, p95 {q.get('p95')}")
    if not report["kept"]:  # every file is still written, so the scores can be read to choose another cut
        print("warning: the cut keeps no pair; filtered.jsonl is empty", file=sys.stderr)
    for what, path in report["files"].items():
        print(f"  {what:<9} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
