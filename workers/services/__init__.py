"""Services: one function per step of a job. Each owns its transaction and enqueues
follow-up work only after commit."""
