"""The clinical core: pure Python, no Qt, no database, no clock."""
