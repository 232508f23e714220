"""Print the generated documentation of the warehouse schema.

Usage: ``python -m warehouse.docs > docs/warehouse.md``. A test checks that the committed
file equals the current rendering.
"""

from __future__ import annotations

import sys

from warehouse.schema import render_markdown

__all__ = ["main"]


def main() -> int:
    """Write :func:`warehouse.schema.render_markdown` to standard output."""
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
