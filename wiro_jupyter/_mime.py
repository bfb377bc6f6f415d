"""What kind of file some bytes, a MIME type or a file name stand for (no I/O, no imports of ours)."""

from __future__ import annotations


def sniff(data: bytes) -> tuple[str, str]:
    """(extension, MIME type) of some bytes, from their first bytes."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png", "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg", "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp", "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav", "audio/wav"
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return ".mp3", "audio/mpeg"
    if head[4:8] == b"ftyp":
        return ".mp4", "video/mp4"
    if head[:4] == b"%PDF":
        return ".pdf", "application/pdf"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return ".bin", "application/octet-stream"
    return ".txt", "text/plain"


def output_kind(content_type: str, name: str) -> str:
    """image / audio / video / text / json / raw / file, from the MIME type or the name."""
    ct = (content_type or "").lower()
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ct == "raw":
        return "raw"
    if ct.startswith("image/gif") or ext == "gif":
        return "video"
    if ct.startswith("image/") or ext in ("png", "jpg", "jpeg", "webp", "bmp"):
        return "image"
    if ct.startswith("audio/") or ext in ("wav", "mp3", "ogg", "flac", "m4a"):
        return "audio"
    if ct.startswith("video/") or ext in ("mp4", "webm", "mov"):
        return "video"
    if "json" in ct or ext == "json":
        return "json"
    if ct.startswith("text/") or ext in ("txt", "md", "csv"):
        return "text"
    return "file"
