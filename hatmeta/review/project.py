"""Where the project's folders are: data/extracted/, analyses/, reports/.

The extraction and the analysis specifications live in the repository, not in the installed
package, so that a reviewer who edits them sees the edit used. They are found like git finds its
repository: the current folder or the nearest parent holding both ``data/extracted`` and
``analyses``; failing that, the source tree the package was installed from in editable mode.
"""

from __future__ import annotations

from pathlib import Path


def _is_root(path: Path) -> bool:
    return (path / "data" / "extracted").is_dir() and (path / "analyses").is_dir()


def project_root() -> Path:
    """The project folder, or the current folder when none is found (errors then name the path)."""
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if _is_root(folder):
            return folder
    source = Path(__file__).resolve().parents[1]
    return source if _is_root(source) else cwd
