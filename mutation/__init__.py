"""`make mutation`: mutmut over the core modules (see __main__)."""
