"""casemix.drg.compile: code tables and the rule program.

The program is checked without numba: a few lines of Python below run
the compiled instructions, and must agree with the reference ``holds``
on random rule trees and random cases.
"""

from __future__ import annotations

import numba
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import strategies_drg as S
from tests.tiny_scheme import write

from casemix.drg import compile as C
from casemix.drg import kernel as K
from casemix.drg.reference import Case, _Context, holds, severity_levels
from casemix.encode import code_index, encode_cases
from casemix.scheme.rules import FIELDS, parse_rule


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from casemix.scheme import load_scheme

    return load_scheme(write(tmp_path_factory.mktemp("tiny-compile")))


def test_compiled_once_per_scheme(tiny):
    assert C.compile_scheme(tiny) is C.compile_scheme(tiny)


def test_code_tables_match_the_scheme(tiny):
    cs = C.compile_scheme(tiny)
    index = code_index(tiny)
    codes = index.codes.to_list()
    for j, name in enumerate(cs.list_names):
        members = {codes[i] for i in range(len(codes)) if cs.list_bits[i, j // 64] & cs.list_mask[j]}
        assert members == set(tiny.lists[name]), name
    assert {codes[i] for i in np.flatnonzero(cs.or_flag)} == set(tiny.or_procedures)
    for code, (level, _table) in tiny.cc.items():
        i = index.id_of(code)
        assert cs.cc_level[i] == C.LEVEL_BIT[level]
    # same table string → same id, for CC codes and principals alike
    i50, n17 = index.id_of("I50.000"), index.id_of("N17.900")
    assert cs.pdx_table[i50] == cs.cc_table[i50] >= 0  # I50.000: table 7 both ways
    assert cs.pdx_table[index.id_of("I21.000")] == cs.cc_table[index.id_of("J96.000")]  # table 5
    assert cs.never_table == cs.cc_table[n17]  # table 99 never excludes
    assert cs.pdx_table[index.id_of("S06.000")] == -1
    # site attrs: head for S06.000, one shared id for both chest codes
    k = 0
    attrs = cs.site_attr[k]
    assert attrs[index.id_of("S27.000")] == attrs[index.id_of("S27.100")] != attrs[index.id_of("S06.000")]
    assert attrs[index.id_of("I50.000")] == -1


def test_order_tables(tiny):
    cs = C.compile_scheme(tiny)
    assert cs.mdc_codes == ("", "MDCA", "MDCP", "MDCZ", "MDCM", "MDCF")
    # ADRGs of each MDC in seq order, then the QY group of each MDC (ambiguous_group = true)
    starts = cs.mdc_adrg_start.tolist()
    assert starts == [0, 1, 3, 4, 5, 9]
    fdrgs = [cs.adrg_codes[cs.adrg_out[a]] for a in range(starts[4], starts[5])]
    assert fdrgs == ["FA1", "FK1", "FR1", "FT1"]
    assert [bool(cs.adrg_medical[a]) for a in range(starts[4], starts[5])] == [False, False, True, True]
    assert cs.adrg_codes[cs.mdc_qy[4]] == "FQY"
    fqy = cs.mdc_qy[4]
    assert cs.out_has_drgs[fqy] == 1
    assert [cs.drg_codes[cs.drg_out[d]] for d in range(cs.out_drg_start[fqy], cs.out_drg_start[fqy + 1])] == [
        "FQY9"
    ]
    aqy = cs.mdc_qy[0]  # AQY has no DRG rows: its DRG is its own code
    assert cs.out_has_drgs[aqy] == 0 and cs.drg_codes[cs.out_self_drg[aqy]] == "AQY"
    assert cs.drg_codes[cs.ungroupable_drg] == "0000"
    assert cs.reasons[0] == "" and cs.reasons[cs.reason_no_mdc] == "no mdc"
    assert cs.statuses == ("ok", "none", "bad")
    failures = C.failure_rules(tiny)
    assert cs.n_fail_all == len(failures)
    assert [cs.reasons[r] for r in cs.fail_reason[: cs.n_fail_all]] == [r for _, r in failures]
    # then the failures a case without malformed fields can have
    assert [cs.reasons[r] for r in cs.fail_reason[cs.n_fail_all :]] == [
        r for rule, r in failures if not C._reads_malformed(rule)
    ]
    assert cs.malformed_fields == ("sex", "age", "birth_weight", "diagnoses")


# -- the program, run by the kernel's own predicate ------------------------------------


def _run(prog, vals, starts, base, r, enc, i, levels, holds=K._holds):
    """Rule ``r`` of a compiled program on encoded case ``i``, by ``kernel._holds`` itself."""
    info, rows, mask, or_flag, _, _, site_attr = base.kernel_args()[:7]
    return bool(
        holds(
            r,
            i,
            prog,
            vals,
            starts,
            info,
            rows,
            mask,
            or_flag,
            site_attr,
            enc.pdx,
            enc.sdx_off,
            enc.sdx_val,
            enc.pproc,
            enc.oproc_off,
            enc.oproc_val,
            enc.fields,
            enc.present,
            enc.malformed,
            levels,
        )
    )


_ATOMS = [
    "true",
    "pdx in FR1.pdx",
    "sdx in MDCF.pdx",
    "dx in FA1.pdx",
    "pproc in FA1.pproc",
    "proc in FK1.a",
    "proc in FK1.b",
    "pproc_or",
    "proc_or",
    "sites(MDCZ.pdx) >= 2",
    "sites(MDCZ.pdx) == 1",
    "mcc",
    "cc",
    "age_days <= 28",
    "birth_weight != 0",
    "sex == 1",
    "age >= 80",
    "los > 0",
    "discharge != 5",
]


def _rule_text():
    atom = st.sampled_from(_ATOMS)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            inner.map(lambda e: f"!({e})"),
            st.lists(inner, min_size=2, max_size=4).map(lambda es: "(" + " & ".join(es) + ")"),
            st.lists(inner, min_size=2, max_size=4).map(lambda es: "(" + " | ".join(es) + ")"),
        ),
        max_leaves=10,
    )


