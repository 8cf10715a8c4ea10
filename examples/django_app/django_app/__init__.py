"""A Django project that uses bullpen: a view enqueues after commit, a view serves downloads."""
