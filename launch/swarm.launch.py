"""Bring up the ALTERNATING-MARL swarm: `ros2 launch altmarl_ros swarm.launch.py [name:=value ...]`.

The node set is `altmarl_ros.ros.bringup.plan(SwarmOptions)`, the same plan `altmarl swarm` runs
without `ros2 launch`; every SwarmOptions field is a launch argument of the same name.

    ros2 launch altmarl_ros swarm.launch.py n_robots:=50 k:=5                   # embedded simulator
    ros2 launch altmarl_ros swarm.launch.py sim:=gazebo n_robots:=10 k:=3       # Gazebo, headless
    ros2 launch altmarl_ros swarm.launch.py sim:=gazebo headless:=false         # with the Gazebo GUI

sim:=gazebo (needs ros_gz_sim and ros_gz_bridge) starts worlds/warehouse.sdf through ros_gz_sim's
gz_sim.launch.py, spawns worlds/robot.sdf as robot_0 .. robot_{n-1} inside their zones (one
`ros_gz_sim create` each, staggered), and runs one ros_gz_bridge parameter_bridge with a bridge
config generated for n (see altmarl_ros/ros/gazebo.py; config/gz_bridge.yaml is the n = 3 example).
With Gazebo there is no sim_node, mode defaults to kinematic and use_sim_time to true.
"""

import os  # noqa: I001  (ruff takes the repo's launch/ folder for the first-party `launch` package)
import tempfile
from typing import Any, List  # noqa: UP035  (launch_ros compares value_type with typing.List[str])

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (AppendEnvironmentVariable, DeclareLaunchArgument, IncludeLaunchDescription, LogInfo,
                            OpaqueFunction, RegisterEventHandler, SetEnvironmentVariable, Shutdown, TimerAction)
from launch.event_handlers import OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from altmarl_ros.contract import Fidelity, ObservationMode, Simulator, robot_names, values
from altmarl_ros.ros import dds, gazebo
from altmarl_ros.ros.backends import MODES
from altmarl_ros.ros.bringup import SwarmOptions, plan
from altmarl_ros.zones import load_zones

PACKAGE = 'altmarl_ros'
SPAWN_DELAY = 2.0  # s before the first spawn, while gz-sim loads the world
RESPAWN_DELAY = 0.5  # s before a dead robot_node or controller_node is started again


def _arg(name: str, description: str, **kwargs: Any) -> DeclareLaunchArgument:
    """A swarm argument whose default is the SwarmOptions field default."""
    return DeclareLaunchArgument(name, default_value=gazebo.launch_default(name), description=description, **kwargs)


def _ros_parameters(parameters: dict) -> dict:
    """Plain values as launch_ros parameters; strings are typed so that launch does not YAML-parse them."""
    typed = {}
    for key, value in parameters.items():
        if isinstance(value, str):
            typed[key] = ParameterValue(value, value_type=str)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            typed[key] = ParameterValue(list(value), value_type=List[str])  # noqa: UP006
        else:
            typed[key] = value
    return typed


def _remover(path: str):
    def remove(event, context) -> None:
        if os.path.exists(path):
            os.remove(path)
    return remove


def _swarm_nodes(options: SwarmOptions) -> list:
    # The simulator ends the run: when sim_node exits (steps done, or a failure) the launch shuts down.
    # A robot host or the controller that dies is started again, up to `respawn` times.
    nodes = []
    for spec in plan(options):
        sim = spec.executable == 'sim_node'
        nodes.append(Node(package=PACKAGE, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                          parameters=[_ros_parameters(spec.parameters)],
                          ros_arguments=['--log-level', options.log_level], output='screen',
                          on_exit=Shutdown(reason='sim_node exited') if sim else None,
                          respawn=not sim and options.respawn > 0, respawn_delay=RESPAWN_DELAY,
                          respawn_max_retries=options.respawn))
    return nodes


