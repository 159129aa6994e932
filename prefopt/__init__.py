"""prefopt: preference optimisation (DPO, DNO, LiPO-λ, D²O, OSP, CREAM, RRPO) behind one trainer core."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# prefopt's loss library is the top-level package `losses`, installed beside this one. A `losses.py` (or `losses/`)
# of the user's in the working directory comes first on sys.path under `python -m` and would shadow it, so the
# library is imported here from its own folder, by path, before anything asks for it by name.
LOSSES_INIT = Path(__file__).resolve().parent.parent / "losses" / "__init__.py"


class ShadowedLossesError(ImportError):
    """Another module named `losses` was imported before prefopt."""


def _own_losses() -> None:
    loaded = sys.modules.get("losses")
    if loaded is not None:
        where = getattr(loaded, "__file__", None)
        if where is None or Path(where).resolve() != LOSSES_INIT:
            raise ShadowedLossesError(
                f"{where or loaded!r} was imported as `losses` before prefopt, which needs its own loss library of "
                f"that name ({LOSSES_INIT.parent}); rename your module (e.g. my_losses.py)")
        return
    spec = importlib.util.spec_from_file_location("losses", LOSSES_INIT,
                                                  submodule_search_locations=[str(LOSSES_INIT.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["losses"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["losses"]
        raise


_own_losses()
