"""``napari-nuclei install-engine``: make detectron2 usable in this environment."""

from __future__ import annotations

import argparse
import sys

EXIT_READY = 0
EXIT_FAILED = 1
EXIT_ENGINE_MISSING = 3


def add_parser(sub) -> None:
    """Register the ``install-engine`` sub-command."""
    p = sub.add_parser(
        "install-engine",
        help="install detectron2 (not on PyPI) and its requirements into this environment",
        description="Install detectron2's code into a folder of this environment and put it "
        "on the environment's path, or use an importable detectron2 when there is one (a "
        "source build); install its missing requirements; then use it once (a tiny Mask "
        "R-CNN in a new interpreter). torch is left to you: when it is missing or does not "
        "match torchvision this says which command fixes it. Running it again changes "
        f"nothing that works. Exit status: {EXIT_READY} ready; {EXIT_ENGINE_MISSING} "
        "something is still missing or does not work (torch, or anything with --check); "
        f"{EXIT_FAILED} the installation failed.",
    )
    p.add_argument("--check", action="store_true",
                   help="only report what is installed and whether it works (the verdict is "
                   "kept until the engine changes)")
    p.add_argument("-q", "--quiet", action="store_true", help="no pip output, steps only")
    p.set_defaults(func=run)


def _print_status(status) -> None:
    print(f"detectron2: {status.origin()}")
    # Complete but failing when used: the pieces are there, they do not work.
    label = "not working" if status.complete else "missing"
    for line in status.problems():
        print(f"{label}: {line}")
    print("engine: ready" if status.ready else "engine: not ready")


def run(args: argparse.Namespace) -> int:
    """Run ``napari-nuclei install-engine``; returns the exit status."""
    from ..core.engine import EngineInstallError, engine_status, install_engine, verify_engine
    from ..core.jobs import drain

    if args.check:
        status = verify_engine(engine_status())
        _print_status(status)
        return EXIT_READY if status.ready else EXIT_ENGINE_MISSING

    def show(step) -> None:
        if step.detail:
            if not args.quiet:
                print(f"    {step.message}", flush=True)
        else:
            print(f"[{step.step}/{step.total}] {step.message}", flush=True)

    try:
        result = drain(install_engine(), show)
    except EngineInstallError as exc:
        print(f"napari-nuclei: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if result.restart_needed and result.status.ready:
        # This command ends here anyway: the next one starts with the new packages.
        print("The engine is ready from the next command on.")
    else:
        print(result.summary() if result.changed or not result.ready
              else f"Nothing to do. {result.summary()}")
    return EXIT_READY if result.status.ready else EXIT_ENGINE_MISSING
