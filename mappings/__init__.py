"""Not code: this folder ships inside the wheel as the package ``dvcsync.bundled_mappings`` (see
pyproject.toml), so an installed dvcsync has its mapping specs and code tables; ``dvcsync init``
copies them out for editing. Mapping files are the ``*.yaml`` here and in ``codes/``."""
