# raypi: `make demo` and `make test` are the whole set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision versions known to install together (GPU build on x86_64 Linux).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
# Every install takes its versions from constraints.txt, as cluster.yaml's nodes do.
PIP_INSTALL := $(BIN)/pip install -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: install sysdeps demo test lint docs clean
DEMO_RESULTS ?= results/distill_grid_demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) $(TORCH_PINS)
	# The S3 stack first: s3fs pins aiobotocore, which pins botocore, and resolving that
	# inside the full graph sends pip backtracking through dozens of ray releases.
	$(PIP_INSTALL) s3fs 'moto[server]' boto3
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Optional system packages, installed where apt-get and root are at hand; elsewhere the tests
# that need them skip and say why. Plastimatch renders INSPECT's DRRs (raypi build inspect);
# openssh-server and rsync let tests/test_cluster_ray_up.py run `ray up` against an sshd on
# 127.0.0.1 (the test starts its own sshd; where the package starts a system one, that stays).
sysdeps:
	@command -v plastimatch >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && apt-get install -y -qq --no-install-recommends plastimatch) \
	  >/dev/null 2>&1; } || echo "plastimatch not installed: DRR tests will be skipped"
	@{ [ -x /usr/sbin/sshd ] && command -v rsync >/dev/null; } || { [ "$$(id -u)" = 0 ] \
	  && command -v apt-get >/dev/null && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends openssh-server rsync) >/dev/null 2>&1; } \
	  || echo "openssh-server or rsync not installed: the ray up test will be skipped"

# The main job on the built-in demo: data -> features -> teachers -> students -> report.
demo: install
	$(BIN)/python sweeps/distill_grid.py
	$(BIN)/raypi report $(DEMO_RESULTS) --out $(DEMO_RESULTS)/report

lint: install
	$(BIN)/ruff check raypi sweeps analysis benchmarks examples tests
	$(BIN)/ruff format --check raypi sweeps analysis benchmarks examples tests

# The API reference and guides (docs/, mkdocs.yml) into site/; warnings are errors.
docs: install
	$(BIN)/mkdocs build --strict --site-dir site

# Two pytest-xdist workers: each test module stays on one worker (its Ray cluster is built once).
# Modules marked fixed_ports start Ray heads on fixed ports or look for "any Ray on this machine"
# (--address auto): they run afterwards, one at a time, with no other Ray beside them.
PYTEST_WORKERS ?= 2
test: install sysdeps lint
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadgroup -m "not fixed_ports" tests
	$(BIN)/python -m pytest -q -m fixed_ports tests

clean:
	rm -rf $(VENV) .pytest_cache site
