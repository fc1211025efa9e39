"""``python -m edgecls``: the same as the ``edgecls`` command."""

from edgecls.cli import main

raise SystemExit(main())
