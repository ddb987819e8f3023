"""Tables, API schemas, the job state machine, the error tree and the codes of a job's errors.

Nothing here does I/O or imports another package of ours.
"""
