"""The import graph of altmarl_ros points one way (README "Layout"); parsed with ast, function-local imports included.

Layers, lowest first; a module may import its own layer and the ones below, never one above:

    0 base     errors, paths, progress, contract, zones,  plain Python / numpy / yaml: no package module
               exitcodes, stopflag, domains
    1 marl     marl/                                      the learning library (numpy, scipy)
    2 physics  physics/, bagdata, swarmview, video        the ROS-free engine; the ROS-free bag readers, the video
    2 federated federated/                                federated learning in Flower (ROS-free; imports marl)
    3 ros      ros/  (ros/backends: no rclpy either)      nodes, bringup, simulator backends, swarm runner
    4 cli      cli, launch/swarm.launch.py                the entry points

and rclpy or ROS message packages are imported only in ros/ (outside ros/backends) and launch/. The
contract module is in the base layer so that the bag reader, the CLI, the launch file and the nodes
share one definition; zones.py is there because the engine, the nodes and the bag reader all map
poses to zones.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "altmarl_ros"
LAYERS = {"base": 0, "marl": 1, "physics": 2, "federated": 2, "ros": 3, "cli": 4}
BASE_MODULES = {"errors", "paths", "progress", "contract", "zones", "exitcodes", "stopflag", "domains", "__init__"}
ROS_FREE_READERS = {"bagdata", "swarmview", "video"}  # rosbags and matplotlib, never rclpy
ROS_PACKAGES = {"rclpy", "launch", "launch_ros", "builtin_interfaces", "geometry_msgs",
                "std_msgs", "rosgraph_msgs", "diagnostic_msgs", "visualization_msgs", "rcl_interfaces", "nav_msgs",
                "sensor_msgs",
                "rosidl_runtime_py", "rclpy_message_converter"}


def group(module: str) -> str:
    """The layer group of an altmarl_ros module name ('altmarl_ros.ros.topics' -> 'ros')."""
    parts = module.split(".")
    if parts[0] == "launch_file":
        return "cli"
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in BASE_MODULES:
        return "base"
    if head in ROS_FREE_READERS:
        return "physics"
    if head in ("marl", "physics", "federated", "ros", "cli"):
        return head
    raise AssertionError(f"{module}: not placed in a layer; add it to test_layering's table")


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from altmarl_ros import contract`: the imported name is a module of its own
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names
                      if (PACKAGE.parent / (name + "." + alias.name).replace(".", "/")).with_suffix(".py").exists()]
    return found


def modules() -> dict[str, Path]:
    found = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}
    found["launch_file.swarm"] = ROOT / "launch" / "swarm.launch.py"
    return {name.removesuffix(".__init__"): path for name, path in found.items()}


def graph() -> dict[str, list[tuple[int, str]]]:
    return {name: imports(path, name) for name, path in modules().items()}


def test_every_module_is_placed_in_a_layer():
    for name in modules():
        group(name)


def test_no_upward_import():
    """marl imports nothing of physics/ros/cli; physics nothing of ros/cli; ros nothing of cli; base nothing."""
    upward = []
    for name, found in graph().items():
        for line, target in found:
            if target.split(".")[0] == "altmarl_ros" and LAYERS[group(target)] > LAYERS[group(name)]:
                upward.append(f"{modules()[name].relative_to(ROOT)}:{line} ({group(name)}) imports {target} "
                              f"({group(target)})")
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_subpackages():
    """Between the groups (base, marl, physics, ros, cli): e.g. physics -> ros.backends with ros -> physics."""
    edges: dict[str, set[str]] = {}
    for name, found in graph().items():
        for _, target in found:
            if target.split(".")[0] != "altmarl_ros":
                continue
            a, b = group(name), group(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*path, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_rclpy_only_in_ros_and_launch():
    """No rclpy or ROS message import outside ros/ and launch/, nor in ros/backends (ROS-free backends)."""
    bad = []
    for name, found in graph().items():
        ros_allowed = (group(name) == "cli" and name.startswith("launch_file")) or (
            group(name) == "ros" and not name.startswith("altmarl_ros.ros.backends"))
        for line, target in found:
            if target.split(".")[0] in ROS_PACKAGES and not ros_allowed:
                bad.append(f"{modules()[name].relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_local_and_relative_imports(tmp_path):
    """A function-local upward import is found (the check cannot pass by not looking)."""
    probe = PACKAGE / "marl" / "game.py"
    found = imports(probe, "altmarl_ros.marl.game")
    assert any(t == "numpy" for _, t in found)
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from altmarl_ros.ros import topics\n    from . import sim\n")
    found = imports(source, "altmarl_ros.marl.m")
    assert (2, "altmarl_ros.ros") in found and (2, "altmarl_ros.ros.topics") in found
    assert (3, "altmarl_ros.marl") in found
    assert group("altmarl_ros.ros.topics") == "ros" and LAYERS["ros"] > LAYERS[group("altmarl_ros.marl.m")]


def test_package_xml_declares_every_ros_import():
    """Every ROS package the code imports is a dependency in package.xml (rosdep installs what is listed)."""
    import xml.etree.ElementTree as ET

    root = ET.parse(ROOT / "package.xml").getroot()
    declared = {e.text for tag in ("depend", "exec_depend") for e in root.iter(tag)}
    used = {target.split(".")[0] for found in graph().values() for _, target in found
            if target.split(".")[0] in ROS_PACKAGES}
    assert used and not used - declared, f"imported but not in package.xml: {sorted(used - declared)}"
    optional = {e.text for e in root.iter("exec_depend") if e.get("condition")}
    assert optional == {"ros_gz_sim", "ros_gz_bridge"}  # Gazebo only: conditional, not required
