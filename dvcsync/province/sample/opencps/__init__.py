"""A sample OpenCPS v2 database (the real dossier-management tables, realistic rows): the second
one-stop schema dvcsync ships a profile for (``dvcsync sample-db --profile opencps``,
``mappings/opencps/``)."""

from .generator import OpenCPSStats, generate

__all__ = ["OpenCPSStats", "generate"]
