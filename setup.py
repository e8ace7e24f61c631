"""Build step that bundles the HAT review's extraction and analysis specs into the wheel.

The repository keeps one copy of them, at data/extracted/ and analyses/ (where a reviewer edits them);
setuptools cannot list package data outside the package folder, so this build_py copies them into
hatmeta/review/bundled/ of the build. Everything else is configured in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLE = {"data/extracted": ("*.csv", "README.md"), "analyses": ("*.toml", "README.md"),
          "analyses/networks": ("*.toml",)}


class BuildWithReview(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "hatmeta" / "review" / "bundled"
        for folder, patterns in BUNDLE.items():
            out = target / folder
            out.mkdir(parents=True, exist_ok=True)
            for pattern in patterns:
                for path in sorted((HERE / folder).glob(pattern)):
                    shutil.copyfile(path, out / path.name)


setup(cmdclass={"build_py": BuildWithReview})
