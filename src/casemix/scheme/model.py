"""The loaded, validated form of a DRG scheme folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from casemix._schema import StrictModel
from casemix.scheme.rules import Expr


def adrg_kind(code: str) -> str:
    """Kind of an ADRG from the second letter of its code (CHS-DRG convention).

    A–J surgical, K–Q non-operative procedure, R–Z medical.
    """
    letter = code[1:2].upper()
    if "A" <= letter <= "J":
        return "surgical"
    if "K" <= letter <= "Q":
        return "procedure"
    return "medical"


@dataclass(frozen=True)
class Mdc:
    seq: int
    code: str
    name: str
    rule: Expr


@dataclass(frozen=True)
class Adrg:
    mdc: str
    seq: int
    code: str
    name: str
    rule: Expr

    @property
    def kind(self) -> str:
        """'surgical', 'procedure' or 'medical' (see :func:`adrg_kind`)."""
        return adrg_kind(self.code)


@dataclass(frozen=True)
class Drg:
    adrg: str
    seq: int
    code: str
    name: str
    rule: Expr


@dataclass(frozen=True)
class ValidityCheck:
    """One ordered validity check of ``scheme.toml`` (FORMAT.md, "Validity checks").

    The check applies when ``when`` holds (always if None); it then fails if
    ``field`` is missing or if ``rule`` does not hold.
    """

    reason: str
    field: str | None = None
    when: Expr | None = None
    rule: Expr | None = None


@dataclass(frozen=True, eq=False)
class Scheme:
    """A DRG scheme: grouping switches, ordered rules and code tables.

    Built by :func:`casemix.load_scheme`; treat it as immutable.
    """

    id: str
    name: str
    version: str
    source: str
    path: Path
    mdc_fallthrough: bool
    ambiguous_group: bool
    ungroupable: str
    never_excluded_table: str | None
    status: dict[str, str]
    reasons: dict[str, str]
    malformed_reason: str | None
    checks: tuple[ValidityCheck, ...]
    mdcs: tuple[Mdc, ...]
    adrgs: dict[str, tuple[Adrg, ...]]
    drgs: dict[str, tuple[Drg, ...]]
    lists: dict[str, frozenset[str]]
    list_attrs: dict[str, dict[str, str]]
    cc: dict[str, tuple[str, str]]
    exclusions: dict[str, str]
    or_procedures: frozenset[str]
    diagnoses: dict[str, str]
    procedures: dict[str, str]
    meta: dict = field(default_factory=dict)
    #: grey codes (灰码, casemix extension): ``"pdx"`` / ``"pproc"`` → the name of
    #: the list in ``lists`` of codes not to be used as that principal code
    grey: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        n_adrg = sum(len(v) for v in self.adrgs.values())
        n_drg = sum(len(v) for v in self.drgs.values())
        return (
            f"<Scheme {self.id} v{self.version}: {len(self.mdcs)} MDC, {n_adrg} ADRG, "
            f"{n_drg} DRG, {len(self.diagnoses)} dx, {len(self.procedures)} proc>"
        )

    def __hash__(self) -> int:
        return id(self)

    def drg_names(self) -> dict[str, str]:
        """DRG code → name, for every DRG of the scheme."""
        return {d.code: d.name for ds in self.drgs.values() for d in ds}

    def adrg_names(self) -> dict[str, str]:
        """ADRG code → name."""
        return {a.code: a.name for ads in self.adrgs.values() for a in ads}


# ------------------------------------------------------------ scheme.toml
class CheckToml(StrictModel):
    """One ``[[validity.check]]`` (FORMAT.md, "Validity checks")."""

    reason: str
    field: str | None = None
    when: str | None = None
    rule: str | None = None


class ValidityToml(StrictModel):
    """The ``[validity]`` table."""

    malformed_reason: str | None = None
    check: list[CheckToml] = []


class StatusToml(StrictModel):
    """The scheme's own status texts (``[status]``)."""

    grouped: str = "grouped"
    ungroupable: str = "ungroupable"
    invalid: str = "invalid"


class ReasonsToml(StrictModel):
    """Reasons for cases that pass validity but find no group (``[reasons]``, casemix extension)."""

    no_mdc: str = ""
    no_adrg: str = ""
    no_drg: str = ""


class GreyToml(StrictModel):
    """Grey-code files (``[grey]``, casemix extension; ``docs/scheme-format.md``, "Grey codes")."""

    pdx: str | None = None
    pproc: str | None = None


class SchemeToml(StrictModel):
    """The strict schema of ``scheme.toml``: every key FORMAT.md defines, nothing else.

    An unknown key is an error (a misspelt switch used to be ignored and
    change groups silently, issue 15); every value has its TOML type.
    """

    id: str = Field(min_length=1)
    name: str | None = None
    version: str = ""
    source: str = ""
    mdc_fallthrough: bool = False
    ambiguous_group: bool = False
    ungroupable: str = "0000"
    never_excluded_table: str | None = None
    status: StatusToml = StatusToml()
    reasons: ReasonsToml = ReasonsToml()
    validity: ValidityToml = ValidityToml()
    grey: GreyToml = GreyToml()
