from __future__ import annotations

from passerelle.cli import main

raise SystemExit(main())
