"""DVC stage `report`: render reports/benchmark.md and its figures from the result files."""

import sys

from rnnbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
