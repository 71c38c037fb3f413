import sys

from maskstudio.cli.main import main

sys.exit(main())
