"""Words of the daily bulletin: labels, syndrome names and recommended actions (zh, en).

Every label is a ``(Chinese, English)`` pair; :func:`say` picks what a language mode shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

__all__ = ["ACTIONS", "LABELS", "SEVERITY", "SYNDROMES", "Lang", "actions_for", "say"]

Lang = Literal["zh+en", "zh", "en"]
LANGS: tuple[str, ...] = get_args(Lang)

Pair = tuple[str, str]

LABELS: Mapping[str, Pair] = {
    "title": ("症状监测每日预警简报", "Daily syndromic surveillance alert bulletin"),
    "internal": (
        "疾控中心内部资料，含病例列表，不得外传",
        "CDC internal: contains line lists, do not distribute",
    ),
    "generated": ("生成时间", "Generated"),
    "summary": ("概况", "Summary"),
    "visits": ("就诊人次", "Visits"),
    "syndrome": ("症候群", "Syndrome"),
    "count": ("病例数", "Cases"),
    "prev7": ("前7日日均", "Mean of previous 7 days"),
    "alerts_new": ("新预警", "New alerts"),
    "alerts_ongoing": ("持续预警", "Ongoing alerts"),
    "alerts_ended": ("不再触发的预警", "Ended alerts (no longer signalled)"),
    "alerts_reviewed": ("当日核实结案", "Closed by review today"),
    "true_outbreak": ("确认暴发", "true outbreak"),
    "false_alarm": ("误报", "false alarm"),
    "undetermined": ("无法判定", "undetermined"),
    "alert_table": ("预警列表（按严重程度排序）", "Alerts ranked by severity"),
    "rank": ("序号", "#"),
    "severity": ("严重程度", "Severity"),
    "detector": ("探测方法", "Detector"),
    "streets": ("街道", "Street(s)"),
    "age_group": ("年龄组", "Age group"),
    "all_ages": ("全年龄", "all ages"),
    "observed": ("观察数", "Observed"),
    "expected": ("期望数", "Expected"),
    "upperbound": ("阈值", "Threshold"),
    "recurrence": ("重现间隔（天）", "Recurrence (days)"),
    "announcement": ("状态", "Status"),
    "new": ("新发", "new"),
    "grown": ("扩大", "grown"),
    "ongoing": ("持续", "ongoing"),
    "no_alerts": ("今日无预警。", "No alerts today."),
    "details": ("预警详情", "Alert details"),
    "more_alerts": (
        "另有 {n} 条预警未展开，见上表。",
        "{n} more alerts are listed in the table above only.",
    ),
    "window": ("时间窗", "Window"),
    "curve": ("近8周流行曲线", "Epidemic curve, last 8 weeks"),
    "map": ("地图", "Map"),
    "no_map": ("无法绘制地图：街道不在区域集中。", "No map: streets not in the area set."),
    "age_sex": ("年龄性别分布", "Age and sex"),
    "line_list": ("病例列表（已去标识化）", "Line list (de-identified)"),
    "visit_date": ("就诊日期", "Visit date"),
    "facility": ("医疗机构", "Facility"),
    "sex": ("性别", "Sex"),
    "complaint": ("主诉", "Chief complaint"),
    "codes": ("诊断编码", "Diagnosis codes"),
    "more_rows": ("另有 {n} 例未列出。", "{n} more visits not listed."),
    "actions": ("建议措施", "Recommended actions"),
    "quality": ("数据质量", "Data quality"),
    "quality_note": (
        "常规水平：前8周同星期几就诊人次中位数；迟报：就诊后超过24小时才更新的记录。",
        "Normal: median visits on the same weekday over the previous 8 weeks; late: records "
        "last updated more than 24 h after the visit.",
    ),
    "normal": ("常规水平", "Normal"),
    "ratio": ("比值", "Ratio"),
    "late": ("迟报", "Late"),
    "flag": ("提示", "Flag"),
    "silent": ("无数据", "silent"),
    "low": ("偏低", "low"),
    "high_volume": ("偏高", "high"),
    "batches": ("数据批次", "Load batches"),
    "batch": ("批次", "Batch"),
    "source": ("来源", "Source"),
    "started": ("开始时间", "Started"),
    "loaded": ("入库", "Loaded"),
    "quarantined": ("隔离", "Quarantined"),
    "reasons": ("隔离原因", "Quarantine reasons"),
    "no_batches": ("当日无数据批次记录。", "No load batch recorded for this day."),
}

SEVERITY: Mapping[str, Pair] = {
    "high": ("高", "high"),
    "medium": ("中", "medium"),
    "low": ("低", "low"),
}

SYNDROMES: Mapping[str, Pair] = {
    "ili": ("流感样病例", "influenza-like illness"),
    "fever": ("发热", "fever"),
    "respiratory": ("呼吸道症候群", "respiratory"),
    "gastrointestinal": ("胃肠道症候群", "gastrointestinal"),
    "hfmd": ("手足口病", "hand, foot and mouth disease"),
    "rash": ("发热出疹", "rash"),
    "conjunctivitis": ("结膜炎", "conjunctivitis"),
    "jaundice": ("黄疸", "jaundice"),
    "neurological": ("神经系统症候群", "neurological"),
    "varicella": ("水痘", "varicella"),
}

_COMMON: tuple[Pair, ...] = (
    (
        "与报告机构核实病例（诊断、重复就诊、编码变更）",
        "Verify cases with the reporting facilities (diagnoses, repeat visits, coding changes)",
    ),
    (
        "调查共同暴露（学校、单位、聚餐、养老机构）",
        "Look for a common exposure (school, workplace, shared meal, care home)",
    ),
)
_SAMPLING: Pair = (
    "采集标本送检（咽拭子/粪便）",
    "Collect samples for laboratory testing (throat swabs / stool)",
)
_SCHOOLS: Pair = (
    "通知辖区学校和托幼机构加强晨午检",
    "Notify schools and kindergartens in the streets to strengthen morning checks",
)
ACTIONS: Mapping[str, tuple[Pair, ...]] = {
    "ili": (_SAMPLING, ("关注养老机构和学校的聚集", "Watch care homes and schools for clusters")),
    "respiratory": (_SAMPLING,),
    "fever": (_SAMPLING,),
    "gastrointestinal": (
        _SAMPLING,
        ("排查饮用水和食品来源", "Check drinking-water and food sources"),
    ),
    "hfmd": (
        _SCHOOLS,
        (
            "采集粪便或咽拭子标本做肠道病毒分型",
            "Collect stool or throat swabs for enterovirus typing",
        ),
    ),
    "varicella": (_SCHOOLS, ("核查疫苗接种史", "Check vaccination histories")),
    "rash": (
        _SCHOOLS,
        (
            "排查麻疹、风疹，核查疫苗接种史",
            "Rule out measles and rubella; check vaccination histories",
        ),
    ),
    "conjunctivitis": (_SCHOOLS,),
    "jaundice": (
        ("排查甲肝、戊肝及共同饮食来源", "Rule out hepatitis A/E and a common food source"),
    ),
    "neurological": (
        (
            "排查脑炎、脑膜炎，必要时送检脑脊液",
            "Rule out encephalitis/meningitis; test CSF where indicated",
        ),
    ),
}


def say(pair: Pair, lang: Lang) -> str:
    """Render a ``(zh, en)`` pair for a language mode (``zh+en`` shows both)."""
    zh, en = pair
    return {"zh": zh, "en": en}.get(lang, f"{zh} {en}")


def actions_for(syndrome: str) -> tuple[Pair, ...]:
    """Recommended actions for a syndrome: the common checks, then its own."""
    return _COMMON + ACTIONS.get(syndrome, ())
