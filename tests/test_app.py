"""The Gradio app in a real browser: Playwright driving Debian's chromium (never `playwright install`)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from astrorag.render import link_citations

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ROOT = Path(__file__).parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(small_settings, tmp_path):
    port = _free_port()
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small",
               GRADIO_ANALYTICS_ENABLED="False", OLLAMA_HOST="http://127.0.0.1:9")
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "app.log").read_text())
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_app_binds_loopback_only(app_url):
    assert app_url.startswith("http://127.0.0.1:")
    port = int(app_url.rsplit(":", 1)[1].strip("/"))
    addresses = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None) if a[0] == socket.AF_INET}
    for addr in addresses - {"127.0.0.1"}:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((addr, port)) != 0, f"the app answers on {addr}"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)")
def test_ask_and_sed_tabs_in_a_browser(app_url, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(app_url)
        page.locator("#question textarea").fill("What powers little red dots?")
        page.locator("#ask-button").click()
        page.wait_for_function("() => document.querySelector('#sources').innerText.includes('cited')", timeout=120_000)
        chat = page.locator("#chat").inner_text()
        assert "Extractive answer" in chat and "little red dot" in chat.lower()
        sources = page.locator("#sources").inner_text()
        assert "Little Red Dot" in sources and "(cited)" in sources
        assert page.locator("#sources a[href^='https://arxiv.org/abs/']").count() >= 1
        assert "extractive" in page.locator("#backend").inner_text()
        assert page.locator("#chat a[href^='https://arxiv.org/abs/']").count() >= 1   # in-text citations link
        # The cited papers as BibTeX and the answer's reproducibility bundle are offered for download.
        page.wait_for_function("() => document.querySelector('#bundle-file').innerText.includes('.zip')",
                               timeout=60_000)
        assert "references" in page.locator("#bibtex-file").inner_text()
        with page.expect_download() as download:
            page.locator("#bibtex-file a").first.click()
        bib = Path(download.value.path()).read_text()
        assert bib.startswith("@") and "archivePrefix = {arXiv}" in bib
        page.screenshot(path=str(shots / "ask.png"), full_page=True)

        page.get_by_role("tab", name="SED advisor").click()
        page.locator("#advise-button").click()
        page.wait_for_selector("#sed-plot img", timeout=60_000)
        page.wait_for_function("() => document.querySelector('#actions').innerText.includes('Ranked actions')",
                               timeout=60_000)
        actions = page.locator("#actions").inner_text()
        assert "lrd-" in actions and "arXiv:" in actions
        assert "Little red dot: yes" in page.locator("#diagnostics").inner_text()
        page.screenshot(path=str(shots / "sed.png"), full_page=True)
        browser.close()
    for shot in ("ask.png", "sed.png"):
        assert (shots / shot).read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("ASTRORAG_SCREENSHOTS_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots.iterdir():
            shutil.copy(shot, Path(keep) / shot.name)


def test_citation_links():
    from astrorag.index.types import Evidence

    ev = [Evidence(key="1", kind="chunk", text="", url="https://arxiv.org/abs/2505.06965"),
          Evidence(key="R1", kind="rule", text="", rule_id="x")]
    assert link_citations("A [1, R1] and [O III].", ev) == \
        "A [[1](https://arxiv.org/abs/2505.06965), R1] and [O III]."


def test_the_page_cannot_choose_an_ollama_host(tmp_path):
    """Only the operator's hosts are offered and accepted: a client that posts another URL gets an error and
    no request leaves the server (a shared app would otherwise fetch any URL a visitor names)."""
    from astrorag.errors import AstroRagError
    from astrorag.settings import Settings
    from astrorag.ui import AppState

    state = AppState(Settings(index_dir=tmp_path, ollama_host="http://127.0.0.1:11434",
                              ollama_hosts="http://127.0.0.1:11500"))
    assert state.settings("ollama", "", "http://127.0.0.1:11500").llm.ollama.host == "http://127.0.0.1:11500"
    assert state.settings("ollama", "", "").llm.ollama.host == "http://127.0.0.1:11434"
    with pytest.raises(AstroRagError, match="not one this server offers"):
        state.settings("ollama", "", "http://169.254.169.254/latest/meta-data")


def test_serve_mcp_lists_and_runs_the_four_tools_for_a_real_mcp_client(small_settings, tmp_path):
    import asyncio
    import json

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    port = _free_port()
    env = dict(os.environ, ASTRORAG_INDEX_DIR=str(small_settings.storage.index_dir), ASTRORAG_INDEX_NAME="small",
               GRADIO_ANALYTICS_ENABLED="False", OLLAMA_HOST="http://127.0.0.1:9", ASTRORAG_BACKEND="extractive")
    log = open(tmp_path / "mcp.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "astrorag", "serve", "--mcp", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/gradio_api/mcp/"
    csv_text = (ROOT / "astrorag" / "data" / "kokorev2024_lrd_dev.csv").read_text().splitlines()
    table = "\n".join([csv_text[0], *[row for row in csv_text[1:] if row.startswith("11219,")]]) + "\n"

    async def session_calls():
        async with streamable_http_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                results = {}
                for name, arguments in (("search_literature", {"query": "little red dots", "k": 3}),
                                        ("ask", {"question": "What powers little red dots?", "k": 3}),
                                        ("advise_sed", {"photometry_csv": table, "source_id": "11219"}),
                                        ("rules_for_symptoms", {"symptoms": "v_shaped_sed, optical_underestimated"})):
                    results[name] = await session.call_tool(name, arguments)
                errors = {"banana": await session.call_tool("rules_for_symptoms", {"symptoms": "banana"}),
                          "wide": await session.call_tool("advise_sed", {"photometry_csv": ",".join(["c"] * 5000)})}
                return listed, results, errors

    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError((tmp_path / "mcp.log").read_text())
                time.sleep(0.5)
        listed, results, errors = asyncio.run(session_calls())
        # the tools keep their own names in the Gradio API too (the chat's handler is named apart)
        from gradio_client import Client

        api = Client(f"http://127.0.0.1:{port}/", verbose=False).view_api(return_format="dict", print_info=False)
        assert {"/ask", "/search_literature", "/advise_sed", "/rules_for_symptoms"} <= set(api["named_endpoints"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == {"search_literature", "ask", "advise_sed", "rules_for_symptoms"}, (tmp_path / "mcp.log").read_text()
    assert "year_min" in tools["search_literature"].inputSchema["properties"]
    assert "photometry_csv" in tools["advise_sed"].inputSchema["properties"] and tools["advise_sed"].description
    text = {name: "".join(c.text for c in r.content if hasattr(c, "text")) for name, r in results.items()}
    assert not any(r.isError for r in results.values()), text
    data = {name: json.loads(t) for name, t in text.items()}  # JSON an agent can parse, not Python repr
    assert len(data["search_literature"]) == 3 and {"key", "title", "arxiv_id", "text"} <= set(data["search_literature"][0])
    assert any("little red dot" in p["text"].lower() or "lrd" in p["text"].lower() for p in data["search_literature"])
    assert isinstance(data["ask"]["citations"], list) and data["ask"]["answer"]
    assert "lrd-optical-deficit-agn" in [a["rule_id"] for a in data["rules_for_symptoms"]]
    assert "v_shaped_sed" in data["advise_sed"]["symptoms"] and str(data["advise_sed"]["id"]) == "11219"
    # astrorag's own messages reach the agent, not Gradio's generic one
    said = {k: "".join(c.text for c in r.content if hasattr(c, "text")) for k, r in errors.items()}
    assert errors["banana"].isError and "no known symptom in 'banana'" in said["banana"], said
    assert errors["wide"].isError and "columns" in said["wide"], said



def test_sources_show_what_the_record_has_and_keep_latex_for_the_renderer():
    from astrorag.index.types import Answer, Evidence
    from astrorag.render import sources_markdown
    from astrorag.ui import LATEX

    known = Evidence(key="1", kind="chunk", text="Compact sources at $z\\sim 4$ with M$_\\star$ < 10^10.",
                     title="Little red dots at $z > 4$", authors=("Kocevski, D.",), year=2024,
                     arxiv_id="2404.03576", venue="ApJ", citation_count=120, url="https://arxiv.org/abs/2404.03576")
    bare = Evidence(key="2", kind="chunk", text="A passage.", title="An untitled record", doc_id="sha:abc")
    text = sources_markdown(Answer(question="q", text="a [1]", evidence=[known, bare], citations=[known],
                                   backend="extractive", model="", settings_fingerprint=""))
    assert "authors n/a" not in text and "n.d." not in text
    assert "Kocevski, D. · 2024 · ApJ · cited 120x · 2404.03576" in text
    assert "$z\\sim 4$" in text and "$z &gt; 4$" in text  # math is left for KaTeX (HTML-escaped as text)
    assert "**[2]** An untitled record (retrieved)  \nsha:abc" in text
    assert {"left": "$", "right": "$", "display": False} in LATEX
