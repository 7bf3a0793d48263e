"""DVC stage `speed`: time every model side by side and write speed.json and speed.csv."""

import sys

from rnnbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["speed", *sys.argv[1:]]))
