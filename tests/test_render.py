"""From spec to file: exact lengths, seamless loops, tags, takes, loudness, and the render CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from daemon.cli import main as cli_main
from musicldm_core.beats import clip_samples, plan_render
from musicldm_core.conform import ConformReport, input_samples
from musicldm_core.dsp import (
    integrated_loudness,
    make_loop,
    peak_dbfs,
    protect_peak,
    resample,
    seam_jump,
    step_percentile,
)
from musicldm_core.engine import RenderItem
from musicldm_core.errors import ModelError
from musicldm_core.render import (
    GRID_RENDER_CAP_SECONDS,
    PEAK_CEILING_DBFS,
    batch_key,
    finish,
    plan_clip,
    rank_takes,
    render_batch,
    resolve_seed,
    save_clip,
)
from musicldm_core.spec import ClipSpec
from musicldm_core.wavfile import read_clip_info

FAST = {"steps": 4}


def _raw_waveform(engine: Any, spec: ClipSpec, plan: Any, *, seed: int) -> np.ndarray:
    """The engine's own waveform for ``spec`` at ``seed``, before the clip is made from it."""
    item = RenderItem(spec.prompt, spec.negative_prompt, spec.guidance, (seed,))
    frames, steps, scheduler = plan.frames, spec.steps, spec.scheduler
    return engine.generate([item], frames=frames, steps=steps, scheduler=scheduler)[0][0].waveform


def _spec(**kwargs) -> ClipSpec:
    return resolve_seed(ClipSpec(**{"prompt": "warm lofi piano", **FAST, **kwargs}).validated())


@pytest.mark.parametrize(
    ("bars", "beats", "bpm", "rate"),
    [(1, 4, 120, 44100), (2, 4, 90, 44100), (1, 3, 173.5, 48000), (3, 7, 61, 16000)],
)
def test_clip_has_the_exact_musical_length(tiny_engine, bars, beats, bpm, rate):
    spec = _spec(bars=bars, beats_per_bar=beats, bpm=bpm, sample_rate=rate, seed=1)
    clip = render_batch(tiny_engine, [spec])[0][0]
    assert len(clip.audio) == clip_samples(
        bars=bars, beats_per_bar=beats, bpm=bpm, sample_rate=rate
    )
    assert clip.audio.dtype == np.float32
    assert np.max(np.abs(clip.audio)) <= 10 ** (-1 / 20) + 1e-6  # under the -1 dBFS ceiling


def test_seconds_length_is_exact(tiny_engine):
    clip = render_batch(tiny_engine, [_spec(seconds=2.005, seed=2)])[0][0]
    assert len(clip.audio) == round(2.005 * 44100)


def test_loop_seam_is_no_larger_than_an_ordinary_step(tiny_engine):
    """The jump from the last sample to the first is like any other sample-to-sample change;
    cutting the same render plainly at the loop length jumps much further."""
    seams, naive, typical = [], [], []
    for seed in range(6):
        spec = _spec(bars=1, bpm=120, seed=seed)
        plan = plan_clip(spec)
        take = tiny_engine.generate(
            [RenderItem(spec.prompt, "", 2.0, (seed,))],
            frames=plan.frames,
            steps=4,
            scheduler="dpm++",
        )[0][0]
        loop = finish(take.waveform, plan, spec).audio
        plain = finish(take.waveform, replace(plan, loop=False), spec).audio
        cut = resample(take.waveform, 16000, plan.out_rate)[: plan.out_samples]  # no loop work
        assert len(loop) == len(plain) == plan.out_samples
        seams.append(seam_jump(loop))
        typical.append(step_percentile(loop, 99))
        naive.append(seam_jump(cut))
        assert seam_jump(loop) <= step_percentile(loop, 99)
        assert plain[-1] == 0.0  # a plain cut fades to silence instead
    assert np.mean(naive) > 2 * np.mean(seams), (seams, naive, typical)


def test_equal_power_crossfade_keeps_the_continuation_at_the_seam(tiny_engine):
    spec = _spec(bars=1, bpm=120, seed=9, sample_rate=16000)
    plan = plan_clip(spec)
    take = render_batch(tiny_engine, [spec])[0][0]
    assert take.plan.crossfade_samples > 0
    # sample 0 of the loop is (almost only) the render's continuation past the loop end
    raw = _raw_waveform(tiny_engine, spec, plan, seed=9)
    assert take.audio[0] == pytest.approx(raw[plan.out_samples], abs=1e-4)
    assert take.audio[plan.crossfade_samples + 5] == pytest.approx(
        raw[plan.crossfade_samples + 5], abs=1e-4
    )


