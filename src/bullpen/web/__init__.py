"""`bullpen web`: the monitoring dashboard, JSON API, probes, metrics and export downloads."""

from bullpen.web.app import create_app

__all__ = ["create_app"]
