"""``python -m mock_portal``."""

import sys

from mock_portal.cli import main

sys.exit(main())
