"""The app's database (SQLAlchemy), and jobs that are enqueued only once a commit succeeds."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from flask_app.jobs import jobs

engine = create_engine(os.environ.get("FLASK_APP_DB_URL", "sqlite:///var/flask_app.sqlite3"))
SessionLocal = sessionmaker(engine)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str]
    total: Mapped[int]
    status: Mapped[str] = mapped_column(default="new")


def enqueue_after_commit(session: Session, task: str, data: dict[str, Any]) -> None:
    """Enqueue when (and only if) this session's transaction commits."""
    session.info.setdefault("bullpen_jobs", []).append((task, data))


@event.listens_for(SessionLocal, "after_commit")
def _enqueue_committed(session: Session) -> None:
    for task, data in session.info.pop("bullpen_jobs", []):
        jobs.enqueue(task, data)


@event.listens_for(SessionLocal, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop("bullpen_jobs", None)
