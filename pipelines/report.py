"""DVC stage `report`: see rnnbench/report/command.py."""

import sys

from rnnbench.commands import stage_main
from rnnbench.report import command

if __name__ == "__main__":
    sys.exit(stage_main(command, sys.argv[1:]))
