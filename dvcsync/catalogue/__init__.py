"""Catalogue alignment: local procedures matched to the national catalogue, reviewed by a person,
and the decisions written into the mapping's code tables (``dvcsync catalogue``)."""
