"""The SD-JWT errors, at the path the published vector tests import.

The classes are ``formats/sd_jwt_errors.py``; ``tests/vectors`` is never edited, so its
import path is kept here.  Other code imports ``formats``.  Every public name of that module
is passed on (its ``__all__``), so the two lists cannot drift apart.
"""

from credit_commons.formats import sd_jwt_errors as _formats
from credit_commons.formats.sd_jwt_errors import *  # noqa: F403

__all__ = _formats.__all__
