"""The Wiro client against the emulator over real sockets: every endpoint, both auth
modes, JSON and multipart runs, validation, retries and the error messages."""

from __future__ import annotations

import asyncio
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import make_client
from PIL import Image

import wiro_jupyter as wj
from wiro_jupyter import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    ValidationError,
    Wiro,
    WiroError,
)
from wiro_jupyter._auth import next_nonce, sign


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# -- auth --------------------------------------------------------------------------------
def test_signature_matches_published_vectors() -> None:
    assert sign("test-api-key", "test-secret", "1700000000000") == (
        "2d99fa1b6934f66a712785d1b402997e1b13d9d7cd5e0085211dac133ae4a8ef"
    )
    assert sign("api", "secret", "nonce-1") == "d453af9a65c4ddd1ff17d5b03d3224b906899f3445dc4b4aadb5580260c60586"


def test_nonces_strictly_increase() -> None:
    nonces = [int(next_nonce()) for _ in range(1000)]
    assert nonces == sorted(set(nonces))


def test_api_key_mode(wiro: Wiro) -> None:
    assert wiro.settings.auth_mode == "api-key"
    assert len(wiro.models(limit=5)) > 0


def test_signature_mode_signs_every_request(emu: Any) -> None:
    with make_client(emu, api_key=emu.signature_key, api_secret=emu.signature_secret) as client:
        assert client.settings.auth_mode == "signature"
        # Several requests in quick succession: each needs a fresh nonce (the emulator refuses replays).
        for _ in range(5):
            client.models(limit=1)
        task = client.run("wiro/text-to-image", prompt="signed")
        assert task.ok


def test_wrong_secret_is_refused_without_leaking(emu: Any) -> None:
    secret = "a-wrong-secret-value-123"
    with make_client(emu, api_key=emu.signature_key, api_secret=secret) as client, pytest.raises(AuthenticationError) as info:
        client.models()
    text = str(info.value) + repr(info.value) + "".join(info.value._render_traceback_())
    assert "not valid" in text
    assert_no_secret(text, secret, emu.signature_key)


def test_key_only_request_to_signature_project_is_refused(emu: Any) -> None:
    with make_client(emu, api_key=emu.signature_key) as client, pytest.raises(AuthenticationError) as info:
        client.models()
    assert "signature" in str(info.value)
    assert_no_secret(str(info.value), emu.signature_key)


def test_revoked_key() -> None:
    from wiro_jupyter.emulator import Emulator

    with Emulator(stage_delay=0, api_key="wiro-key-to-revoke-0000001") as own, make_client(own) as client:
        assert client.models(limit=1)  # works until the key is revoked
        own.revoke(own.api_key)
        with pytest.raises(AuthenticationError) as info:
            client.models()
    assert "WIRO_API_KEY" in str(info.value)  # says what to do
    assert_no_secret(str(info.value), own.api_key)


