"""Microcontainer images: OCI archives written without an engine, and run without one."""
