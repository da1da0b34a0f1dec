#!/usr/bin/env bash
# Create or reuse .venv and install everything napari-nuclei needs, idempotently:
# system packages for a headless Qt/OpenGL viewer, torch, the project, then detectron2
# through the project's own installer (napari-nuclei install-engine).
# A second run checks what is there and installs nothing that already works.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
log() { printf '[bootstrap] %s\n' "$*"; }

# --- 1. System packages: Xvfb, Mesa and the libraries Qt's xcb platform loads. -----
SYS_PKGS=(xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1
          libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
          libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0
          libxcb-shape0 libxcb-cursor0 libxcb-xkb1)
if command -v dpkg >/dev/null 2>&1; then
    missing=()
    for p in "${SYS_PKGS[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        log "installing system packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
else
    log "no dpkg: install Xvfb and Mesa (OpenGL) with your package manager for GUI tests"
fi

# --- 2. The virtual environment. ----------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

# --- 3. torch + torchvision (the big download; only when missing). ------------------
if ! "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
    log "installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    pip_install $TORCH_SPEC
fi

# --- 4. The project, its GUI, training and test extras (only when pyproject changed). -
STAMP="$VENV/.napari-nuclei-installed"
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ] \
        || ! "$PY" -c "import napari_nuclei, napari, PyQt6" >/dev/null 2>&1; then
    log "installing napari-nuclei (editable) with gui, qt, train and testing extras"
    pip_install -e "$ROOT[gui,qt,train,slides,testing]"
    echo "$HASH" > "$STAMP"
fi

# --- 5. detectron2, with the package's own installer: it uses an importable detectron2
# (a source build) when there is one, else installs detectron2's code into the venv and
# registers it; it also installs any missing runtime requirement. --check is quick.
if ! "$VENV/bin/napari-nuclei" install-engine --check >/dev/null 2>&1; then
    log "installing the detectron2 engine"
    "$VENV/bin/napari-nuclei" install-engine --quiet \
        || { log "the engine is not ready; see README 'Installing'"; exit 1; }
fi
log "environment ready: $VENV"
