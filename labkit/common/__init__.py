"""Small helpers every layer of labkit may use: errors, number formatting, Jupyter, scheduler.

This is the bottom layer: it imports nothing else from labkit.
"""
