#!/usr/bin/env bash
# Check the package as users get it: build the sdist and, from it, the wheel; install the
# wheel (not editable) into a fresh virtual environment in a temporary folder; then, from
# there and outside the source tree, run napari-nuclei info, install-engine, a short
# training on the packaged sample data, predict, and npe2 on the plugin's manifest and
# contributions. A file missing from the package, a wrong entry point or a missing
# dependency fails here.
#
# pip's cache is shared with the other environments, so the second run downloads nothing.
# TORCH_SPEC picks the torch build (default: the one the development environment uses);
# KEEP=1 keeps the temporary folder for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/napari-nuclei-wheel.XXXXXX")"
VENV="$WORK/venv"
# Nothing from the source tree may leak into the installed package's imports.
unset PYTHONPATH
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

step() { printf '[check-wheel %4ss] %s\n' "$SECONDS" "$*"; }
fail() { printf '[check-wheel] FAILED: %s\n' "$*" >&2; exit 1; }
cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then step "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# Run a command, keeping its output in $WORK/<name>.log and showing it only on failure.
run_logged() {
    local name="$1"; shift
    local status=0
    "$@" >"$WORK/$name.log" 2>&1 || status=$?
    if [ "$status" != 0 ]; then
        tail -n 30 "$WORK/$name.log" >&2
        fail "$name (exit status $status)"
    fi
}

step "building the sdist and, from it, the wheel"
run_logged build "$PYTHON" -m build --outdir "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/napari_nuclei-*.whl)"
ls "$WORK"/dist/napari_nuclei-*.tar.gz >/dev/null || fail "no sdist built"
for member in napari_nuclei/napari.yaml napari_nuclei/sample_data/train \
        napari_nuclei/sample_data/test/test_img_ids.json; do
    "$PYTHON" -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit(not any(n.startswith(sys.argv[2]) for n in names))" "$WHEEL" "$member" \
        || fail "the wheel lacks $member"
done

step "creating a fresh virtual environment in $VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# The user's choice of torch build comes first, as the README says.
step "installing $TORCH_SPEC"
# shellcheck disable=SC2086
run_logged torch "${PIP[@]}" install $TORCH_SPEC
step "installing $(basename "$WHEEL")[all,qt]"
run_logged wheel "${PIP[@]}" install "$WHEEL[all,qt]"

cd "$WORK"  # away from the source tree
CLI="$VENV/bin/napari-nuclei"
"$CLI" info > info-before.txt
grep -q "^engine  *not ready" info-before.txt || fail "info before install-engine: $(cat info-before.txt)"
set +e
"$CLI" install-engine --check > check-before.txt
status=$?
set -e
[ "$status" = 3 ] || fail "install-engine --check before installing exited $status, not 3"

step "napari-nuclei install-engine"
run_logged install-engine "$CLI" install-engine
grep -q "The engine is ready" "$WORK/install-engine.log" \
    || fail "install-engine: $(tail -n 3 "$WORK/install-engine.log")"
[ -f "$VENV/detectron2-dist/detectron2/__init__.py" ] || fail "no detectron2 in $VENV"
run_logged install-engine-again "$CLI" install-engine
grep -q "^Nothing to do" "$WORK/install-engine-again.log" || fail "install-engine is not idempotent"
run_logged check "$CLI" install-engine --check
# As the dock does it: in one process, install into an environment without the engine and
# use it at once, without restarting.
"$VENV/bin/python" - "$VENV" <<'PY' || fail "the engine is not usable without a restart"
import shutil, sys
from pathlib import Path

from napari_nuclei.core.engine import default_location, engine_status, install_engine
from napari_nuclei.core.jobs import drain

location = default_location()
assert location.folder == Path(sys.argv[1]).resolve() / "detectron2-dist", location
sys.path.remove(str(location.folder))
shutil.rmtree(location.folder)
location.pth_file.unlink()
assert engine_status().source == "missing"
result = drain(install_engine())
assert result.ready and not result.restart_needed, result.summary()
from detectron2.modeling import build_model  # noqa: F401
print("installed and imported in one process")
PY
"$CLI" info > info.txt
grep -q "installed by napari-nuclei install-engine" info.txt || fail "info: $(cat info.txt)"
grep -q "^engine  *ready" info.txt || fail "info: $(cat info.txt)"

SAMPLE="$("$VENV/bin/python" -c \
    'from napari_nuclei.core.sample import sample_data_dir; print(sample_data_dir())')"
case "$SAMPLE" in
    "$VENV"/*) ;;
    *) fail "sample data found at $SAMPLE, not inside the installed package" ;;
esac

step "training the tiny preset for a few iterations on $SAMPLE"
run_logged train "$CLI" train --data "$SAMPLE" --out "$WORK/run" --preset tiny --iters 4 \
    --checkpoint-period 2 --device cpu -q
[ -f "$WORK/run/model_final.pth" ] || fail "training wrote no model_final.pth"

# One packaged test image (the 256x256 fluorescence tile): the H&E tile would only add time.
step "predicting a packaged test image"
run_logged predict "$CLI" predict --model "$WORK/run" --images "$SAMPLE/test/fluo_r1c1.png" \
    --test-ids "$SAMPLE/test/test_img_ids.json" -o "$WORK/submission.json" \
    --labels-dir "$WORK/labels" --device cpu -q
[ -f "$WORK/labels/fluo_r1c1.tif" ] && [ -f "$WORK/labels/fluo_r1c1.csv" ] \
    || fail "predict wrote no label image"
"$VENV/bin/python" - "$WORK/submission.json" "$SAMPLE/test/test_img_ids.json" <<'PY' \
    || fail "the submission is not a list of the test image's nuclei"
import json, sys
entries = json.load(open(sys.argv[1]))
ids = {image["id"] for image in json.load(open(sys.argv[2])) if image["file_name"] == "fluo_r1c1.png"}
assert isinstance(entries, list), "not a list"
assert {entry["image_id"] for entry in entries} <= ids, "unknown image ids"
PY

step "npe2: manifest, imports and contributions"
run_logged npe2-validate "$VENV/bin/npe2" validate napari-nuclei --imports
"$VENV/bin/npe2" list --format json > npe2-list.json
"$VENV/bin/python" - "$SAMPLE" <<'PY' || fail "npe2 does not find the plugin's contributions"
import json, sys
import npe2

listed = {plugin["name"]: plugin for plugin in json.load(open("npe2-list.json"))}
assert "napari-nuclei" in listed, f"npe2 list: {sorted(listed)}"
manager = npe2.PluginManager.instance()
manager.discover()
contributions = manager.get_manifest("napari-nuclei").contributions
assert contributions.widgets and contributions.readers and contributions.writers
for sample in contributions.sample_data:
    layers = manager.commands.execute(sample.command)
    assert layers and layers[0][0].ndim >= 2, sample.key
# The reader claims JSON only (dataset folders open from the dock): a test folder's ids.
layers = npe2.read([sys.argv[1] + "/test/test_img_ids.json"], stack=False,
                   plugin_name="napari-nuclei")
assert layers, "the reader opened nothing"
print(f"npe2: {len(contributions.sample_data)} samples, reader gave {len(layers)} layers")
PY
step "passed: $(basename "$WHEEL") installs, provisions its engine, trains and predicts"
