"""launch/swarm.launch.py: its arguments are SwarmOptions' fields (always checked, from the source), and
where launch_ros is installed it yields a LaunchDescription whose nodes are bringup.plan's NodeSpecs."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import sys
from pathlib import Path

import pytest
import yaml

from altmarl_ros.ros import gazebo
from altmarl_ros.ros.bringup import SwarmOptions, plan

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / "launch" / "swarm.launch.py"
GAZEBO_ONLY = {"headless", "world", "robot_model", "bridge_config", "spawn_period", "spawn_spacing"}
LAUNCH_ONLY = {"dds_transport", "domain_id", *GAZEBO_ONLY}  # launch arguments that are not SwarmOptions fields


@pytest.fixture(scope="module")
def tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def declared(tree: ast.Module) -> dict[str, ast.Call]:
    """Launch arguments: DeclareLaunchArgument('name', ...) and the file's _arg('name', ...) wrapper."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _callee(n) in ("DeclareLaunchArgument", "_arg")
             and n.args and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str)]
    names = [c.args[0].value for c in calls]
    assert len(names) == len(set(names)), f"duplicate launch arguments in {names}"
    return dict(zip(names, calls, strict=True))


def test_arguments_are_the_swarm_options(tree):
    args = declared(tree)
    assert set(args) - LAUNCH_ONLY == set(SwarmOptions.field_names()), "launch arguments and SwarmOptions differ"
    assert set(args) >= LAUNCH_ONLY
    # _arg is DeclareLaunchArgument with the SwarmOptions default.
    helper = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "_arg")
    assert "DeclareLaunchArgument" in {_callee(n) for n in ast.walk(helper) if isinstance(n, ast.Call)}
    assert "launch_default" in ast.unparse(helper)
    for name, call in args.items():
        keywords = {k.arg for k in call.keywords}
        assert "description" in keywords or len(call.args) >= 2, f"{name} has no description"


def test_gazebo_argument_defaults(tree):
    defaults = {name: next((ast.literal_eval(k.value) for k in call.keywords if k.arg == "default_value"), None)
                for name, call in declared(tree).items() if name in GAZEBO_ONLY}
    assert defaults["headless"] in ("true", "false")
    assert float(defaults["spawn_spacing"]) == inspect.signature(gazebo.spawn_poses).parameters["spacing"].default
    assert float(defaults["spawn_period"]) > 0
    assert defaults["world"] == defaults["robot_model"] == defaults["bridge_config"] == ""


def test_no_package_lookups_at_import(tree):
    """Optional packages (ros_gz_*) and the share directory are looked up only when the launch runs."""
    top_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    for node in top_level:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                assert _callee(sub) not in ("get_package_share_directory", "FindPackageShare"), ast.unparse(sub)
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                assert not sub.value.startswith("ros_gz"), ast.unparse(node)


