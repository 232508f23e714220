"""Syndrome classification of visits from versioned definitions (a YAML data file).

A visit is classified from its chief complaint (Chinese or English, simplified or
traditional, with common typos), its measured temperature and its ICD-10 codes. The
definitions file names *concepts* (symptoms with their term lists), and per syndrome a
boolean *rule* over concepts plus ICD-10 *codes*; a visit can have several syndromes.

The complaint is normalised once (NFKC, lower case, traditional → simplified), all terms
are found by one compiled alternation (longest term first), and each match is dropped if
a negation cue governs it (:mod:`transform.negation`). Work is done once per distinct
complaint and per distinct code list, then broadcast to visits with numpy.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from transform.negation import DEFAULT_DETECTOR, NegationDetector

DEFINITIONS_V1 = Path(__file__).with_name("data") / "syndromes_v1.yaml"
REQUIRED_COLUMNS = ("chief_complaint", "temperature_c", "age_years", "diagnosis_codes")

# Traditional → simplified for the characters that occur in complaints (not a general
# converter: enough for symptoms, negations and the words around them).
_T2S_PAIRS = (
    "發发 熱热 燒烧 頭头 嚨咙 瀉泻 嘔呕 噁恶 惡恶 無无 紅红 皰疱 潰溃 瘍疡 暈晕 頸颈 強强 "
    "黃黄 識识 氣气 悶闷 樣样 兒儿 膚肤 脹胀 噴喷 淚泪 結结 雙双 驚惊 鞏巩 臍脐 軀躯 幹干 "
    "乾干 癢痒 痠酸 體体 溫温 腫肿 膿脓 瘡疮 傷伤 腦脑 視视 腸肠 濕湿 診诊 療疗 藥药 醫医 "
    "複复 隨随 訪访 認认 見见 沒没 與与 並并 後后 個个 癥症 狀状 嚴严 癇痫 難难 鳴鸣 時时 "
    "週周 歲岁 間间 斷断 續续 陣阵 輕轻 癱瘫 語语 說说 話话 歷历 陽阳 陰阴 來来 過过 還还 "
    "這这 點点 變变 轉转 劇剧 顯显 誘诱 緩缓 適适 處处 區区 嗎吗 啞哑 膜膜 腳脚 漿浆 糞粪 "
    "噯嗳 嘰叽 癲癫 臉脸 麼么 吳吴 鬱郁 風风 寒寒 冷冷 涼凉 痺痹 齒齿 齦龈 嚥咽 喪丧 將将 "
    "絕绝 納纳 減减 饑饥 餓饿 飲饮 喫吃 腎肾 尿尿 療疗 檢检 查查 驗验 測测 門门 復复"
)
_T2S = str.maketrans({p[0]: p[1] for p in _T2S_PAIRS.split() if p[0] != p[1]})
_ENGLISH_SUFFIX = r"(?:s|es|ed|d|ing)?"
_IDENT = re.compile(r"\s*(\(|\)|and\b|or\b|not\b|syndrome\.[a-z][a-z0-9_]*|[a-z][a-z0-9_]*)")
_TEMPERATURE = r"^\s*(-?\d+(?:\.\d+)?)\s*(?:°\s*c|℃|c)?\s*$"
_LATIN = re.compile(r"[a-z]")
_CODE = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,4}$")


def normalise_text(text: str) -> str:
    """Complaint text as matched: NFKC (full-width → ASCII), lower case, simplified."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().translate(_T2S).split())


def normalise_code(code: str) -> str:
    """ICD-10 code as compared: upper case, no dot or spaces (``"j11.1"`` → ``"J111"``)."""
    return code.strip().upper().replace(".", "").replace(" ", "")


# --- boolean rules ---------------------------------------------------------------------

Env = Mapping[str, np.ndarray]
Rule = Callable[[Env], np.ndarray]


def _either(a: Rule, b: Rule) -> Rule:
    return lambda env: a(env) | b(env)


def _both(a: Rule, b: Rule) -> Rule:
    return lambda env: a(env) & b(env)


