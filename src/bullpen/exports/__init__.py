"""Export files: writing them, signed download tokens, and deleting expired ones."""
