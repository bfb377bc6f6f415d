"""The chat widget in JupyterLab in Chromium: a message typed into the widget's input box streams its
answer in; Stop ends a slow answer; an agent turn shows its tool step and its image. Each kernel starts
its own emulator (`wj.use_emulator()` in the notebook's first cell). Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .harness import JupyterLab, shot

REPO = Path(__file__).resolve().parents[2]

SETUP = """\
import wiro_jupyter as wj
from wiro_jupyter.widgets import ChatView
emu = wj.use_emulator(stage_delay=0.05, quiet=True)"""

# Records, in the page, every state and answer length an assistant turn goes through (a MutationObserver:
# the widget may stream faster than a test could poll).
WATCH = """(root) => {
  window.__chatSeen = [];
  const record = () => {
    for (const turn of root.querySelectorAll('.wiro-chat-turn.assistant')) {
      const answer = turn.querySelector('.wiro-chat-answer');
      window.__chatSeen.push([turn.dataset.state, answer ? answer.textContent.length : 0]);
    }
  };
  new MutationObserver(record).observe(root, {subtree: true, childList: true, characterData: true,
                                              attributes: true, attributeFilter: ['data-state']});
}"""


def test_message_typed_in_the_widget_streams_its_answer(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    check = "print(len(chat.turns), chat.turns[-1].answer.splitlines()[2])"
    lab.open_notebook(page, [SETUP, "chat = wj.Chat()\nchat.widget()", check], name="chat-input.ipynb")
    lab.run_all(page, check=False)  # the check cell fails until a message was sent
    widget = lab.wait_for(page, ".wiro-chat")
    assert widget.locator(".wiro-chat-empty").is_visible()
    assert widget.locator(".wiro-chat-title").inner_text() == "wiro/chat-llm"
    widget.evaluate(WATCH)

    box = widget.locator(".wiro-chat-input textarea")
    send = widget.locator("button.wiro-chat-send")
    assert send.is_disabled()  # nothing typed yet
    box.fill("Hello from the browser")
    send.click()
    lab.wait_for(page, ".wiro-chat-turn.user .wiro-chat-bubble:has-text('Hello from the browser')")
    assert box.input_value() == ""
    done = lab.wait_for(page, ".wiro-chat-turn.assistant[data-state='done']", timeout=30)
    answer = done.locator(".wiro-chat-answer")
    text = answer.inner_text()
    assert "You said: Hello from the browser" in text and "That is all from the synthetic model." in text
    assert answer.locator("h2").count() == 1 and answer.locator("pre code").count() == 1  # Markdown, rendered
    assert done.locator("details.wiro-chat-thinking").count() == 1
    assert done.locator(".wiro-chat-meta").inner_text().startswith("wiro/chat-llm · task ")
    seen = page.evaluate("() => window.__chatSeen")
    streaming_lengths = sorted({length for state, length in seen if state == "streaming" and length})
    assert streaming_lengths, seen  # the answer was shown while it streamed...
    assert streaming_lengths[0] < len(text)  # ...growing, before it was complete
    shot(page, "chat-input-streamed", done)

    lab.run_cell(page, 2)
    assert lab.output_text(page, 2).strip() == "1 You said: Hello from the browser"  # the kernel's chat has the turn
    assert time.monotonic() - start < 60


def test_stop_button_and_an_agent_turn_with_its_image(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    start = time.monotonic()
    bot = "bot = ChatView(wj.WbotChat())\nbot"
    agent = "agent = ChatView(wj.WbotChat(api_key=emu.dify_agent_key), show_input=False)\nagent.send('a red cat')\nagent"
    check = "print(bot.turns[-1]['state'], '150.' in bot.turns[-1]['html'])"
    lab.open_notebook(page, [SETUP, bot, agent, check], name="chat-stop.ipynb")
    lab.run_all(page, check=False)  # the check cell fails until a message was sent

    chats = page.locator(".wiro-chat")
    steps = lab.wait_for(page, ".wiro-chat-turn.assistant .wiro-chat-step[data-tool='draw_image']")
    image = lab.wait_for(page, ".wiro-chat-turn.assistant .wiro-chat-files img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=10_000)
    assert not steps.locator(".wiro-chat-step-input").is_visible()  # folded
    steps.locator("summary").click()
    assert '"prompt": "a red cat"' in steps.locator(".wiro-chat-step-input").inner_text()
    shot(page, "chat-agent-step-and-image", image)

    first = chats.nth(0)
    first.locator(".wiro-chat-input textarea").fill("count slow please")
    first.locator(".wiro-chat-input textarea").press("Enter")  # Enter sends
    stop = lab.wait_for(page, ".wiro-chat button.wiro-chat-stop")
    page.wait_for_function(
        "(el) => (el.querySelector('.wiro-chat-turn.assistant .wiro-chat-answer') || {}).textContent?.includes('Counting')",
        arg=first.element_handle(),
        timeout=20_000,
    )
    stop.click()
    stopped = lab.wait_for(page, ".wiro-chat-turn.assistant[data-state='stopped']", timeout=20)
    assert "150." not in stopped.locator(".wiro-chat-answer").inner_text()
    assert stopped.locator(".wiro-chat-meta").inner_text().endswith("stopped")
    assert not first.locator("button.wiro-chat-stop").is_visible()
    shot(page, "chat-stopped", stopped)
    lab.wait_for_idle()
    lab.run_cell(page, 3)
    assert lab.output_text(page, 3).strip() == "stopped False"
    assert time.monotonic() - start < 60
