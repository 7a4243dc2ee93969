"""``python -m signalsloop.cli``."""

import sys

from signalsloop.cli import main

sys.exit(main())
