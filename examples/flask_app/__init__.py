"""A Flask app that uses bullpen: SQLAlchemy with jobs enqueued after commit, downloads served
by the app itself."""
