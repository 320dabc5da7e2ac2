"""Loading MusicLDM's components: from the hub, a local folder, or a built-in test model.

A model source is one of:

* a hub id (default ``ucsd-reach/musicldm``): the diffusers layout is fetched once into the
  Hugging Face cache (safetensors and configs only) and loaded from there;
* a local folder in the diffusers layout (``model_index.json`` plus ``unet/``, ``vae/``,
  ``text_encoder/``, ``tokenizer/``, ``feature_extractor/``, ``vocoder/``, ``scheduler/``);
* ``tiny`` or ``full-random``: test models that :mod:`.testmodels` builds offline, saves in the
  same layout and that are then loaded through the very same folder loader.

Each component is loaded with its maintained class and an explicit dtype (the checkpoint's CLAP
config says float64, which transformers 5 would otherwise honour). Used by :class:`.engine.Engine`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import ModelError, WeightsNotFound
from .spec import DEFAULT_MODEL

__all__ = [
    "DEFAULT_MODEL",
    "REBUILT_BUFFERS",
    "Components",
    "check_loading_info",
    "default_dtype",
    "load_components",
    "quiet_libraries",
    "resolve_device",
    "resolve_source",
]

log = logging.getLogger(__name__)


REBUILT_BUFFERS = frozenset(
    {"position_ids", "token_type_ids", "relative_position_index", "num_batches_tracked"}
)
"""Buffers a checkpoint may lack without harm: each model rebuilds them in its constructor
exactly as trained (``position_ids`` = 0, 1, 2, ...; ``token_type_ids`` zeros, CLAP's text model
has one token type; Swin's ``relative_position_index`` follows from the window size) or never
reads them at inference (BatchNorm's ``num_batches_tracked`` counts training batches). Every other
missing tensor - a weight, a bias, the vocoder's ``mean``/``scale`` buffers - would be left
randomly initialised or zero, so a checkpoint lacking one is refused."""

_FOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "feature_extractor", "vocoder", "scheduler")
_HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "tokenizer/*"]


@dataclass
class Components:
    """The named parts of a MusicLDM model, ready on one device (like a diffusers pipeline's)."""

    tokenizer: Any
    text_encoder: Any  # transformers.ClapModel
    feature_extractor: Any  # transformers.ClapFeatureExtractor
    unet: Any  # diffusers.UNet2DConditionModel
    vae: Any  # diffusers.AutoencoderKL
    vocoder: Any  # transformers.SpeechT5HifiGan
    scheduler_config: dict[str, Any]
    source: str
    folder: Path


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` as given, else CUDA, else Apple's MPS, else the CPU."""
    if device:
        try:
            resolved = torch.device(device)
        except RuntimeError as exc:
            raise ModelError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}") from exc
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("device cuda was asked for, but PyTorch sees no CUDA GPU here")
        if resolved.type == "mps" and not torch.backends.mps.is_available():
            raise ModelError("device mps was asked for, but it is not available here")
        return resolved
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """Half precision on CUDA, single precision elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def parse_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """``fp16``/``bf16``/``fp32`` (or torch names) to a dtype; None gives the device's default."""
    if name is None:
        return default_dtype(device)
    table = {
        "fp16": torch.float16,
        "float16": torch.float16,
        "half": torch.float16,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp32": torch.float32,
        "float32": torch.float32,
        "float": torch.float32,
    }
    try:
        return table[name.lower()]
    except KeyError:
        raise ModelError(f"dtype must be one of fp16, bf16, fp32, got {name!r}") from None


def quiet_libraries() -> None:
    """Silence transformers' and diffusers' own progress bars and advice (ours is enough)."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    diffusers_logging.set_verbosity_error()


def resolve_source(source: str, *, cache_dir: Path | None = None) -> Path:
    """The local folder for a model source, fetching from the hub or building a test model."""
    from .testmodels import TEST_MODELS, ensure_test_model

    if source in TEST_MODELS:
        return ensure_test_model(source, cache_root=cache_dir)
    path = Path(source).expanduser()
    if path.exists():
        if not (path / "model_index.json").is_file():
            raise ModelError(
                f"{path} is not a MusicLDM model folder: model_index.json is missing "
                "(expected the diffusers layout: model_index.json, unet/, vae/, text_encoder/, "
                "tokenizer/, feature_extractor/, vocoder/, scheduler/)"
            )
        return path
    if source.count("/") != 1 or source.startswith((".", "/", "~")):
        raise ModelError(
            f"model {source!r} is neither a folder that exists, a hub id like "
            f"{DEFAULT_MODEL!r}, nor one of the test models {', '.join(TEST_MODELS)}"
        )
    return _fetch_from_hub(source)


def _fetch_from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, local_files_only=True))
    except Exception:  # not cached yet: try the network below
        log.info("model %s is not cached yet; downloading it (about 2 GB, once)", repo_id)
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:
        raise WeightsNotFound(
            f"the weights of {repo_id!r} are not on this machine and could not be downloaded "
            f"({type(exc).__name__}: {exc}). On a machine with internet access run "
            f"`hf download {repo_id}` once (about 2 GB; it fills the Hugging Face cache), or "
            "download the repository's files and point --model at that folder. For a quick "
            "check without weights, use --model tiny."
        ) from exc


def load_components(
    source: str = DEFAULT_MODEL,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    cache_dir: Path | None = None,
) -> Components:
    """Load every component of ``source`` onto ``device`` in ``dtype`` (safetensors only)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel, SpeechT5HifiGan

    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else parse_dtype(dtype, torch_device)
    folder = resolve_source(source, cache_dir=cache_dir)
    missing = [name for name in _FOLDERS if not (folder / name).is_dir()]
    if missing:
        raise ModelError(f"model folder {folder} lacks the component folders {', '.join(missing)}")

    def load(name: str, fn: Any) -> Any:
        try:
            return fn(folder / name)
        except (OSError, ValueError, RuntimeError) as exc:
            hint = ""
            if "safetensors" in str(exc).lower() or "pytorch_model.bin" in str(exc):
                hint = " (only .safetensors weights are loaded; convert .bin files first)"
            raise ModelError(f"could not load {name} from {folder / name}: {exc}{hint}") from exc

    def load_weights(name: str, model_class: Any, dtype_arg: str) -> Any:
        # The libraries' own loading reports are silenced (quiet_libraries), so their
        # "newly initialized" warning never shows: check the loading info ourselves.
        model, info = load(
            name,
            lambda p: model_class.from_pretrained(
                p, **{dtype_arg: torch_dtype}, use_safetensors=True, output_loading_info=True
            ),
        )
        check_loading_info(name, folder / name, model, info)
        return model

    # transformers takes `dtype`, diffusers still `torch_dtype`.
    text_encoder = load_weights("text_encoder", ClapModel, "dtype")
    vocoder = load_weights("vocoder", SpeechT5HifiGan, "dtype")
    unet = load_weights("unet", UNet2DConditionModel, "torch_dtype")
    vae = load_weights("vae", AutoencoderKL, "torch_dtype")
    tokenizer = load("tokenizer", AutoTokenizer.from_pretrained)
    feature_extractor = load("feature_extractor", ClapFeatureExtractor.from_pretrained)
    scheduler_config = load("scheduler", _read_scheduler_config)

    for module in (text_encoder, vocoder, unet, vae):
        module.to(torch_device).eval().requires_grad_(False)
    log.info(
        "loaded %s from %s on %s (%s)",
        source,
        folder,
        torch_device,
        str(torch_dtype).split(".")[-1],
    )
    return Components(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        feature_extractor=feature_extractor,
        unet=unet,
        vae=vae,
        vocoder=vocoder,
        scheduler_config=scheduler_config,
        source=source,
        folder=folder,
    )


def check_loading_info(name: str, path: Path, model: Any, info: dict[str, Any]) -> None:
    """Refuse a component whose checkpoint lacks tensors the model needs (see REBUILT_BUFFERS).

    ``info`` is the ``output_loading_info`` of diffusers' or transformers' ``from_pretrained``.
    Extra tensors the model does not use are only logged: they change nothing that is loaded.
    """
    buffers = {key for key, _ in model.named_buffers()}

    def rebuilt(key: str) -> bool:
        return key.rsplit(".", 1)[-1] in REBUILT_BUFFERS

    missing = [k for k in info.get("missing_keys", ()) if not (rebuilt(k) and k in buffers)]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise ModelError(
            f"the {name} checkpoint in {path} lacks {len(missing)} tensor(s) the model needs "
            f"({shown}); loading it would leave them randomly initialised. The download is "
            "incomplete or the files belong to another model: fetch the model again"
        )
    errors = list(info.get("error_msgs", ()))
    if errors:
        raise ModelError(f"could not load {name} from {path}: {errors[0]}")
    unexpected = [k for k in info.get("unexpected_keys", ()) if not rebuilt(k)]
    if unexpected:
        log.warning(
            "the %s checkpoint in %s has %d tensor(s) the model does not use (%s); ignored",
            name,
            path,
            len(unexpected),
            ", ".join(unexpected[:5]),
        )


def _read_scheduler_config(path: Path) -> dict[str, Any]:
    import json

    with open(path / "scheduler_config.json", encoding="utf-8") as fh:
        config: dict[str, Any] = json.load(fh)
    return config
