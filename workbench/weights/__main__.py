"""``python -m workbench.weights export|install|list``: see :mod:`workbench.weights`."""

import sys

from workbench.weights import main

sys.exit(main(sys.argv[1:]))
