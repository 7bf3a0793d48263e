"""The report, built from result files only (build.py); its schema (schema.py) and command
(command.py). Nothing here trains, recomputes a result, or imports torch or MLflow."""
