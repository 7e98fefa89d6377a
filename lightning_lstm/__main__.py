"""Entry point: ``python -m lightning_lstm fit --config configs/default.yaml``."""

import sys

from lightning_lstm.cli import main

if __name__ == "__main__":
    sys.exit(main())
