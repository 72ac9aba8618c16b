"""The ``vo`` command."""
