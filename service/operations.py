"""What live operation reads and writes: measurements, set-points and step leases, as plain
functions over a SQLAlchemy session (SQLite and PostgreSQL alike).

Measurements are upserted by (site, time): a field a row leaves out keeps its stored value
(a grid meter, an inverter logger and a battery system may each send their own fields), a
field it gives replaces it; sending a batch again changes nothing. A rejected batch stores
nothing: it is validated whole (:func:`vpp.measurements.validate_batch`) before the first
row is written, and written in one transaction, which also raises the site's measurement
version (table ``measurement_versions``): :func:`measurement_marks` tells a reader in one
indexed statement whether any site's data changed since it last looked.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, String, case, delete, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session

from models.errors import InvalidInputError
from service.db import (
    MeasurementRecord,
    MeasurementVersion,
    OperateLease,
    SetpointRecord,
    utcnow,
)
from vpp.catalog import Catalog
from vpp.ledger import Ledger, subsidy_ledger, year_start
from vpp.measurements import (
    COUNTER_FIELDS,
    FIELDS,
    MAX_BATCH_ROWS,
    POWER_FIELDS,
    MeasurementBatch,
    MeasurementError,
    empty_frame,
    overlapping_rows,
    replaced_rows,
    validate_batch,
)
from vpp.operate import Setpoints
from vpp.sites import Site
from vpp.state import (
    SOC_MAX_AGE_MINUTES,
    InitialState,
    SiteState,
    month_end,
    month_start,
    plan_initial_state,
    plan_vs_actual,
    site_state,
)
from vpp.timebase import INTERVAL_MINUTES, TZ

TABLE = MeasurementRecord.__table__
VERSIONS = MeasurementVersion.__table__
#: Rows read before a month's first interval, so that a reading at its start is there [h].
LOOKBACK = pd.Timedelta(hours=1)
#: Rows a state reads before its billing month: the SOC and battery power of the day before.
CARRY_IN = pd.Timedelta(hours=24)


def _insert(db: Session) -> Any:
    if db.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def _neighbours(db: Session, site_id: str, first: dt.datetime, last: dt.datetime,
                ) -> tuple[dict[str, tuple[Any, Any]], dt.datetime | None]:
    """Each counter's stored reading just before ``first`` and just after ``last``, and the
    end of the last stored row before ``first`` (its time plus its interval length)."""
    out: dict[str, tuple[Any, Any]] = {}
    for name in COUNTER_FIELDS:
        col = TABLE.c[name]
        before = db.execute(select(TABLE.c.ts, col).where(
            TABLE.c.site_id == site_id, TABLE.c.ts < first, col.is_not(None))
            .order_by(TABLE.c.ts.desc()).limit(1)).first()
        after = db.execute(select(TABLE.c.ts, col).where(
            TABLE.c.site_id == site_id, TABLE.c.ts > last, col.is_not(None))
            .order_by(TABLE.c.ts).limit(1)).first()
        out[name] = (tuple(before) if before else None, tuple(after) if after else None)
    prev = db.execute(select(TABLE.c.ts, TABLE.c.interval_minutes).where(
        TABLE.c.site_id == site_id, TABLE.c.ts < first).order_by(TABLE.c.ts.desc())
        .limit(1)).first()
    if prev is None:
        return out, None
    ts = prev[0] if prev[0].tzinfo is not None else prev[0].replace(tzinfo=dt.UTC)
    return out, ts + dt.timedelta(minutes=float(prev[1]))


def _span(rows: Sequence[Mapping[str, Any]]) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last parsable timestamp of a batch (for the stored neighbours)."""
    times = []
    for r in rows:
        try:
            t = dt.datetime.fromisoformat(str(r.get("timestamp", "")).strip())
        except ValueError:
            continue
        if t.tzinfo is not None:
            times.append(t.astimezone(dt.UTC))
    return (min(times), max(times)) if times else None


def ingest(db: Session, site: Site, rows: Sequence[Mapping[str, Any]], interval_minutes: int,
           now: dt.datetime, max_rows: int = MAX_BATCH_ROWS,
           text_numbers: bool = False) -> MeasurementBatch:
    """Validate a batch against the site and its stored counters, then upsert it in one
    transaction (commits). :class:`vpp.measurements.MeasurementError` stores nothing.
    ``text_numbers``: the rows come from a file (values as text)."""
    span = _span(rows)
    counters, prev = _neighbours(db, site.id, *span) if span else ({}, None)
    batch = validate_batch(site, list(rows), interval_minutes=interval_minutes, now=now,
                           max_rows=max_rows, stored_counters=counters, stored_until=prev,
                           text_numbers=text_numbers)
    first, last = batch.frame.index[0], batch.frame.index[-1]
    stored = read_measurements(db, site.id, first - pd.Timedelta(minutes=15),
                               last + pd.Timedelta(minutes=15))
    clashes = overlapping_rows(batch, stored)
    if clashes:
        raise MeasurementError(clashes)
    inside = replaced_rows(batch, stored).difference(batch.frame.index)
    if len(inside):  # finer stored rows under a coarser new one: replaced, not blended
        db.execute(delete(TABLE).where(TABLE.c.site_id == site.id,
                                       TABLE.c.ts.in_([t.to_pydatetime() for t in inside])))
    upsert(db, site.id, batch)
    db.commit()
    return batch


