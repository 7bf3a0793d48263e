"""DVC stage `data`: generate one task's train/val/test splits into the folder given."""

import sys

from rnnbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", *sys.argv[1:]]))
