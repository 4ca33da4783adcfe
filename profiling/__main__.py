"""``python -m profiling``: the ttsperf command line."""

import sys

from profiling.cli.main import main

sys.exit(main())
