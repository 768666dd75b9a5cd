# Efficient Networks, Reproduced — the two set-up commands are `make book` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := book/_mathjax/mathjax/es5/tex-mml-chtml.js
# torch is pinned on every pip call: a looser spec resolves to a CUDA build of several GB.
PIP := $(PY) -m pip install --disable-pip-version-check -q
PIP_CONSTRAINT_FILE := constraints.txt
PAPER ?=
SCALE ?= reduced
PROCS ?= 1
# make sweep: the cluster engine and, for SLURM, the per-job resources (empty: ci/sweep.py's defaults)
LAUNCHER ?= local
PARTITION ?=
GPUS_PER_JOB ?=
NODES_PER_JOB ?=
CPUS_PER_TASK ?=
TIME_LIMIT ?=
MEM_GB ?=
ARRAY_PARALLELISM ?=
PARALLEL ?=
# pytest-xdist workers for make test: one per core, each test process (and chapter kernel) one torch thread
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)))')

.PHONY: book test chapter sweep rejudge nightly bench new-chapter lock pages serve clean help

help:
	@echo "make book                  build the book into _build/html (creates $(VENV) on first use)"
	@echo "make test                  the book build, unit tests, every chapter once at smoke scale under nbval (parallel)"
	@echo "make chapter PAPER=<slug> [SCALE=reduced|smoke|full]  execute a chapter with papermill"
	@echo "make sweep PAPER=<slug> SCALE=full LAUNCHER=slurm|local [PARTITION= GPUS_PER_JOB= TIME_LIMIT= ...]"
	@echo "                           one cluster job per (arm, seed) through submitit, then the chapter reports"
	@echo "make rejudge PAPER=<slug>  re-execute a chapter on its committed runs (new verdict rules, no training)"
	@echo "make nightly [ONLY=<slug>] [FORCE=1]  re-execute chapters at reduced scale, report drift"
	@echo "make bench                 speed ratios of the training path -> bench/results.json, book/performance.md"
	@echo "make new-chapter PAPER=<slug>  scaffold papers/<slug>/ from the catalogue"
	@echo "make lock                  re-resolve requirements.txt into requirements.lock"

$(STAMP): requirements.lock constraints.txt pyproject.toml
	$(PYTHON) ci/timed.py install -- bash -c 'set -e; test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PIP) -c $(PIP_CONSTRAINT_FILE) -r requirements.lock; \
	  $(PIP) -c $(PIP_CONSTRAINT_FILE) --no-deps --no-build-isolation -e .'
	touch $@

$(MATHJAX):
	rm -rf $(VENV)/mathjax && mkdir -p $(VENV)/mathjax book/_mathjax/mathjax
	cd $(VENV)/mathjax && npm install --no-audit --no-fund --silent --prefix . mathjax@$(MATHJAX_VERSION)
	cp -r $(VENV)/mathjax/node_modules/mathjax/es5 book/_mathjax/mathjax/

pages: $(STAMP)
	$(PY) ci/build_pages.py

book: $(STAMP) $(MATHJAX) pages
	$(PY) ci/timed.py book -- $(VENV)/bin/jupyter-book build . --warningiserror --keep-going --quiet
	@echo "The book: file://$(CURDIR)/_build/html/index.html   (or: make serve)"

serve: book
	$(PY) -m http.server --directory _build/html 8000

test: $(STAMP) book
	$(PY) ci/prepare_smoke.py
	REPRO_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest tests _build/smoke -n $(TEST_WORKERS) --dist loadscope \
	  --nbval-lax --nbval-sanitize-with _build/smoke/sanitize.cfg -p no:cacheprovider

chapter: $(STAMP)
	$(PY) ci/run_chapter.py $(PAPER) --scale $(SCALE) --procs $(PROCS) $(ARGS)

# one submitit job per (arm, seed) (SLURM job arrays, or this machine), then the chapter executes and only reports
SWEEP_FLAGS = $(if $(PARTITION),--partition $(PARTITION)) $(if $(GPUS_PER_JOB),--gpus-per-job $(GPUS_PER_JOB)) \
  $(if $(NODES_PER_JOB),--nodes-per-job $(NODES_PER_JOB)) $(if $(CPUS_PER_TASK),--cpus-per-task $(CPUS_PER_TASK)) \
  $(if $(TIME_LIMIT),--time $(TIME_LIMIT)) $(if $(MEM_GB),--mem-gb $(MEM_GB)) \
  $(if $(ARRAY_PARALLELISM),--array-parallelism $(ARRAY_PARALLELISM)) $(if $(PARALLEL),--parallel $(PARALLEL))
# a sweep is for the full scale unless SCALE is given (make sweep PAPER=isda SCALE=smoke)
sweep: $(STAMP)
	$(PY) ci/sweep.py $(PAPER) --scale $(if $(filter command line environment,$(origin SCALE)),$(SCALE),full) \
	  --launcher $(LAUNCHER) $(strip $(SWEEP_FLAGS)) $(ARGS)

# re-judge a chapter on its committed runs (verdict rules changed, training did not): a run in the committed
# results file is not trained again; only runs it lacks (e.g. newly pre-registered gate runs) are trained
rejudge: $(STAMP)
	REPRO_REUSE_RESULTS=$(CURDIR)/papers/$(PAPER)/results/reduced.json $(PY) ci/run_chapter.py $(PAPER) --scale reduced

nightly: $(STAMP)
	$(PY) ci/nightly.py $(if $(ONLY),--only $(ONLY)) $(if $(FORCE),--force) $(ARGS)

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

new-chapter: $(STAMP)
	$(PY) ci/new_chapter.py $(PAPER)

lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --disable-pip-version-check -q -c $(PIP_CONSTRAINT_FILE) -r requirements.txt
	( echo "# Resolved from requirements.txt by 'make lock' (Python 3.11, Linux x86-64). Do not edit by hand."; \
	  .lockenv/bin/pip freeze --exclude-editable | sed -e 's/+cpu$$//' ) > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf _build book/_mathjax
