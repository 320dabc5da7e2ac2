"""The daemon's config: defaults, the TOML layout, CLI precedence, and errors that name the key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import configfrom_args, main, serve_parser
from daemon.config import (
    DEFAULT_OPTION_KEYS,
    SECTIONS,
    DaemonConfig,
    is_loopback,
    load_config,
    parse_host_port,
)
from daemon.live.midi import CCMapping
from musicldm_core.errors import BadRequest
from musicldm_core.spec import DEFAULT_MAX_SECONDS, PRESETS, Preset

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "config.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "musicldm.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- defaults ------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = load_config(None)
    assert config.model == "ucsd-reach/musicldm"
    assert config.device is None and config.dtype is None and config.max_batch is None
    assert (config.host, config.port) == ("127.0.0.1", 9000)
    assert config.reply_to == (("127.0.0.1", 9001),)
    assert config.allow == ()
    assert config.out.name == "MusicLDM"
    assert config.state.name == "musicldm-daemon"
    assert config.day_folders is False
    assert (config.sample_rate, config.sample_format) == (44100, "pcm24")
    assert config.loudness_lufs is None
    assert config.max_seconds == DEFAULT_MAX_SECONDS
    assert (config.queue_size, config.stale_live_seconds) == (256, 120.0)
    assert (config.tempo, config.beats_per_bar) == (120.0, 4)
    assert dict(config.presets) == PRESETS
    assert dict(config.defaults) == {}
    assert config.audio is True and config.audio_device is None and config.audio_rate is None
    assert config.audio_buffer == 512 and config.audio_file is None
    assert config.midi_port is None and config.midi_virtual is False
    assert config.midi_base_note == 36 and config.midi_channel is None and config.midi_clock
    assert dict(config.midi_cc) == {} and config.link is False
    assert config.warmup is True and config.log_level == "info"
    assert config.progress_rate_hz == 20.0
    assert load_config(None) == DaemonConfig()


def test_config_is_frozen_through_and_through() -> None:
    config = load_config(None, {"defaults": {"bars": 2}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.defaults["bars"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        config.presets["live"] = PRESETS["studio"]  # type: ignore[index]


def test_every_setting_can_be_set_from_the_file() -> None:
    from_file = {field for keys in SECTIONS.values() for field in keys.values()}
    from_file |= {"presets", "defaults", "midi_cc"}  # [presets.NAME], [defaults], [midi.cc.N]
    assert from_file == {f.name for f in dataclasses.fields(DaemonConfig)}


# -- the example file ----------------------------------------------------------------------------


def test_example_file_loads_as_the_defaults() -> None:
    assert load_config(EXAMPLE) == load_config(None)


def test_example_file_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # split at real section headers; commented-out examples stay inside their section
    blocks = re.split(r"^\[([\w.]+)\][^\n]*$", text, flags=re.MULTILINE)
    sections = dict(zip(blocks[1::2], blocks[2::2], strict=True))
    for section, keys in SECTIONS.items():
        if section in ("presets", "defaults"):
            continue
        assert section in sections, f"[{section}] is missing from the example"
        for key in keys:
            assert re.search(rf"^#? ?{key} = ", sections[section], re.MULTILINE), (
                f"[{section}] {key} is not in the example"
            )
    assert "[defaults]" in text and "[presets.live]" in text and "[presets.studio]" in text
    assert "[midi.cc.1]" in text
    for key in ("preset", "bars", "takes", "loop", "grid", "priority"):
        assert f"# {key} = " in sections["defaults"]


# -- the TOML layout -----------------------------------------------------------------------------

FULL = """
[server]
host = "192.168.1.20"
port = 9100
reply_to = ["127.0.0.1:9001", "localhost:7400", "[::1]:7401"]
allow = ["192.168.1.0/24", "10.0.0.5"]
state = "state"
progress_rate_hz = 10

[model]
source = "tiny"
device = "CUDA:1"
dtype = "bf16"
warmup = false
max_batch = 2

[output]
folder = "~/clips"
day_folders = true
rate = 48000
format = "float32"
loudness_lufs = -14
max_seconds = 60

[queue]
size = 32
stale_live_seconds = 30

[clock]
tempo = 128
beats_per_bar = 3

[defaults]
bars = 2.0
preset = "studio"
loop = 0
priority = "batch"
negative = "noise"
seconds = 45

[presets.live]
steps = 12

[presets.sketch]
steps = 8
scheduler = "UniPC"
negative = "  muddy,   harsh "

[audio]
enabled = false
device = 3
rate = 48000
buffer = 256
file = "/tmp/out.wav"

