# Only what pyproject.toml cannot say: the cffi extension (backends/build_freelist.py).
from setuptools import setup

setup(cffi_modules=["backends/build_freelist.py:ffibuilder"])
