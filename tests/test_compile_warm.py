"""The GPU path's CPU-testable parts: CPU timesteps, length buckets, eager fallback, warm-up.

The compile itself is slow on 2 CPU cores, so one test compiles (one small shape set) and is
marked ``slow``; the others use a stand-in for the compiled UNet.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from musicldm_core import engine as engine_module
from musicldm_core.engine import Engine, RenderItem
from musicldm_core.render import batch_key, plan_clip, render_batch
from musicldm_core.spec import ClipSpec


def test_the_scheduler_gets_cpu_timesteps(tiny_engine, monkeypatch):
    """The scheduler indexes its tables with CPU timesteps (no device scalar read per step)."""
    seen: list[torch.device] = []
    real = engine_module.prepare_scheduler

    def spying(*args, **kwargs):
        scheduler = real(*args, **kwargs)
        step = scheduler.step

        def recording_step(noise, t, latents, *a, **k):
            seen.append(t.device if isinstance(t, torch.Tensor) else torch.device("cpu"))
            return step(noise, t, latents, *a, **k)

        scheduler.step = recording_step
        seen.append(scheduler.timesteps.device)
        return scheduler

    monkeypatch.setattr(engine_module, "prepare_scheduler", spying)
    tiny_engine.generate([RenderItem("x", "", 2.0, (1,))], frames=32, steps=3, scheduler="ddim")
    assert len(seen) == 4 and all(d.type == "cpu" for d in seen)


class _FailingCompiled(torch.nn.Module):
    """Stands in for a compiled UNet whose compile fails for one batch size."""

    def __init__(self, inner: torch.nn.Module, bad_batch: int) -> None:
        super().__init__()
        self.inner, self.bad_batch, self.calls = inner, bad_batch, 0

    def forward(self, sample, *args, **kwargs):
        self.calls += 1
        if sample.shape[0] == self.bad_batch:
            raise RuntimeError("BackendCompilerFailed: pretend inductor broke")
        return self.inner(sample, *args, **kwargs)


def test_a_shape_that_fails_to_compile_runs_eager_logged_once(tiny_engine, monkeypatch, caplog):
    items = [RenderItem("fallback", "", 2.0, (3,))]  # guided: UNet batch 2
    eager = tiny_engine.generate(items, frames=32, steps=3, scheduler="ddim")[0][0]
    fake = _FailingCompiled(tiny_engine.components.unet, bad_batch=2)
    monkeypatch.setattr(tiny_engine, "unet", fake)
    monkeypatch.setattr(tiny_engine, "compiled", "default")
    monkeypatch.setattr(tiny_engine, "_eager_shapes", set())
    with caplog.at_level(logging.WARNING, logger="musicldm_core.engine"):
        first = tiny_engine.generate(items, frames=32, steps=3, scheduler="ddim")[0][0]
        second = tiny_engine.generate(items, frames=32, steps=3, scheduler="ddim")[0][0]
    assert np.array_equal(first.waveform, eager.waveform)
    assert np.array_equal(second.waveform, eager.waveform)
    assert fake.calls == 1  # tried once; that shape is eager from then on
    warnings = [r for r in caplog.records if "runs eager" in r.getMessage()]
    assert len(warnings) == 1 and "2x" in warnings[0].getMessage()
    # another shape still goes through the compiled one
    tiny_engine.generate([RenderItem("y", "", 1.0, (3,))], frames=32, steps=2, scheduler="ddim")
    assert fake.calls == 3


def _spec(bpm: float, **kw) -> ClipSpec:
    return ClipSpec(prompt="bucket", bars=1, bpm=bpm, steps=2, seed=5, **kw).validated()


def test_lengths_are_bucketed_only_when_compiled(tiny_engine, monkeypatch):
    a, b = _spec(120.0, grid="off"), _spec(124.0, grid="off")
    pa, pb = plan_clip(a), plan_clip(b)
    assert pa.frames != pb.frames
    assert batch_key(a, pa) != batch_key(b, pb)  # uncompiled: each tempo its own length
    assert batch_key(a, pa, bucket=64) == batch_key(b, pb, bucket=64)
    assert batch_key(a, pa, bucket=64)[0] % 64 == 0 and batch_key(a, pa, bucket=64)[0] >= pa.frames
    assert tiny_engine.frame_bucket is None and tiny_engine.render_frames(pa.frames) == pa.frames

    plain = render_batch(tiny_engine, [a])[0][0]
    rendered: list[int] = []
    generate = tiny_engine.generate

    def recording(items, *, frames, **kw):
        rendered.append(frames)
        return generate(items, frames=frames, **kw)

    monkeypatch.setattr(tiny_engine, "generate", recording)
    again = render_batch(tiny_engine, [a])[0][0]
    assert rendered == [pa.frames] and np.array_equal(plain.audio, again.audio)  # unchanged

    monkeypatch.setattr(tiny_engine, "frame_bucket", 64)  # what compile() sets
    clips = render_batch(tiny_engine, [a, b])  # two tempi, one batch, one bucket
    assert rendered[-1] == batch_key(a, pa, bucket=64)[0]
    for clip, plan in zip(clips, (pa, pb), strict=True):
        assert len(clip[0].audio) == plan.out_samples  # trimmed back to the exact clip


@pytest.mark.slow
def test_after_warm_up_the_warmed_shapes_do_not_compile_again():
    """``--compile``'s promise on the CPU: warm-up compiles, later jobs of those shapes don't.

    Slow (a compile on 2 cores: tens of seconds), so one small shape set: 1 and 2 takes,
    guided and not (UNet batches 1, 2, 4), one length bucket, two tempi in it.
    """
    from torch._dynamo.utils import counters

    engine = Engine.load("tiny", device="cpu")
    engine.compile(bucket_frames=64)
    spec = _spec(120.0, grid="off")
    frames = plan_clip(spec).frames
    shapes = [(1, True), (1, False), (2, True), (2, False)]
    engine.warmup(frames=[frames], steps=2, shapes=shapes)
    compiled = sum(counters["stats"].values()), dict(counters["recompiles"])
    assert not engine._eager_shapes, "nothing may have fallen back to eager"
    for takes, guidance in ((2, 3.0), (1, 1.0), (2, 1.0), (1, 2.5)):
        for bpm in (120.0, 123.0):  # one bucket
            s = dataclasses.replace(_spec(bpm, grid="off"), takes=takes, guidance=guidance)
            render_batch(engine, [s])
    assert (sum(counters["stats"].values()), dict(counters["recompiles"])) == compiled


def test_the_daemon_compiles_and_warms_on_the_worker_thread(tiny_engine, tmp_path, monkeypatch):
    """``--compile``: compile and warm-up run on the thread that renders, for every batch of
    ``compile_batches`` guided and not, before the worker's first job."""
    import threading

    from tests.support import running_daemon

    calls: list[tuple] = []

    def compile_(**kw):
        calls.append(("compile", threading.current_thread().name))

    release = threading.Event()

    def warmup(**kw):
        calls.append(("warmup", threading.current_thread().name, kw["shapes"], len(kw["frames"])))
        release.wait(30)  # held here, status says why jobs wait
        return 0.0

    monkeypatch.setattr(tiny_engine, "compile", compile_)
    monkeypatch.setattr(tiny_engine, "warmup", warmup)
    with running_daemon(tiny_engine, tmp_path, compile=True, compile_batches="1,2") as daemon:
        assert daemon.status()["worker"] == "warming"
        release.set()
        assert daemon.worker.warmed.wait(30)
        assert daemon.status()["worker"] == "ok"
    shapes = [(1, True), (1, False), (2, True), (2, False)]
    assert calls == [("compile", "worker"), ("warmup", "worker", shapes, 3)]


def test_compile_batches_is_checked_with_a_clear_error():
    from daemon.config import load_config
    from musicldm_core.errors import BadRequest

    assert load_config(None, {"compile_batches": "4,1,2"}).compile_batches == (1, 2, 4)
    assert load_config(None, {"compile_batches": "auto"}).compile_batches is None
    with pytest.raises(BadRequest, match=r"compile-batches must be an integer from 1 to 64"):
        load_config(None, {"compile_batches": "1,x"})
