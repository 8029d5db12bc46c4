"""`python -m ivr_agent` runs the `ivr-agent` command."""

from __future__ import annotations

import sys

from ivr_agent.cli import main

sys.exit(main())
