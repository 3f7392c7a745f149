"""ROS-free learning library for ALTERNATING-MARL (arXiv 2603.03759): NumPy (+ SciPy) only."""
