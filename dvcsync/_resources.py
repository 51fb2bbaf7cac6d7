"""Files shipped inside the package, found the same way from a wheel, a container or a checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

MAPPINGS_PACKAGE = "dvcsync.bundled_mappings"
# One-stop systems dvcsync ships mappings for: ``sample`` is the shipped folder itself, any other
# its sub-folder of that name (``mappings/opencps/``), which the sample's loader never reads.
PROFILES = ("sample", "opencps")


def default_mappings() -> Path:
    """The mapping specs and code tables that ship with dvcsync (``mappings/`` of the repository,
    installed as ``dvcsync.bundled_mappings``): the default of ``[province] mappings``, so an
    installed adapter never depends on the folder it was started in. In a checkout (editable
    install) this *is* the repository's ``mappings/``, so edits there take effect at once."""
    folder = files(MAPPINGS_PACKAGE)
    if not isinstance(folder, Path):  # a zip import: the adapter needs a real folder to read
        raise RuntimeError(f"{MAPPINGS_PACKAGE} is not on the file system ({folder!r})")
    return folder


def profile_mappings(profile: str) -> Path:
    """The shipped mappings of one profile (``PROFILES``); ValueError naming the known ones."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    root = default_mappings()
    return root if profile == "sample" else root / profile
