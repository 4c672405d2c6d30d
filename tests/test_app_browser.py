"""The app as users get it: `streamlit run app.py` on a localhost port, driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE_DOC = (
    "# 秘密保持ポリシー検証資料\n\n秘密保持ポリシーの検証では、次の文字列をそのまま表示する必要がある。"
    "<script>window.pwned = 1</script> と [外部リンク](javascript:window.clicked=1) と :red[色指定] を含む。\n"
)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(work: Path, env: dict[str, str]) -> Iterator[str]:
    """`streamlit run app.py` on a free port with `env` added; yields its URL once healthy, stops it after."""
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    log = open(work / "streamlit.log", "w")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, **env), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((work / "streamlit.log").read_text()) from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def served_app(corpus_index, tmp_path_factory) -> Iterator[str]:
    """The app on a free port, over the corpus plus one document full of markup and script."""
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} not installed (`apt-get install chromium`); CI installs it")
    from ingest.pipeline import ingest

    work = tmp_path_factory.mktemp("served")
    corpus, index = work / "corpus", work / "index"
    shutil.copytree(CORPUS, corpus)
    (corpus / "999_hostile.txt").write_text(HOSTILE_DOC, encoding="utf-8")
    shutil.copytree(corpus_index, index)
    ingest([corpus], index, progress=False)  # only the new document is embedded
    env = {
        "SEISAKU_QA_CORPUS": str(corpus),
        "SEISAKU_QA_INDEX": str(index),
        "SEISAKU_QA_FEEDBACK": str(work / "feedback.jsonl"),
    }
    yield from serve_app(work, env)


@pytest.fixture
def page(served_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.set_default_timeout(90_000)  # the first page load builds the shared PolicyQA
        page.goto(served_app)
        page.get_by_test_id("stChatInputTextArea").wait_for()
        yield page
        browser.close()


def ask(page, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")


def test_question_gets_an_answer_and_a_source_card(page, tmp_path):
    from playwright.sync_api import expect

    ask(page, "AISIはいつ設立されましたか？")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("2024年2月", exact=False).first.wait_for()
    # Streamlit may redraw the message once more after the text shows (it read '' once on CI): retry the read
    expect(answer).to_contain_text("[1]")
    card = answer.locator("[class*='st-key-source-']").first
    card_text = card.inner_text()
    assert "[1]" in card_text and "行" in card_text and "スコア" in card_text
    assert "001_0ea924fc1fedfcee.txt" in card_text
    assert "ms" in answer.inner_text()
    page.screenshot(path=tmp_path / "answer.png", full_page=True)
    assert (tmp_path / "answer.png").stat().st_size > 10_000


def test_document_markup_and_script_show_literally(page, tmp_path):
    ask(page, "秘密保持ポリシーの検証ではどんな文字列を表示する必要がある？")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("999_hostile.txt", exact=False).first.wait_for()
    text = answer.inner_text()
    assert "<script>window.pwned = 1</script>" in text
    assert "[外部リンク](javascript:window.clicked=1)" in text and ":red[色指定]" in text
    assert page.evaluate("window.pwned") is None
    assert answer.locator("script").count() == 0 and answer.locator("a[href^='javascript']").count() == 0
    page.screenshot(path=tmp_path / "hostile.png", full_page=True)
