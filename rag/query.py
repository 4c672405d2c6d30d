"""The standalone queries a question is searched as.

Follow-ups: an elliptical question (「それはいつ？」) carries the previous
question's topic. Two asks in one (「いつ成立して、本部長は誰？」, 「AとBの違いは」,
「AとBはそれぞれ…」) are split into one query per ask, each answered and cited
on its own, so that one part found does not hide the other one missing.
"""

from __future__ import annotations

import re
from typing import TypedDict

from rag.features import AskedFor
from rag.text import Tokenizer, default_tokenizer, normalize


class Turn(TypedDict, total=False):
    question: str
    answer: str


# Words that point back at the previous turn (それ, その法律, 同指針 ...); not それぞれ ("each") or the この of どこの
_ANAPHORA = re.compile(
    r"それ(?!ぞれ)|その|そこ|これ|(?<!ど)この|あれ|あの|同法|同指針|同計画|上記|前述|彼ら|it\b|they\b|that\b",
    re.IGNORECASE,
)
MIN_OWN_TERMS = 3  # a question with fewer content words than this leans on context
# Besides 「Xとは」, a short question names its own topic with a quoted term (「反転攻勢」って？)
# or an acronym other than AI itself (GPAI, CAIO).
_NAMED_TOPIC = re.compile(r"「[^」]{2,}」|(?<![A-Za-z])(?!AI(?![A-Za-z]))[A-Z]{2,}(?![A-Za-z])")


def names_topic(question: str) -> bool:
    """「AISIとは？」, 「システミック・リスクとは」: a short question that still stands alone."""
    return AskedFor.of(question).subject is not None or bool(_NAMED_TOPIC.search(normalize(question)))


def needs_context(question: str, tokenizer: Tokenizer) -> bool:
    if _ANAPHORA.search(question):
        return True
    return len(set(tokenizer.terms(question))) < MIN_OWN_TERMS and not names_topic(question)


def resolve_followup(question: str, history: list[Turn], tokenizer: Tokenizer) -> str:
    """The question made standalone: prefix the previous question's content words when it leans on them.

    「それはいつ施行された？」 after 「AI法とは何ですか」 becomes 「AI 法 それはいつ施行された？」,
    enough for both retrievers to find the topic again.
    """
    previous = next((t.get("question", "") for t in reversed(history) if t.get("question")), "")
    if not previous or not needs_context(question, tokenizer):
        return question
    own = set(tokenizer.terms(question))
    carried = [t for t in dict.fromkeys(tokenizer.terms(previous)) if t not in own]
    return " ".join(carried) + " " + question if carried else question


_WH_WORD = r"(?:誰|だれ|どなた|何|なに|いつ|どこ|どの|どう|どんな|どれ|どちら|いくつ|いくら|なぜ)"
_ASK = rf"[^、,。？?]*{_WH_WORD}[^、,。？?]*"
# 「…いつ成立して、本部長は誰？」: a clause with a question word, a comma, another clause with one
_TWO_CLAUSES = re.compile(rf"^(?P<a>{_ASK}?)[、,]\s*(?P<b>[^、,]*{_WH_WORD}.*)$")
# 「AとBの違いは」「AとB、何が違う？」「(…、)AとBってそれぞれ…」: the same ask about two things
_PAIR = re.compile(
    r"^(?P<pre>.*[、,]\s*)?(?P<x>[^、,。？?]{2,30}?)と[、,]?\s*(?P<y>[^、,。？?]{2,30}?)"
    r"(?:(?:の|[、,]\s*(?:何が|どこが|どう))(?P<diff>違|差|ちが)"
    r"|(?:って|では|で|は|には|に|が)?[、,]?\s*(?P<each>それぞれ))(?P<rest>.*)$"
)


# 「…いつ？あと、…は誰？」: a question mark followed by a further ask; its opening connective is dropped
_AFTER_ASK = re.compile(r"(?<=[？?])\s*")
_CONNECTIVE = re.compile(r"^(?:あと|それと|それから|また|で|じゃあ|ついでに|さらに)[、,]?\s*")
MAX_ASKS = 3


def split_asks(question: str) -> list[str]:
    """One query per ask; a question with one ask comes back as itself.

    Asks are what each question mark closes, else two clauses that each hold a
    question word, else the same ask about two things. An ask that leaves its
    topic unsaid (「…どこに置かれてるの？いつできた？」) carries the first one's.
    """
    plain = normalize(question)
    asks: list[str] = []
    for piece in (p.strip() for p in _AFTER_ASK.split(plain) if p.strip()):
        ask = _CONNECTIVE.sub("", piece)
        if asks and not (re.search(_WH_WORD, ask) or _topic(ask)):
            asks[-1] += piece  # 「簡単に言うと？」 leans on the ask before it rather than asking anew
        else:
            asks.append(ask)
    if len(asks) > 1:
        topic = _topic(asks[0])
        return [asks[0], *(a if not topic or _topic(a) else topic + a for a in asks[1:])][:MAX_ASKS]
    pair = _PAIR.match(_hide_inner_to(plain))
    if pair:
        x, y, pre, rest = (_unhide(pair.group(g) or "") for g in ("x", "y", "pre", "rest"))
        if pair.group("diff"):  # a difference is asked: what each one is
            return [f"{x}とは？", f"{y}とは？"]
        rest = rest.lstrip("はをがにのも、, ")
        joint = "" if rest[:1] in "はとを" else "は"
        return [f"{pre}{x}{joint}{rest}", f"{pre}{y}{joint}{rest}"]
    clauses = _TWO_CLAUSES.match(plain)
    if clauses:
        a, b = clauses.group("a").strip(), clauses.group("b").strip()
        if len(a) >= 4 and len(b) >= 4:
            topic = _topic(a)
            return [a + "？", b if not topic or _topic(b) else topic + b]
    return [question]


_INNER_TO = "\ue000"  # stands in for a と inside a word (ところ, こと) while the pair pattern looks for 「AとB」


def _hide_inner_to(plain: str) -> str:
    """The question with every と that is not the particle hidden, so 「AとB」 splits only at a particle."""
    if "と" not in plain:
        return plain
    particles = default_tokenizer().particle_offsets(plain, "と")
    return "".join(_INNER_TO if ch == "と" and i not in particles else ch for i, ch in enumerate(plain))


def _unhide(text: str) -> str:
    return text.replace(_INNER_TO, "と")


def _topic(clause: str) -> str:
    """「AI法はいつ成立して」 → 「AI法は」: the topic a second clause leaves unsaid."""
    m = re.match(r"^(.{2,30}?)(?:は|って|が)", clause)
    return m.group(0) if m and not re.search(_WH_WORD, m.group(1)) else ""
