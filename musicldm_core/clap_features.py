"""CLAP's audio features (log-mel spectrograms) computed with torch, on the engine's device.

Ranking takes (:meth:`.engine.Engine.score`) used to run transformers' ``ClapFeatureExtractor``,
which computes its spectrogram frame by frame in numpy float64 on the CPU: 245-273 ms for four
takes, on its own above a 1-bar render's whole budget on a GPU. :class:`ClapFeatures` computes
the same features for the path the engine uses -- ``truncation="rand_trunc"`` on audio the engine
has already cropped to CLAP's 10 s window, padding ``repeatpad`` (or ``repeat``/``pad``) -- in
one batched :func:`torch.stft` on whatever device the audio is on.

What it reproduces (transformers' ``feature_extraction_clap.py`` and ``audio_utils.spectrogram``):
the waveform is repeated whole ``max_length // len`` times and zero-padded to ``max_length``
samples; a centred (reflect-padded) STFT with a periodic Hann window of ``fft_window_size`` and
``hop_length``; the power spectrum through the extractor's own Slaney mel filter bank (taken from
the extractor, not rebuilt, so it is the same matrix), floored at 1e-10 and turned into dB
(``10 log10``, reference 1, no top-dB clipping). The result is ``(batch, 1, frames, mel_bins)``
float32, what ``get_audio_features`` takes. The numpy extractor works in float64; on float32 the
two agree to a few thousandths of a dB on ordinary audio (tests/test_clap_features.py).

Not reproduced: ``fusion`` truncation (the engine never asks for it), and the random crop of audio
longer than ``max_length`` -- such audio is cut to its start here, since the engine crops to 10 s
itself precisely so that ranking does not depend on a random draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["ClapFeatures"]

_MEL_FLOOR = 1e-10  # audio_utils.spectrogram's mel_floor and power_to_db's min_value


class ClapFeatures:
    """The log-mel features of ``extractor`` (a transformers ``ClapFeatureExtractor``) in torch.

    Build once per engine; :meth:`__call__` takes waveforms at ``sampling_rate`` and returns the
    batch of features on ``device``.
    """

    def __init__(self, extractor: Any, device: torch.device | str = "cpu") -> None:
        truncation = getattr(extractor, "truncation", "rand_trunc")
        self.padding: str = str(getattr(extractor, "padding", "repeatpad"))
        if self.padding not in {"repeatpad", "repeat", "pad"}:
            raise ValueError(f"unsupported CLAP padding {self.padding!r}")
        self.configured_truncation = str(truncation)
        self.device = torch.device(device)
        self.sampling_rate = int(extractor.sampling_rate)
        self.hop_length = int(extractor.hop_length)
        self.n_fft = int(extractor.fft_window_size)
        self.max_length = int(extractor.nb_max_samples)
        # the extractor's matrix itself ((n_fft // 2 + 1, mel_bins)), so the bank is identical
        filters = np.asarray(extractor.mel_filters_slaney, dtype=np.float64)
        self.mel_filters = torch.from_numpy(filters).to(self.device, torch.float32)
        self.window = torch.hann_window(self.n_fft, periodic=True, device=self.device)

    def pad(self, waveform: torch.Tensor) -> torch.Tensor:
        """One 1-D waveform to exactly ``max_length`` samples, as the extractor pads it."""
        length = int(waveform.shape[-1])
        if length == 0:
            raise ValueError("cannot rank an empty waveform")
        if length >= self.max_length:
            return waveform[: self.max_length]
        repeats = self.max_length // length
        if self.padding == "repeat":
            waveform = waveform.repeat(repeats + 1)[: self.max_length]
        elif self.padding == "repeatpad":
            waveform = waveform.repeat(repeats)
        return torch.nn.functional.pad(waveform, (0, self.max_length - int(waveform.shape[-1])))

    def __call__(self, waveforms: list[torch.Tensor] | list[np.ndarray]) -> torch.Tensor:
        """Features ``(batch, 1, frames, mel_bins)`` float32 for ``waveforms`` (1-D each)."""
        batch = torch.stack(
            [
                self.pad(torch.as_tensor(w, dtype=torch.float32).to(self.device).reshape(-1))
                for w in waveforms
            ]
        )
        spectrum = torch.stft(
            batch,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            onesided=True,
            return_complex=True,
        )  # (batch, freq, frames)
        power = spectrum.real.square() + spectrum.imag.square()
        mel = torch.einsum("bft,fm->btm", power, self.mel_filters)
        log_mel = 10.0 * torch.log10(mel.clamp_min(_MEL_FLOOR))
        return log_mel.unsqueeze(1)
