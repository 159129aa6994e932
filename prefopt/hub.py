"""Push a finished run to the Hugging Face hub (``hub.push=true hub.model_id=user/name [hub.private=true]``).

    hub_problems(cfg)          pre-flight: the repository id and a token, checked before anything is written
    push_run(cfg, folder)      after the run is complete on disk: ``model/`` to the repository's root, ``adapter/``
                               (LoRA runs) to its ``adapter/`` folder, one commit each

Everything goes through ``huggingface_hub.HfApi`` (``create_repo``, ``upload_folder``); nothing here talks HTTP
itself. A failed upload raises ``HubPushError`` (the CLI prints one ``error:`` line, exit 1): the local run is
complete and kept, and the message gives the command that uploads it by hand.
"""

from __future__ import annotations

from omegaconf import DictConfig

from prefopt.config import loss_label
from prefopt.run_folder import RunFolder


class HubPushError(RuntimeError):
    """The run finished and is on disk, but its upload failed."""


def hub_problems(cfg: DictConfig) -> list[str]:
    """What forbids ``hub.push`` as configured (empty when it is off): the id's form, a token, not offline."""
    hub = cfg.hub
    if not hub.push:
        return []
    from huggingface_hub import constants, get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not hub.model_id:
        return ["hub.push=true needs hub.model_id=user/name (the repository to create or update)"]
    out = []
    try:
        validate_repo_id(hub.model_id)
        if hub.model_id.count("/") != 1:
            raise HFValidationError("it must be user/name or organisation/name")
    except HFValidationError as err:
        out.append(f"hub.model_id={hub.model_id!r} is not a hub repository id: {str(err).splitlines()[0]}")
    if constants.HF_HUB_OFFLINE:
        out.append("hub.push=true but HF_HUB_OFFLINE is set: unset it to upload, or drop hub.push")
    elif not get_token():
        out.append("hub.push=true needs a Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with "
                   "write access)")
    return out


def push_run(cfg: DictConfig, folder: RunFolder) -> str:
    """Upload ``model/`` (and ``adapter/`` when the run has one); returns the repository's URL."""
    from huggingface_hub import HfApi

    hub, api = cfg.hub, HfApi()
    try:
        url = api.create_repo(hub.model_id, private=hub.private, repo_type="model", exist_ok=True)
        api.upload_folder(repo_id=hub.model_id, folder_path=str(folder.model), repo_type="model",
                          commit_message=f"prefopt: {cfg.recipe or 'run'} ({loss_label(cfg)})")
        if folder.adapter.exists():
            api.upload_folder(repo_id=hub.model_id, folder_path=str(folder.adapter), path_in_repo="adapter",
                              repo_type="model", commit_message="prefopt: the LoRA adapter")
    except Exception as err:  # any failure of the network or the hub: the local run stays as it is
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise HubPushError(f"hub push to {hub.model_id} failed ({type(err).__name__}: {first}); the run is complete "
                           f"in {folder.root}; upload it later with: hf upload {hub.model_id} {folder.model}") \
            from err
    return str(url)
