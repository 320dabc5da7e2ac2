"""Grid analysis and conform (musicldm_core.grid, musicldm_core.conform) on synthetic grooves.

Grooves of known tempo, swing, start offset and pickup (tests/grooves.py) are conformed to a
target tempo and measured as a listener hears them: the onsets of the conformed clip against
those of the same groove rendered straight at the target tempo, found by the same onset
detector (librosa's, independent of the analysis), so the detector's own bias cancels.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicldm_core.conform import (
    MAX_RATIO,
    Conformed,
    conform,
    cut_as_today,
    input_samples,
    key_shift_semitones,
    stretch,
    warm_up,
)
from musicldm_core.dsp import make_loop, protect_peak, resample
from musicldm_core.grid import analyse, parse_key
from musicldm_core.render import PEAK_CEILING_DBFS, finish, plan_clip
from musicldm_core.spec import ClipSpec
from musicldm_core.wavfile import read_clip_info
from tests.grooves import chord_progression, groove, pad

RATE = 44100
TARGET = 120.0
PHASE_MS = 10.0
SPREAD_MS = 10.0


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()  # librosa's numba code compiles (or loads from its cache) once, here


def _onsets(audio: np.ndarray) -> np.ndarray:
    """Onset times (s) of a clip, by librosa's detector at 1.5 ms hops."""
    import librosa

    lead = 2048  # silence before, so an attack at sample 0 is seen like any other
    padded = np.concatenate([np.zeros(lead, np.float32), audio])
    times = librosa.onset.onset_detect(y=padded, sr=RATE, hop_length=64, units="time")
    return np.asarray(times) - lead / RATE


def _grid_fit(conformed: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """(phase ms, spread ms, share matched) of the conformed clip's onsets against the
    reference's: each reference onset's nearest conformed onset within 40 ms."""
    ref, got = _onsets(reference), _onsets(conformed)
    deltas = []
    for at in ref:
        nearest = got[np.argmin(np.abs(got - at))] if len(got) else math.inf
        if abs(nearest - at) < 0.04:
            deltas.append(nearest - at)
    d = np.array(deltas) * 1e3
    return float(np.median(d)), float(np.std(d)), len(d) / max(1, len(ref))


def _spec(*, bars: int = 2, beats: int = 4, bpm: float = TARGET, loop: bool = True) -> ClipSpec:
    return ClipSpec(prompt="groove", bars=bars, beats_per_bar=beats, bpm=bpm, loop=loop)


def _model_audio(spec: ClipSpec, bpm: float, **kwargs: object) -> np.ndarray:
    """A groove at ``bpm`` long enough for ``spec`` (what the engine will be asked to render)."""
    plan = plan_clip(spec)
    seconds = input_samples(plan, spec) / RATE
    start = float(kwargs.get("start_s", 0.0))  # type: ignore[arg-type]
    bars = math.ceil((seconds - start) / (spec.beats_per_bar * 60 / bpm)) + 1
    audio, _ = groove(bpm=bpm, bars=bars, beats_per_bar=spec.beats_per_bar, **kwargs)  # type: ignore[arg-type]
    return audio


def _reference(spec: ClipSpec, swing: float, chords: bool = True) -> np.ndarray:
    """The same groove played straight at the target tempo, made into the same loop."""
    plan = plan_clip(spec)
    audio, _ = groove(
        bpm=spec.bpm, bars=spec.bars + 1, beats_per_bar=spec.beats_per_bar, swing=swing,
        chords=chords,
    )  # fmt: skip
    if not plan.loop:
        return cut_as_today(audio, plan)
    return make_loop(audio, plan.out_samples, plan.crossfade_samples)


def _conform(spec: ClipSpec, audio: np.ndarray, **kwargs: object) -> Conformed:
    return conform(audio, RATE, spec, plan_clip(spec), **kwargs)  # type: ignore[arg-type]


# --- analysis ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "swing", "start_s", "pickup"),
    [(120.0, 0.5, 0.0, False), (100.0, 0.62, 0.37, False), (141.0, 0.5, 0.6, True)],
)
def test_analysis_finds_tempo_swing_and_the_first_bar_line(bpm, swing, start_s, pickup) -> None:
    audio, _ = groove(bpm=bpm, bars=4, swing=swing, start_s=start_s, pickup=pickup, chords=True)
    found = analyse(audio, RATE, target_bpm=TARGET)
    assert found.tempo_bpm == pytest.approx(bpm, rel=0.002)
    assert found.confidence > 0.6
    # the bar line is where the groove's first bar starts: after the silence and the pickup
    assert found.downbeat_s == pytest.approx(start_s, abs=0.01)
    assert found.swing == pytest.approx(swing, abs=0.03)
    assert found.fit_error_ms is not None and found.fit_error_ms < 5.0


