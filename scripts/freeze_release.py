"""Freezes what this version of pystatus installs as sql/releases/<version>.sql.

Run once, when a version is released: the file is the starting point of the
upgrade tests (tests/test_releases.py), which install it as it was and migrate
it to the current code. Add its checksum, and those of its migrations (in
sql/migrations/<version>/), to tests/test_releases.py.
"""

from __future__ import annotations

import sys

from pystatus.migrations import Sources, version

HEADER = (
    "-- pystatus {version} as released: what `pystatus migrate` ran on an empty database\n"
    "-- (default settings), in one transaction. Frozen: never edit this file.\n"
)


def main() -> None:
    sources = Sources()
    target = sources.root / "releases" / f"{version()}.sql"
    if target.exists():
        sys.exit(f"{target} exists: a released version is never frozen twice")
    target.parent.mkdir(exist_ok=True)
    target.write_text(HEADER.format(version=version()) + sources.install_script())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
