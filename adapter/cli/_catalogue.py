"""``dvcsync catalogue ...`` (being built: catalogue alignment, issue #12)."""
