"""Where every option's value comes from, in one place.

A request's option wins; else the ``/musicldm/set`` default (or a MIDI CC's); else the config's
``[defaults]``; else the preset (steps, guidance, scheduler, negative prompt); else the
contract's built-in default (:attr:`daemon.wire.contract.Option.value`); the tempo comes from
whoever owns it (the live session's clock, or the daemon's own tempo without audio).

:class:`Defaults` is written from the OSC thread (``/musicldm/set``) and the MIDI thread (CC),
read from those and from the live code when it builds a slot's spec; a lock keeps the table
consistent. It never touches the model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from daemon.app.inputs import InputSandbox
from daemon.config import DaemonConfig
from daemon.wire.contract import (
    AUDIO_IN,
    DEFAULT_PRESET,
    GENERATE_OPTIONS,
    PLAYBACK_OPTIONS,
    SLOT_OPTIONS,
    check_option,
)
from daemon.wire.requests import GenerateOptions, PlaybackOptions
from musicldm_core.errors import BadRequest
from musicldm_core.render import resolve_seed
from musicldm_core.spec import ClipSpec, Preset
from musicldm_core.wavfile import tagged_bars

__all__ = ["Defaults"]

_PRESET_FIELDS = {
    "steps": "steps",
    "guidance": "guidance",
    "scheduler": "scheduler",
    "negative": "negative_prompt",
}
"""Options whose default is the preset's, and the :class:`Preset` field that holds it."""

Options = GenerateOptions | PlaybackOptions | None


def audio_in_fields(value_of: Callable[[str], Any]) -> dict[str, Any]:
    """The :class:`ClipSpec` audio-in fields from ``value_of(option)`` for each option of
    :data:`~daemon.wire.contract.AUDIO_IN` (``from`` is the field ``source``); an option
    without a value (None) is left out, so the spec's own default stands. ``from`` and ``like``
    come back as given: the caller resolves them (:class:`~daemon.app.inputs.InputSandbox`)."""
    fields = {}
    for key in AUDIO_IN:
        value = value_of(key)
        if value is not None:
            fields["source" if key == "from" else key] = value
    return fields


