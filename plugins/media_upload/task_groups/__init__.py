"""One-line task groups that wire a whole upload for a DAG author."""
