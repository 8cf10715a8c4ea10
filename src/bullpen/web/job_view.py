"""A job as the dashboard words it: "attempt n of m" by one rule everywhere, and which attempt
each stored stack trace belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from bullpen.adapter import JobRecord

NOT_STARTED = ("waiting", "delayed", "prioritized", "paused")


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int  # the attempt running, last run, or next to run
    of: int  # attempts allowed; a manual retry past them grants one more, the last
    phrase: str

    def to_dict(self) -> dict[str, object]:
        return {"number": self.number, "of": self.of, "text": self.phrase}


def attempt_of(job: JobRecord) -> Attempt:
    """The attempt a job is on: BullMQ counts attempts made (`atm`) when each one ends."""
    made, state = job.attempts_made, job.state or ""
    # Running or waiting to run: the attempt under way or next; finished: the last one made.
    number = made + 1 if state == "active" or state in NOT_STARTED else max(made, 1)
    of = max(number, job.attempts_allowed)
    if state == "active":
        phrase = f"running attempt {number} of {of}"
    elif state in NOT_STARTED:
        phrase = (f"attempt {number} of {of} next" if made else
                  f"attempt 1 of {of}, not started")
    elif state == "failed":
        phrase = f"failed on attempt {number} of {of}"
    elif state == "completed":
        phrase = f"completed on attempt {number} of {of}"
    else:
        phrase = f"attempt {number} of {of}"
    return Attempt(number, of, phrase)


def trace_attempts(job: JobRecord) -> list[int | None]:
    """The attempt each stored stack trace (oldest first) came from, None where it cannot be
    told (traces trimmed by a limit, or counters reset by hand)."""
    count = len(job.stacktrace)
    last_failed = job.attempts_made - (1 if job.state == "completed" else 0)
    numbers = [last_failed - (count - 1 - index) for index in range(count)]
    if not numbers or numbers[0] < 1:
        return [None] * count
    return list(numbers)
