"""The Django bench app (label ``bench``: tables ``bench_author``, ``bench_book``...)."""
