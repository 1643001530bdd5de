"""``python -m chatclient``: chat in the terminal (see ``--help``)."""

import sys

from chatclient.cli import main

sys.exit(main())
