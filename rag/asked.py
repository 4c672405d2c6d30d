"""What kind of answer a question asks for, read off its wording (いつ → a date, 何社 → 「9社」).

The composer prefers sentences that hold that kind of answer; abstention
refuses an answer whose passages hold no quantity of the kind asked for
(「何人」 asked, no 「N人」 or 「N名」 anywhere in what is cited).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.text import normalize, squash

DATE = re.compile(r"(\d{4}|令和|平成|[0-9０-９]+)\s*(年|月|日)|年度")
NUMBER = re.compile(r"[0-9０-９]")
_ASKS_DATE = re.compile(r"いつ|何年|何月|何日|日付|時期|when", re.IGNORECASE)
_ASKS_NUMBER = re.compile(
    r"何件|何人|何社|何回|何か国|何組織|いくつ|何割|何%|何％|どのくらい|数は|人数|how many", re.IGNORECASE
)
_ASKS_DEFINITION = re.compile(r"とは|何ですか|どういう|どのような|どんな|意味|定義|目的|what is", re.IGNORECASE)
_ASKS_COUNT = re.compile(
    r"何\s*(社|人|名|件|回|組織|か国|カ国|ヶ国|倍|割|機関|府省|団体|項目|種類|分野|本|%|円|か月|カ月|ヶ月|時間|歳)"
)
_ASKS_MONEY = re.compile(r"いくら|何円|金額は|(額|予算|費用?)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_RATE = re.compile(r"(率|割合)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_AMOUNT = re.compile(r"(量|数|規模)(は|が)?(どれくらい|どのくらい|どの程度)")
_ASKS_INTERVAL = re.compile(r"何\s*(年|か月|カ月|ヶ月|週間|日)\s*(ごと|毎|おき)|頻度")
_DEFINED_TERM = re.compile(r"([A-Za-z0-9ァ-ヶー一-龥・]{2,})」?とは")
_NUMERAL = r"[0-9一二三四五六七八九十百千万億兆]+(?:[.,][0-9]+)*\s*"
_PEOPLE, _COUNTRIES, _MONTHS = "人|名", "か国|カ国|ヶ国|ヵ国", "か月|カ月|ヶ月|ヵ月"
_SAME_COUNTER = {"人": _PEOPLE, "名": _PEOPLE, "か国": _COUNTRIES, "カ国": _COUNTRIES, "ヶ国": _COUNTRIES}
_SAME_COUNTER |= {"か月": _MONTHS, "カ月": _MONTHS, "ヶ月": _MONTHS}
_DIGITS = r"[0-9一二三四五六七八九十]+"
_MONEY = re.compile(_NUMERAL + r"(?:円|億|万|兆)")
_PERCENT = re.compile(_NUMERAL + r"(?:%|割|パーセント)|分の\s*" + _DIGITS)
_EVERY = r"毎(?:年|月|週|日)|随時|定期的|年\s*" + _DIGITS + r"\s*回"
_INTERVAL = re.compile(_EVERY + "|" + _NUMERAL + r"(?:年|か月|カ月|ヶ月|週間|日)\s*(?:ごと|毎|おき)")
# (how a question asks for a quantity, what an answer must then state); the first match wins
_QUANTITIES = [(_ASKS_MONEY, _MONEY), (_ASKS_RATE, _PERCENT), (_ASKS_INTERVAL, _INTERVAL), (_ASKS_AMOUNT, NUMBER)]


@dataclass(frozen=True)
class AskedFor:
    """The kind of answer a question asks for."""

    date: bool
    number: bool
    definition: bool
    counter: re.Pattern | None  # 「9社」 when the question says 「何社」
    quantity: re.Pattern | None  # what an answer must state: a count, a sum of money or any number
    subject: re.Pattern | None  # 「Xは」 when the question says 「Xとは」

    @classmethod
    def of(cls, question: str) -> AskedFor:
        plain = normalize(question)
        count = _ASKS_COUNT.search(plain)
        counter = None
        if count:
            unit = _SAME_COUNTER.get(count.group(1), re.escape(count.group(1)))
            counter = re.compile(_NUMERAL + f"(?:{unit})")
        quantity = counter or next((stated for asks, stated in _QUANTITIES if asks.search(plain)), None)
        term = _DEFINED_TERM.search(plain)
        return cls(
            date=bool(_ASKS_DATE.search(question)),
            number=bool(_ASKS_NUMBER.search(question)),
            definition=bool(_ASKS_DEFINITION.search(question)),
            counter=counter,
            quantity=quantity,
            subject=re.compile(re.escape(squash(term.group(1))) + "(?:は|とは|」とは)") if term else None,
        )

    def value_in(self, plain: str) -> bool:
        """The sentence holds the date or number asked for."""
        return bool((self.date and DATE.search(plain)) or (self.number and NUMBER.search(plain)))

    def quantity_missing(self, texts: list[str]) -> bool:
        """A quantity is asked for and none of `texts` states one of its kind."""
        return self.quantity is not None and not any(self.quantity.search(normalize(t)) for t in texts)