def test_takes_are_ranked_and_reproducible(tiny_engine, tmp_path):
    spec = _spec(bars=1, takes=3, seed=50)
    clips = render_batch(tiny_engine, [spec])[0]
    assert sorted(c.seed for c in clips) == [50, 51, 52]
    scores = [c.score for c in clips]
    assert scores == sorted(scores, reverse=True)
    paths = [save_clip(c, tmp_path) for c in clips]
    assert len(set(paths)) == 3
    settings = json.loads(read_clip_info(paths[0])["info"]["comment"])
    assert settings["rank"] == 0 and settings["score"] == pytest.approx(scores[0], abs=1e-4)
    # the best take made again on its own, from its own seed
    again = render_batch(tiny_engine, [replace(spec, takes=1, seed=clips[0].seed)])[0][0]
    assert np.abs(again.audio - clips[0].audio).max() < 1e-3


def test_loudness_target(tiny_engine, tmp_path):
    import pyloudnorm

    clip = render_batch(tiny_engine, [_spec(bars=2, loudness_lufs=-20.0, seed=4)])[0][0]
    measured = pyloudnorm.Meter(44100).integrated_loudness(clip.audio.astype(np.float64))
    assert measured == pytest.approx(-20.0, abs=0.5)
    settings = json.loads(read_clip_info(save_clip(clip, tmp_path))["info"]["comment"])
    assert settings["loudness_target_lufs"] == -20.0
    assert settings["loudness_lufs"] == pytest.approx(-20.0, abs=0.1)
    assert settings["loudness_note"] is None


def test_an_unreachable_loudness_target_is_recorded_as_missed(tiny_engine, tmp_path, caplog):
    """-1 LUFS is out of reach under the -1 dBFS peak ceiling for anything but a square wave:
    the file says what it reached and why, and a warning is logged."""
    clip = render_batch(tiny_engine, [_spec(bars=1, loudness_lufs=-1.0, seed=4)])[0][0]
    path = save_clip(clip, tmp_path)
    audio, rate = sf.read(str(path), dtype="float32")
    reached = integrated_loudness(audio, rate, loop=True)
    assert reached < -2.0  # really missed: the test must not pass on a clip that got there
    assert peak_dbfs(audio) == pytest.approx(-1.0, abs=0.01)  # because the ceiling held it
    settings = json.loads(read_clip_info(path)["info"]["comment"])
    assert settings["loudness_target_lufs"] == -1.0
    assert settings["loudness_lufs"] == pytest.approx(reached, abs=0.05)
    assert settings["loudness_note"] == (
        "target -1 LUFS not reached: limited by the -1 dBFS peak ceiling"
    )
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("peak ceiling" in r.getMessage() for r in warnings)


def test_without_a_loudness_target_nothing_is_claimed(tiny_engine):
    settings = render_batch(tiny_engine, [_spec(seed=4)])[0][0].settings()
    assert settings["loudness_lufs"] is None and settings["loudness_target_lufs"] is None


@pytest.mark.parametrize(
    ("seconds", "bpm", "beats", "tagged_bpm"),
    [(3.0, 124, 6, 120.0), (2.0, 120, 4, 120.0), (0.3, 120, 1, 200.0), (7.77, 97, 13, None)],
)
def test_acid_tags_of_a_seconds_clip_multiply_to_its_length(
    tiny_engine, tmp_path, seconds, bpm, beats, tagged_bpm
):
    """ACID counts whole beats: a seconds clip is tagged as the nearest whole number of beats at
    the tempo that makes them last exactly as long as the file."""
    clip = render_batch(tiny_engine, [_spec(seconds=seconds, bpm=bpm, seed=1)])[0][0]
    path = save_clip(clip, tmp_path)
    tags = read_clip_info(path)
    frames = sf.info(str(path)).frames
    assert tags["acid"]["beats"] == beats
    if tagged_bpm is not None:
        assert tags["acid"]["bpm"] == pytest.approx(tagged_bpm, abs=1e-4)
    # the length a DAW computes from the tags is the file's length (float32 tempo: < 1 sample)
    assert tags["acid"]["beats"] * 60 / tags["acid"]["bpm"] * 44100 == pytest.approx(frames, abs=1)
    settings = json.loads(tags["info"]["comment"])
    assert settings["bpm"] == bpm  # what was asked stays on record
    assert settings["acid_beats"] == beats


