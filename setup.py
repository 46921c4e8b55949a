"""Only the optional C extension lives here; everything else is in pyproject.toml.

``autolog._speedups`` (the training thread's hot path, autolog/_speedups.c) is built when a C compiler and the
Python headers are there; without them the build warns and goes on, and autolog runs its pure-Python code.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("autolog._speedups", sources=["autolog/_speedups.c"], optional=True),
    ],
)