def test_analysis_takes_stereo_at_any_rate() -> None:
    mono, _ = groove(bpm=110.0, bars=3, rate=48000, start_s=0.2)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    found = analyse(stereo, 48000, target_bpm=TARGET)
    assert found.tempo_bpm == pytest.approx(110.0, rel=0.002)
    assert found.downbeat_s == pytest.approx(0.2, abs=0.01)


@pytest.mark.parametrize(
    ("played", "target", "expected"), [(180.0, 90.0, 90.0), (62.0, 120.0, 124.0)]
)
def test_tempo_octave_is_resolved_toward_the_target(played, target, expected) -> None:
    audio, _ = groove(bpm=played, bars=6, start_s=0.1)
    found = analyse(audio, RATE, target_bpm=target)
    assert found.tempo_bpm == pytest.approx(expected, rel=0.003)


def test_silence_and_a_beatless_pad_have_no_clear_beat() -> None:
    silent = analyse(np.zeros(RATE * 3, np.float32), RATE)
    assert silent.tempo_bpm is None and silent.confidence == 0.0 and silent.note == "silent"
    assert analyse(pad(seconds=5.0), RATE, target_bpm=TARGET).confidence < 0.2


@pytest.mark.parametrize("key", ["C", "G", "A#", "Am", "F#m", "Em"])
def test_key_of_tonal_material(key: str) -> None:
    found = analyse(chord_progression(key), 22050)
    assert found.key == key
    assert found.key_confidence > 0.05


def test_key_names_and_shifts() -> None:
    assert parse_key("Bb") == (10, False) and parse_key("f#m") == (6, True)
    assert key_shift_semitones("C", "D") == 2
    assert key_shift_semitones("Am", "C") == 0  # relative keys: no shift
    assert key_shift_semitones("C", "F#m") == -3  # to A major, the relative of F#m
    with pytest.raises(ValueError, match="key must be"):
        parse_key("H")


# --- conform ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bpm", "swing", "start_s", "pickup"),
    [
        (100.0, 0.5, 0.0, False),  # +20 %: sped up
        (108.0, 0.62, 0.37, False),  # swung, starting late
        (132.0, 0.55, 0.6, True),  # a pickup before the first bar line
        (141.0, 0.67, 0.2, False),  # -15 %: slowed down, triplet swing
    ],
)
def test_conformed_grooves_land_on_the_target_grid(bpm, swing, start_s, pickup) -> None:
    spec = _spec()
    audio = _model_audio(spec, bpm, swing=swing, start_s=start_s, pickup=pickup, chords=True)
    done = _conform(spec, audio)
    report = done.report
    assert report.stretched, report.note
    assert report.ratio == pytest.approx(TARGET / bpm, rel=0.003)
    assert len(done.audio) == plan_clip(spec).out_samples
    # started on a bar line of the groove (not a beat or a pickup)
    bar_s = 4 * 60 / bpm
    bars_in = (report.start_s - start_s) / bar_s
    assert abs(bars_in - round(bars_in)) * bar_s < 0.01
    phase, spread, matched = _grid_fit(done.audio, _reference(spec, swing))
    assert abs(phase) <= PHASE_MS
    assert spread <= SPREAD_MS
    # librosa's peak picking may merge the kick on the "and" of 3 with a swung hat 60 ms later
    # in one of the two clips (the kick is there in both: its low end rises at the same time)
    assert matched >= 0.85


@pytest.mark.parametrize("key", [None, "D"])
def test_model_rate_audio_is_stretched_at_its_own_rate_onto_the_grid(key: str | None) -> None:
    """The engine's 16 kHz audio is analysed and stretched at 16 kHz (a third of the work)
    and only the clip's window is resampled: it must land on the grid as well as 44.1 kHz."""
    spec = _spec()
    plan = plan_clip(spec)
    seconds = input_samples(plan, spec) / RATE
    bars = math.ceil((seconds - 0.37) / (4 * 60 / 108.0)) + 1
    audio, _ = groove(bpm=108.0, bars=bars, swing=0.62, start_s=0.37, chords=True, rate=16000)
    done = conform(audio, 16000, spec, plan, key=key)
    assert done.report.stretched, done.report.note
    assert done.report.ratio == pytest.approx(TARGET / 108.0, rel=0.003)
    assert done.report.start_s == pytest.approx(0.37, abs=0.01)
    assert done.report.transpose_semitones == (0.0 if key is None else 2.0)
    assert done.audio.shape == (plan.out_samples,) and done.audio.dtype == np.float32
    phase, spread, matched = _grid_fit(done.audio, _reference(spec, 0.62))
    assert abs(phase) <= PHASE_MS
    assert spread <= SPREAD_MS
    assert matched >= 0.85
    # the stretch's own length contract, at another output rate
    window = audio[: 16000 * 2]
    out = stretch(window, 16000, 1.1, out_rate=RATE)
    assert len(out) == round(len(window) / 1.1 * RATE / 16000)


