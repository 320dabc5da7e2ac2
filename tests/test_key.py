"""The ``key`` and ``retake`` options: key detection, exact transposition, bounded retakes.

Tonal material of known keys is synthesised (tests/grooves.py); pitch is measured as the
fundamental of a synthetic tone (a long FFT, peak refined by a parabola), so a transposition
is checked in cents, not by ear. Retakes run the tiny random-weight model, whose noise never
has a beat: every round fails the grid, so ``retake N`` must render N + 1 rounds.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from daemon.wire.contract import check_option
from musicldm_core.conform import MAX_KEY_SHIFT, conform, key_shift_semitones, stretch, warm_up
from musicldm_core.errors import BadRequest
from musicldm_core.grid import analyse
from musicldm_core.render import plan_clip, render_batch
from musicldm_core.spec import KEY_NAMES, ClipSpec, check_key
from musicldm_core.wavfile import read_clip_info
from tests.grooves import chord_progression, groove

RATE = 44100
CENTS = 5.0


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    warm_up()


def _fundamental(audio: np.ndarray, rate: int, near_hz: float) -> float:
    """The frequency (Hz) of the strongest partial within ±15 % of ``near_hz``, from the
    middle half of ``audio`` (away from the edges), to a small fraction of a cent."""
    middle = np.asarray(audio, np.float64)[len(audio) // 4 : -len(audio) // 4]
    size = 16 * len(middle)
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle)), size))
    freqs = np.fft.rfftfreq(size, 1 / rate)
    band = np.flatnonzero((freqs > near_hz / 1.15) & (freqs < near_hz * 1.15))
    i = band[np.argmax(spectrum[band])]
    a, b, c = np.log(spectrum[i - 1 : i + 2])
    return float(freqs[i] + 0.5 * (a - c) / (a - 2 * b + c) * (freqs[1] - freqs[0]))


def _tone(freq: float, seconds: float = 3.0) -> np.ndarray:
    """A harmonic tone (four partials) at ``freq``: what a note of a pad or a bass is made of."""
    t = np.arange(round(seconds * RATE)) / RATE
    wave = np.sum([np.sin(2 * math.pi * freq * h * t) / h for h in range(1, 5)], axis=0)
    return (0.3 * wave).astype(np.float32)


def _cents(got: float, want: float) -> float:
    return 1200.0 * math.log2(got / want)


# --- key names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("F#m", "F#m"),
        ("Bb", "A#"),
        ("C major", "C"),
        ("A minor", "Am"),
        ("ebm", "D#m"),
        ("Gmin", "Gm"),
        ("DM", "D"),
        ("Db major", "C#"),
    ],
)
def test_key_names_in_every_allowed_form(text: str, name: str) -> None:
    assert check_key(text) == name
    assert check_option("key", text) == name  # the OSC option and the config's [defaults]
    assert ClipSpec(prompt="x", key=text).validated().key == name


@pytest.mark.parametrize("bad", ["H", "X#", "Cmaj7", "F##", "C dorian", 3])
def test_a_bad_key_is_refused_naming_the_forms_allowed(bad: object) -> None:
    with pytest.raises(BadRequest, match=r"key must be a note A-G.*F#m, Bb, C major, A minor"):
        ClipSpec(prompt="x", key=bad).validated()  # type: ignore[arg-type]


def test_shifts_are_bounded_to_six_semitones_the_nearer_way() -> None:
    shifts = {key_shift_semitones(found, target) for found in KEY_NAMES for target in KEY_NAMES}
    assert shifts == set(range(-5, MAX_KEY_SHIFT + 1))
    assert key_shift_semitones("C", "A#") == -2 and key_shift_semitones("A#", "C") == 2
    assert key_shift_semitones("C", "F#") == 6 and key_shift_semitones("G", "C#") == 6


# --- detection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["D", "D#", "E", "F", "Bm", "C#m", "Dm", "Gm"])
def test_detects_major_and_minor_keys_of_tonal_material(key: str) -> None:
    found = analyse(chord_progression(key), 22050)
    assert found.key == key
    assert found.key_confidence > 0.1 and found.tonality > 0.9


def test_drums_and_noise_are_not_tonal() -> None:
    rng = np.random.default_rng(3)
    noise = analyse((0.1 * rng.standard_normal(4 * RATE)).astype(np.float32), RATE)
    assert noise.tonality < 0.1
    drums, _ = groove(bpm=110.0, bars=4)
    with_chords, _ = groove(bpm=110.0, bars=4, chords=True)
    assert 0.2 < analyse(drums, RATE).tonality < analyse(with_chords, RATE).tonality


# --- transposition ------------------------------------------------------------------------------


@pytest.mark.parametrize("semitones", [2, -3, 5, -6, 6])
@pytest.mark.parametrize("ratio", [1.0, 0.85, 1.2])
# from 220 Hz up: below, the stretcher's short blocks (46 ms, for tight drums) blur low partials
# whenever the time changes at all (docs/clips.md#key: a known limit, not the transposition's)
@pytest.mark.parametrize("freq", [220.0, 330.0, 880.0])
def test_transposition_lands_within_five_cents(freq: float, ratio: float, semitones: int) -> None:
    out = stretch(_tone(freq), RATE, ratio, transpose_semitones=semitones)
    assert len(out) == round(3.0 * RATE / ratio)  # the stretch's length is kept
    want = freq * 2 ** (semitones / 12)
    assert abs(_cents(_fundamental(out, RATE, want), want)) <= CENTS


def test_transposing_stereo_keeps_channels_and_length() -> None:
    tone = _tone(220.0)
    both = np.stack([tone, 0.5 * tone], axis=1)
    out = stretch(both, RATE, 1.1, transpose_semitones=-2)
    assert out.shape == (round(len(tone) / 1.1), 2)
    assert np.allclose(out[:, 1], 0.5 * out[:, 0], atol=2e-3)


def _chords_spec(**changes: object) -> ClipSpec:
    return replace(ClipSpec(prompt="chords", bars=2, bpm=120.0), **changes)  # type: ignore[arg-type]


def test_conform_transposes_tonal_music_and_measures_in_the_new_key() -> None:
    spec = _chords_spec()
    audio = chord_progression("A", seconds=8.0, rate=RATE)  # no beat: kept unstretched
    done = conform(audio, RATE, spec, plan_clip(spec), key="C")  # A major -> C: +3
    assert done.report.transpose_semitones == 3.0 and done.report.target_key == "C"
    assert analyse(done.audio, RATE).key == "C"
    assert "transposed +3 semitones to C" in done.report.describe()


def test_conform_leaves_noise_a_single_note_and_check_mode_in_their_key() -> None:
    spec = _chords_spec()
    plan = plan_clip(spec)
    noise = np.random.default_rng(0).standard_normal(8 * RATE).astype(np.float32) * 0.1
    kept = conform(noise, RATE, spec, plan, key="F#m")
    assert kept.report.transpose_semitones == 0.0
    assert "not tonal" in (kept.report.key_note or "")
    note = conform(np.tile(_tone(220.0, 2.0), 4), RATE, spec, plan, key="F#m")
    assert note.report.transpose_semitones == 0.0  # one note: no key to be sure of
    assert "key unclear" in (note.report.key_note or "")
    tonal = chord_progression("A", seconds=8.0, rate=RATE)
    checked = conform(tonal, RATE, spec, plan, mode="check", key="C")
    assert checked.report.transpose_semitones == 0.0
    assert "grid check" in (checked.report.key_note or "")
    same = conform(tonal, RATE, spec, plan, key="F#m")  # A major's relative minor
    assert (same.report.key_note or "").startswith("already in F#m")
    # the root note a DAW reads: the delivered key's tonic, or none where no key is clear
    assert (kept.report.root_note, note.report.root_note) == (None, None)
    assert (checked.report.key, checked.report.root_note) == ("A", 69)
    assert (same.report.key, same.report.root_note) == ("A", 69)
    moved = conform(tonal, RATE, spec, plan, key="C")
    assert (moved.report.key, moved.report.root_note) == ("C", 60)


def test_conform_command_key_gives_the_reported_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from daemon.cli import main

    source = tmp_path / "chords in C.wav"
    sf.write(source, chord_progression("C", seconds=8.2, rate=RATE), RATE)
    argv = ["conform", str(source), "--bpm", "120", "--bars", "4", "--out", str(tmp_path / "o")]
    assert main([*argv, "--key", "D major"]) == 0
    captured = capsys.readouterr()
    path = Path(captured.out.strip())
    settings = json.loads(read_clip_info(path)["info"]["comment"])["grid"]
    assert settings["target_key"] == "D" and settings["transpose_semitones"] == 2.0
    assert settings["detected"]["key"] == "C"
    audio, _ = sf.read(path, dtype="float32")
    assert analyse(audio, RATE).key == "D"  # what a listener would name it now
    assert read_clip_info(path)["acid"]["root_note"] == 62  # D4: the DAW knows the loop's key
    assert "transposed +2 semitones to D" in captured.err
    assert main([*argv, "--key", "H"]) == 2
    assert "key must be" in capsys.readouterr().err


# --- retakes ------------------------------------------------------------------------------------


def test_retakes_render_new_seeds_until_the_limit_and_keep_exact_clips(tiny_engine) -> None:  # type: ignore[no-untyped-def]
    spec = ClipSpec(prompt="noise", bars=1, bpm=120.0, steps=2, takes=2, seed=40, retake=2)
    seeds_rendered: list[tuple[int, ...]] = []
    original = tiny_engine.generate

    def generate(items, **kwargs):  # type: ignore[no-untyped-def]
        seeds_rendered.append(items[0].seeds)
        return original(items, **kwargs)

    steps: list[tuple[int, int]] = []
    tiny_engine.generate = generate
    try:
        clips = render_batch(
            tiny_engine, [spec.validated()], on_step=lambda s, t: steps.append((s, t))
        )[0]
    finally:
        del tiny_engine.generate
    assert seeds_rendered == [(40, 41), (42, 43), (44, 45)]  # seed + takes × round
    assert len(clips) == 2 and all(c.retakes == 2 for c in clips)
    assert len({c.seed for c in clips}) == 2 and {c.seed for c in clips} <= set(range(40, 46))
    assert [c.take for c in clips] == [0, 1] and [c.rank for c in clips] == [0, 1]
    out_samples = plan_clip(spec).out_samples
    assert all(len(c.audio) == out_samples for c in clips)  # still an exact clip
    settings = clips[0].settings()
    assert settings["retake"] == 2 and settings["retakes"] == 2
    assert settings["seed"] == clips[0].seed and settings["round"] in (0, 1, 2)
    done = [s for s, _ in steps]
    assert done == sorted(done) and steps[-1] == (6, 6)  # progress counts on over the rounds


def test_no_retake_without_grid_stretch(tiny_engine) -> None:  # type: ignore[no-untyped-def]
    spec = ClipSpec(prompt="noise", steps=2, seed=7, retake=3, grid="check").validated()
    clips = render_batch(tiny_engine, [spec])[0]
    assert len(clips) == 1 and clips[0].retakes == 0 and clips[0].seed == 7


def test_render_command_key_and_retake(
    tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from daemon.cli import main

    monkeypatch.setattr("musicldm_core.testmodels.default_cache_root", lambda: model_cache)
    argv = ["render", "hum", "--model", "tiny", "--steps", "2", "--seed", "3", "--out"]
    argv += [str(tmp_path), "--state", str(tmp_path / "state"), "--key", "Bb minor"]
    assert main([*argv, "--retake", "1"]) == 0
    captured = capsys.readouterr()
    settings = json.loads(read_clip_info(Path(captured.out.strip()))["info"]["comment"])
    assert settings["retake"] == 1 and settings["retakes"] == 1
    assert settings["grid"]["target_key"] == "A#m"
    assert settings["grid"]["transpose_semitones"] == 0.0  # the tiny model's noise: no key
    assert settings["grid"]["key_note"].startswith("not transposed to A#m")
    assert "retakes used 1 of 1" in captured.err
    assert main([*argv, "--retake", "4"]) == 2
    assert "retake must be an integer from 0 to 3" in capsys.readouterr().err


def test_key_and_retake_over_osc_reach_the_file(tiny_engine, tmp_path):
    """Over real UDP: ``key`` and ``retake`` are generate options; the tiny model's noise has no
    beat, so retake 1 renders a second round, and the key it could not reach is said why."""
    from tests.support import RawOsc, running_daemon

    with running_daemon(tiny_engine, tmp_path) as daemon, RawOsc(daemon.address) as raw:
        raw.send("/musicldm/generate", "x", "id", 7, "key", "F#m", "retake", 1, "steps", 2)
        done = raw.wait_for("/musicldm/done", 60)
        assert done[0] == 7
        settings = json.loads(read_clip_info(done[1])["info"]["comment"])
        assert (settings["retake"], settings["retakes"]) == (1, 1)
        assert settings["grid"]["target_key"] == "F#m" and settings["grid"]["key_note"]
        raw.send("/musicldm/generate", "x", "id", 8, "key", "H minor")
        fail = raw.wait_for("/musicldm/fail", 10)
        assert fail[1] == "bad_request" and "key" in fail[2], fail
