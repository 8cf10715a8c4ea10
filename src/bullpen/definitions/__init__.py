"""What an app declares: tasks (name → handler) and recurring schedules; pure, no Redis."""
