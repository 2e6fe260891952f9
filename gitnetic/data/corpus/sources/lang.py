"""The ``lang`` of a corpus document, from its file name (a small fixed table; unknown -> ``other``).

The table is deliberately short and documented in docs/corpus.md: it labels documents for per-language
statistics and blends, it does not try to be a full language detector. Commit documents (source type
``git-history``) get ``lang: "diff"``.
"""

from __future__ import annotations

import posixpath

__all__ = ["COMMIT_LANG", "LANG_BY_EXTENSION", "LANG_BY_NAME", "lang_of"]

COMMIT_LANG = "diff"

LANG_BY_EXTENSION: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyx": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
    ".go": "go",
    ".rs": "rust",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell",
    ".md": "markdown", ".markdown": "markdown", ".rst": "restructuredtext",
    ".yaml": "yaml", ".yml": "yaml",
    ".json": "json",
    ".toml": "toml",
    ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".swift": "swift", ".scala": "scala",
    ".cs": "csharp", ".lua": "lua", ".sql": "sql", ".html": "html", ".css": "css",
}  # fmt: skip

LANG_BY_NAME: dict[str, str] = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake"}


def lang_of(path: str) -> str:
    """``python``, ``javascript``, ... for ``path`` by its name or extension (case-insensitive); else ``other``."""
    name = posixpath.basename(path)
    if name in LANG_BY_NAME:
        return LANG_BY_NAME[name]
    return LANG_BY_EXTENSION.get(posixpath.splitext(name)[1].lower(), "other")
