"""Builds persisting's Go core into persisting/_native.so with setuptools-golang.

setuptools-golang copies the project into a temporary GOPATH and runs
``go build -buildmode=c-shared`` on ``cbridge``. The Makefile sets
SETUPTOOLS_GOLANG_GOPATH so the module cache survives between builds, and
GOFLAGS=-trimpath so Go's build cache is keyed independently of that
temporary directory.

The library is loaded with ctypes, never imported: it has no ``PyInit`` and
does not link against libpython. So its file name carries no Python ABI tag
(``_native.so``, which every CPython finds among its extension suffixes) and
the wheel is tagged ``py3-none-<platform>``: one wheel serves every CPython 3
on that platform. ``make wheel`` then lets auditwheel grant the manylinux tag.
"""

import glob
import os

from setuptools import Extension, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_ext import build_ext

LIBRARY = "persisting._native"


class BuildExt(build_ext):
    """Names the Go library ``_native.so`` and drops the C header ``go build``
    writes beside it (not part of the package)."""

    def get_ext_filename(self, fullname: str) -> str:
        filename = super().get_ext_filename(fullname)
        # Called with the full dotted name, or with its last part only.
        if fullname in (LIBRARY, LIBRARY.rsplit(".", 1)[1]):
            filename = os.path.join(os.path.dirname(filename), "_native.so")
        return filename

    def run(self) -> None:
        super().run()
        for ext in self.extensions:
            built = self.get_ext_fullpath(ext.name)
            stem = os.path.splitext(built)[0]
            for header in glob.glob(stem + ".h"):
                os.remove(header)
            # A library left by an older build under an ABI-tagged name
            # (_native.cpython-311-...so) would be found before this one.
            for stale in glob.glob(stem + ".*.so"):
                os.remove(stale)


class BdistWheel(bdist_wheel):
    """Tags the wheel ``py3-none-<platform>``: the library is not a Python extension."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    ext_modules=[Extension(LIBRARY, ["cbridge/main.go"])],
    build_golang={"root": "github.com/persisting/persisting"},
    cmdclass={"build_ext": BuildExt, "bdist_wheel": BdistWheel},
)
