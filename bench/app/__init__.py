"""The benchmark app: a no-op task, a lateness recorder and a synthetic exporter."""
