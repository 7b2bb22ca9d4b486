"""A scheme compiled into flat numpy tables for the batch kernel.

Built once per :class:`~casemix.scheme.Scheme` object (cached) from the
loaded scheme alone, so any folder in the format of
``../shared/schemes/FORMAT.md`` works, not only CHS-DRG 1.1.

Code tables are indexed by the code id of :mod:`casemix.encode`:

- ``list_bits[id, w]``: bit ``j % 64`` of word ``j // 64`` says the code is in
  list ``j`` (436 lists of CHS-DRG 1.1 fit in 7 words per code);
- ``or_flag[id]``, ``cc_level[id]`` (0 none, 1 CC, 2 MCC), ``cc_table[id]``
  (exclusion table of a CC code), ``pdx_table[id]`` (exclusion table of a
  principal diagnosis), ``site_attr[k, id]`` (attr id of the code in the
  ``k``-th list read by a ``sites(...)`` rule, -1 when none).

Rules become one linear program of fixed-width instructions (``prog[k] =
(opcode, a, b, c)``, ``prog_val[k]`` the number of a comparison; ``c`` is
the target of a jump, and for a predicate 1 when its result is negated).
A predicate sets a single boolean accumulator; ``&`` and ``|`` compile to
conditional jumps that skip the remaining operands once the answer is
known (short-circuit), and ``!`` flips the accumulator.  This is the
postfix program of the issue with the stack replaced by jumps: no stack,
and an expensive ``sites(...)`` or ``proc in`` loop runs only when it can
still change the answer.  Operands of ``&``/``|`` are reordered cheapest
first; rules are pure, so the order cannot change a result.

MDC and ADRG rules are gated by their principal codes (:func:`_gates`):
the kernel skips, a word of 64 rules at a time, the rules whose
``pdx in L`` / ``pproc in L`` / ``pproc_or`` operand the case's
principal codes fail, and assembles of each rule only what is left once
its gates hold (:func:`_residual`); a rule that is nothing but its gates
holds without running anything.  DRG rows that read only the severity
become a table by severity (:func:`_levels_table`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from casemix.encode import CHECK_FIELDS, CodeIndex, code_index
from casemix.scheme.model import Scheme, adrg_kind
from casemix.scheme.rules import (
    FIELDS,
    OPS,
    And,
    Compare,
    Expr,
    InList,
    Not,
    Or,
    OrProc,
    Severity,
    Sites,
    TrueRule,
    walk,
)

# -- opcodes (shared with kernel.py) ----------------------------------------------
OP_TRUE = 0
OP_IN_PDX = 1  # a: list
OP_IN_SDX = 2
OP_IN_DX = 3
OP_IN_PPROC = 4
OP_IN_PROC = 5
OP_PPROC_OR = 6
OP_PROC_OR = 7
OP_SITES = 8  # a: sites table row, b: comparison op; value in prog_val
OP_CMP = 9  # a: field index (FIELDS), b: comparison op; value in prog_val
OP_SEV = 10  # a: level bit (1 CC, 2 MCC)
OP_NOT = 11
OP_JUMP_FALSE = 12  # c: target; jump when the accumulator is false
OP_JUMP_TRUE = 13  # c: target; jump when the accumulator is true
OP_PRESENT = 14  # a: index in CHECK_FIELDS; the field (or some diagnosis/procedure) is there
OP_MALFORMED = 15  # a: index in CHECK_FIELDS; the field is listed in ``malformed``

_TARGET_OP = {"pdx": OP_IN_PDX, "sdx": OP_IN_SDX, "dx": OP_IN_DX, "pproc": OP_IN_PPROC, "proc": OP_IN_PROC}
#: comparison operator codes, in the order of ``casemix.scheme.rules.OPS``
CMP_CODE = {op: i for i, op in enumerate(OPS)}
#: bits of the severity level set of a case
LEVEL_BIT = {"CC": 1, "MCC": 2}
#: decoded severity, by the kernel's severity output (0: invalid case)
SEVERITY_TABLE = ("", "none", "CC", "MCC")
#: kernel status codes
STATUS_GROUPED, STATUS_UNGROUPABLE, STATUS_INVALID = 0, 1, 2


@dataclass(frozen=True, eq=False)
class CompiledScheme:
    """Everything the kernel needs, as numpy arrays, plus the decode tables.

    Integer indices into ``mdc_codes`` / ``adrg_codes`` / ``reasons`` use 0
    for the empty string; ``drg_codes`` has no empty entry.
    """

    index: CodeIndex
    # code tables
    list_names: tuple[str, ...]
    list_bits: np.ndarray
    list_mask: np.ndarray
    or_flag: np.ndarray
    cc_level: np.ndarray
    cc_table: np.ndarray
    pdx_table: np.ndarray
    never_table: int
    site_attr: np.ndarray
    # rules
    prog: np.ndarray
    prog_val: np.ndarray
    rule_start: np.ndarray
    # grouping order; the MDC and ADRG rule numbers are of their residual programs
    # (see _residual), which hold once the gates below pass
    mdc_rule: np.ndarray
    mdc_adrg_start: np.ndarray
    mdc_qy: np.ndarray
    adrg_rule: np.ndarray
    adrg_medical: np.ndarray
    adrg_out: np.ndarray
    out_drg_start: np.ndarray
    out_has_drgs: np.ndarray
    out_self_drg: np.ndarray
    drg_rule: np.ndarray
    drg_out: np.ndarray
    # per ADRG output and severity level set, the DRG when its rows read only the
    # severity (-1 none holds, -2 interpret the rows)
    drg_by_levels: np.ndarray
    # MDC and ADRG rules (in seq order) a case can pass at all, by its principal codes
    gate_pdx_free: np.ndarray
    gate_pproc_free: np.ndarray
    gate_pdx: np.ndarray
    gate_pproc: np.ndarray
    gate_exact: np.ndarray
    # the kernel's compact form of the per-code tables (see kernel.group_kernel)
    code_info: np.ndarray
    list_rows: np.ndarray
    gate_pdx_rows: np.ndarray
    gate_pproc_rows: np.ndarray
    # validity: the first failure rule that holds gives the reason
    fail_rule: np.ndarray
    fail_reason: np.ndarray
    n_fail_all: int
    # the plain failure rules as a truth table over their atoms (see _validity_table)
    atom_kind: np.ndarray
    atom_field: np.ndarray
    atom_op: np.ndarray
    atom_value: np.ndarray
    validity_table: np.ndarray
    malformed_fields: tuple[str, ...]
    # switches and special results
    fallthrough: bool
    ambiguous: bool
    ungroupable_drg: int
    reason_no_mdc: int
    reason_no_adrg: int
    reason_no_drg: int
    # decode tables
    mdc_codes: tuple[str, ...]
    adrg_codes: tuple[str, ...]
    drg_codes: tuple[str, ...]
    reasons: tuple[str, ...]
    statuses: tuple[str, ...]

    def kernel_args(self) -> tuple:
        """The tables in the order ``kernel.group_kernel`` takes them.

        The four rule sequences (MDCs, ADRGs, failure rules, DRGs) go to the
        kernel as one array ``seq`` so that a single loop evaluates them all;
        MDCs and ADRGs come first, as the gate tables index them.
        """
        seq = np.concatenate([self.mdc_rule, self.adrg_rule, self.fail_rule, self.drg_rule]).astype(np.int32)
        seq.flags.writeable = False
        return (
            self.code_info,
            self.list_rows,
            self.list_mask,
            self.or_flag,
            self.pdx_table,
            self.never_table,
            self.site_attr,
            self.prog,
            self.prog_val,
            self.rule_start,
            seq,
            self.n_fail_all,
            len(self.fail_rule) - self.n_fail_all,
            len(self.mdc_rule),
            len(self.adrg_rule),
            self.gate_pdx_free,
            self.gate_pproc_free,
            self.gate_pdx_rows,
            self.gate_pproc_rows,
            self.gate_exact,
            self.atom_kind,
            self.atom_field,
            self.atom_op,
            self.atom_value,
            self.validity_table,
            self.mdc_adrg_start,
            self.mdc_qy,
            self.adrg_medical,
            self.adrg_out,
            self.out_drg_start,
            self.drg_out,
            self.drg_by_levels,
            self.fail_reason,
            self.fallthrough,
            self.ambiguous,
            self.ungroupable_drg,
            self.reason_no_mdc,
            self.reason_no_adrg,
            self.reason_no_drg,
        )


@dataclass(frozen=True)
class _Present:
    """Pseudo-predicate of validity checks: the field is present."""

    field: str


@dataclass(frozen=True)
class _Malformed:
    """Pseudo-predicate of validity checks: the field is listed in ``malformed``."""

    field: str


def failure_rules(scheme: Scheme) -> list[tuple[Expr, str]]:
    """The validity checks as ordered (rule, reason) pairs: the first rule that holds fails the case.

    A check ``(field, when, rule, reason)`` of FORMAT.md ("Validity checks")
    becomes ``when & malformed(field)`` → the scheme's malformed reason
    (when it has one), then ``when & (!present(field) | !rule)`` → its
    reason; exactly the order in which ``reference.validity_failure`` looks.
    """
    out: list[tuple[Expr, str]] = []
    for c in scheme.checks:
        when = () if c.when is None else (c.when,)
        if c.field is not None and scheme.malformed_reason:
            m = _Malformed(c.field)
            # the pseudo-predicates ride in rule trees that only the assembler reads
            out.append((And(when + (m,)) if when else m, scheme.malformed_reason))  # type: ignore[arg-type]
        fails = []
        if c.field is not None:
            fails.append(Not(_Present(c.field)))  # type: ignore[arg-type]
        if c.rule is not None:
            fails.append(Not(c.rule))
        body = fails[0] if len(fails) == 1 else Or(tuple(fails))
        out.append((And(when + (body,)) if when else body, c.reason))
    return out


#: at most this many distinct atoms make a validity truth table (2**12 entries)
MAX_VALIDITY_ATOMS = 12


def _atoms_of(expr, out: list) -> bool:
    """Collect the Compare / present() atoms of a rule; False if it reads anything else."""
    if isinstance(expr, (Compare, _Present)):
        if expr not in out:
            out.append(expr)
        return True
    if isinstance(expr, TrueRule):
        return True
    if isinstance(expr, Not):
        return _atoms_of(expr.operand, out)
    if isinstance(expr, (And, Or)):
        return all(_atoms_of(e, out) for e in expr.operands)
    return False


def _truth(expr, value: dict) -> bool:
    if isinstance(expr, TrueRule):
        return True
    if isinstance(expr, Not):
        return not _truth(expr.operand, value)
    if isinstance(expr, And):
        return all(_truth(e, value) for e in expr.operands)
    if isinstance(expr, Or):
        return any(_truth(e, value) for e in expr.operands)
    return value[expr]


def _validity_table(plain: list) -> tuple[list, np.ndarray]:
    """The plain failure rules as a truth table: atoms, and per atom assignment the first rule that fails.

    Validity checks usually read a handful of atoms (``sex == 1``,
    ``age == 0``, present(age_days), ...); the kernel evaluates those
    atoms, packs them into a number and looks the answer up, instead of
    interpreting every check.  Entry ``key`` is the position (among the
    plain failure rules) of the first rule that holds when atom ``t`` is
    bit ``t`` of ``key``, or -1 when none does.  An empty atom list means
    "no table": the kernel interprets the rules.
    """
    atoms: list = []
    if not plain or not all(_atoms_of(rule, atoms) for rule in plain) or len(atoms) > MAX_VALIDITY_ATOMS:
        return [], np.full(1, -1, dtype=np.int32)
    table = np.full(1 << len(atoms), -1, dtype=np.int32)
    for key in range(1 << len(atoms)):
        value = {a: bool(key >> t & 1) for t, a in enumerate(atoms)}
        for pos, rule in enumerate(plain):
            if _truth(rule, value):
                table[key] = pos
                break
    return atoms, table


def _reads_malformed(expr) -> bool:
    if isinstance(expr, _Malformed):
        return True
    if isinstance(expr, Not):
        return _reads_malformed(expr.operand)
    if isinstance(expr, (And, Or)):
        return any(_reads_malformed(e) for e in expr.operands)
    return False


class _Interner:
    """Strings → dense ids, first come first served."""

    def __init__(self, first: tuple[str, ...] = ()) -> None:
        self.ids: dict[str, int] = {}
        for s in first:
            self(s)

    def __call__(self, s: str) -> int:
        if s not in self.ids:
            self.ids[s] = len(self.ids)
        return self.ids[s]

    def table(self) -> tuple[str, ...]:
        return tuple(self.ids)


def _cost(expr: Expr) -> int:
    """A rough evaluation cost, to try cheap operands of ``&``/``|`` first."""
    if isinstance(expr, InList):
        return 1 if expr.target in ("pdx", "pproc") else 3
    if isinstance(expr, OrProc):
        return 1 if expr.principal_only else 3
    if isinstance(expr, Sites):
        return 10
    if isinstance(expr, _Malformed):
        return 0
    if isinstance(expr, Not):
        return _cost(expr.operand)
    if isinstance(expr, (And, Or)):
        return sum(_cost(e) for e in expr.operands)
    return 1


class _Assembler:
    """Rule trees → one instruction array with per-rule start offsets."""

    def __init__(self, list_ids: dict[str, int], site_rows: dict[str, int]) -> None:
        self.list_ids = list_ids
        self.site_rows = site_rows
        self.prog: list[list[int]] = []
        self.vals: list[float] = []
        self.starts: list[int] = []

    def _emit(self, op: int, a: int = 0, b: int = 0, value: float = 0.0) -> int:
        self.prog.append([op, a, b, 0])
        self.vals.append(value)
        return len(self.prog) - 1

    def _expr(self, expr: Expr) -> None:
        if isinstance(expr, TrueRule):
            self._emit(OP_TRUE)
        elif isinstance(expr, InList):
            self._emit(_TARGET_OP[expr.target], self.list_ids[expr.list])
        elif isinstance(expr, OrProc):
            self._emit(OP_PPROC_OR if expr.principal_only else OP_PROC_OR)
        elif isinstance(expr, Sites):
            self._emit(OP_SITES, self.site_rows[expr.list], CMP_CODE[expr.op], float(expr.n))
        elif isinstance(expr, Compare):
            self._emit(OP_CMP, FIELDS.index(expr.field), CMP_CODE[expr.op], float(expr.value))
        elif isinstance(expr, Severity):
            self._emit(OP_SEV, LEVEL_BIT[expr.level])
        elif isinstance(expr, _Present):
            self._emit(OP_PRESENT, CHECK_FIELDS.index(expr.field))
        elif isinstance(expr, _Malformed):
            self._emit(OP_MALFORMED, CHECK_FIELDS.index(expr.field))
        elif isinstance(expr, Not):
            self._expr(expr.operand)
            if isinstance(expr.operand, (Not, And, Or)):
                self._emit(OP_NOT)
            else:
                self.prog[-1][3] = 1  # a negated predicate: one instruction, not two
        elif isinstance(expr, (And, Or)):
            jump = OP_JUMP_FALSE if isinstance(expr, And) else OP_JUMP_TRUE
            operands = sorted(expr.operands, key=_cost)  # stable: ties keep source order
            jumps = []
            for i, e in enumerate(operands):
                self._expr(e)
                if i < len(operands) - 1:
                    jumps.append(self._emit(jump))
            for j in jumps:
                self.prog[j][3] = len(self.prog)
        else:  # pragma: no cover - the parser makes no other node
            raise TypeError(f"unknown rule node {expr!r}")

    def add(self, expr: Expr) -> int:
        """Assemble one rule; returns its rule number."""
        self.starts.append(len(self.prog))
        self._expr(expr)
        return len(self.starts) - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prog = np.array(self.prog, dtype=np.int32).reshape(-1, 4)
        vals = np.array(self.vals, dtype=np.float64)
        starts = np.array(self.starts + [len(self.prog)], dtype=np.int32)
        return prog, vals, starts


def _code_tables(scheme: Scheme, index: CodeIndex, site_lists: list[str]):
    codes = index.codes.to_list()
    pos = {c: i for i, c in enumerate(codes)}
    n = len(codes)
    list_names = tuple(sorted(scheme.lists))
    n_words = max(1, (len(list_names) + 63) // 64)
    bits = np.zeros((n, n_words), dtype=np.uint64)
    for j, name in enumerate(list_names):
        ids = np.fromiter((pos[c] for c in scheme.lists[name]), dtype=np.int64)
        bits[ids, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    or_flag = np.zeros(n, dtype=np.uint8)
    or_flag[[pos[c] for c in scheme.or_procedures]] = 1
    tables = _Interner()
    cc_level = np.zeros(n, dtype=np.int8)
    cc_table = np.full(n, -1, dtype=np.int32)
    for code, (level, table) in scheme.cc.items():
        cc_level[pos[code]] = LEVEL_BIT[level]
        cc_table[pos[code]] = tables(table)
    pdx_table = np.full(n, -1, dtype=np.int32)
    for code, table in scheme.exclusions.items():
        pdx_table[pos[code]] = tables(table)
    never = scheme.never_excluded_table
    never_table = tables.ids.get(never, -1) if never is not None else -1
    site_attr = np.full((max(1, len(site_lists)), n), -1, dtype=np.int32)
    for k, name in enumerate(site_lists):
        attrs = _Interner()
        for code, attr in scheme.list_attrs.get(name, {}).items():
            if attr and code in scheme.lists[name]:
                site_attr[k, pos[code]] = attrs(attr)
    mask = np.array(
        [np.uint64(1) << np.uint64(j % 64) for j in range(len(list_names))] or [np.uint64(0)],
        dtype=np.uint64,
    )
    return list_names, bits, mask, or_flag, cc_level, cc_table, pdx_table, never_table, site_attr


def dedup_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a per-code table (sorted, as ``np.unique(axis=0)``) and each code's row number.

    A lexsort instead of ``np.unique(table, axis=0)``, which sorts a
    structured view: 0.26 CPU-s of every first grouping call for the national
    scheme's three 47,000-row tables on a busy machine, against 0.015 s
    here, with the same rows and numbers (tested).
    """
    n = table.shape[0]
    if n == 0:
        return np.ascontiguousarray(table), np.zeros(0, dtype=np.int32)
    order = np.lexsort(table.T[::-1])  # first column the primary key, as np.unique
    ranked = table[order]
    starts = np.empty(n, dtype=bool)
    starts[0] = True
    starts[1:] = (ranked[1:] != ranked[:-1]).any(axis=1)
    number = np.empty(n, dtype=np.int32)
    number[order] = np.cumsum(starts) - 1
    return np.ascontiguousarray(ranked[starts]), number


