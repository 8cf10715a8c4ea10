"""Shared test helpers: real processes, private Redis servers, export and web utilities."""

from pathlib import Path

# A signing secret strong enough for every check; tests never use it outside this suite.
TEST_SECRET = "test-secret-k3Jq9vXw2LpT7mZr5NbY8cHd4GfS6aQe1UoWiRt0"

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node"  # Node BullMQ peers (npm ci'd by `make test`)
APPS_DIR = REPO / "tests" / "apps"  # the sample app the process tests run
ARTIFACTS = REPO / "test-artifacts"  # screenshots and figures the suite writes
