from setuptools import setup

setup(cffi_modules=["native/build_fast.py:ffibuilder"])