[midi]
port = "Launchpad"
virtual = true
base_note = 60
channel = 10
clock = false

[midi.cc.1]
key = "guidance"
min = 8
max = 1

[midi.cc.74]
key = "steps"
min = 10
max = 50

[link]
enabled = true

[log]
level = "DEBUG"
"""


def test_every_section_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config(write(tmp_path, FULL))
    assert (config.host, config.port) == ("192.168.1.20", 9100)
    assert config.reply_to == (("127.0.0.1", 9001), ("localhost", 7400), ("::1", 7401))
    assert config.allow == ("192.168.1.0/24", "10.0.0.5/32")
    assert config.state == tmp_path / "state"  # relative to the config file
    assert config.progress_rate_hz == 10.0
    assert (config.model, config.device, config.dtype) == ("tiny", "cuda:1", "bf16")
    assert config.warmup is False and config.max_batch == 2
    assert config.out == tmp_path / "home" / "clips"  # ~ expanded
    assert config.day_folders is True
    assert (config.sample_rate, config.sample_format) == (48000, "float32")
    assert config.loudness_lufs == -14.0 and config.max_seconds == 60.0
    assert (config.queue_size, config.stale_live_seconds) == (32, 30.0)
    assert (config.tempo, config.beats_per_bar) == (128.0, 3)
    assert dict(config.defaults) == {
        "bars": 2,
        "preset": "studio",
        "loop": False,
        "priority": "batch",
        "negative": "noise",
        "seconds": 45.0,  # allowed: max_seconds is 60 here
    }
    assert isinstance(config.defaults["bars"], int)
    assert config.presets["live"] == Preset("live", steps=12, guidance=2.0, scheduler="dpm++")
    assert config.presets["studio"] == PRESETS["studio"]
    assert config.presets["sketch"] == Preset(
        "sketch", steps=8, guidance=2.0, scheduler="unipc", negative_prompt="muddy, harsh"
    )  # a new preset starts from live's settings
    assert config.audio is False and config.audio_device == 3 and config.audio_rate == 48000
    assert config.audio_buffer == 256 and config.audio_file == Path("/tmp/out.wav")
    assert (config.midi_port, config.midi_virtual, config.midi_base_note) == ("Launchpad", True, 60)
    assert config.midi_channel == 10 and config.midi_clock is False
    assert dict(config.midi_cc) == {
        1: CCMapping("guidance", 8, 1, integer=False),
        74: CCMapping("steps", 10, 50, integer=True),
    }
    assert config.link is True and config.log_level == "debug"


def test_auto_means_pick_automatically(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[model]\ndevice = "auto"\ndtype = "auto"\nmax_batch = "auto"\n'
        '[audio]\ndevice = "auto"\nrate = "auto"\n',
    )
    config = load_config(path)
    assert config.device is None and config.dtype is None and config.max_batch is None
    assert config.audio_device is None and config.audio_rate is None


def test_empty_reply_to_means_senders_only(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[server]\nreply_to = []\n")).reply_to == ()


def test_duplicate_reply_targets_are_kept_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nreply_to = ["127.0.0.1:9001", "127.0.0.1:9001"]\n')
    assert load_config(path).reply_to == (("127.0.0.1", 9001),)


# -- precedence ----------------------------------------------------------------------------------


def test_command_line_wins_over_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nport = 9100\nhost = "127.0.0.2"\n[output]\nfolder = "from-file"\n'
        "[defaults]\nbars = 2\n[presets.live]\nsteps = 12\n",
    )
    config = load_config(
        path,
        {
            "port": 9200,
            "host": None,  # a flag not given: the file's value stays
            "out": Path("cli-out"),
            "reply_to": (("10.0.0.1", 7000),),
            "defaults": {"takes": 3},
            "presets": {"live": {"guidance": 3.5}},
            "warmup": False,
        },
    )
    assert config.port == 9200
    assert config.host == "127.0.0.2"
    assert config.out == Path.cwd() / "cli-out"  # from the current folder, made absolute
    assert config.reply_to == (("10.0.0.1", 7000),)
    assert dict(config.defaults) == {"bars": 2, "takes": 3}  # mappings merge key by key
    assert (config.presets["live"].steps, config.presets["live"].guidance) == (12, 3.5)
    assert config.warmup is False


def test_overrides_accept_reply_to_as_text_and_port_zero() -> None:
    config = load_config(None, {"reply_to": ["127.0.0.1:7000"], "port": 0})
    assert config.reply_to == (("127.0.0.1", 7000),) and config.port == 0


def test_overrides_accept_ready_made_presets_and_cc_mappings() -> None:
    config = load_config(
        None,
        {
            "presets": {"quick": Preset("quick", 5, 1.0, "euler")},
            "midi_cc": {7: CCMapping("gain", 0, 2)},
            "defaults": {"preset": "quick"},
        },
    )
    assert config.presets["quick"] == Preset("quick", 5, 1.0, "euler")
    assert config.midi_cc[7] == CCMapping("gain", 0, 2)
    assert config.defaults["preset"] == "quick"


def test_non_loopback_host_with_an_allow_list_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nallow = ["192.168.1.0/24"]\n')
    config = load_config(path, {"host": "0.0.0.0"})
    assert config.host == "0.0.0.0" and config.allow == ("192.168.1.0/24",)


# -- errors name the file, section and key -------------------------------------------------------


def _key_optional(
    cases: list[tuple[str, str] | tuple[str, str, str]],
) -> list[tuple[str, str, str | None]]:
    """``(toml, expected)`` cases name no key to check (``None``); ``(toml, expected, key)``
    cases name the key the error must carry."""
    return [(toml, expected, key[0] if key else None) for toml, expected, *key in cases]


# (toml, expected) or (toml, expected, the key the error must carry)
CONFIG_ERRORS = _key_optional(
    [
        ("[sever]\nport = 1\n", r"unknown section \[sever\]; allowed: server, model", "sever"),
        ("server = 5\n", r"server must be a section", "server"),
        ("[server]\nprot = 1\n", r"\[server\] has no key 'prot'; allowed: host, port"),
        ("[server]\nport = '9000'\n", r"\[server\] port must be an integer from 0 to 65535"),
        ("[server]\nport = 70000\n", r"\[server\] port must be an integer from 0 to 65535"),
        ("[server]\nport = -1\n", r"\[server\] port must be", "server.port"),
        ("[server]\nhost = ''\n", r"\[server\] host must be non-empty text", "server.host"),
        ("[server]\nreply_to = ['localhost']\n", r"\[server\] reply_to must be HOST:PORT"),
        ("[server]\nreply_to = ['h:0']\n", r"\[server\] reply_to port must be from 1 to 65535"),
        ("[server]\nreply_to = ['::1:9001']\n", r"IPv6 host in brackets", "server.reply_to"),
        ("[server]\nreply_to = '127.0.0.1:9001'\n", r"reply_to must be a list"),
        ("[server]\nallow = ['10.0.0.0/33']\n", r"\[server\] allow entries must be networks"),
        ("[server]\nallow = ['lan']\n", r"\[server\] allow entries must be networks"),
        ("[server]\nhost = '0.0.0.0'\n", r"\[server\] host is '0.0.0.0'.*allow-list", "allow"),
        ("[server]\nprogress_rate_hz = 0\n", r"\[server\] progress_rate_hz"),
        ("[model]\nsource = 5\n", r"\[model\] source must be non-empty text"),
        ("[model]\ndevice = 'tpu'\n", r"\[model\] device must be auto, cpu, cuda"),
        ("[model]\ndtype = 'fp8'\n", r"\[model\] dtype must be auto, fp16, bf16, fp32"),
        ("[model]\nwarmup = 'yes'\n", r"\[model\] warmup must be true or false"),
        ("[model]\nmax_batch = 0\n", r"\[model\] max_batch must be an integer from 1"),
        ("[output]\nrate = 22050\n", r"\[output\] rate must be one of 16000, 44100, 48000"),
        ("[output]\nformat = 'mp3'\n", r"\[output\] format must be one of pcm16, pcm24"),
        ("[output]\nloudness_lufs = 3\n", r"\[output\] loudness_lufs must be a number"),
        ("[output]\nmax_seconds = 0\n", r"\[output\] max_seconds must be a number"),
        ("[output]\nfolder = 5\n", r"\[output\] folder must be a folder or file path"),
        ("[output]\nday_folders = 1\n", r"\[output\] day_folders must be true or false"),
        ("[queue]\nsize = 0\n", r"\[queue\] size must be an integer from 1"),
        ("[queue]\nsize = 2.5\n", r"\[queue\] size must be an integer"),
        ("[queue]\nstale_live_seconds = -1\n", r"\[queue\] stale_live_seconds"),
        ("[clock]\ntempo = 1000\n", r"\[clock\] tempo must be a number from 20"),
        ("[clock]\nbeats_per_bar = 0\n", r"\[clock\] beats_per_bar must be an integer"),
        ("[defaults]\nbars = 65\n", r"\[defaults\] bars must be an integer from 1 to 64"),
        ("[defaults]\ncolour = 1\n", r"\[defaults\] colour is not an option \[defaults\] can set"),
        ("[defaults]\nid = 1\n", r"\[defaults\] id is not an option \[defaults\] can set; allowed"),
        ("[defaults]\nseconds = 40\n", r"\[defaults\] seconds must be a number from"),
        ("[defaults]\nscheduler = 'magic'\n", r"\[defaults\] scheduler must be one of ddim"),
        ("[defaults]\npriority = 'now'\n", r"\[defaults\] priority must be one of live"),
        ("[defaults]\npreset = 'nope'\n", r"\[defaults\] preset names no preset.*live, studio"),
        ("[defaults]\nloop = 2\n", r"\[defaults\] loop must be an integer from 0 to 1"),
        ("[defaults]\ngrid = 'loose'\n", r"\[defaults\] grid must be one of stretch, check, off"),
        ("[presets.live]\nsteps = 0\n", r"\[presets.live\] steps must be an integer from 1"),
        ("[presets.studio]\nguidance = 31\n", r"\[presets.studio\] guidance must be a number"),
        ("[presets.live]\nscheduler = 'magic'\n", r"\[presets.live\] scheduler must be one of"),
        ("[presets.live]\nnegative = 5\n", r"\[presets.live\] negative must be text"),
        ("[presets.live]\ncolour = 1\n", r"\[presets.live\] has unknown key\(s\) colour"),
        ("[presets]\nlive = 3\n", r"\[presets.live\] must be a table"),
        ('[presets."my preset"]\nsteps = 3\n', r"\[presets\] names must be"),
        ("[audio]\nenabled = 'no'\n", r"\[audio\] enabled must be true or false"),
        ("[audio]\nbuffer = 0\n", r"\[audio\] buffer must be an integer from 16"),
        ("[audio]\nrate = 100\n", r"\[audio\] rate must be an integer from 8000"),
        ("[audio]\ndevice = -1\n", r"\[audio\] device must be a device name"),
        ("[midi]\nbase_note = 128\n", r"\[midi\] base_note must be an integer from 0 to 127"),
        ("[midi]\nchannel = 0\n", r"\[midi\] channel must be an integer from 1 to 16"),
        ("[midi]\nvirtual = 1\n", r"\[midi\] virtual must be true or false"),
        ("[midi]\nbogus = 1\n", r"\[midi\] has no key 'bogus'; allowed: .*clock, cc"),
        ("[midi.cc.200]\nkey = 'steps'\nmin = 1\nmax = 2\n", r"controller must be in range"),
        ("[midi.cc.1]\nkey = 'steps'\nmin = 1\n", r"midi.cc.1 is missing max", "midi.cc"),
        ("[midi.cc.1]\nkey = 'prompt'\nmin = 0\nmax = 1\n", r"\[midi.cc.1\] key must be a"),
        ("[midi.cc.1]\nkey = 'bars'\nmin = 0\nmax = 8\n", r"\[midi.cc.1\] min must be a number"),
        ("[midi.cc.2]\nkey = 'gain'\nmin = 0\nmax = 3\n", r"\[midi.cc.2\] max must be a number"),
        ("[link]\nenabled = 'maybe'\n", r"\[link\] enabled must be true or false"),
        ("[log]\nlevel = 'loud'\n", r"\[log\] level must be one of debug, info, warning"),
        ("[server\nport = 1\n", r"is not valid TOML", "config"),
    ]
)


@pytest.mark.parametrize(("toml", "expected", "key"), CONFIG_ERRORS)
def test_errors_name_the_file_section_and_key(
    tmp_path: Path, toml: str, expected: str, key: str | None
) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(BadRequest, match=expected) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert info.value.code == "bad_request"
    if key is not None:
        assert info.value.key == key


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match=r"nowhere\.toml does not exist") as info:
        load_config(tmp_path / "nowhere.toml")
    assert info.value.key == "config"


def test_a_folder_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="is a folder"):
        load_config(tmp_path)


def test_a_binary_file_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "noise.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xb9\xff\x00")
    with pytest.raises(BadRequest, match=r"noise\.toml is not valid TOML") as info:
        load_config(path)
    assert info.value.key == "config"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[model]\ndtype = []\n", r"\[model\] dtype must be auto, fp16, bf16, fp32, got \[\]"),
        ("[model]\ndtype = {}\n", r"\[model\] dtype must be auto"),
        ('[server]\nreply_to = {"127.0.0.1:9001" = 1}\n', r"\[server\] reply_to must be a list"),
        ('[server]\nallow = {"10.0.0.0/8" = 1}\n', r"\[server\] allow must be a list"),
        ('[input]\nfolders = {"." = 1}\n', r"\[input\] folders must be a list"),
    ],
)
def test_values_of_the_wrong_shape_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(BadRequest, match=expected):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--buffer", "1"], r"^--buffer must be an integer from 16 to 16384, got 1$"),
        (["--input-dir", "/no/such/dir"], r"^--input-dir names .*not an existing folder$"),
        (["--reply-to", "nope"], r"^--reply-to must be HOST:PORT"),
        (["--port", "70000"], r"^--port must be an integer from 0 to 65535"),
    ],
)
def test_serve_errors_name_flags_that_exist(argv: list[str], expected: str) -> None:
    args = serve_parser().parse_args(argv)
    with pytest.raises(BadRequest, match=expected):
        configfrom_args(args)


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_clips_limit_must_be_at_least_one(
    limit: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["clips", "-n", limit, "--state", str(tmp_path)])
    assert info.value.code == 2
    assert "-n/--limit: must be a whole number of at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "expected", "key"),
    [
        ({"port": 70000}, r"--port must be an integer from 0 to 65535", "port"),
        ({"host": "0.0.0.0"}, r"--host is '0.0.0.0'.*allow-list", "allow"),
        ({"reply_to": ["nohost"]}, r"--reply-to must be HOST:PORT", "reply_to"),
        ({"reply_to": [("h", 0)]}, r"--reply-to must be an integer from 1 to 65535", "reply_to"),
        ({"allow": "10.0.0.0/8"}, r"--allow must be a list", "allow"),
        ({"tempo": "fast"}, r"--tempo must be a number from 20 to 400", "tempo"),
        ({"max_batch": 0}, r"--max-batch must be an integer from 1", "max_batch"),
        ({"log_level": "chatty"}, r"--log-level must be one of", "log_level"),
        ({"defaults": {"bars": 0}}, r"--bars must be an integer from 1 to 64", "defaults.bars"),
        ({"presets": {"live": {"steps": 0}}}, r"--presets live steps", "presets.live.steps"),
        ({"midi_cc": {1: {"key": "steps"}}}, r"midi.cc.1 is missing min, max", "midi_cc"),
        ({"midi_cc": {300: CCMapping("gain", 0, 1)}}, r"controller must be in range", "midi_cc"),
        ({"colour": "red"}, r"unknown setting 'colour'; allowed: model, device", "colour"),
    ],
)
def test_override_errors_name_the_flag(overrides: dict[str, Any], expected: str, key: str) -> None:
    with pytest.raises(BadRequest, match=expected) as info:
        load_config(None, overrides)
    assert info.value.key == key


def test_seconds_default_is_bounded_by_the_configured_maximum(tmp_path: Path) -> None:
    path = write(tmp_path, "[output]\nmax_seconds = 10\n[defaults]\nseconds = 12\n")
    with pytest.raises(BadRequest, match=r"\[defaults\] seconds must be a number from 0.04 to 10"):
        load_config(path)
    assert load_config(path, {"max_seconds": 20.0}).defaults["seconds"] == 12.0


def test_defaults_accept_every_generate_option_but_id() -> None:
    assert "id" not in DEFAULT_OPTION_KEYS
    assert {"bars", "preset", "priority", "seed", "negative"} <= set(DEFAULT_OPTION_KEYS)


# -- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9001", ("127.0.0.1", 9001)),
        ("localhost:57120", ("localhost", 57120)),
        ("[::1]:9001", ("::1", 9001)),
        (" studio-mac.local:7400 ", ("studio-mac.local", 7400)),
    ],
)
def test_parse_host_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["9001", "host:", ":9001", "host:port", "host:65536", "host:0", "::1:9001", "[x]:1"]
)
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(BadRequest, match="reply_to") as info:
        parse_host_port(text)
    assert info.value.key == "reply_to"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("studio-mac.local", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_grid_default_from_the_config_reaches_every_spec() -> None:
    from daemon.app.defaults import Defaults
    from daemon.wire.requests import GenerateOptions

    config = load_config(None, {"defaults": {"grid": "CHECK"}})
    assert config.defaults["grid"] == "check"
    defaults = Defaults(config, tempo=lambda: 120.0)
    assert defaults.build_spec("x", None).grid == "check"
    assert defaults.build_spec("x", GenerateOptions(grid="off")).grid == "off"  # request wins
    assert Defaults(load_config(None), tempo=lambda: 120.0).build_spec("x", None).grid == "stretch"
    assert defaults.value_of("grid") == "check"
