"""Transports: the only modules that open sockets or write mail files."""
