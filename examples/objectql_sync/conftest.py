"""Puts this folder on ``sys.path`` so tests import ``objectql_client`` (pytest's rootdir conftest does)."""
