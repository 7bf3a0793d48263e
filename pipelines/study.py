"""DVC stage `study`: run one study (a set of tracked training runs) and write summary.json."""

import sys

from rnnbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", *sys.argv[1:]]))
