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
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from altmarl_ros import exitcodes
from altmarl_ros.contract import Fidelity, ObservationMode, Simulator, robot_names, values
from altmarl_ros.ros import dds, gazebo
from altmarl_ros.ros.backends import MODES
from altmarl_ros.ros.bringup import NodeSpec, SwarmOptions, plan
from altmarl_ros.zones import load_zones

PACKAGE = 'altmarl_ros'
SPAWN_DELAY = 2.0  # s before the first spawn, while gz-sim loads the world
RESPAWN_DELAY = 0.5  # s before a crashed robot_node or controller_node is started again
MAX_DOMAIN_ID = 232  # ROS 2's largest domain ID on Linux with the default port mapping


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


class _Supervisor:
    """What happens when a swarm process exits (one OnProcessExit handler for all of them).

    sim_node ends the run: exit 0 shuts the launch down; any other exit fails it (launch reports the
    exception and `ros2 launch` returns 1, so scripts and CI see the failure). A robot host or the
    controller that exits with a configuration error (exitcodes.CONFIG_ERROR: its one 'cannot start'
    line says what) fails the launch at once instead of being respawned into the same error; one that
    crashed is started again after RESPAWN_DELAY, up to `respawn` times. launch_ros's own `respawn`
    cannot do this: it restarts on any exit code.
    """

    def __init__(self, options: SwarmOptions) -> None:
        self.options = options
        self.specs: dict[int, NodeSpec] = {}  # id(Node action) -> its plan entry
        self.restarts: dict[str, int] = {}  # node fqn -> times started again

    def node(self, spec: NodeSpec) -> Node:
        action = Node(package=PACKAGE, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                      parameters=[_ros_parameters(spec.parameters)],
                      ros_arguments=['--log-level', self.options.log_level], output='screen')
        self.specs[id(action)] = spec
        return action

    def on_exit(self, event, context) -> list | None:
        spec = self.specs.get(id(event.action))
        if spec is None:  # not ours (Gazebo, the bridge, spawners)
            return None
        code = event.returncode
        if spec.executable == 'sim_node':
            if code == exitcodes.OK:
                return [Shutdown(reason='sim_node finished')]
            raise RuntimeError(f'sim_node failed: {exitcodes.describe(code)}; the run failed (see its log above)')
        if context.is_shutdown or code == exitcodes.OK:
            return None
        if not exitcodes.respawnable(code):
            raise RuntimeError(f'{spec.fqn} stopped: {exitcodes.describe(code)} (its "cannot start" line above says '
                               'what to fix); not respawned, the swarm cannot run without it')
        done = self.restarts.get(spec.fqn, 0)
        if done >= self.options.respawn:
            return [LogInfo(msg=f'altmarl: {spec.fqn} {exitcodes.describe(code)}; not respawned '
                                f'(respawn:={self.options.respawn} used up); sim_node counts its robots as dropped')]
        self.restarts[spec.fqn] = done + 1
        return [LogInfo(msg=f'altmarl: {spec.fqn} {exitcodes.describe(code)}; respawn {done + 1} of '
                            f'{self.options.respawn}'),
                TimerAction(period=RESPAWN_DELAY, actions=[self.node(spec)])]


def _swarm_nodes(options: SwarmOptions) -> list:
    supervisor = _Supervisor(options)
    return [RegisterEventHandler(OnProcessExit(on_exit=supervisor.on_exit)),
            *(supervisor.node(spec) for spec in plan(options))]


def _domain_actions(context) -> list:
    """domain_id:=N sets ROS_DOMAIN_ID for every node of the launch; '' keeps the environment's."""
    value = LaunchConfiguration('domain_id').perform(context).strip()
    if not value:
        return []
    if not value.isdigit() or not 0 <= int(value) <= MAX_DOMAIN_ID:
        raise RuntimeError(f'domain_id must be an integer in 0..{MAX_DOMAIN_ID} (0..101 avoids the ephemeral '
                           f'port range), got {value!r}')
    return [SetEnvironmentVariable('ROS_DOMAIN_ID', value),
            LogInfo(msg=f'altmarl: ROS_DOMAIN_ID={value} for every node of this launch')]


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
    actions += _domain_actions(context)
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
        _arg('respawn', 'Times a robot_node or the controller that crashes is started again (0 = never); a '
                        'configuration error (exit 2) is never respawned and fails the launch; sim_node is never '
                        'respawned: its exit ends the launch, and a non-zero exit makes `ros2 launch` return 1.'),
        _arg('marker_rate', 'Hz of sim_node\'s visualization_msgs/MarkerArray on /swarm/markers (RViz, Foxglove: '
                            'share/altmarl_ros/config/foxglove_swarm.json); 0 = off.'),
        _arg('log_level', 'Log level of the swarm nodes.', choices=['debug', 'info', 'warn', 'error']),
        _arg('fidelity', 'mode:=physics: planar base (x, y, yaw) or wheeled (wheels with ground contact).',
             choices=list(values(Fidelity))),
        _arg('physics_rate', 'mode:=physics: Hz of simulated time at which the robots\' cmd_vel is applied.'),
        DeclareLaunchArgument('dds_transport', default_value='udp', choices=list(dds.LAUNCH_CHOICES),
                              description='Fast DDS profile of the nodes (altmarl_ros/ros/dds.py): udp (UDPv4 on every '
                                          'interface, a crashed node cannot block the others), shm (shared '
                                          'memory) or none (Fast DDS defaults); a FASTDDS_DEFAULT_PROFILES_FILE '
                                          'already set is kept.'),
        DeclareLaunchArgument('domain_id', default_value='',
                              description="ROS_DOMAIN_ID of every node of this launch; '' = the environment's "
                                          '(default 0). Two swarms in one domain hear each other: give every '
                                          'swarm (and every fleet on a shared network) its own domain in 0..101, '
                                          'the same on the robots, the controller and any watcher (Foxglove '
                                          'bridge, RViz, ros2 bag); with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST '
                                          'a run on one machine is not seen by others.'),
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
