"""Uploading documents in the app (`SEISAKU_QA_ALLOW_UPLOAD=1`), driven by headless Chromium on a real server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.documents import write_image_only_pdf, write_policy_pdf
from tests.test_app_browser import CHROMIUM, CHROMIUM_FLAGS, serve_app

pytestmark = pytest.mark.slow
SMALL = "002_899c488193c17f37.txt"


@pytest.fixture(scope="module")
def upload_app(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} not installed (`apt-get install chromium`); CI installs it")
    from ingest.pipeline import ingest

    work = tmp_path_factory.mktemp("upload")
    corpus, index = work / "corpus", work / "index"
    corpus.mkdir()
    shutil.copy(CORPUS / SMALL, corpus / SMALL)
    ingest([corpus], index, progress=False)
    env = {
        "SEISAKU_QA_CORPUS": str(corpus),
        "SEISAKU_QA_INDEX": str(index),
        "SEISAKU_QA_FEEDBACK": str(work / "feedback.jsonl"),
        "SEISAKU_QA_ALLOW_UPLOAD": "1",
    }
    for url in serve_app(work, env):
        yield url, work


@pytest.fixture
def page(upload_app):
    from playwright.sync_api import sync_playwright

    url, _ = upload_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.get_by_test_id("stChatInputTextArea").wait_for()
        yield page
        browser.close()


def _upload(page, *files: Path) -> None:
    # after an upload the app renders a fresh, empty uploader; wait until the previous one has left the page
    page.wait_for_function("document.querySelectorAll('[data-testid=stSidebar] input[type=file]').length === 1")
    page.get_by_test_id("stSidebar").locator("input[type=file]").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="追加して索引を更新").click()


def test_uploaded_pdf_is_indexed_and_answers_with_its_page(page, upload_app, tmp_path):
    _, work = upload_app
    pdf = write_policy_pdf(tmp_path / "生成AI 中間報告.pdf")
    scan = write_image_only_pdf(tmp_path / "scan.pdf")
    _upload(page, pdf, scan)
    page.get_by_text("追加しました: 生成AI 中間報告.pdf", exact=False).first.wait_for()
    shown = page.locator("body").inner_text()
    assert "追加しませんでした: scan.pdf（テキスト層がありません（スキャン画像のPDF）" in shown
    assert (work / "corpus" / "生成AI 中間報告.pdf").exists() and not (work / "corpus" / "scan.pdf").exists()

    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("計算資源の整備に充てる総額はいくらですか？")
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("800億円", exact=False).first.wait_for()
    card = answer.locator("[class*='st-key-source-']").first
    assert "生成AI 中間報告.pdf" in card.inner_text() and "p. 3" in card.inner_text()
    card.get_by_role("button", name="p. 3 を表示").click()
    card.get_by_role("img").first.wait_for()
    page.screenshot(path=tmp_path / "uploaded.png", full_page=True)


def test_the_same_content_under_another_name_is_reported_as_a_duplicate(page, tmp_path):
    memo = tmp_path / "memo.txt"
    memo.write_text("# 会議メモ\n\n次回の会議は3月に開催し、議題は予算の配分とする。\n", encoding="utf-8")
    copy = tmp_path / "memo-copy.txt"
    copy.write_bytes(memo.read_bytes())
    _upload(page, memo)
    page.get_by_text("追加しました: memo.txt", exact=False).first.wait_for()
    _upload(page, copy)
    refused = "追加しませんでした: memo-copy.txt（既にある資料 memo.txt と同じ内容です"
    page.get_by_text(refused, exact=False).first.wait_for()
