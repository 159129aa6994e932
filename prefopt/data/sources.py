"""Where preference data comes from: one source in any known schema, or a mixture of several.

    records, report = load_records("data.jsonl", split="train", format="auto", columns=None, options=None)
    records, report = load_data(cfg.data, seed=cfg.train.seed)        # data.train: one source or a list (data.mix)

A source is a local ``.jsonl``/``.json``/``.parquet`` file, a ``datasets`` ``save_to_disk`` folder (a ``Dataset``,
or a ``DatasetDict`` read at ``data.split``) or a hub id. Its rows have their columns renamed by ``data.columns``,
are read by their schema's reader (``prefopt.data.schemas``, ``data.format=auto`` detects it) and are validated by
``normalize_rows``, so every error names the file, the 1-based line and the user's own field.

A mixture (``data.train=[a, b]``) takes every list of each source, or with ``data.mix``:

* counts (all integers): exactly that many lists of each source;
* shares (numbers in (0, 1] that sum to 1): the largest mixture with those shares that the sources can fill,
  ``N = min_i n_i / p_i``, taking ``round(p_i · N)`` lists of source i.

Which lists are taken is drawn with ``prefopt.seeds.mix_seed(train.seed, i)`` (the same seed, the same mixture),
kept in file order. The report counts each source's lists (``sources``), written to the run's summary.
"""

from __future__ import annotations

import math
import random
from typing import Any

from omegaconf import OmegaConf

from prefopt.data.records import DataReport, PreferenceDataError, normalize_rows, read_located_rows
from prefopt.data.schemas import to_canonical
from prefopt.seeds import mix_seed


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def load_records(spec: str, *, split: str = "train", format: str = "auto", columns: dict[str, str] | None = None,
                 options: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], DataReport]:
    """Read, convert and validate one preference dataset; errors name the file's line and the user's field."""
    rows, where = read_located_rows(spec, split=split)
    rows, where, dropped, name = to_canonical(rows, where, source=spec, format=format, columns=_plain(columns),
                                              options=_plain(options))
    report = DataReport(dropped=dict(dropped), format=name)
    records, report = normalize_rows(rows, source=spec, where=where, report=report)
    report.rows += sum(dropped.values())  # rows a reader filtered out (SHP's ratio, ...) were rows of the file
    return records, report


def sources_of(data) -> list[str]:
    """``data.train`` as a list of sources (one string, or a list)."""
    train = _plain(data.train)
    return [] if not train else [train] if isinstance(train, str) else [str(s) for s in train]


def _per_source(value: Any, n: int, name: str, default: Any) -> list:
    """A setting given once for every source, or one per source."""
    value = _plain(value)
    if value is None or value == {} or value == []:
        return [default] * n
    if isinstance(value, list):
        if len(value) != n:
            raise PreferenceDataError(f"data.{name} has {len(value)} entries for {n} sources in data.train; give "
                                      "one per source, or one for all")
        return value
    return [value] * n


def mix_sizes(mix: list, sizes: list[int], names: list[str]) -> list[int]:
    """How many lists each source gives (module docstring): counts, or shares summing to 1."""
    if len(mix) != len(sizes):
        raise PreferenceDataError(f"data.mix has {len(mix)} entries for {len(sizes)} sources in data.train")
    if any(isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m <= 0 for m in mix):
        raise PreferenceDataError(f"data.mix must be positive numbers (counts, or shares summing to 1), got {mix}")
    if all(isinstance(m, int) for m in mix) and sum(mix) > 1:
        for count, size, name in zip(mix, sizes, names, strict=True):
            if count > size:
                raise PreferenceDataError(f"data.mix asks {count} lists of {name}, which has {size} usable lists")
        return list(mix)
    if any(m > 1 for m in mix) or abs(sum(mix) - 1) > 1e-6:
        raise PreferenceDataError(f"data.mix {mix}: shares must each be at most 1 and sum to 1 (or give integer "
                                  "counts of lists)")
    total = min(size / share for size, share in zip(sizes, mix, strict=True))
    return [min(size, round(share * total)) for size, share in zip(sizes, mix, strict=True)]


def _merge(reports: list[DataReport], taken: list[int], names: list[str]) -> DataReport:
    out = DataReport(format=",".join(dict.fromkeys(r.format or "" for r in reports)))
    for r in reports:
        out.rows += r.rows
        out.dropped_ties += r.dropped_ties
        for reason, n in r.dropped.items():
            out.drop(reason, n)
    out.kept = sum(taken)
    skipped = sum(r.kept for r in reports) - out.kept
    if skipped:
        out.drop("not_in_mix", skipped)
    out.sources = dict(zip(names, taken, strict=True))
    return out


def load_data(data, *, seed: int = 0, split: str | None = None) -> tuple[list[dict[str, Any]], DataReport]:
    """The training lists of ``data.train`` (one source or a mixture), with the data report."""
    names = sources_of(data)
    if not names:
        raise PreferenceDataError("data.train is empty")
    formats = _per_source(data.format, len(names), "format", "auto")
    columns = _per_source(data.columns, len(names), "columns", None)
    options = _per_source(data.options, len(names), "options", None)
    split = split or data.split
    loaded = [load_records(name, split=split, format=f, columns=c, options=o)
              for name, f, c, o in zip(names, formats, columns, options, strict=True)]
    if len(names) == 1 and not _plain(data.mix):
        records, report = loaded[0]
        report.sources = {names[0]: len(records)}
        return records, report
    mix = _plain(data.mix) or [len(r) for r, _ in loaded]
    sizes = mix_sizes(mix, [len(r) for r, _ in loaded], names)
    records: list[dict[str, Any]] = []
    for i, ((recs, _), n) in enumerate(zip(loaded, sizes, strict=True)):
        keep = sorted(random.Random(mix_seed(seed, i)).sample(range(len(recs)), n))
        records += [{**recs[j], "meta": {**recs[j]["meta"], "source": names[i]}} for j in keep]
    return records, _merge([r for _, r in loaded], sizes, names)


def load_eval(data) -> tuple[list[dict[str, Any]], DataReport]:
    """The lists of ``data.eval`` (one source, at ``data.eval_split``), read with ``data.format``/``columns``/
    ``options`` when those are given once for all sources, else detected."""
    single = len(sources_of(data)) <= 1
    fmt, columns, options = (_plain(data.format), _plain(data.columns), _plain(data.options))
    return load_records(data.eval, split=data.eval_split,
                        format=fmt if isinstance(fmt, str) and single else "auto",
                        columns=columns if isinstance(columns, dict) and single else None,
                        options=options if isinstance(options, dict) and single else None)


def data_key(data) -> str:
    """Every setting that decides what ``load_data`` returns, as one string (a cache key)."""
    import json

    keys = ("train", "format", "columns", "options", "mix", "split")
    return json.dumps({k: _plain(data.get(k)) for k in keys}, sort_keys=True, default=str)
