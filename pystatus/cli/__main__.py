"""``python -m pystatus.cli``, as the ``pystatus`` command."""

import sys

from pystatus.cli import main

sys.exit(main())
