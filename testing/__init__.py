"""Support code for test/, bench/ and examples/ (run from the repo root); not shipped with the package."""
