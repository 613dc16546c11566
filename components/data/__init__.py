"""Ingestion: QQP records from GLUE TSV, HF datasets or parquet, the ExampleGen executor,
and the gate that stops a run on data anomalies."""
