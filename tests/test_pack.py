"""``musicldm-daemon pack``: a 20-clip pack with the tiny model, locally and on a local Ray runtime.

Exactly one file per clip and one manifest row per file, tags and lengths as the daemon makes
them; a re-run renders nothing; a run killed with SIGKILL half-way is finished by the next run
without a second file for any clip; a bad pack file fails before anything renders, naming the
key. On Ray (2 CPU actors, one runtime for the module): the same files as locally, and killing
an actor mid-pack loses nothing and doubles nothing; more workers than the runtime has room for
still finish. On a cluster started with ``ray start --head`` (as docs/packs.md tells a user):
joining it by address (with ``--shared-out``) and by ``auto``, ``--ray`` alone beside it, and a
wrong address failing at once with one line.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import main
from daemon.pack.plan import load_pack, parse_pack
from daemon.pack.run import LocalBackend, run_pack
from musicldm_core.errors import BadRequest
from musicldm_core.wavfile import read_clip_info

ROOT = Path(__file__).resolve().parents[1]

PACK = """\
name = "night drums"
bpm = [90, 120]
bars = [1, 2]
takes = 2
seed = 100
preset = "studio"
steps = 2                     # the tiny model: a short render
[[prompt]]
text = "dusty breakbeat"
tags = ["drums", "breaks"]
takes = 4
[[prompt]]
text = "warm rhodes chords"
bpm = [90]
"""
CLIPS = 2 * 2 * 4 + 1 * 2 * 2  # 20
SLUG = "night-drums"


@pytest.fixture(scope="module")
def pack_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "PACK.toml"
    path.write_text(PACK, encoding="utf-8")
    return path


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Torch on ``count`` threads, as a Ray CPU actor runs it: the sums' order (and so the last
    bits of the audio) depends on the thread count."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def local_pack(
    pack_file: Path, tiny_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any]:
    """The pack rendered once here (one torch thread, as a Ray CPU actor): (folder, summary)."""
    out = tmp_path_factory.mktemp("local-out")
    plan = load_pack(pack_file, model="tiny")
    with torch_threads(1):
        summary = run_pack(plan, out, LocalBackend("tiny", engine=tiny_engine), progress=False)
    return out / SLUG, summary


def wavs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.wav"))


def check_manifest(folder: Path) -> list[dict[str, str]]:
    """The manifest's rows, checked to be exactly the folder's files (csv and json agree)."""
    with (folder / "manifest.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    files = {p.relative_to(folder).as_posix() for p in wavs(folder)}
    assert sorted(r["path"] for r in rows) == sorted(files)
    assert len({r["id"] for r in rows}) == len(rows)
    document = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert [c["path"] for c in document["clips"]] == [r["path"] for r in rows]
    return rows


def test_the_pack_makes_one_tagged_exact_file_per_clip_and_a_rerun_renders_nothing(
    local_pack: tuple[Path, Any], pack_file: Path, tiny_engine: Any
) -> None:
    folder, summary = local_pack
    assert (summary.rendered, summary.skipped, summary.failed) == (CLIPS, 0, [])
    files = wavs(folder)
    assert len(files) == CLIPS
    rows = check_manifest(folder)
    assert len(rows) == CLIPS
    for row in rows:
        path = folder / row["path"]
        bpm, bars = float(row["bpm"]), int(row["bars"])
        assert path.parent.parent.name == f"{bpm:g}bpm"
        assert row["id"] in path.name
        info = read_clip_info(path)
        assert info["acid"]["bpm"] == pytest.approx(bpm)
        assert info["acid"]["beats"] == bars * 4
        assert info["info"]["title"] == row["prompt"]
        assert info["samples"] == round(bars * 4 * 60 / bpm * 44100)
        settings = json.loads(info["info"]["comment"])
        assert settings["seed"] == int(row["seed"])
        assert settings["steps"] == 2 and settings["scheduler"] == "ddim"  # studio, steps 2
        expected_tags = "drums;breaks" if row["prompt"] == "dusty breakbeat" else ""
        assert row["tags"] == expected_tags
    seeds = sorted(int(r["seed"]) for r in rows if r["prompt"] == "dusty breakbeat")
    assert seeds == sorted([100, 101, 102, 103] * 4)

    again = run_pack(
        load_pack(pack_file, model="tiny"),
        folder.parent,
        LocalBackend("tiny", engine=tiny_engine),
        progress=False,
    )
    assert (again.rendered, again.skipped) == (0, CLIPS)
    assert wavs(folder) == files
    assert len(check_manifest(folder)) == CLIPS


def test_a_run_killed_half_way_is_finished_by_the_next_run_exactly_once(
    pack_file: Path, tiny_engine: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    folder = out / SLUG
    command = [sys.executable, "-m", "daemon.cli", "pack", str(pack_file), "--out", str(out)]
    process = subprocess.Popen(
        [*command, "--model", "tiny", "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while len(wavs(folder)) < CLIPS // 2:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the pack never got half-way"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    made = len(wavs(folder))
    assert CLIPS // 2 <= made < CLIPS
    # a write cut off mid-file: never counted, removed by the next run
    (folder / "90bpm" / ".dusty_1bars_s100_deadbeef0000.1234.partial").write_bytes(b"RIFF")

    summary = run_pack(
        load_pack(pack_file, model="tiny"),
        out,
        LocalBackend("tiny", engine=tiny_engine),
        progress=False,
    )
    assert summary.skipped == made
    assert summary.rendered == CLIPS - made
    assert summary.partials >= 1
    assert len(wavs(folder)) == CLIPS
    assert len(check_manifest(folder)) == CLIPS
    assert not list(folder.rglob("*.partial"))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("bpm = [90, 500]", "bpm must be a number from 20 to 400, got 500"),
        ('scheduler = "fast"', "scheduler must be one of"),
        ("steps = 0", "steps must be an integer from 1 to 1000, got 0"),
        ('colour = "red"', "unknown key 'colour'"),
        ("slot = 3", "slot cannot be set in a pack"),
        ("bars = [1, 2]\nseconds = [2.0]", "give bars or seconds, not both"),
    ],
)
def test_a_bad_pack_file_fails_before_rendering_naming_the_key(
    change: str, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = change.split(maxsplit=1)[0]
    lines = [line for line in PACK.splitlines() if not line.startswith(f"{key} ")]
    bad = "\n".join([lines[0], change, *lines[1:]])
    path = tmp_path / "PACK.toml"
    path.write_text(bad, encoding="utf-8")
    status = main(["pack", str(path), "--out", str(tmp_path / "out"), "--model", "tiny"])
    assert status == 2
    err = capsys.readouterr().err
    assert named in err and "PACK.toml" in err
    assert not (tmp_path / "out").exists()  # refused before any folder or model


def test_a_bad_value_for_one_prompt_says_which_prompt() -> None:
    data = {"name": "p", "prompt": [{"text": "ok"}, {"text": "bad one", "guidance": 99}]}
    with pytest.raises(BadRequest) as caught:
        parse_pack(data, source=Path("PACK.toml"), model="tiny")
    message = str(caught.value)
    assert "prompt 2 ('bad one')" in message
    assert "guidance must be a number from 0 to 30, got 99" in message


def test_prompts_with_no_plain_letters_get_a_folder_each() -> None:
    prompts = [{"text": "夜の雨"}, {"text": "🌧️🎹"}, {"text": "夜の雨", "seed": 5}, {"text": "Rain"}]
    data = {"name": "p", "prompt": prompts}
    folders = [job.prompt_slug for job in parse_pack(data, source=Path("P.toml"), model="x").jobs]
    assert folders[3] == "rain"
    assert folders[0] == folders[2] != folders[1]  # one stable folder per text, never "clip"
    assert all(f.startswith("prompt-") and len(f) == len("prompt-") + 8 for f in folders[:3])


def test_dry_run_prints_the_plan(pack_file: Path, tmp_path: Path, capsys: Any) -> None:
    status = main(["pack", str(pack_file), "--out", str(tmp_path), "--dry-run"])
    assert status == 0
    out = capsys.readouterr().out
    assert "4 × 'dusty breakbeat' at 90 BPM, 1 bars" in out
    assert "2 × 'warm rhodes chords' at 90 BPM, 2 bars" in out
    assert out.strip().endswith(f"{CLIPS} clips")
    assert not list(tmp_path.iterdir())


# -- on a local Ray runtime ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[Any]:
    """One local Ray runtime (2 CPUs) for the module: starting one costs seconds."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # "local": a runtime of its own even while a `ray start` cluster runs on this machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_on_ray_killing_an_actor_loses_nothing_doubles_nothing_and_makes_the_same_files(
    ray_runtime: Any, local_pack: tuple[Path, Any], pack_file: Path, tmp_path: Path
) -> None:
    from daemon.pack.ray_backend import RayBackend

    backend = RayBackend("tiny", workers=2)
    killed: list[int] = []

    def kill_one(done: int) -> None:
        if done == 2 and not killed:  # mid-pack: both actors hold groups now
            ray_runtime.kill(backend.actors[0])
            killed.append(done)

    summary = run_pack(
        load_pack(pack_file, model="tiny"), tmp_path, backend, progress=False, after_clip=kill_one
    )
    assert killed and backend.replaced >= 1
    assert (summary.rendered, summary.failed) == (CLIPS, [])
    folder = tmp_path / SLUG
    assert len(wavs(folder)) == CLIPS
    assert len(check_manifest(folder)) == CLIPS
    local_folder, _ = local_pack
    for path in wavs(local_folder):
        twin = folder / path.relative_to(local_folder)
        assert twin.read_bytes() == path.read_bytes(), f"{twin} differs from the local render"


