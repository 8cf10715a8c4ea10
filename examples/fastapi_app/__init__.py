"""A FastAPI app that uses bullpen: enqueue and follow jobs, exports, the dashboard mounted."""
