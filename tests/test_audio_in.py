"""Audio in (issue 12), engine side: variations, repaints, continuations, blends and morphs.

Tiny model, real geometry, CPU; short clips (bars of 1 s at 240 BPM) and 2-4 steps.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicldm_core import audio_in
from musicldm_core.dsp import step_percentile
from musicldm_core.engine import RenderItem
from musicldm_core.errors import BadRequest, Cancelled
from musicldm_core.render import batch_key, plan_clip, render_batch
from musicldm_core.spec import MAX_BLENDS, SCHEDULER_NAMES, ClipSpec

RATE = 16000
BAR = RATE  # one bar at 240 BPM in 4/4 lasts 1 s


def _spec(**kwargs) -> ClipSpec:
    base = {
        "prompt": "warm lofi piano",
        "bars": 4,
        "bpm": 240,
        "steps": 4,
        "seed": 5,
        "grid": "off",
        "sample_rate": RATE,
    }
    return ClipSpec(**{**base, **kwargs}).validated()


@pytest.fixture(scope="module")
def source(tiny_engine, tmp_path_factory) -> Path:
    """A 4-bar clip of the tiny model itself, as a slot's playing take would be."""
    clip = render_batch(tiny_engine, [_spec(seed=11)])[0][0]
    path = tmp_path_factory.mktemp("audio-in") / "source.wav"
    sf.write(path, clip.audio, RATE, subtype="FLOAT")
    return path


def _raw(engine, spec: ClipSpec) -> tuple[np.ndarray, audio_in.Prepared | None, int]:
    """The engine's raw waveform for ``spec`` (at the source's level), its prepared source, and
    the frames rendered."""
    plan = plan_clip(spec, model_rate=engine.model_rate, hop=engine.hop)
    prepared = audio_in.prepare(engine, spec, plan)
    assert spec.seed is not None
    seeds = RenderItem.seeds_for(spec.seed, spec.takes)
    morph = RenderItem.seeds_for(spec.morph_seed_used or 0, spec.takes)
    item = audio_in.item_for(spec, seeds, morph, prepared)
    take = engine.generate([item], frames=plan.frames, steps=spec.steps, scheduler=spec.scheduler)
    wave = take[0][0].waveform * audio_in.level_of(prepared, spec)
    if prepared is not None:
        wave = audio_in.splice_repaint(wave, prepared)
    return wave, prepared, plan.frames


# --- the mel and the VAE ------------------------------------------------------------------------


def test_log_mel_has_the_checkpoint_geometry():
    tone = np.sin(2 * np.pi * 1000 * np.arange(RATE) / RATE).astype(np.float32)
    mel = audio_in.log_mel(tone, frames=100)
    assert mel.shape == (1, 100, 64)
    # a 1 kHz tone is brightest in the band around 1 kHz (slaney mel: band ~20 of 64 below 8 kHz)
    assert 15 <= int(mel[0, 50].argmax()) <= 25
    assert float(mel.min()) >= np.log(audio_in.LOG_FLOOR) - 1e-6


def test_encode_gives_latents_of_the_unet_shape(tiny_engine):
    wave = np.random.default_rng(0).standard_normal(2 * RATE).astype(np.float32) * 0.1
    encoded = audio_in.encode(tiny_engine, wave, frames=200)
    assert tuple(encoded.latents.shape) == (1, 8, 50, 16)
    back = audio_in.decode(tiny_engine, encoded, samples=200 * 160)
    assert back.shape == (200 * 160,) and np.isfinite(back).all()


# --- variation (SDEdit) -------------------------------------------------------------------------


def test_strength_1_equals_the_plain_render_of_the_seed(tiny_engine, source):
    plain = render_batch(tiny_engine, [_spec()])[0][0].audio
    varied = render_batch(tiny_engine, [_spec(source=str(source), strength=1.0)])[0][0].audio
    np.testing.assert_allclose(varied, plain, atol=1e-6)


def test_strength_0_returns_the_inputs_round_trip(tiny_engine, source):
    spec = _spec(source=str(source), strength=0.0)
    wave, prepared, frames = _raw(tiny_engine, spec)
    assert prepared is not None and prepared.encoded is not None
    trip = audio_in.decode(tiny_engine, prepared.encoded, samples=frames * tiny_engine.hop)
    np.testing.assert_allclose(wave, trip, atol=1e-5)


