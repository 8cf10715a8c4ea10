"""An example app using bullpen: one task, one daily schedule (run from the examples folder)."""
