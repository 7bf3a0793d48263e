"""DVC stage `data`: see rnnbench/tasks/command.py."""

import sys

from rnnbench.commands import stage_main
from rnnbench.tasks import command

if __name__ == "__main__":
    sys.exit(stage_main(command, sys.argv[1:]))
