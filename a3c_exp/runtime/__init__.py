"""Asynchronous execution: worker processes and the launcher that supervises them."""