class Defaults:
    """The defaults table and the resolution of a request's options into a clip spec."""

    def __init__(
        self,
        config: DaemonConfig,
        tempo: Callable[[], float],
        inputs: InputSandbox | None = None,
    ) -> None:
        self._config = config
        self._tempo = tempo
        # where `from` and `like` may read (the output folder alone when none is given)
        self.inputs = inputs or InputSandbox(config.out, config.input_dirs)
        self._set: dict[str, Any] = {}
        self._lock = threading.Lock()

    def set(self, key: str, value: Any) -> Any:
        """Set the default of ``key`` (checked by the contract's rules); returns the value kept.
        ``None`` (``/musicldm/set key`` with no value, or ``''``) removes the default again."""
        if value is None:
            with self._lock:
                self._set.pop(key, None)
            return None
        checked = check_option(key, value, max_seconds=self._config.max_seconds)
        if key == "bpm":
            # The live session owns the tempo (the caller sets it there); a stored bpm default
            # would override the clock for every later clip and slot take.
            return checked
        with self._lock:
            self._set[key] = checked
        return checked

    def given(self) -> dict[str, Any]:
        """The defaults set with ``/musicldm/set`` (or a MIDI CC), by key."""
        with self._lock:
            return dict(self._set)

    def option(self, options: Options, key: str) -> Any:
        """The value ``key`` takes for a request with ``options``: the request's, else the set
        default, else the config's ``[defaults]``; None when none of them gives one."""
        if isinstance(options, GenerateOptions):
            value = options.get(key)  # `from` is the field from_
        else:
            value = getattr(options, key, None)
        if key in AUDIO_IN:
            return value  # per request only: never a default (contract.AUDIO_IN)
        if value is None:
            with self._lock:
                value = self._set.get(key)
        if value is None:
            value = self._config.defaults.get(key)
        return value

    def preset(self, options: Options) -> Preset:
        """The preset a request with ``options`` uses; a name the config lacks is a
        ``bad_request`` naming the presets there are."""
        name = self.option(options, "preset") or DEFAULT_PRESET
        preset = self._config.presets.get(name)
        if preset is None:
            raise BadRequest(
                f"preset must be one of {', '.join(sorted(self._config.presets))}, got {name!r}",
                key="preset",
            )
        return preset

    def resolve(self, options: Options, key: str) -> Any:
        """Like :meth:`option`, then the preset's value, then the contract's built-in one."""
        value = self.option(options, key)
        if value is not None:
            return value
        if key in _PRESET_FIELDS:
            return getattr(self.preset(options), _PRESET_FIELDS[key])
        if key == "bpm":
            return self._tempo()
        if key == "beats":
            return self._config.beats_per_bar
        option = GENERATE_OPTIONS.get(key) or PLAYBACK_OPTIONS.get(key) or SLOT_OPTIONS.get(key)
        return option.value if option is not None else None

    def build_spec(
        self, prompt: str, options: GenerateOptions | None, *, tempo: float | None = None
    ) -> ClipSpec:
        """A validated, seeded spec from request options, set defaults, config and preset.

        ``tempo``: the clock tempo (BPM) where the options and defaults give no ``bpm``; None
        takes the tempo now (the live slots pass the tempo they render for)."""
        self.preset(options)  # an unknown preset is refused before anything else
        bpm = self.option(options, "bpm")
        if bpm is None:
            bpm = self.resolve(options, "bpm") if tempo is None else tempo
        audio_in = self._audio_in(options)
        bars = self.option(options, "bars")
        if bars is None:
            bars = self._source_bars(options, audio_in) or self.resolve(options, "bars")
        spec = ClipSpec(
            prompt=prompt,
            bars=bars,
            beats_per_bar=self.resolve(options, "beats"),
            bpm=bpm,
            seconds=self.option(options, "seconds"),
            seed=self.option(options, "seed"),
            steps=self.resolve(options, "steps"),
            guidance=self.resolve(options, "guidance"),
            negative_prompt=self.resolve(options, "negative"),
            scheduler=self.resolve(options, "scheduler"),
            takes=self.resolve(options, "takes"),
            loop=bool(self.resolve(options, "loop")),
            grid=self.resolve(options, "grid"),
            key=self.option(options, "key"),
            retake=self.resolve(options, "retake"),
            sample_rate=self._config.sample_rate,
            sample_format=self._config.sample_format,
            loudness_lufs=self._config.loudness_lufs,
            name=options.name if options is not None else None,
            **audio_in,
        )
        return resolve_seed(spec.validated(max_seconds=self._config.max_seconds))

    def _source_bars(self, options: GenerateOptions | None, audio_in: dict[str, Any]) -> int | None:
        """A variation or repaint that names no length keeps its source's (the bars its ACID
        tag says, as every clip of ours carries); None where that does not apply."""
        source = audio_in.get("source")
        if source is None or audio_in.get("extend") is not None:
            return None
        if self.option(options, "seconds") is not None:
            return None
        return tagged_bars(source, self.resolve(options, "beats"))

    def _audio_in(self, options: GenerateOptions | None) -> dict[str, Any]:
        """The spec's audio-in fields from the request's own options, with ``from`` and
        ``like`` resolved through the input sandbox to absolute paths: before the job is
        journaled, so the journal and a restart keep the file that was checked."""
        if options is None:
            return {}
        fields = audio_in_fields(options.get)
        for key, field in (("from", "source"), ("like", "like")):
            if field in fields:
                fields[field] = self.inputs.resolve(key, fields[field])
        return fields

    def value_of(self, key: str) -> Any:
        """What a later request would use for option ``key`` (``/musicldm/get``): "" where
        there is no fixed value (``seed`` is random, ``seconds`` and ``slot`` unset)."""
        value = self.resolve(None, key)
        if isinstance(value, bool):
            return int(value)
        return "" if value is None else value
