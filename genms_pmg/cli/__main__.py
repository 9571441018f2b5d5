"""`python -m genms_pmg.cli`."""

import sys

from genms_pmg.cli import main

sys.exit(main())
