"""A tiny scheme written by the tests, so each grouping step can be checked by hand.

MDCs (in order): A (pproc_or, transplant only, falls through), P (newborn),
Z (trauma, 2 sites), M (male), F (circulation).
"""

from __future__ import annotations

from pathlib import Path

FILES = {
    "scheme.toml": """
id = "tiny"
name = "tiny test scheme"
version = "0"
mdc_fallthrough = true
ambiguous_group = true
ungroupable = "0000"
never_excluded_table = "99"
[status]
grouped = "ok"
ungroupable = "none"
invalid = "bad"
[reasons]
no_mdc = "no mdc"
no_adrg = "no adrg"
no_drg = "no drg"
[validity]
malformed_reason = "malformed"
[[validity.check]]
field = "sex"
reason = "sex missing"
[[validity.check]]
rule = "sex == 1 | sex == 2"
reason = "sex 1 or 2"
[[validity.check]]
field = "age"
reason = "age missing"
[[validity.check]]
field = "birth_weight"
when = "age == 0 & age_days <= 28"
reason = "weight missing"
[[validity.check]]
field = "diagnoses"
reason = "no diagnosis"
""",
    "mdc.csv": """seq,mdc,name,rule
1,MDCA,pre,pproc_or
2,MDCP,newborn,pdx in MDCP.pdx & age == 0
3,MDCZ,trauma,pdx in MDCZ.pdx & sites(MDCZ.pdx) >= 2
4,MDCM,male,pdx in MDCM.pdx & sex == 1
5,MDCF,circulation,pdx in MDCF.pdx
""",
    "adrg.csv": """mdc,seq,adrg,name,rule
MDCA,1,AA1,transplant,pproc in AA1.pproc
MDCP,1,PS1,tiny baby,dx in PS1.dx & birth_weight != 0 & birth_weight < 1500 & age_days <= 28
MDCP,2,PV1,other newborn,true
MDCZ,1,ZZ1,multiple trauma,true
MDCM,1,MA1,prostatectomy,pproc in MA1.pproc
MDCF,1,FA1,cabg,pdx in FA1.pdx & pproc in FA1.pproc
MDCF,2,FK1,pacemaker check,proc in FK1.a & proc in FK1.b
MDCF,3,FR1,heart failure,pdx in FR1.pdx
MDCF,4,FT1,other circulation,!proc_or
""",
    "drg.csv": """adrg,seq,drg,name,rule
AA1,1,AA19,transplant,true
PS1,1,PS19,tiny baby,true
PV1,1,PV19,other newborn,true
ZZ1,1,ZZ19,multiple trauma,true
MA1,1,MA15,prostatectomy,true
FA1,1,FA11,cabg mcc,mcc
FA1,2,FA13,cabg cc,cc
FA1,3,FA15,cabg,true
FK1,1,FK19,pacemaker check,true
FR1,1,FR11,heart failure mcc,mcc
FR1,2,FR13,heart failure cc,mcc | cc
FR1,3,FR15,heart failure old,age >= 80 & discharge != 5
FT1,1,FT19,other circulation,los > 0
FQY,1,FQY9,circulation with unrelated OR procedure,true
""",
    "lists.csv": """list,code,attr
MDCP.pdx,P07.100,
MDCP.pdx,P22.000,
PS1.dx,P07.100,
MDCZ.pdx,S06.000,head
MDCZ.pdx,S27.000,chest
MDCZ.pdx,S27.100,chest
MDCM.pdx,N40.x00,
MDCF.pdx,I21.000,
MDCF.pdx,I50.000,
MDCF.pdx,I99.x00,
FA1.pdx,I21.000,
FR1.pdx,I50.000,
AA1.pproc,33.5000,
MA1.pproc,60.2900,
FA1.pproc,36.1000,
FK1.a,89.4500,
FK1.b,89.4600,
""",
    "cc.csv": """code,level,exclusion_table
J96.000,MCC,5
E87.100,CC,5
I50.000,CC,7
N17.900,MCC,99
""",
    "exclusions.csv": """pdx,exclusion_table
I50.000,7
I21.000,5
""",
    "or_procedures.csv": "code\n33.5000\n60.2900\n36.1000\n47.0100\n",
    "diagnoses.csv": """code,name
P07.100,low birth weight
P22.000,respiratory distress
S06.000,concussion
S27.000,pneumothorax
S27.100,haemothorax
N40.x00,prostate hyperplasia
I21.000,myocardial infarction
I50.000,heart failure
I99.x00,other circulatory
J96.000,respiratory failure
E87.100,hyponatraemia
N17.900,acute renal failure
""",
    "procedures.csv": """code,name
33.5000,lung transplant
60.2900,prostatectomy
36.1000,cabg
47.0100,appendectomy
89.4500,pacemaker check
89.4600,pacemaker check 2
""",
}


def write(folder: Path, **overrides: str) -> Path:
    """Write the tiny scheme into ``folder``, with some files replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**FILES, **overrides}.items():
        (folder / name).write_text(text.lstrip("\n"), encoding="utf-8")
    return folder


#: the tiny scheme with grey lists (灰码, ``[grey]``): I99.x00, S27.100 and an
#: unknown code are grey principal diagnoses (a warning only); 89.4600 is a grey
#: principal procedure, which a last validity check makes invalid
GREY = {
    "scheme.toml": FILES["scheme.toml"]
    + """[[validity.check]]
rule = "!(pproc in grey.pproc)"
reason = "grey principal procedure"
[grey]
pdx = "grey_dx.csv"
pproc = "grey_px.csv"
""",
    "grey_dx.csv": "code\nI99.x00\nS27.100\nZ99.999\n",
    "grey_px.csv": "code\n89.4600\n",
}


def write_grey(folder: Path) -> Path:
    """Write the tiny scheme with its grey lists (``GREY``) into ``folder``."""
    return write(folder, **GREY)
