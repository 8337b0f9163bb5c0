"""File imports: grid files, registry bulk files and CAP warnings, validated before anything is written."""
