#!/usr/bin/env bash
# The one prepared GPU run (issue 13); see docs/performance.md "The GPU path".
#
#   benchmarks/gpu_check.sh --fetch-wheels [PYTHON_VERSION [PLATFORM ...]]
#       beforehand, on a machine with network: wheels for the dependencies the GPU machine's
#       image lacks (benchmarks/gpu_image_packages.txt lists what it has: torch, transformers,
#       numpy, scipy, numba, ...), into benchmarks/wheels/ (ignored by git; name it in the device
#       tool's `carry`). Default Python 3.12 (the image's) and the manylinux x86-64 platforms.
#       The versions are the ones installed here where the target has them (what the tests ran
#       with). About 10 MB; refused over 48 MiB (the device tool carries at most 64 MiB in all).
#   benchmarks/gpu_check.sh [--dry-run] [ARGS...]
#       on the GPU machine (PyTorch preinstalled, no network): the carried wheels installed with
#       --no-deps into a target folder on PYTHONPATH (python3 there is itself a venv holding
#       torch, so a venv of it would not see torch), an import check that names what is
#       missing, then python -m benchmarks.gpu_check, writing one JSON under $OUT (default
#       ./gpu-check-out). --dry-run: the same code on the CPU with the tiny model, with the
#       current Python as it is.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
wheels="${WHEELS:-$here/wheels}"
python="${PYTHON:-python3}"
max_carry_bytes=$((48 * 1024 * 1024))

requirements() {  # the project's dependencies but torch (preinstalled on the GPU machine)
    "$python" - "$root/pyproject.toml" <<'PY'
import re, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
for dep in deps:
    name = re.split(r"[ <>=!;\[]", dep, maxsplit=1)[0].lower()
    if name != "torch" and "python_version < '3.11'" not in dep:
        print(dep)
PY
}

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    pyver="${2:-3.12}"
    shift $(($# < 2 ? $# : 2))
    platforms=("$@")
    if [[ ${#platforms[@]} -eq 0 ]]; then
        platforms=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64
            manylinux2014_x86_64 manylinux1_x86_64)
    fi
    target=(--only-binary :all: --python-version "$pyver" --implementation cp)
    for p in "${platforms[@]}"; do target+=(--platform "$p"); done
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    rm -rf "$wheels"
    mkdir -p "$wheels"
    requirements > "$work/requirements.txt"
    "$python" -m pip freeze --exclude-editable | grep -v -i '^torch=' > "$work/constraints.txt" || true
    # the whole dependency closure for the target, at the versions tested here where it has
    # them (binary wheels only: nothing may need a compiler there)
    if ! "$python" -m pip install -q --dry-run --ignore-installed "${target[@]}" \
        --target "$work/t" --report "$work/report.json" -c "$work/constraints.txt" \
        -r "$work/requirements.txt" 2> "$work/resolve.log"; then
        grep -v '^WARNING: Location' "$work/resolve.log" | tail -3 >&2
        echo "could not resolve at the versions tested here for Python $pyver; resolving afresh" >&2
        "$python" -m pip install -q --dry-run --ignore-installed "${target[@]}" \
            --target "$work/t" --report "$work/report.json" -r "$work/requirements.txt"
    fi
    "$python" - "$work/report.json" "$here/gpu_image_packages.txt" > "$wheels/carried.txt" <<'PY'
import json, re, sys
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
have = {norm(l.strip()) for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")}
for item in json.load(open(sys.argv[1]))["install"]:
    meta = item["metadata"]
    if norm(meta["name"]) not in have:
        print(f"{meta['name']}=={meta['version']}")
PY
    "$python" -m pip download -q --no-deps "${target[@]}" --dest "$wheels" -r "$wheels/carried.txt"
    bytes=$(du -sb "$wheels" | cut -f1)
    echo "$(wc -l < "$wheels/carried.txt") wheels, $((bytes / 1024)) KiB in $wheels:" >&2
    tr '\n' ' ' < "$wheels/carried.txt" >&2
    echo >&2
    if ((bytes > max_carry_bytes)); then
        echo "that is over $((max_carry_bytes / 1024 / 1024)) MiB: the device tool would refuse it" >&2
        exit 1
    fi
    exit 0
fi

if [[ "${1:-}" == "--dry-run" ]]; then
    shift
    cd "$root"
    exec "$python" -m benchmarks.gpu_check --dry-run --out "${OUT:-$root/gpu-check-out}" "$@"
fi

out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
site="${SITE:-/tmp/musicldm-site}"
if compgen -G "$wheels/*.whl" > /dev/null; then
    "$python" -m pip install --no-index --no-deps --no-compile --upgrade --target "$site" \
        "$wheels"/*.whl > "$out/pip-install.log" 2>&1 \
        || { echo "installing from $wheels failed: see $out/pip-install.log" >&2; exit 1; }
else
    echo "no wheels in $wheels: using what $python has (run --fetch-wheels beforehand)" >&2
fi
# the working tree itself is imported (daemon, musicldm_core, clients, benchmarks)
export PYTHONPATH="$site:$root${PYTHONPATH:+:$PYTHONPATH}"
cd "$root"
"$python" - <<'PY' 2>&1 | tee "$out/imports.txt"
import importlib, sys
import torch
assert torch.cuda.is_available(), "no CUDA device"
needed = ["diffusers", "transformers", "safetensors", "numpy", "soundfile", "soxr", "librosa",
          "python_stretch", "pyloudnorm", "platformdirs", "tqdm", "pythonosc"]
missing = []
for name in needed:
    try:
        importlib.import_module(name)
    except Exception as exc:  # an ImportError, or a library's own error at import
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
for name in ("mido", "rtmidi", "sounddevice"):  # the daemon runs without MIDI and sound here
    try:
        importlib.import_module(name)
    except Exception as exc:
        print(f"optional here: {name} unavailable ({type(exc).__name__}: {exc})")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
if missing:
    sys.exit("missing: " + "; ".join(missing))
PY
exec timeout 470 "$python" -m benchmarks.gpu_check --out "$out" "$@"