def _gazebo_actions(context, options: SwarmOptions, share: str) -> list:
    try:
        ros_gz_sim = get_package_share_directory('ros_gz_sim')
        get_package_share_directory('ros_gz_bridge')
    except PackageNotFoundError as exc:
        raise RuntimeError('sim:=gazebo needs ros_gz_sim and ros_gz_bridge '
                           '(apt install ros-$ROS_DISTRO-ros-gz); use sim:=embedded without Gazebo') from exc
    worlds = os.path.join(share, 'worlds')
    world_file = LaunchConfiguration('world').perform(context) or os.path.join(worlds, gazebo.WORLD_FILE)
    robot_file = LaunchConfiguration('robot_model').perform(context) or os.path.join(worlds, gazebo.ROBOT_MODEL_FILE)
    headless = gazebo.parse_bool(LaunchConfiguration('headless').perform(context), name='headless')
    spawn_period = float(LaunchConfiguration('spawn_period').perform(context))
    spacing = float(LaunchConfiguration('spawn_spacing').perform(context))
    zones = load_zones(options.zones or os.path.join(share, 'config', 'zones.yaml'))
    robots = robot_names(options.n_robots)
    poses = gazebo.spawn_poses(robots, zones, spacing=spacing)
    world = gazebo.world_name(world_file)

    actions: list = []
    bridge_file = LaunchConfiguration('bridge_config').perform(context)
    if not bridge_file:
        with tempfile.NamedTemporaryFile('w', prefix='altmarl_gz_bridge_', suffix='.yaml', delete=False) as handle:
            handle.write(gazebo.bridge_yaml(robots, header=f'ros_gz_bridge config for {len(robots)} robots'))
            bridge_file = handle.name
        actions.append(RegisterEventHandler(OnShutdown(on_shutdown=_remover(bridge_file))))

    actions += [
        AppendEnvironmentVariable('GZ_SIM_RESOURCE_PATH', worlds),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(ros_gz_sim, 'launch', 'gz_sim.launch.py')),
            launch_arguments={'gz_args': gazebo.gz_args(world_file, headless=headless),
                              'on_exit_shutdown': 'true'}.items()),
        Node(package='ros_gz_bridge', executable='parameter_bridge', name='altmarl_gz_bridge', output='screen',
             parameters=[_ros_parameters(gazebo.bridge_parameters(bridge_file, robots))]),
        LogInfo(msg=f'altmarl: spawning {len(robots)} robots into world {world!r} from {robot_file} '
                    f'over {SPAWN_DELAY + spawn_period * len(robots):.1f} s; bridge config {bridge_file}'),
    ]
    for i, pose in enumerate(poses):
        actions.append(TimerAction(period=SPAWN_DELAY + i * spawn_period, actions=[
            Node(package='ros_gz_sim', executable='create', name=f'spawn_{pose.name}', output='log',
                 parameters=[_ros_parameters(gazebo.create_parameters(pose, world=world, model_file=robot_file))]),
        ]))
    return actions


