"""Audio outputs: what pulls :meth:`daemon.live.player.Mixer.callback`, buffer after buffer.

* :class:`SoundDeviceOutput` — a PortAudio stream (``sounddevice.OutputStream``) whose own audio
  thread calls the mixer's callback. Opening it without a usable device raises
  :class:`AudioUnavailable` with a message that says what is missing and what to do instead.
* :class:`FileOutput` — for ``--audio-file PATH``: a thread of its own calls the callback at
  real-time pace (or as fast as it can, for tests) and writes each buffer to a WAV file with
  ``soundfile``, in that thread, never in the callback. Sample 0 of the file is the mixer's
  position when the output started (0 for a fresh mixer), so file offsets are transport
  positions.
* :class:`NullOutput` — for ``--no-audio``: nothing pulls the callback, so nothing plays, no
  command is applied and no event comes.

All of them have ``start()``, ``stop()`` and ``describe()`` and work as context managers
(``with`` starts and stops). They are started and stopped by the daemon's main thread. The
mixer's rate is the stream's rate: build the :class:`~daemon.live.player.Mixer` at
:func:`device_rate` for a sound card.

:func:`list_devices` and :func:`probe` answer "what could play here?" without raising, for
``musicldm-daemon audio-devices`` and the status reply. ``sounddevice`` is imported only when
needed, so this module imports even where the PortAudio library is missing.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, TypeVar

import numpy as np
import soundfile

from daemon.live.player import Mixer

__all__ = [
    "AudioOutput",
    "AudioUnavailable",
    "FileOutput",
    "NullOutput",
    "SoundDeviceOutput",
    "device_rate",
    "list_devices",
    "open_output",
    "probe",
]

logger = logging.getLogger(__name__)

_INSTEAD = "run with --no-audio or --audio-file PATH"

_Output = TypeVar("_Output", bound="AudioOutput")


class AudioUnavailable(Exception):
    """No audio output can be opened: no PortAudio, no device, or the device refused the
    settings. The message says which, and how to run without a sound card."""


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class AudioOutput:
    """Base of the outputs: a lifecycle (new → running → stopped) that refuses misuse.

    Subclasses implement ``_start`` and ``_stop``. Called from the daemon's main thread.
    """

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        self._state = _State.NEW

    @property
    def running(self) -> bool:
        """Whether the output has been started and not yet stopped."""
        return self._state is _State.RUNNING

    def start(self) -> None:
        """Start pulling the mixer's callback. An output starts once; a second call raises
        ``RuntimeError``."""
        if self._state is not _State.NEW:
            raise RuntimeError(
                f"{self.describe()}: start() may be called once, it is {self._state.value}"
            )
        self._start()
        self._state = _State.RUNNING

    def stop(self) -> None:
        """Stop pulling and release the device or file; calling it again does nothing."""
        if self._state is _State.STOPPED:
            return
        try:
            self._stop()
        finally:
            self._state = _State.STOPPED

    def describe(self) -> str:
        """One line for logs and status: what plays where."""
        raise NotImplementedError

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Output) -> _Output:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class NullOutput(AudioOutput):
    """No audio (``--no-audio``): nothing pulls the callback, so commands wait in the mixer's
    queue, its position stays at 0 and no ``playing`` event ever comes."""

    def describe(self) -> str:
        return "no audio output (--no-audio)"

    def _start(self) -> None:
        pass

    def _stop(self) -> None:
        pass


class FileOutput(AudioOutput):
    """Pull the mixer from a thread of its own and write every buffer to a WAV file.

    Args:
        path: the WAV file to write (replaced if it exists); ``None`` pulls at the same pace
            and writes nothing (a clock without a sound card).
        mixer: the mixer whose callback it pulls; the file's rate is ``mixer.device_rate``.
        block: frames per callback.
        channels: channels in the file (the mono mix is copied to each).
        realtime: pace the callbacks at real time, each buffer at its due time from
            :meth:`start` on (as a sound card would); ``False``: as fast as possible (tests,
            offline renders).
        subtype: ``soundfile`` subtype; ``"FLOAT"`` keeps every sample exactly.
        max_samples: stop by itself after this many frames (then :meth:`wait` returns);
            ``None``: until :meth:`stop`.

    The file is opened by :meth:`start` (so a bad path raises there) and written and closed in
    the output's thread; after :meth:`stop` or :meth:`wait` it is complete and readable. An error
    while writing stops the thread; it is logged and kept in :attr:`error`.
    """

    def __init__(
        self,
        path: str | Path | None,
        mixer: Mixer,
        block: int = 512,
        channels: int = 2,
        *,
        realtime: bool = True,
        subtype: str = "FLOAT",
        max_samples: int | None = None,
    ) -> None:
        super().__init__(mixer)
        if block < 1 or channels < 1:
            raise ValueError(f"block and channels must be at least 1, got {block} and {channels}")
        if max_samples is not None and max_samples < 0:
            raise ValueError(f"max_samples must be 0 or more, got {max_samples}")
        self.path = None if path is None else Path(path)
        self.block = block
        self.channels = channels
        self.realtime = realtime
        self.subtype = subtype
        self.max_samples = max_samples
        self.samples_written = 0
        """Frames pulled from the mixer (and written, when there is a file) so far."""
        self.first_sample = 0
        """The mixer position at file sample 0."""
        self.late_buffers = 0
        """Buffers pulled after their due time (real-time pace only)."""
        self.error: BaseException | None = None
        """What stopped the thread early, if anything."""
        self._file: soundfile.SoundFile | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._finished = threading.Event()

    def describe(self) -> str:
        target = "nowhere (clock only)" if self.path is None else str(self.path)
        pace = "real time" if self.realtime else "as fast as possible"
        return (
            f"file output to {target}: {self.mixer.device_rate} Hz, {self.channels} ch, "
            f"{self.block}-frame buffers, {pace}"
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the thread ends (``max_samples`` reached, an error, or :meth:`stop`);
        ``True`` if it has. Any thread."""
        return self._finished.wait(timeout)

    def _start(self) -> None:
        if self.path is not None:
            self._file = soundfile.SoundFile(
                self.path,
                mode="w",
                samplerate=self.mixer.device_rate,
                channels=self.channels,
                subtype=self.subtype,
                format="WAV",
            )
        self.first_sample = self.mixer.position
        self._thread = threading.Thread(target=self._run, name="audio-file-output", daemon=True)
        self._thread.start()

    def _stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        buffer = np.zeros((self.block, self.channels), dtype=np.float32)
        seconds_per_buffer = self.block / self.mixer.device_rate
        callback = self.mixer.callback
        started = time.perf_counter()
        count = 0
        try:
            while not self._halt.is_set():
                frames = self.block
                if self.max_samples is not None:
                    frames = min(frames, self.max_samples - self.samples_written)
                    if frames <= 0:
                        break
                if self.realtime:
                    delay = started + count * seconds_per_buffer - time.perf_counter()
                    if delay > 0.0:
                        if self._halt.wait(delay):
                            break
                    elif delay < -seconds_per_buffer:
                        self.late_buffers += 1
                out = buffer[:frames]
                callback(out, frames, None, None)
                if self._file is not None:
                    self._file.write(out)
                self.samples_written += frames
                count += 1
        except BaseException as error:
            self.error = error
            logger.exception("audio file output stopped: %s", self.describe())
        finally:
            if self._file is not None:
                self._file.close()
            self._finished.set()


