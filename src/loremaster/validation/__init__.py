"""Validation: JSON Schema, semantic consistency, custom rules, auto-correction.

    from loremaster.validation import ContextValidator

    validator = ContextValidator(enable_auto_correction=True)
    result = await validator.validate_context(context)
    if not result.is_valid:
        for issue in result.issues:
            print(f"{issue.severity}: {issue.message}")

Issue codes are listed in `CODES` and docs/validation.md; they never change once released.
"""

from ._issues import CODES, Severity, ValidationIssue, ValidationResult
from ._schema import SCHEMA_DIALECT, export_schemas, schema_for
from ._validator import ENTRY_POINT_GROUP, ContextSource, ContextValidator, Rule

__all__ = [
    "CODES",
    "ENTRY_POINT_GROUP",
    "SCHEMA_DIALECT",
    "ContextSource",
    "ContextValidator",
    "Rule",
    "Severity",
    "ValidationIssue",
    "ValidationResult",
    "export_schemas",
    "schema_for",
]
