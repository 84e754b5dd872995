"""Integration tests of the card system: real SQLite files and real servers on port 0."""