def test_intermediate_strengths_move_monotonically_away_from_the_input(
    tiny_engine, source, monkeypatch
):
    """SDEdit re-runs the last ``strength`` of the schedule from the source's latents noised to
    that point: the more of it is re-run, the further the result lands from the source.

    Measured where the algorithm works: the final latents (what the VAE decodes), as their
    distance from the source's latents relative to the source's norm, for each of three seeds.
    Not the audio: the tiny model's random VAE decoder and vocoder saturate, so every latent
    that is not the source's own decodes to about the same distance in sound (0 / 0.39 / 0.37 /
    0.40 / 0.43 in mel for strengths 0 … 1), which says nothing about the sampler. 8 steps, so
    the strengths 0, 0.25, 0.5, 0.75, 1 re-run 0, 2, 4, 6 and all 8 steps: distinct starts.
    """
    import torch

    decoded: list[torch.Tensor] = []
    decode = tiny_engine.decode_latents

    def spy(latents, **kwargs):  # type: ignore[no-untyped-def]
        decoded.append(latents.detach().clone())
        return decode(latents, **kwargs)

    monkeypatch.setattr(tiny_engine, "decode_latents", spy)
    steps, seeds = 8, (1, 2, 3)
    first = _spec(source=str(source), strength=0.5, steps=steps, bars=2)
    plan = plan_clip(first, model_rate=tiny_engine.model_rate, hop=tiny_engine.hop)
    prepared = audio_in.prepare(tiny_engine, first, plan)
    assert prepared is not None and prepared.encoded is not None
    origin = prepared.encoded.latents.float()
    rows = []  # rows[strength][seed]
    for strength in (0.0, 0.25, 0.5, 0.75, 1.0):
        spec = replace(first, strength=strength)
        item = audio_in.item_for(spec, seeds, seeds, prepared)
        seen: list[tuple[int, int]] = []
        tiny_engine.generate(
            [item],
            frames=plan.frames,
            steps=steps,
            scheduler=spec.scheduler,
            on_step=lambda i, n, seen=seen: seen.append((i, n)),
            rank=False,
        )
        assert len(seen) == int(steps * strength)  # the steps re-run
        final = decoded[-1].float()
        rows.append((final - origin).flatten(1).norm(dim=1) / origin.norm())
    distances = torch.stack(rows)  # (strengths, seeds)
    assert float(distances[0].max()) < 1e-6  # strength 0 is the source's own latents
    for seed, column in zip(seeds, distances.T, strict=True):
        assert all(a < b for a, b in itertools.pairwise(column.tolist())), (seed, distances)
    means = distances.mean(dim=1).tolist()
    assert all(a < b for a, b in itertools.pairwise(means)), means


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
def test_variation_and_repaint_work_with_every_scheduler(tiny_engine, source, scheduler):
    steps = 3
    half = _spec(source=str(source), strength=0.5, scheduler=scheduler, steps=steps)
    seen: list[tuple[int, int]] = []
    clip = render_batch(tiny_engine, [half], on_step=lambda i, n: seen.append((i, n)))[0][0]
    assert len(clip.audio) == 4 * BAR and np.isfinite(clip.audio).all()
    assert seen[-1] == (1, 1)  # int(3 × 0.5) = 1 step from the end of the schedule
    repaint = _spec(source=str(source), repaint=(2, 2), scheduler=scheduler, steps=steps)
    assert np.isfinite(render_batch(tiny_engine, [repaint])[0][0].audio).all()


def test_variations_batch_with_their_own_seeds_and_can_be_cancelled(tiny_engine, source):
    a = _spec(source=str(source), strength=0.5, seed=1)
    b = _spec(source=str(source), strength=0.5, seed=2, takes=2)
    together = render_batch(tiny_engine, [a, b])
    alone = render_batch(tiny_engine, [b])[0]
    assert [c.seed for c in together[1]] == [c.seed for c in alone]
    for x, y in zip(together[1], alone, strict=True):
        np.testing.assert_allclose(x.audio, y.audio, atol=1e-5)
    with pytest.raises(Cancelled):
        render_batch(tiny_engine, [a], is_cancelled=lambda: True)