def _parse_rule(text: str, where: str) -> tuple[Rule, set[str]]:
    """Compile ``a and (b or not syndrome.c)`` into a function of named boolean arrays."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _IDENT.match(text, pos)
        if m is None:
            raise ValueError(f"{where}: cannot read rule {text!r} at {text[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    names: set[str] = set()
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise ValueError(f"{where}: rule {text!r} ends too early")
        i += 1
        return tokens[i - 1]

    def expr() -> Rule:
        left = term()
        while peek() == "or":
            take()
            left = _either(left, term())
        return left

    def term() -> Rule:
        left = factor()
        while peek() == "and":
            take()
            left = _both(left, factor())
        return left

    def factor() -> Rule:
        tok = take()
        if tok == "not":
            inner = factor()
            return lambda env: ~inner(env)
        if tok == "(":
            inner = expr()
            if take() != ")":
                raise ValueError(f"{where}: unbalanced parentheses in rule {text!r}")
            return inner
        if tok in (")", "and", "or"):
            raise ValueError(f"{where}: unexpected {tok!r} in rule {text!r}")
        names.add(tok)
        return lambda env: env[tok]

    rule = expr()
    if i != len(tokens):
        raise ValueError(f"{where}: unexpected {tokens[i]!r} in rule {text!r}")
    return rule, names


# --- codes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeRule:
    """ICD-10 codes of one syndrome: prefixes and inclusive ranges (dot-less, upper case)."""

    prefixes: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, items: list[Any], where: str) -> CodeRule:
        """Read ``["R50", "J09-J11", "R19.7"]``; raise ``ValueError`` naming a bad item."""
        prefixes: list[str] = []
        ranges: list[tuple[str, str]] = []
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"{where}: code {item!r} is not a string")
            parts = [normalise_code(p) for p in item.split("-")]
            if len(parts) > 2 or not all(_CODE.match(p) for p in parts):
                raise ValueError(f"{where}: {item!r} is not an ICD-10 code or range")
            if len(parts) == 2:
                lo, hi = parts
                if len(lo) != len(hi) or lo > hi:
                    raise ValueError(f"{where}: range {item!r} is empty or mixes code lengths")
                ranges.append((lo, hi))
            else:
                prefixes.append(parts[0])
        return cls(tuple(prefixes), tuple(ranges))

    def matches(self, code: str) -> bool:
        """Whether one normalised code falls under these prefixes or ranges."""
        return code.startswith(self.prefixes) or any(
            lo <= code[: len(lo)] <= hi for lo, hi in self.ranges
        )


# --- definitions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Concept:
    """A symptom with its terms (as written in the definitions file)."""

    name: str
    zh: str
    en: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Syndrome:
    """One syndrome: names, descriptions, rule over concepts, ICD-10 codes."""

    name: str
    zh: str
    en: str
    description_zh: str
    description_en: str
    rule_text: str
    codes: CodeRule
    rule: Rule = field(repr=False, compare=False)
    depends_on: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class TemperatureRule:
    """A plausible measured temperature decides ``concept`` (≥ threshold or not)."""

    concept: str
    fever_threshold_c: float
    plausible_min_c: float
    plausible_max_c: float


@dataclass(frozen=True)
class Definitions:
    """Validated syndrome definitions of one version, with the compiled term matcher."""

    version: str
    source: str
    concepts: tuple[Concept, ...]
    syndromes: tuple[Syndrome, ...]
    """In evaluation order (a syndrome after those its rule refers to)."""
    temperature: TemperatureRule
    term_concept: Mapping[str, str] = field(repr=False, compare=False)
    """Normalised term → concept name."""
    pattern_zh: re.Pattern[str] = field(repr=False, compare=False)
    pattern_en: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def concept_names(self) -> tuple[str, ...]:
        """Concept names in definition order."""
        return tuple(c.name for c in self.concepts)

    @property
    def syndrome_names(self) -> tuple[str, ...]:
        """Syndrome names, sorted."""
        return tuple(sorted(s.name for s in self.syndromes))


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, (str, list, dict)) and not value):
        raise ValueError(f"{where}: {key!r} must be a non-empty {getattr(kind, '__name__', kind)}")
    return value


def _term_patterns(terms: list[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Chinese and English alternations, longest term first, without per-term groups.

    Per-term capture groups or word boundaries inside the alternation make Python's regex
    engine try every alternative at every position (~100x slower); a plain literal
    alternation is scanned fast, and English runs only on texts with Latin letters.
    """
    ordered = sorted(terms, key=lambda t: (-len(t), t))
    zh = "|".join(re.escape(t) for t in ordered if not t.isascii())
    en = "|".join(re.escape(t) for t in ordered if t.isascii())
    return (
        re.compile(zh or r"(?!x)x"),
        re.compile(rf"(?<![a-z])({en}){_ENGLISH_SUFFIX}(?![a-z])" if en else r"(?!x)x"),
    )


