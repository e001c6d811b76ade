"""Testing helpers: the pure-Python ReferenceBook, the executable spec of the matching rules."""
from lob.testing.reference import ReferenceBook

__all__ = ["ReferenceBook"]
