"""The Dify half of the emulator: a Dify-compatible chat server (the Service API of chat apps).

The wire format follows Dify: `data: {json}\\n\\n` frames with no `event:` line, a bare
`event: ping\\n\\n` keep-alive, the stream ends when the connection closes, errors are
`{code, message, status}` (docs/protocol.md, Dify §2, §5). Three apps, one key each
(`emu.dify_chat_key`, `emu.dify_agent_key`, `emu.dify_chatflow_key`):

- mode "chat": echoes the query (verbatim, in Markdown) and remembers the conversation.
  Trigger words in the query: "moderate" → `message_replace`; "fail mid-stream" → deltas then
  an `error` event; "quirk" → an assistant file, then text deltas sent as `message_file` events
  (a bug of some Dify versions, Dify §2.3); "slow" → many deltas with delays, for stop();
  "speak" → `tts_message` audio after `message_end`.
- mode "agent-chat": streaming only; an agent thought re-sent three times as it changes, a tool
  that draws a PNG (served at a relative, signed `/files/tools/<id>.png` URL), `agent_message` deltas.
- mode "advanced-chat" (chatflow): workflow and node events around the answer, `workflow_finished`
  after `message_end` (Dify §2.4). Trigger words: "think" → `reasoning_chunk`; "iterate" / "loop" →
  iteration / loop events; "text_chunk" → deltas as `text_chunk`; "workflow fail" → a failed run.

The parts: `_world` (apps, conversations, uploads), `_streams` (one turn and its event streams),
`_routes` (the handlers and the app), `_errors` (error answers). Faults come from the emulator's
one `Faults` (`emu.faults.http_error("dify:chat-messages", 429)`, `emu.faults.drop_stream()`).
"""