def test_missing_key_says_how_to_start(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIRO_API_KEY", raising=False)
    with Wiro(api_url=emu.api_url) as client, pytest.raises(AuthenticationError) as info:
        client.models()
    assert "use_emulator" in str(info.value)


def test_saved_login_serves_the_python_api(emu: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from wiro_jupyter._credentials import save_credentials

    monkeypatch.delenv("WIRO_API_KEY", raising=False)
    save_credentials(emu.signature_key, emu.signature_secret)
    with Wiro(api_url=emu.api_url, socket_url=emu.socket_url) as client:
        assert client.settings.auth_mode == "signature"
        assert client.models(limit=1)


def test_repr_masks_key(emu: Any) -> None:
    with make_client(emu, api_key=emu.signature_key, api_secret=emu.signature_secret) as client:
        text = repr(client) + repr(client.settings)
    assert_no_secret(text, emu.signature_key, emu.signature_secret)


# -- catalogue ---------------------------------------------------------------------------
def test_models_search_categories_and_paging(wiro: Wiro) -> None:
    everything = wiro.models(limit=100)
    assert everything.total >= 10
    slugs = [m.slug for m in everything]
    assert "wiro/text-to-image" in slugs and "wiro/chat-llm" in slugs
    found = wiro.models("text to image")
    assert "wiro/text-to-image" in [m.slug for m in found]
    llms = wiro.models(categories=["llm"])
    assert [m.slug for m in llms] == ["wiro/chat-llm"]
    first, second = wiro.models(limit=2, start=0), wiro.models(limit=2, start=2)
    assert len(first) == 2 and {m.slug for m in first}.isdisjoint({m.slug for m in second})
    model = next(m for m in everything if m.slug == "wiro/text-to-image")
    assert model.price is not None and model.price > 0  # parsed from the JSON-in-a-string dynamicprice
    bundle = everything._repr_mimebundle_()
    assert "wiro/text-to-image" in bundle["text/plain"] and "<table>" in bundle["text/html"]


def test_model_parameters_are_typed_and_flat(wiro: Wiro) -> None:
    model = wiro.model("wiro/text-to-image")
    assert model.slug == "wiro/text-to-image" and model.title
    width = model.parameter("width")
    assert width.type == "range" and width.min == 256 and width.max == 1024 and width.step == 64
    assert isinstance(width.min, int)  # "256" on the wire
    prompt = model.parameter("prompt")
    assert prompt.required and prompt.type == "textarea" and prompt.group
    style = model.parameter("style")
    assert style.options and all(o.label for o in style.options)
    assert model.main_text_parameter is prompt
    sink = wiro.model("wiro/kitchen-sink")
    types = {p.type for p in sink.parameters}
    assert {"text", "textarea", "select", "range", "fileinput", "multifileinput", "combinefileinput"} <= types
    assert len({p.group for p in sink.parameters}) >= 2
    combine = next(p for p in sink.parameters if p.type == "combinefileinput")
    assert combine.max_files and combine.max_files >= 2
    assert "width" in model._repr_mimebundle_()["text/plain"]


def test_unknown_model_suggests(wiro: Wiro) -> None:
    with pytest.raises(NotFoundError) as info:
        wiro.model("wiro/text-to-imag")
    assert "wiro/text-to-image" in str(info.value)


def test_bad_slug_shape(wiro: Wiro) -> None:
    with pytest.raises(ValidationError) as info:
        wiro.run("text-to-image", prompt="x")
    assert "owner/model" in str(info.value)


# -- running: JSON -------------------------------------------------------------------------
def test_run_text_to_image(wiro: Wiro, tmp_path: Path) -> None:
    task = wiro.run("wiro/text-to-image", prompt="a lighthouse", width=256, height=256, seed=7)
    assert task.done and task.ok and task.status == "task_postprocess_end"
    assert task.id.isdigit() and len(task.token) == 30
    assert task.outputs and task.outputs[0].kind == "image"
    image = task.images[0]
    assert image.size == (256, 256)
    paths = task.save(tmp_path / "out")
    assert [p.name for p in paths] == [o.name for o in task.outputs]
    assert all(p.stat().st_size > 0 for p in paths)
    bundle = task._repr_mimebundle_()
    assert "image/png" in bundle and "<img" in bundle["text/html"] and "text/plain" in bundle
    assert "wiro/text-to-image" in repr(task)


def test_run_is_deterministic(wiro: Wiro) -> None:
    a = wiro.run("wiro/text-to-image", prompt="same", seed=3, width=256, height=256)
    b = wiro.run("wiro/text-to-image", prompt="same", seed=3, width=256, height=256)
    assert a.outputs[0].read() == b.outputs[0].read()


def test_numbers_and_options_are_coerced(wiro: Wiro, emu: Any) -> None:
    task = wiro.run("wiro/text-to-image", prompt="coerce", width="320", steps=4.0, outputFormat="JPEG")
    assert task.ok
    assert task.parameters["width"] == 320 and task.parameters["steps"] == 4
    assert task.parameters["outputFormat"] == "jpeg"  # label accepted, value sent
    received = emu.tasks[task.id].parameters  # what reached the server (echoed as strings)
    assert received["width"] == "320" and received["steps"] == "4" and received["outputFormat"] == "jpeg"


def test_llm_text_and_thinking(wiro: Wiro) -> None:
    task = wiro.run("wiro/chat-llm", prompt="What is a qubit?")
    assert task.ok
    assert "What is a qubit?" in task.text
    assert task.thinking
    assert not task.files  # the answer is text, not a file
    bundle = task._repr_mimebundle_()  # the answer as sanitised HTML and text; never raw Markdown
    assert "text/markdown" not in bundle and task.text in bundle["text/plain"]
    assert '<div class="wiro-answer">' in bundle["text/html"]


def test_failed_task_raises_with_task(wiro: Wiro) -> None:
    with pytest.raises(TaskFailedError) as info:
        wiro.run("wiro/always-fails", prompt="boom")
    task = info.value.task
    assert task is not None and task.done and not task.ok
    assert "synthetic failure" in (task.error or "")
    assert "synthetic failure" in str(info.value)


def test_wait_false_returns_at_once_and_task_completes(wiro: Wiro) -> None:
    task = wiro.run("wiro/text-to-image", prompt="later", wait=False)
    assert not task.done or task.ok
    task.wait(timeout=30)
    assert task.ok


def test_task_detail_by_token_and_id(wiro: Wiro) -> None:
    done = wiro.run("wiro/text-to-image", prompt="detail")
    by_token = wiro.task(done.token)
    by_id = wiro.task(done.id)
    assert by_token.id == by_id.id == done.id
    assert by_token.ok and [o.name for o in by_id.outputs] == [o.name for o in done.outputs]
    with pytest.raises(NotFoundError):
        wiro.task("999999999")


def test_callback_url_is_sent(wiro: Wiro, emu: Any) -> None:
    task = wiro.run("wiro/text-to-image", prompt="cb", callback_url="http://127.0.0.1:9/hook")
    assert task.parameters["callbackUrl"] == "http://127.0.0.1:9/hook"
    assert emu.tasks[task.id].callback_url == "http://127.0.0.1:9/hook"  # arrived as `callbackUrl`


# -- running: multipart and URLs ---------------------------------------------------------
def _png(color: str = "red", size: tuple[int, int] = (32, 32)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["path", "bytes", "fileobj", "pil"])
def test_image_to_image_with_every_file_form(wiro: Wiro, tmp_path: Path, kind: str) -> None:
    data = _png("blue")
    path = tmp_path / "in.png"
    path.write_bytes(data)
    value: Any = {
        "path": str(path),
        "bytes": data,
        "fileobj": io.BytesIO(data),
        "pil": Image.open(io.BytesIO(data)),
    }[kind]
    task = wiro.run("wiro/image-to-image", inputImage=value, effect="invert", strength=1)
    assert task.ok
    out = task.images[0].convert("RGB")
    assert out.getpixel((0, 0)) == (255, 255, 0)  # inverted blue
    assert "sha256:" in str(task.parameters["inputImage"])  # journal-safe summary: name + hash, never bytes


def test_url_goes_to_the_declared_companion(wiro: Wiro, emu: Any) -> None:
    source = wiro.run("wiro/text-to-image", prompt="src", width=256, height=256)
    task = wiro.run("wiro/image-to-image", inputImage=source.outputs[0].url, effect="grayscale")
    assert task.ok
    detail = task.refresh()._state.detail
    assert detail["parameters"].get("inputImageUrl") == source.outputs[0].url


def test_combinefileinput_mixes_files_and_urls(wiro: Wiro) -> None:
    source = wiro.run("wiro/text-to-image", prompt="tile", width=256, height=256)
    url_only = wiro.run("wiro/image-blend", inputImages=[source.outputs[0].url, source.outputs[0].url])
    mixed = wiro.run("wiro/image-blend", inputImages=[_png("green"), source.outputs[0].url])
    assert url_only.ok and mixed.ok
    assert url_only.images and mixed.images


def test_upload_and_folder(wiro: Wiro, tmp_path: Path) -> None:
    folder = wiro.create_folder("inputs")
    assert folder["id"] and folder["name"] == "inputs"
    path = tmp_path / "photo.png"
    path.write_bytes(_png("purple"))
    uploaded = wiro.upload(path, folder_id=folder["id"])
    assert uploaded.url.startswith("http") and uploaded.name == "photo.png"
    task = wiro.run("wiro/image-to-image", inputImage=uploaded.url, effect="invert")
    assert task.ok


# -- validation before spending money ------------------------------------------------------
def run_count(emu: Any) -> int:
    return int(emu.stats.count("Run"))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"prompt": "x", "widht": 512}, "Did you mean 'width'"),
        ({"prompt": "x", "width": 4096}, "between 256 and 1024"),
        ({"prompt": "x", "width": "wide"}, "must be a number"),
        ({"prompt": "x", "style": "cubist"}, "must be one of"),
        ({"width": 512}, "'prompt' is required"),
    ],
)
def test_validation_errors_send_nothing(wiro: Wiro, emu: Any, params: dict[str, Any], expected: str) -> None:
    before = run_count(emu)
    with pytest.raises(ValidationError) as info:
        wiro.run("wiro/text-to-image", **params)
    assert expected in str(info.value)
    assert "Nothing was sent" in str(info.value)
    assert run_count(emu) == before