def _order_syndromes(syndromes: dict[str, Syndrome], where: str) -> tuple[Syndrome, ...]:
    ordered: list[Syndrome] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"{where}: syndrome rules refer to each other: {' -> '.join(chain)}")
        state[name] = 1
        for dep in sorted(syndromes[name].depends_on):
            visit(dep, (*chain, dep))
        state[name] = 2
        ordered.append(syndromes[name])

    for name in syndromes:
        visit(name, (name,))
    return tuple(ordered)


def load_definitions(path: Path | str | None = None) -> Definitions:
    """Load and validate syndrome definitions.

    Parameters
    ----------
    path : path-like, optional
        A definitions YAML file; default the packaged version 1
        (``transform/data/syndromes_v1.yaml``).

    Returns
    -------
    Definitions
        Validated definitions with the compiled term matcher.

    Raises
    ------
    ValueError
        If the file is not valid YAML or a definition is incomplete or inconsistent
        (unknown concept in a rule, a term in two concepts, a bad ICD-10 code …); the
        message names the file and the offending entry.
    """
    source = Path(path) if path is not None else DEFINITIONS_V1
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    where = str(source)
    version = _require(raw, "version", (str, int), where)

    temp_raw = _require(raw, "temperature", dict, where)
    numbers = {}
    for key in ("fever_threshold_c", "plausible_min_c", "plausible_max_c"):
        value = _require(temp_raw, key, (int, float), f"{where}: temperature")
        numbers[key] = float(value)
    if not numbers["plausible_min_c"] < numbers["fever_threshold_c"] < numbers["plausible_max_c"]:
        raise ValueError(f"{where}: temperature threshold must lie inside the plausible range")
    temperature = TemperatureRule(
        concept=_require(temp_raw, "concept", str, f"{where}: temperature"), **numbers
    )

    concepts: list[Concept] = []
    owner: dict[str, str] = {}
    for name, body in _require(raw, "concepts", dict, where).items():
        cwhere = f"{where}: concept {name!r}"
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"{cwhere}: names are lower_snake_case")
        terms = _require(body, "terms", list, cwhere)
        concept = Concept(
            name,
            str(_require(body, "zh", str, cwhere)),
            str(_require(body, "en", str, cwhere)),
            tuple(str(t) for t in terms),
        )
        for term in terms:
            if not isinstance(term, str) or not term.strip():
                raise ValueError(f"{cwhere}: term {term!r} is not a non-empty string")
            norm = normalise_text(term)
            if norm.isascii() and not (norm[0].isalnum() and norm[-1].isalnum()):
                raise ValueError(
                    f"{cwhere}: English term {term!r} must start and end with a letter"
                )
            if owner.setdefault(norm, name) != name:
                raise ValueError(f"{cwhere}: term {term!r} is already a term of {owner[norm]!r}")
        concepts.append(concept)
    concept_names = {c.name for c in concepts}
    if temperature.concept not in concept_names:
        raise ValueError(f"{where}: temperature concept {temperature.concept!r} is not defined")

    raw_syndromes = _require(raw, "syndromes", dict, where)
    syndromes: dict[str, Syndrome] = {}
    for name, body in raw_syndromes.items():
        swhere = f"{where}: syndrome {name!r}"
        description = _require(body, "description", dict, swhere)
        rule_text = str(_require(body, "rule", str, swhere))
        rule, refs = _parse_rule(rule_text, swhere)
        depends = set()
        for ref in refs:
            if ref.startswith("syndrome."):
                if ref[9:] not in raw_syndromes:
                    raise ValueError(f"{swhere}: rule refers to unknown syndrome {ref[9:]!r}")
                depends.add(ref[9:])
            elif ref not in concept_names:
                raise ValueError(f"{swhere}: rule refers to unknown concept {ref!r}")
        syndromes[name] = Syndrome(
            name=name,
            zh=str(_require(body, "zh", str, swhere)),
            en=str(_require(body, "en", str, swhere)),
            description_zh=str(_require(description, "zh", str, swhere)),
            description_en=str(_require(description, "en", str, swhere)),
            rule_text=rule_text,
            codes=CodeRule.parse(body.get("codes") or [], swhere),
            rule=rule,
            depends_on=frozenset(depends),
        )

    pattern_zh, pattern_en = _term_patterns(list(owner))
    return Definitions(
        version=str(version),
        source=where,
        concepts=tuple(concepts),
        syndromes=_order_syndromes(syndromes, where),
        temperature=temperature,
        term_concept=owner,
        pattern_zh=pattern_zh,
        pattern_en=pattern_en,
    )


