"""Tables, API schemas, the job state machine and the error tree.

Nothing here does I/O or imports another package of ours.
"""
