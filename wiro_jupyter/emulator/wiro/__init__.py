"""The Wiro half of the emulator: REST (`/v1/...`), the task WebSocket, files and the synthetic models.

References like "Wiro §8" are sections of docs/protocol.md. `_api` routes the requests; the
parts it calls reach back into the emulator's state only through the small `Protocol`s they
declare (`FileHost`, `EngineHost`, `SocketHost`, ...), which `EmulatorState` implements.
"""
