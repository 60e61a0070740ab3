"""For tests: run the queued tasks that are due, as ``healthspace worker`` would."""

from __future__ import annotations

from unittest import mock

from django_tasks_db.management.commands import db_worker


def run_due_tasks() -> None:
    """Run every task that is due now (``core.clock`` time, which time-machine moves)
    in this process, until none is left, then return.

    The real worker checks its connection between tasks; inside a test's transaction
    that check would close the connection, so it is skipped here.
    """
    worker = db_worker.Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    with mock.patch.object(db_worker, "close_old_connections"):
        worker.run()
