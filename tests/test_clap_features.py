"""The torch CLAP features against transformers' numpy extractor, and ranking unchanged by them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicldm_core.clap_features import ClapFeatures


def _numpy_features(extractor, waveforms: list[np.ndarray]) -> np.ndarray:
    out = extractor(
        waveforms,
        sampling_rate=extractor.sampling_rate,
        return_tensors="np",
        truncation="rand_trunc",
    )
    return np.asarray(out["input_features"], dtype=np.float64)


def _audio(rate: int) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    t = np.arange(int(2.1 * rate)) / rate
    tonal = 0.4 * np.sin(2 * np.pi * 220.0 * t) + 0.2 * np.sin(2 * np.pi * 3305.0 * t)
    chirp = 0.3 * np.sin(2 * np.pi * (100.0 + 900.0 * t) * t)
    return [
        rng.standard_normal(rate * 3).astype(np.float32) * 0.3,  # noise, repeated 3x then padded
        tonal.astype(np.float32),
        chirp[: int(0.7 * rate)].astype(np.float32),  # short: many repeats
        rng.standard_normal(rate * 10).astype(np.float32) * 0.1,  # exactly the 10 s window
    ]


def test_torch_features_equal_the_numpy_extractor(tiny_engine):
    extractor = tiny_engine.feature_extractor
    audio = _audio(int(extractor.sampling_rate))
    expected = _numpy_features(extractor, audio)
    ours = ClapFeatures(extractor)(audio).double().numpy()
    assert ours.shape == expected.shape
    # float32 against float64: a small fraction of a dB wherever there is signal; in spectral
    # nulls near the -100 dB floor float32 rounding shows more, still well under a dB
    error = np.abs(ours - expected)
    audible = expected > -60.0
    assert audible.mean() > 0.5, "the test audio must be mostly above the floor"
    assert error[audible].max() < 0.02
    assert error.max() < 0.5
    assert error.mean() < 1e-3


def test_unsupported_padding_is_refused(tiny_engine):
    class Odd:
        padding = "mirror"

    with pytest.raises(ValueError, match="mirror"):
        ClapFeatures(Odd())


def test_ranking_order_is_unchanged(tiny_engine):
    """Engine.score on the torch features ranks takes as the numpy extractor's features do."""
    extractor = tiny_engine.feature_extractor
    rate = int(extractor.sampling_rate)
    audio = _audio(rate)
    encoder = tiny_engine.text_encoder
    with torch.inference_mode():
        numpy_in = torch.from_numpy(_numpy_features(extractor, audio)).float()
        torch_in = ClapFeatures(extractor)(audio)
        a = encoder.get_audio_features(input_features=numpy_in)
        b = encoder.get_audio_features(input_features=torch_in)
    a = torch.nn.functional.normalize(getattr(a, "pooler_output", a).float(), dim=-1)
    b = torch.nn.functional.normalize(getattr(b, "pooler_output", b).float(), dim=-1)
    text = torch.nn.functional.normalize(tiny_engine.encode_text(["piano"]).float(), dim=-1)[0]
    assert torch.argsort(a @ text).tolist() == torch.argsort(b @ text).tolist()
    assert torch.allclose(a, b, atol=1e-3)


def test_engine_score_uses_the_device_features(tiny_engine):
    waves = [w[:16000] for w in _audio(16000)[:3]]
    scores = tiny_engine.score("piano", waves)
    assert len(scores) == 3 and all(np.isfinite(scores))
