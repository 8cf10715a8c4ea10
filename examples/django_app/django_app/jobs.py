"""One SyncClient for the whole process: Django's request threads share its connections."""

from bullpen import SyncClient

jobs = SyncClient()
