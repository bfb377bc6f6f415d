"""The catalogue: every synthetic model's Tool/List entry and parameter definitions (Wiro §3, §4).

References like "Wiro §4.1" are sections of docs/protocol.md.
"""

from __future__ import annotations

from . import _behaviours, _realtime
from ._models import ModelSpec, group, param

_STYLES = [("Photo", "photo"), ("Illustration", "illustration"), ("Pixel art", "pixel-art"), ("None", "")]
_FORMATS = [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")]


def _catalogue() -> list[ModelSpec]:
    return [
        ModelSpec(
            "1001", "Text To Image", "text-to-image", "Text to Image",
            "Draws a deterministic gradient picture with your prompt written on it.",
            ("text-to-image", "image-generation"),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Describe the picture",
                      note="What to draw"),
                param("negativePrompt", "text", "Negative Prompt", placeholder="What to avoid"),
                param("width", "range", "Width", default=512, minvalue="256", maxvalue="1024", step="64",
                      note="Multiple of 64"),
                param("height", "range", "Height", default=512, minvalue="256", maxvalue="1024", step="64"),
                param("samples", "range", "Samples", default=1, minvalue="1", maxvalue="4"),
                param("style", "select", "Style", default="photo", options=_STYLES),
                param("outputFormat", "select", "Output Format", default="png", options=_FORMATS),
            ]), group("Advanced", [
                param("steps", "range", "Steps", default=20, minvalue="1", maxvalue="50", advanced=True),
                param("guidance", "range", "Guidance", default=4.5, minvalue="1.5", maxvalue="10", step="0.5",
                      advanced=True),
                param("seed", "range", "Seed", default=123, minvalue="0", maxvalue="9999999", advanced=True),
            ])],
            _behaviours.run_text_to_image, 0.02, "cpo", "5 seconds",
            [{"prompt": "A lighthouse at dusk, oil painting", "width": 512, "height": 512}],
        ),
        ModelSpec(
            "1002", "Image To Image", "image-to-image", "Image to Image",
            "Applies an effect (invert, grayscale, posterize) to your picture.",
            ("image-to-image", "image-editing"),
            [group("Inputs", [
                param("inputImage", "fileinput", "Input Image", required=True, note="PNG or JPEG"),
                param("inputImageUrl", "text", "Input Image URL", placeholder="https://…",
                      note="Instead of uploading a file"),
                param("effect", "select", "Effect", default="invert",
                      options=[("Invert", "invert"), ("Grayscale", "grayscale"), ("Posterize", "posterize")]),
                param("strength", "range", "Strength", default=0.8, minvalue="0", maxvalue="1", step="0.05"),
            ])],
            _behaviours.run_image_to_image, 0.01, "cpr", "3 seconds",
            [{"inputImageUrl": "https://cdn.wiro.ai/samples/cat.png", "effect": "grayscale"}],
        ),
        ModelSpec(
            "1003", "Image Blend", "image-blend", "Image Blend",
            "Blends or tiles up to three images, plus optional reference images.",
            ("image-to-image", "image-editing"),
            [group("Inputs", [
                param("inputImages", "combinefileinput", "Input Images", required=True, maxlen=3,
                      note="Up to 3 files or URLs"),
                param("referenceImages", "multifileinput", "Reference Images", maxlen=4),
                param("referenceImagesUrl", "text", "Reference Image URLs", note="Comma-separated URLs"),
                param("mode", "select", "Mode", default="average", options=[("Average", "average"), ("Tile", "tile")]),
            ])],
            _behaviours.run_image_blend, 0.015, "cpr", "4 seconds",
        ),
        ModelSpec(
            "1004", "Kitchen Sink", "kitchen-sink", "Kitchen Sink",
            "Every parameter type once; echoes what it received as JSON.",
            ("tool",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Anything", note="Echoed back"),
                param("title", "text", "Title", placeholder="A title"),
                param("mode", "select", "Mode", required=True, default="fast",
                      options=[("Fast", "fast"), ("Quality", "quality"), ("Match input", "")]),
                param("scene", "selectwithcover", "Scene", default="beach",
                      options=[("Beach", "beach"), ("Forest", "forest"), ("City", "city")], covers=True),
                param("inputImage", "fileinput", "Input Image"),
                param("inputImageUrl", "text", "Input Image URL", note="Instead of uploading a file"),
            ], subtitle="The basics"),
             group("Numbers", [
                 param("count", "range", "Count", default=3, minvalue="1", maxvalue="10", step="1"),
                 param("amount", "number", "Amount", default=7, minvalue="0", maxvalue="100"),
                 param("ratio", "float", "Ratio", default=0.5, minvalue="0", maxvalue="1", step="0.1"),
                 param("enabled", "checkbox", "Enabled", default="false", note="A string boolean, like the real API"),
             ]),
             group("Advanced", [
                 param("gallery", "multifileinput", "Gallery", maxlen=5),
                 param("galleryUrl", "text", "Gallery URLs", note="Comma-separated"),
                 param("mixed", "combinefileinput", "Mixed Files", maxlen=4),
                 param("seed", "number", "Seed", default=42, minvalue="0", maxvalue="999999", advanced=True),
             ])],
            _behaviours.run_kitchen_sink, 0.0, "cpr", "1 second",
            [{"prompt": "hello", "mode": "fast", "count": 3}],
        ),
        ModelSpec(
            "1005", "Chat LLM", "chat-llm", "Chat LLM",
            "A chat model that streams thinking and a Markdown answer, with memory per session_id.",
            ("chat", "llm"),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Ask anything"),
                param("user_id", "text", "User ID"),
                param("session_id", "text", "Session ID", note="Reuse to keep the conversation"),
                param("system_prompt", "textarea", "System Prompt",
                      default="You are a helpful, respectful and honest assistant."),
                param("temperature", "text", "Temperature", default="0.7"),
                param("max_tokens", "range", "Max Tokens", default=0, minvalue="0", maxvalue="4096"),
                param("reasoning", "checkbox", "Reasoning", default=True),
            ])],
            _behaviours.run_chat_llm, 0.001, "cpr", "2 seconds",
            [{"prompt": "What is quantum computing?"}],
        ),
        ModelSpec(
            "1006", "Text To Speech", "text-to-speech", "Text to Speech",
            "Turns text into a melody of tones (PCM16 mono 24 kHz WAV).",
            ("text-to-speech",),
            [group("Inputs", [
                param("text", "textarea", "Text", required=True, placeholder="Text to speak"),
                param("voice", "select", "Voice", default="marin",
                      options=[("Marin", "marin"), ("Cedar", "cedar"), ("Robot", "robot")]),
                param("speed", "range", "Speed", default=1, minvalue="0.5", maxvalue="2", step="0.1"),
            ])],
            _behaviours.run_text_to_speech, 0.005, "cpr", "3 seconds",
        ),
        ModelSpec(
            "1007", "Animate", "animate", "Animate",
            "A short animation (GIF and animated WebP) standing in for a video model.",
            ("text-to-video",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True),
                param("frames", "range", "Frames", default=8, minvalue="4", maxvalue="24"),
            ])],
            _behaviours.run_animate, 0.05, "cpr", "20 seconds",
        ),
        ModelSpec(
            "1008", "Always Fails", "always-fails", "Always Fails",
            "Runs, writes a traceback to stderr and fails.",
            ("tool",),
            [group("Inputs", [param("prompt", "textarea", "Prompt", required=True)])],
            _behaviours.run_always_fails, 0.01, "cpr", "2 seconds",
        ),
        ModelSpec(
            "1009", "Slow", "slow", "Slow",
            "Takes its time (progress every 0.2 s); for cancel and kill.",
            ("tool",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt"),
                param("seconds", "range", "Seconds", default=30, minvalue="0.1", maxvalue="600", step="0.1"),
            ])],
            _behaviours.run_slow, 0.0005, "cps", "30 seconds",
        ),
        ModelSpec(
            "1010", "Big File", "big-file", "Big File",
            "Produces a deterministic binary blob of the requested size.",
            ("tool",),
            [group("Inputs", [param("megabytes", "range", "Megabytes", default=8, minvalue="1", maxvalue="1024")])],
            _behaviours.run_big_file, 0.0, "cpr", "5 seconds",
        ),
        ModelSpec(
            "1011", "Realtime Echo", "realtime-echo", "Realtime Echo",
            "A realtime voice model that echoes your audio back with transcripts.",
            ("realtime-conversation", "realtime"),
            [group("Inputs", [
                param("voice", "select", "Voice", default="marin", options=[("Marin", "marin"), ("Cedar", "cedar")]),
                param("system_instructions", "textarea", "System Instructions"),
                param("input_audio_rate", "text", "Input Audio Rate", default="24000"),
            ])],
            _behaviours.run_realtime_echo, 0.002, "cp-realtimeturn", "realtime",
        ),
        ModelSpec(
            "1012", "Stream LLM", "stream-llm", "Stream LLM",
            "An LLM stand-in whose answer has exactly `chars` characters, sent in exactly `frames` cumulative "
            "snapshots, `delay` seconds apart: for tests of long and fast streams.",
            ("tool",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Anything; the answer ignores it"),
                param("chars", "range", "Characters", default=2000, minvalue="1", maxvalue="2000000"),
                param("frames", "range", "Frames", default=100, minvalue="1", maxvalue="20000"),
                param("delay", "float", "Delay", default=0, minvalue="0", maxvalue="60", step="0.01",
                      note="Seconds between frames"),
            ])],
            _behaviours.run_stream_llm, 0.0, "cpr", "1 second",
        ),
        ModelSpec(
            "1013", "Named Output", "named-output", "Named Output",
            "Outputs `count` files that all carry exactly the `name` and `contenttype` given, whatever they "
            "contain: for tests of hostile and duplicate output names.",
            ("tool",),
            [group("Inputs", [
                param("count", "range", "Count", default=1, minvalue="1", maxvalue="4"),
                param("name", "text", "Name", default="0.png", note="Sent as given: quotes, markup, ../ and all"),
                param("contenttype", "text", "Content Type", default="image/png"),
                param("text", "textarea", "Text", default="hello", note="The content unless the type is image/*"),
            ])],
            _behaviours.run_named_output, 0.0, "cpr", "1 second",
        ),
        # Realtime models (Wiro §9), named and parameterised like the real ones.
        ModelSpec(
            "1014", "gpt-realtime-mini", "gpt-realtime-mini", "GPT Realtime Mini (emulated)",
            "A voice conversation: answers each utterance (found by the silence after it) with both transcripts "
            "and a tone whose length depends on what you said.",
            ("realtime-conversation", "realtime"),
            [group("Inputs", [
                param("voice", "select", "Voice", default="marin", options=[("Marin", "marin"), ("Cedar", "cedar")]),
                param("system_instructions", "textarea", "System Instructions"),
                param("input_audio_format", "text", "Input Audio Format", default="audio/pcm"),
                param("output_audio_format", "text", "Output Audio Format", default="audio/pcm"),
                param("input_audio_rate", "text", "Input Audio Rate", default="24000"),
                param("output_audio_rate", "text", "Output Audio Rate", default="24000"),
            ])],
            _realtime.run_conversation, _realtime.CONVERSATION_PRICE, "cp-realtimeturn", "realtime", owner="openai",
        ),
        ModelSpec(
            "1015", "moss-tts", "moss-tts", "MOSS TTS (emulated)",
            "Streaming text-to-speech: speaks the text as a melody of tones over the socket (audio only).",
            ("text-to-speech", "realtime"),
            [group("Inputs", [
                param("text", "textarea", "Text", required=True, placeholder="Text to speak"),
                param("temperature", "float", "Temperature", default=1.0, minvalue="0", maxvalue="2", step="0.1"),
                param("topP", "float", "Top P", default=0.9, minvalue="0", maxvalue="1", step="0.05"),
                param("topK", "number", "Top K", default=50, minvalue="1", maxvalue="200"),
            ])],
            _realtime.run_streaming_tts, _realtime.TTS_PRICE, "cp-realtimeturn", "realtime",
        ),
        ModelSpec(
            "1016", "voxtral-mini-realtime", "voxtral-mini-realtime", "Voxtral Mini Realtime (emulated)",
            "Streaming speech-to-text: transcribes what you say word by word (no audio back).",
            ("speech-to-text", "realtime"),
            [group("Inputs", [
                param("transcriptionDelay", "select", "Transcription Delay", default="balanced",
                      options=[("Fast", "fast"), ("Balanced", "balanced"), ("Accurate", "accurate")]),
            ])],
            _realtime.run_streaming_stt, _realtime.STT_PRICE, "cp-realtimeturn", "realtime",
        ),
    ]


class Catalogue:
    """The models, looked up by raw or clean slug, case-insensitively (Wiro §3)."""

    def __init__(self) -> None:
        self.models = _catalogue()

    def find(self, owner: str, project: str) -> ModelSpec | None:
        owner, project = owner.strip().lower(), project.strip().lower()
        for spec in self.models:
            if owner == spec.owner and project in (spec.clean, spec.project.lower()):
                return spec
        return None
