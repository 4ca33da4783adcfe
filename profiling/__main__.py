"""``python -m profiling``: the ttsperf command line."""

import sys

from profiling.cli import main

sys.exit(main())