def _load_launch_module():
    import colcon_workspace

    colcon_workspace.require_launch(dict(os.environ))
    spec = importlib.util.spec_from_file_location("altmarl_swarm_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_launch_description():
    module = _load_launch_module()
    from launch import LaunchDescription

    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    names = {arg.name for arg in description.get_launch_arguments()}
    assert names == set(SwarmOptions.field_names()) | LAUNCH_ONLY


@pytest.fixture
def installed(colcon_install, monkeypatch) -> Path:
    """AMENT_PREFIX_PATH of this process covers the colcon install of the package and the venv."""
    prefix = os.pathsep.join([str(colcon_install / "install" / "altmarl_ros"), sys.prefix])
    monkeypatch.setenv("AMENT_PREFIX_PATH", prefix)
    return colcon_install


def _context(module, **arguments: str):
    """A LaunchContext holding the arguments' defaults, overridden by `arguments`."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory  # noqa: I001
    from launch import LaunchContext

    try:
        get_package_share_directory("altmarl_ros")
    except PackageNotFoundError:
        pytest.skip("altmarl_ros is not installed in an ament prefix (build it with colcon and source it)")
    context = LaunchContext()
    context.launch_configurations.update(arguments)
    for arg in module.generate_launch_description().get_launch_arguments():
        arg.execute(context)
    return context


def test_embedded_plan_becomes_nodes(installed):
    module = _load_launch_module()
    from launch_ros.actions import Node

    context = _context(module, n_robots="6", k="2", robots_per_process="4", policy="/tmp/policy.npz")
    nodes = [a for a in module.launch_setup(context) if isinstance(a, Node)]
    specs = plan(SwarmOptions(n_robots=6, k=2, robots_per_process=4, policy="/tmp/policy.npz"))
    assert len(nodes) == len(specs)
    for node, spec in zip(nodes, specs, strict=True):
        node._perform_substitutions(context)
        assert node.node_package == "altmarl_ros" and node.node_executable == spec.executable
        assert node.node_name == "/" + "/".join(p for p in (spec.namespace, spec.name) if p)
        files = [path for path, is_file in node._Node__expanded_parameter_arguments if is_file]
        loaded = {}
        for path in files:
            for entry in yaml.safe_load(Path(path).read_text()).values():
                loaded.update(entry["ros__parameters"])
        assert loaded == spec.parameters, "parameters must reach the node with their plain types"


def test_dds_profile_is_set_before_the_nodes(installed, monkeypatch):
    """dds_transport (default udp): FASTDDS_DEFAULT_PROFILES_FILE is set to the swarm profile before any node."""
    module = _load_launch_module()
    from launch.actions import SetEnvironmentVariable
    from launch.utilities import perform_substitutions
    from launch_ros.actions import Node

    from altmarl_ros.ros.dds import ENV_VAR, profile

    monkeypatch.delenv(ENV_VAR, raising=False)
    actions = module.launch_setup(_context(module, n_robots="4", k="2"))
    first_node = next(i for i, a in enumerate(actions) if isinstance(a, Node))
    settings = [i for i, a in enumerate(actions) if isinstance(a, SetEnvironmentVariable)]
    assert len(settings) == 1 and settings[0] < first_node
    context, setting = _context(module, n_robots="4", k="2"), actions[settings[0]]
    assert perform_substitutions(context, setting.name) == ENV_VAR
    assert Path(perform_substitutions(context, setting.value)).read_text() == profile("udp")
    none = module.launch_setup(_context(module, n_robots="4", k="2", dds_transport="none"))
    assert not any(isinstance(a, SetEnvironmentVariable) for a in none)


def test_gazebo_branch(installed):
    module = _load_launch_module()
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from launch.actions import IncludeLaunchDescription, TimerAction
    from launch_ros.actions import Node

    context = _context(module, sim="gazebo", n_robots="4", k="2")
    try:
        get_package_share_directory("ros_gz_sim")
        get_package_share_directory("ros_gz_bridge")
    except PackageNotFoundError:
        with pytest.raises(RuntimeError, match="ros_gz"):
            module.launch_setup(context)
        return
    actions = module.launch_setup(context)
    include = [a for a in actions if isinstance(a, IncludeLaunchDescription)]
    assert len(include) == 1
    gz_args = dict(include[0].launch_arguments)["gz_args"]
    assert gz_args.startswith("-r -s ") and gz_args.endswith("worlds/warehouse.sdf")
    nodes = [a for a in actions if isinstance(a, Node)]
    assert "sim_node" not in [n.node_executable for n in nodes]
    bridge = [n for n in nodes if n.node_executable == "parameter_bridge"]
    assert len(bridge) == 1
    bridge[0]._perform_substitutions(context)
    params = {}
    for path, is_file in bridge[0]._Node__expanded_parameter_arguments:
        if is_file:
            for entry in yaml.safe_load(Path(path).read_text()).values():
                params.update(entry["ros__parameters"])
    config_file = Path(params["config_file"])
    try:
        entries = yaml.safe_load(config_file.read_text())
        gazebo.validate_bridge_config(entries)
        assert len(entries) == 1 + 3 * 4
        assert params["qos_overrides./robot_3/pose.publisher.durability"] == "transient_local"
    finally:
        config_file.unlink(missing_ok=True)
    timers = [a for a in actions if isinstance(a, TimerAction)]
    assert len(timers) == 4
    spawns = [t.actions[0] for t in timers]
    assert all(isinstance(n, Node) and n.node_executable == "create" for n in spawns)