def test_acid_tags_of_a_bars_clip_keep_the_tempo_asked(tiny_engine, tmp_path):
    clip = render_batch(tiny_engine, [_spec(bars=2, beats_per_bar=3, bpm=173.5, seed=1)])[0][0]
    tags = read_clip_info(save_clip(clip, tmp_path))
    assert tags["acid"]["bpm"] == pytest.approx(173.5, abs=1e-4)
    assert tags["acid"]["beats"] == 6


def test_a_non_finite_waveform_is_never_finished(tiny_engine):
    spec = _spec(seed=1)
    plan = plan_clip(spec)
    wave = np.zeros(plan.frames * 160, np.float32)
    wave[10] = np.nan
    with pytest.raises(ModelError, match="non-finite"):
        finish(wave, plan, spec)


def test_non_finite_model_output_writes_no_file(tiny_engine, tmp_path, monkeypatch):
    """A NaN from the model fails the render with a model error before anything is saved."""
    real_vae = tiny_engine.vae

    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = real_vae.config

        def decode(self, latents):
            return real_vae.decode(latents / 0.0)  # inf and NaN from here on

    monkeypatch.setattr(tiny_engine, "vae", Exploding())
    with pytest.raises(ModelError, match=r"non-finite .* VAE decoder .*dpm\+\+ sampler at 4"):
        for clip in render_batch(tiny_engine, [_spec(seed=1)])[0]:
            save_clip(clip, tmp_path)
    assert not list(tmp_path.iterdir())


def test_cli_first_clip(tmp_path, model_cache, capsys, monkeypatch):
    monkeypatch.setattr("musicldm_core.testmodels.default_cache_root", lambda: model_cache)

    def args(seed: int) -> list[str]:
        return [
            "render",
            "warm lofi piano",
            "--model",
            "tiny",
            "--bars",
            "2",
            "--bpm",
            "90",
            "--seed",
            str(seed),
            "--out",
            str(tmp_path),
            "--steps",
            "4",
            "-q",
        ]

    assert cli_main(args(3)) == 0
    first = Path(capsys.readouterr().out.strip())
    assert cli_main(args(3)) == 0
    second = Path(capsys.readouterr().out.strip())
    assert cli_main(args(4)) == 0
    other = Path(capsys.readouterr().out.strip())
    assert first != second  # never overwrites
    info = sf.info(str(first))
    assert info.frames == round(2 * 4 * 60 / 90 * 44100) and info.samplerate == 44100
    assert info.subtype == "PCM_24"
    tags = read_clip_info(first)
    assert tags["acid"]["bpm"] == pytest.approx(90) and tags["acid"]["beats"] == 8
    assert tags["loops"] == [(0, info.frames - 1)]
    assert tags["info"]["title"] == "warm lofi piano"
    a, b, c = (sf.read(str(p), dtype="int32")[0] for p in (first, second, other))
    assert np.array_equal(a, b)  # bit-identical audio
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("extra", "message", "code"),
    [
        (["--bars", "0"], "bars must be an integer from 1 to 64", 2),
        (["--bpm", "1000"], "bpm must be a number from 20", 2),
        (["--seconds", "0.01"], "seconds must be a number from 0.04", 2),
        (["--seconds", "31"], "to 30", 2),
        (["--bars", "64", "--bpm", "20"], "clips must last from", 2),
        (["--takes", "9"], "takes must be an integer from 1 to 8", 2),
        (["--steps", "0"], "steps must be", 2),
    ],
)
def test_cli_bad_input_names_the_value(tmp_path, capsys, extra, message, code):
    args = ["render", "x", "--model", "tiny", "--out", str(tmp_path / "o"), "-q", *extra]
    assert cli_main(args) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_cli_empty_prompt_and_unknown_scheduler(tmp_path, capsys):
    assert cli_main(["render", "  ", "--model", "tiny", "--out", str(tmp_path)]) == 2
    assert "prompt is missing or empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["render", "x", "--scheduler", "magic", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "magic" in capsys.readouterr().err


