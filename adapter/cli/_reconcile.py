"""``dvcsync reconcile`` and ``reconcile repair``."""