def upsert(db: Session, site_id: str, batch: MeasurementBatch) -> None:
    """Write a validated batch (not committed): a given field replaces, an absent one
    keeps the stored value - except a power (an average over the row's interval) when the
    row's interval length changes: it would then be read as an average over the new
    length, so it is dropped. The site's measurement version goes up by one."""
    frame = batch.frame
    received = utcnow()
    values = frame[list(FIELDS)].to_numpy(dtype=float)
    records = []
    for t, row in zip(frame.index, values, strict=True):
        rec = {"site_id": site_id, "ts": t.to_pydatetime(),
               "interval_minutes": batch.interval_minutes, "received_at": received}
        rec.update({name: (None if np.isnan(v) else float(v)) for name, v in zip(
            FIELDS, row, strict=True)})
        records.append(rec)
    insert = _insert(db)
    stmt = insert(TABLE)
    same = TABLE.c.interval_minutes == stmt.excluded.interval_minutes
    kept = {name: func.coalesce(stmt.excluded[name], TABLE.c[name]) for name in FIELDS}
    kept.update({name: case((same, kept[name]), else_=stmt.excluded[name])
                 for name in POWER_FIELDS})
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "ts"],
        set_={**kept,
              "interval_minutes": stmt.excluded.interval_minutes,
              "received_at": stmt.excluded.received_at})
    for i in range(0, len(records), 1000):
        db.execute(stmt, records[i:i + 1000])
    bump = insert(VERSIONS).values(site_id=site_id, version=1, changed_at=received)
    db.execute(bump.on_conflict_do_update(
        index_elements=["site_id"], set_={"version": VERSIONS.c.version + 1,
                                          "changed_at": bump.excluded.changed_at}))


def read_measurements(db: Session, site_id: str, start: dt.datetime | pd.Timestamp,
                      end: dt.datetime | pd.Timestamp) -> pd.DataFrame:
    """The site's rows with ``start <= ts <= end`` as a measurement frame (UTC index,
    ``interval_minutes`` and :data:`vpp.measurements.FIELDS`; NaN: not measured)."""
    return read_measurements_many(db, [site_id], start, end)[site_id]


def read_measurements_many(db: Session, site_ids: Sequence[str],
                           start: dt.datetime | pd.Timestamp, end: dt.datetime | pd.Timestamp,
                           ) -> dict[str, pd.DataFrame]:
    """:func:`read_measurements` of several sites in one statement: each site's frame (an
    empty one for a site without rows in the range)."""
    # times without per-row conversion (the dashboard reads a month of rows per site):
    # SQLite's stored UTC text parsed at once by pandas, PostgreSQL's aware datetimes as is
    out = {sid: empty_frame() for sid in site_ids}
    if not site_ids:
        return out
    sqlite = db.get_bind().dialect.name == "sqlite"
    ts = type_coerce(TABLE.c.ts, String if sqlite else DateTime(timezone=True))
    cols = [TABLE.c.site_id, ts, TABLE.c.interval_minutes, *(TABLE.c[f] for f in FIELDS)]
    where = TABLE.c.site_id == site_ids[0] if len(site_ids) == 1 else TABLE.c.site_id.in_(
        sorted(set(site_ids)))
    rows = db.execute(select(*cols).where(
        where, TABLE.c.ts >= pd.Timestamp(start).to_pydatetime(),
        TABLE.c.ts <= pd.Timestamp(end).to_pydatetime()).order_by(TABLE.c.site_id, TABLE.c.ts)
    ).all()
    if not rows:
        return out
    sites, times, *columns = zip(*rows, strict=True)
    data = np.array(columns, dtype=float).T
    index = (pd.DatetimeIndex(pd.to_datetime(list(times), format="ISO8601", utc=True))
             if sqlite else pd.DatetimeIndex(list(times)).tz_convert("UTC"))
    names = np.asarray(sites, dtype=object)
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(names)], strict=True):
        out[names[a]] = pd.DataFrame(data[a:b], index=index[a:b],
                                     columns=["interval_minutes", *FIELDS])
    return out


@dataclass(frozen=True)
class MeasurementMark:
    """What says whether a site's rows in a range changed: the site's measurement
    ``version`` (0: never written) and its newest row in the range (``last_at``, UTC; None:
    no row)."""

    version: int
    last_at: dt.datetime | None


