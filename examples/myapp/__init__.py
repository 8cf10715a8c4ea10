"""An example app using bullpen: its tasks and schedules (the README's First run starts it)."""
