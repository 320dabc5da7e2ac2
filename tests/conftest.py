"""Shared fixtures: one tiny model, built once per test session through the real loader, and a
real daemon running it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_user_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default state folder (the user data folder) in a temporary folder: ``render`` records
    its clips there, and tests must not add them to the real user's library. Subprocesses
    inherit it."""
    import os

    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("user-data"))
    yield Path(os.environ["XDG_DATA_HOME"])
    if saved is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private test-model cache, so the session builds the tiny model itself."""
    return tmp_path_factory.mktemp("test-models")


@pytest.fixture(scope="session")
def tiny_engine(model_cache: Path) -> Iterator[object]:
    """The ``tiny`` model built offline, saved in the diffusers layout and loaded back."""
    from musicldm_core.engine import Engine
    from musicldm_core.loading import quiet_libraries

    quiet_libraries()
    yield Engine.load("tiny", device="cpu", cache_dir=model_cache)


@pytest.fixture
def daemon(tiny_engine: object, tmp_path: Path) -> Iterator[object]:
    """The real daemon with the tiny model (``tests.support.daemon_config``: a free port,
    replying only to senders, no audio), stopped at the end of the test."""
    from tests.support import running_daemon

    with running_daemon(tiny_engine, tmp_path) as running:
        yield running


@pytest.fixture
def live_daemon(tiny_engine: object, tmp_path: Path) -> Iterator[object]:
    """A tiny-model daemon playing into ``heard.wav`` (the offline audio output) at
    :data:`tests.support.LIVE_BPM`: what the live and evolve tests listen to."""
    from tests.support import LIVE_BPM, running_daemon

    with running_daemon(
        tiny_engine,
        tmp_path,
        audio=True,
        audio_file=tmp_path / "heard.wav",
        audio_rate=44100,
        tempo=LIVE_BPM,
    ) as daemon:
        yield daemon
