"""One client per upstream service; each call has a deadline and maps errors in one place."""
