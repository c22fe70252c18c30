"""Privacy: data-subject requests (export and erasure, composed from each domain's own
``export_subject`` and ``forget_subject``), erasure epochs, pepper management and retention.

:mod:`credit_commons.privacy.pdf` renders a data-subject export as a readable PDF.
"""