def test_cli_unwritable_folder_fails_before_rendering(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli_main(["render", "x", "--model", "tiny", "--out", str(blocker / "sub"), "-q"]) == 4
    assert "output folder" in capsys.readouterr().err


def test_cli_missing_weights_says_how_to_fetch_them(tmp_path, capsys):
    code = cli_main(["render", "x", "--model", "nobody/not-here", "--out", str(tmp_path), "-q"])
    assert code == 3
    err = capsys.readouterr().err
    assert "could not be downloaded" in err and "--model" in err
    assert not list(tmp_path.iterdir())


# -- the grid in every render -------------------------------------------------------------------


def test_grid_renders_headroom_and_off_renders_the_old_length():
    off = _spec(bars=1, bpm=120, seed=1, grid="off")
    old = plan_render(out_samples=88200, out_rate=44100, loop=True)
    assert plan_clip(off) == old  # grid off: the plan (and so the render) of before
    on = replace(off, grid="stretch")
    plan = plan_clip(on)
    assert (plan.out_samples, plan.crossfade_samples) == (old.out_samples, old.crossfade_samples)
    # the conform's headroom, in model frames: 5.5 s instead of 2.09 s for 1 bar at 120
    assert plan.frames * 160 / 16000 * 44100 >= input_samples(plan, on) + plan.margin_samples
    assert plan.frames % 4 == 0 and 552 <= plan.frames <= 560
    assert batch_key(on, plan) != batch_key(off, plan_clip(off))
    # long clips: the headroom is capped (and a clip longer than the cap gets none)
    four = plan_clip(replace(on, bars=4, bpm=100))
    assert four.frames * 160 / 16000 <= GRID_RENDER_CAP_SECONDS + 0.1
    long = replace(on, bars=8, bpm=120)
    assert plan_clip(long) == plan_clip(replace(long, grid="off"))


def test_grid_off_renders_bit_identical_to_before(tiny_engine):
    """grid off: the old plan, and the take finished exactly as render.finish did before the
    grid (resample, loop, peak ceiling)."""
    spec = _spec(bars=1, bpm=120, seed=5, grid="off", sample_rate=48000)
    plan = plan_clip(spec)
    clip = render_batch(tiny_engine, [spec])[0][0]
    raw = _raw_waveform(tiny_engine, spec, plan, seed=5)
    audio = make_loop(resample(raw, 16000, 48000), plan.out_samples, plan.crossfade_samples)
    before = protect_peak(audio, PEAK_CEILING_DBFS)[0]
    np.testing.assert_array_equal(finish(raw, plan, spec).audio, before)
    np.testing.assert_allclose(clip.audio, before, atol=1e-4)  # the same render, batched
    assert clip.grid is not None and clip.grid.mode == "off" and clip.grid.grid is None
    assert clip.settings()["grid"]["grid"] == "off"


def test_every_take_reports_its_grid_fit(tiny_engine, tmp_path):
    spec = _spec(bars=1, seed=3)  # grid stretch, the default
    clip = render_batch(tiny_engine, [spec])[0][0]
    assert clip.grid is not None and clip.grid.mode == "stretch"
    # the tiny model's noise has no beat: kept unstretched (cut as today), and says why
    assert not clip.grid.stretched and "kept unstretched" in (clip.grid.note or "")
    assert len(clip.audio) == plan_clip(spec).out_samples
    settings = json.loads(read_clip_info(save_clip(clip, tmp_path))["info"]["comment"])
    assert settings["grid"]["grid"] == "stretch"
    assert settings["grid"]["ratio"] == 1.0 and "detected" in settings["grid"]
    assert "kept unstretched" in settings["grid"]["note"]


def test_takes_on_the_grid_rank_first_then_by_score(tiny_engine):
    spec = _spec(bars=1, takes=3, seed=20)
    clips = render_batch(tiny_engine, [spec])[0]
    assert [c.rank for c in clips] == [0, 1, 2]
    on_grid = ConformReport("stretch", stretched=True, ratio=1.1, grid_error_ms=2.0)
    worst = clips[-1]
    worst.grid = on_grid  # as if the conform had put the lowest-scored take on the grid
    ranked = rank_takes(clips)
    assert ranked[0] is worst and [c.rank for c in ranked] == [0, 1, 2]
    rest = [c.score for c in ranked[1:]]
    assert rest == sorted(rest, reverse=True)  # the others keep the CLAP order


def test_render_cli_takes_grid(tmp_path, model_cache, capsys, monkeypatch):
    monkeypatch.setattr("musicldm_core.testmodels.default_cache_root", lambda: model_cache)
    state = tmp_path / "state"
    argv = ["render", "gridded", "--model", "tiny", "--steps", "2", "--seed", "1"]
    argv += ["--out", str(tmp_path), "--state", str(state), "--grid", "check"]
    assert cli_main(argv) == 0
    captured = capsys.readouterr()
    path = Path(captured.out.strip())
    assert json.loads(read_clip_info(path)["info"]["comment"])["grid"]["grid"] == "check"
    assert "BPM" in captured.err or "no beat" in captured.err
    assert cli_main(["clips", "--state", str(state)]) == 0
    assert "grid check" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["render", "x", "--grid", "loose"])
    assert "invalid choice: 'loose'" in capsys.readouterr().err
