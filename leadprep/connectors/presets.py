"""Whose export a file is, and which of its columns mean what.

A preset maps leadprep's fields to the headers a CRM writes in its own export (HubSpot's deals
export, a Salesforce opportunity report, Pipedrive's deals export, or leadprep's own format); it
is recognised from the header row, or forced with ``crm.file.preset``. ``crm.file.columns`` maps
fields for any other file, and wins over the preset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from leadprep.errors import DataError

# leadprep's fields, in the order the README lists them
REQUIRED = ("deal_id", "deal_name", "owner_email", "stage")
DEAL_FIELDS = (
    *REQUIRED,
    "owner_name",
    "close_date",
    "account",
    "manager_email",
    "amount",
    "currency",
    "probability",
    "forecast_category",
    "created_at",
    "stage_entered_at",
    "last_activity_at",
    "next_activity_at",
    "next_step",
    "next_step_updated_at",
    "is_closed",
    "is_won",
    "status",
    "url",
    "contacts",
    "previous_close_dates",
)
# One contact per row (Salesforce's "Opportunities with Contact Roles" report)
CONTACT_ROW_FIELDS = (
    "contact_name",
    "contact_first_name",
    "contact_last_name",
    "contact_email",
    "contact_role",
    "contact_title",
    "contact_primary",
)
FIELDS = (*DEAL_FIELDS, *CONTACT_ROW_FIELDS)


def normalise_header(name: str) -> str:
    """``"Deal - Expected close date"`` → ``deal_expected_close_date``; ``%`` is kept."""
    return "_".join(re.findall(r"[a-z0-9%]+", name.strip().lower()))


@dataclass(frozen=True)
class Preset:
    """One CRM's export: its headers for leadprep's fields and how its values are written."""

    name: str
    label: str
    headers: dict[str, tuple[str, ...]]  # field -> the headers it may appear under
    signature: tuple[str, ...]  # headers that together identify the export
    id_hint: str  # what to add when the id column is missing
    contacts: str = "leadprep"  # leadprep | name_email ("Ana Ruiz (ana@x.com)") | names
    one_contact: bool = False  # the export names at most one contact per deal
    footer: bool = False  # summary and copyright lines below the rows (Salesforce reports)
    keys: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        normalised = {f: tuple(normalise_header(h) for h in hs) for f, hs in self.headers.items()}
        object.__setattr__(self, "keys", normalised)

    def matches(self, header: set[str]) -> bool:
        return all(normalise_header(h) in header for h in self.signature)


HUBSPOT = Preset(
    "hubspot",
    "HubSpot deals export",
    {
        "deal_id": ("Record ID", "Deal ID"),
        "deal_name": ("Deal Name",),
        "stage": ("Deal Stage",),
        "owner_name": ("Deal owner",),
        "owner_email": ("Deal owner email",),
        "close_date": ("Close Date",),
        "amount": ("Amount",),
        "currency": ("Currency", "Deal currency code"),
        "created_at": ("Create Date",),
        "last_activity_at": ("Last Activity Date",),
        "next_activity_at": ("Next Activity Date",),
        "next_step": ("Next Step",),
        "forecast_category": ("Forecast category",),
        "probability": ("Deal probability",),
        "account": ("Associated Company", "Company name"),
        "contacts": ("Associated Contact", "Associated Contacts"),
        "stage_entered_at": ("Date entered current stage",),
    },
    signature=("Deal Name", "Deal Stage"),
    id_hint='add the "Record ID" column to the export (HubSpot: Export → include Record ID)',
    contacts="name_email",
)
SALESFORCE = Preset(
    "salesforce",
    "Salesforce opportunity report",
    {
        "deal_id": ("Opportunity ID", "Opportunity ID 18", "Opportunity: ID"),
        "deal_name": ("Opportunity Name",),
        "account": ("Account Name",),
        "owner_name": ("Opportunity Owner",),
        "owner_email": ("Opportunity Owner Email", "Owner Email"),
        "stage": ("Stage",),
        "amount": ("Amount",),
        "currency": ("Opportunity Currency", "Amount Currency"),
        "probability": ("Probability (%)", "Probability"),
        "close_date": ("Close Date",),
        "created_at": ("Created Date",),
        "next_step": ("Next Step",),
        "last_activity_at": ("Last Activity",),
        "forecast_category": ("Forecast Category",),
        "stage_entered_at": ("Last Stage Change Date",),
        "is_closed": ("Closed",),
        "is_won": ("Won",),
        "contact_name": ("Contact Name", "Contact: Full Name"),
        "contact_first_name": ("First Name",),
        "contact_last_name": ("Last Name",),
        "contact_email": ("Contact Email", "Email"),
        "contact_role": ("Contact Role", "Role"),
        "contact_title": ("Contact Title", "Title"),
        "contact_primary": ("Primary", "Is Primary"),
    },
    signature=("Opportunity Name", "Opportunity Owner"),
    id_hint='add "Opportunity ID" to the report\'s columns (Salesforce: Edit report → Columns)',
    footer=True,
)
PIPEDRIVE = Preset(
    "pipedrive",
    "Pipedrive deals export",
    {
        "deal_id": ("Deal - ID",),
        "deal_name": ("Deal - Title",),
        "owner_name": ("Deal - Owner",),
        "amount": ("Deal - Value",),
        "currency": ("Deal - Currency",),
        "stage": ("Deal - Stage",),
        "status": ("Deal - Status",),
        "close_date": ("Deal - Expected close date",),
        "account": ("Deal - Organization",),
        "contacts": ("Deal - Contact person",),
        "created_at": ("Deal - Deal created",),
        "last_activity_at": ("Deal - Last activity date",),
        "next_activity_at": ("Deal - Next activity date",),
        "probability": ("Deal - Probability",),
        "stage_entered_at": ("Deal - Last stage change",),
    },
    signature=("Deal - Title", "Deal - Stage"),
    id_hint='include the "Deal - ID" column in the export (Pipedrive: Export → choose fields)',
    contacts="names",
    one_contact=True,
)
LEADPREP = Preset(
    "leadprep",
    "leadprep import format",
    {name: (name,) for name in FIELDS},
    signature=("deal_id", "deal_name", "stage"),
    id_hint="add a deal_id column with each deal's id in your CRM",
)
PRESETS = {p.name: p for p in (SALESFORCE, HUBSPOT, PIPEDRIVE, LEADPREP)}
# Any other file: only what crm.file.columns maps
MAPPED = Preset(
    "columns",
    "a file read through crm.file.columns",
    {},
    signature=(),
    id_hint='map the column that holds each deal\'s id: crm.file.columns: {deal_id: "…"}',
)


@dataclass(frozen=True)
class Mapping:
    """Which header of this file feeds each field, and the headers nothing reads."""

    preset: Preset
    columns: dict[str, str]  # field -> normalised header
    unused: tuple[str, ...]  # original header texts

    def has(self, name: str) -> bool:
        return name in self.columns


def detect(header: list[str]) -> Preset | None:
    """The preset whose signature the (normalised) header row carries."""
    present = set(header)
    return next((p for p in PRESETS.values() if p.matches(present)), None)


def map_columns(
    path: object, header: list[str], original: list[str], preset_name: str, columns: dict[str, str]
) -> Mapping:
    """The mapping for this header row: the forced or detected preset, then ``crm.file.columns``.
    ``header`` is normalised, ``original`` as the file writes it (for messages)."""
    present = set(header)
    if preset_name != "auto":
        preset = PRESETS[preset_name]
    else:
        found = detect(header) or (MAPPED if columns else None)
        if found is None:
            raise DataError(
                f"{path}: the header row is neither a HubSpot, Salesforce or Pipedrive export nor "
                "leadprep's import format (which needs deal_id, deal_name, owner_email, stage).",
                hint=f"Found: {', '.join(original)}. Map your file's headers in crm.file.columns "
                "(README: 'Using it with your own pipeline'), e.g. "
                'columns: {deal_id: "Opp #", deal_name: "Name", owner_name: "Rep", stage: "Step"}.',
            )
        preset = found
    mapped: dict[str, str] = {}
    for name, candidates in preset.keys.items():
        hit = next((h for h in candidates if h in present), None)
        if hit is not None:
            mapped[name] = hit
    chosen: dict[str, str] = {}
    for name, wanted in columns.items():
        key = normalise_header(wanted)
        if key not in present:
            raise DataError(
                f"crm.file.columns.{name}: {path} has no column {wanted!r}.",
                hint=f"Its columns: {', '.join(original)}.",
            )
        chosen[name] = key
    # A column the user assigned feeds what they said (one column may feed two fields), and no
    # longer the field the preset had it feed.
    mapped = {f: h for f, h in mapped.items() if h not in chosen.values()} | chosen
    used = set(mapped.values())
    unused = tuple(o for h, o in zip(header, original, strict=True) if h not in used and o.strip())
    return Mapping(preset, mapped, unused)