def test_missing_file(wiro: Wiro, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        wiro.run("wiro/image-to-image", inputImage=str(tmp_path / "nope.png"))
    assert "does not exist" in str(info.value)


def test_several_problems_reported_at_once(wiro: Wiro) -> None:
    with pytest.raises(ValidationError) as info:
        wiro.run("wiro/text-to-image", width=1, style="nope", colour="red")
    assert len(info.value.errors) == 4


def test_server_side_validation_still_maps(wiro: Wiro, emu: Any) -> None:
    emu.faults.business_error(path="Run", code=0, message="Request parameter [prompt] required", times=1)
    with pytest.raises(ValidationError) as info:
        wiro.run("wiro/text-to-image", prompt="x")
    assert "prompt" in str(info.value)


# -- retries and server errors --------------------------------------------------------------
def test_reads_retry_429_with_retry_after(wiro: Wiro, emu: Any) -> None:
    emu.faults.http_error(path="Tool/List", status=429, times=2, retry_after=0)
    assert len(wiro.models(limit=3)) == 3


def test_reads_retry_5xx(wiro: Wiro, emu: Any) -> None:
    emu.faults.http_error(path="Tool/Detail", status=503, times=2)
    wiro._async._models.clear()
    assert wiro.model("wiro/slow").slug == "wiro/slow"


def test_reads_give_up_with_a_clear_message(emu: Any) -> None:
    emu.faults.http_error(path="Tool/List", status=502, times=10)
    with make_client(emu, max_retries=1) as client, pytest.raises(ServerError) as info:
        client.models()
    assert "HTTP 502" in str(info.value) and "try again" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_run_is_never_retried_blindly(wiro: Wiro, emu: Any) -> None:
    wiro.model("wiro/text-to-image")
    before = run_count(emu)
    emu.faults.http_error(path="Run/wiro/text-to-image", status=503, times=1)
    with pytest.raises(ServerError) as failed:
        wiro.run("wiro/text-to-image", prompt="once")
    assert "charged twice" in str(failed.value)
    assert run_count(emu) == before + 1
    # A 429 refused the request outright: it is sent again (at most max_retries times), never blindly.
    with make_client(emu, max_retries=1) as client:
        client.model("wiro/text-to-image")
        emu.faults.http_error(path="Run/wiro/text-to-image", status=429, times=5, retry_after=0.1)
        with pytest.raises(RateLimitError) as info:
            client.run("wiro/text-to-image", prompt="once")
    assert info.value.retry_after == 0.1
    assert run_count(emu) == before + 3
    # the journal records both runs: the 429s were refused, the 503 may have started a task
    statuses = [e.status for e in wj.tasks(5)]
    assert statuses[:2] == ["not_submitted", "submit_unknown"]


def test_business_error_concurrency_limit(emu: Any) -> None:
    emu.faults.business_error(path="Run", code=96, message="You have reached your concurrent task limit.", times=5)
    with make_client(emu, max_retries=0) as client, pytest.raises(RateLimitError) as info:
        client.run("wiro/text-to-image", prompt="x")
    assert "concurrent task limit" in str(info.value)


def test_connection_refused(emu: Any) -> None:
    with Wiro(api_key="k" * 20, api_url="http://127.0.0.1:9/v1", max_retries=0) as client, pytest.raises(WiroError) as info:
        client.models()
    assert "Could not connect" in str(info.value)


def test_unknown_route_404(emu: Any) -> None:
    with make_client(emu, api_url=emu.base_url + "/v2") as client, pytest.raises(NotFoundError) as info:
        client.models()
    assert "WIRO_API_URL" in str(info.value)


# -- the sync API works wherever it is called -------------------------------------------------
def test_sync_api_inside_a_running_event_loop(wiro: Wiro) -> None:
    """A notebook cell runs inside the kernel's loop; the sync API must still work there."""

    async def cell() -> bool:
        return wiro.run("wiro/text-to-image", prompt="in a loop").ok

    assert asyncio.run(cell())


def test_sync_api_from_threads(wiro: Wiro) -> None:
    results: list[bool] = []

    def work(i: int) -> None:
        results.append(wiro.run("wiro/text-to-image", prompt=f"thread {i}").ok)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [True] * 4


def test_async_api(emu: Any) -> None:
    async def main() -> tuple[bool, str]:
        async with wj.AsyncWiro(
            api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url, poll_interval=0.05
        ) as client:
            model = await client.model("wiro/chat-llm")
            task = await client.run(model.slug, prompt="async hello")
            return task.ok, task.text

    ok, text = asyncio.run(main())
    assert ok and "async hello" in text


