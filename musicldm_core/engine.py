"""The engine: MusicLDM's sampling loop, driven over the model's maintained components.

:class:`Engine` holds the components on one device and renders batches of takes: text embeddings
(cached per prompt), classifier-free guidance with a negative prompt, a chosen scheduler, the VAE
decode and the vocoder, then ranks several takes of one prompt against that prompt with CLAP's
audio branch. It replaces diffusers' deprecated ``MusicLDMPipeline`` (which fails on text prompts
with transformers 5, can return fewer samples than asked, and ranks takes across prompts) and
matches its output for the same embeddings, seeds, scheduler and steps.

Threading: an Engine is not thread-safe. In the daemon exactly one worker thread owns it; the
``on_step`` and ``is_cancelled`` callbacks run on that thread, between UNet steps.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import BadRequest, Cancelled, ModelError, OutOfMemory
from .loading import DEFAULT_MODEL, Components, load_components
from .schedulers import make_scheduler, prepare_scheduler

__all__ = ["Engine", "RenderItem", "StepCallback", "Take"]

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]
"""``on_step(step, total)``: after each denoising step (1-based), on the engine's thread."""

SEED_MODULUS = 2**31
_RANK_SECONDS = 10.0  # CLAP's audio branch looks at 10 s; longer takes are ranked on their start


@dataclass(frozen=True)
class RenderItem:
    """One prompt of a batch, with one seed per take (take k of seed s is seed (s + k) mod 2³¹)."""

    prompt: str
    negative_prompt: str
    guidance: float
    seeds: tuple[int, ...]

    @staticmethod
    def seeds_for(seed: int, takes: int) -> tuple[int, ...]:
        return tuple((seed + k) % SEED_MODULUS for k in range(takes))


@dataclass
class Take:
    """A rendered take at the model's rate: ``waveform`` float32, ``frames * hop`` samples."""

    waveform: np.ndarray
    seed: int
    index: int
    score: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _check_finite(values: torch.Tensor | np.ndarray, stage: str) -> None:
    """Raise :class:`ModelError` when ``values`` hold a NaN or an infinity.

    A non-finite value anywhere spreads through every later stage and would end as a silent or
    exploding file; it is a model failure the user must see, named by the stage it came out of.
    """
    if isinstance(values, torch.Tensor):
        finite = bool(torch.isfinite(values).all())
    else:
        finite = bool(np.isfinite(values).all())
    if not finite:
        raise ModelError(
            f"non-finite output (NaN or infinity) from {stage}: nothing was written; "
            "try another sampler or number of steps, or a float32 dtype"
        )


