"""One SyncClient for the whole process: Flask's request threads share its connections."""

from bullpen import SyncClient

jobs = SyncClient()
