"""Declarative mappings between the province's records and the portal's contract.

``load_mappings(folder)`` checks every spec and code table at load time (errors name file, line
and key) and compiles them; ``MappingSet.get(name).map(record)`` maps one record and never raises
on bad data: a ``MapResult`` carries either the contract model or per-field ``FieldError``s.
"""

from .codes import CodeLookupError, CodeTable
from .engine import CompiledMapping, MapResult
from .errors import FieldError, MappingSpecError, mask
from .loader import MappingSet, load_mappings
from .spec import CodeTableSpec, FieldSpec, MappingSpec, SourceSpec

__all__ = [
    "CodeLookupError",
    "CodeTable",
    "CodeTableSpec",
    "CompiledMapping",
    "FieldError",
    "FieldSpec",
    "MapResult",
    "MappingSet",
    "MappingSpec",
    "MappingSpecError",
    "SourceSpec",
    "load_mappings",
    "mask",
]
