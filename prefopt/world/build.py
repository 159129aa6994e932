"""Build the tiny world's base policy and ship it in the package: ``python -m prefopt.world.build``.

Writes ``prefopt/world/assets/tiny-world-v1`` (config, safetensors weights, tokenizer, chat template and a
``world.json`` manifest with the fingerprint), which ``load_base_policy`` then loads instantly instead of
building into the user's cache. Run it after changing anything the fingerprint covers (the tests fail until then)
and commit the folder. The build is deterministic: the same code and torch version give the same weights.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from prefopt.world.model import ASSETS_DIR, MANIFEST, WorldConfig, build_base_policy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS_DIR, help=f"output folder (default {ASSETS_DIR})")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.out.parent, prefix=".building-") as tmp:
        build_base_policy(Path(tmp) / "world", WorldConfig(), log_every=100)
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.move(str(Path(tmp) / "world"), args.out)
    manifest = json.loads((args.out / MANIFEST).read_text())
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1024
    print(f"wrote {args.out} ({size:.0f} KiB): fingerprint {manifest['fingerprint']}, "
          f"warm-up {manifest['build_seconds']}s, final loss {manifest['final_loss']}")


if __name__ == "__main__":
    main()