def test_batch_key_separates_modes_and_strengths():
    text, half = _spec(), _spec(source="/x.wav", strength=0.5)
    plan = plan_clip(text)
    keys = {batch_key(s, plan) for s in (text, half, _spec(source="/x.wav", strength=0.25))}
    assert len(keys) == 3
    assert batch_key(half, plan) == batch_key(replace(half, seed=9), plan)


def test_a_source_at_another_tempo_is_put_on_the_grid_before_encoding(
    tiny_engine, tmp_path, monkeypatch
):
    """A groove played at 108 BPM, asked for at 120 BPM (grid stretch): the window the VAE
    encodes is the clip's length with the groove's beats on the 120 BPM grid from sample 0
    (its first bar line, 0.3 s into the file, moved to the start), and the clip says so."""
    from musicldm_core.grid import analyse
    from tests.grooves import groove

    played, _ = groove(bpm=108, bars=3, rate=44100, start_s=0.3, seed=3)
    path = tmp_path / "groove-108.wav"
    sf.write(path, played, 44100)
    windows: list[np.ndarray] = []
    encode = audio_in.encode

    def spy(engine, wave, *, frames):  # type: ignore[no-untyped-def]
        windows.append(np.array(wave))
        return encode(engine, wave, frames=frames)

    monkeypatch.setattr(audio_in, "encode", spy)
    for mode in ({"strength": 0.5}, {"repaint": (2, 2)}):
        spec = _spec(source=str(path), bars=2, bpm=120, grid="stretch", steps=2, **mode)
        clip = render_batch(tiny_engine, [spec])[0][0]
        assert len(clip.audio) == 4 * RATE  # 2 bars at 120 BPM, exact
        plan = plan_clip(spec, model_rate=RATE, hop=tiny_engine.hop)
        prepared = audio_in.prepare(tiny_engine, spec, plan)
        assert prepared is not None and prepared.source_grid is not None
        fit = prepared.source_grid
        assert fit.stretched and fit.ratio == pytest.approx(120 / 108, rel=2e-3)
        assert fit.start_s == pytest.approx(0.3, abs=0.01)  # the groove's first bar line
        assert fit.grid_error_ms is not None and fit.grid_error_ms < 5
        assert clip.grid is not None and "source: " in (clip.grid.note or "")
        assert "stretched ×1.111" in (clip.grid.note or "")
        window = windows[-1]
        assert len(window) == plan.frames * tiny_engine.hop  # the whole window the UNet renders
        found = analyse(window[: 4 * RATE], RATE, target_bpm=120)
        assert found.tempo_bpm == pytest.approx(120, abs=1)
        beats = np.asarray(found.beats_s)
        assert abs(beats[0]) < 0.01  # the bar line at the window's start
        assert np.abs(beats - 0.5 * np.round(beats / 0.5)).max() < 0.01  # every beat on the grid
    # with the grid off the same source is cut as it is: still at 108 BPM
    off = _spec(source=str(path), bars=2, bpm=120, grid="off", strength=0.5, steps=2)
    plan = plan_clip(off, model_rate=RATE, hop=tiny_engine.hop)
    prepared = audio_in.prepare(tiny_engine, off, plan)
    assert prepared is not None and prepared.source_grid is None
    found = analyse(windows[-1][: 4 * RATE], RATE, target_bpm=120)
    assert found.tempo_bpm == pytest.approx(108, abs=1)


# --- repaint ------------------------------------------------------------------------------------


def test_repaint_keeps_the_other_bars_and_changes_the_repainted_one(tiny_engine, source):
    spec = _spec(source=str(source), repaint=(2, 2))
    wave, prepared, frames = _raw(tiny_engine, spec)
    assert prepared is not None and prepared.encoded is not None
    trip = audio_in.decode(tiny_engine, prepared.encoded, samples=frames * tiny_engine.hop)
    edge = round(0.25 * RATE)  # the soft edge (2 latent frames) plus the decoders' reach
    kept = np.r_[0 : BAR - edge, 2 * BAR + edge : 4 * BAR]
    assert np.abs(wave[kept] - trip[kept]).max() < 1e-4
    bar2 = slice(BAR + edge, 2 * BAR - edge)
    assert np.abs(wave[bar2] - trip[bar2]).mean() > 0.1 * np.abs(trip[bar2]).mean()
    clip = render_batch(tiny_engine, [replace(spec, sample_rate=44100)])[0][0]
    assert len(clip.audio) == 4 * 44100  # exact length


