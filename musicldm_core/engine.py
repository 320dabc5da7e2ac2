"""The engine: MusicLDM's sampling loop, driven over the model's maintained components.

:class:`Engine` holds the components on one device and renders batches of takes: text embeddings
(cached per prompt), classifier-free guidance with a negative prompt, a chosen scheduler, the VAE
decode and the vocoder, then ranks several takes of one prompt against that prompt with CLAP's
audio branch. It replaces diffusers' deprecated ``MusicLDMPipeline`` (which fails on text prompts
with transformers 5, can return fewer samples than asked, and ranks takes across prompts) and
matches its output for the same embeddings, seeds, scheduler and steps.

Why this module is long: it is one object, the components on a device and the one sampling
loop over them; audio-in conditioning, the compiled UNet with its eager fallback, the
half-precision fallback and the ranking all act on that state between or around UNet steps.
What needs none of it lives beside it: :mod:`.noise`, :mod:`.schedulers`, :mod:`.clap_features`.

Threading: an Engine is not thread-safe. In the daemon exactly one worker thread owns it; the
``on_step`` and ``is_cancelled`` callbacks run on that thread, between UNet steps.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from .clap_features import ClapFeatures
from .errors import BadRequest, Cancelled, ModelError, OutOfMemory
from .loading import DEFAULT_MODEL, Components, load_components
from .noise import draws, noise_levels, slerp
from .schedulers import make_scheduler, prepare_scheduler

__all__ = ["Engine", "RenderItem", "StepCallback", "Take"]

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]
"""``on_step(step, total)``: after each denoising step (1-based), on the engine's thread."""

SEED_MODULUS = 2**31
COMPILE_FRAME_BUCKET = 64
"""Compiled, lengths are rendered in multiples of this many mel frames (0.64 s at the model's
100 frames/s): at most 0.64 s more than asked, and the 1-4 bar clips of 60-180 BPM (with the grid
headroom, up to 15 s) use about 20 UNet lengths instead of one per tempo."""
_RANK_SECONDS = 10.0  # CLAP's audio branch looks at 10 s; longer takes are ranked on their start


@dataclass(frozen=True)
class RenderItem:
    """One prompt of a batch, with one seed per take (take k of seed s is seed (s + k) mod 2³¹)."""

    prompt: str
    negative_prompt: str
    guidance: float
    seeds: tuple[int, ...]
    # Audio in (musicldm_core.audio_in). ``start``: latents (1, C, T, F) to start from (with
    # ``strength``: SDEdit) or to hold where ``mask`` is 0 (repaint, continue). ``strength`` is
    # the share of the schedule run (0 = ``start`` as it is, 1 = a fresh render from noise); all
    # items of one batch share it. ``mask``: (T,) latent-frame weights, 1 regenerate, 0 keep.
    start: torch.Tensor | None = field(default=None, compare=False)
    strength: float | None = None
    mask: torch.Tensor | None = field(default=None, compare=False)
    # Conditioning: ``blend`` prompts with weights (the main prompt weighs 1), a reference clip's
    # CLAP audio embedding ``like`` (512,) mixed in at ``like_weight``, and the morph toward
    # ``morph_to`` (embedding interpolated, noise slerped toward ``morph_seeds``) at ``morph``.
    blend: tuple[tuple[str, float], ...] = ()
    like: torch.Tensor | None = field(default=None, compare=False)
    like_weight: float = 0.5
    morph_to: str | None = None
    morph: float = 0.0
    morph_seeds: tuple[int, ...] | None = None

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


_Out = TypeVar("_Out", torch.Tensor, np.ndarray)


def _is_finite(values: torch.Tensor | np.ndarray) -> bool:
    if isinstance(values, torch.Tensor):
        return bool(torch.isfinite(values).all())
    return bool(np.isfinite(values).all())