def test_a_half_time_reading_is_conformed_at_the_asked_tempo() -> None:
    spec = _spec(bpm=90.0)
    audio = _model_audio(spec, 172.0, start_s=0.15)  # a 172 BPM groove asked for at 90
    done = _conform(spec, audio)
    assert done.report.stretched and done.report.grid is not None
    assert done.report.grid.tempo_bpm == pytest.approx(86.0, rel=0.003)
    assert done.report.ratio == pytest.approx(90.0 / 86.0, rel=0.003)


def test_one_beat_clips_are_exact_and_on_the_beat() -> None:
    spec = _spec(bars=1, beats=1)
    done = _conform(spec, _model_audio(spec, 110.0, start_s=0.05))
    assert done.report.stretched, done.report.note
    assert len(done.audio) == plan_clip(spec).out_samples == round(RATE * 60 / TARGET)
    phase, spread, matched = _grid_fit(done.audio, _reference(spec, 0.5))
    assert abs(phase) <= PHASE_MS and spread <= SPREAD_MS and matched >= 0.9


def test_one_shots_and_stereo_keep_their_exact_length() -> None:
    spec = _spec(bars=1, loop=False)
    mono = _model_audio(spec, 112.0, start_s=0.3)
    done = _conform(spec, np.stack([mono, mono], axis=1))
    assert done.report.stretched
    assert done.audio.shape == (plan_clip(spec).out_samples, 2)
    assert done.audio[0, 0] == 0.0 and done.audio[-1, 1] == 0.0  # faded in and out


def test_a_beatless_pad_is_kept_unstretched_and_says_why() -> None:
    spec = _spec()
    plan = plan_clip(spec)
    audio = pad(seconds=input_samples(plan, spec) / RATE)
    done = _conform(spec, audio)
    assert not done.report.stretched and done.report.ratio == 1.0
    assert "kept unstretched" in (done.report.note or "")
    np.testing.assert_array_equal(done.audio, _conform(spec, audio, mode="off").audio)


def test_beyond_the_stretch_limit_the_clip_is_kept_unstretched() -> None:
    spec = _spec()
    done = _conform(spec, _model_audio(spec, 90.0, start_s=0.1))  # ×1.333
    assert not done.report.stretched
    assert "stretch limit" in (done.report.note or "")
    assert done.report.grid is not None
    assert done.report.grid.tempo_bpm == pytest.approx(90.0, rel=0.003)
    inside = _conform(spec, _model_audio(spec, 0.2 + TARGET / MAX_RATIO, start_s=0.1))
    assert inside.report.stretched, inside.report.note


