"""Engines behind one protocol (base.py); each module is imported only when its backend is chosen."""