def measurement_marks(db: Session, site_ids: Sequence[str], start: dt.datetime | pd.Timestamp,
                      end: dt.datetime | pd.Timestamp) -> dict[str, MeasurementMark]:
    """Each site's :class:`MeasurementMark` for the rows with ``start <= ts <= end``, in one
    statement of two indexed lookups per site (the newest time by the primary key, the
    version by its key): no row of the range is read. With the same mark, a site's rows in
    the range are the same rows with the same values."""
    if not site_ids:
        return {}
    lo, hi = pd.Timestamp(start).to_pydatetime(), pd.Timestamp(end).to_pydatetime()
    cols = []
    for i, sid in enumerate(site_ids):
        cols.append(select(func.max(TABLE.c.ts)).where(
            TABLE.c.site_id == sid, TABLE.c.ts >= lo, TABLE.c.ts <= hi)
            .scalar_subquery().label(f"t{i}"))
        cols.append(select(VERSIONS.c.version).where(VERSIONS.c.site_id == sid)
                    .scalar_subquery().label(f"v{i}"))
    row = db.execute(select(*cols)).one()
    out = {}
    for i, sid in enumerate(site_ids):
        last, version = row[2 * i], row[2 * i + 1]
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.UTC)
        out[sid] = MeasurementMark(int(version or 0), last)
    return out


def month_rows(db: Session, site_id: str, now: dt.datetime | pd.Timestamp,
               first: dt.date | None = None) -> pd.DataFrame:
    """The rows a state at ``now`` reads: from :data:`CARRY_IN` before its billing month
    (``first``, a month's first day; default the month of ``now``) to now, or to one
    interval past the month's end when it is over (on the 1st, the SOC read late on the
    last day and the battery power since carry it over, as they do within a month), and
    without any row in that span the newest one before it (the data's freshness of a site
    gone silent: stale, not never measured)."""
    t = pd.Timestamp(now).tz_convert(TZ)
    begin = month_start(t) if first is None else pd.Timestamp(first).tz_localize(TZ)
    start = begin - CARRY_IN
    rows = read_measurements(db, site_id, start, min(
        t, month_end(begin) + pd.Timedelta(minutes=INTERVAL_MINUTES)))
    if rows.empty:
        epoch = pd.Timestamp("1970-01-01", tz="UTC")
        last = measurement_marks(db, [site_id], epoch,
                                 start - pd.Timedelta(microseconds=1))[site_id].last_at
        if last is not None:
            rows = read_measurements(db, site_id, last, last)
    return rows


def state_of(db: Session, catalog: Catalog, site_id: str,
             now: dt.datetime | pd.Timestamp, first: dt.date | None = None) -> SiteState:
    """:func:`vpp.state.site_state` of the stored measurements: of the billing month of
    ``now``, or of the month starting ``first`` (a month over at ``now`` to its end).

    Raises
    ------
    InvalidInputError
        ``first`` after the month of ``now`` (not begun), or no tariff in force.
    """
    t = pd.Timestamp(now).tz_convert(TZ)
    if first is not None and first > month_start(t).date():
        raise InvalidInputError(f"month={first:%Y-%m} has not begun at {t.isoformat()}",
                                "invalid state query")
    begin = None if first is None else pd.Timestamp(first).tz_localize(TZ)
    return site_state(catalog, site_id, month_rows(db, site_id, now, first), now, begin)


def ledger_of(db: Session, catalog: Catalog, site_id: str, now: dt.datetime | pd.Timestamp,
              first: dt.date | None = None, last: dt.date | None = None) -> Ledger:
    """:func:`vpp.ledger.subsidy_ledger` of the stored measurements, months ``first`` to
    ``last`` (first days; ``last`` None: no bound; ``first`` None: the month of the
    station's grid connection - nothing before it is paid - or, without storage, January of
    ``now``'s year). Reads the rows from ``first`` (under ``annual_hours_cap`` from January
    of its year: the year's budget) to ``now`` and ends the read transaction before
    counting, so no connection is held while the months are computed."""
    t = pd.Timestamp(now).tz_convert(TZ)
    site = catalog.fleet.site(site_id)
    if first is None:
        storage = site.storage
        first = (storage.grid_connection_date.replace(day=1) if storage is not None
                 else dt.date(t.year, 1, 1))
    start = pd.Timestamp(year_start(first) if catalog.policy_for(site).rule == "annual_hours_cap"
                         else first).tz_localize(TZ)
    end = t if last is None else min(t, pd.Timestamp(last).tz_localize(TZ)
                                     + pd.DateOffset(months=1) + LOOKBACK)
    rows = read_measurements(db, site_id, start - LOOKBACK, end)
    db.rollback()  # read only: the connection goes back to the pool
    return subsidy_ledger(catalog, site_id, rows, t, first, last)