def _finish_as_before(wave: np.ndarray, model_rate: int, plan) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What render.finish made of a waveform before the grid: resample, loop, peak ceiling."""
    audio = make_loop(resample(wave, model_rate, plan.out_rate), plan.out_samples,
                      plan.crossfade_samples)  # fmt: skip
    return protect_peak(audio, PEAK_CEILING_DBFS)[0]


def test_grid_off_is_bit_identical_to_today() -> None:
    spec = _spec()
    plan = plan_clip(spec)
    audio = 0.5 * _model_audio(spec, 104.0, start_s=0.2)  # under the peak ceiling: no gain
    model_wave = np.asarray(audio[::3][: math.ceil(len(audio) / 3)], np.float32)  # ~14.7 kHz
    before = _finish_as_before(model_wave, 14700, plan)
    for mode in ("off", "check"):
        done = conform(model_wave, 14700, spec, plan, mode=mode)
        np.testing.assert_array_equal(done.audio, before)
        assert not done.report.stretched
        finished = finish(model_wave, plan, replace(spec, grid=mode), model_rate=14700)
        np.testing.assert_array_equal(finished.audio, before)
        assert finished.grid is not None and finished.grid.mode == mode
    assert conform(model_wave, 14700, spec, plan, mode="check").report.grid is not None
    # and the default, stretch, did put this 104 BPM groove on the 120 BPM grid
    stretched = finish(model_wave, plan, spec, model_rate=14700)
    assert stretched.grid is not None and stretched.grid.stretched
    assert not np.array_equal(stretched.audio, before)
    # loud audio: the peak ceiling turns grid off's clip down exactly as before
    loud = 4.0 * model_wave
    np.testing.assert_array_equal(
        finish(loud, plan, replace(spec, grid="off"), model_rate=14700).audio,
        _finish_as_before(loud, 14700, plan),
    )


def test_transposes_tonal_material_to_a_key() -> None:
    spec = _spec(bars=4)  # the whole progression: two bars of it (Am, F) could be F major
    audio = _model_audio(spec, 112.0, start_s=0.1, chords=True)  # A minor / C major
    assert analyse(audio, RATE).key in ("C", "Am")
    done = _conform(spec, audio, key="D")
    assert done.report.stretched and done.report.transpose_semitones == 2.0
    assert analyse(done.audio, RATE).key in ("D", "Bm")


def test_bad_arguments_are_refused_by_name() -> None:
    spec = _spec()
    audio = np.zeros(RATE * 6, np.float32)
    with pytest.raises(ValueError, match="grid must be one of stretch, check, off"):
        _conform(spec, audio, mode="loose")
    with pytest.raises(ValueError, match="key must be"):
        _conform(spec, audio, key="X#")
    with pytest.raises(ValueError, match="needed"):
        _conform(spec, audio[:100])
    with pytest.raises(ValueError, match="ratio"):
        stretch(audio, RATE, 0.0)


def test_input_samples_cover_the_slowest_stretch_and_a_bar_of_search() -> None:
    spec = _spec(bars=4)
    plan = plan_clip(spec)
    bar = 4 * 60 / TARGET * RATE
    assert input_samples(plan, spec) >= MAX_RATIO * (plan.needed_samples + bar)
    short = _spec(bars=1, beats=1)
    assert input_samples(plan_clip(short), short) >= 3 * RATE


# --- musicldm-daemon conform --------------------------------------------------------------------


def _conform_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from daemon.cli import main

    code = main(["conform", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_conform_command_puts_a_file_on_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(bars=2)
    source = tmp_path / "20261201-120000_groove_100bpm_4bars_s7.wav"  # one of our clips' names
    sf.write(source, _model_audio(spec, 100.0, start_s=0.37), RATE, subtype="PCM_24")
    code, out, err = _conform_cli(
        [str(source), "--bpm", "120", "--bars", "2", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 0, err
    path = Path(out.strip())
    assert path.parent == tmp_path / "o" and path.is_file()
    # the name says the new tempo only (tools that read a tempo from a name take the first)
    assert path.name.endswith("_20261201-120000_groove_s7_120bpm_2bars_conformed.wav"), path.name
    assert "detected 100.0 BPM" in err and "stretched ×1.200" in err
    assert "first bar line at 0.37" in err
    audio, rate = sf.read(path, dtype="float32")
    assert rate == RATE and len(audio) == plan_clip(spec).out_samples == 2 * 2 * RATE
    tags = read_clip_info(path)
    assert tags["acid"]["bpm"] == pytest.approx(120.0) and tags["acid"]["beats"] == 8
    assert tags["loops"] == [(0, len(audio) - 1)]
    settings = json.loads(tags["info"]["comment"])
    assert settings["grid"]["stretched"] and settings["grid"]["ratio"] == pytest.approx(
        1.2, abs=0.003
    )
    assert settings["source"] == str(source)
    # on the grid as a listener hears it: against the groove played straight at 120 BPM
    phase, spread, matched = _grid_fit(audio, _reference(spec, 0.5))
    assert abs(phase) <= PHASE_MS and spread <= SPREAD_MS and matched > 0.9, (phase, spread)


def test_conform_command_keeps_a_beatless_file_exact_and_unstretched(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(bars=1, loop=False)
    source = tmp_path / "pad.flac"
    sf.write(source, pad(seconds=4.0), RATE)
    argv = [str(source), "--bpm", "120", "--bars", "1", "--no-loop", "--out", str(tmp_path)]
    code, out, err = _conform_cli(argv, capsys)
    assert code == 0, err
    audio, _ = sf.read(Path(out.strip()), dtype="float32")
    assert len(audio) == plan_clip(spec).out_samples
    assert "kept unstretched" in err and "cut from the start" in err


def test_conform_command_refuses_what_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(RATE // 2, np.float32), RATE)
    code, _, err = _conform_cli([str(short), "--bpm", "120", "--bars", "1"], capsys)
    assert code == 2 and "need at least" in err
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    code, _, err = _conform_cli([str(text), "--bpm", "120", "--bars", "1"], capsys)
    assert code == 2 and "cannot read" in err
    code, _, err = _conform_cli([str(short), "--bpm", "1000", "--bars", "1"], capsys)
    assert code == 2 and "bpm must be" in err
    assert not list(tmp_path.glob("*.wav"))[1:]  # nothing written beside the input
