"""Where the package's data files are (ROS-free): the ament share directory, else the source checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = "altmarl_ros"


def source_root() -> Path:
    """The checkout holding config/, launch/, worlds/ and policies/ (editable installs and tests)."""
    return Path(__file__).resolve().parents[1]


def share_path(relative: str) -> Path:
    """A file of the package's share directory (colcon/ament install), else of the source checkout."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return source_root() / relative
    try:
        candidate = Path(get_package_share_directory(PACKAGE)) / relative
    except (PackageNotFoundError, OSError, ValueError):  # not installed with ament, or AMENT_PREFIX_PATH unset
        return source_root() / relative
    return candidate if candidate.exists() else source_root() / relative
