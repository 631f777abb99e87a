"""Sphinx configuration of nexus_pool's documentation (furo theme, MyST Markdown pages).

Built by ``.ci/run`` with warnings as errors and nitpicky references:
``python -m sphinx -W --keep-going -n -b html docs docs/_build/html``.
"""

from __future__ import annotations

import nexus_pool

project = "nexus_pool"
author = "nexus_pool maintainers"
copyright = "2026, nexus_pool maintainers"
release = nexus_pool.__version__
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "furo"
html_title = f"nexus_pool {release}"

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": False}

nitpicky = True
# The standard library is not cross-referenced: intersphinx would fetch Python's
# inventory from the network, which the build must not need. Its names stay plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(collections\.abc|types|typing|typing_extensions|asyncio|threading|socket|_thread)\..*"),
    (r"py:.*", r"(T|LeaseT|X|SupportsIndex|Callable|Iterator|Generator|TracebackType|NoReturn|Self)"),
    # Type variables, and the private protocols that say what an argument must support
    # (``readinto`` for BufferPool's sources, for instance): they have no page of their own.
    (r"py:.*", r"nexus_pool\.(\w+\.)*_\w+\.\w+"),
    (r"py:class", r"(memoryview|bytearray|bytes|float|int|str|object|BaseException|Exception)"),
]
