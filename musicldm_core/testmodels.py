"""Built-in test models, made offline from a seed and saved in the real diffusers layout.

* ``tiny``: MusicLDM's real geometry (16 kHz, hop 160, 64 mel bins, VAE factor 4, 8 latent
  channels, a 512-wide CLAP embedding entering the UNet as a class label, byte-level RoBERTa
  tokenizer with CLAP's special ids) with tiny widths, so a 4-bar clip renders in well under a
  second on two CPU cores. Tests and the README's first clip use it.
* ``full-random``: the real architecture and sizes, from the checkpoint's own configs (shipped in
  ``configs/musicldm/``), with random weights: for benchmarks and memory figures.

Both are built once into the user's cache folder and then loaded through
:func:`musicldm_core.loading.load_components`, exactly like downloaded weights, so the tests
exercise the real loading path. Random weights make noise, not music: nothing here can tell how a
real clip sounds.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["TEST_MODELS", "build_test_model", "default_cache_root", "ensure_test_model"]

log = logging.getLogger(__name__)

TEST_MODELS = ("tiny", "full-random")
_RECIPE_VERSION = 3  # bump when a recipe changes, so cached builds are rebuilt


def default_cache_root() -> Path:
    """Where test models are cached: the platform's user cache folder."""
    from platformdirs import user_cache_path

    return user_cache_path("musicldm-daemon") / "test-models"


def ensure_test_model(name: str, *, cache_root: Path | None = None, seed: int = 0) -> Path:
    """The folder of test model ``name``, building it first if it is not cached yet."""
    if name not in TEST_MODELS:
        raise ValueError(f"test model must be one of {', '.join(TEST_MODELS)}, got {name!r}")
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    folder = root / f"{name}-v{_RECIPE_VERSION}-seed{seed}"
    if (folder / "model_index.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{folder.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    log.info("building test model %r into %s (once)", name, folder)
    build_test_model(name, staging, seed=seed)
    try:
        staging.rename(folder)
    except OSError:
        # Another process finished first: keep its copy.
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "model_index.json").is_file():
            raise
    return folder


def _checkpoint_config(component: str, filename: str = "config.json") -> dict[str, Any]:
    ref = resources.files("musicldm_core") / "configs" / "musicldm" / component / filename
    config: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return config


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-printable-character table (byte-level BPE's base symbols)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def _byte_tokenizer(model_max_length: int) -> Any:
    """A RoBERTa tokenizer over single bytes, with CLAP's special ids (<s>=0, <pad>=1, </s>=2)."""
    from transformers import RobertaTokenizer

    vocab: dict[str, int] = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in _bytes_to_unicode().values():
        vocab[symbol] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=model_max_length)


def _configs(name: str) -> dict[str, dict[str, Any]]:
    unet = _checkpoint_config("unet")
    vae = _checkpoint_config("vae")
    clap = _checkpoint_config("text_encoder")
    vocoder = _checkpoint_config("vocoder")
    if name == "full-random":
        clap["text_config"].setdefault("vocab_size", 50265)
        return {"unet": unet, "vae": vae, "clap": clap, "vocoder": vocoder}
    # tiny: same geometry, narrow everything.
    unet.update(
        block_out_channels=[8, 16, 32],
        down_block_types=["DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
        cross_attention_dim=[8, 16, 32],
        layers_per_block=1,
        attention_head_dim=8,
        norm_num_groups=4,
    )
    vae.update(block_out_channels=[8, 16, 16], layers_per_block=1, norm_num_groups=4)
    clap = {
        "text_config": {
            "vocab_size": 261,
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 514,
            "projection_hidden_size": 32,
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
        },
        "audio_config": {
            "hidden_size": 32,
            "depths": [1, 1],
            "num_attention_heads": [1, 2],
            "patch_embeds_hidden_size": 16,
            "projection_hidden_size": 32,
            "window_size": 8,
        },
        "projection_dim": clap["projection_dim"],
    }
    vocoder.update(
        upsample_initial_channel=32,
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
    )
    return {"unet": unet, "vae": vae, "clap": clap, "vocoder": vocoder}


def _audible_init(vocoder: Any) -> None:
    """Re-draw the vocoder's weights so that its output has a usable level.

    HiFi-GAN's own init (normal, std 0.01) shrinks the signal at every layer: a random vocoder
    then outputs ~1e-10, and tests comparing such waveforms would compare zeros. A
    variance-preserving init keeps random output near -10 dBFS RMS, like real audio.
    """
    import math

    import torch

    with torch.no_grad():
        for module in vocoder.modules():
            if isinstance(module, torch.nn.ConvTranspose1d):
                fan_in = module.in_channels * module.kernel_size[0] / module.stride[0]
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            elif isinstance(module, torch.nn.Conv1d):
                module.weight.normal_(
                    0.0, math.sqrt(1.0 / (module.in_channels * module.kernel_size[0]))
                )
            else:
                continue
            if module.bias is not None:
                module.bias.zero_()
        vocoder.conv_post.weight.mul_(0.25)


def build_test_model(name: str, folder: Path, *, seed: int = 0) -> None:
    """Build test model ``name`` with weights drawn from ``seed`` and save it into ``folder``."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    configs = _configs(name)
    folder.mkdir(parents=True, exist_ok=True)
    strip = ("_class_name", "_diffusers_version")

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(**{k: v for k, v in configs["unet"].items() if k not in strip})
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    del unet

    torch.manual_seed(seed + 1)
    vae: Any = AutoencoderKL(**{k: v for k, v in configs["vae"].items() if k not in strip})
    vae.save_pretrained(folder / "vae", safe_serialization=True)
    del vae

    torch.manual_seed(seed + 2)
    clap_cfg = copy.deepcopy(configs["clap"])
    text_config = clap_cfg.pop("text_config")
    audio_config = clap_cfg.pop("audio_config")
    keep = {
        "projection_dim",
        "logit_scale_init_value",
        "projection_hidden_act",
        "initializer_factor",
    }
    clap = ClapModel(
        ClapConfig(
            text_config=text_config,
            audio_config=audio_config,
            **{k: v for k, v in clap_cfg.items() if k in keep},
        )
    )
    clap.save_pretrained(folder / "text_encoder", safe_serialization=True)
    del clap

    torch.manual_seed(seed + 3)
    voc_cfg = {
        k: v
        for k, v in configs["vocoder"].items()
        if k not in ("architectures", "model_type", "torch_dtype")
    }
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(**voc_cfg))
    _audible_init(vocoder)
    vocoder.save_pretrained(folder / "vocoder", safe_serialization=True)
    del vocoder

    tokenizer_config = _checkpoint_config("tokenizer", "tokenizer_config.json")
    _byte_tokenizer(tokenizer_config["model_max_length"]).save_pretrained(folder / "tokenizer")

    fe_config = _checkpoint_config("feature_extractor", "preprocessor_config.json")
    fe_kwargs = {
        k: v
        for k, v in fe_config.items()
        if k not in ("feature_extractor_type", "processor_class", "nb_frequency_bins")
    }
    ClapFeatureExtractor(**fe_kwargs).save_pretrained(folder / "feature_extractor")

    scheduler_config = _checkpoint_config("scheduler", "scheduler_config.json")
    DDIMScheduler.from_config(scheduler_config).save_pretrained(folder / "scheduler")

    index = _checkpoint_config(".", "model_index.json")
    index["_test_model"] = {"name": name, "seed": seed, "recipe": _RECIPE_VERSION}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
