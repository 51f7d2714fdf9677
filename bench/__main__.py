"""`python -m bench`: see `bench.cli`."""

import os

# As the bot does (bot/cli.py): PTB 22 warns on RetryAfter unless timedelta values are opted in.
os.environ.setdefault("PTB_TIMEDELTA", "1")

from bench.cli import main

raise SystemExit(main())