def _check_finite(values: torch.Tensor | np.ndarray, stage: str) -> None:
    """Raise :class:`ModelError` when ``values`` hold a NaN or an infinity.

    A non-finite value anywhere spreads through every later stage and would end as a silent or
    exploding file; it is a model failure the user must see, named by the stage it came out of.
    """
    if not _is_finite(values):
        raise ModelError(
            f"non-finite output (NaN or infinity) from {stage}: nothing was written; "
            "try another sampler or number of steps, or a float32 dtype"
        )


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vector, dim=-1)


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
        self.frame_bucket: int | None = None
        """Compiled: lengths are rendered rounded up to a multiple of this many mel frames
        (:meth:`render_frames`); None (uncompiled) renders exactly the frames asked."""
        self._eager_shapes: set[tuple[int, ...]] = set()  # UNet inputs whose compile failed
        self._clap_features: ClapFeatures | None = None

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
        return draws(seeds, self.latent_shape(frames)).to(self.device, self.dtype)

    def latent_shape(self, frames: int) -> tuple[int, int, int, int]:
        """The latents of one take of ``frames`` mel frames: (1, channels, time, mel bins)."""
        return (
            1,
            self.latent_channels,
            frames // self.vae_factor,
            self.mel_bins // self.vae_factor,
        )

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
        with self._failures(items, frames):
            return self._generate(
                items,
                frames,
                steps,
                scheduler,
                on_step=on_step,
                is_cancelled=is_cancelled,
                rank=rank,
            )

    @contextlib.contextmanager
    def _failures(self, items: Sequence[RenderItem], frames: int) -> Iterator[None]:
        """Torch's failures as the engine's: :class:`OutOfMemory` (device memory returned
        first) and :class:`ModelError`; the engine's own errors pass as they are."""
        try:
            yield
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
        counts = [len(item.seeds) for item in items]
        latents, stages = self._denoise(
            items, frames, steps, scheduler_name, on_step=on_step, is_cancelled=is_cancelled
        )
        denoised = time.perf_counter()
        where = f"the {scheduler_name} sampler at {steps} steps"
        _check_finite(latents, f"the latents after {where}")
        mel = self.run_stage(
            "vae", lambda: self.decode_latents(latents), f"the VAE decoder (latents from {where})"
        )
        decoded = time.perf_counter()
        waves = self.run_stage(
            "vocoder",
            lambda: self.vocode(mel, samples=frames * self.hop),
            f"the vocoder (latents from {where})",
        )
        vocoded = time.perf_counter()

        timings = {
            "text": stages["text"],
            "unet": stages["unet"],
            "unet_per_step": stages["unet"] / max(stages["steps"], 1),
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

    @torch.inference_mode()
    def denoise(
        self,
        items: Sequence[RenderItem],
        *,
        frames: int,
        steps: int,
        scheduler: str,
        on_step: StepCallback | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """The sampling loop alone: every take's final latents ``(takes, C, T, F)``, on the
        device, not yet checked, decoded or read back (:meth:`generate` does all of it). For
        measuring the loop, or overlapping one batch's decode with the next one's loop."""
        self.check_frames(frames)
        with self._failures(items, frames):
            return self._denoise(
                items, frames, steps, scheduler, on_step=on_step, is_cancelled=is_cancelled
            )[0]

    def _denoise(
        self,
        items: Sequence[RenderItem],
        frames: int,
        steps: int,
        scheduler_name: str,
        *,
        on_step: StepCallback | None,
        is_cancelled: Callable[[], bool] | None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """(final latents, {"text": s, "unet": s, "steps": n}) of one batch."""
        started = time.perf_counter()
        seeds = [s for item in items for s in item.seeds]
        per_take = [item for item in items for _ in item.seeds]
        # Guidance as upstream: > 1 enables classifier-free guidance. In a guided batch an item
        # asking for <= 1 gets exactly 1, i.e. its conditional prediction.
        guided = any(item.guidance > 1.0 for item in items)

        positive = self._conditioning(per_take)
        if guided:
            negative = self.encode_text([item.negative_prompt for item in per_take])
            labels = torch.cat([negative, positive])
            scale = torch.tensor(
                [max(item.guidance, 1.0) for item in per_take], device=self.device, dtype=self.dtype
            ).view(-1, 1, 1, 1)
        else:
            labels = positive
        text_done = time.perf_counter()

        # CPU timesteps for the scheduler, one copy on the device for the UNet, made before the
        # loop: the scheduler indexes its CPU tables with a CPU timestep, so no step reads a
        # device scalar back (a host-device sync per step on a GPU)
        scheduler = prepare_scheduler(scheduler_name, self.components.scheduler_config, steps)
        timesteps = scheduler.timesteps
        unet_timesteps = timesteps.to(self.device)
        start_at = self._start_index(items, scheduler, steps)
        timesteps, unet_timesteps = timesteps[start_at:], unet_timesteps[start_at:]
        noise = self._noise(per_take, seeds, frames)
        latents = self._start_latents(per_take, scheduler, noise, timesteps, start_at)
        held = self._held(per_take, frames)
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            if is_cancelled is not None and is_cancelled():
                raise Cancelled("cancelled during rendering")
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = self._run_unet(model_input, unet_timesteps[i], labels)
            if guided:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + scale * (cond - uncond)
            latents = scheduler.step(noise_pred, t, latents).prev_sample
            if held is not None:
                latents = self._hold(
                    held, latents, scheduler=scheduler, noise=noise, timesteps=timesteps, i=i
                )
            if on_step is not None:
                on_step(i + 1, total)
        if is_cancelled is not None and is_cancelled():
            raise Cancelled("cancelled during rendering")
        unet_s = time.perf_counter() - text_done
        return latents, {"text": text_done - started, "unet": unet_s, "steps": float(total)}

    # -- audio in: conditioning, starts and held regions (musicldm_core.audio_in) ----------------

    def _conditioning(self, per_take: Sequence[RenderItem]) -> torch.Tensor:
        """Each take's class-label embedding: its prompt's, or the blend / like / morph mix.

        MusicLDM conditions on CLAP's unit-norm joint embedding, where text and audio share the
        space, so a mix is a weighted sum renormalised to unit length. An item with nothing to
        mix keeps its prompt's embedding bit for bit (morph 0 is the prompt; morph 1 is
        ``morph_to``)."""
        prompts = [item.prompt for item in per_take]
        extra = [p for item in per_take for p, _ in item.blend]
        extra += [item.morph_to for item in per_take if item.morph_to is not None]
        embeds = self.encode_text(prompts)
        liked = any(item.like is not None and item.like_weight > 0 for item in per_take)
        if not extra and not liked:
            return embeds
        rows = []
        for item, embed in zip(per_take, embeds, strict=True):
            rows.append(self._mix(item, embed))
        return torch.stack(rows)

    def _mix(self, item: RenderItem, embed: torch.Tensor) -> torch.Tensor:
        if item.morph_to is not None and item.morph >= 1.0:
            return self.encode_text([item.morph_to])[0]
        mixed = False
        vector = embed.float()
        weights = [w for _, w in item.blend if w > 0]
        if weights:
            others = self.encode_text([p for p, w in item.blend if w > 0]).float()
            w = torch.tensor(weights, dtype=torch.float32, device=vector.device)
            vector = (vector + (w[:, None] * others).sum(0)) / (1.0 + w.sum())
            mixed = True
        if item.like is not None and item.like_weight > 0:
            like = item.like.to(vector.device, torch.float32)
            vector = (1.0 - item.like_weight) * _unit(vector) + item.like_weight * _unit(like)
            mixed = True
        if item.morph_to is not None and item.morph > 0:
            target = self.encode_text([item.morph_to])[0].float()
            vector = (1.0 - item.morph) * _unit(vector) + item.morph * target
            mixed = True
        return _unit(vector).to(self.dtype) if mixed else embed

    def _noise(
        self, per_take: Sequence[RenderItem], seeds: Sequence[int], frames: int
    ) -> torch.Tensor:
        """Each take's starting noise: its seed's draw, slerped toward its morph seed's.

        The slerp runs on the CPU draws, before the one copy to the device: it reads its angle
        back, which on a GPU would be a sync, and the same seeds then give the same start on
        every device."""
        morphs = [
            (k, item.morph_seeds[k % len(item.morph_seeds)], item.morph)
            for k, item in enumerate(per_take)
            if item.morph_seeds and item.morph_to is not None and item.morph > 0
        ]
        if not morphs:
            return self.initial_noise(seeds, frames)
        shape = self.latent_shape(frames)
        noise = draws(seeds, shape)
        toward = draws([seed for _, seed, _ in morphs], shape)
        for row, (k, _seed, position) in enumerate(morphs):
            noise[k] = slerp(noise[k], toward[row], position)
        return noise.to(self.device, self.dtype)

    def _start_index(self, items: Sequence[RenderItem], scheduler: Any, steps: int) -> int:
        """Where in the schedule a variation starts (SDEdit): ``int(steps * strength)`` steps
        from the end, in the scheduler's timesteps (Heun lists most timesteps twice)."""
        strengths = {item.strength for item in items if item.start is not None}
        strengths.discard(None)
        if not strengths:
            return 0
        if len(strengths) > 1:
            raise ValueError(f"items of one batch must share their strength, got {strengths}")
        strength = strengths.pop()
        assert strength is not None
        if strength >= 1.0:
            return 0  # a fresh render: the start is ignored (strength 1 = text-only render)
        run = min(int(steps * strength), steps)
        order = int(getattr(scheduler, "order", 1))
        start_at = min((steps - run) * order, len(scheduler.timesteps))
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start_at)
        return start_at

    def _start_latents(
        self,
        per_take: Sequence[RenderItem],
        scheduler: Any,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
        start_at: int,
    ) -> torch.Tensor:
        """Pure noise at the schedule's top, or (a variation) the start noised to its first
        timestep; with no timesteps left (strength 0), the start itself."""
        if start_at == 0:
            return noise * scheduler.init_noise_sigma
        starts = torch.cat([self._start_of(item, noise.shape) for item in per_take])
        if len(timesteps) == 0:
            return starts
        signal, spread = noise_levels(scheduler, timesteps[:1])
        return signal * starts + spread * noise

    def _start_of(self, item: RenderItem, shape: Sequence[int]) -> torch.Tensor:
        if item.start is None:
            raise ValueError("a variation item needs start latents")
        start = item.start.to(self.device, self.dtype)
        if tuple(start.shape[1:]) != tuple(shape[1:]):
            raise ValueError(f"start latents {tuple(start.shape)} do not match {tuple(shape)}")
        return start

    def _held(
        self, per_take: Sequence[RenderItem], frames: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(known latents, keep weights (B, 1, T, 1)) for repaint and continue, or None."""
        if not any(item.mask is not None for item in per_take):
            return None
        shape = self.latent_shape(frames)
        known, keep = [], []
        for item in per_take:
            if item.mask is None:
                known.append(torch.zeros(shape, device=self.device, dtype=self.dtype))
                keep.append(torch.zeros(shape[2], device=self.device, dtype=self.dtype))
                continue
            known.append(self._start_of(item, shape))
            mask = item.mask.to(self.device, self.dtype)
            if mask.shape != (shape[2],):
                raise ValueError(f"mask of {tuple(mask.shape)} for {shape[2]} latent frames")
            keep.append(1.0 - mask)
        return torch.cat(known), torch.stack(keep).view(len(per_take), 1, shape[2], 1)

    def _hold(
        self,
        held: tuple[torch.Tensor, torch.Tensor],
        latents: torch.Tensor,
        *,
        scheduler: Any,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
        i: int,
    ) -> torch.Tensor:
        """RePaint: after step ``i`` the kept region becomes the known latents noised to the
        next timestep (the take's own noise, so a seed still fixes the result), or the known
        latents themselves after the last step."""
        known, keep = held
        if i + 1 < len(timesteps):
            signal, spread = noise_levels(scheduler, timesteps[i + 1 : i + 2])
            known = signal * known + spread * noise
        return latents + keep * (known - latents)

    def component_dtype(self, name: str) -> torch.dtype:
        """The dtype the ``vae`` or ``vocoder`` runs in: the engine's, or float32 after a half
        precision overflow (:meth:`run_stage`)."""
        weight = next(getattr(self, name).parameters(), None)
        return self.dtype if weight is None else weight.dtype

    def run_stage(self, name: str, run: Callable[[], _Out], stage: str) -> _Out:
        """``run()`` of the ``vae`` or ``vocoder``, checked finite. A half-precision one whose
        output holds NaN or infinity (an activation past float16's 65504) is moved to float32,
        logged once, and run again: from then on that stage costs a little more and the audio
        stays finite. Non-finite in float32 is a :class:`ModelError` naming ``stage``."""
        out = run()
        if _is_finite(out):
            return out
        dtype = self.component_dtype(name)
        if dtype in (torch.float16, torch.bfloat16):
            log.warning(
                "the %s gave NaN or infinity in %s: it runs in float32 from now on "
                "(a little slower; --dtype fp32 runs everything in float32)",
                name,
                str(dtype).removeprefix("torch."),
            )
            getattr(self, name).to(torch.float32)
            out = run()
        _check_finite(out, stage)
        return out

    def decode_latents(self, latents: torch.Tensor, *, chunk: int = 4) -> torch.Tensor:
        """Latents to mel spectrograms ``(batch, frames, mel_bins)`` with the VAE, in chunks."""
        latents = 1 / self.vae.config.scaling_factor * latents.to(self.component_dtype("vae"))
        parts = [
            self.vae.decode(latents[i : i + chunk]).sample for i in range(0, len(latents), chunk)
        ]
        return torch.cat(parts).squeeze(1)

    def vocode(self, mel: torch.Tensor, *, samples: int, chunk: int = 4) -> np.ndarray:
        """Mel spectrograms to waveforms ``(batch, samples)`` float32 at the model's rate.

        HiFi-GAN returns a few samples more than frames × hop; they are trimmed.
        """
        mel = mel.to(self.component_dtype("vocoder"))
        parts = [self.vocoder(mel[i : i + chunk]) for i in range(0, len(mel), chunk)]
        waves = torch.cat(parts)[:, :samples].float().cpu().numpy()
        return np.ascontiguousarray(waves, dtype=np.float32)

    # -- ranking -------------------------------------------------------------------------------

    @torch.inference_mode()
    def score(self, prompt: str, waveforms: Sequence[np.ndarray]) -> list[float]:
        """Cosine similarity between each waveform (model rate) and ``prompt``, with CLAP
        (:meth:`embed_audio`)."""
        audio_embeds = self.embed_audio(waveforms, self.model_rate)
        text = torch.nn.functional.normalize(self.encode_text([prompt]).float(), dim=-1)
        return [float(x) for x in (audio_embeds @ text[0]).cpu()]

    @torch.inference_mode()
    def embed_audio(self, waveforms: Sequence[np.ndarray], rate: int) -> torch.Tensor:
        """CLAP's unit-norm audio embeddings ``(len(waveforms), projection_dim)`` float32, of
        mono waveforms at ``rate``, from their first :data:`_RANK_SECONDS` (shorter audio is
        repeated to fill, as CLAP does): what ranking scores and what ``like`` conditions on.

        The features are CLAP's log-mel computed with torch on the engine's device
        (:mod:`.clap_features`), equal to transformers' numpy extractor within float rounding.
        """
        from .dsp import resample

        if self._clap_features is None:
            self._clap_features = ClapFeatures(self.feature_extractor, self.device)
        target_rate = self._clap_features.sampling_rate
        keep = int(_RANK_SECONDS * rate)
        # Cropping to CLAP's 10 s window ourselves keeps the extractor from cropping at random.
        audio = [resample(w[:keep], rate, target_rate) for w in waveforms]
        features = self._clap_features(audio)
        output = self.text_encoder.get_audio_features(input_features=features.to(self.dtype))
        audio_embeds = getattr(output, "pooler_output", output).float()
        return torch.nn.functional.normalize(audio_embeds, dim=-1)

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

    def compile(
        self,
        *,
        mode: str | None = None,
        bucket_frames: int | None = None,
        backend: str | None = None,
    ) -> None:
        """Compile the UNet with ``torch.compile`` (optional fast path; off by default).

        ``mode`` defaults to ``"reduce-overhead"`` on CUDA (CUDA graphs: one launch replays the
        whole UNet forward) and ``"default"`` elsewhere. Each new UNet input shape compiles (or,
        after the first, a shape-generic version is made) on first use, and with CUDA graphs
        records a graph of its own, so lengths are rounded up to a multiple of
        ``bucket_frames`` mel frames (default :data:`COMPILE_FRAME_BUCKET`;
        :meth:`render_frames`): a tempo change then reuses a compiled shape, the render is
        trimmed afterwards. Warm the shapes a set will use at start (:meth:`warmup`), on the
        thread that renders (CUDA-graph trees are per thread). A shape whose compile fails runs
        eager from then on (logged once). The compiled UNet's output equals the eager one's
        within float rounding (a test checks < 1e-4 on the CPU). ``backend`` other than
        Inductor (``"eager"``: Dynamo's tracing and guards only, fast) is for rehearsals and
        tests of the machinery; it ignores ``mode``.
        """
        if self.compiled is not None:
            return
        if backend is not None and backend != "inductor":
            self.unet = torch.compile(self.unet, backend=backend)  # type: ignore[assignment]
            self.compiled = f"backend {backend}"
        else:
            mode = mode or ("reduce-overhead" if self.device.type == "cuda" else "default")
            self.unet = torch.compile(self.unet, mode=mode)  # type: ignore[assignment]
            self.compiled = mode
        bucket = COMPILE_FRAME_BUCKET if bucket_frames is None else bucket_frames
        if bucket <= 0 or bucket % self.vae_factor:
            raise BadRequest(
                f"bucket_frames must be a positive multiple of {self.vae_factor}, got {bucket}",
                key="bucket_frames",
            )
        self.frame_bucket = bucket
        self._eager_shapes.clear()

    def decompile(self) -> None:
        """Back to the eager UNet (after a compile that failed, say), lengths unbucketed."""
        if self.compiled is not None:
            self.unet = self.components.unet
            self.compiled = None
            self.frame_bucket = None
            self._eager_shapes.clear()

    def render_frames(self, frames: int) -> int:
        """The mel frames actually rendered for a clip needing ``frames``: the same uncompiled;
        compiled, rounded up to the next :attr:`frame_bucket` (the caller trims)."""
        bucket = self.frame_bucket
        if bucket is None:
            return frames
        return -(-frames // bucket) * bucket

    def _run_unet(self, sample: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> Any:
        """One UNet prediction, compiled where that works for this input shape.

        A compile (or compiled run) that fails for a shape is logged once and that shape runs
        eager from then on, so a compiler problem met mid-set costs speed, never the jobs.
        """

        def predict(unet: Any) -> torch.Tensor:
            return unet(
                sample, t, encoder_hidden_states=None, class_labels=labels, return_dict=False
            )[0]

        if self.compiled is None:
            return predict(self.unet)
        shape = tuple(sample.shape)
        if shape not in self._eager_shapes:
            try:
                # a CUDA-graph replay overwrites its output buffer, and multistep solvers keep
                # earlier predictions: own a copy
                return predict(self.unet).clone()
            except torch.OutOfMemoryError:
                raise
            except Exception as exc:  # the compiler's own errors have no common base
                self._eager_shapes.add(shape)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                log.warning(
                    "the compiled UNet failed for input %s (%s): that shape runs eager from now on",
                    "x".join(map(str, shape)),
                    first[:300],
                )
        return predict(self.components.unet)  # the eager one

    def warmup(
        self,
        *,
        frames: int | Sequence[int] = 64,
        steps: int = 2,
        scheduler: str = "ddim",
        shapes: Sequence[tuple[int, bool]] = ((1, True),),
    ) -> float:
        """Render throw-away takes so real requests run warm; returns seconds.

        One batch per length in ``frames`` (each through :meth:`render_frames`) and per
        ``(takes, guided)`` in ``shapes``: a guided batch of n takes runs the UNet at batch 2n,
        an unguided one at n. Compiled, this compiles (and records CUDA graphs for) every such
        shape; call it on the thread that will render.
        """
        started = time.perf_counter()
        lengths = [frames] if isinstance(frames, int) else list(frames)
        done: set[tuple[int, int]] = set()
        for length in lengths:
            rendered = self.render_frames(length)
            for takes, guided in shapes:
                unet_batch = takes * (2 if guided else 1)
                if (rendered, unet_batch) in done:
                    continue
                done.add((rendered, unet_batch))
                self.generate(
                    [RenderItem("warm up", "", 2.0 if guided else 1.0, tuple(range(takes)))],
                    frames=rendered,
                    steps=steps,
                    scheduler=scheduler,
                )
        return time.perf_counter() - started
