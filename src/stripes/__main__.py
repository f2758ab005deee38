import sys

from stripes.cli import main

sys.exit(main())
