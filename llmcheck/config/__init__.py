"""Settings: the one table of every option, its resolution and names."""
