# Two commands do all set-up on a fresh machine:
#   make demo   - install (first time) and run the main job on the bundled sample data
#   make test   - install (first time) and run the test suite (headless: Xvfb)
#   make check-wheel - build the wheel, install it into a fresh venv and run it (make test does too)
.PHONY: setup demo test check-wheel napari lint clean

VENV := .venv
CLI := $(VENV)/bin/napari-nuclei
DEMO_OUT ?= demo_output

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(CLI) demo --out $(DEMO_OUT) $(DEMO_ARGS)

napari: setup
	@QT_API=pyqt6 $(CLI) gui $(if $(RUN),--run $(RUN))

test: setup
	@bash scripts/run_tests.sh $(PYTEST_ARGS)

check-wheel: setup
	@bash scripts/check_wheel.sh

lint: setup
	@$(VENV)/bin/ruff check src tests benchmarks scripts

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
