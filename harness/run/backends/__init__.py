"""Ways to run one cell: docker, cgroup, process. See base.py for the seam."""
