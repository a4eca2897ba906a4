"""The exported page in a real browser: headless Chromium, offline, a sentence typed in, the label read."""

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from textmaker.cli import main
from textmaker.errors import TextmakerError
from textmaker.export import ExportedModel
from textmaker.export.web import write_site

NODE_MODULES = Path(__file__).resolve().parents[1] / "clients" / "js" / "node_modules"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and (NODE_MODULES / "@huggingface" / "transformers").is_dir()),
    reason="needs Debian's chromium and chromium-driver, and transformers.js (make setup; .ci/run installs them)")


@pytest.fixture
def serve():
    """A static host on the loopback address, as a user's `python -m http.server` would be."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
        handler.log_message = lambda *a: None
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/index.html"

    yield start
    for server in servers:
        server.shutdown()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@needs_browser
@pytest.mark.encoder
def test_the_page_classifies_typed_text_offline_in_chromium(minilm_clf, tmp_path, serve):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    write_site(minilm_clf, tmp_path / "site", "dynamic", NODE_MODULES, verbose=False)
    files = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("*") if p.is_file()}
    assert {"index.html", "vendor/transformers.min.js", "model/onnx/model_quantized.onnx", "model/config.json",
            "model/tokenizer.json"} <= files
    assert "cdn" not in (tmp_path / "site" / "index.html").read_text().lower()
    sentences = ["a gripping, funny and beautifully acted film", "a tedious mess with no wit and no heart"]
    expected = [p[0].label for p in ExportedModel.load(tmp_path / "site" / "model").predict(sentences)]
    url = serve(tmp_path / "site")
    driver = browser()
    try:
        driver.get(url)
        status = driver.find_element(By.ID, "status")
        try:
            WebDriverWait(driver, 180).until(lambda d: status.get_attribute("data-ready") or
                                             status.get_attribute("data-error"))
        except Exception as e:
            pytest.fail(f"the page did not load: {status.text!r}; {e!r}; console: {driver.get_log('browser')}")
        assert status.get_attribute("data-ready"), status.text
        for sentence, label in zip(sentences, expected):
            box = driver.find_element(By.ID, "text")
            box.clear()
            box.send_keys(sentence)
            driver.find_element(By.ID, "run").click()
            WebDriverWait(driver, 60).until(lambda d: status.text == "Done.")
            assert driver.find_element(By.ID, "result").get_attribute("data-label") == label
            status = driver.find_element(By.ID, "status")
            driver.execute_script("arguments[0].textContent = ''", status)
    finally:
        driver.quit()


@needs_browser
def test_the_question_answering_page_answers_a_pasted_paragraph(tmp_path, serve):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from textmaker import QADataset, QuestionAnswerer

    ctx = "The Normans were descended from Norse raiders. They settled in Normandy in the 10th century."
    data = QADataset.from_records([{"id": str(i), "question": q, "context": ctx, "answers": [a]} for i, (q, a) in
                                   enumerate([("Where did they settle?", "Normandy"),
                                              ("Who were they descended from?", "Norse raiders")] * 12)])
    qa = QuestionAnswerer.create(data, model="bert_tiny_en_uncased_random", epochs=30, learning_rate=1e-3,
                                 seq_len=64, query_len=16, doc_stride=24, progress=False)
    write_site(qa, tmp_path / "site", "none", NODE_MODULES, verbose=False)
    expected = qa.answer("Where did they settle?", ctx).text
    driver = browser()
    try:
        driver.get(serve(tmp_path / "site"))
        status = driver.find_element(By.ID, "status")
        WebDriverWait(driver, 180).until(lambda d: status.get_attribute("data-ready") or
                                         status.get_attribute("data-error"))
        assert status.get_attribute("data-ready"), status.text
        driver.find_element(By.ID, "question").send_keys("Where did they settle?")
        driver.find_element(By.ID, "context").send_keys(ctx)
        driver.find_element(By.ID, "run").click()
        WebDriverWait(driver, 60).until(lambda d: status.text == "Done.")
        # transformers.js' pipeline gives the span decoded from its tokens (lower-cased by an uncased
        # tokenizer); textmaker's answer keeps the context's own characters.
        assert driver.find_element(By.ID, "result").get_attribute("data-answer").strip() == expected.lower()
    finally:
        driver.quit()


def test_without_transformers_js_the_error_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TextmakerError, match="npm install @huggingface/transformers"):
        write_site(None, tmp_path / "site")
    assert main(["export", str(tmp_path / "nope"), "--format", "web", "--output", str(tmp_path / "site")]) == 2
    assert not (tmp_path / "site").exists()
