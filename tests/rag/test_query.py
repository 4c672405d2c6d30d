"""Two asks in one question become one query per ask."""

from __future__ import annotations

import pytest

from rag.query import split_asks


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("AI法はいつ成立して、AI戦略本部の本部長は誰？", ["AI法はいつ成立して？", "AI戦略本部の本部長は誰?"]),
        ("AISIとJ-CAIOの違いは？", ["AISIとは？", "J-CAIOとは？"]),
        ("EUとアメリカはそれぞれどんな規制をしてる？", ["EUはどんな規制をしてる?", "アメリカはどんな規制をしてる?"]),
        (
            "AI戦略本部って何をするところで、誰がトップ？",
            ["AI戦略本部って何をするところで？", "AI戦略本部って誰がトップ?"],
        ),
        # the same ask about two things, joined by って/で/、 or after a lead-in clause
        (
            "AISIと人工知能政策推進室って、それぞれいつできたの？",
            ["AISIはいつできたの?", "人工知能政策推進室はいつできたの?"],
        ),
        (
            "調査会の委員で、Sakana AIとさくらインターネットからはそれぞれ誰が入ってる？",
            ["調査会の委員で、Sakana AIは誰が入ってる?", "調査会の委員で、さくらインターネットからは誰が入ってる?"],
        ),
        (
            "評価観点ガイドとレッドチーミング手法ガイド、何がちがうの？",
            ["評価観点ガイドとは？", "レッドチーミング手法ガイドとは？"],
        ),
        # only a particle と joins the two things, not the と inside ところ or こと
        (
            "罰則をつけるやり方って、いいところと悪いところそれぞれ何？",
            ["罰則をつけるやり方って、いいところは何?", "罰則をつけるやり方って、悪いところは何?"],
        ),
        (
            "アンケートで、企業に求めたいことと政府に求めたいことって、それぞれ何だった？",
            ["アンケートで、企業に求めたいことは何だった?", "アンケートで、政府に求めたいことは何だった?"],
        ),
        # each question mark closes an ask; an opening connective is dropped, an unsaid topic carried over
        (
            "AISIっていつできた？あと、基本計画ではAISIをどうするって？",
            ["AISIっていつできた?", "基本計画ではAISIをどうするって?"],
        ),
        (
            "指針の事務局ってどこに置かれてるの？いつできた？",
            ["指針の事務局ってどこに置かれてるの?", "指針の事務局っていつできた?"],
        ),
    ],
)
def test_two_asks_are_split(question, parts):
    assert split_asks(question) == parts


@pytest.mark.parametrize(
    "question",
    [
        "AI法はいつ成立した？",
        "データセンターとか電力って何が問題なの？",
        "AIとは",
        "AISIとは？簡単に言うと？",
        "AIと人間の関係はどうなる？",
        "指針で国民がやるべきことって2つあるみたいだけど、それぞれ何？",  # no と joins two things here
    ],
)
def test_one_ask_stays_whole(question):
    assert split_asks(question) == [question]
