"""ament_python package altmarl_ros: installable with pip (venv) and with colcon (ROS workspace)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "altmarl_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.json")),
        (f"share/{PACKAGE}/config/games", glob("config/games/*.yaml")),
        (f"share/{PACKAGE}/worlds", glob("worlds/*.sdf")),
        (f"share/{PACKAGE}/policies", glob("policies/*.npz") + glob("policies/*.json")),
    ],
    python_requires=">=3.10",
    install_requires=["numpy", "scipy", "numba", "pyyaml", "setuptools"],
    extras_require={
        "plot": ["matplotlib"],
        # sim_node mode 'physics' (altmarl_ros/physics/engine.py); the three wheels must share one version
        "physics": ["mujoco==4.0.0", "mujoco-core==4.0.0", "mujoco-studio==4.0.0"],
        "ray": ["ray>=2.9"],
        "test": ["pytest", "hypothesis"],
    },
    zip_safe=True,
    maintainer="altmarl_ros maintainers",
    maintainer_email="maintainers@altmarl-ros.dev",
    description="ALTERNATING-MARL for robot swarms on ROS 2 (arXiv 2603.03759).",
    license="MIT",
    entry_points={
        "console_scripts": [
            "altmarl = altmarl_ros.cli:main",
            "controller_node = altmarl_ros.ros.entry:controller_node",
            "robot_node = altmarl_ros.ros.entry:robot_node",
            "sim_node = altmarl_ros.ros.entry:sim_node",
        ],
    },
)
