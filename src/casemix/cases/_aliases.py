"""Column-name tables of case intake: canonical names, English aliases and
the Chinese field names of the 医疗保障基金结算清单 (医保结算清单) and the
住院病案首页.

Data only; ``docs/cases.md`` shows the same tables and a test checks that
every name here is documented there.  Names are compared after NFKC
normalisation (full-width brackets and letters become ASCII), removal of
white space and lower-casing, so ``年龄（天）``, ``年龄(天)`` and ``Age``
all match.  Within a field the first alias found in the input wins, in
the order listed.
"""

from __future__ import annotations

# canonical scalar field -> aliases in precedence order (the canonical name first).
# The NHSA 医保信息平台 interface names (setl_id, psn_no, gend, ...) are given as we
# know them from the published interface documents; they are aliases only.
SCALAR_ALIASES: dict[str, tuple[str, ...]] = {
    "case_id": (
        "case_id",
        "caseid",
        "case_no",
        "setl_id",
        "结算ID",
        "mdtrt_id",
        "就诊ID",
        "住院流水号",
        "住院号",
        "medcasno",
        "病案号",
    ),
    "hospital_id": (
        "hospital_id",
        "hospital",
        "hosp_id",
        "provider_id",
        "fixmedins_code",
        "定点医疗机构代码",
        "定点医疗机构编码",
        "定点医药机构编号",
        "医疗机构代码",
        "医疗机构编码",
        "医院编码",
        "医院代码",
        "机构编码",
    ),
    "sex": ("sex", "gender", "gend", "性别"),
    "age": ("age", "age_years", "年龄", "年龄(岁)"),
    "age_days": (
        "age_days",
        "nwb_age",
        "年龄(天)",
        "年龄不足1周岁的年龄(天)",
        "(年龄不足1周岁的)年龄(天)",
        "年龄不足1周岁的年龄",
        "新生儿年龄(天)",
        "新生儿年龄",
        "年龄天数",
        "日龄",
    ),
    "birth_weight": (
        "birth_weight",
        "birthweight",
        "nwb_bir_wt",
        "新生儿出生体重(克)",
        "新生儿出生体重",
        "出生体重(克)",
        "出生体重",
    ),
    "los": (
        "los",
        "length_of_stay",
        "act_ipt_days",
        "实际住院天数",
        "实际住院(天)",
        "住院天数",
        "住院天数(天)",
    ),
    "discharge": ("discharge", "discharge_mode", "discharge_way", "dscg_way", "离院方式"),
    "total_cost": (
        "total_cost",
        "cost",
        "charges",
        "total_charges",
        "medfee_sumamt",
        "总费用",
        "总费用(元)",
        "住院总费用",
        "住院总费用(元)",
        "医疗总费用",
        "医疗费总额",
        "医疗费用总额",
    ),
    "patient_id": ("patient_id", "psn_no", "人员编号", "患者ID", "患者编号", "个人编号"),
    "admission_date": ("admission_date", "adm_date", "adm_time", "入院日期", "入院时间"),
    "discharge_date": ("discharge_date", "dscg_date", "dscg_time", "出院日期", "出院时间"),
    "insurance_type": ("insurance_type", "insutype", "险种类型", "医保类型", "险种"),
    # money the 医保结算清单 itemises (yuan); read by settlement (docs/payment-settlement.md)
    "fund_paid": (
        "fund_paid",
        "fund_payment",
        "hifp_pay",
        "统筹基金支付",
        "统筹基金支付(元)",
        "基本医疗保险统筹基金支出",
        "统筹基金支出",
    ),
    "patient_share": ("patient_share", "out_of_pocket", "个人负担", "个人负担(元)", "个人负担金额"),
    "deductible": ("deductible", "起付线", "起付标准", "起付线(元)"),
    "copay": ("copay", "co_payment", "psn_part_amt", "自付", "个人自付金额", "自付金额"),
    "self_pay": ("self_pay", "自费", "自费金额"),
    # payment rules (docs/payment-settlement.md): new drugs/technologies, audit deductions
    "new_tech_cost": ("new_tech_cost", "新药新技术费用", "新药新技术费用(元)", "除外支付费用"),
    "audit_deduction": ("audit_deduction", "审核扣款", "审核扣款(元)", "审核扣减费用"),
    "department": ("department", "dept", "dscg_caty", "出院科别", "出院科室", "科室"),
    "year": ("year", "年度", "结算年度", "年份"),
}

