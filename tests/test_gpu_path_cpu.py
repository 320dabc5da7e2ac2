"""What the GPU path promises that a CPU can prove (issue 13): no host-device traffic inside the
step loop, and half precision through every kind of render.

No transfers in the step loop
    The engine runs its UNet on the ``meta`` device here: a device where tensors have shapes and
    no values, so every read-back (``.item()``, ``bool()``, ``nonzero``) and every copy between
    the host and the device is an operator this test sees (a :class:`TorchDispatchMode`). On a
    GPU each such copy or read is a sync that stalls the launch queue (``torch.cuda.
    set_sync_debug_mode`` in ``benchmarks/gpu_check.py`` is the same check on CUDA). Watched
    from the end of step 1 (the one copy of the timesteps and guidance scales is made before
    the loop) to the end of the last step; what follows the loop (the finite check, the copy of
    the audio to the host) syncs by design. CPU scalars multiplying device tensors are not
    copies (a scalar travels as a kernel argument), so arithmetic with 0-dim CPU tensors is
    allowed.

    diffusers' UniPC sampler copies its sigmas to the device inside ``step`` (upstream code):
    the test holds it to "no traffic from our code" and records that its traffic is UniPC's
    own, so an upstream fix (or a regression elsewhere) shows.

Half precision
    float16 and bfloat16 run on the CPU too, so every render kind (text with ranked takes,
    variation, repaint, continue, like, blend and morph, the grid and a key) is run in both: the
    dtype mismatches that would break a GPU's fp16 default show here.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from musicldm_core.engine import Engine, RenderItem
from musicldm_core.errors import Cancelled
from musicldm_core.spec import SCHEDULER_NAMES, ClipSpec

STEPS = 6
FRAMES = 64

# read-backs: each a sync on a GPU whatever the devices around it
_READ_BACK = {
    "aten._local_scalar_dense.default",
    "aten.is_nonzero.default",
    "aten.nonzero.default",
    "aten.equal.default",
}
# elementwise arithmetic: a 0-dim CPU tensor there is a scalar argument, not a copy
_SCALAR_OK = {
    "aten.add.Tensor",
    "aten.sub.Tensor",
    "aten.mul.Tensor",
    "aten.div.Tensor",
    "aten.pow.Tensor_Tensor",
    "aten.rsub.Tensor",
}


class TransferWatch(TorchDispatchMode):
    """Records every operator that would copy between host and device, or read a device value
    back, while :attr:`armed`; each with the frames of the code that called it."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.seen: list[tuple[str, list[str]]] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if self.armed:
            self._check(func, args, kwargs)
        return func(*args, **kwargs)

    def _check(self, func: Any, args: Any, kwargs: Any) -> None:
        name = str(func)
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        on_device = any(t.device.type == "meta" for t in tensors)
        host = [t for t in tensors if t.device.type == "cpu"]
        moved = kwargs.get("device") is not None and any(
            torch.device(kwargs["device"]).type != t.device.type for t in tensors
        )
        crossing = (
            on_device and host and not (name in _SCALAR_OK and all(t.dim() == 0 for t in host))
        )
        if (on_device and name in _READ_BACK) or crossing or moved:
            frames = [
                f"{Path(f.filename).name}:{f.lineno} {f.name}"
                for f in traceback.extract_stack()
                if "site-packages/torch/" not in f.filename
                and "test_gpu_path_cpu" not in f.filename
            ]
            self.seen.append((name, frames[-4:]))


@pytest.fixture(scope="module")
def meta_engine(model_cache: Path) -> Iterator[Engine]:
    """The tiny model whose UNet (and the prompts' embeddings) live on the meta device."""
    from musicldm_core.loading import quiet_libraries

    quiet_libraries()
    engine = Engine.load("tiny", device="cpu", cache_dir=model_cache)
    engine.encode_text(["dark techno", "", "rain", "choir"])  # cached, then moved with the UNet
    engine.unet.to("meta")
    engine.device = torch.device("meta")
    cache = engine._text_cache._items
    for prompt in list(cache):
        cache[prompt] = cache[prompt].to("meta")
    yield engine


