"""Where the data lives and how it is loaded: fleet, tariffs, subsidy policy, load archetypes.

Defaults ship inside the package (``vpp/data``). Users replace any of them without code
changes: ``VPP_DATA_DIR`` (a folder laid out like ``vpp/data``) or the CLI's ``--data-dir``,
``--fleet`` for another fleet file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from forecasts.shapes import LoadShape
from models import FeederCap, InvalidInputError
from vpp.network import FeederFile, feeder_caps, load_feeders
from vpp.sites import Fleet, Site, load_fleet, read_document
from vpp.subsidy import PolicyBook, SubsidyPolicy, subsidy_window
from vpp.tariffs import TariffBook

log = logging.getLogger(__name__)

PACKAGE_DATA = Path(__file__).resolve().parent / "data"
DEFAULT_FLEET = "fleet/changzhou-pilots.toml"
DEFAULT_FEEDERS = "fleet/changzhou-feeders.toml"
DEFAULT_POLICY = "policies/changzhou-storage-subsidy-2024.toml"
#: The pilot-indicator file beside the subsidy policy versions in ``policies/``.
INDICATORS_FILE = "policies/changzhou-pilot-indicators.toml"


def policy_files(folder: Path) -> list[Path]:
    """The subsidy policy versions in ``folder/policies``: every ``*.toml`` but the pilot
    indicators."""
    return [p for p in sorted((folder / "policies").glob("*.toml"))
            if p.name != Path(INDICATORS_FILE).name]


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data folder: ``explicit``, else ``$VPP_DATA_DIR``, else the shipped defaults."""
    folder = Path(explicit or os.environ.get("VPP_DATA_DIR") or PACKAGE_DATA)
    if not folder.is_dir():
        raise InvalidInputError(f"data folder {folder} does not exist")
    return folder


def load_archetypes(path: Path) -> dict[str, LoadShape]:
    """Read the load-archetype TOML into :class:`LoadShape` objects by name."""
    data = read_document(path, "load archetype file")
    shapes = {}
    problems = []
    for name, spec in data.items():
        if not isinstance(spec, dict):
            continue
        try:
            shapes[name] = LoadShape(
                name=name,
                workday=tuple(spec["workday"]),
                non_workday=tuple(spec["non_workday"]),
                monthly_factor=tuple(spec["monthly_factor"]),
                description=spec.get("description", ""),
            )
        except (KeyError, ValueError) as exc:
            problems.append(f"{path.name}: archetype {name}: {exc}")
    if problems:
        raise InvalidInputError(problems, "invalid load archetypes")
    return shapes


@dataclass(frozen=True)
class Catalog:
    """Everything a plan reads from data files."""

    fleet: Fleet
    tariffs: TariffBook
    policies: PolicyBook
    archetypes: dict[str, LoadShape]
    root: Path
    calibrations: Path | None = None
    feeders: FeederFile | None = None
    #: A digest of every data file read (:func:`data_fingerprint`): what a resumed simulation
    #: checks so that it never mixes results computed from other data.
    fingerprint: str = ""

    @property
    def policy(self) -> SubsidyPolicy:
        """The newest subsidy policy version (for what does not concern one station: the
        largest rate an option may ask for); a station is paid on :meth:`policy_for`."""
        return self.policies.latest

    def policy_for(self, site: Site) -> SubsidyPolicy:
        """The subsidy policy version ``site``'s storage is paid on (see
        :meth:`vpp.subsidy.PolicyBook.for_connection`)."""
        st = site.storage
        return self.policies.for_connection(st.grid_connection_date if st else None)

    def paid_window(self, site: Site) -> tuple[dt.date, dt.date] | None:
        """The first and last day ``site``'s storage is paid the subsidy on (under
        :meth:`policy_for`); None without storage or when it is not eligible."""
        st = site.storage
        return (subsidy_window(self.policy_for(site), st.power_kw, st.grid_connection_date)
                if st is not None else None)

    @property
    def feeder_caps(self) -> tuple[FeederCap, ...]:
        return feeder_caps(self.feeders) if self.feeders else ()

    @classmethod
    def load(cls, root: str | Path | None = None, fleet: str | Path | None = None,
             calibrations: str | Path | None = None,
             feeders: str | Path | None = None) -> Catalog:
        """Load and validate the data in ``root`` (see :func:`data_dir`).

        ``calibrations`` is a folder of PV calibration files (``<site id>.toml``, written by
        ``vpp pv calibrate --save``); default ``<root>/calibrations`` when it exists.
        ``feeders`` is a feeder file; default the shipped one with the shipped fleet, none
        with another fleet.
        """
        folder = data_dir(root)
        tariffs = TariffBook.from_dir(folder / "tariffs")
        archetypes = load_archetypes(folder / "loads" / "archetypes.toml")
        fleet_path = Path(fleet) if fleet else folder / DEFAULT_FLEET
        fl = load_fleet(fleet_path, tariff_ids=tariffs.ids, archetypes=set(archetypes))
        unused = sorted(tariffs.ids - {s.tariff_id for s in fl.sites})
        if unused:  # another fleet's tariff, or a misspelt id of a new version's file
            log.warning("tariff id(s) %s in %s are used by no site of the fleet (a misspelt "
                        "id in a new version's file?)", ", ".join(unused), folder / "tariffs")
        if not policy_files(folder):
            raise InvalidInputError(f"no subsidy policy file (*.toml) in {folder / 'policies'}")
        policies = PolicyBook.from_files(policy_files(folder))
        cal = Path(calibrations) if calibrations else folder / "calibrations"
        feeder_path = Path(feeders) if feeders else (
            folder / DEFAULT_FEEDERS if fleet is None else None)
        fd = (load_feeders(feeder_path, fl)
              if feeder_path is not None and (feeders or feeder_path.is_file()) else None)
        cal_dir = cal if cal.is_dir() or calibrations else None
        read = [*sorted((folder / "tariffs").glob("*.toml")), *policy_files(folder),
                folder / "loads" / "archetypes.toml", fleet_path]
        read += [feeder_path] if fd is not None else []
        read += sorted(cal_dir.glob("*.toml")) if cal_dir is not None and cal_dir.is_dir() else []
        return cls(fleet=fl, tariffs=tariffs, policies=policies, archetypes=archetypes,
                   root=folder,
                   calibrations=cal_dir, feeders=fd, fingerprint=data_fingerprint(read))


def data_fingerprint(paths: list[Path]) -> str:
    """16 hex digits of SHA-256 over the files' names and bytes, in the given order."""
    h = hashlib.sha256()
    for path in paths:
        h.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=4)
def default_catalog(root: str | None = None, fleet: str | None = None) -> Catalog:
    """A cached :meth:`Catalog.load` for repeated use in one process."""
    return Catalog.load(root, fleet)