# Columns that casemix steps write and later steps read (grouping results, the
# hospital's level).  Matched like the scalar fields; the canonical name first.
STEP_ALIASES: dict[str, tuple[str, ...]] = {
    "drg": ("drg", "drg_code", "DRG编码", "DRG组编码", "DRG分组编码"),
    "adrg": ("adrg", "adrg_code", "ADRG编码"),
    "mdc": ("mdc", "mdc_code", "MDC编码"),
    "hospital_level": ("hospital_level", "hosp_level", "hosp_lv", "医院等级", "医院级别", "医疗机构等级"),
    # days in an intensive-care ward (监护病房: 层流洁净病房, 层流洁净简易病房, 监护病房),
    # read by the DIP ICU-day sub-type (casemix.dip.scores.subtype_labels)
    "icu_days": (
        "icu_days",
        "icu_day",
        "重症监护天数",
        "重症监护室天数",
        "监护病房住院天数",
        "重症监护病房天数",
    ),
}

# The patient-side benefit cascade (casemix.benefits): the cost parts of the
# 医保结算清单 and the person's assistance status.  Amounts in yuan.
BENEFIT_ALIASES: dict[str, tuple[str, ...]] = {
    "assist_status": ("assist_status", "救助身份", "人员类别"),
    "inscp_scp_amt": ("inscp_scp_amt", "政策范围内费用", "符合政策范围金额"),
    "preselfpay_amt": ("preselfpay_amt", "乙类自付", "先行自付金额"),
    "fulamt_ownpay_amt": ("fulamt_ownpay_amt", "全自费", "全自费金额"),
    "special_drug_amt": ("special_drug_amt", "大病特药费用"),
    "referral": ("referral", "转诊"),
    "major_disease": ("major_disease", "大病"),
}

# Code columns.  "principal" = one code; "others" = a list column or a
# "|"-separated string; "combined" = principal first, list or "|"-string.
# Variants without the 编码/代码 suffix come last: in many extracts they hold
# the diagnosis *name*, so a code column wins when both exist.
CODE_ALIASES: dict[str, tuple[str, ...]] = {
    "pdx": (
        "pdx",
        "principal_diagnosis",
        "main_diagnosis",
        "主要诊断编码",
        "主要诊断代码",
        "主诊断编码",
        "主诊断代码",
        "主要诊断疾病编码",
        "主要诊断疾病代码",
        "主要诊断",
    ),
    "sdx": ("sdx", "secondary_diagnoses", "other_diagnoses", "其他诊断编码", "其他诊断代码", "其他诊断"),
    "diagnoses": ("diagnoses", "diagnosis", "dx", "诊断编码", "诊断代码"),
    "pproc": (
        "pproc",
        "principal_procedure",
        "main_procedure",
        "主要手术操作编码",
        "主要手术及操作编码",
        "主要手术操作代码",
        "主要手术及操作代码",
        "主手术编码",
        "主手术操作编码",
        "主要手术操作",
        "主要手术及操作",
    ),
    "oproc": (
        "oproc",
        "other_procedures",
        "其他手术操作编码",
        "其他手术及操作编码",
        "其他手术操作代码",
        "其他手术及操作代码",
        "其他手术操作",
        "其他手术及操作",
    ),
    "procedures": (
        "procedures",
        "procedure",
        "proc",
        "pr",
        "手术操作编码",
        "手术及操作编码",
        "手术操作代码",
        "手术及操作代码",
    ),
}

# Wide families: a prefix followed by a number (optionally after "_", "-" or ".").
# The number orders the columns; column order in the file does not matter.
WIDE_PREFIXES: dict[str, tuple[str, ...]] = {
    # principal first: number 1 is the principal
    "diagnoses": ("dx", "diag", "diagnosis", "诊断编码", "诊断代码"),
    "procedures": (
        "pr",
        "proc",
        "procedure",
        "手术操作编码",
        "手术及操作编码",
        "手术操作代码",
        "手术及操作代码",
    ),
    # secondaries only, beside a principal column
    "sdx": ("sdx", "其他诊断编码", "其他诊断代码", "次要诊断编码", "其他诊断"),
    "oproc": (
        "oproc",
        "其他手术操作编码",
        "其他手术及操作编码",
        "其他手术操作代码",
        "其他手术及操作代码",
        "其他手术操作",
        "其他手术及操作",
    ),
}

# Sex words (after trim, NFKC, upper-case).  GB/T 2261.1: 0 未知的性别, 1 男, 2 女, 9 未说明的性别.
SEX_WORDS: dict[str, str] = {
    "男": "1",
    "男性": "1",
    "M": "1",
    "MALE": "1",
    "女": "2",
    "女性": "2",
    "F": "2",
    "FEMALE": "2",
    "未知": "0",
    "未知的性别": "0",
    "未说明": "9",
    "未说明的性别": "9",
}

# 离院方式 names of the 结算清单 / 病案首页 (codes 1-5, 9).
DISCHARGE_WORDS: dict[str, str] = {
    "医嘱离院": "1",
    "医嘱转院": "2",
    "医嘱转社区卫生服务机构/乡镇卫生院": "3",
    "医嘱转社区": "3",
    "非医嘱离院": "4",
    "死亡": "5",
    "其他": "9",
}