class _TextCache:
    """Prompt → embedding, least recently used first out.

    ``hits`` and ``misses`` count prompts asked of :meth:`Engine.encode_text`: a miss is a
    prompt that had to be encoded, a hit one served from the cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._items

    def get(self, prompt: str) -> torch.Tensor | None:
        value = self._items.get(prompt)
        if value is not None:
            self._items.move_to_end(prompt)
        return value

    def put(self, prompt: str, value: torch.Tensor) -> None:
        self._items[prompt] = value
        self._items.move_to_end(prompt)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class Engine:
    """MusicLDM on one device. Build with :meth:`load`; call from one thread only."""

    def __init__(self, components: Components, *, text_cache_size: int = 256) -> None:
        self.components = components
        self.unet = components.unet
        self.vae = components.vae
        self.vocoder = components.vocoder
        self.text_encoder = components.text_encoder
        self.tokenizer = components.tokenizer
        self.feature_extractor = components.feature_extractor
        self.device: torch.device = next(self.unet.parameters()).device
        self.dtype: torch.dtype = next(self.unet.parameters()).dtype
        self.model_rate: int = int(self.vocoder.config.sampling_rate)
        self.hop: int = int(np.prod(self.vocoder.config.upsample_rates))
        self.vae_factor: int = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.mel_bins: int = int(self.vocoder.config.model_in_dim)
        self.latent_channels: int = int(self.unet.config.in_channels)
        self._text_cache = _TextCache(text_cache_size)
        self.compiled: str | None = None

    @classmethod
    def load(
        cls,
        source: str = DEFAULT_MODEL,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        cache_dir: Path | None = None,
    ) -> Engine:
        """Load ``source`` (hub id, folder, ``tiny`` or ``full-random``) and wrap it."""
        return cls(load_components(source, device=device, dtype=dtype, cache_dir=cache_dir))

    # -- description ---------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What is loaded where, for status replies and logs."""
        return {
            "model": self.components.source,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "compiled": self.compiled or "no",
            "sample_rate": self.model_rate,
        }

    @property
    def text_cache_stats(self) -> tuple[int, int]:
        """(hits, misses) of the text-embedding cache."""
        return self._text_cache.hits, self._text_cache.misses

    # -- text ----------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """CLAP text embeddings (normalised, ``(len(prompts), 512)``) in the model's dtype.

        Each distinct prompt is encoded once and cached. Prompts are padded to the longest in the
        call rather than to 512 tokens: the padding is masked, so the embedding is the same.
        """
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        self._text_cache.misses += len(missing)
        self._text_cache.hits += len(prompts) - len(missing)
        if missing:
            tokens = self.tokenizer(
                missing,
                padding=True,
                truncation=True,
                max_length=self.tokenizer.model_max_length,
                return_tensors="pt",
            )
            output = self.text_encoder.get_text_features(
                input_ids=tokens.input_ids.to(self.device),
                attention_mask=tokens.attention_mask.to(self.device),
            )
            # transformers 5 returns a model output whose pooler_output is the projection.
            features = getattr(output, "pooler_output", output)
            for prompt, embedding in zip(missing, features, strict=True):
                self._text_cache.put(prompt, embedding.to(self.dtype))
        return torch.stack([self._cached(p) for p in prompts])

    def _cached(self, prompt: str) -> torch.Tensor:
        value = self._text_cache.get(prompt)
        if value is None:  # evicted by a very large batch: encode on its own
            return self.encode_text([prompt])[0]
        return value

    # -- sampling ------------------------------------------------------------------------------

    def initial_noise(self, seeds: Sequence[int], frames: int) -> torch.Tensor:
        """Starting latents, one independent draw per seed (CPU generators, float32, then moved).

        Drawing each take from its own generator makes take k of seed s the same whatever else
        shares the batch, and the same on every device.
        """
        shape = (
            1,
            self.latent_channels,
            frames // self.vae_factor,
            self.mel_bins // self.vae_factor,
        )
        draws = [
            torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s), dtype=torch.float32)
            for s in seeds
        ]
        return torch.cat(draws).to(self.device, self.dtype)

    def check_frames(self, frames: int) -> None:
        if frames <= 0 or frames % self.vae_factor:
            raise BadRequest(
                f"frames must be a positive multiple of {self.vae_factor}, got {frames}",
                key="frames",
            )

    @torch.inference_mode()
    def generate(
        self,
        items: Sequence[RenderItem],
        *,
        frames: int,
        steps: int,
        scheduler: str,
        on_step: StepCallback | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        rank: bool = True,
    ) -> list[list[Take]]:
        """Render every take of every item in one batch; return each item's takes, best first.

        All items share the length (``frames`` mel frames), the number of ``steps`` and the
        ``scheduler``; guidance and prompts may differ. Raises :class:`Cancelled` between steps
        when ``is_cancelled()`` turns true, :class:`OutOfMemory` when the device runs out.
        """
        if not items:
            return []
        self.check_frames(frames)
        try:
            return self._generate(
                items,
                frames,
                steps,
                scheduler,
                on_step=on_step,
                is_cancelled=is_cancelled,
                rank=rank,
            )
        except torch.OutOfMemoryError as exc:
            self.free_memory()
            raise OutOfMemory(
                f"the {self.device} device ran out of memory for {sum(len(i.seeds) for i in items)}"
                f" takes of {frames / 100:.2f} s: try fewer takes or shorter clips"
            ) from exc
        except (Cancelled, BadRequest, OutOfMemory):
            raise
        except RuntimeError as exc:
            raise ModelError(f"the model failed: {exc}") from exc

    def _generate(
        self,
        items: Sequence[RenderItem],
        frames: int,
        steps: int,
        scheduler_name: str,
        *,
        on_step: StepCallback | None,
        is_cancelled: Callable[[], bool] | None,
        rank: bool,
    ) -> list[list[Take]]:
        started = time.perf_counter()
        seeds = [s for item in items for s in item.seeds]
        counts = [len(item.seeds) for item in items]
        per_take = [item for item in items for _ in item.seeds]
        # Guidance as upstream: > 1 enables classifier-free guidance. In a guided batch an item
        # asking for <= 1 gets exactly 1, i.e. its conditional prediction.
        guided = any(item.guidance > 1.0 for item in items)

        positive = self.encode_text([item.prompt for item in per_take])
        if guided:
            negative = self.encode_text([item.negative_prompt for item in per_take])
            labels = torch.cat([negative, positive])
            scale = torch.tensor(
                [max(item.guidance, 1.0) for item in per_take], device=self.device, dtype=self.dtype
            ).view(-1, 1, 1, 1)
        else:
            labels = positive
        text_done = time.perf_counter()

        scheduler = prepare_scheduler(
            scheduler_name, self.components.scheduler_config, steps, device=self.device
        )
        timesteps = scheduler.timesteps
        latents = self.initial_noise(seeds, frames) * scheduler.init_noise_sigma
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            if is_cancelled is not None and is_cancelled():
                raise Cancelled("cancelled during rendering")
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = self.unet(
                model_input, t, encoder_hidden_states=None, class_labels=labels, return_dict=False
            )[0]
            if self.compiled is not None:
                # a CUDA-graph replay overwrites its output buffer, and multistep solvers keep
                # earlier predictions: own a copy
                noise_pred = noise_pred.clone()
            if guided:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + scale * (cond - uncond)
            latents = scheduler.step(noise_pred, t, latents).prev_sample
            if on_step is not None:
                on_step(i + 1, total)
        if is_cancelled is not None and is_cancelled():
            raise Cancelled("cancelled during rendering")
        denoised = time.perf_counter()
        where = f"the {scheduler_name} sampler at {steps} steps"
        _check_finite(latents, f"the latents after {where}")

        mel = self.decode_latents(latents)
        _check_finite(mel, f"the VAE decoder (latents from {where})")
        decoded = time.perf_counter()
        waves = self.vocode(mel, samples=frames * self.hop)
        _check_finite(waves, f"the vocoder (latents from {where})")
        vocoded = time.perf_counter()

        timings = {
            "text": text_done - started,
            "unet": denoised - text_done,
            "unet_per_step": (denoised - text_done) / max(total, 1),
            "vae": decoded - denoised,
            "vocoder": vocoded - decoded,
        }
        results: list[list[Take]] = []
        offset = 0
        for item, count in zip(items, counts, strict=True):
            takes = [
                Take(waveform=waves[offset + k], seed=item.seeds[k], index=k, timings=dict(timings))
                for k in range(count)
            ]
            offset += count
            if rank and count > 1:
                takes = self.rank(item.prompt, takes)
            results.append(takes)
        return results

    def decode_latents(self, latents: torch.Tensor, *, chunk: int = 4) -> torch.Tensor:
        """Latents to mel spectrograms ``(batch, frames, mel_bins)`` with the VAE, in chunks."""
        latents = 1 / self.vae.config.scaling_factor * latents
        parts = [
            self.vae.decode(latents[i : i + chunk]).sample for i in range(0, len(latents), chunk)
        ]
        return torch.cat(parts).squeeze(1)

    def vocode(self, mel: torch.Tensor, *, samples: int, chunk: int = 4) -> np.ndarray:
        """Mel spectrograms to waveforms ``(batch, samples)`` float32 at the model's rate.

        HiFi-GAN returns a few samples more than frames × hop; they are trimmed.
        """
        parts = [self.vocoder(mel[i : i + chunk]) for i in range(0, len(mel), chunk)]
        waves = torch.cat(parts)[:, :samples].float().cpu().numpy()
        return np.ascontiguousarray(waves, dtype=np.float32)

    # -- ranking -------------------------------------------------------------------------------

    @torch.inference_mode()
    def score(self, prompt: str, waveforms: Sequence[np.ndarray]) -> list[float]:
        """Cosine similarity between each waveform (model rate) and ``prompt``, with CLAP."""
        from .dsp import resample

        target_rate = int(self.feature_extractor.sampling_rate)
        keep = int(_RANK_SECONDS * self.model_rate)
        # Cropping to CLAP's 10 s window ourselves keeps the extractor from cropping at random.
        audio = [resample(w[:keep], self.model_rate, target_rate) for w in waveforms]
        features = self.feature_extractor(
            audio, sampling_rate=target_rate, return_tensors="pt", truncation="rand_trunc"
        )
        output = self.text_encoder.get_audio_features(
            input_features=features.input_features.to(self.device, self.dtype),
        )
        audio_embeds = getattr(output, "pooler_output", output).float()
        audio_embeds = torch.nn.functional.normalize(audio_embeds, dim=-1)
        text = torch.nn.functional.normalize(self.encode_text([prompt]).float(), dim=-1)
        return [float(x) for x in (audio_embeds @ text[0]).cpu()]

    def rank(self, prompt: str, takes: list[Take]) -> list[Take]:
        """``takes`` of one prompt, best first by CLAP similarity to that same prompt."""
        scores = self.score(prompt, [t.waveform for t in takes])
        for take, value in zip(takes, scores, strict=True):
            take.score = value if math.isfinite(value) else None
        return sorted(takes, key=lambda t: -(t.score if t.score is not None else -math.inf))

    # -- housekeeping ----------------------------------------------------------------------------

    def free_memory(self) -> None:
        """Return cached device memory after a failure."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def reference_pipeline(self, scheduler: str = "ddim") -> Any:
        """diffusers' (deprecated) ``MusicLDMPipeline`` over these same components, to compare
        against (tests, benchmarks); None where diffusers no longer ships it."""
        import diffusers

        pipeline_class = getattr(diffusers, "MusicLDMPipeline", None)
        if pipeline_class is None:
            return None
        c = self.components
        pipe = pipeline_class(
            vae=c.vae,
            text_encoder=c.text_encoder,
            tokenizer=c.tokenizer,
            feature_extractor=c.feature_extractor,
            unet=c.unet,
            scheduler=make_scheduler(scheduler, c.scheduler_config),
            vocoder=c.vocoder,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def compile(self, *, mode: str | None = None) -> None:
        """Compile the UNet with ``torch.compile`` (optional fast path; off by default).

        ``mode`` defaults to ``"reduce-overhead"`` on CUDA (CUDA graphs: one launch replays the
        whole UNet forward) and ``"default"`` elsewhere. Each new latent length compiles on
        first use (or, after the first, a shape-generic version), so render the lengths you
        will use once at start (see :meth:`warmup`). The compiled UNet's output equals the eager
        one's within float rounding (a test checks < 1e-4 on the CPU).
        """
        if self.compiled is not None:
            return
        mode = mode or ("reduce-overhead" if self.device.type == "cuda" else "default")
        self.unet = torch.compile(self.unet, mode=mode)  # type: ignore[assignment]
        self.compiled = mode

    def decompile(self) -> None:
        """Back to the eager UNet (after a compile that failed, say)."""
        if self.compiled is not None:
            self.unet = self.components.unet
            self.compiled = None

    def warmup(self, *, frames: int = 64, steps: int = 2, scheduler: str = "ddim") -> float:
        """Render one short throw-away take so the first real request runs warm; returns seconds."""
        started = time.perf_counter()
        self.generate(
            [RenderItem("warm up", "", 2.0, (0,))], frames=frames, steps=steps, scheduler=scheduler
        )
        return time.perf_counter() - started
