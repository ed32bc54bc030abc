"""Where a model's weights are: a directory, a hub id in the Hugging Face cache, and the errors that say how to get them."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from virnucpro_core.errors import WeightsNotFoundError
from virnucpro_core.models.specs import ModelSpec, get_spec

log = logging.getLogger(__name__)


def hf_hub_cache_dir() -> Path:
    """The hub cache directory, read from the environment now (not at import time).

    Precedence as in huggingface_hub: ``HF_HUB_CACHE``, ``HUGGINGFACE_HUB_CACHE``,
    ``HF_HOME/hub``, ``XDG_CACHE_HOME/huggingface/hub``, ``~/.cache/huggingface/hub``.
    """
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expanduser(os.path.expandvars(os.environ[variable])))
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(os.path.expanduser(os.path.expandvars(home))) / "hub"


def model_directory(
    name: str, model_path: str | os.PathLike | None = None, path_option: str | None = None
) -> tuple[Path, str | None, str]:
    """Where :func:`load_model` reads pretrained ``name`` from: ``(directory, snapshot commit, source)``.

    ``model_path``: a directory, another hub id in the cache, or None (the spec's hub id in the cache).
    Nothing is downloaded. Raises :class:`WeightsNotFoundError` as :func:`load_model` does.
    """
    spec = get_spec(name)
    # "org/name" that is no local path is a hub id, unless "org" is a local directory: then it is
    # a directory that does not exist, and saying so beats suggesting `hf download org/name`.
    if model_path is not None and _is_hub_id(model_path) and not Path(model_path).expanduser().parent.is_dir():
        return (*_from_hf_cache(spec, str(model_path), path_option, given=str(model_path) != spec.hub_id),
                str(model_path))
    if model_path is None:
        return (*_from_hf_cache(spec, spec.hub_id, path_option), spec.hub_id)
    directory = Path(model_path).expanduser()
    if not directory.is_dir():
        raise _directory_not_found(spec, directory, path_option)
    return directory, _revision_from_path(Path(model_path)), str(model_path)


def _is_hub_id(value: str | os.PathLike) -> bool:
    """``org/name`` that is not an existing local path."""
    text = str(value)
    return not Path(text).expanduser().exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None


def _from_hf_cache(
    spec: ModelSpec, hub_id: str | None = None, path_option: str | None = None, *, given: bool = False
) -> tuple[Path, str | None]:
    """Snapshot directory and commit of ``hub_id`` (default ``spec.hub_id``) in the local cache (no network).

    ``given``: ``hub_id`` came from the user's model path, which may also have
    been meant as a (missing) relative directory; the error then says both.
    """
    # huggingface_hub is only needed to download weights
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    hub_id = hub_id or spec.hub_id
    cache = hf_hub_cache_dir()
    try:
        snapshot = Path(snapshot_download(hub_id, cache_dir=cache, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        # A cache copied without refs/main still has usable snapshots; take one only if unambiguous.
        snapshots = sorted(
            p for p in (cache / _repo_folder(hub_id) / "snapshots").glob("*") if (p / "config.json").is_file()
        )
        if len(snapshots) != 1:
            raise _weights_not_found(spec, cache, snapshots, hub_id, path_option, given=given) from None
        snapshot = snapshots[0]
        log.info("no refs/main for %s in %s; using its only snapshot %s", hub_id, cache, snapshot.name)
    if not (snapshot / "config.json").is_file():
        raise _weights_not_found(spec, cache, [snapshot], hub_id, path_option, given=given)
    return snapshot, snapshot.name


def _repo_folder(hub_id: str) -> str:
    return "models--" + hub_id.replace("/", "--")


def _revision_from_path(path: Path) -> str | None:
    """The snapshot commit when ``path`` is a ``.../snapshots/<commit>`` cache folder."""
    resolved = path.expanduser().absolute()
    if resolved.parent.name == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", resolved.name):
        return resolved.name
    return None


# Where each entry point takes a model directory, for hints given without the caller's option name.
MODEL_PATH_OPTIONS = (
    "`virnucpro extract --model-path`, `virnucpro predict --dna-model-path / --protein-model-path`, "
    "the acceptance suite's --fast-model / --baseline-model / --dna-model"
)


def _path_hint(path_option: str | None) -> str:
    """How to hand a local copy over: the caller's option when known, else every entry point's."""
    if path_option:
        return f"pass {path_option} DIR with a copy of the repository"
    return f"pass a directory with a copy of the repository to the command's model-path option ({MODEL_PATH_OPTIONS})"


def _weights_not_found(
    spec: ModelSpec,
    cache: Path,
    snapshots: list[Path],
    hub_id: str,
    path_option: str | None = None,
    *,
    given: bool = False,
) -> WeightsNotFoundError:
    found = (
        f"no usable snapshot under {cache / _repo_folder(hub_id)}"
        if len(snapshots) <= 1
        else f"{len(snapshots)} snapshots and no refs/main under {cache / _repo_folder(hub_id)}: "
        + ", ".join(p.name for p in snapshots)
    )
    if given:  # "org/name" that is no local path: a hub id, or a mistyped relative directory
        found += f"; and no directory {Path(hub_id).expanduser().absolute()}"
    return WeightsNotFoundError(
        f"pretrained weights for {spec.display_name} ({hub_id}) are not on this machine",
        expected=f"the model in the Hugging Face cache at {cache} "
        f"({_repo_folder(hub_id)}/snapshots/<revision>/ with config.json and the weights; "
        "set by HF_HUB_CACHE or HF_HOME)" + (", or a local directory of that name" if given else ""),
        found=found,
        fix=(f"if {hub_id} is a directory, fix the path; if it is a hub id, " if given else "")
        + f"on a machine with network run `hf download {hub_id}` and copy the cache here "
        f"(or point HF_HOME at it), or {_path_hint(path_option)}; "
        "for an offline smoke run use --weights random",
    )


def _directory_not_found(spec: ModelSpec, directory: Path, path_option: str | None) -> WeightsNotFoundError:
    option = path_option or "the model-path option"
    return WeightsNotFoundError(
        f"model directory for {spec.display_name} does not exist: {directory}",
        expected=f"an existing directory with {spec.hub_id}'s files (config.json, model.safetensors or "
        "pytorch_model.bin)",
        found=f"nothing at {directory.absolute()}",
        fix=f"check the path given to {option}; to fill a new directory, run "
        f"`hf download {spec.hub_id} --local-dir {directory}` on a machine with network and copy it here",
    )