def _items(engine: Engine, kind: str) -> list[RenderItem]:
    shape = engine.latent_shape(FRAMES)
    start = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(shape[2])
    mask[: shape[2] // 2] = 0.0  # the first half kept, the second repainted
    return {
        "text": [RenderItem("dark techno", "", 2.0, (0, 1)), RenderItem("rain", "", 1.0, (4,))],
        "unguided": [RenderItem("dark techno", "", 1.0, (0, 1, 2))],
        "variation": [RenderItem("dark techno", "", 2.0, (0,), start=start, strength=0.6)],
        "repaint": [RenderItem("dark techno", "", 2.0, (0, 1), start=start, mask=mask)],
        "mixed": [
            RenderItem(
                "dark techno",
                "",
                2.0,
                (0,),
                blend=(("rain", 0.5),),
                like=torch.nn.functional.normalize(torch.ones(512), dim=0),
                morph_to="choir",
                morph=0.3,
                morph_seeds=(9,),
            )
        ],
    }[kind]


def _watched_loop(engine: Engine, items: list[RenderItem], scheduler: str) -> TransferWatch:
    watch = TransferWatch()
    steps_seen: list[int] = []
    ended = False

    def on_step(step: int, total: int) -> None:
        nonlocal ended
        steps_seen.append(step)
        watch.armed = step < total
        ended = step == total

    with watch, pytest.raises(Cancelled):
        # cancelled right after the loop: the meta device has no values to decode
        engine.generate(
            items,
            frames=FRAMES,
            steps=STEPS,
            scheduler=scheduler,
            on_step=on_step,
            is_cancelled=lambda: ended,
        )
    assert steps_seen and steps_seen[-1] == len(steps_seen) > 1  # the whole loop ran, watched
    return watch


@pytest.mark.parametrize("kind", ["text", "unguided", "variation", "repaint", "mixed"])
@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_the_step_loop_copies_nothing_between_host_and_device(meta_engine, scheduler, kind):
    watch = _watched_loop(meta_engine, _items(meta_engine, kind), scheduler)
    # ours: the innermost caller of the operator is the engine (not a scheduler it called)
    ours = [(op, where) for op, where in watch.seen if where and "engine.py" in where[-1]]
    assert not ours, f"host-device traffic from our code in the step loop: {ours[:3]}"
    if scheduler == "unipc":
        # upstream: UniPC's step moves its sigmas to the sample's device (a small copy, a sync)
        inner = {where[-1].split(" ")[-1] for _, where in watch.seen}
        assert inner <= {"multistep_uni_p_bh_update", "multistep_uni_c_bh_update"}, inner
    else:
        assert not watch.seen, f"{scheduler}: {watch.seen[:3]}"


def test_the_watch_sees_a_read_back_and_a_copy(meta_engine):
    """The detector itself: an ``.item()`` and a host-to-device copy in the loop are caught."""
    watch = TransferWatch()
    watch.armed = True
    with watch:
        scale = torch.ones(3).to("meta")
        with pytest.raises(Exception):  # noqa: B017 - meta has no values: any error type
            float(scale.sum())
    assert [op for op, _ in watch.seen][:1] == ["aten._to_copy.default"]
    assert any(op == "aten._local_scalar_dense.default" for op, _ in watch.seen)


# -- half precision ----------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["float16", "bfloat16"])
def half_engine(request, model_cache: Path) -> Engine:
    from musicldm_core.loading import quiet_libraries

    quiet_libraries()
    return Engine.load("tiny", device="cpu", dtype=request.param, cache_dir=model_cache)


def _spec(**kwargs: Any) -> ClipSpec:
    base = {"prompt": "warm lofi piano", "bars": 1, "bpm": 240, "steps": 3, "seed": 5}
    return ClipSpec(**{**base, **kwargs}).validated()


def test_every_render_kind_runs_in_half_precision(half_engine, tmp_path):
    from musicldm_core.render import render_batch, save_clip

    first = render_batch(half_engine, [_spec(takes=2, key="Am", scheduler="dpm++")])[0]
    assert len(first) == 2 and first[0].rank == 0
    source = save_clip(first[0], tmp_path)
    kinds = {
        "variation": _spec(source=str(source), strength=0.5, scheduler="euler"),
        "repaint": _spec(source=str(source), repaint=(1, 1), scheduler="heun"),
        "continue": _spec(source=str(source), extend=1, scheduler="ddim"),
        "like": _spec(like=str(source), like_weight=0.4, blend=(("rain", 0.5),), scheduler="unipc"),
        "morph": _spec(morph_to="choir", morph=0.5, morph_seed=9),
    }
    for kind, spec in kinds.items():
        clip = render_batch(half_engine, [spec])[0][0]
        assert clip.audio.dtype == np.float32, kind
        assert np.isfinite(clip.audio).all(), kind
        assert clip.audio.shape[0] == first[0].audio.shape[0], kind  # one bar, exactly


class _OverflowsInHalf(torch.nn.Module):
    """Wraps the VAE or vocoder: NaN out while its weights are half precision (as an activation
    past float16's range would give), the real output in float32."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def _poisoned(self, out: torch.Tensor) -> torch.Tensor:
        half = next(self.inner.parameters()).dtype in (torch.float16, torch.bfloat16)
        return out * torch.nan if half else out

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self._poisoned(self.inner(*args, **kwargs))

    def decode(self, latents: torch.Tensor) -> Any:
        out = self.inner.decode(latents)
        out.sample = self._poisoned(out.sample)
        return out


@pytest.mark.parametrize("stage", ["vae", "vocoder"])
def test_a_half_precision_stage_that_overflows_runs_again_in_float32(
    stage, model_cache, monkeypatch, caplog
):
    engine = Engine.load("tiny", device="cpu", dtype="float16", cache_dir=model_cache)
    monkeypatch.setattr(engine, stage, _OverflowsInHalf(getattr(engine, stage)))
    item = RenderItem("rain", "", 2.0, (3,))
    with caplog.at_level("WARNING", logger="musicldm_core.engine"):
        first = engine.generate([item], frames=FRAMES, steps=2, scheduler="ddim")[0][0]
        again = engine.generate([item], frames=FRAMES, steps=2, scheduler="ddim")[0][0]
    assert np.isfinite(first.waveform).all() and np.isfinite(again.waveform).all()
    assert engine.component_dtype(stage) == torch.float32
    other = "vocoder" if stage == "vae" else "vae"
    assert engine.component_dtype(other) == torch.float16  # only the stage that overflowed
    warned = [r.getMessage() for r in caplog.records if "float32 from now on" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith(f"the {stage} gave NaN or infinity in float16")
    np.testing.assert_array_equal(first.waveform, again.waveform)
