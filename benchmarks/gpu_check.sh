#!/usr/bin/env bash
# The one prepared GPU run (issue 13); see docs/performance.md "The GPU path".
#
#   benchmarks/gpu_check.sh --fetch-wheels [PYTHON_VERSION [PLATFORM]]
#       beforehand, on a machine with network: download the dependencies' wheels (all but
#       torch, which the GPU machine has) into benchmarks/wheels/ for that machine's Python
#       (default 3.11) and platform (default manylinux_2_28_x86_64; manylinux2014 wheels are
#       taken too). Roughly 150-250 MB (transformers, diffusers, librosa, numba, llvmlite, scipy).
#   benchmarks/gpu_check.sh [--dry-run] [ARGS...]
#       on the GPU machine (PyTorch preinstalled, no network): a venv that sees the system's
#       torch, the wheels installed from benchmarks/wheels/ with --no-index, then
#       python -m benchmarks.gpu_check, writing one JSON under $OUT (default ./gpu-check-out).
#       --dry-run: the same code on the CPU with the tiny model (uses the current Python as is).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
wheels="$here/wheels"
python="${PYTHON:-python3}"

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
    pyver="${2:-3.11}"
    platform="${3:-manylinux_2_28_x86_64}"
    mkdir -p "$wheels"
    requirements > "$wheels/requirements.txt"
    # only binary wheels for the target (never sdists, which would need a compiler there);
    # torch is excluded, but a dependency that asks for it would pull it: none does today
    "$python" -m pip download --dest "$wheels" --only-binary :all: \
        --python-version "$pyver" --platform "$platform" --platform manylinux2014_x86_64 \
        --platform manylinux_2_17_x86_64 -r "$wheels/requirements.txt"
    du -sh "$wheels"
    exit 0
fi

if [[ "${1:-}" == "--dry-run" ]]; then
    shift
    cd "$root"
    exec "$python" -m benchmarks.gpu_check --dry-run --out "${OUT:-$root/gpu-check-out}" "$@"
fi

out="${OUT:-$root/gpu-check-out}"
mkdir -p "$out"
venv="${VENV:-/tmp/musicldm-gpu-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv --system-site-packages "$venv"  # the machine's own torch, unchanged
fi
if [[ -d "$wheels" ]]; then
    requirements > "$out/requirements.txt"
    "$venv/bin/python" -m pip install --no-index --find-links "$wheels" \
        -r "$out/requirements.txt" > "$out/pip-install.log" 2>&1 \
        || { echo "installing from $wheels failed: see $out/pip-install.log" >&2; exit 1; }
else
    echo "no $wheels: using what $venv already has (run --fetch-wheels beforehand)" >&2
fi
cd "$root"  # the working tree itself is imported (daemon, musicldm_core, clients, benchmarks)
"$venv/bin/python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
exec timeout 470 "$venv/bin/python" -m benchmarks.gpu_check --out "$out" "$@"
