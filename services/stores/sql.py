"""One transaction against the SQL database, the way every SQL store runs
one: retried when the database aborted it to let another go on, and turned
into `DatabaseUnavailable` when the database cannot be reached."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from services import errors

T = TypeVar("T")
log = logging.getLogger(__name__)
ATTEMPTS = 5
# A transaction the database chose to abort so another could go on: try again.
MYSQL_CONFLICTS = {1213, 1205}  # deadlock, lock wait timeout
POSTGRES_CONFLICTS = {"40001", "40P01"}  # serialization failure, deadlock


def transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with Session(engine, expire_on_commit=False) as db, db.begin():
                return work(db)
        except OperationalError as exc:
            if attempt < ATTEMPTS and _lost_a_conflict(exc):
                # Spread the retries out, or the same transactions collide again.
                time.sleep(random.uniform(0, 0.02 * attempt))
                continue
            if _lost_a_conflict(exc):
                log.warning("a transaction lost %d conflicts in a row", ATTEMPTS)
            raise errors.DatabaseUnavailable() from None
        except (InterfaceError, PoolTimeout):
            raise errors.DatabaseUnavailable() from None
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise errors.DatabaseUnavailable() from None
            raise
    raise AssertionError("unreachable")


def _lost_a_conflict(exc: OperationalError) -> bool:
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None else None
    return code in MYSQL_CONFLICTS or getattr(orig, "sqlstate", None) in POSTGRES_CONFLICTS
