"""Small helpers shared by the package (kept light: importing them imports no library)."""
