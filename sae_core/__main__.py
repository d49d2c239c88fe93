"""Entry point of `python -m sae_core`."""

import sys

from .cli import main

sys.exit(main())