@settings(max_examples=100, deadline=None)
@given(text=_rule_text(), row=st.data())
def test_program_equals_reference_holds(tiny, text, row):
    expr = parse_rule(text, allow_severity=True)
    base = C.compile_scheme(tiny)
    asm = C._Assembler({n: i for i, n in enumerate(base.list_names)}, {"MDCZ.pdx": 0})
    r = asm.add(expr)
    prog, vals, starts = asm.arrays()
    case = row.draw(S.cases(S.pools(tiny)))
    enc = encode_cases(S.frame([case]), tiny)
    ref_case = Case(
        pdx=case["pdx"],
        sdx=tuple(case["sdx"]),
        pproc=case["pproc"],
        oproc=tuple(case["oproc"]),
        **{f: case[f] for f in FIELDS},
        malformed=tuple(case["malformed"]),
    )
    levels_set = severity_levels(ref_case, tiny)
    levels = sum(C.LEVEL_BIT[lv] for lv in levels_set)
    assert _run(prog, vals, starts, base, r, enc, 0, levels) == holds(
        expr, _Context(ref_case, tiny, levels_set)
    )


def test_negated_predicate_is_one_instruction():
    asm = C._Assembler({"Z": 0}, {})
    asm.add(parse_rule("!pdx in Z & !(pdx in Z | age > 3)"))
    prog, _, _ = asm.arrays()
    assert prog[0].tolist() == [C.OP_IN_PDX, 0, 0, 1]
    assert prog[:, 0].tolist().count(C.OP_NOT) == 1  # only the compound operand keeps a NOT


