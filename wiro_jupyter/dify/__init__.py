"""A client for any Dify-compatible chat app (Wbot, Dify Cloud, a self-hosted Dify).

- `_client`: `AsyncWbotChat` (the I/O, once, asynchronously) and `WbotChat` (its blocking sibling);
- `_turn`: `_Turn`, the sans-I/O state machine of one turn (event dicts in, `ChatEvent`s out);
- `_errors`: Dify's error answers and stream failures as our exceptions, the `Service` the HTTP
  core uses, blocking-mode answers as events;
- `_files`: Dify file dicts and `ChatFile`, file types, what `files=` entries become on the wire.

The public names are re-exported from `wiro_jupyter`; this package imports nothing on its own.
"""
