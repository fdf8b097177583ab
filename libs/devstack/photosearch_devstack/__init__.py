"""Embedded infrastructure and a process supervisor for the whole mesh on one machine."""
