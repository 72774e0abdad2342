"""goalflow's operator command line (`python -m cli ...`), on top of the layers like the API."""
