"""Reading the kind of answer a question asks for, and spotting answers that lack it."""

from __future__ import annotations

import pytest

from rag.asked import AskedFor


@pytest.mark.parametrize(
    ("question", "stated", "not_stated"),
    [
        ("AISIの職員は何人いる？", "職員は120名である。", "10府省、5政府系機関が共同して設立した。"),
        ("回答した日本企業は何社？", "日本企業9社が回答した。", "多くの企業が回答した。"),
        ("調査に参加したのは何か国？", "28カ国が参加した。", "各国が参加した。"),
        ("AI関連予算の総額はいくら？", "総額は1,200億円である。", "予算を確保する。"),
        ("年間の電力消費量はどれくらい？", "消費量は約15TWhである。", "電力インフラを整備する。"),
        ("規制が必要と考える人は何％？", "77%が必要と答えた。", "多くの人が必要と答えた。"),
        ("自治体のAI導入率はどのくらい？", "導入率は45%である。", "2025 年 12 月に改訂された。"),
        ("AI関連の予算はどのくらい？", "予算は1,200億円である。", "2026年度に予算を確保する。"),
        ("施行状況は何年ごとに見直される？", "3年ごとに見直す。", "2025年に施行された。"),
        ("基本計画はどのくらいの頻度で変更される？", "当面は毎年変更を行う。", "2025年12月に決定した。"),
    ],
)
def test_a_quantity_asked_for_must_be_stated(question, stated, not_stated):
    asked = AskedFor.of(question)
    assert not asked.quantity_missing([stated])
    assert asked.quantity_missing([not_stated])


@pytest.mark.parametrize(
    "question", ["AI法はいつ成立した？", "AISIとは？", "日本のAIへの投資額は経済の大きさと比べてどう？"]
)
def test_questions_without_a_quantity_never_lack_one(question):
    assert not AskedFor.of(question).quantity_missing(["数字のない文。"])


def test_what_the_question_asks_for():
    assert AskedFor.of("AI法はいつ成立した？").date
    assert AskedFor.of("AIセーフティ・インスティテュートとは何ですか").definition
    assert AskedFor.of("回答した企業は何社？").counter.search("9社")