def test_and_or_short_circuit_and_cheap_first():
    # sites(...) is the most expensive predicate: it runs last inside '&'
    asm = C._Assembler({"Z": 0, "F": 1}, {"Z": 0})
    asm.add(parse_rule("sites(Z) >= 2 & pdx in Z"))
    prog, _, starts = asm.arrays()
    ops = prog[:, 0].tolist()
    assert ops == [C.OP_IN_PDX, C.OP_JUMP_FALSE, C.OP_SITES]
    assert prog[1, 3] == 3  # the jump skips to the end of the '&'


def test_compact_code_tables_rebuild_the_full_ones(tiny):
    cs = C.compile_scheme(tiny)
    info = cs.code_info
    assert (cs.list_rows[info[:, 0]] == cs.list_bits).all()
    assert (cs.gate_pdx_rows[info[:, 1]] == cs.gate_pdx).all()
    assert (cs.gate_pproc_rows[info[:, 2]] == cs.gate_pproc).all()
    assert ((info[:, 3] & 3) == cs.cc_level).all()
    assert ((info[:, 3] >> 2) - 1 == cs.cc_table).all()
    assert len(cs.list_rows) < len(cs.list_bits)  # codes share rows


def test_validity_truth_table(tiny):
    cs = C.compile_scheme(tiny)
    # tiny: present(sex), sex == 1, sex == 2, present(age), age == 0, age_days <= 28,
    # present(birth_weight), present(diagnoses)
    assert len(cs.atom_kind) == 8 and cs.validity_table.shape == (256,)
    plain = [r for r, _ in C.failure_rules(tiny) if not C._reads_malformed(r)]
    atoms, table = C._validity_table(plain)
    all_true = (1 << len(atoms)) - 1
    sex2 = next(
        t
        for t, a in enumerate(atoms)
        if getattr(a, "op", None) == "==" and a.field == "sex" and a.value == 2.0
    )
    # every atom true is impossible data (sex 1 and 2) but a valid key: no check fails
    assert table[all_true] == -1
    assert table[0] == 0  # nothing present: the first check (sex missing) fails
    assert table[all_true & ~(1 << sex2)] == -1  # sex == 1 alone passes


def test_holds_updates_no_reference_counts(tiny):
    """``kernel._holds`` is compiled apart from the grouping kernel (issue 16: a shorter
    compile); called once per rule tried, it must not update the reference counts of its
    array arguments (atomic operations on counts both threads share).  numba increfs every
    array argument on entry; LLVM's pruning removes the pairs only while ``_holds`` calls
    no other compiled function, which this checks in the optimised machine code."""
    base = C.compile_scheme(tiny)
    asm = C._Assembler({n: i for i, n in enumerate(base.list_names)}, {"MDCZ.pdx": 0})
    r = asm.add(parse_rule("sites(MDCZ.pdx) >= 1", allow_severity=True))
    prog, vals, starts = asm.arrays()
    case = {k: [] if isinstance(t, pl.List) else None for k, t in S.CANONICAL_TYPES.items()}
    enc = encode_cases(S.frame([{**case, "pdx": "X00.0"}]), tiny)
    # compiled here, not loaded from numba's cache (which keeps no LLVM IR to look at)
    holds = numba.njit(cache=False)(K._holds.py_func)
    _run(prog, vals, starts, base, r, enc, 0, 0, holds=holds)
    ir = "\n".join(holds.inspect_llvm().values())
    assert "define" in ir
    assert "call void @NRT_incref" not in ir


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=3, max_size=3), max_size=40))
def test_dedup_rows_equals_numpy_unique(rows):
    # few values per column: many repeated rows, and rows that differ in one column only
    table = np.array(rows, dtype=np.uint64).reshape(-1, 3)
    got_rows, got_number = C.dedup_rows(table)
    if table.shape[0]:
        want_rows, want_number = np.unique(table, axis=0, return_inverse=True)
    else:
        want_rows, want_number = table, np.zeros(0, np.int64)
    assert got_rows.tolist() == want_rows.tolist()
    assert got_number.tolist() == want_number.reshape(-1).tolist()
    assert got_number.dtype == np.int32 and got_rows.flags.c_contiguous
