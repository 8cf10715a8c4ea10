"""A test app for the Sentinel and Cluster tests: runs recorded outside the Redis under test."""
