import sys

from lob.server.cli import main

sys.exit(main())
