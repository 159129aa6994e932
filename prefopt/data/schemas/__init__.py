"""Hub preference datasets as they are: a registry of schemas, each read into prefopt's canonical rows.

    rows, where, dropped = to_canonical(rows, where, source="data.jsonl", format="auto", options={})

A *format* names a dataset schema (``FORMATS``): the columns that identify it, the options it takes, and a reader
that turns its rows into canonical rows, either TRL pairs (``prompt``/``chosen``/``rejected``) or preference lists
(``prompt``/``responses``/``scores``), which ``prefopt.data.records.normalize_rows`` then validates like any user's
file. A reader keeps the user's own field names for error messages in each row's ``_fields`` (canonical name →
the dataset's name, e.g. ``responses[0]`` → ``answers[2].answer``), so every error names the file, the 1-based
line and the field as the user knows it.

``format="auto"`` (``data.format``) detects the schema from the columns, most specific first; an unknown schema is
one error listing the columns found and the formats known. The readers live in ``pairs.py`` (pairwise schemas) and
``ranked.py`` (ranked lists: UltraFeedback raw, Nectar, HelpSteer2); docs/data.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefopt.data.records import MAX_REPORTED, PreferenceDataError

Reader = Callable[[list[dict], list[str], str, dict[str, Any]], tuple[list[dict], list[str], dict[str, int]]]


@dataclass(frozen=True)
class Format:
    """One dataset schema.

    ``columns`` must all be present for detection; ``absent`` must not be (hh-rlhf vs TRL's implicit prompt);
    ``probe`` looks at the first row when columns alone cannot tell. ``options`` are the reader's keyword options
    (``data.options``) with their defaults; ``example`` names the hub dataset(s) of that schema (docs/data.md's table).
    """

    name: str
    columns: tuple[str, ...]
    read: Reader
    example: str
    absent: tuple[str, ...] = ()
    probe: Callable[[dict], bool] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, tuple] = field(default_factory=dict)


class RowErrors:
    """Collects one message per bad row (as ``normalize_rows`` does) and raises them together."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, message: str) -> None:
        self.errors.append(message)

    def raise_any(self) -> None:
        if self.errors:
            more = f"\n({len(self.errors) - MAX_REPORTED} more bad rows)" if len(self.errors) > MAX_REPORTED else ""
            raise PreferenceDataError("\n".join(self.errors[:MAX_REPORTED]) + more)


def row_reader(fn: Callable[[dict, str, str, dict], dict | str | None]) -> Reader:
    """A reader from a per-row function: ``fn(row, at, source, options)`` returns a canonical row, or a string (the
    reason the row is filtered out, counted in the data report), and raises ``PreferenceDataError`` on a bad row."""

    def read(rows, where, source, options):
        out, at_out, dropped, errors = [], [], {}, RowErrors()
        for row, at in zip(rows, where, strict=True):
            try:
                if not isinstance(row, dict):
                    raise PreferenceDataError(f"{source} {at}: expected an object, got {type(row).__name__}")
                got = fn(row, at, source, options)
            except PreferenceDataError as err:
                errors.add(str(err))
                continue
            if isinstance(got, str):
                dropped[got] = dropped.get(got, 0) + 1
            else:
                out.append(got)
                at_out.append(at)
        errors.raise_any()
        return out, at_out, dropped

    read.__doc__ = fn.__doc__
    return read


def field_of(row: dict, name: str, at: str, source: str, fmt: str) -> Any:
    """``row[name]``, or an error naming the line and the missing field."""
    if name not in row or row[name] is None:
        raise PreferenceDataError(f"{source} {at}: field '{name}' is missing (format {fmt})")
    return row[name]


def _passthrough(rows, where, source, options):
    return list(rows), list(where), {}


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def _load_readers() -> None:
    from prefopt.data.schemas import pairs, ranked  # noqa: F401  (each module registers its formats)


def columns_of(rows: list) -> list[str]:
    """Every column found in the rows (the union, so one row missing a field is that row's error, not the file's)."""
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
    return list(seen)


def known() -> str:
    _load_readers()
    return "; ".join(f"{f.name} ({', '.join(f.columns)})" for f in FORMATS.values())


def detect(rows: list, source: str) -> Format:
    """The format whose columns the rows have, most specific first (the registry's order)."""
    _load_readers()
    cols = set(columns_of(rows))
    first = next((r for r in rows if isinstance(r, dict)), {})
    generic = ("trl", "list")  # any pair or list: tried after every named schema
    for fmt in sorted(FORMATS.values(), key=lambda f: f.name in generic):
        if set(fmt.columns) <= cols and not cols & set(fmt.absent) and (fmt.probe is None or fmt.probe(first)):
            return fmt
    found = ", ".join(sorted(cols)) or "none"
    raise PreferenceDataError(f"{source}: unknown data schema; columns found: {found}. Formats known: {known()}. "
                              "Name one with data.format, or rename columns with data.columns={prompt: ..., "
                              "chosen: ..., rejected: ...}")


def get_format(name: str) -> Format:
    _load_readers()
    if name not in FORMATS:
        raise PreferenceDataError(f"data.format {name!r} is not known; formats known: auto, {', '.join(FORMATS)}")
    return FORMATS[name]


def format_options(fmt: Format, options: dict[str, Any] | None) -> dict[str, Any]:
    """The reader's options: its defaults overridden by ``data.options``; unknown ones or bad choices are errors."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(fmt.options))
    if unknown:
        valid = ", ".join(fmt.options) or "none"
        raise PreferenceDataError(f"data.options: {', '.join(unknown)} not an option of format {fmt.name} "
                                  f"(its options: {valid})")
    merged = {**fmt.options, **options}
    for name, allowed in fmt.choices.items():
        if merged[name] not in allowed:
            raise PreferenceDataError(f"data.options.{name} must be one of {', '.join(map(str, allowed))} for format "
                                      f"{fmt.name}, got {merged[name]!r}")
    return merged


def rename_columns(rows: list, where: list[str], columns: dict[str, str] | None,
                   source: str) -> tuple[list, dict[str, str]]:
    """Rows with the user's columns renamed (``data.columns={canonical: user's}``), and the map back for errors."""
    if not columns:
        return rows, {}
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise PreferenceDataError(f"data.columns must map canonical names to your column names, e.g. {{prompt: "
                                  f"question, chosen: good}}; got {columns!r}")
    back = {user: canonical for canonical, user in columns.items()}
    if len(back) != len(columns):
        raise PreferenceDataError(f"data.columns maps two names to one column: {dict(columns)}")
    cols = set(columns_of(rows))
    missing = sorted(user for user in back if user not in cols)
    if missing:
        raise PreferenceDataError(f"{source}: data.columns names column(s) {', '.join(missing)}, not in the data; "
                                  f"columns found: {', '.join(sorted(cols)) or 'none'}")
    renamed = [{back.get(k, k): v for k, v in row.items()} if isinstance(row, dict) else row for row in rows]
    return renamed, dict(columns)


def _user_name(name: str, columns: dict[str, str]) -> str:
    """A canonical field name (``chosen``, ``answers[2].answer``) in the user's words under their column map."""
    root = name.split("[", 1)[0].split(".", 1)[0]
    return columns[root] + name[len(root):] if root in columns else name


def to_canonical(rows: list, where: list[str], *, source: str, format: str = "auto",
                 columns: dict[str, str] | None = None,
                 options: dict[str, Any] | None = None) -> tuple[list, list[str], dict[str, int], str]:
    """Rows of any known schema → canonical rows (pairs or lists), their locations, the rows filtered out by
    reason, and the format's name. Errors name the source, the line and the user's own field."""
    rows, columns = rename_columns(rows, where, columns, source)
    fmt = detect(rows, source) if format == "auto" else get_format(format)
    out, at, dropped = fmt.read(rows, where, source, format_options(fmt, options))
    if columns:
        for row in out:
            if isinstance(row, dict):
                fields = {**{k: k for k in ("prompt", "chosen", "rejected", "responses", "scores")},
                          **row.get("_fields", {})}
                row["_fields"] = {k: _user_name(v, columns) for k, v in fields.items()}
    return out, at, dropped, fmt.name


TRL = register(Format("trl", ("chosen", "rejected"), _passthrough,
                      "trl-lib/ultrafeedback_binarized, trl-lib/tldr-preference"))
LIST = register(Format("list", ("prompt", "responses", "scores"), _passthrough, "prefopt's own"))