# --- continue -----------------------------------------------------------------------------------


def test_continue_gives_exactly_the_new_bars_flowing_from_the_source(tiny_engine, source):
    played, _ = sf.read(source, dtype="float32")
    for loop in (True, False):
        spec = _spec(source=str(source), extend=2, bars=1, loop=loop)
        assert spec.bars == 2
        clip = render_batch(tiny_engine, [spec])[0][0]
        assert len(clip.audio) == 2 * BAR
        join = abs(float(clip.audio[0]) - float(played[-1]))
        assert join <= step_percentile(clip.audio, 99), (loop, join)
        if loop:  # and it still loops on itself
            assert abs(float(clip.audio[0]) - float(clip.audio[-1])) <= step_percentile(
                clip.audio, 99
            )


def test_continue_of_a_short_source_repeats_it_as_context(tiny_engine, tmp_path, source):
    played, _ = sf.read(source, dtype="float32")
    short = tmp_path / "one-bar.wav"
    sf.write(short, played[:BAR], RATE)
    clip = render_batch(tiny_engine, [_spec(source=str(short), extend=1)])[0][0]
    assert len(clip.audio) == BAR


def test_continue_sets_its_level_as_every_clip_does(tiny_engine, source):
    """A continuation's level goes through the one level setter (render.set_level): a reachable
    loudness target is met, and one the peak ceiling stops says so, as for a text clip."""
    from musicldm_core.render import LOUDNESS_TOLERANCE_LU, PEAK_CEILING_DBFS

    reached = render_batch(tiny_engine, [_spec(source=str(source), extend=1, loudness_lufs=-30)])
    clip = reached[0][0]
    assert clip.loudness_lufs == pytest.approx(-30, abs=LOUDNESS_TOLERANCE_LU)
    assert clip.loudness_note is None
    loud = render_batch(tiny_engine, [_spec(source=str(source), extend=1, loudness_lufs=0)])[0][0]
    text = render_batch(tiny_engine, [_spec(bars=1, loudness_lufs=0)])[0][0]
    assert loud.loudness_note == text.loudness_note
    assert loud.loudness_note is not None and "peak ceiling" in loud.loudness_note
    assert float(np.abs(loud.audio).max()) <= 10 ** (PEAK_CEILING_DBFS / 20) + 1e-6
    assert loud.grid is not None and loud.grid.note == "continues the source on its grid"


# --- blends, like and morph ---------------------------------------------------------------------


def test_morph_0_and_1_equal_the_pure_prompts(tiny_engine):
    a = render_batch(tiny_engine, [_spec(prompt="warm lofi piano", seed=5)])[0][0].audio
    b = render_batch(tiny_engine, [_spec(prompt="fast techno drums", seed=77)])[0][0].audio
    morphs = [
        _spec(prompt="warm lofi piano", morph_to="fast techno drums", morph=m, morph_seed=77)
        for m in (0.0, 0.5, 1.0)
    ]
    zero, half, one = (render_batch(tiny_engine, [m])[0][0].audio for m in morphs)
    np.testing.assert_allclose(zero, a, atol=1e-6)
    np.testing.assert_allclose(one, b, atol=1e-6)
    assert np.abs(half - a).mean() > 1e-4 and np.abs(half - b).mean() > 1e-4


def test_blend_and_like_change_the_conditioning(tiny_engine, source):
    plain = render_batch(tiny_engine, [_spec()])[0][0].audio
    blended = render_batch(tiny_engine, [_spec(blend=(("dark ambient pads", 0.5),))])[0][0].audio
    liked = render_batch(tiny_engine, [_spec(like=str(source), like_weight=0.5)])[0][0].audio
    unliked = render_batch(tiny_engine, [_spec(like=str(source), like_weight=0.0)])[0][0].audio
    assert np.abs(blended - plain).mean() > 1e-5
    assert np.abs(liked - plain).mean() > 1e-5
    np.testing.assert_allclose(unliked, plain, atol=1e-6)  # weight 0 is the prompt alone