def launch_setup(context, *args, **kwargs) -> list:
    """Resolve the arguments into SwarmOptions, then map the plan (and Gazebo) to launch actions."""
    values = {name: LaunchConfiguration(name).perform(context) for name in SwarmOptions.field_names()}
    options = gazebo.options_from_launch_arguments(values)
    share = get_package_share_directory(PACKAGE)
    actions: list = [LogInfo(msg=f'altmarl: sim={options.sim} mode={options.mode} n_robots={options.n_robots} '
                                 f'k={options.k} observation={options.observation} '
                                 f'use_sim_time={options.use_sim_time}')]
    profile = dds.profile_for_launch(LaunchConfiguration('dds_transport').perform(context))
    if profile:  # before any node starts: every process of the launch inherits it
        actions.append(SetEnvironmentVariable(dds.ENV_VAR, profile))
    if options.sim == Simulator.GAZEBO:
        actions += _gazebo_actions(context, options, share)
    return actions + _swarm_nodes(options)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        _arg('n_robots', 'Number of robots, named robot_0 .. robot_{n-1}.'),
        _arg('k', 'Robots the controller observes per decision step (k <= n_robots).'),
        _arg('policy', "Policy artifact (.npz); '' = share/altmarl_ros/policies/default.npz."),
        _arg('sim', 'Simulator: embedded (sim_node) or gazebo (gz-sim via ros_gz).', choices=list(values(Simulator))),
        DeclareLaunchArgument('mode', default_value='auto', choices=['auto', *MODES],
                              description='sim_node mode: model (exact P_g/P_l), kinematic (unicycle) or physics '
                                          '(MuJoCo); auto = kinematic with gazebo, else model.'),
        DeclareLaunchArgument('use_sim_time', default_value='auto',
                              description='true/false; auto = true with gazebo (the /clock bridge), else false.'),
        _arg('robots_per_process', 'Robots hosted by one robot_node process; 1 = one namespaced node per robot.'),
        _arg('observation', 'Controller observation: rotating k-subset subscriptions, aggregate or polling.',
             choices=list(values(ObservationMode))),
        _arg('seed', 'Base seed of every node.'),
        _arg('lockstep', 'true: a step completes when every live robot and the controller answered.'),
        _arg('step_period', 'Seconds per decision step (free-running), or the minimum step period (lockstep).'),
        _arg('step_timeout', 'Lockstep: seconds after which missing answers count as dropped.'),
        _arg('steps', 'sim_node stops after this many steps; 0 = run until stopped.'),
        _arg('zones', "Zones YAML; '' = share/altmarl_ros/config/zones.yaml."),
        _arg('record_path', "sim_node writes its per-step record (JSON) here at the end; '' = none."),
        _arg('bag_path', "sim_node records a rosbag2 (mcap) here; '' = none."),
        _arg('autostart', "true: stepping starts once every node is matched; false: wait for 'start'."),
        _arg('startup_timeout', 'Seconds for every node to match and answer the first step (the handshake).'),
        _arg('tolerate_lost_robots', 'false: robots that never answer the first step stop sim_node (exit 3) naming '
                                     'their host; true: run without them.'),
        _arg('respawn', 'Times a robot_node or the controller that dies is started again (0 = never); sim_node '
                        'is never respawned: its exit ends the launch.'),
        _arg('log_level', 'Log level of the swarm nodes.', choices=['debug', 'info', 'warn', 'error']),
        _arg('fidelity', 'mode:=physics: planar base (x, y, yaw) or wheeled (wheels with ground contact).',
             choices=list(values(Fidelity))),
        _arg('physics_rate', 'mode:=physics: Hz of simulated time at which the robots\' cmd_vel is applied.'),
        DeclareLaunchArgument('dds_transport', default_value='udp', choices=list(dds.LAUNCH_CHOICES),
                              description='Fast DDS profile of the nodes (altmarl_ros/ros/dds.py): udp (UDPv4 on every '
                                          'interface, a crashed node cannot block the others), shm (shared '
                                          'memory) or none (Fast DDS defaults); a FASTDDS_DEFAULT_PROFILES_FILE '
                                          'already set is kept.'),
        # Gazebo only (sim:=gazebo).
        DeclareLaunchArgument('headless', default_value='true',
                              description='Gazebo: run the server only (gz sim -s); false opens the GUI.'),
        DeclareLaunchArgument('world', default_value='',
                              description="Gazebo: world SDF; '' = share/altmarl_ros/worlds/warehouse.sdf."),
        DeclareLaunchArgument('robot_model', default_value='',
                              description="Gazebo: robot model SDF; '' = share/altmarl_ros/worlds/robot.sdf."),
        DeclareLaunchArgument('bridge_config', default_value='',
                              description="Gazebo: ros_gz_bridge YAML; '' = generated for n_robots."),
        DeclareLaunchArgument('spawn_period', default_value='0.2',
                              description='Gazebo: seconds between two robot spawns.'),
        DeclareLaunchArgument('spawn_spacing', default_value='0.45',
                              description='Gazebo: minimum distance between spawned robots, in metres.'),
        OpaqueFunction(function=launch_setup),
    ])
