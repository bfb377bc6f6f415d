"""Chat: conversations whose turns become `ChatMessage`s, whichever service answers.

- `_messages`: `ChatMessage`, `ChatEvent`, `ChatFile`, `AgentThought`, `Page`, `ChatListeners` —
  what a turn returns and what a turn in flight emits, shared by every backend;
- `_wiro`: `Chat` / `AsyncChat`, a conversation with a Wiro LLM kept by `session_id`;
- `_sessions`: named conversations kept per process (`chat_session`, the call behind `%%wchat`),
  over the small `ChatBackend` protocol that `Chat` and `dify.WbotChat` both satisfy.

The public names are re-exported from `wiro_jupyter`; this package imports nothing on its own.
"""
