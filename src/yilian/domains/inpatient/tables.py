"""The inpatient domain's own tables, in the store's metadata (one schema, one migration line).

`inpatient_bed_stay` is the movement record a census is counted from: one row per patient
per bed, from the moment they took it (admission or transfer in) until they left it
(transfer out or discharge). The ADT operations write it in the same transaction as the
Encounter and the bed's Location, so it never disagrees with them; the partial unique indexes
make a double-booked bed, or a second open stay of one patient, impossible in the database
itself, whatever the code above does.
"""

from __future__ import annotations

from sqlalchemy import Column, Date, Index, Integer, PrimaryKeyConstraint, String, Table, text

from yilian.fhir.store.tables import BigId, Stamp, metadata

_OPEN = text("ended IS NULL")

inpatient_bed_stay = Table(
    "inpatient_bed_stay",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("encounter_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("hospital_id", String(64), nullable=False),
    Column("campus_id", String(64), nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("ward_id", String(64), nullable=False),
    Column("bed_id", String(64), nullable=False),
    Column("admitted", Stamp, nullable=False),  # the stay's admission, for lengths of stay
    Column("began", Stamp, nullable=False),
    Column("ended", Stamp, nullable=True),
    Column("came_by", String(10), nullable=False),  # admit | transfer
    # transfer | discharge | ended (its Encounter closed by a plain FHIR write)
    Column("left_by", String(10), nullable=True),
    Column("expected_discharge", Date, nullable=True),
    Index("uq_inpatient_bed_stay_open_bed", "bed_id", unique=True,
          sqlite_where=_OPEN, postgresql_where=_OPEN),
    Index("uq_inpatient_bed_stay_open_patient", "patient_id", unique=True,
          sqlite_where=_OPEN, postgresql_where=_OPEN),
    Index("ix_inpatient_bed_stay_encounter", "encounter_id"),
    Index("ix_inpatient_bed_stay_ended", "ended"),
    Index("ix_inpatient_bed_stay_campus_open", "campus_id", sqlite_where=_OPEN,
          postgresql_where=_OPEN),
)

# 住院号: each hospital numbers its stays per year (ZY + year + six digits).
inpatient_counter = Table(
    "inpatient_counter",
    metadata,
    Column("hospital_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

# The bed register: every bed Location, where it is and its state, kept in step with the
# Locations by a write hook (beds.py) whatever path the write took. The board and the census
# count beds from it instead of walking thousands of Locations' partOf chains per request.
inpatient_bed = Table(
    "inpatient_bed",
    metadata,
    Column("bed_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(64), nullable=True),  # its room (or ward), as partOf says
    Column("ward_id", String(64), nullable=True),  # None while the bed is in no ward
    Column("campus_id", String(64), nullable=True),
    Column("hospital_id", String(64), nullable=True),
    Column("department_id", String(64), nullable=True),  # the ward's (first) department
    Column("status", String(16), nullable=False),  # BedStatus code
    Index("ix_inpatient_bed_campus", "campus_id"),
    Index("ix_inpatient_bed_ward", "ward_id"),
    Index("ix_inpatient_bed_parent", "parent_id"),
)

# The census of closed days (census_days.py): per day and per hospital, campus, department
# and ward, the figures counted once from the movement record, so that a year's census adds up
# a few thousand rows instead of recounting hundreds of thousands of stays.
_COUNTS = ("in_hospital", "admissions", "discharges", "los_days", "moves",
           "from_other_ward", "from_other_department", "from_other_campus",
           "from_other_hospital")
inpatient_census_day = Table(
    "inpatient_census_day",
    metadata,
    Column("hospital_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("campus_id", String(64), nullable=False),
    Column("department_id", String(64), nullable=False),
    Column("ward_id", String(64), nullable=False),
    *(Column(name, Integer, nullable=False) for name in _COUNTS),
    PrimaryKeyConstraint("hospital_id", "day", "campus_id", "department_id", "ward_id"),
    Index("ix_inpatient_census_day_campus", "campus_id", "day"),
    Index("ix_inpatient_census_day_day", "day"),
    sqlite_with_rowid=False,  # the rows stored in key order: a hospital's year is one range
)

# One row: the last day whose figures inpatient_census_day holds (None: none yet).
inpatient_census_state = Table(
    "inpatient_census_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("through", Date, nullable=True),
)
