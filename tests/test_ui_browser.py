"""The web chat in a real browser (headless Chromium at 1280×800): ask, read highlighted sources, open a document,
add a .docx in the "Add documents" panel and ask about it, and have a (scripted) language model write an answer.

Set RAG_SCREENSHOT=1 to refresh docs/screenshot.png, docs/screenshot-upload.png and docs/screenshot-written.png;
otherwise the screenshots go to a temporary folder.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = Path(os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent: install it with `apt-get install chromium fonts-wqy-microhei`",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from test_ui_api import HIGH_TECH_EN, HIGH_TECH_ZH, LIBRARY_ZH, launch_app, start_app  # noqa: E402

pytestmark = pytest.mark.browser

NOT_IN_DOCS = "石家庄2023年GDP是多少？"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANSWER_TIMEOUT_MS = 180_000  # hang guard on a busy 2-core machine, not a speed requirement
BOT = "#chat [data-testid='bot']"
ELDER_TITLE = "关于社区养老服务的答复"
ELDER_LINES = [ELDER_TITLE, "市民政局", "您提出的关于加强社区养老服务的建议收悉，现答复如下：",
               "2023年全市新建社区养老服务站42个，新增养老床位1200张。", "市民政局", "2024年4月10日"]
TOTAL_ZH = "2023年高新技术企业总数是多少？"
WRITTEN = "2023年，石家庄全年新增高新技术企业360家[1]，总数达到3431家[1]。"
INVENTED = "2023年高新技术企业总数达到9999家[1]。"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui-browser")
    demo, url = start_app(root, corpus_dir=root / "corpus")  # uploads go to its corpus folder
    yield url
    demo.close()


@pytest.fixture(scope="module")
def written_server(reference_index):
    """The web chat over the reference index with a scripted language model: the written answers stream in."""
    from llm_server import ScriptedLLMServer
    from rag.generation import LLMConfig

    with ScriptedLLMServer() as llm:
        llm.script(rules=[{"match": "总数是多少", "content": INVENTED}],  # matched against the question in the prompt
                   default={"content": WRITTEN, "chunk_chars": 2, "chunk_delay": 0.1})
        demo, url = launch_app(reference_index, llm=LLMConfig(base_url=llm.url, model="scripted", timeout=30))
        yield url
        demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh 1280×800 page; any JavaScript dialog (alert) is recorded so tests can assert there was none."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(server)
    page.wait_for_selector("#question textarea", timeout=60_000)
    yield page
    page.close()


def ask(page, question: str) -> str:
    """Type a question, press Enter, wait for the new reply; returns its text."""
    before = page.locator(BOT).count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"n => document.querySelectorAll(\"{BOT}\").length > n", arg=before,
                           timeout=ANSWER_TIMEOUT_MS)
    sync_api.expect(page.locator("#sources .src-list")).to_be_visible()
    return page.locator(BOT).last.inner_text()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def cited_in_view(page) -> bool:
    """Whether the cited paragraph lies inside the visible part of the document viewer."""
    return page.evaluate("""() => {
        const box = document.querySelector('#document .doc-view').getBoundingClientRect();
        const cited = document.querySelector('#document #rag-cited').getBoundingClientRect();
        return cited.top >= box.top - 1 && cited.top < box.bottom;
    }""")


def open_source(page, card) -> None:
    """Click a source card and check the document view shows its paragraph, highlighted and scrolled into view."""
    paragraph = card.locator(".src-text").inner_text()
    card_marks = card.locator("mark").all_inner_texts()
    card.click()
    cited = page.locator("#document #rag-cited")
    sync_api.expect(cited).to_be_visible()
    page.wait_for_function("p => document.querySelector('#document #rag-cited') && "
                           "document.querySelector('#document #rag-cited').innerText.replace(/\\s+/g, '') === p",
                           arg=squash(paragraph), timeout=30_000)
    assert [squash(t) for t in cited.locator("mark").all_inner_texts()] == [squash(t) for t in card_marks]
    page.wait_for_function("""() => {
        const box = document.querySelector('#document .doc-view').getBoundingClientRect();
        const c = document.querySelector('#document #rag-cited').getBoundingClientRect();
        return c.top >= box.top - 1 && c.top < box.bottom; }""", timeout=10_000)
    assert cited_in_view(page)


def save_screenshot(page, tmp_path: Path, name: str = "screenshot.png") -> Path:
    """A screenshot once the panels have faded in (gradio dims an HTML block while it updates)."""
    page.wait_for_function("() => [...document.querySelectorAll('.html-container')]"
                           ".every(e => getComputedStyle(e).opacity === '1')", timeout=10_000)
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("RAG_SCREENSHOT") == "1":
        shutil.copy(shot, REPO / "docs" / name)
    return shot


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    for line in ELDER_LINES:
        document.add_paragraph(line)
    document.save(str(path))
    return path


def test_ask_read_sources_open_document_and_not_found(page, tmp_path):
    reply = ask(page, HIGH_TECH_ZH)
    assert "360" in reply
    marks = page.locator("#sources mark").filter(has_text="360")
    sync_api.expect(marks.first).to_be_visible()
    cards = page.locator("#sources .src-card")
    assert cards.count() >= 1
    open_source(page, cards.nth(min(1, cards.count() - 1)))  # another source than the one shown first
    open_source(page, cards.first)
    sync_api.expect(page.locator("#document #rag-cited mark").filter(has_text="360").first).to_be_visible()

    reply = ask(page, HIGH_TECH_EN)
    assert "360" in reply
    sync_api.expect(page.locator("#sources mark").filter(has_text="360").first).to_be_visible()
    open_source(page, page.locator("#sources .src-card").first)
    save_screenshot(page, tmp_path)

    reply = ask(page, NOT_IN_DOCS)
    assert "Not found in the documents" in reply
    sync_api.expect(page.locator("#sources .not-found")).to_be_visible()
    assert page.locator("#sources .src-card").count() >= 1  # the closest paragraphs are still shown
    assert "360" in page.locator(BOT).first.inner_text()  # the conversation is kept on screen
    assert page.dialogs == []


def test_hostile_document_shows_as_text(page):
    page.get_by_label("Keyword").check()
    reply = ask(page, LIBRARY_ZH)
    assert "47" in reply and "Keyword" in reply
    card = page.locator("#sources .src-card").filter(has_text="社区图书馆").first
    card.click()
    text = page.locator("#document .doc-text")
    sync_api.expect(text).to_contain_text("<script>alert(1)</script>")
    sync_api.expect(text).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.locator("#document img, #sources img, #document script, #sources script").count() == 0
    assert page.dialogs == []


def test_empty_question_shows_a_message(page):
    page.click("#ask")
    sync_api.expect(page.get_by_text("Type a question first").first).to_be_visible(timeout=10_000)
    assert page.locator(BOT).count() == 0


def test_upload_a_docx_ask_about_it_and_delete_it(page, tmp_path):
    docx_path = make_docx(tmp_path / "社区养老服务答复.docx")
    doc_id = f"uploads/{docx_path.name}"
    documents = int(re.search(r"(\d+) documents", page.locator("#app-header").inner_text()).group(1))
    panel = page.get_by_text("Add documents 添加文档")
    panel.click()
    page.locator("#upload-files input[type=file]").set_input_files(str(docx_path))
    sync_api.expect(page.locator("#upload-files").get_by_text(docx_path.name)).to_be_visible(timeout=30_000)
    page.click("#add-files")
    sync_api.expect(page.locator("#upload-report .up-added")).to_contain_text(doc_id, timeout=ANSWER_TIMEOUT_MS)
    sync_api.expect(page.locator("#app-header")).to_contain_text(f"{documents + 1} documents")
    save_screenshot(page, tmp_path, "screenshot-upload.png")

    panel.click()  # closed again: the chat has its room back
    reply = ask(page, "2023年新建了多少个社区养老服务站？")
    assert "42个" in reply
    first = page.locator("#sources .src-card").first
    sync_api.expect(first.locator(".src-head")).to_contain_text(ELDER_TITLE)
    sync_api.expect(first.locator("mark").filter(has_text="42").first).to_be_visible()
    sync_api.expect(page.locator("#document .doc-id")).to_have_text(doc_id)

    panel.click()
    page.locator("#delete-choice input").click()
    page.locator("[role=option]").filter(has_text=doc_id).click()
    page.click("#delete-doc")
    sync_api.expect(page.locator("#upload-report .up-removed")).to_contain_text(doc_id, timeout=ANSWER_TIMEOUT_MS)
    sync_api.expect(page.locator("#app-header")).to_contain_text(f"{documents} documents")
    assert page.dialogs == []


def test_a_written_answer_streams_in_then_shows_its_check(browser, written_server, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(written_server)
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.locator("#generate input[type=checkbox]").check()

    page.fill("#question textarea", HIGH_TECH_ZH)
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"() => [...document.querySelectorAll(\"{BOT}\")].some(e => e.innerText.includes('撰写中'))",
                           timeout=ANSWER_TIMEOUT_MS)  # the text shows while it is written, marked as not checked
    reply = page.locator(BOT).last
    sync_api.expect(reply).to_contain_text("✓ 已核对 Checked", timeout=ANSWER_TIMEOUT_MS)
    assert "撰写中" not in reply.inner_text() and "3431家[1]" in squash(reply.inner_text())
    sync_api.expect(page.locator("#sources mark").filter(has_text="360").first).to_be_visible()
    sync_api.expect(page.locator("#document #rag-cited")).to_be_visible()
    save_screenshot(page, tmp_path, "screenshot-written.png")

    page.fill("#question textarea", TOTAL_ZH)
    page.press("#question textarea", "Enter")
    reply = page.locator(BOT).nth(1)
    sync_api.expect(reply).to_contain_text("⚠ 未通过核对 Not verified", timeout=ANSWER_TIMEOUT_MS)
    marked = reply.locator("mark.unsupported")
    sync_api.expect(marked).to_have_count(1)
    sync_api.expect(marked).to_contain_text("9999家")
    assert marked.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 227, 227)"  # the chat's CSS
    sync_api.expect(reply).to_contain_text("摘录答案 Extracted answer")
    assert page.locator("#chat script, #chat img").count() == 0 and page.dialogs == []
    page.close()