def _gates(expr: Expr) -> tuple[InList | None, InList | OrProc | None]:
    """The operands that make the principal codes decide whether a rule can hold.

    Among the operands of a top-level ``&`` (or the rule itself): the first
    ``pdx in L`` gates on the principal diagnosis, the first ``pproc in L`` or
    ``pproc_or`` on the principal procedure (either may be None).  The rule
    cannot hold unless each principal code is in its gate's code set
    (:func:`_gate_codes`).
    """
    parts = expr.operands if isinstance(expr, And) else (expr,)
    pdx = next((e for e in parts if isinstance(e, InList) and e.target == "pdx"), None)
    pproc = next(
        (
            e
            for e in parts
            if isinstance(e, InList) and e.target == "pproc" or isinstance(e, OrProc) and e.principal_only
        ),
        None,
    )
    return pdx, pproc


def _gate_codes(scheme: Scheme, gate: InList | OrProc):
    """The codes that pass a gate of :func:`_gates`."""
    return scheme.or_procedures if isinstance(gate, OrProc) else scheme.lists[gate.list]


def _residual(expr: Expr) -> Expr:
    """What is left of a rule to check once its gates (:func:`_gates`) hold.

    The gate operands drop out of the top-level ``&`` (rules are pure, so a
    known-true operand cannot change the result); a rule that is only its
    gates becomes ``true``.
    """
    gates = [g for g in _gates(expr) if g is not None]
    if not gates:
        return expr
    parts = expr.operands if isinstance(expr, And) else (expr,)
    rest = tuple(e for e in parts if e not in gates)
    if not rest:
        return TrueRule()
    return rest[0] if len(rest) == 1 else And(rest)


