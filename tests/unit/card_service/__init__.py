"""Unit tests of the card system: the domain and the pure helpers, no I/O."""
