"""Monkey-patch with gevent before anything else is imported: the gevent
check (bench/geventcheck.py) puts this directory on PYTHONPATH to show
what patching early changes. Not used by the service."""

from gevent import monkey

monkey.patch_all()
