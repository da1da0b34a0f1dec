#!/usr/bin/env bash
# Check the package as users get it, on both paths of README's "Installing":
#   bare - the wheel without extras, as napari's plugin manager installs it, then torch,
#          then napari-nuclei install-engine;
#   all  - torch, then the wheel with [all,qt] (pip install "napari-nuclei[all]").
# The sdist is built and the wheel built from it; each path gets a fresh virtual
# environment in a temporary folder. From there and outside the source tree: info,
# install-engine, the demo on the packaged sample data (its tiny run is the one model both
# paths predict with: training happens once), predict with --measurements and --geojson,
# predict-slide on a small generated slide, pip check, npe2 on the plugin's manifest and
# contributions. Meanwhile every other Python on this machine tries a dry-run install of
# the wheel: those requires-python admits must resolve it, the others must be refused.
# A file missing from the package, a wrong entry point or a missing dependency fails here.
#
# pip's cache is shared with the other environments, so a second run downloads nothing.
# TORCH_SPEC picks the torch build (default: the one the development environment uses);
# KEEP=1 keeps the temporary folder for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/napari-nuclei-wheel.XXXXXX")"
BARE="$WORK/bare"
ALL="$WORK/all"
# Nothing from the source tree may leak into the installed package's imports.
unset PYTHONPATH
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# The environments' engine verdicts stay in the temporary folder.
export NAPARI_NUCLEI_CACHE_DIR="$WORK/cache"