def initial_state(db: Session, site: Site, plan_start: pd.Timestamp,
                  now: dt.datetime | None = None) -> InitialState | None:
    """:func:`vpp.state.plan_initial_state` of the stored measurements at ``now``."""
    t = pd.Timestamp(plan_start).tz_convert(TZ)
    clock = pd.Timestamp(now or utcnow()).tz_convert(TZ)
    start = min(month_start(t), t - pd.Timedelta(minutes=SOC_MAX_AGE_MINUTES)) - LOOKBACK
    end = min(clock, month_start(t) + pd.DateOffset(months=1))
    return plan_initial_state(site, read_measurements(db, site.id, start, end), t, clock)


def fresh_sites(db: Session, since: dt.datetime) -> list[str]:
    """Sites with a measurement at or after ``since``."""
    return sorted(db.scalars(select(TABLE.c.site_id).where(TABLE.c.ts >= since).distinct()))


# --------------------------------------------------------------------------- set-points


def add_setpoints(db: Session, sp: Setpoints, source: str) -> SetpointRecord:
    """Store a step's set-points (not committed)."""
    rec = SetpointRecord(id=str(uuid.uuid4()), site_id=sp.site_id,
                         start=pd.Timestamp(sp.start).to_pydatetime(),
                         decided_at=pd.Timestamp(sp.decided_at).to_pydatetime(), source=source,
                         body=json.dumps({**sp.to_dict(), "source": source}))
    db.add(rec)
    return rec


def latest_setpoints(db: Session, site_id: str) -> dict[str, Any] | None:
    """The newest step's set-points (by decision interval, then decision time)."""
    rec = db.scalars(select(SetpointRecord).where(SetpointRecord.site_id == site_id)
                     .order_by(SetpointRecord.start.desc(), SetpointRecord.decided_at.desc())
                     .limit(1)).first()
    return None if rec is None else {"id": rec.id, **json.loads(rec.body)}


def setpoints_between(db: Session, site_id: str, start: dt.datetime,
                      end: dt.datetime) -> list[dict[str, Any]]:
    """Steps whose first interval lies in [start, end)."""
    recs = db.scalars(select(SetpointRecord).where(
        SetpointRecord.site_id == site_id, SetpointRecord.start >= start,
        SetpointRecord.start < end).order_by(SetpointRecord.start)).all()
    return [json.loads(r.body) for r in recs]


def plan_vs_actual_of(db: Session, site: Site, day: dt.date, catalog: Catalog | None = None,
                      max_horizon_h: float = 48.0,
                      now: pd.Timestamp | None = None) -> dict[str, Any]:
    """:func:`vpp.state.plan_vs_actual` of ``day`` from the stored measurements, the steps
    whose horizon can reach it and the newest stored day-ahead plan of the day (priced in
    yuan with a ``catalog``); measured up to the interval under way at ``now`` (default the
    clock)."""
    from service.store import latest_plans

    first = pd.Timestamp(day).tz_localize(TZ)
    end = first + pd.Timedelta(days=1)
    rows = read_measurements(db, site.id, first - LOOKBACK, end + LOOKBACK)
    steps = setpoints_between(db, site.id, (first - pd.Timedelta(hours=max_horizon_h))
                              .to_pydatetime(), end.to_pydatetime())
    plan = latest_plans(db, site.id, day, day).get(day.isoformat())
    return plan_vs_actual(site, day, rows, steps, plan, catalog,
                          now if now is not None else pd.Timestamp.now(tz=TZ))


# --------------------------------------------------------------------------- leases


def claim_step(db: Session, site_id: str, owner: str, slot: dt.datetime, lease_s: float,
               now: dt.datetime | None = None) -> bool:
    """Take the site's step for decision interval ``slot`` (commits): True when no other
    process holds a live lease and the slot is not done yet."""
    now = now or utcnow()
    db.execute(_insert(db)(OperateLease.__table__).values(site_id=site_id)
               .on_conflict_do_nothing(index_elements=["site_id"]))
    n = db.execute(update(OperateLease).where(
        OperateLease.site_id == site_id,
        or_(OperateLease.lease_until.is_(None), OperateLease.lease_until < now),
        or_(OperateLease.done_slot.is_(None), OperateLease.done_slot < slot))
        .values(owner=owner, lease_until=now + dt.timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)).rowcount
    db.commit()
    return n == 1


def finish_step(db: Session, site_id: str, owner: str, slot: dt.datetime, done: bool) -> None:
    """Release the lease (not committed); ``done`` marks the slot done."""
    values: dict[str, Any] = {"owner": None, "lease_until": None}
    if done:
        values["done_slot"] = slot
    db.execute(update(OperateLease).where(OperateLease.site_id == site_id,
                                          OperateLease.owner == owner).values(**values)
               .execution_options(synchronize_session=False))
