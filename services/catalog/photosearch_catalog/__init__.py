"""photosearch catalog service."""
