"""The clinician's pages: the form, the result, history, handout and their helpers."""
