# moejepa_ros — the two commands: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: install demo demo-mobile demo-reacher test test-random lint bench lock clean

install:
	@bash tools/install.sh

demo: install
	$(PY) -m examples.two_rooms_demo

# the mobile base from its own camera: trains seed 0 with the robot recipe on 45k frames when it is missing
# (about 40 min on an idle core, resumable), then 10 goal images over DDS
MOBILE = runs/bench_mobile_base/seed0/export/model.safetensors
demo-mobile: install
	$(PY) -m bench.experiments.mobile_base_goal --train-only --train-seeds 0
	$(PY) -m examples.two_rooms_demo --config config/mobile_base_demo.yaml --checkpoint $(MOBILE) \
		--episodes 10 --out out/demo_mobile

# the reacher arm from a goal image: trains seed 0 with the reacher recipe when it is missing (~15 min on one
# core, resumable), then 10 goal images over DDS (50 steps each, success within 0.05 rad per joint)
REACHER = runs/bench_reacher/seed0/export/model.safetensors
demo-reacher: install
	$(PY) -m bench.experiments.reacher_goal --train-only --train-seeds 0
	$(PY) -m examples.two_rooms_demo --config config/reacher_demo.yaml --checkpoint $(REACHER) \
		--episodes 10 --max-episode-steps 50 --out out/demo_reacher

test: install
	@$(PY) -m pytest -q -p no:cacheprovider test; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# the suite with modules and the tests in each shuffled: every test must pass whatever ran before it.
# It prints its seed; `make test-random SEED=N` repeats that order.
test-random: install
	@seed=$${SEED:-$$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}; echo "test-random: --random-order-seed=$$seed"; \
	  $(PY) -m pytest -q -p no:cacheprovider -p random_order --random-order-bucket=module --random-order-seed=$$seed test

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) -m bench.micro.bench_codecs

lock: install
	$(PY) tools/lock.py

clean:
	rm -rf build .pytest_cache runs
