"""Hostile model output in JupyterLab (Chromium): nothing of it runs, whichever way it is shown.

Outputs produced in the running session are trusted by JupyterLab: HTML in them may run script on the
notebook's origin. Each payload below sets `window.__pwned` if it ever runs. The answers come over real
sockets: the kernel's emulator echoes a Dify message into its answer and `wiro/chat-llm` repeats its
prompt; `wiro/named-output` declares the hostile output name it is given. The notebook shows them as a
cell's last expression, through `%%wchat` without and with widgets, in `bot.widget()`, as a Wiro task and
in a `TaskView`; then the page is checked (flag unset, no `javascript:` link, nothing fetched on display)
and the payloads' link-looking text is clicked. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import re
import time
from typing import Any

from hostile import HOSTILE, HOSTILE_STEM, PAYLOADS

from .harness import JupyterLab, shot

SETUP = f"""\
import os
import wiro_jupyter as wj
from wiro_jupyter.widgets import TaskView
%load_ext wiro_jupyter
emu = wj.use_emulator(stage_delay=0.05, quiet=True)
HOSTILE = {HOSTILE!r}
HOSTILE_STEM = {HOSTILE_STEM!r}"""

CELLS = [
    SETUP,
    # 1: a reply as the cell's last expression (ChatMessage's own bundle), then no widgets for the next cell
    'os.environ["WIRO_JUPYTER_WIDGETS"] = "0"\nwj.WbotChat().send(HOSTILE)',
    # 2: %%wchat without widgets
    "%%wchat --wbot --session plain\n{HOSTILE}",
    # 3: back to widgets; an agent's reply with its tool step and image
    'del os.environ["WIRO_JUPYTER_WIDGETS"]\nwj.WbotChat(api_key=emu.dify_agent_key).send(HOSTILE)',
    # 4: %%wchat with its widget
    "%%wchat --wbot --session widget\n{HOSTILE}",
    # 5, 6: the chat widget of a WbotChat, following a turn sent from code
    "bot = wj.WbotChat()\nbot.widget()",
    "reply = bot.send(HOSTILE)",
    # 7: a Wiro LLM answering the hostile prompt, as the cell's value
    'wj.Wiro().run("wiro/chat-llm", prompt=HOSTILE)',
    # 8, 9: outputs whose declared names (and a text output's content) are hostile
    'wj.Wiro().run("wiro/named-output", name=HOSTILE_STEM + ".md", contenttype="text/markdown", text=HOSTILE, count=2)',
    'TaskView(wj.Wiro().run("wiro/named-output", name=HOSTILE_STEM + ".png", contenttype="image/png", count=2))',
]
TEXT_OUTPUTS = [1, 2, 3, 4, 7, 8]  # cells whose output must show the payload as text

# Every anchor whose href would run script, however the page spells it.
JS_LINKS = """() => [...document.querySelectorAll('a[href]')]
  .filter((a) => /^\\s*(javascript|vbscript|data):/i.test(a.getAttribute('href') || '')).length"""
# Every element of an output that loads something by being shown, and from where.
LOADED_SOURCES = """() => [...document.querySelectorAll('.jp-OutputArea [src], .jp-OutputArea [srcset]')]
  .map((el) => `${el.tagName.toLowerCase()} ${(el.getAttribute('src') || el.getAttribute('srcset')).slice(0, 40)}`)"""


def test_hostile_answers_and_output_names_never_run(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    lab.open_notebook(page, CELLS, name="hostile.ipynb")
    lab.run_all(page, timeout=180)

    # Everything rendered: both chat widgets with their finished turn, the task view with its outputs.
    page.wait_for_function(
        "() => document.querySelectorAll(\".wiro-chat-turn.assistant[data-state='done']\").length === 2", timeout=30_000
    )
    lab.wait_for(page, ".wiro-status[data-state='done']", timeout=30)
    lab.wait_for(page, ".wiro-media[data-state='ready'] .wiro-grid img", timeout=30)
    assert page.evaluate("() => window.__pwned") is None
    assert page.evaluate(JS_LINKS) == 0

    for index in TEXT_OUTPUTS:
        text = lab.output_text(page, index)
        assert PAYLOADS[1] in text and PAYLOADS[2] in text, (index, text[:300])  # the answer, shown as text
    for chat in page.locator(".wiro-chat").all():
        assert PAYLOADS[1] in chat.locator(".wiro-chat-turn.assistant .wiro-chat-answer").inner_text()
    agent = lab.output(page, 3)
    assert agent.locator("img[src^='data:image/png;base64,']").count() == 1  # the agent's image, fetched by the kernel
    assert lab.output_text(page, 8).count(HOSTILE_STEM + ".md") == 2  # hostile names, as text
    assert lab.output(page, 9).locator("figcaption").all_inner_texts() == [HOSTILE_STEM + ".png"] * 2

    shot(page, "hostile-chat-message", lab.cell(page, 1))
    shot(page, "hostile-wchat-widget", lab.cell(page, 4))
    shot(page, "hostile-task-outputs", lab.cell(page, 9))

    sources = page.evaluate(LOADED_SOURCES)
    assert sources and all(re.fullmatch(r"(img|audio|video) data:(image|audio|video)/\S*", s) for s in sources), sources
    # Displaying asked no other server for anything (an <img src=x> would have requested <page>/x).
    foreign = [url for url in requested if not url.startswith((lab.url, "data:", "blob:"))]
    assert foreign == [] and not [url for url in requested if re.search(r"/x(\?|$)", url)], foreign

    assert page.locator(".jp-OutputArea a[href='https://evil.example/?q=secret']").count() >= 6  # the image, as a link

    # Click everything of the payloads that looks like a link: it is text, and nothing runs.
    outputs = page.locator(".jp-OutputArea")
    for label in ("click", PAYLOADS[4], PAYLOADS[5].split(";")[0]):  # a javascript: and a data:text/html link
        found = outputs.get_by_text(label, exact=False)
        assert found.count() >= len(TEXT_OUTPUTS), label
        for i in range(found.count()):
            found.nth(i).click()
    assert page.evaluate("() => window.__pwned") is None
    assert time.monotonic() - start < 150
