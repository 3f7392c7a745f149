# Two commands from a fresh machine (see README):
#   make run    set up .venv and run the swarm end to end on the embedded simulator
#   make test   set up .venv and run the tests
# Re-running reuses what .venv already has; it reinstalls when requirements.txt, setup.py or package.xml change.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp

# ROS 2 launch tooling (launch, launch_ros, ros2cli: not on the package index), built from the vendored kit
# into .venv when ../shared has it (read-only is fine: it builds in a temporary directory); rebuilt when the kit
# or .venv changes. Without the kit the `ros2 launch` tests skip and say why.
LAUNCH_KIT ?= ../shared/vendor/ros2-launch
LAUNCH_STAMP := $(VENV)/.launch-installed

# Flower (flwr) cannot share .venv (it needs protobuf < 7 and pins ray 2.55.1): its own venv, for the federated
# package and its Flower test only (requirements-flower.txt). `make test` builds it and runs that test there.
FL_VENV := .venv-fl
FL_STAMP := $(FL_VENV)/.installed

.PHONY: setup launch-tools flower run test lint train sweep clean

setup: $(STAMP)

ifneq ($(wildcard $(LAUNCH_KIT)/build-into-venv.sh),)
launch-tools: $(LAUNCH_STAMP)

$(LAUNCH_STAMP): $(STAMP) $(wildcard $(LAUNCH_KIT)/*)
	bash $(LAUNCH_KIT)/build-into-venv.sh $(VENV)
	touch $(LAUNCH_STAMP)
else
launch-tools:
	@echo "make: no $(LAUNCH_KIT); the ros2 launch tests will skip"
endif

$(STAMP): requirements.txt setup.py setup.cfg package.xml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -r requirements.txt
	$(VENV)/bin/python -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

flower: $(FL_STAMP)

$(FL_STAMP): requirements-flower.txt setup.py setup.cfg
	test -x $(FL_VENV)/bin/python || $(PYTHON) -m venv $(FL_VENV)
	$(FL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FL_VENV)/bin/python -m pip install --quiet -r requirements-flower.txt
	$(FL_VENV)/bin/python -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(FL_STAMP)

run: setup
	$(VENV)/bin/altmarl swarm --n-robots 50 --k 5 --steps 200 --mode model --out runs/swarm

# The suite on TEST_WORKERS pytest-xdist processes: the ROS modules one after another on one of them, the others
# beside it (test/conftest.py); TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: setup launch-tools flower
	$(FL_VENV)/bin/python -m pytest -q test/test_federated_flower.py
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: setup
	$(VENV)/bin/ruff check altmarl_ros launch test bench
	$(VENV)/bin/mypy --ignore-missing-imports altmarl_ros

train: setup
	$(VENV)/bin/altmarl train --config config/train_warehouse.yaml --k 10 --out policies/warehouse_k10

sweep: setup
	$(VENV)/bin/altmarl sweep --config config/train_warehouse.yaml --k 1,5,10 --seeds 3 --out runs/sweep.csv
	$(VENV)/bin/altmarl plot runs/sweep.csv --out runs/plots

clean:
	rm -rf $(VENV) $(FL_VENV) build install log runs *.egg-info
