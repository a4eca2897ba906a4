"""Question answering data: SQuAD v1.1 / v2.0 JSON, or Python records.

Every answer's `answer_start` is checked against its context when loaded; a bad
one is an error naming the question id (or, with skip_bad_answers=True, the
question is dropped and counted).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from textmaker.data.readers import read_text, require_file
from textmaker.errors import TextmakerError


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset in the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class QAExample:
    id: str
    question: str
    context: str
    answers: list[Answer]  # empty for an unanswerable (v2.0) question
    title: str = ""
    is_impossible: bool = False
    plausible_answers: list[Answer] = field(default_factory=list)


@dataclass
class QADataset:
    examples: list[QAExample]
    version_2_with_negative: bool = False
    source: str = "<memory>"
    skipped: int = 0  # questions dropped for answers not found in their context

    def __post_init__(self):
        if not self.examples:
            raise TextmakerError(f"{self.source}: no questions; the data set is empty")

    def __len__(self) -> int:
        return len(self.examples)

    @classmethod
    def from_squad(cls, path: str | Path, version_2_with_negative: bool | None = None,
                   skip_bad_answers: bool = False) -> "QADataset":
        """Read a SQuAD JSON file. v2.0 is detected from `is_impossible` unless set explicitly."""
        path = require_file(path)
        text = read_text(path)
        if not text.strip():
            raise TextmakerError(f"{path}: the file is empty; expected SQuAD JSON ({{\"data\": [...]}})")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise TextmakerError(f"{path} line {e.lineno} column {e.colno}: not valid JSON ({e.msg})") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
            raise TextmakerError(f"{path}: not SQuAD JSON; expected an object with a \"data\" list of articles")
        records = []
        for a, article in enumerate(raw["data"]):
            _expect(article, dict, f"data[{a}]", path, "an article object with \"paragraphs\"")
            title = article.get("title", f"article {a + 1}")
            paragraphs = _expect(article.get("paragraphs", []), list, f"data[{a}].paragraphs", path,
                                 "a list of paragraphs")
            for p, para in enumerate(paragraphs):
                _expect(para, dict, f"data[{a}].paragraphs[{p}]", path, "a paragraph object with \"context\" and \"qas\"")
                context = para.get("context")
                qas = _expect(para.get("qas", []), list, f"data[{a}].paragraphs[{p}].qas", path, "a list of questions")
                for i, q in enumerate(qas):
                    where = f"data[{a}].paragraphs[{p}].qas[{i}]"
                    _expect(q, dict, where, path, "a question object")
                    _expect(q.get("answers", []), list, f"{where}.answers", path, "a list of answers")
                    qid = q.get("id", f"{title}/{p}/{len(records)}")
                    if not isinstance(context, str) or not context.strip():
                        raise TextmakerError(f"{path}: question {qid} has no context (article {title!r}, "
                                             f"paragraph {p + 1}); every paragraph needs a \"context\" string")
                    records.append({"id": qid, "question": q.get("question"), "context": context, "title": title,
                                    "answers": q.get("answers", []), "is_impossible": q.get("is_impossible", False),
                                    "plausible_answers": q.get("plausible_answers", [])})
        if version_2_with_negative is None:
            version_2_with_negative = any(r["is_impossible"] for r in records) or raw.get("version") == "v2.0"
        return cls.from_records(records, version_2_with_negative, str(path), skip_bad_answers)

    @classmethod
    def from_records(cls, records: Iterable[dict], version_2_with_negative: bool = False, source: str = "<records>",
                     skip_bad_answers: bool = False) -> "QADataset":
        """Records of id, question, context, answers ([{"text", "answer_start"}]), optional title, is_impossible."""
        examples, skipped, seen = [], 0, set()
        for n, r in enumerate(records):
            qid = str(r.get("id", n))
            if qid in seen:
                raise TextmakerError(f"{source}: question id {qid} appears twice; ids must be unique")
            seen.add(qid)
            question, context = r.get("question"), r.get("context")
            if not isinstance(question, str) or not question.strip():
                raise TextmakerError(f"{source}: question {qid} has no question text")
            if not isinstance(context, str) or not context.strip():
                raise TextmakerError(f"{source}: question {qid} has no context")
            try:
                answers = [_answer(a, context, qid) for a in r.get("answers") or []]
                plausible = [_answer(a, context, qid) for a in r.get("plausible_answers") or []]
            except TextmakerError:
                if skip_bad_answers:
                    skipped += 1
                    continue
                raise
            impossible = bool(r.get("is_impossible", False))
            if not answers and not impossible:
                if not version_2_with_negative:
                    raise TextmakerError(f"{source}: question {qid} has no answer; give one, or mark the data "
                                         f"SQuAD v2.0 (version_2_with_negative) if unanswerable questions are meant")
                impossible = True
            examples.append(QAExample(qid, question, context, answers, str(r.get("title", "")), impossible, plausible))
        return cls(examples, version_2_with_negative, source, skipped)

    def split(self, fraction: float, seed: int = 0) -> tuple["QADataset", "QADataset"]:
        """Split by article (title; by context when there are no titles), never by question."""
        if not 0 < fraction < 1:
            raise TextmakerError(f"split fraction must be between 0 and 1, got {fraction}")
        groups: dict[str, list[QAExample]] = {}
        for e in self.examples:
            groups.setdefault(e.title or e.context, []).append(e)
        keys = sorted(groups)
        if len(keys) < 2:
            raise TextmakerError(f"{self.source}: one article only; a split by article needs at least two")
        random.Random(seed).shuffle(keys)
        # Fill the first part article by article until it holds `fraction` of the questions.
        target, first, count = fraction * len(self), [], 0
        for k in keys:
            if count >= target and first:
                break
            first.append(k)
            count += len(groups[k])
        if len(first) == len(keys):
            first.pop()
        chosen = set(first)
        a = [e for e in self.examples if (e.title or e.context) in chosen]
        b = [e for e in self.examples if (e.title or e.context) not in chosen]
        return (QADataset(a, self.version_2_with_negative, f"{self.source}[{len(first)} articles]"),
                QADataset(b, self.version_2_with_negative, f"{self.source}[{len(keys) - len(first)} articles]"))

    def sample(self, n: int, seed: int = 0) -> "QADataset":
        if n >= len(self):
            return self
        idx = sorted(random.Random(seed).sample(range(len(self)), n))
        return QADataset([self.examples[i] for i in idx], self.version_2_with_negative, f"{self.source}[{n} sampled]")

    def to_records(self) -> list[dict]:
        """The records from_records reads back (what a model directory keeps of its validation data)."""
        return [{"id": e.id, "title": e.title, "question": e.question, "context": e.context,
                 "answers": [{"text": a.text, "answer_start": a.start} for a in e.answers],
                 "is_impossible": e.is_impossible} for e in self.examples]

    @property
    def articles(self) -> list[str]:
        return sorted({e.title or e.context[:40] for e in self.examples})

    def summary(self) -> str:
        answerable = sum(not e.is_impossible for e in self.examples)
        return (f"{self.source}: {len(self)} questions over {len(self.articles)} articles, {answerable} answerable"
                + (f", {self.skipped} skipped for bad answers" if self.skipped else ""))


def _expect(value, kind: type, where: str, path, what: str):
    """A SQuAD node of the expected JSON type, or an error naming its JSON path."""
    if not isinstance(value, kind):
        found = {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)
        raise TextmakerError(f"{path}: {where} is {found}, expected {what} (SQuAD JSON: data[].paragraphs[].qas[])")
    return value


def _answer(a: dict, context: str, qid: str) -> Answer:
    if isinstance(a, str):  # records may give just the text: find it
        start = context.find(a)
        if start < 0:
            raise TextmakerError(f"question {qid}: answer {a!r} is not in its context")
        return Answer(a, start)
    text, start = a.get("text"), a.get("answer_start")
    if not isinstance(text, str) or not isinstance(start, int):
        raise TextmakerError(f"question {qid}: an answer needs \"text\" and an integer \"answer_start\"")
    found = context[start:start + len(text)]
    if found != text:
        raise TextmakerError(f"question {qid}: answer {text!r} is not at answer_start {start} of its context "
                             f"(found {found!r}); fix answer_start, or skip such questions (skip_bad_answers)")
    return Answer(text, start)