def _import_sounddevice() -> ModuleType:
    """``sounddevice``, or :class:`AudioUnavailable` when the PortAudio library is missing."""
    try:
        import sounddevice
    except (OSError, ImportError) as error:
        raise AudioUnavailable(
            f"the PortAudio library cannot be loaded ({error}); install PortAudio "
            f"(e.g. libportaudio2) or {_INSTEAD}"
        ) from error
    return sounddevice


def _output_devices(sd: ModuleType) -> list[tuple[int, dict[str, Any]]]:
    try:
        devices = sd.query_devices()
    except Exception as error:  # PortAudioError, or a backend that failed to start
        raise AudioUnavailable(f"PortAudio cannot list devices ({error}); {_INSTEAD}") from error
    return [
        (index, dict(info))
        for index, info in enumerate(devices)
        if int(info.get("max_output_channels", 0)) > 0
    ]


def _resolve_device(sd: ModuleType, device: int | str | None) -> tuple[int, dict[str, Any]]:
    """The output device for ``device`` (index, name substring, or ``None`` for the default)."""
    outputs = _output_devices(sd)
    if not outputs:
        raise AudioUnavailable(f"no audio output device found (PortAudio sees none); {_INSTEAD}")
    names = ", ".join(f"{index}: {info['name']}" for index, info in outputs)
    if device is None:
        try:
            default = int(sd.default.device[1])
        except (TypeError, ValueError, IndexError):
            default = -1
        for index, info in outputs:
            if index == default:
                return index, info
        return outputs[0]  # no default output set: the first one that can play
    if isinstance(device, int):
        for index, info in outputs:
            if index == device:
                return index, info
        raise AudioUnavailable(
            f"audio device {device} is not an output device (outputs: {names}); {_INSTEAD}"
        )
    wanted = str(device).lower()
    for index, info in outputs:
        if wanted in str(info["name"]).lower():
            return index, info
    raise AudioUnavailable(
        f"no audio output device matches {device!r} (outputs: {names}); {_INSTEAD}"
    )


