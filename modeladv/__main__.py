"""``python -m modeladv``: the command line."""
from .cli import main

raise SystemExit(main())