def _gate_tables(scheme: Scheme, pos: dict[str, int], n_codes: int, rules: list[Expr]):
    """Bitsets over the gated rules, bit ``j % 64`` of word ``j // 64`` for rule ``j``.

    Returns the rules without a pdx gate, those without a pproc gate, per code
    the rules whose pdx gate / pproc gate it passes, and the rules that are
    nothing but their gates.  A case can pass rule ``j`` only when
    ``(pdx_free | pdx[its pdx]) & (pproc_free | pproc[its pproc])`` has bit ``j``.
    """
    words = max(1, (len(rules) + 63) // 64)
    free = {"pdx": np.zeros(words, dtype=np.uint64), "pproc": np.zeros(words, dtype=np.uint64)}
    gates = {
        "pdx": np.zeros((n_codes, words), dtype=np.uint64),
        "pproc": np.zeros((n_codes, words), dtype=np.uint64),
    }
    exact = np.zeros(words, dtype=np.uint64)
    for j, rule in enumerate(rules):
        bit = np.uint64(1) << np.uint64(j % 64)
        for target, gate in zip(("pdx", "pproc"), _gates(rule), strict=True):
            if gate is None:
                free[target][j // 64] |= bit
            else:
                ids = np.fromiter((pos[c] for c in _gate_codes(scheme, gate)), dtype=np.int64)
                gates[target][ids, j // 64] |= bit
        if _residual(rule) == TrueRule():
            exact[j // 64] |= bit
    return free["pdx"], free["pproc"], gates["pdx"], gates["pproc"], exact


def _levels_table(drgs: list[Expr]) -> list[int] | None:
    """The first of ``drgs`` that holds (-1: none), per severity level set.

    Entry ``levels`` is for the level set with bit 0 for CC and bit 1 for
    MCC.  None when a rule reads anything but the severity.
    """
    if not all(isinstance(e, (Severity, TrueRule, Not, And, Or)) for rule in drgs for e in walk(rule)):
        return None
    out = []
    for levels in range(4):
        value = {Severity(level): bool(levels & bit) for level, bit in LEVEL_BIT.items()}
        out.append(next((k for k, rule in enumerate(drgs) if _truth(rule, value)), -1))
    return out


def _compact(a: np.ndarray) -> np.ndarray:
    """A per-code integer table as int16 when its values fit (a smaller table stays in cache)."""
    small = a.size == 0 or np.iinfo(np.int16).min <= a.min() <= a.max() <= np.iinfo(np.int16).max
    return np.ascontiguousarray(a, dtype=np.int16 if small else np.int32)


_CACHE: weakref.WeakKeyDictionary[Scheme, CompiledScheme] = weakref.WeakKeyDictionary()


def compile_scheme(scheme: Scheme) -> CompiledScheme:
    """Compile a loaded scheme for the kernel (cached per Scheme object).

    Parameters
    ----------
    scheme
        Any scheme loaded by :func:`casemix.load_scheme`.

    Returns
    -------
    CompiledScheme
        Frozen; its arrays must not be written to.
    """
    cached = _CACHE.get(scheme)
    if cached is not None:
        return cached
    index = code_index(scheme)

    rules: list[Expr] = [m.rule for m in scheme.mdcs]
    rules += [a.rule for ads in scheme.adrgs.values() for a in ads]
    rules += [d.rule for ds in scheme.drgs.values() for d in ds]
    rules += [r for c in scheme.checks for r in (c.when, c.rule) if r is not None]
    site_lists = sorted({n.list for r in rules for n in walk(r) if isinstance(n, Sites)})
    (list_names, bits, mask, or_flag, cc_level, cc_table, pdx_table, never_table, site_attr) = _code_tables(
        scheme, index, site_lists
    )
    asm = _Assembler(
        {name: i for i, name in enumerate(list_names)}, {name: k for k, name in enumerate(site_lists)}
    )

    # output tables: 0 is the empty string where a result may be empty
    mdc_out = _Interner(("",))
    adrg_out = _Interner(("",))
    drg_out = _Interner()
    reasons = _Interner(("",))

    mdc_rule, mdc_adrg_start, mdc_qy = [], [0], []
    adrg_rule, adrg_medical, adrg_out_idx = [], [], []
    for m in scheme.mdcs:
        mdc_out(m.code)
        mdc_rule.append(asm.add(_residual(m.rule)))
        for a in scheme.adrgs.get(m.code, ()):
            adrg_rule.append(asm.add(_residual(a.rule)))
            adrg_medical.append(adrg_kind(a.code) == "medical")
            adrg_out_idx.append(adrg_out(a.code))
        mdc_adrg_start.append(len(adrg_rule))
        mdc_qy.append(adrg_out(m.code[-1] + "QY") if scheme.ambiguous_group else -1)

    out_codes = adrg_out.table()
    out_drg_start, out_has, out_self, drg_rule, drg_idx, by_levels = [0], [], [], [], [], []
    for code in out_codes:
        rows = scheme.drgs.get(code)
        out_has.append(rows is not None)
        # a QY group without DRG rows is not split: its DRG code is its ADRG code
        out_self.append(drg_out(code) if rows is None and code.endswith("QY") else -1)
        for d in rows or ():
            drg_rule.append(asm.add(d.rule))
            drg_idx.append(drg_out(d.code))
        if out_self[-1] >= 0:
            by_levels.append([out_self[-1]] * 4)
        else:
            first = _levels_table([d.rule for d in rows or ()])
            by_levels.append(
                [-2] * 4
                if first is None
                else [drg_idx[out_drg_start[-1] + k] if k >= 0 else -1 for k in first]
            )
        out_drg_start.append(len(drg_rule))
    ungroupable = drg_out(scheme.ungroupable)

    # the failure rules twice: all of them, then those a case with an empty
    # ``malformed`` can fail (the malformed(...) rules cannot hold for it)
    fail_rule, fail_reason = [], []
    failures = failure_rules(scheme)
    numbers = [asm.add(rule) for rule, _ in failures]
    for keep_malformed in (True, False):
        for (rule, reason), number in zip(failures, numbers, strict=True):
            if keep_malformed or not _reads_malformed(rule):
                fail_rule.append(number)
                fail_reason.append(reasons(reason))
    n_fail_all = sum(1 for _ in failures)
    plain = [rule for rule, _ in failures if not _reads_malformed(rule)]
    atoms, validity_table = _validity_table(plain)
    malformed_reason = reasons(scheme.malformed_reason) if scheme.malformed_reason else -1
    malformed_fields = (
        tuple(sorted({c.field for c in scheme.checks if c.field is not None}, key=CHECK_FIELDS.index))
        if malformed_reason >= 0
        else ()
    )

    prog, vals, starts = asm.arrays()
    gated = [m.rule for m in scheme.mdcs] + [
        a.rule for m in scheme.mdcs for a in scheme.adrgs.get(m.code, ())
    ]
    pos = {c: i for i, c in enumerate(index.codes.to_list())}
    gate_pdx_free, gate_pproc_free, gate_pdx, gate_pproc, gate_exact = _gate_tables(
        scheme, pos, len(pos), gated
    )
    list_rows, list_row = dedup_rows(bits)
    pdx_rows, pdx_row = dedup_rows(gate_pdx)
    pproc_rows, pproc_row = dedup_rows(gate_pproc)
    code_info = _compact(
        np.stack([list_row, pdx_row, pproc_row, cc_level.astype(np.int32) | (cc_table + 1) << 2], axis=1)
    )
    i32 = lambda xs: np.array(xs, dtype=np.int32)  # noqa: E731
    compiled = CompiledScheme(
        index=index,
        list_names=list_names,
        list_bits=bits,
        list_mask=mask,
        or_flag=or_flag,
        cc_level=cc_level,
        cc_table=cc_table,
        pdx_table=_compact(pdx_table),
        never_table=int(never_table),
        site_attr=site_attr,
        prog=prog,
        prog_val=vals,
        rule_start=starts,
        mdc_rule=i32(mdc_rule),
        mdc_adrg_start=i32(mdc_adrg_start),
        mdc_qy=i32(mdc_qy),
        adrg_rule=i32(adrg_rule),
        adrg_medical=np.array(adrg_medical, dtype=np.uint8),
        adrg_out=i32(adrg_out_idx),
        out_drg_start=i32(out_drg_start),
        out_has_drgs=np.array(out_has, dtype=np.uint8),
        out_self_drg=i32(out_self),
        drg_rule=i32(drg_rule),
        drg_out=i32(drg_idx),
        drg_by_levels=i32(by_levels).reshape(-1, 4),
        gate_pdx_free=gate_pdx_free,
        gate_pproc_free=gate_pproc_free,
        gate_pdx=gate_pdx,
        gate_pproc=gate_pproc,
        gate_exact=gate_exact,
        code_info=code_info,
        list_rows=list_rows,
        gate_pdx_rows=pdx_rows,
        gate_pproc_rows=pproc_rows,
        fail_rule=i32(fail_rule),
        fail_reason=i32(fail_reason),
        n_fail_all=n_fail_all,
        atom_kind=i32([0 if isinstance(a, Compare) else 1 for a in atoms]),
        atom_field=i32(
            [FIELDS.index(a.field) if isinstance(a, Compare) else CHECK_FIELDS.index(a.field) for a in atoms]
        ),
        atom_op=i32([CMP_CODE[a.op] if isinstance(a, Compare) else 0 for a in atoms]),
        atom_value=np.array([a.value if isinstance(a, Compare) else 0.0 for a in atoms], dtype=np.float64),
        validity_table=validity_table,
        malformed_fields=malformed_fields,
        fallthrough=bool(scheme.mdc_fallthrough),
        ambiguous=bool(scheme.ambiguous_group),
        ungroupable_drg=int(ungroupable),
        reason_no_mdc=reasons(scheme.reasons.get("no_mdc", "")),
        reason_no_adrg=reasons(scheme.reasons.get("no_adrg", "")),
        reason_no_drg=reasons(scheme.reasons.get("no_drg", "")),
        mdc_codes=mdc_out.table(),
        adrg_codes=adrg_out.table(),
        drg_codes=drg_out.table(),
        reasons=reasons.table(),
        statuses=(scheme.status["grouped"], scheme.status["ungroupable"], scheme.status["invalid"]),
    )
    for arr in (
        bits,
        mask,
        or_flag,
        cc_level,
        cc_table,
        compiled.pdx_table,
        site_attr,
        prog,
        vals,
        starts,
        compiled.mdc_adrg_start,
        compiled.mdc_qy,
        compiled.adrg_medical,
        compiled.adrg_out,
        compiled.out_drg_start,
        compiled.out_has_drgs,
        compiled.out_self_drg,
        compiled.drg_out,
        compiled.drg_by_levels,
        compiled.fail_reason,
        gate_pdx_free,
        gate_pproc_free,
        gate_pdx,
        gate_pproc,
        gate_exact,
        compiled.code_info,
        list_rows,
        pdx_rows,
        pproc_rows,
        compiled.atom_kind,
        compiled.atom_field,
        compiled.atom_op,
        compiled.atom_value,
        validity_table,
    ):
        arr.flags.writeable = False
    _CACHE[scheme] = compiled
    return compiled
