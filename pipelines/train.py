"""DVC stages `train@<block>`: see rnnbench/training/grid_command.py."""

import sys

from rnnbench.commands import stage_main
from rnnbench.training import grid_command as command

if __name__ == "__main__":
    sys.exit(stage_main(command, sys.argv[1:]))
