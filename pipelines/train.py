"""DVC stage `train`: train one (model, task, seed) and write metrics.json, curves.csv, model.pt."""

import sys

from rnnbench.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
