"""Privacy: data-subject requests (export and erasure), pepper management and retention.

:mod:`credit_commons.privacy.pdf` renders a data-subject export as a readable PDF.
"""
