"""Container HEALTHCHECK: exit 0 when the role's health URL answers 200 (slim has no curl)."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    """Probe HOUSING_HEALTHCHECK_URL (default: the API's /health on this container's port)."""
    port = os.environ.get("PORT", "8000")
    url = os.environ.get("HOUSING_HEALTHCHECK_URL", f"http://127.0.0.1:{port}/health")
    # Only loopback URLs: a healthcheck probes its own container (also rules out file:// URLs).
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        sys.stderr.write(f"healthcheck: refusing non-loopback URL {url}\n")
        return 2
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # nosec B310
            return 0 if response.status == 200 else 1
    except OSError as exc:
        sys.stderr.write(f"healthcheck: {url}: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