def test_slerp_keeps_its_ends_and_the_noise_norm():
    import torch

    from musicldm_core.noise import slerp

    a, b = torch.randn(1000), torch.randn(1000)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    assert abs(float(slerp(a, b, 0.5).norm()) - float(a.norm())) < 0.05 * float(a.norm())


# --- validation and errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"blend": (("pads", -0.1),)}, "blend"),
        ({"blend": (("pads", 11),)}, "blend"),
        ({"blend": (("pads",),)}, "blend"),
        ({"blend": (("", 0.5),)}, "blend"),
        ({"blend": tuple(("pads", 0.1) for _ in range(MAX_BLENDS + 1))}, "blend"),
        ({"like": "/x.wav", "like_weight": 1.5}, "like_weight"),
        ({"morph": 0.5}, "morph"),
        ({"morph_to": "pads", "morph": 1.5}, "morph"),
        ({"strength": 0.5}, "from"),
        ({"source": "/x.wav"}, "from"),
        ({"source": "/x.wav", "strength": 0.5, "repaint": (1, 1)}, "repaint"),
        ({"source": "/x.wav", "strength": 1.5}, "strength"),
        ({"source": "/x.wav", "repaint": (3, 5)}, "repaint"),
        ({"source": "/x.wav", "repaint": (3, 2)}, "repaint"),
        ({"source": "/x.wav", "repaint": (1, 1), "seconds": 2.0}, "repaint"),
        ({"source": "/x.wav", "extend": 0}, "extend"),
    ],
)
def test_bad_audio_options_are_refused_naming_the_option(kwargs, key):
    with pytest.raises(BadRequest) as info:
        _spec(**kwargs)
    assert info.value.key == key


def test_audio_modes():
    assert _spec().audio_mode == "text"
    assert _spec(source="/x.wav", strength=0.3).audio_mode == "variation"
    assert _spec(source="/x.wav", repaint=(2, 3)).audio_mode == "repaint"
    assert _spec(source="/x.wav", extend=3).audio_mode == "continue"
    assert _spec(morph_to="pads", morph=0.2).morph_seed_used == 6  # seed + 1


def test_non_audio_missing_and_too_short_files_are_clear_errors(tiny_engine, tmp_path, source):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    with pytest.raises(BadRequest, match=r"notes\.wav is not an audio file") as info:
        render_batch(tiny_engine, [_spec(source=str(text), strength=0.5)])
    assert info.value.key == "from"
    with pytest.raises(BadRequest, match="no audio file"):
        render_batch(tiny_engine, [_spec(source=str(tmp_path / "gone.wav"), strength=0.5)])
    with pytest.raises(BadRequest, match=r"like: .*notes\.wav"):
        render_batch(tiny_engine, [_spec(like=str(text))])
    played, _ = sf.read(source, dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, played[: 2 * BAR], RATE)
    with pytest.raises(BadRequest, match=r"short\.wav lasts 2\.000 s.*at least 4\.000 s"):
        render_batch(tiny_engine, [_spec(source=str(short), strength=0.5)])
    blip = tmp_path / "blip.wav"
    sf.write(blip, played[:100], RATE)
    with pytest.raises(BadRequest, match=r"blip\.wav lasts"):
        render_batch(tiny_engine, [_spec(source=str(blip), extend=1)])


def test_a_like_reference_is_read_once_until_it_changes(tiny_engine, source, tmp_path, monkeypatch):
    """An evolving set reuses its ``like``: the embedding is kept per file (path, time, size),
    equal to a fresh one, and read again when the file changes."""
    import os
    import shutil

    import torch

    reference = tmp_path / "like.wav"
    shutil.copy(source, reference)
    reads: list[str] = []
    real_read = audio_in.read_audio

    def counting(path, **kw):
        reads.append(str(path))
        return real_read(path, **kw)

    monkeypatch.setattr(audio_in, "read_audio", counting)
    first = audio_in.like_embedding(tiny_engine, str(reference))
    again = audio_in.like_embedding(tiny_engine, str(reference))
    assert len(reads) == 1 and torch.equal(first, again)
    wave, rate = real_read(reference)
    assert torch.allclose(first, audio_in.audio_embedding(tiny_engine, wave, rate), atol=1e-6)
    stat = reference.stat()
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    audio_in.like_embedding(tiny_engine, str(reference))
    assert len(reads) == 2
