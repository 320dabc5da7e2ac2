"""The daemon over real UDP on loopback, with the tiny model, driven as a user would."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from pythonosc.osc_message_builder import OscMessageBuilder

from clients.client import Client, JobFailed
from daemon.app.daemon import Daemon
from musicldm_core.wavfile import read_clip_info
from tests.support import RawOsc, daemon_config

FAST = {"steps": 3}


@pytest.fixture
def client(daemon) -> Iterator[Client]:
    host, port = daemon.address
    with Client(host, port, timeout=60) as c:
        yield c


@pytest.fixture
def raw(daemon) -> Iterator[RawOsc]:
    with RawOsc(daemon.address) as r:
        yield r


def _expected_samples(bars: int, beats: int, bpm: float, rate: int = 44100) -> int:
    return round(bars * beats * 60 / bpm * rate)


def test_generate_round_trip_gives_an_exact_tagged_file(client, daemon):
    job = client.generate("warm lofi piano", bars=2, bpm=90, seed=3, **FAST)
    seen = [type(event).__name__ for event in job.progress()]
    done = job.wait()
    assert seen[0] == "Queued" and "Started" in seen and "Progress" in seen
    path = Path(done.path)
    assert path.parent == daemon.config.out
    assert done.seed == 3 and done.bars == 2 and done.bpm == pytest.approx(90)
    info = sf.info(str(path))
    assert info.frames == _expected_samples(2, 4, 90) == 235200
    assert info.samplerate == 44100 and info.subtype == "PCM_24"
    tags = read_clip_info(path)
    assert tags["acid"]["bpm"] == pytest.approx(90)
    assert tags["acid"]["beats"] == 8
    assert tags["info"]["title"] == "warm lofi piano"
    assert not list(daemon.config.out.glob(".*"))  # no temporary file left behind


def test_pure_data_shaped_request_works_the_same(raw, daemon):
    # Pd sends every number as a float and cannot send a symbol with spaces.
    raw.send(
        "/musicldm/generate",
        "dark",
        "techno",
        "bars",
        1.0,
        "bpm",
        128.0,
        "seed",
        7.0,
        "steps",
        3.0,
        "id",
        42.0,
    )
    queued = raw.wait_for("/musicldm/queued")
    assert queued[0] == 42 and isinstance(queued[0], int)
    done = raw.wait_for("/musicldm/done", 60)
    assert done[0] == 42
    assert sf.info(done[1]).frames == _expected_samples(1, 4, 128)
    assert read_clip_info(done[1])["info"]["title"] == "dark techno"


def test_24_requests_from_3_clients_all_arrive_once(daemon):
    host, port = daemon.address
    results: dict[str, list] = {}

    def one_client(name: str) -> None:
        with Client(host, port, timeout=120) as c:
            jobs = [
                c.generate(f"{name} take {i}", id=f"{name}-{i}", seed=i, bars=1, **FAST)
                for i in range(8)
            ]
            results[name] = [job.wait() for job in jobs]

    threads = [threading.Thread(target=one_client, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    dones = [d for name in results for d in results[name]]
    assert len(dones) == 24
    assert sorted(d.job_id for d in dones) == sorted(f"{n}-{i}" for n in "abc" for i in range(8))
    paths = {d.path for d in dones}
    assert len(paths) == 24
    assert len(list(daemon.config.out.glob("*.wav"))) == 24


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["x", "bars", 0], "bars"),
        (["x", "bars", 2.5], "bars"),
        (["x", "bpm", 1000], "bpm"),
        (["x", "steps", "many"], "steps"),
        (["x", "bars", 1, "colour", "red"], "colour"),
        (["x", "scheduler", "magic"], "scheduler"),
        (["x", "seconds", 120.0], "seconds"),
        (["x", "preset", "nope"], "preset"),
        ([], "prompt"),
    ],
)
def test_bad_generate_options_fail_with_bad_request(raw, args, key):
    raw.send("/musicldm/generate", *args)
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[1] == "bad_request"
    assert key in fail[2]


def test_garbage_is_ignored_and_the_daemon_keeps_serving(raw, client, daemon):
    rng = __import__("random").Random(1)
    for _ in range(50):
        raw.send_raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
    good = OscMessageBuilder(address="/musicldm/generate")
    good.add_arg("x")
    good.add_arg("bars")
    good.add_arg(1)
    raw.send_raw(good.build().dgram[:-3])  # truncated
    raw.send_raw(b"/musicldm/ping\x00\x00\x00,ii\x00\x00\x00\x00\x01")  # wrong tags / short
    assert [a for a, _ in raw.replies(0.5) if a != "/musicldm/fail"] == []
    raw.send("/musicldm/nowhere", 1)
    assert raw.wait_for("/musicldm/fail", 5)[1] == "unknown_address"
    assert daemon.status()["malformed"] >= 1
    assert client.ping() < 5
    done = client.generate("still alive", **FAST).wait()
    assert Path(done.path).exists()


def test_name_cannot_leave_the_output_folder(client, daemon):
    done = client.generate("x", name="../../etc/evil", **FAST).wait()
    path = Path(done.path).resolve()
    assert path.parent == daemon.config.out.resolve()
    assert "evil" in path.name and ".." not in path.name


def test_play_of_a_path_outside_the_folder_is_refused(raw, tmp_path):
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF")
    raw.send("/musicldm/play", str(outside))
    fail = raw.wait_for("/musicldm/fail", 5)
    assert fail[1] == "bad_request" and "outside" in fail[2]


def test_cancel_queued_and_running_jobs_fail_exactly_once(raw, daemon):
    raw.send("/musicldm/generate", "long one", "id", "run", "bars", 4, "steps", 400)
    raw.wait_for("/musicldm/started", 30)
    raw.send("/musicldm/generate", "waiting", "id", "wait", "bars", 4, "steps", 400)
    raw.wait_for("/musicldm/queued", 10)
    raw.send("/musicldm/cancel", "wait")
    raw.send("/musicldm/cancel", "run")
    events = raw.replies(3.0)
    fails = [args for addr, args in events if addr == "/musicldm/fail"]
    assert sorted(f[0] for f in fails) == ["run", "wait"]
    assert all(f[1] == "cancelled" for f in fails)
    assert not [a for a, args in events if a == "/musicldm/done"]
    raw.send("/musicldm/cancel", "run")  # gone already: the cancel itself is answered
    fail = raw.wait_for("/musicldm/fail", 5)
    assert fail[0] == "/musicldm/cancel" and fail[1] == "not_found"


def test_status_ping_get_set_and_notify(raw, client, daemon):
    status = client.status()
    for key in ("queued", "running", "device", "model", "bpm", "voices", "version"):
        assert key in status
    raw.send("/musicldm/ping", "hello", 3)
    assert raw.wait_for("/musicldm/pong", 5) == ["hello", 3]
    raw.send("/musicldm/set", "bars", 2)
    raw.wait_for("/musicldm/value", 5)
    raw.send("/musicldm/get", "bars")
    assert raw.wait_for("/musicldm/value", 5) == ["bars", 2]
    # A listener registered with /notify hears about other clients' jobs.
    listener = RawOsc(daemon.address)
    try:
        listener.send("/musicldm/notify", 1)
        listener.wait_for("/musicldm/value", 5)
        done = client.generate("someone else's", **FAST).wait()
        assert listener.wait_for("/musicldm/done", 30)[1] == done.path
        assert sf.info(done.path).frames == _expected_samples(2, 4, daemon.tempo)
    finally:
        listener.close()


def test_done_ends_with_the_grid_fit_and_grid_is_an_option(client, raw, daemon):
    """/musicldm/done keeps its first six arguments and adds the take's grid fit after them;
    ``grid`` is a generate option, refused by name when it is not one of its words."""
    raw.send("/musicldm/generate", "fit", "id", 41, "grid", "check", "steps", 3, "seed", 2)
    done = raw.wait_for("/musicldm/done", 60)
    assert done[0] == 41 and done[4] == 1 and done[5] == 2  # id path seconds bpm bars seed
    detected_bpm, confidence, ratio, grid_error_ms, key = done[6:]
    assert detected_bpm >= 0.0 and 0.0 <= confidence <= 1.0 and isinstance(key, str)
    assert ratio == 1.0 and grid_error_ms == -1.0  # check: analysed, not put on the grid
    settings = json.loads(read_clip_info(Path(done[1]))["info"]["comment"])
    assert settings["grid"]["grid"] == "check"
    assert settings["grid"]["detected"]["tempo_bpm"] in (None, pytest.approx(detected_bpm, 1e-3))
    # the client reads the new arguments by the contract's names
    typed = client.generate("fit", grid="off", **FAST).wait()
    assert (typed.detected_bpm, typed.ratio, typed.grid_error_ms, typed.key) == (0, 1, -1, "")
    assert json.loads(read_clip_info(Path(typed.path))["info"]["comment"])["grid"] == {
        "grid": "off",
        "stretched": False,
        "ratio": 1.0,
        "start_s": 0.0,
        "grid_error_ms": None,
        "transpose_semitones": 0.0,
        "note": None,
        "target_key": None,
        "key_note": None,
    }
    with pytest.raises(JobFailed, match="grid must be one of stretch, check, off, got 'loose'"):
        client.generate("fit", grid="loose").wait()


def test_failed_job_reports_the_code(client):
    with pytest.raises(JobFailed) as info:
        client.generate("x", bars=64, bpm=20).wait()  # 192 s: above the 30 s maximum
    assert info.value.code == "bad_request"


def test_docs_match_the_contract():
    """docs/osc.md names every address, reply and option of the shared contract."""
    root = Path(__file__).resolve().parents[1]
    # a copy of ../shared/design/osc-protocol.md travels with the tests, so CI checks it too;
    # where the shared folder is beside this checkout, the copy must be current
    contract = root / "tests" / "data" / "osc-protocol.md"
    shared = root.parent / "shared" / "design" / "osc-protocol.md"
    if shared.exists():
        assert contract.read_text() == shared.read_text(), "update tests/data/osc-protocol.md"
    ours = (root / "docs" / "osc.md").read_text()
    theirs = contract.read_text()
    addresses = set(re.findall(r"`(/musicldm/[a-z.]+)`", theirs))
    assert addresses, "could not read the contract"
    missing = sorted(a for a in addresses if a not in ours)
    assert not missing, f"docs/osc.md lacks {missing}"
    options = set(re.findall(r"^\| `([a-z]+)` \|", theirs, flags=re.M))
    missing_options = sorted(o for o in options if f"`{o}`" not in ours)
    assert not missing_options, f"docs/osc.md lacks options {missing_options}"
    codes = re.search(r"Failure codes.*?\n(.*?)\n\n", theirs, flags=re.S)
    assert codes is not None
    for code in re.findall(r"`([a-z_]+)`", codes.group(1)):
        assert f"`{code}`" in ours, code


def _wait_for_port(proc, log_path: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text() if log_path.exists() else ""
        match = re.search(r"listening on udp [\d.]+:(\d+)", text)
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early:\n{text}")
        time.sleep(0.1)
    raise AssertionError(f"daemon did not start:\n{log_path.read_text()}")


@pytest.mark.slow
def test_sigterm_then_restart_renders_every_journaled_job_once(tmp_path, model_cache):
    import signal
    import subprocess
    import sys

    listener = RawOsc(("127.0.0.1", 9))
    reply_port = listener.sock.getsockname()[1]
    out, state = tmp_path / "out", tmp_path / "state"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "daemon.cli",
        "serve",
        "--model",
        "tiny",
        "--device",
        "cpu",
        "--port",
        "0",
        "--out",
        str(out),
        "--state",
        str(state),
        "--no-warmup",
        "--no-audio",
        "--reply-to",
        f"127.0.0.1:{reply_port}",
        "--max-batch",
        "1",
    ]

    def start(n: int):
        log = tmp_path / f"daemon{n}.log"
        proc = subprocess.Popen(command, stderr=log.open("w"), stdout=subprocess.DEVNULL, env=env)
        return proc, log

    try:
        proc, log = start(1)
        port = _wait_for_port(proc, log)
        sender = RawOsc(("127.0.0.1", port))
        for i in range(8):
            sender.send(
                "/musicldm/generate",
                f"batch {i}",
                "id",
                f"b{i}",
                "seed",
                i,
                "priority",
                "batch",
                "bars",
                2,
                "steps",
                30,
            )
        queued = set()
        deadline = time.monotonic() + 30
        while len(queued) < 8 and time.monotonic() < deadline:
            queued |= {a[0] for addr, a in sender.replies(0.2) if addr == "/musicldm/queued"}
        assert queued == {f"b{i}" for i in range(8)}
        sender.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "stopped" in log.read_text()
        first_run = [a for addr, a in listener.replies(0.5) if addr == "/musicldm/done"]
        assert len(first_run) < 8, "the shutdown came too late to leave work for the restart"

        proc, log = start(2)
        _wait_for_port(proc, log)
        dones = list(first_run)
        deadline = time.monotonic() + 240
        while len(dones) < 8 and time.monotonic() < deadline:
            dones += [a for addr, a in listener.replies(0.5) if addr == "/musicldm/done"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        listener.close()
        for p in ("proc",):
            if p in locals() and locals()[p].poll() is None:
                locals()[p].kill()
    assert sorted(d[0] for d in dones) == sorted(f"b{i}" for i in range(8))  # each once
    files = sorted(out.glob("*.wav"))
    assert len(files) == 8
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert sorted(d[5] for d in dones) == list(range(8))


def test_daemon_ids_never_collide_with_chosen_ones_even_after_a_restart(tiny_engine, tmp_path):
    def start() -> Daemon:
        config = daemon_config(tmp_path)
        d = Daemon(config, engine=tiny_engine)
        d.start()
        return d

    def assigned(d: Daemon) -> int:
        osc = RawOsc(d.address)
        try:
            osc.send("/musicldm/generate", "assigned", "steps", 3)
            return osc.wait_for("/musicldm/queued", 10)[0]
        finally:
            osc.close()

    d = start()
    try:
        osc = RawOsc(d.address)
        osc.send("/musicldm/generate", "chosen", "id", 41, "steps", 3)
        assert osc.wait_for("/musicldm/queued", 10)[0] == 41
        osc.close()
        own = assigned(d)
        assert isinstance(own, int) and own > 41
    finally:
        d.stop()
    d = start()  # same state folder: numbering goes on above every id it holds
    try:
        assert assigned(d) > own
    finally:
        d.stop()


def test_play_or_slot_in_a_generate_without_audio_is_refused(raw, daemon):
    raw.send("/musicldm/generate", "loop me", "play", 1, "id", 7)
    assert raw.wait_for("/musicldm/fail", 10)[:2] == [7, "not_found"]
    raw.send("/musicldm/generate", "slot me", "slot", 3, "id", 8)
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == [8, "not_found"] and "audio output" in fail[2]
    assert daemon.status()["queued"] == 0 and daemon.status()["done"] == 0


def test_serve_help_lists_its_flags(capsys):
    from daemon.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["serve", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--reply-to", "--audio-file", "--midi-port", "--compile", "--link"):
        assert flag in out


def test_every_oscsend_line_in_the_docs_has_one_type_per_value():
    """liblo's oscsend silently drops values beyond its type string: keep the examples whole."""
    import shlex

    root = Path(__file__).resolve().parents[1]
    checked = 0
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for line in doc.read_text().splitlines():
            command = line.strip().strip("`")
            if not command.startswith("oscsend ") or "ADDRESS" in command:
                continue
            words = shlex.split(command.split(" #")[0])
            if len(words) > 4:
                types, values = words[4], words[5:]
                assert len(types) == len(values), f"{doc.name}: {command}"
                checked += 1
    assert checked >= 10


def test_the_worker_warms_the_grid_analysis_on_its_own_thread_before_any_job():
    from daemon.jobs.queue import JobQueue
    from daemon.jobs.worker import Worker

    warmed = threading.Event()
    seen: list[str] = []

    def warm_up() -> None:
        seen.append(threading.current_thread().name)
        warmed.set()
        raise RuntimeError("a failed warm-up only logs")  # and the worker keeps running

    worker = Worker(None, JobQueue(), journal=None, delivery=None, events=None, warm_up=warm_up)  # type: ignore[arg-type]
    worker.start()
    try:
        assert warmed.wait(10) and seen == ["worker"]
        assert worker.alive
    finally:
        assert worker.stop()


def test_numba_gets_a_user_cache_only_where_librosa_cannot_keep_one(monkeypatch, tmp_path):
    from daemon.app import daemon as module

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(module.os, "access", lambda path, mode: True)
    module._numba_cache_dir()  # numba caches beside librosa's sources
    assert "NUMBA_CACHE_DIR" not in os.environ
    monkeypatch.setattr(module.os, "access", lambda path, mode: False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda name: str(tmp_path / name))
    module._numba_cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "musicldm-daemon" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/mine")
    module._numba_cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == "/mine"  # an explicit choice is left alone