step() { printf '[check-wheel %4ss] %s\n' "$SECONDS" "$*"; }
fail() { printf '[check-wheel] FAILED: %s\n' "$*" >&2; exit 1; }
cleanup() {
    local jobs_left
    jobs_left="$(jobs -p)"
    # shellcheck disable=SC2086
    [ -z "$jobs_left" ] || kill $jobs_left 2>/dev/null || true
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
# Wait for a background job started with `... & pids[name]=$!`, failing with its log.
wait_for() {
    local name="$1" pid="$2" status=0
    wait "$pid" || status=$?
    if [ "$status" != 0 ]; then
        tail -n 30 "$WORK/$name.log" >&2
        fail "$name (exit status $status)"
    fi
}
pip_in() { local venv="$1"; shift; "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }

step "building the sdist and, from it, the wheel"
run_logged build "$PYTHON" -m build --outdir "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/napari_nuclei-*.whl)"
ls "$WORK"/dist/napari_nuclei-*.tar.gz >/dev/null || fail "no sdist built"
for member in napari_nuclei/napari.yaml napari_nuclei/sample_data/train \
        napari_nuclei/sample_data/test/test_img_ids.json \
        napari_nuclei/sample_data/test/he_tile_1000.png; do
    "$PYTHON" -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit(not any(n.startswith(sys.argv[2]) for n in names))" "$WHEEL" "$member" \
        || fail "the wheel lacks $member"
done

# --- Other Pythons: what requires-python admits installs, the rest is refused. --------
other_pythons() {
    local requires ours exe version answer newest_refused="" refused_exe=""
    requires="$("$PYTHON" - "$WHEEL" <<'PY'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
lines = wheel.read(name).decode().splitlines()
print(next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Python:")))
PY
)"
    ours="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    echo "requires-python: $requires (this Python: $ours)"
    local seen=" $ours "
    for exe in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3 \
            $(command -v python3.9 python3.10 python3.11 python3.12 python3.13 python3.14 \
              2>/dev/null || true); do
        [ -x "$exe" ] || continue
        version="$("$exe" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
            || continue  # a pyenv shim of a version that is not enabled
        case "$seen" in *" $version "*) continue ;; esac
        seen="$seen$version "
        # pip before 22.2 has no --dry-run.
        "$exe" -m pip install --help 2>/dev/null | grep -q -- "--dry-run" \
            || { echo "Python $version: its pip has no --dry-run, skipped"; continue; }
        if "$PYTHON" -c 'import sys; from packaging.specifiers import SpecifierSet
sys.exit(not SpecifierSet(sys.argv[1]).contains(sys.argv[2] + ".99"))' "$requires" "$version"
        then
            if "$exe" -m pip install --dry-run --ignore-installed \
                    --disable-pip-version-check -q "$WHEEL[all]" > "$WORK/dry-run.log" 2>&1
            then
                echo "Python $version: admitted, and the wheel with [all] resolves"
            else
                grep -v "is ignored: it is neither" "$WORK/dry-run.log" | tail -n 5
                echo "Python $version: admitted, but the wheel with [all] does not resolve"
                return 1
            fi
        else
            answer="$("$exe" -m pip install --dry-run --ignore-installed --no-deps \
                --disable-pip-version-check "$WHEEL" 2>&1 || true)"
            case "$answer" in
                *"requires a different Python"*)
                    echo "Python $version: not admitted, and pip refuses the wheel" ;;
                *) echo "Python $version: not admitted, yet pip takes the wheel"; return 1 ;;
            esac
            # The newest of those below this (admitted) Python: just below the floor.
            if [ "$(printf '%s\n' "$version" "$ours" | sort -V | head -n 1)" = "$version" ] \
                    && [ "$(printf '%s\n' "$version" "${newest_refused:-0}" | sort -V \
                            | tail -n 1)" = "$version" ]; then
                newest_refused="$version"; refused_exe="$exe"
            fi
        fi
    done
    # The floor is no higher than it must be: just below it, the package's requirements
    # (those of [all]) do not resolve by themselves, each release judged by its own
    # Requires-Python.
    if [ -n "$refused_exe" ]; then
        local requirements=()
        mapfile -t requirements < <("$PYTHON" - "$WHEEL" <<'PY'
import sys, zipfile
from packaging.requirements import Requirement
wheel = zipfile.ZipFile(sys.argv[1])
name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
for line in wheel.read(name).decode().splitlines():
    if line.startswith("Requires-Dist:"):
        requirement = Requirement(line.split(":", 1)[1].strip())
        if requirement.marker is None or requirement.marker.evaluate({"extra": "all"}):
            requirement.marker = None
            print(requirement)
PY
)
        answer="$("$refused_exe" -m pip install --dry-run --ignore-installed \
            --disable-pip-version-check -q "${requirements[@]}" 2>&1 && echo RESOLVED || true)"
        case "$answer" in
            *RESOLVED*)
                echo "Python $newest_refused: refused by requires-python, yet the" \
                    "requirements of [all] resolve there"
                return 1 ;;
            *"No matching distribution found for "*)
                echo "Python $newest_refused: the requirements of [all] do not resolve" \
                    "there either ($(printf '%s\n' "$answer" \
                        | grep -o "No matching distribution found for [^ ]*" | head -n 1))" ;;
            *) printf '%s\n' "$answer" | tail -n 5
               echo "Python $newest_refused: the dry run failed for another reason"
               return 1 ;;
        esac
    fi
}
step "other Pythons: dry-run installs, in the background"
other_pythons > "$WORK/other-pythons.log" 2>&1 &
OTHER_PYTHONS=$!

# --- The two environments, set up side by side. --------------------------------------
setup_bare() {
    "$PYTHON" -m venv "$BARE"
    # As napari's plugin manager does: the package alone, no extras; torch afterwards.
    pip_in "$BARE" install "$WHEEL"
    # shellcheck disable=SC2086
    pip_in "$BARE" install $TORCH_SPEC
}
setup_all() {
    "$PYTHON" -m venv "$ALL"
    # The user's choice of torch build first, as the README says for pip.
    # shellcheck disable=SC2086
    pip_in "$ALL" install $TORCH_SPEC
    pip_in "$ALL" install "$WHEEL[all,qt]"
}
step "bare: $(basename "$WHEEL"), then $TORCH_SPEC; all: $TORCH_SPEC, then [all,qt]"
setup_bare > "$WORK/setup-bare.log" 2>&1 &
SETUP_BARE=$!
setup_all > "$WORK/setup-all.log" 2>&1 &
SETUP_ALL=$!
wait_for setup-bare "$SETUP_BARE"
wait_for setup-all "$SETUP_ALL"

cd "$WORK"  # away from the source tree
SAMPLE="$("$BARE/bin/python" -c \
    'from napari_nuclei.core.sample import sample_data_dir; print(sample_data_dir())')"
