"""Pure helpers: nothing here imports Django apps."""