@pytest.mark.timeout(120)
def test_on_ray_more_workers_than_the_cluster_has_room_for_still_finish_the_pack(
    ray_runtime: Any, tiny_engine: Any, tmp_path: Path
) -> None:
    from daemon.pack.ray_backend import RayBackend

    pack = tmp_path / "lengths.toml"  # six lengths: six groups, more than 2 actors hold at once
    pack.write_text(
        'name = "lengths"\nbpm = [120]\nseconds = [1, 1.5, 2, 2.5, 3, 3.5]\nsteps = 2\n'
        '[[prompt]]\ntext = "dusty breakbeat"\n',
        encoding="utf-8",
    )
    backend = RayBackend("tiny", workers=5)  # the runtime has 2 CPUs: actors 3-5 never start
    assert backend.workers == 2
    summary = run_pack(load_pack(pack, model="tiny"), tmp_path, backend, progress=False)
    assert (summary.rendered, summary.failed) == (6, [])
    assert len(check_manifest(tmp_path / "lengths")) == 6


# -- joining a running cluster (`ray start --head`, as docs/packs.md tells a user) ---------------

SMALL_PACK = """\
name = "small"
bpm = [120]
bars = [1]
takes = 4
steps = 2
[[prompt]]
text = "dusty breakbeat"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ray_env() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def pack_command(pack: Path, out: Path, *ray_args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "daemon.cli", "pack", str(pack), "--out", str(out)]
    return subprocess.run(
        [*command, "--model", "tiny", "--quiet", *ray_args],
        check=False,
        cwd=ROOT,
        env=ray_env(),
        capture_output=True,
        text=True,
        timeout=180,  # a hang fails the test instead of stalling the suite
    )


@pytest.fixture
def ray_head(tmp_path: Path) -> Iterator[int]:
    """A one-node cluster started with `ray start --head --block` on a free port: its port.

    Stopped by ending that command (which stops only its own processes, unlike `ray stop`);
    the "latest cluster" record `ray start` writes is put back as it was.
    """
    pytest.importorskip("ray")
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip("no `ray` command next to this Python")
    port = free_port()
    record = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    saved = record.read_bytes() if record.exists() else None
    log_path = tmp_path / "ray-start.log"
    start = [str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2"]
    start += ["--include-dashboard=false", "--disable-usage-stats", "--block"]
    with log_path.open("wb") as log_file:
        head = subprocess.Popen(
            start,
            env=ray_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while not (record.exists() and record.read_text().strip().endswith(f":{port}")):
            assert head.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "ray start --head never came up"
            time.sleep(0.1)
        yield port
    finally:
        head.terminate()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        if saved is None:
            record.unlink(missing_ok=True)
        else:
            record.write_bytes(saved)


def test_a_pack_joins_a_running_cluster_by_address_or_auto_and_ray_alone_starts_its_own(
    ray_head: int, tiny_engine: Any, tmp_path: Path
) -> None:
    pack = tmp_path / "small.toml"
    pack.write_text(SMALL_PACK, encoding="utf-8")
    local = run_pack(
        load_pack(pack, model="tiny"), tmp_path / "local", LocalBackend("tiny", engine=tiny_engine)
    )
    assert local.rendered == 4
    names = [p.relative_to(tmp_path / "local").as_posix() for p in wavs(tmp_path / "local")]

    # workers writing straight into the folder (this machine "mounts" it at the same path)
    shared = tmp_path / "shared"
    joined = pack_command(
        pack, shared, "--ray", f"127.0.0.1:{ray_head}", "--workers", "2", "--shared-out"
    )
    assert joined.returncode == 0, joined.stderr
    assert [p.relative_to(shared).as_posix() for p in wavs(shared)] == names
    assert len(check_manifest(shared / "small")) == 4

    again = pack_command(pack, shared, "--ray", "auto")
    assert again.returncode == 0, again.stderr
    assert "nothing to render: all 4 clips are there" in again.stderr

    # `--ray` alone: a runtime of its own, not the running cluster (which refuses num_cpus)
    alone = pack_command(pack, tmp_path / "alone", "--ray", "--workers", "2")
    assert alone.returncode == 0, alone.stderr
    assert [p.relative_to(tmp_path / "alone").as_posix() for p in wavs(tmp_path / "alone")] == names


def test_a_wrong_ray_address_fails_at_once_with_one_line(pack_file: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from daemon.pack.ray_backend import join_cluster

    out = tmp_path / "out"
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there: Ray alone retries for minutes
    result = pack_command(pack_file, out, "--ray", nobody)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach the Ray cluster at {nobody}: "), result.stderr
    assert not wavs(out)

    # not an address at all: a BadRequest (exit status 2) before Ray is asked
    with pytest.raises(BadRequest, match=r"--ray ADDRESS must be host:port .* got 'x'"):
        join_cluster(ray, "x")


def test_input_audio_in_a_pack_is_relative_to_the_pack_file(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf

    from daemon.pack.plan import load_pack

    folder = tmp_path / "packs"
    (folder / "loops").mkdir(parents=True)
    tone = np.sin(np.arange(int(4.5 * 44100)) * 2 * np.pi * 220 / 44100).astype(np.float32)
    sf.write(folder / "loops" / "groove.wav", tone, 44100)
    pack = folder / "vary.toml"
    pack.write_text(
        'name = "vary"\nbpm = [120]\nbars = [2]\n'
        '[[prompt]]\ntext = "the same, brighter"\nfrom = "loops/groove.wav"\nstrength = 0.4\n'
    )
    monkeypatch.chdir(tmp_path)  # elsewhere: the pack file's folder decides, not the shell's
    plan = load_pack(Path("packs/vary.toml"), model="tiny")
    (job,) = plan.jobs
    assert job.spec.source == str((folder / "loops" / "groove.wav").resolve())
    assert job.spec.strength == pytest.approx(0.4)
    pack.write_text(pack.read_text().replace("loops/groove.wav", "loops/missing.wav"))
    with pytest.raises(BadRequest, match=r"missing\.wav"):
        load_pack(pack, model="tiny")
