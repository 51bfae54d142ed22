"""Builds persisting's Go core into persisting/_native*.so with setuptools-golang.

setuptools-golang copies the project into a temporary GOPATH and runs
``go build -buildmode=c-shared`` on ``cbridge``. The Makefile sets
SETUPTOOLS_GOLANG_GOPATH so the module cache survives between builds, and
GOFLAGS=-trimpath so Go's build cache is keyed independently of that
temporary directory.
"""

import glob
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExtDropHeader(build_ext):
    """``go build`` writes a C header beside the library; it is not part of the package."""

    def run(self) -> None:
        super().run()
        for ext in self.extensions:
            stem = os.path.splitext(self.get_ext_fullpath(ext.name))[0]
            for header in glob.glob(stem + ".h"):
                os.remove(header)


setup(
    ext_modules=[Extension("persisting._native", ["cbridge/main.go"])],
    build_golang={"root": "github.com/persisting/persisting"},
    cmdclass={"build_ext": BuildExtDropHeader},
)
