#!/usr/bin/env bash
# Run lint and the test suite in .venv; GUI tests need a display, so start a virtual one
# (Xvfb) when there is none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export QT_API="${QT_API:-pyqt6}"
.venv/bin/ruff check src tests benchmarks scripts
if [ -z "${DISPLAY:-}" ]; then
    exec xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m pytest "$@"
fi
exec .venv/bin/python -m pytest "$@"