# --- classification --------------------------------------------------------------------


def find_concepts(
    text: str, definitions: Definitions, detector: NegationDetector = DEFAULT_DETECTOR
) -> dict[str, bool]:
    """Concepts mentioned in one complaint, each with whether it is affirmed.

    A concept is affirmed if at least one of its mentions is not negated.

    Examples
    --------
    >>> find_concepts("无发热，咳嗽2天", load_definitions())
    {'fever': False, 'cough': True}
    """
    norm = normalise_text(text)
    hits = [(m.start(), m.end(), m.group()) for m in definitions.pattern_zh.finditer(norm)]
    if _LATIN.search(norm):
        hits += [(m.start(), m.end(), m.group(1)) for m in definitions.pattern_en.finditer(norm)]
        hits.sort()
    negated = detector.negated(norm, [(s, e) for s, e, _ in hits])
    found: dict[str, bool] = {}
    for (_, _, term), neg in zip(hits, negated, strict=True):
        name = definitions.term_concept[term]
        found[name] = found.get(name, False) or not neg
    return found


def _concept_matrix(texts: np.ndarray, definitions: Definitions) -> np.ndarray:
    """Affirmed concepts, one row per distinct complaint."""
    index = {name: k for k, name in enumerate(definitions.concept_names)}
    out = np.zeros((len(texts), len(index)), dtype=bool)
    for row, text in enumerate(texts):
        for name, affirmed in find_concepts(text, definitions).items():
            if affirmed:
                out[row, index[name]] = True
    return out