case "$SAMPLE" in
    "$BARE"/*) ;;
    *) fail "sample data found at $SAMPLE, not inside the installed package" ;;
esac

# --- bare: what the plugin manager leaves, and install-engine. -----------------------
"$BARE/bin/napari-nuclei" info > info-bare-before.txt
grep -q "^engine  *not ready" info-bare-before.txt \
    || fail "info before install-engine: $(cat info-bare-before.txt)"
grep -q "^sample data  *$SAMPLE$" info-bare-before.txt \
    || fail "info does not show the sample data folder: $(cat info-bare-before.txt)"
# Slides, measurements and GeoJSON come with the wheel; only OpenSlide's library is left.
grep "^libraries " info-bare-before.txt | grep -q "need openslide-python" \
    || fail "info does not name OpenSlide's missing library: $(cat info-bare-before.txt)"
if grep "^libraries " info-bare-before.txt | grep -qE "tiffslide|zarr|pyarrow|shapely"; then
    fail "the bare wheel lacks slide libraries: $(grep '^libraries' info-bare-before.txt)"
fi
set +e
"$BARE/bin/napari-nuclei" install-engine --check > check-before.txt
status=$?
set -e
[ "$status" = 3 ] || fail "install-engine --check before installing exited $status, not 3"

step "bare: napari-nuclei install-engine"
run_logged install-engine "$BARE/bin/napari-nuclei" install-engine
grep -q "The engine is ready" "$WORK/install-engine.log" \
    || fail "install-engine: $(tail -n 3 "$WORK/install-engine.log")"
[ -f "$BARE/detectron2-dist/detectron2/__init__.py" ] || fail "no detectron2 in $BARE"
run_logged install-engine-again "$BARE/bin/napari-nuclei" install-engine
grep -q "^Nothing to do" "$WORK/install-engine-again.log" || fail "install-engine is not idempotent"
run_logged check "$BARE/bin/napari-nuclei" install-engine --check
# As the dock does it: in one process, install into an environment without the engine and
# use it at once, without restarting.
"$BARE/bin/python" - "$BARE" <<'PY' || fail "the engine is not usable without a restart"
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
"$BARE/bin/napari-nuclei" info > info-bare.txt
grep -q "installed by napari-nuclei install-engine" info-bare.txt || fail "info: $(cat info-bare.txt)"
grep -q "^engine  *ready" info-bare.txt || fail "info: $(cat info-bare.txt)"
grep -q "^libraries  *all installed" info-bare.txt \
    || fail "install-engine left libraries missing: $(grep '^libraries' info-bare.txt)"

# --- all: install-engine, then the demo, which trains the run both paths use. ---------
step "all: napari-nuclei install-engine"
run_logged install-engine-all "$ALL/bin/napari-nuclei" install-engine
grep -q "The engine is ready" "$WORK/install-engine-all.log" \
    || fail "install-engine ([all]): $(tail -n 3 "$WORK/install-engine-all.log")"
"$ALL/bin/napari-nuclei" info > info-all.txt
grep -q "^libraries  *all installed" info-all.txt \
    || fail "[all] leaves libraries missing: $(grep '^libraries' info-all.txt)"

step "all: the demo (4 iterations) on the packaged sample data"
run_logged demo "$ALL/bin/napari-nuclei" demo --out "$WORK/demo" --iters 4 --device cpu
RUN="$WORK/demo/run"
for name in annotations.json submission.json metrics.json corrected_labels.json loss.png \
        napari.png run/model_final.pth; do
    [ -f "$WORK/demo/$name" ] || fail "the demo wrote no $name"
done
grep -q "checking and converting $ALL/" "$WORK/demo.log" \
    || fail "the demo did not read the sample data inside the package"
[ ! -e "$RUN/.train.lock" ] || fail "the finished run keeps its .train.lock"

# A small slide (512 x 512 px, 3 levels) made from the packaged H&E tile.
"$BARE/bin/python" - "$SAMPLE" "$WORK/slide.tif" <<'PY' || fail "no test slide written"
import sys
from napari_nuclei.core.image_io import read_image
from napari_nuclei.core.slide.synthetic import write_test_slide

source = read_image(sys.argv[1] + "/test/he_tile_1000.png")
write_test_slide(sys.argv[2], source, 512, block=256, min_level_side=128, blank_fraction=0.25)
PY

# --- Both paths: predict with measurements and GeoJSON, predict-slide, pip check. -----
# Four iterations from scratch score nuclei around 0.3, the tiny preset's threshold: a
# lower one makes sure there are nuclei to measure and outline.
THRESHOLD=0.05
for path in bare all; do
    venv="$WORK/$path"
    out="$WORK/predicted-$path"
    step "$path: predict with --measurements and --geojson"
    run_logged "predict-$path" "$venv/bin/napari-nuclei" predict --model "$RUN" \
        --images "$SAMPLE/test/fluo_r1c1.png" --test-ids "$SAMPLE/test/test_img_ids.json" \
        -o "$out/submission.json" --labels-dir "$out/labels" \
        --measurements "$out/nuclei.parquet" --geojson "$out/geojson" \
        --score-thresh "$THRESHOLD" --device cpu -q
    "$venv/bin/python" - "$out" "$SAMPLE/test/test_img_ids.json" <<'PY' \
        || fail "$path: predict's outputs are not the test image's nuclei"
import json, sys
from pathlib import Path

import pyarrow.parquet as pq

out = Path(sys.argv[1])
entries = json.loads((out / "submission.json").read_text())
ids = {image["id"] for image in json.loads(Path(sys.argv[2]).read_text())
       if image["file_name"] == "fluo_r1c1.png"}
assert isinstance(entries, list) and {e["image_id"] for e in entries} <= ids
assert (out / "labels" / "fluo_r1c1.tif").is_file() and (out / "labels" / "fluo_r1c1.csv").is_file()
table = pq.read_table(out / "nuclei.parquet")
collection = json.loads((out / "geojson" / "fluo_r1c1.geojson").read_text())
assert collection["type"] == "FeatureCollection"
assert table.num_rows == len(collection["features"]) == len(entries) > 0, (
    table.num_rows, len(collection["features"]), len(entries))
print(f"{len(entries)} nuclei: submission, table and GeoJSON agree")
PY
    step "$path: predict-slide on a generated pyramidal TIFF"
    run_logged "predict-slide-$path" "$venv/bin/napari-nuclei" predict-slide "$WORK/slide.tif" \
        --model "$RUN" -o "$WORK/slides-$path" --score-thresh "$THRESHOLD" --device cpu -q
    for name in nuclei.ome.zarr nuclei.parquet nuclei.geojson tissue.png; do
        [ -e "$WORK/slides-$path/slide/$name" ] || fail "$path: predict-slide wrote no $name"
    done
    "$venv/bin/python" - "$WORK/slides-$path" <<'PY' || fail "$path: predict-slide found nothing"
import csv, json, sys
from pathlib import Path

import pyarrow.parquet as pq

out = Path(sys.argv[1])
(row,) = csv.DictReader(open(out / "summary.csv"))
rows = pq.read_metadata(out / "slide" / "nuclei.parquet").num_rows
features = json.loads((out / "slide" / "nuclei.geojson").read_text())["features"]
assert int(row["nuclei"]) == rows == len(features) > 0, (row["nuclei"], rows, len(features))
print(f"{rows} nuclei in the slide: summary, table and GeoJSON agree")
PY
    step "$path: pip check"
    run_logged "pip-check-$path" pip_in "$venv" check
done

step "npe2: manifest, imports and contributions ([all] holds napari)"
run_logged npe2-validate "$ALL/bin/npe2" validate napari-nuclei --imports
"$ALL/bin/npe2" list --format json > npe2-list.json
"$ALL/bin/python" - "$SAMPLE" <<'PY' || fail "npe2 does not find the plugin's contributions"
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

step "other Pythons: waiting for the dry-run installs"
wait_for other-pythons "$OTHER_PYTHONS"
sed 's/^/    /' "$WORK/other-pythons.log"
step "passed: $(basename "$WHEEL") installs bare and with [all], provisions its engine, runs the demo, predicts images and slides"
