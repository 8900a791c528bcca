import sys

from servicekit.migrations import main

sys.exit(main())