def _code_strings(values: pd.Series) -> pd.Series:
    """``;``-separated code strings from strings, lists or missing values."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.fillna("").astype(str)
    return values.map(
        lambda v: v if isinstance(v, str) else ";".join(map(str, v)) if _is_list(v) else ""
    ).astype(str)


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _code_matrix(code_strings: np.ndarray, definitions: Definitions) -> np.ndarray:
    """Syndromes implied by the codes, one row per distinct code string."""
    out = np.zeros((len(code_strings), len(definitions.syndromes)), dtype=bool)
    for row, joined in enumerate(code_strings):
        codes = [normalise_code(c) for c in re.split(r"[;,；，|\s]+", joined) if c.strip()]
        for k, syndrome in enumerate(definitions.syndromes):
            out[row, k] = any(syndrome.codes.matches(c) for c in codes)
    return out


def _temperatures(values: pd.Series) -> np.ndarray:
    """Degrees Celsius as floats; text such as ``"38.5℃"`` is read, anything else is NaN."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    index, uniques = pd.factorize(values.astype(str), sort=False)
    number = pd.Series(uniques).str.extract(_TEMPERATURE, flags=re.IGNORECASE)[0]
    parsed = pd.to_numeric(number, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return (
        np.where(index >= 0, parsed[index], np.nan) if len(parsed) else np.full(len(values), np.nan)
    )


def _missing(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"missing required column(s): {', '.join(missing)}")


def classify_matrix(frame: pd.DataFrame, definitions: Definitions) -> pd.DataFrame:
    """One boolean column per syndrome (sorted names), one row per visit.

    Parameters and requirements as for :func:`classify_visits`.
    """
    _missing(frame, ("chief_complaint", "temperature_c", "diagnosis_codes"))
    complaints = frame["chief_complaint"].fillna("").astype(str)
    text_codes, texts = pd.factorize(complaints, sort=False)
    concepts = _concept_matrix(np.asarray(texts, dtype=object), definitions)[text_codes]

    temps = _temperatures(frame["temperature_c"])
    rule = definitions.temperature
    with np.errstate(invalid="ignore"):
        measured = (temps >= rule.plausible_min_c) & (temps <= rule.plausible_max_c)
        febrile = temps >= rule.fever_threshold_c
    k = definitions.concept_names.index(rule.concept)
    concepts[:, k] = np.where(measured, febrile, concepts[:, k])

    code_index, code_values = pd.factorize(_code_strings(frame["diagnosis_codes"]), sort=False)
    by_code = _code_matrix(np.asarray(code_values, dtype=object), definitions)[code_index]

    env: dict[str, np.ndarray] = {
        n: concepts[:, j] for j, n in enumerate(definitions.concept_names)
    }
    results: dict[str, np.ndarray] = {}
    for j, syndrome in enumerate(definitions.syndromes):
        value = syndrome.rule(env) | by_code[:, j]
        results[syndrome.name] = value
        env[f"syndrome.{syndrome.name}"] = value
    names = definitions.syndrome_names
    return pd.DataFrame({n: results[n] for n in names}, index=frame.index)


def classify_visits(frame: pd.DataFrame, definitions: Definitions) -> pd.Series:
    """Syndromes of each visit.

    Parameters
    ----------
    frame : DataFrame
        Visits with ``chief_complaint`` (text, may be empty), ``temperature_c`` (°C,
        may be missing) and ``diagnosis_codes`` (``;``-separated ICD-10 codes or lists).
    definitions : Definitions
        From :func:`load_definitions`.

    Returns
    -------
    Series
        Aligned with ``frame.index``; each value a sorted list of syndrome names (empty
        list for none).

    Raises
    ------
    ValueError
        If a required column is missing (the message names it).

    Notes
    -----
    Each distinct complaint is matched once (real data repeat a lot), each distinct code
    list once; rules are then evaluated on boolean arrays over all visits.
    """
    matrix = classify_matrix(frame, definitions)
    names = np.array(matrix.columns, dtype=object)
    bits = matrix.to_numpy()
    keys = (
        bits @ (1 << np.arange(bits.shape[1], dtype=np.int64))
        if bits.size
        else np.zeros(len(frame), dtype=np.int64)
    )
    uniq, inverse = np.unique(keys, return_inverse=True)
    labels = [tuple(names[[(int(u) >> j) & 1 == 1 for j in range(len(names))]]) for u in uniq]
    return pd.Series(
        [list(labels[i]) for i in inverse.tolist()],
        index=frame.index,
        dtype=object,
        name="syndromes",
    )


def classify_file(input: Path, output: Path, definitions: Definitions | None = None) -> int:
    """Classify a CSV of visits: the ``sentinel classify`` contract.

    Parameters
    ----------
    input : Path
        UTF-8 CSV with at least ``chief_complaint, temperature_c, age_years,
        diagnosis_codes``; other columns pass through unchanged.
    output : Path
        Written as UTF-8 CSV: the input columns plus ``syndromes`` (``;``-separated,
        sorted, empty for none).
    definitions : Definitions, optional
        Default the packaged version 1.

    Returns
    -------
    int
        Number of visits classified.

    Raises
    ------
    ValueError
        If a required column is missing (named in the message).
    """
    frame = pd.read_csv(input, dtype=str, keep_default_na=False, encoding="utf-8")
    _missing(frame, REQUIRED_COLUMNS)
    labels = classify_visits(frame, definitions or load_definitions())
    out = frame.assign(syndromes=labels.map(";".join))
    out.to_csv(output, index=False, encoding="utf-8")
    return len(out)


# --- evaluation ------------------------------------------------------------------------


def _split_labels(values: pd.Series) -> list[set[str]]:
    return [{p.strip() for p in str(v).split(";") if p.strip()} for v in values.fillna("")]


def evaluate(labelled: pd.DataFrame, definitions: Definitions) -> pd.DataFrame:
    """Per-syndrome sensitivity and specificity of the rules on a labelled set.

    Parameters
    ----------
    labelled : DataFrame
        Visits (``chief_complaint, temperature_c, diagnosis_codes``) with ``expected``:
        the ``;``-separated syndromes a reader assigned from the definitions.
    definitions : Definitions
        The definitions under test.

    Returns
    -------
    DataFrame
        Index ``syndrome``; columns ``positives, tp, fn, fp, tn, sensitivity,
        specificity`` (NaN where undefined). ``attrs["exact_match"]`` holds the share of
        visits whose whole syndrome set is right, ``attrs["visits"]`` their number.

    Notes
    -----
    Sensitivity = TP / (TP + FN), specificity = TN / (TN + FP).
    """
    _missing(labelled, ("expected",))
    expected = _split_labels(labelled["expected"])
    unknown = set().union(*expected) - set(definitions.syndrome_names) if expected else set()
    if unknown:
        raise ValueError(f"expected names unknown syndrome(s): {', '.join(sorted(unknown))}")
    predicted = classify_matrix(labelled, definitions)
    rows = []
    for name in definitions.syndrome_names:
        truth = np.array([name in e for e in expected], dtype=bool)
        pred = predicted[name].to_numpy()
        tp, fn = int((truth & pred).sum()), int((truth & ~pred).sum())
        fp, tn = int((~truth & pred).sum()), int((~truth & ~pred).sum())
        rows.append(
            {
                "syndrome": name,
                "positives": tp + fn,
                "tp": tp,
                "fn": fn,
                "fp": fp,
                "tn": tn,
                "sensitivity": tp / (tp + fn) if tp + fn else np.nan,
                "specificity": tn / (tn + fp) if tn + fp else np.nan,
            }
        )
    table = pd.DataFrame(rows).set_index("syndrome")
    got = [set(predicted.columns[row]) for row in predicted.to_numpy()]
    table.attrs["visits"] = len(expected)
    table.attrs["exact_match"] = (
        float(np.mean([g == e for g, e in zip(got, expected, strict=True)])) if expected else np.nan
    )
    return table


# --- second opinion (text model) -------------------------------------------------------


@dataclass(frozen=True)
class SecondOpinion:
    """A character n-gram text model per syndrome, trained on labelled visits."""

    syndromes: tuple[str, ...]
    vectorizer: Any = field(repr=False)
    classifier: Any = field(repr=False)


def _model_text(frame: pd.DataFrame, definitions: Definitions) -> list[str]:
    """Complaint plus tokens for the measured temperature and code categories."""
    rule = definitions.temperature
    temps = _temperatures(frame["temperature_c"])
    codes = _code_strings(frame["diagnosis_codes"]).tolist()
    out = []
    for text, temp, joined in zip(
        frame["chief_complaint"].fillna("").astype(str), temps, codes, strict=True
    ):
        parts = [normalise_text(text)]
        if rule.plausible_min_c <= temp <= rule.plausible_max_c:
            parts.append("⟦t+⟧" if temp >= rule.fever_threshold_c else "⟦t-⟧")
        parts += [f"⟦{normalise_code(c)[:3]}⟧" for c in re.split(r"[;,\s]+", joined) if c]
        out.append(" ".join(parts))
    return out


def train_second_opinion(
    labelled: pd.DataFrame, definitions: Definitions | None = None
) -> SecondOpinion:
    """Train the text model (char n-grams + one-vs-rest logistic regression).

    Parameters
    ----------
    labelled : DataFrame
        Visits with ``chief_complaint, temperature_c, diagnosis_codes, expected``.
    definitions : Definitions, optional
        Names the syndromes; default version 1.

    Returns
    -------
    SecondOpinion
        The fitted model.

    Raises
    ------
    ValueError
        If a syndrome has no positive or no negative example.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    definitions = definitions or load_definitions()
    names = definitions.syndrome_names
    expected = _split_labels(labelled["expected"])
    y = np.array([[n in e for n in names] for e in expected], dtype=int)
    for k, name in enumerate(names):
        if y[:, k].min() == y[:, k].max():
            raise ValueError(f"labelled set needs positive and negative examples of {name!r}")
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3))
    features = vectorizer.fit_transform(_model_text(labelled, definitions))
    # balanced classes: rare syndromes (jaundice, hfmd) have a handful of examples
    classifier = OneVsRestClassifier(
        LogisticRegression(C=10.0, class_weight="balanced", max_iter=5000)
    )
    classifier.fit(features, y)
    return SecondOpinion(names, vectorizer, classifier)


def second_opinion(
    frame: pd.DataFrame,
    model: SecondOpinion,
    definitions: Definitions | None = None,
    *,
    threshold: float = 0.9,
) -> pd.DataFrame:
    """Flag visits where the text model confidently disagrees with the rules.

    The rules' result is never changed: the flags only send visits to a reviewer.

    Parameters
    ----------
    frame : DataFrame
        Visits as for :func:`classify_visits`.
    model : SecondOpinion
        From :func:`train_second_opinion`.
    definitions : Definitions, optional
        The rules to compare with; default version 1.
    threshold : float
        Model probability needed to disagree: rules say no and p ≥ threshold, or rules
        say yes and p ≤ 1 - threshold.

    Returns
    -------
    DataFrame
        Aligned with ``frame.index``: one boolean column per syndrome (True = disagreement)
        and ``review`` (any disagreement).
    """
    if not 0.5 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0.5, 1), got {threshold}")
    definitions = definitions or load_definitions()
    rules = classify_matrix(frame, definitions)
    proba = model.classifier.predict_proba(
        model.vectorizer.transform(_model_text(frame, definitions))
    )
    flags = pd.DataFrame(index=frame.index)
    for k, name in enumerate(model.syndromes):
        said = rules[name].to_numpy()
        flags[name] = np.where(said, proba[:, k] <= 1 - threshold, proba[:, k] >= threshold)
    flags["review"] = flags.any(axis=1)
    return flags