def list_devices() -> list[str]:
    """The output devices PortAudio sees, one line each (``"index: name (host API, N out,
    rate Hz)"``); an empty list, never an exception, when there is no PortAudio or no device."""
    try:
        sd = _import_sounddevice()
        outputs = _output_devices(sd)
        hostapis = sd.query_hostapis()
    except AudioUnavailable:
        return []
    lines = []
    for index, info in outputs:
        try:
            api = str(hostapis[int(info["hostapi"])]["name"])
        except (KeyError, IndexError, TypeError, ValueError):
            api = "?"
        lines.append(
            f"{index}: {info['name']} ({api}, {info['max_output_channels']} out, "
            f"{float(info['default_samplerate']):g} Hz)"
        )
    return lines


def device_rate(device: int | str | None = None) -> int:
    """The default sample rate (Hz) of the output ``device`` (index, name substring, or the
    default output): build the :class:`~daemon.live.player.Mixer` at this rate. Raises
    :class:`AudioUnavailable`."""
    _, info = _resolve_device(_import_sounddevice(), device)
    return round(float(info["default_samplerate"]))


def probe(
    device: int | str | None = None, rate: int | None = None, channels: int = 2
) -> str | None:
    """``None`` when audio output can be opened on ``device`` (at ``rate`` Hz with
    ``channels`` channels, when given), else the reason in words. Never raises."""
    try:
        sd = _import_sounddevice()
        index, info = _resolve_device(sd, device)
    except AudioUnavailable as error:
        return str(error)
    if rate is None:
        return None
    try:
        sd.check_output_settings(device=index, samplerate=rate, channels=channels, dtype="float32")
    except Exception as error:  # PortAudioError or ValueError: settings refused
        return (
            f"audio output {info['name']!r} refuses {rate} Hz, {channels} ch ({error}); {_INSTEAD}"
        )
    return None


class SoundDeviceOutput(AudioOutput):
    """A PortAudio output stream whose audio thread calls ``mixer.callback``.

    Args:
        mixer: the mixer to pull; the stream runs at ``mixer.device_rate``.
        device: output device index, a case-insensitive substring of its name, or ``None`` for
            the default output.
        block: frames per callback (0 lets PortAudio choose, possibly varying).
        channels: output channels (the mono mix is copied to each).
        latency: PortAudio's suggested latency, ``"low"``, ``"high"`` or seconds.

    The stream is opened here: no PortAudio, no output device, no device matching ``device``, or
    settings the device refuses raise :class:`AudioUnavailable` naming what is missing.
    """

    def __init__(
        self,
        mixer: Mixer,
        *,
        device: int | str | None = None,
        block: int = 512,
        channels: int = 2,
        latency: str | float = "low",
    ) -> None:
        super().__init__(mixer)
        sd = _import_sounddevice()
        index, info = _resolve_device(sd, device)
        self.device_index = index
        self.device_name = str(info["name"])
        self.block = block
        self.channels = channels
        try:
            self._stream = sd.OutputStream(
                samplerate=mixer.device_rate,
                blocksize=block,
                device=index,
                channels=channels,
                dtype="float32",
                latency=latency,
                callback=mixer.callback,
            )
        except Exception as error:  # PortAudioError, or ValueError for refused settings
            raise AudioUnavailable(
                f"cannot open audio output {self.device_name!r} at {mixer.device_rate} Hz with "
                f"{channels} channels ({error}); {_INSTEAD}"
            ) from error

    @property
    def latency_seconds(self) -> float:
        """The stream's output latency in seconds: how long after the callback a sample is
        heard (``playing`` events arrive about this much early)."""
        return float(self._stream.latency)

    def describe(self) -> str:
        return (
            f"audio output {self.device_index}: {self.device_name} at {self.mixer.device_rate} Hz, "
            f"{self.channels} ch, {self.block}-frame buffers"
        )

    def _start(self) -> None:
        self._stream.start()

    def _stop(self) -> None:
        try:
            self._stream.stop()
        finally:
            self._stream.close()


def open_output(
    kind: str,
    mixer: Mixer,
    *,
    device: int | str | None = None,
    rate: int | None = None,
    block: int = 512,
    channels: int = 2,
    path: str | Path | None = None,
    realtime: bool = True,
) -> AudioOutput:
    """The output of ``kind``: ``"sounddevice"``, ``"file"`` (needs ``path``) or ``"null"``.

    ``rate``, when given, must equal ``mixer.device_rate`` (the mixer decides the rate). Not
    started yet. Raises :class:`AudioUnavailable` (sound device) or ``ValueError``.
    """
    if rate is not None and rate != mixer.device_rate:
        raise ValueError(
            f"rate {rate} Hz differs from the mixer's device_rate {mixer.device_rate} Hz"
        )
    if kind == "sounddevice":
        return SoundDeviceOutput(mixer, device=device, block=block, channels=channels)
    if kind == "file":
        if path is None:
            raise ValueError("a file output needs a path")
        return FileOutput(path, mixer, block, channels, realtime=realtime)
    if kind == "null":
        return NullOutput(mixer)
    raise ValueError(f"output kind must be sounddevice, file or null; got {kind!r}")
