"""``python -m facedet.cli``."""

import sys

from facedet.cli import main

sys.exit(main())
